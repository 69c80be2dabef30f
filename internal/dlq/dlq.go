// Package dlq lets an on-call engineer see and replay what the stack's
// dead-letter queues hold (`dispatcher dlq inspect`, `dispatcher dlq
// redrive`), on AWS or on the emulator: anything the SQS API serves.
//
// The Scheduler DLQ receives three kinds of failure, told apart here by
// their shape (a marker the senders give for free):
//
//   - KindScheduleUndelivered: Scheduler could not invoke the dispatch
//     function (after the schedule's retry policy). The body is the
//     schedule's input, a fire; Scheduler adds ERROR_CODE, ERROR_MESSAGE
//     and the schedule's and target's ARNs as message attributes.
//   - KindInvokeFailed: the dispatch function failed on a fire Scheduler
//     did deliver (Lambda's asynchronous retries spent); the body is
//     Lambda's on-failure record, whose requestPayload is the fire.
//   - KindSweepUndelivered: Scheduler could not invoke the sweeper (body
//     "{}"): nothing to replay, the next minute's sweep is the retry.
//
// The other queues hold one kind each: fires (the dispatch queue's DLQ,
// KindFire; the webhook queue's DLQ, the same with kind "webhook"), SES
// events (the events queue's DLQ and the feedback rule target's DLQ,
// KindSESEvent), SMS delivery-status log batches the events function
// failed on (its on-failure destination is the events DLQ: KindSMSReports,
// Lambda's on-failure record whose requestPayload, the CloudWatch Logs
// event, is replayed to the events queue) and the webhooks stream's failed batches (KindStreamBatch:
// a pointer into the stream, which expires; the sweeper re-arms lost
// webhook deliveries, so nothing is replayed).
//
// Replaying is safe because every consumer is idempotent: a fire whose
// token is no longer its row's is dropped, recording a delivery report is
// idempotent. Redrive sends each replayable message's payload (the fire
// itself for KindInvokeFailed) to the destination queue, then deletes it
// from the DLQ; the rest stay, or are deleted on request.
package dlq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/lambdafn"
)

// SQSAPI is the part of the SQS client the tool uses.
type SQSAPI interface {
	GetQueueUrl(ctx context.Context, in *sqs.GetQueueUrlInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
}

// Kind is what a dead-letter message is.
type Kind string

// The kinds of dead-letter message (see the package documentation).
const (
	KindFire                Kind = "fire"
	KindScheduleUndelivered Kind = "schedule_undelivered"
	KindInvokeFailed        Kind = "invoke_failed"
	KindSweepUndelivered    Kind = "sweep_undelivered"
	KindSESEvent            Kind = "ses_event"
	KindStreamBatch         Kind = "stream_batch"
	KindSMSReports          Kind = "sms_reports"
	KindUnknown             Kind = "unknown"
)

// kinds lists every Kind, in the order KindNames gives them.
var kinds = []Kind{KindFire, KindScheduleUndelivered, KindInvokeFailed, KindSweepUndelivered, KindSESEvent, KindSMSReports, KindStreamBatch, KindUnknown}

// KnownKind reports whether k is one of the kinds.
func KnownKind(k Kind) bool {
	for _, x := range kinds {
		if x == k {
			return true
		}
	}
	return false
}

// KindNames lists the kinds' names.
func KindNames() []string {
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = string(k)
	}
	return out
}

// RedrivenFromAttribute is the message attribute a replayed message
// carries: the name of the DLQ it came from.
const RedrivenFromAttribute = "dispatcher-redriven-from"

// Message is one dead-letter message, read and classified.
type Message struct {
	ID string `json:"message_id"`
	// SentAt is when it entered the DLQ; ReceiveCount how often it was
	// received there (inspecting counts too).
	SentAt       time.Time `json:"sent_at,omitzero"`
	ReceiveCount int       `json:"receive_count"`
	Kind         Kind      `json:"kind"`
	// Fire is the fire the message holds (fires, undelivered schedules,
	// failed invokes), nil otherwise.
	Fire *comms.Fire `json:"fire,omitempty"`
	// Error is why it failed, as far as the message says: Scheduler's
	// ERROR_CODE: ERROR_MESSAGE, or Lambda's condition and error.
	Error string `json:"error,omitempty"`
	// Source names what sent it, when the message says: the schedule's or
	// the target's ARN, the function's ARN.
	Source string `json:"source,omitempty"`
	// Replay is the body redrive sends; "" when there is nothing to replay.
	Replay string `json:"-"`
	// Replayable is Replay != "".
	Replayable bool              `json:"replayable"`
	Attributes map[string]string `json:"attributes,omitempty"`
	Body       string            `json:"body"`

	receipt string
}

