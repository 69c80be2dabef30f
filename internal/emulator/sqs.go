package emulator

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// PumpSQS delivers the queue to handle (a Lambda handler of SQS batches
// with partial batch responses, ReportBatchItemFailures, as the dispatch
// function has) as the Lambda SQS event source mapping would, until the queue yields nothing for wait.
//
// Each round receives up to 10 messages (all system and message
// attributes), builds one events.SQSEvent of them (messageId,
// receiptHandle, body, md5OfBody, attributes, messageAttributes,
// eventSource "aws:sqs", eventSourceARN, awsRegion), calls handle, and
// deletes every message not listed in the response's BatchItemFailures.
// Listed ones are left alone: they reappear after the queue's visibility
// timeout (30 s by default), as on AWS. delivered counts the messages
// handed to handle, a redelivered message once per delivery.
//
// A handler error fails the whole batch on AWS (nothing is deleted); here
// nothing is deleted either and PumpSQS returns the error at once, and so
// it does for a BatchItemFailures entry naming no message of the batch
// (AWS would then retry the whole batch).
//
// Messages sent with DelaySeconds are invisible until their delay has
// passed: moto honours DelaySeconds (and visibility timeouts) in real time,
// so a test that sends a 1-second delay must pump with wait > 1 s. Polls are
// long polls of at most the time left of wait (a short poll when under a
// second); on AWS, unlike moto, a short poll may miss messages.
func PumpSQS(ctx context.Context, client *sqs.Client, queueURL string, handle func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error), wait time.Duration) (delivered int, err error) {
	queueARN, region, err := queueIdentity(ctx, client, queueURL)
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(wait)
	for {
		if err := ctx.Err(); err != nil {
			return delivered, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return delivered, nil
		}
		waitSeconds := min(int32(left/time.Second), 20)
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(queueURL),
			MaxNumberOfMessages:         10,
			WaitTimeSeconds:             waitSeconds,
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		if err != nil {
			return delivered, fmt.Errorf("sqs.ReceiveMessage: %w", err)
		}
		if len(out.Messages) == 0 {
			if waitSeconds == 0 {
				pause := min(100*time.Millisecond, left)
				select {
				case <-time.After(pause):
				case <-ctx.Done():
					return delivered, ctx.Err()
				}
			}
			continue
		}
		ev := SQSEventOf(out.Messages, queueARN, region)
		delivered += len(ev.Records)
		res, err := handle(ctx, ev)
		if err != nil {
			return delivered, fmt.Errorf("emulator.PumpSQS: handler failed the batch (nothing deleted): %w", err)
		}
		failed := map[string]bool{}
		for _, f := range res.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		var entries []types.DeleteMessageBatchRequestEntry
		for i, m := range out.Messages {
			id := aws.ToString(m.MessageId)
			if failed[id] {
				delete(failed, id)
				continue
			}
			entries = append(entries, types.DeleteMessageBatchRequestEntry{
				Id:            aws.String(fmt.Sprintf("m%d", i)),
				ReceiptHandle: m.ReceiptHandle,
			})
		}
		if len(failed) > 0 {
			// Ids listed but not in the batch: AWS retries the whole batch.
			var unknown []string
			for id := range failed {
				unknown = append(unknown, id)
			}
			return delivered, fmt.Errorf("emulator.PumpSQS: BatchItemFailures name messages not in the batch %q: Lambda would fail the whole batch", unknown)
		}
		if len(entries) > 0 {
			del, err := client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(queueURL), Entries: entries})
			if err != nil {
				return delivered, fmt.Errorf("sqs.DeleteMessageBatch: %w", err)
			}
			if len(del.Failed) > 0 {
				return delivered, fmt.Errorf("sqs.DeleteMessageBatch: %d failed, first: %s", len(del.Failed), aws.ToString(del.Failed[0].Message))
			}
		}
		deadline = time.Now().Add(wait)
	}
}

// SQSEventOf is the Lambda event the SQS event source mapping builds of
// received messages: queueARN is the eventSourceARN, region the awsRegion.
func SQSEventOf(msgs []types.Message, queueARN, region string) events.SQSEvent {
	ev := events.SQSEvent{Records: make([]events.SQSMessage, 0, len(msgs))}
	for _, m := range msgs {
		rec := events.SQSMessage{
			MessageId:              aws.ToString(m.MessageId),
			ReceiptHandle:          aws.ToString(m.ReceiptHandle),
			Body:                   aws.ToString(m.Body),
			Md5OfBody:              aws.ToString(m.MD5OfBody),
			Md5OfMessageAttributes: aws.ToString(m.MD5OfMessageAttributes),
			Attributes:             map[string]string{},
			MessageAttributes:      map[string]events.SQSMessageAttribute{},
			EventSource:            "aws:sqs",
			EventSourceARN:         queueARN,
			AWSRegion:              region,
		}
		for k, v := range m.Attributes {
			rec.Attributes[k] = v
		}
		for k, v := range m.MessageAttributes {
			rec.MessageAttributes[k] = events.SQSMessageAttribute{
				StringValue:      v.StringValue,
				BinaryValue:      v.BinaryValue,
				StringListValues: v.StringListValues,
				BinaryListValues: v.BinaryListValues,
				DataType:         aws.ToString(v.DataType),
			}
		}
		ev.Records = append(ev.Records, rec)
	}
	return ev
}

func queueIdentity(ctx context.Context, client *sqs.Client, queueURL string) (queueARN, region string, err error) {
	attrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(queueURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", "", fmt.Errorf("sqs.GetQueueAttributes: %w", err)
	}
	queueARN = attrs.Attributes[string(types.QueueAttributeNameQueueArn)]
	a, err := arn.Parse(queueARN)
	if err != nil {
		return "", "", fmt.Errorf("arn.Parse %q: %w", queueARN, err)
	}
	return queueARN, a.Region, nil
}
