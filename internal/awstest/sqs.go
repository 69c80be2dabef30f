package awstest

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// CreateQueue creates a uniquely named standard queue on the emulator and
// deletes it when the test ends. It returns the queue's URL and ARN.
func CreateQueue(t testing.TB, cfg aws.Config) (url, queueARN string) {
	t.Helper()
	client := sqs.NewFromConfig(cfg)
	ctx := context.Background()
	name := Unique(t, "q")
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatalf("sqs.CreateQueue %s: %v", name, err)
	}
	url = aws.ToString(out.QueueUrl)
	t.Cleanup(func() {
		if _, err := client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: aws.String(url)}); err != nil {
			t.Logf("sqs.DeleteQueue %s: %v", url, err)
		}
	})
	attrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatalf("sqs.GetQueueAttributes %s: %v", url, err)
	}
	return url, attrs.Attributes[string(types.QueueAttributeNameQueueArn)]
}