// Classify reads a dead-letter message: its body and its message
// attributes (string values).
func Classify(body string, attrs map[string]string) (m Message) {
	m = Message{Kind: KindUnknown, Body: body, Attributes: attrs}
	defer func() { m.Replayable = m.Replay != "" }()
	if code := attrs["ERROR_CODE"]; code != "" {
		m.Error = strings.TrimSuffix(code+": "+attrs["ERROR_MESSAGE"], ": ")
	}
	m.Source = firstOf(attrs, "SCHEDULE_ARN", "TARGET_ARN")
	if f, err := lambdafn.DecodeFire([]byte(body)); err == nil {
		m.Kind, m.Fire, m.Replay = KindFire, &f, body
		if m.Error != "" || m.Source != "" {
			m.Kind = KindScheduleUndelivered
		}
		return m
	}
	var probe struct {
		RequestContext *struct {
			Condition              string `json:"condition"`
			FunctionArn            string `json:"functionArn"`
			ApproximateInvokeCount int    `json:"approximateInvokeCount"`
		} `json:"requestContext"`
		RequestPayload  json.RawMessage `json:"requestPayload"`
		ResponsePayload json.RawMessage `json:"responsePayload"`
		Source          string          `json:"source"`
		DDBStreamBatch  json.RawMessage `json:"DDBStreamBatchInfo"`
		DetailType      string          `json:"detail-type"`
		Detail          json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal([]byte(body), &probe); err != nil {
		return m
	}
	switch {
	case probe.RequestContext != nil && len(probe.RequestPayload) > 0:
		m.Kind = KindInvokeFailed
		m.Source = probe.RequestContext.FunctionArn
		m.Error = probe.RequestContext.Condition
		if n := probe.RequestContext.ApproximateInvokeCount; n > 0 {
			m.Error += " after " + strconv.Itoa(n) + " invokes"
		}
		var resp struct {
			ErrorType    string `json:"errorType"`
			ErrorMessage string `json:"errorMessage"`
		}
		if json.Unmarshal(probe.ResponsePayload, &resp) == nil && resp.ErrorMessage != "" {
			m.Error += ": " + strings.TrimPrefix(resp.ErrorType+": "+resp.ErrorMessage, ": ")
		}
		var compact bytes.Buffer
		if f, err := lambdafn.DecodeFire(probe.RequestPayload); err == nil {
			m.Fire = &f
			if json.Compact(&compact, probe.RequestPayload) == nil {
				m.Replay = compact.String()
			}
		} else if isCloudWatchLogs(probe.RequestPayload) && json.Compact(&compact, probe.RequestPayload) == nil {
			// The events function failed on a batch of SMS delivery-status
			// lines: the events queue's consumer records it again.
			m.Kind, m.Replay = KindSMSReports, compact.String()
		}
	case len(probe.DDBStreamBatch) > 0:
		m.Kind = KindStreamBatch
		m.Source = "dynamodb stream"
	case isCloudWatchLogs(json.RawMessage(body)):
		// An SMS batch redriven to the events queue that failed again
		// there: the queue's redrive policy put its bare body back.
		m.Kind, m.Replay = KindSMSReports, body
		m.Source = "events queue"
	case probe.Source == "aws.ses" && len(probe.Detail) > 0:
		m.Kind, m.Replay = KindSESEvent, body
		m.Source = "aws.ses " + probe.DetailType
	case strings.TrimSpace(body) == "{}":
		m.Kind = KindSweepUndelivered
	}
	return m
}

// isCloudWatchLogs reports whether a payload is a CloudWatch Logs
// subscription event ({"awslogs":{"data":…}}).
func isCloudWatchLogs(payload json.RawMessage) bool {
	var p struct {
		AWSLogs struct {
			Data string `json:"data"`
		} `json:"awslogs"`
	}
	return json.Unmarshal(payload, &p) == nil && p.AWSLogs.Data != ""
}

func firstOf(attrs map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := attrs[k]; v != "" {
			return v
		}
	}
	return ""
}

