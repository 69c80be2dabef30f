package dlq_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/dispatcherhq/dispatcher/internal/awstest"
	"github.com/dispatcherhq/dispatcher/internal/dlq"
)

const (
	fireBody    = `{"company_id":"acme","communication_id":"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","token":"5a3c9e1f0b7d2a4c6e8f0a1b"}`
	webhookFire = `{"kind":"webhook","company_id":"acme","communication_id":"d-1","token":"t1"}`
	// invokeFailed is Lambda's on-failure record of an async invoke.
	invokeFailed = `{"version":"1.0","timestamp":"2026-11-30T10:00:00.000Z","requestContext":{"requestId":"r-1",
"functionArn":"arn:aws:lambda:us-east-1:123456789012:function:dispatcher-dev-dispatch:$LATEST","condition":"RetriesExhausted",
"approximateInvokeCount":3},"requestPayload":{"company_id":"acme","communication_id":"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c","token":"abc"},
"responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},
"responsePayload":{"errorMessage":"dispatch.Handle: store unavailable","errorType":"wrapError"}}`
	sesEvent    = `{"version":"0","id":"e-1","detail-type":"Email Bounced","source":"aws.ses","detail":{"eventType":"Bounce"}}`
	streamBatch = `{"requestContext":null,"DDBStreamBatchInfo":{"shardId":"shardId-1","startSequenceNumber":"1","endSequenceNumber":"2","batchSize":2}}`
)

var schedulerAttrs = map[string]string{
	"ERROR_CODE":    "AWS.Lambda.TooManyRequestsException",
	"ERROR_MESSAGE": "Rate exceeded",
	"SCHEDULE_ARN":  "arn:aws:scheduler:us-east-1:123456789012:schedule/dispatcher-dev/c-1",
	"TARGET_ARN":    "arn:aws:lambda:us-east-1:123456789012:function:dispatcher-dev-dispatch",
}

// smsReportsFailed is Lambda's on-failure record of an events-function
// invocation by a CloudWatch Logs subscription (SMS delivery-status lines).
const smsReportsFailed = `{"version":"1.0","timestamp":"2026-12-01T07:00:00.000Z",
 "requestContext":{"requestId":"r-1","functionArn":"arn:aws:lambda:us-east-1:123456789012:function:dispatcher-dev-events:$LATEST","condition":"RetriesExhausted","approximateInvokeCount":3},
 "requestPayload":{"awslogs":{"data":"H4sIAAAAAAAA"}},
 "responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},
 "responsePayload":{"errorMessage":"lambdafn.Events: 1 of 1 SMS delivery reports not recorded","errorType":"wrapError"}}`

func TestClassify(t *testing.T) {
	t.Parallel()
	sweepAttrs := map[string]string{"ERROR_CODE": "AWS.Lambda.ServiceException", "TARGET_ARN": "arn:aws:lambda:us-east-1:123456789012:function:dispatcher-dev-sweeper"}
	for _, c := range []struct {
		name, body string
		attrs      map[string]string
		kind       dlq.Kind
		replay     string
		comm       string
		errPart    string
	}{
		{"dispatch queue DLQ", fireBody, nil, dlq.KindFire, fireBody, "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", ""},
		{"webhook DLQ", webhookFire, nil, dlq.KindFire, webhookFire, "d-1", ""},
		{"schedule undelivered", fireBody, schedulerAttrs, dlq.KindScheduleUndelivered, fireBody, "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "TooManyRequests"},
		{"invoke failed", invokeFailed, nil, dlq.KindInvokeFailed,
			`{"company_id":"acme","communication_id":"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c","token":"abc"}`, "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c", "RetriesExhausted after 3 invokes: wrapError: dispatch.Handle: store unavailable"},
		{"sweep undelivered", `{}`, sweepAttrs, dlq.KindSweepUndelivered, "", "", "ServiceException"},
		{"SES event", sesEvent, nil, dlq.KindSESEvent, sesEvent, "", ""},
		{"stream batch", streamBatch, nil, dlq.KindStreamBatch, "", "", ""},
		{"SMS reports the events function failed on", smsReportsFailed, nil, dlq.KindSMSReports, `{"awslogs":{"data":"H4sIAAAAAAAA"}}`, "", "RetriesExhausted after 3 invokes"},
		{"SMS reports redriven that failed again on the events queue", `{"awslogs":{"data":"H4sIAAAAAAAA"}}`, nil, dlq.KindSMSReports, `{"awslogs":{"data":"H4sIAAAAAAAA"}}`, "", ""},
		{"garbage", `not json`, nil, dlq.KindUnknown, "", "", ""},
	} {
		m := dlq.Classify(c.body, c.attrs)
		if m.Kind != c.kind || m.Replay != c.replay || m.Replayable != (c.replay != "") || !strings.Contains(m.Error, c.errPart) {
			t.Errorf("%s: kind %s replay %q error %q, want %s %q %q", c.name, m.Kind, m.Replay, m.Error, c.kind, c.replay, c.errPart)
		}
		if got := ""; m.Fire != nil {
			got = m.Fire.CommunicationID
			if got != c.comm {
				t.Errorf("%s: fire of %q, want %q", c.name, got, c.comm)
			}
		} else if c.comm != "" {
			t.Errorf("%s: no fire, want one of %s", c.name, c.comm)
		}
	}
}

// bundle is two queues on the emulator: a DLQ and a destination.
type bundle struct {
	sqs      *sqs.Client
	dlqURL   string
	destURL  string
	tool     *dlq.Tool
	bodySent map[string]string // body → kind, for reading back
}

func setup(t *testing.T) bundle {
	t.Helper()
	cfg := awstest.Config(t)
	b := bundle{sqs: sqs.NewFromConfig(cfg)}
	b.dlqURL, _ = awstest.CreateQueue(t, cfg)
	b.destURL, _ = awstest.CreateQueue(t, cfg)
	b.tool = dlq.New(b.sqs)
	return b
}

func (b bundle) put(t *testing.T, body string, attrs map[string]string) {
	t.Helper()
	in := &sqs.SendMessageInput{QueueUrl: aws.String(b.dlqURL), MessageBody: aws.String(body)}
	if len(attrs) > 0 {
		in.MessageAttributes = map[string]sqstypes.MessageAttributeValue{}
		for k, v := range attrs {
			in.MessageAttributes[k] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
		}
	}
	if _, err := b.sqs.SendMessage(context.Background(), in); err != nil {
		t.Fatal(err)
	}
}

// drain receives every message of a queue: bodies and their
// RedrivenFromAttribute.
func (b bundle) drain(t *testing.T, url string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for {
		out, err := b.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url),
			MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return got
		}
		for _, m := range out.Messages {
			from := ""
			if a, ok := m.MessageAttributes[dlq.RedrivenFromAttribute]; ok {
				from = aws.ToString(a.StringValue)
			}
			got[aws.ToString(m.Body)] = from
			_, _ = b.sqs.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
		}
	}
}

