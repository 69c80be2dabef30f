package lambdafn

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
)

// WebhookEngine makes webhook fires' work; *webhooks.Engine is one.
type WebhookEngine interface {
	HandleFire(ctx context.Context, f comms.Fire) error
}

var _ WebhookEngine = (*webhooks.Engine)(nil)

// WebhookOptions tune the webhooks function's handler.
type WebhookOptions struct {
	// Timer arms the fan-out fires (the webhook queue). Required.
	Timer comms.Timer
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Settle is how long after a stream record its company's fan-out
	// fire is due: the feed returns an event only once it is
	// dynamo.FeedSettle old, so a fan-out sooner would find nothing.
	// Default dynamo.FeedSettle + 1 s.
	Settle time.Duration
}

// withDefaults fills Now and Settle.
func (o WebhookOptions) withDefaults() WebhookOptions {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Settle == 0 {
		o.Settle = dynamo.FeedSettle + time.Second
	}
	return o
}

// Webhooks returns the webhooks function's handler. The raw event is
// either
//
//   - a DynamoDB stream batch (records with eventSource "aws:dynamodb"):
//     the inserts of event items, let through by dynamo.EventStreamFilter.
//     Each company named arms one fan-out fire (webhooks.FanOutFire), due
//     once its events have settled in the feed; the fan-out follows the
//     company's cursor, so one fire covers every event before it and a
//     duplicate fire writes nothing twice. When arming fails for a
//     company, the lowest sequence number of its records is reported as
//     the batch item failure: Lambda retries the batch from there (a
//     record is retried until it expires from the stream after 24 hours;
//     then the event source's on-failure destination, the fan-out DLQ,
//     gets it). Records that are not event inserts are skipped.
//   - an SQS batch (eventSource "aws:sqs") of webhook fires from the
//     webhook queue: every fire is handled at once, each on its own
//     goroutine (a slow receiver holds only its own message), and those
//     that failed (store errors) are reported as batch item failures. A
//     body that is not a fire is logged and dropped.
func Webhooks(eng WebhookEngine, o WebhookOptions, log *slog.Logger) func(ctx context.Context, raw json.RawMessage) (any, error) {
	o = o.withDefaults()
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		var probe struct {
			Records []struct {
				EventSource string `json:"eventSource"`
			} `json:"Records"`
		}
		if err := json.Unmarshal(raw, &probe); err != nil || len(probe.Records) == 0 {
			log.ErrorContext(ctx, "webhooks invocation is neither a DynamoDB stream batch nor an SQS batch; dropped")
			return nil, nil
		}
		if probe.Records[0].EventSource == "aws:dynamodb" {
			var ev events.DynamoDBEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				log.ErrorContext(ctx, "DynamoDB stream event does not decode; dropped", "error", err.Error())
				return events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{}}, nil
			}
			return WebhookStream(ctx, o, log, ev), nil
		}
		var ev events.SQSEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			log.ErrorContext(ctx, "SQS event does not decode; dropped", "error", err.Error())
			return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}, nil
		}
		return WebhookFires(ctx, eng, log, ev), nil
	}
}

// WebhookStream arms the fan-out of every company a stream batch names
// and returns the partial batch response (see Webhooks; o's zero fields
// take their defaults here too).
func WebhookStream(ctx context.Context, o WebhookOptions, log *slog.Logger, ev events.DynamoDBEvent) events.DynamoDBEventResponse {
	o = o.withDefaults()
	res := events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{}}
	first := map[string]string{} // company → sequence number of its first record
	var order []string
	for _, r := range ev.Records {
		if r.EventName != "INSERT" {
			continue
		}
		pk, sk := r.Change.Keys[dynamo.AttrPK], r.Change.Keys[dynamo.AttrSK]
		if pk.DataType() != events.DataTypeString || sk.DataType() != events.DataTypeString {
			continue
		}
		company, ok := dynamo.EventItemCompany(pk.String(), sk.String())
		if !ok {
			continue
		}
		if _, seen := first[company]; !seen {
			first[company] = r.Change.SequenceNumber
			order = append(order, company)
		}
	}
	due := o.Now().Add(o.Settle)
	failed := ""
	for _, company := range order {
		f := webhooks.FanOutFire(company, first[company], due)
		if err := o.Timer.Arm(ctx, f, due); err != nil {
			log.WarnContext(ctx, "webhook fan-out not armed; the stream will deliver the record again", "company_id", company,
				"sequence_number", first[company], "error", err.Error())
			if failed == "" || lessSeq(first[company], failed) {
				failed = first[company]
			}
		}
	}
	if failed != "" {
		res.BatchItemFailures = append(res.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: failed})
	}
	return res
}

// lessSeq orders DynamoDB stream sequence numbers: decimal strings of up
// to 40 digits, compared as numbers.
func lessSeq(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// WebhookFires handles an SQS batch of webhook fires concurrently and
// returns the partial batch response.
func WebhookFires(ctx context.Context, eng WebhookEngine, log *slog.Logger, ev events.SQSEvent) events.SQSEventResponse {
	res := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, rec := range ev.Records {
		f, err := DecodeFire([]byte(rec.Body))
		if err != nil {
			log.ErrorContext(ctx, "SQS message is not a fire; dropped", "message_id", rec.MessageId, "error", err.Error())
			continue
		}
		wg.Go(func() {
			if err := eng.HandleFire(ctx, f); err != nil {
				log.WarnContext(ctx, "webhook fire failed; SQS will redeliver it", "message_id", rec.MessageId,
					"kind", f.Kind, "company_id", f.CompanyID, "webhook_id", f.Token, "error", err.Error())
				mu.Lock()
				res.BatchItemFailures = append(res.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return res
}