// Tool reads and replays dead-letter queues.
type Tool struct {
	sqs SQSAPI
	// Wait is the long-poll wait of each receive (SQS's short poll samples
	// a subset of its servers and may answer empty while messages wait).
	Wait time.Duration
}

// New returns a Tool over an SQS client.
func New(client SQSAPI) *Tool { return &Tool{sqs: client, Wait: time.Second} }

// QueueURL resolves a queue given by URL (returned as it is) or by name.
func (t *Tool) QueueURL(ctx context.Context, nameOrURL string) (string, error) {
	if strings.Contains(nameOrURL, "://") {
		return nameOrURL, nil
	}
	if nameOrURL == "" {
		return "", errors.New("dlq: no queue given")
	}
	out, err := t.sqs.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(nameOrURL)})
	if err != nil {
		return "", fmt.Errorf("sqs.GetQueueUrl %s: %w", nameOrURL, err)
	}
	return aws.ToString(out.QueueUrl), nil
}

// receive takes up to 10 messages out of sight for hold.
func (t *Tool) receive(ctx context.Context, queueURL string, hold time.Duration) ([]Message, error) {
	out, err := t.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(queueURL),
		MaxNumberOfMessages:         10,
		VisibilityTimeout:           int32(hold / time.Second),
		WaitTimeSeconds:             int32(t.Wait / time.Second),
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
	})
	if err != nil {
		return nil, fmt.Errorf("sqs.ReceiveMessage: %w", err)
	}
	msgs := make([]Message, 0, len(out.Messages))
	for _, raw := range out.Messages {
		attrs := map[string]string{}
		for k, v := range raw.MessageAttributes {
			if v.StringValue != nil {
				attrs[k] = *v.StringValue
			}
		}
		m := Classify(aws.ToString(raw.Body), attrs)
		m.ID, m.receipt = aws.ToString(raw.MessageId), aws.ToString(raw.ReceiptHandle)
		if ms, err := strconv.ParseInt(raw.Attributes[string(sqstypes.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
			m.SentAt = time.UnixMilli(ms).UTC()
		}
		m.ReceiveCount, _ = strconv.Atoi(raw.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)])
		if len(m.Attributes) == 0 {
			m.Attributes = nil
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// release makes messages visible again at once.
func (t *Tool) release(ctx context.Context, queueURL string, msgs []Message) error {
	var errs []error
	for _, m := range msgs {
		if _, err := t.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
			QueueUrl: aws.String(queueURL), ReceiptHandle: aws.String(m.receipt), VisibilityTimeout: 0,
		}); err != nil {
			errs = append(errs, fmt.Errorf("sqs.ChangeMessageVisibility %s: %w", m.ID, err))
		}
	}
	return errors.Join(errs...)
}

// inspectHold is how long Inspect keeps the messages it read out of
// sight: long enough to page through max of them, after which they are
// released at once.
const inspectHold = 60 * time.Second

// Inspect reads up to max messages of the queue without consuming them:
// each is received (out of sight while the others are read, so none is
// listed twice), then made visible again. Their receive counts go up.
func (t *Tool) Inspect(ctx context.Context, queueURL string, max int) ([]Message, error) {
	var all, extra []Message
	seen := map[string]bool{}
	for len(all) < max {
		batch, err := t.receive(ctx, queueURL, inspectHold)
		if err != nil {
			return all, errors.Join(err, t.release(ctx, queueURL, append(all, extra...)))
		}
		fresh := 0
		for _, m := range batch {
			if seen[m.ID] || len(all) >= max {
				extra = append(extra, m) // read again, or beyond max: released, not listed
				continue
			}
			seen[m.ID] = true
			all = append(all, m)
			fresh++
		}
		if fresh == 0 {
			break
		}
	}
	return all, t.release(ctx, queueURL, append(all, extra...))
}