// TestEmulatorInspectDoesNotConsume: inspect lists every message with its
// kind, and leaves them all in the queue, visible.
func TestEmulatorInspectDoesNotConsume(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.put(t, fireBody, schedulerAttrs)
	b.put(t, invokeFailed, nil)
	b.put(t, `{}`, map[string]string{"ERROR_CODE": "AWS.Lambda.ServiceException"})
	for range 2 {
		msgs, err := b.tool.Inspect(ctx, b.dlqURL, 50)
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[dlq.Kind]int{}
		for _, m := range msgs {
			kinds[m.Kind]++
			if m.SentAt.IsZero() || m.ID == "" {
				t.Errorf("message without id or sent time: %+v", m)
			}
		}
		if len(msgs) != 3 || kinds[dlq.KindScheduleUndelivered] != 1 || kinds[dlq.KindInvokeFailed] != 1 || kinds[dlq.KindSweepUndelivered] != 1 {
			t.Fatalf("inspect: %d messages %v, want one of each kind", len(msgs), kinds)
		}
	}
	if msgs, err := b.tool.Inspect(ctx, b.dlqURL, 2); err != nil || len(msgs) != 2 {
		t.Errorf("inspect max 2: %d, %v", len(msgs), err)
	}
	if n := len(b.drain(t, b.dlqURL)); n != 3 {
		t.Errorf("after inspecting, %d messages are visible, want all 3", n)
	}
}

// TestEmulatorRedrive: the fires are replayed (a failed invoke as its fire
// alone), marked with the DLQ's name, and deleted; the undelivered sweep
// stays until asked to delete the unreplayable.
func TestEmulatorRedrive(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.put(t, fireBody, schedulerAttrs)
	b.put(t, invokeFailed, nil)
	b.put(t, `{}`, nil)
	res, err := b.tool.Redrive(ctx, b.dlqURL, b.destURL, dlq.RedriveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 2 || res.Kept != 1 || res.Deleted != 0 {
		t.Fatalf("redrive: %+v, want 2 replayed, 1 kept", res)
	}
	got := b.drain(t, b.destURL)
	from := b.dlqURL[strings.LastIndexByte(b.dlqURL, '/')+1:]
	var wantFire map[string]any
	_ = json.Unmarshal([]byte(`{"company_id":"acme","communication_id":"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c","token":"abc"}`), &wantFire)
	if len(got) != 2 || got[fireBody] != from {
		t.Errorf("destination got %v, want the fire and the failed invoke's fire, from %s", got, from)
	}
	for body := range got {
		if strings.Contains(body, "requestContext") {
			t.Errorf("the failed invoke's envelope was replayed: %s", body)
		}
	}
	msgs, err := b.tool.Inspect(ctx, b.dlqURL, 10)
	if err != nil || len(msgs) != 1 || msgs[0].Kind != dlq.KindSweepUndelivered {
		t.Fatalf("left in the DLQ: %+v, %v; want the undelivered sweep", msgs, err)
	}
	res, err = b.tool.Redrive(ctx, b.dlqURL, b.destURL, dlq.RedriveOptions{DeleteUnreplayable: true})
	if err != nil || res.Deleted != 1 || res.Replayed != 0 {
		t.Fatalf("redrive deleting the unreplayable: %+v, %v", res, err)
	}
	if n := len(b.drain(t, b.dlqURL)); n != 0 {
		t.Errorf("%d messages left in the DLQ, want none", n)
	}
}

// TestEmulatorRedriveMaxAndKinds: Max bounds the messages looked at, Kinds
// the ones replayed.
func TestEmulatorRedriveMaxAndKinds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for range 3 {
		b.put(t, fireBody, nil)
	}
	b.put(t, sesEvent, nil)
	res, err := b.tool.Redrive(ctx, b.dlqURL, b.destURL, dlq.RedriveOptions{Kinds: []dlq.Kind{dlq.KindSESEvent}})
	if err != nil || res.Replayed != 1 || res.Kept != 3 {
		t.Fatalf("SES events only: %+v, %v", res, err)
	}
	res, err = b.tool.Redrive(ctx, b.dlqURL, b.destURL, dlq.RedriveOptions{Max: 2})
	if err != nil || res.Replayed != 2 {
		t.Fatalf("max 2: %+v, %v", res, err)
	}
	if n := len(b.drain(t, b.dlqURL)); n != 1 {
		t.Errorf("%d left, want 1", n)
	}
}
