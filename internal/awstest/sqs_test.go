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
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

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
	// A short visibility timeout, so the failed message comes back soon.
	if _, err := client.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl: aws.String(url), Attributes: map[string]string{"VisibilityTimeout": "2"},
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

	// After the visibility timeout it is delivered again, and now deleted.
	var again []events.SQSMessage
	n, err = emulator.PumpSQS(ctx, client, url, func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		again = append(again, ev.Records...)
		return events.SQSEventResponse{}, nil
	}, 3*time.Second)
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

func TestPumpSQSHonoursDelay(t *testing.T) {
	t.Parallel()
	cfg := awstest.Config(t)
	client := sqs.NewFromConfig(cfg)
	ctx := context.Background()
	url, _ := awstest.CreateQueue(t, cfg)
	sent := time.Now()
	send(t, client, url, "later", 2, nil)
	handle := func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		return events.SQSEventResponse{}, nil
	}
	n, err := emulator.PumpSQS(ctx, client, url, handle, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 && time.Since(sent) < 2*time.Second {
		t.Fatalf("a 2-s delayed message was delivered after %v", time.Since(sent))
	}
	if _, _, delayed := queueCounts(t, client, url); delayed != "1" && time.Since(sent) < 2*time.Second {
		t.Errorf("ApproximateNumberOfMessagesDelayed = %s, want 1", delayed)
	}
	n, err = emulator.PumpSQS(ctx, client, url, handle, 3*time.Second)
	if err != nil || n != 1 {
		t.Fatalf("PumpSQS after the delay = %d, %v; want 1", n, err)
	}
	if took := time.Since(sent); took < 2*time.Second {
		t.Errorf("delivered %v after sending with a 2-s delay", took)
	}
}

func TestPumpSQSStopsOnContext(t *testing.T) {
	t.Parallel()
	cfg := awstest.Config(t)
	client := sqs.NewFromConfig(cfg)
	url, _ := awstest.CreateQueue(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := emulator.PumpSQS(ctx, client, url, func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
		return events.SQSEventResponse{}, nil
	}, time.Minute)
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("PumpSQS = %v after %v, want the context's error promptly", err, time.Since(start))
	}
}