// RedriveOptions tune Redrive.
type RedriveOptions struct {
	// Max bounds how many messages are looked at (replayed, deleted or
	// kept). Zero: no bound.
	Max int
	// DeleteUnreplayable deletes the messages with nothing to replay
	// (undelivered sweeps, stream batches, unknown bodies) instead of
	// leaving them in the queue: after they have been read, so that the
	// queue's alarm clears.
	DeleteUnreplayable bool
	// Kinds, when not empty, limits the redrive to these kinds; the others
	// are left in the queue.
	Kinds []Kind
}

// RedriveResult counts what Redrive did.
type RedriveResult struct {
	// Replayed were sent to the destination and deleted from the DLQ.
	Replayed int `json:"replayed"`
	// Deleted had nothing to replay and were deleted (DeleteUnreplayable).
	Deleted int `json:"deleted"`
	// Kept are still in the DLQ.
	Kept int `json:"kept"`
	// ByKind counts the messages looked at by kind.
	ByKind map[Kind]int `json:"by_kind"`
}

// redriveHold keeps the messages a redrive has read but keeps out of sight
// until it is done, so it does not read them twice.
const redriveHold = 5 * time.Minute

// Redrive replays the DLQ's replayable messages onto the destination
// queue (each sent, then deleted from the DLQ; a failed send leaves the
// message in the DLQ) and, with DeleteUnreplayable, deletes the others.
// Every message it keeps is made visible again before it returns.
func (t *Tool) Redrive(ctx context.Context, fromURL, toURL string, o RedriveOptions) (RedriveResult, error) {
	res := RedriveResult{ByKind: map[Kind]int{}}
	from := fromURL[strings.LastIndexByte(fromURL, '/')+1:]
	var hold []Message // read and not deleted: released at the end
	seen := map[string]bool{}
	done := func() int { return res.Replayed + res.Deleted + res.Kept }
	keep := func(m Message) { hold = append(hold, m); res.Kept++ }
	var errs []error
	for o.Max <= 0 || done() < o.Max {
		batch, err := t.receive(ctx, fromURL, redriveHold)
		if err != nil {
			errs = append(errs, err)
			break
		}
		fresh := 0
		for _, m := range batch {
			if seen[m.ID] || (o.Max > 0 && done() >= o.Max) {
				hold = append(hold, m) // read again, or beyond Max: not looked at
				continue
			}
			seen[m.ID] = true
			fresh++
			res.ByKind[m.Kind]++
			wanted := len(o.Kinds) == 0
			for _, k := range o.Kinds {
				wanted = wanted || k == m.Kind
			}
			switch {
			case !wanted:
				keep(m)
			case m.Replayable:
				if _, err := t.sqs.SendMessage(ctx, &sqs.SendMessageInput{
					QueueUrl: aws.String(toURL), MessageBody: aws.String(m.Replay),
					MessageAttributes: map[string]sqstypes.MessageAttributeValue{
						RedrivenFromAttribute: {DataType: aws.String("String"), StringValue: aws.String(from)},
					},
				}); err != nil {
					errs = append(errs, fmt.Errorf("sqs.SendMessage %s: %w", m.ID, err))
					keep(m)
					continue
				}
				if err := t.delete(ctx, fromURL, m); err != nil {
					// Sent but still in the DLQ: a later redrive replays it
					// again, which the consumers drop or repeat harmlessly.
					errs = append(errs, err)
				}
				res.Replayed++
			case o.DeleteUnreplayable:
				if err := t.delete(ctx, fromURL, m); err != nil {
					errs = append(errs, err)
					keep(m)
					continue
				}
				res.Deleted++
			default:
				keep(m)
			}
		}
		if fresh == 0 {
			break
		}
	}
	errs = append(errs, t.release(ctx, fromURL, hold))
	return res, errors.Join(errs...)
}

func (t *Tool) delete(ctx context.Context, queueURL string, m Message) error {
	if _, err := t.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: aws.String(m.receipt)}); err != nil {
		return fmt.Errorf("sqs.DeleteMessage %s: %w", m.ID, err)
	}
	return nil
}
