package awstest_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/dispatcherhq/dispatcher/internal/awstest"
	"github.com/dispatcherhq/dispatcher/internal/emulator"
)

func region() string {
	if r := os.Getenv("AWS_REGION"); r != "" {
		return r
	}
	return awstest.Region
}

// queueCounts returns (visible, in flight, delayed) messages of the queue.
func queueCounts(t *testing.T, client *sqs.Client, url string) (visible, inFlight, delayed string) {
	t.Helper()
	out, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	a := out.Attributes
	return a["ApproximateNumberOfMessages"], a["ApproximateNumberOfMessagesNotVisible"], a["ApproximateNumberOfMessagesDelayed"]
}

func send(t *testing.T, client *sqs.Client, url, body string, delay int32, attrs map[string]types.MessageAttributeValue) string {
	t.Helper()
	out, err := client.SendMessage(context.Background(), &sqs.SendMessageInput{
		QueueUrl: aws.String(url), MessageBody: aws.String(body), DelaySeconds: delay, MessageAttributes: attrs,
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.MessageId)
}

func TestCreateQueue(t *testing.T) {
	t.Parallel()
	cfg := awstest.Config(t)
	url, arn := awstest.CreateQueue(t, cfg)
	name := url[strings.LastIndex(url, "/")+1:]
	if !strings.HasPrefix(arn, "arn:aws:sqs:"+region()+":") || !strings.HasSuffix(arn, ":"+name) {
		t.Errorf("queue %s has ARN %q", url, arn)
	}
	url2, _ := awstest.CreateQueue(t, cfg)
	if url2 == url {
		t.Errorf("two queues share %s", url)
	}
}

func TestPumpSQSPartialBatch(t *testing.T) {
	t.Parallel()
	cfg := awstest.Config(t)
	client := sqs.NewFromConfig(cfg)
	ctx := context.Background()
	url, arn := awstest.CreateQueue(t, cfg)
	// The longest visibility timeout (12 h): a failed message stays in
	// flight however slow the test is, until the test ends its timeout.
	if _, err := client.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl: aws.String(url), Attributes: map[string]string{"VisibilityTimeout": "43200"},
	}); err != nil {
		t.Fatal(err)
	}
	okA := send(t, client, url, `{"n": 1}`, 0, map[string]types.MessageAttributeValue{
		"kind": {DataType: aws.String("String"), StringValue: aws.String("fire")},
	})
	bad := send(t, client, url, `{"n": 2}`, 0, nil)
	okC := send(t, client, url, `{"n": 3}`, 0, nil)

	var seen []events.SQSMessage
	n, err := emulator.PumpSQS(ctx, client, url, func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		seen = append(seen, ev.Records...)
		var res events.SQSEventResponse
		for _, r := range ev.Records {
			if r.MessageId == bad {
				res.BatchItemFailures = append(res.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
			}
		}
		return res, nil
	}, 300*time.Millisecond)
	if err != nil || n != 3 {
		t.Fatalf("PumpSQS = %d, %v; want 3 delivered", n, err)
	}
	byID := map[string]events.SQSMessage{}
	for _, r := range seen {
		byID[r.MessageId] = r
		if r.EventSource != "aws:sqs" || r.EventSourceARN != arn || r.AWSRegion != region() || r.ReceiptHandle == "" || r.Md5OfBody == "" {
			t.Errorf("record %+v is not what the event source mapping builds", r)
		}
		for _, a := range []string{"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} {
			if r.Attributes[a] == "" {
				t.Errorf("record %s lacks attribute %s: %v", r.MessageId, a, r.Attributes)
			}
		}
	}
	if byID[okA].Body != `{"n": 1}` || byID[bad].Body != `{"n": 2}` || byID[okC].Body != `{"n": 3}` {
		t.Errorf("bodies not delivered verbatim: %+v", byID)
	}
	if a := byID[okA].MessageAttributes["kind"]; aws.ToString(a.StringValue) != "fire" || a.DataType != "String" {
		t.Errorf("message attribute kind = %+v", a)
	}
	// The successes are deleted; the failure is in flight, not deleted.
	if visible, inFlight, _ := queueCounts(t, client, url); visible != "0" || inFlight != "1" {
		t.Fatalf("after the batch: %s visible, %s in flight; want 0 and 1", visible, inFlight)
	}

	// When its visibility timeout ends (ended here at once, as
	// ChangeMessageVisibility to 0 does, instead of waiting for it) it is
	// delivered again, and now deleted.
	if _, err := client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(url), ReceiptHandle: aws.String(byID[bad].ReceiptHandle), VisibilityTimeout: 0,
	}); err != nil {
		t.Fatal(err)
	}
	var again []events.SQSMessage
	n, err = emulator.PumpSQS(ctx, client, url, func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		again = append(again, ev.Records...)
		return events.SQSEventResponse{}, nil
	}, time.Second)
	if err != nil || n != 1 || len(again) != 1 || again[0].MessageId != bad {
		t.Fatalf("second pump = %d, %v, %+v; want the failed message again", n, err, again)
	}
	if rc := again[0].Attributes["ApproximateReceiveCount"]; rc != "2" {
		t.Errorf("ApproximateReceiveCount = %s, want 2", rc)
	}
	if visible, inFlight, _ := queueCounts(t, client, url); visible != "0" || inFlight != "0" {
		t.Fatalf("at the end: %s visible, %s in flight; want an empty queue", visible, inFlight)
	}
}

