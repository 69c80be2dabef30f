package infra

import (
	"fmt"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// VisibilityTimeoutFactor is how many times the consumer's timeout the
// queue's visibility timeout is: AWS's guidance for Lambda event sources is
// at least six, so a batch retried after throttling is not redelivered
// while still in flight.
const VisibilityTimeoutFactor = 6

// DispatchQueueProps configures a DispatchQueue.
type DispatchQueueProps struct {
	// ConsumerTimeout is the timeout of the function consuming the queue
	// (1 s – 15 min); the visibility timeout is VisibilityTimeoutFactor
	// times it, at most 12 hours.
	ConsumerTimeout time.Duration
	// MaxReceiveCount is how often a message is received before it moves
	// to the DLQ (1–1000). Default 5.
	MaxReceiveCount int
	// RetentionPeriod is how long the queue keeps a message (1 minute –
	// 14 days, whole seconds). Default 4 days. The DLQ always keeps 14 days.
	RetentionPeriod time.Duration
}

// DispatchQueue is an SQS queue consumed by a Lambda function and the
// dead-letter queue behind it: the queue of near-term fires (SendMessage
// with DelaySeconds), and the queue of delivery feedback events. Both are
// encrypted with SSE-SQS and refuse non-TLS requests.
type DispatchQueue struct {
	// Construct is the scope holding the queues.
	Construct constructs.Construct
	// Queue receives fires.
	Queue awssqs.Queue
	// DLQ receives the fires that failed MaxReceiveCount times.
	DLQ awssqs.Queue
}

// NewDispatchQueue creates the queue and its DLQ.
func NewDispatchQueue(scope constructs.Construct, id string, props *DispatchQueueProps) (*DispatchQueue, error) {
	if props == nil {
		return nil, fmt.Errorf("infra.NewDispatchQueue: props are required")
	}
	if props.ConsumerTimeout < time.Second || props.ConsumerTimeout > 15*time.Minute || props.ConsumerTimeout%time.Second != 0 {
		return nil, fmt.Errorf("infra.NewDispatchQueue: ConsumerTimeout %v: want whole seconds from 1s to 15m", props.ConsumerTimeout)
	}
	maxReceive := props.MaxReceiveCount
	if maxReceive == 0 {
		maxReceive = 5
	}
	if maxReceive < 1 || maxReceive > 1000 {
		return nil, fmt.Errorf("infra.NewDispatchQueue: MaxReceiveCount %d: want 1-1000", maxReceive)
	}
	retention := props.RetentionPeriod
	if retention == 0 {
		retention = 4 * 24 * time.Hour
	}
	if retention < time.Minute || retention > 14*24*time.Hour || retention%time.Second != 0 {
		return nil, fmt.Errorf("infra.NewDispatchQueue: RetentionPeriod %v: want whole seconds from 1m to 14 days", retention)
	}
	visibility := VisibilityTimeoutFactor * props.ConsumerTimeout
	if visibility > 12*time.Hour {
		visibility = 12 * time.Hour
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	dlq := awssqs.NewQueue(c, jsii.String("DLQ"), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
	})
	q := awssqs.NewQueue(c, jsii.String("Queue"), &awssqs.QueueProps{
		Encryption:        awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:        jsii.Bool(true),
		VisibilityTimeout: awscdk.Duration_Seconds(jsii.Number(visibility.Seconds())),
		RetentionPeriod:   awscdk.Duration_Seconds(jsii.Number(retention.Seconds())),
		DeadLetterQueue: &awssqs.DeadLetterQueue{
			Queue:           dlq,
			MaxReceiveCount: jsii.Number(float64(maxReceive)),
		},
	})
	return &DispatchQueue{Construct: c, Queue: q, DLQ: dlq}, nil
}

// GrantSend lets grantee send fires to the queue (sqs:SendMessage only).
func (d *DispatchQueue) GrantSend(grantee awsiam.IGrantable) { d.GrantSendAs(grantee, "QueueSend") }

// GrantSendAs is GrantSend with the statement id sid (a role sending to two
// queues needs two ids).
func (d *DispatchQueue) GrantSendAs(grantee awsiam.IGrantable, sid string) {
	grantee.GrantPrincipal().AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String(sid),
		Actions:   jsii.Strings("sqs:SendMessage"),
		Resources: &[]*string{d.Queue.QueueArn()},
	}))
}