func TestPumpSQSHandlerErrorFailsTheBatch(t *testing.T) {
	t.Parallel()
	cfg := awstest.Config(t)
	client := sqs.NewFromConfig(cfg)
	ctx := context.Background()
	url, _ := awstest.CreateQueue(t, cfg)
	send(t, client, url, "a", 0, nil)
	send(t, client, url, "b", 0, nil)
	boom := errors.New("boom")
	_, err := emulator.PumpSQS(ctx, client, url, func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
		return events.SQSEventResponse{}, boom
	}, 300*time.Millisecond)
	if !errors.Is(err, boom) {
		t.Fatalf("PumpSQS = %v, want the handler's error", err)
	}
	if visible, inFlight, _ := queueCounts(t, client, url); visible != "0" || inFlight == "0" {
		t.Errorf("%s visible, %s in flight; want nothing deleted", visible, inFlight)
	}

	url2, _ := awstest.CreateQueue(t, cfg)
	send(t, client, url2, "c", 0, nil)
	_, err = emulator.PumpSQS(ctx, client, url2, func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
		return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: "not-in-batch"}}}, nil
	}, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "not-in-batch") {
		t.Fatalf("PumpSQS = %v, want an error naming the unknown item", err)
	}
	if _, inFlight, _ := queueCounts(t, client, url2); inFlight != "1" {
		t.Errorf("%s in flight, want the message kept", inFlight)
	}
}

// TestPumpSQSLeavesDelayedMessages: a message sent with DelaySeconds is
// not delivered before its delay; one without is. The delay is SQS's
// longest (15 minutes), so no assertion depends on how fast the test runs.
func TestPumpSQSLeavesDelayedMessages(t *testing.T) {
	t.Parallel()
	cfg := awstest.Config(t)
	client := sqs.NewFromConfig(cfg)
	ctx := context.Background()
	url, _ := awstest.CreateQueue(t, cfg)
	send(t, client, url, "later", 900, nil)
	now := send(t, client, url, "now", 0, nil)
	var got []events.SQSMessage
	n, err := emulator.PumpSQS(ctx, client, url, func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		got = append(got, ev.Records...)
		return events.SQSEventResponse{}, nil
	}, 300*time.Millisecond)
	if err != nil || n != 1 || len(got) != 1 || got[0].MessageId != now {
		t.Fatalf("PumpSQS = %d, %v, %+v; want the undelayed message only", n, err, got)
	}
	if visible, inFlight, delayed := queueCounts(t, client, url); visible != "0" || inFlight != "0" || delayed != "1" {
		t.Errorf("%s visible, %s in flight, %s delayed; want the delayed message held", visible, inFlight, delayed)
	}
}

// TestPumpSQSStopsOnContext: PumpSQS returns the context's error as soon as
// the context ends, instead of polling out its wait (an hour here: a
// PumpSQS that ignored the context would hang this test, never pass it).
// The context is cancelled by the client itself, right after the first
// batch is deleted.
func TestPumpSQSStopsOnContext(t *testing.T) {
	t.Parallel()
	cfg := awstest.Config(t)
	url, _ := awstest.CreateQueue(t, cfg)
	send(t, sqs.NewFromConfig(cfg), url, "one", 0, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.APIOptions = append(cfg.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("test.cancelAfterDelete",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				if awsmiddleware.GetOperationName(ctx) == "DeleteMessageBatch" {
					cancel()
				}
				return out, md, err
			}), middleware.After)
	})
	n, err := emulator.PumpSQS(ctx, sqs.NewFromConfig(cfg), url, func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
		return events.SQSEventResponse{}, nil
	}, time.Hour)
	if n != 1 || !errors.Is(err, context.Canceled) {
		t.Fatalf("PumpSQS = %d, %v; want 1 delivered, then context.Canceled", n, err)
	}
}
