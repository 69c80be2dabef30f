package infra

import (
	"fmt"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogsdestinations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsses"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/aws-cdk-go/awscdk/v2/customresources"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Delivery feedback: what SES and SNS report after the hand-off reaches the
// events function (functions/events), which records it on the rows
// (internal/feedback).
//
// Email: the configuration set publishes its events to EventBridge, not to
// an SNS topic. EventBridge because
//   - there is no topic to create, encrypt and lock down (cdk-nag asks an
//     SNS topic for SSE-KMS and a TLS-only policy; a KMS-encrypted topic
//     also needs a key policy for SES);
//   - the rule filters on the configuration set's name (SES tags every
//     event with ses:configuration-set), so another stage's or another
//     application's mail on the same account never reaches this stage;
//   - the SES event arrives as the EventBridge event's `detail`, unwrapped
//     (no SNS envelope with the event JSON-encoded in `Message`);
//   - what EventBridge cannot deliver to the queue lands on the target's own
//     dead-letter queue (with a retry policy), alarmed; and
//   - there is no extra hop: SES → default bus → rule → SQS.
// SES publishes only to the default event bus.
//
// SMS: SNS writes a delivery-status log line per SMS to CloudWatch Logs
// (once an account-wide role is set with SetSMSAttributes); a subscription
// filter on each of its two log groups sends them to the events function.

// SESFeedbackEvents are the SES event types the configuration set always
// publishes.
var SESFeedbackEvents = []awsses.EmailSendingEvent{
	awsses.EmailSendingEvent_SEND, awsses.EmailSendingEvent_DELIVERY, awsses.EmailSendingEvent_BOUNCE,
	awsses.EmailSendingEvent_COMPLAINT, awsses.EmailSendingEvent_REJECT,
	awsses.EmailSendingEvent_DELIVERY_DELAY, awsses.EmailSendingEvent_RENDERING_FAILURE,
}

// SESEngagementEvents are published only with TrackOpensAndClicks.
var SESEngagementEvents = []awsses.EmailSendingEvent{awsses.EmailSendingEvent_OPEN, awsses.EmailSendingEvent_CLICK}

// sesDetailTypes is the EventBridge detail-type of each SES event type
// (EventBridge events reference, "Amazon SES events").
var sesDetailTypes = map[awsses.EmailSendingEvent]string{
	awsses.EmailSendingEvent_SEND:              "Email Sent",
	awsses.EmailSendingEvent_DELIVERY:          "Email Delivered",
	awsses.EmailSendingEvent_BOUNCE:            "Email Bounced",
	awsses.EmailSendingEvent_COMPLAINT:         "Email Complaint Received",
	awsses.EmailSendingEvent_REJECT:            "Email Rejected",
	awsses.EmailSendingEvent_DELIVERY_DELAY:    "Email Delivery Delayed",
	awsses.EmailSendingEvent_RENDERING_FAILURE: "Email Rendering Failed",
	awsses.EmailSendingEvent_OPEN:              "Email Opened",
	awsses.EmailSendingEvent_CLICK:             "Email Clicked",
}

// SESConfigurationSetTag is the tag SES puts on every event of mail sent
// through a configuration set (detail.mail.tags), whose value is the set's
// name.
const SESConfigurationSetTag = "ses:configuration-set"

// EventsBatchSize is how many SQS messages one events invocation gets.
const EventsBatchSize = 10

// Retries of the EventBridge rule's target: how often and for how long
// EventBridge retries a failed SendMessage before the event goes to the
// target's dead-letter queue.
const (
	FeedbackTargetRetries = 8
	FeedbackTargetMaxAge  = 6 * time.Hour
)

// DeliveryFeedbackProps configures DeliveryFeedback.
type DeliveryFeedbackProps struct {
	// ConfigurationSet is the SES configuration set mail is sent through
	// (created by the stack or imported by name). Required.
	ConfigurationSet awsses.IConfigurationSet
	// ConfigurationSetName is its name (a literal or a token). Required.
	ConfigurationSetName *string
	// TrackOpensAndClicks also publishes OPEN and CLICK events.
	TrackOpensAndClicks bool
	// ConsumerTimeout is the events function's timeout (it sets the
	// queue's visibility timeout).
	ConsumerTimeout time.Duration
}

// DeliveryFeedback is the SES side of delivery feedback: the
// configuration set's EventBridge event destination, the rule on the
// default bus, the events queue with its DLQ, and the rule target's DLQ.
type DeliveryFeedback struct {
	// Construct is the scope holding the resources.
	Construct constructs.Construct
	// EventDestination publishes the configuration set's events to the
	// default event bus.
	EventDestination awsses.ConfigurationSetEventDestination
	// Events are the SES event types published.
	Events []awsses.EmailSendingEvent
	// Rule sends this configuration set's events to Queue.
	Rule awsevents.Rule
	// Queue (and Queue.DLQ) feed the events function.
	Queue *DispatchQueue
	// TargetDLQ receives the events EventBridge could not send to the queue.
	TargetDLQ awssqs.Queue
}

// NewDeliveryFeedback creates the event destination, the rule and the
// queues.
func NewDeliveryFeedback(scope constructs.Construct, id string, props *DeliveryFeedbackProps) (*DeliveryFeedback, error) {
	if props == nil || props.ConfigurationSet == nil || props.ConfigurationSetName == nil {
		return nil, fmt.Errorf("infra.NewDeliveryFeedback: ConfigurationSet and ConfigurationSetName are required")
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	d := &DeliveryFeedback{Construct: c}
	d.Events = append([]awsses.EmailSendingEvent(nil), SESFeedbackEvents...)
	if props.TrackOpensAndClicks {
		d.Events = append(d.Events, SESEngagementEvents...)
	}
	defaultBus := awsevents.EventBus_FromEventBusName(c, jsii.String("DefaultBus"), jsii.String("default"))
	d.EventDestination = awsses.NewConfigurationSetEventDestination(c, jsii.String("EventDestination"), &awsses.ConfigurationSetEventDestinationProps{
		ConfigurationSet: props.ConfigurationSet,
		Destination:      awsses.EventDestination_EventBus(defaultBus),
		Events:           &d.Events,
		Enabled:          jsii.Bool(true),
	})

	var err error
	if d.Queue, err = NewDispatchQueue(c, "Queue", &DispatchQueueProps{
		ConsumerTimeout: props.ConsumerTimeout,
		RetentionPeriod: 14 * 24 * time.Hour,
	}); err != nil {
		return nil, err
	}
	d.TargetDLQ = awssqs.NewQueue(c, jsii.String("TargetDLQ"), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
	})
	detailTypes := make([]*string, len(d.Events))
	for i, e := range d.Events {
		detailTypes[i] = jsii.String(sesDetailTypes[e])
	}
	d.Rule = awsevents.NewRule(c, jsii.String("Rule"), &awsevents.RuleProps{
		Description: jsii.String("SES events of this stage's configuration set, to the events queue."),
		EventPattern: &awsevents.EventPattern{
			Source:     jsii.Strings("aws.ses"),
			DetailType: &detailTypes,
			Detail: &map[string]interface{}{
				"mail": map[string]interface{}{
					"tags": map[string]interface{}{
						SESConfigurationSetTag: []*string{props.ConfigurationSetName},
					},
				},
			},
		},
	})
	d.Rule.AddTarget(awseventstargets.NewSqsQueue(d.Queue.Queue, &awseventstargets.SqsQueueProps{
		DeadLetterQueue: d.TargetDLQ,
		RetryAttempts:   jsii.Number(FeedbackTargetRetries),
		MaxEventAge:     awscdk.Duration_Seconds(jsii.Number(FeedbackTargetMaxAge.Seconds())),
	}))
	return d, nil
}

// Consume makes fn the consumer of the events queue: batches of
// EventsBatchSize, partial batch failures.
func (d *DeliveryFeedback) Consume(fn awslambda.IFunction) awslambdaeventsources.SqsEventSource {
	src := awslambdaeventsources.NewSqsEventSource(d.Queue.Queue, &awslambdaeventsources.SqsEventSourceProps{
		BatchSize:               jsii.Number(EventsBatchSize),
		ReportBatchItemFailures: jsii.Bool(true),
	})
	fn.AddEventSource(src)
	return src
}

// SMS delivery status.

// SMSDeliveryStatusLogGroups are the names (after sns/<region>/<account>/)
// of the log groups SNS writes SMS delivery status to: successes, then
// failures.
var SMSDeliveryStatusLogGroups = []string{"DirectPublishToPhoneNumber", "DirectPublishToPhoneNumber/Failure"}

// SMSSuccessSamplingRate is the percentage of successful SMS deliveries SNS
// logs: all of them, so every row gets its delivered status.
const SMSSuccessSamplingRate = "100"

// smsDeliveryStatusActions are what SNS needs to write delivery status
// logs (SNS developer guide, SMS delivery status prerequisites).
var smsDeliveryStatusActions = []string{
	"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
	"logs:PutMetricFilter", "logs:PutRetentionPolicy",
}

// SMSDeliveryStatusProps configures SMSDeliveryStatus.
type SMSDeliveryStatusProps struct {
	// Function receives the delivery-status log events. Required.
	Function awslambda.IFunction
	// LogRetention is the log groups' retention (and the custom resource
	// provider's). Required.
	LogRetention awslogs.RetentionDays
	// Retain keeps the log groups when the stack is deleted.
	Retain bool
}

// SMSDeliveryStatus turns on SNS SMS delivery-status logging for the
// account and region and forwards the logs to the events function: the
// role SNS assumes, the custom resource that sets it with
// SetSMSAttributes (account-wide: see docs/deploy.md), the two log groups
// and a subscription filter on each.
type SMSDeliveryStatus struct {
	// Construct is the scope holding the resources.
	Construct constructs.Construct
	// Role is the role SNS assumes to write the logs.
	Role awsiam.Role
	// LogGroups are the success and failure log groups, in the order of
	// SMSDeliveryStatusLogGroups.
	LogGroups []awslogs.LogGroup
	// Filters forward each log group to the function.
	Filters []awslogs.SubscriptionFilter
	// Setting is the custom resource calling SNS SetSMSAttributes.
	Setting customresources.AwsCustomResource
	// ProviderRole is the execution role of the custom resource's function.
	ProviderRole awsiam.Role
}

// NewSMSDeliveryStatus creates the role, the log groups, the subscription
// filters and the SetSMSAttributes custom resource.
func NewSMSDeliveryStatus(scope constructs.Construct, id string, props *SMSDeliveryStatusProps) (*SMSDeliveryStatus, error) {
	if props == nil || props.Function == nil || props.LogRetention == "" {
		return nil, fmt.Errorf("infra.NewSMSDeliveryStatus: Function and LogRetention are required")
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	stack := awscdk.Stack_Of(c)
	removal := awscdk.RemovalPolicy_DESTROY
	if props.Retain {
		removal = awscdk.RemovalPolicy_RETAIN
	}
	s := &SMSDeliveryStatus{Construct: c}
	for i, name := range SMSDeliveryStatusLogGroups {
		suffix := []string{"Success", "Failure"}[i]
		lg := awslogs.NewLogGroup(c, jsii.String(suffix+"Logs"), &awslogs.LogGroupProps{
			LogGroupName: awscdk.Fn_Join(jsii.String(""), &[]*string{
				jsii.String("sns/"), stack.Region(), jsii.String("/"), stack.Account(), jsii.String("/" + name),
			}),
			Retention:     props.LogRetention,
			RemovalPolicy: removal,
		})
		s.LogGroups = append(s.LogGroups, lg)
		s.Filters = append(s.Filters, awslogs.NewSubscriptionFilter(c, jsii.String(suffix+"ToEvents"), &awslogs.SubscriptionFilterProps{
			LogGroup:      lg,
			Destination:   awslogsdestinations.NewLambdaDestination(props.Function, nil),
			FilterPattern: awslogs.FilterPattern_AllEvents(),
		}))
	}
	arns := make([]*string, len(s.LogGroups))
	for i, lg := range s.LogGroups {
		arns[i] = lg.LogGroupArn()
	}
	s.Role = awsiam.NewRole(c, jsii.String("Role"), &awsiam.RoleProps{
		Description: jsii.String("Assumed by SNS to write SMS delivery-status logs to CloudWatch Logs."),
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("sns.amazonaws.com"), nil),
		InlinePolicies: &map[string]awsiam.PolicyDocument{
			"DeliveryStatusLogs": awsiam.NewPolicyDocument(&awsiam.PolicyDocumentProps{
				Statements: &[]awsiam.PolicyStatement{awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
					Sid:       jsii.String("DeliveryStatusLogs"),
					Actions:   jsii.Strings(smsDeliveryStatusActions...),
					Resources: &arns,
				})},
			}),
		},
	})

	// The custom resource's function gets its own role and log group (the
	// default role carries the AWSLambdaBasicExecutionRole managed policy).
	providerLogs := awslogs.NewLogGroup(c, jsii.String("ProviderLogs"), &awslogs.LogGroupProps{
		Retention:     props.LogRetention,
		RemovalPolicy: removal,
	})
	s.ProviderRole = awsiam.NewRole(c, jsii.String("ProviderRole"), &awsiam.RoleProps{
		Description: jsii.String("Execution role of the custom resource that sets the SMS delivery-status attributes."),
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
	})
	s.ProviderRole.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("Logs"),
		Actions:   jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents"),
		Resources: &[]*string{providerLogs.LogGroupArn()},
	}))
	call := &customresources.AwsSdkCall{
		Service: jsii.String("SNS"),
		Action:  jsii.String("SetSMSAttributes"),
		Parameters: map[string]interface{}{
			"attributes": map[string]interface{}{
				"DeliveryStatusIAMRole":             s.Role.RoleArn(),
				"DeliveryStatusSuccessSamplingRate": SMSSuccessSamplingRate,
			},
		},
		PhysicalResourceId: customresources.PhysicalResourceId_Of(jsii.String("sms-delivery-status")),
	}
	// No onDelete: deleting the stack leaves the account's SMS attributes
	// as they are (docs/deploy.md, "Delivery feedback"), because another
	// stack may have set them since.
	s.Setting = customresources.NewAwsCustomResource(c, jsii.String("Setting"), &customresources.AwsCustomResourceProps{
		OnCreate:            call,
		OnUpdate:            call,
		InstallLatestAwsSdk: jsii.Bool(false),
		Role:                s.ProviderRole,
		LogGroup:            providerLogs,
		Timeout:             awscdk.Duration_Minutes(jsii.Number(2)),
		Policy: customresources.AwsCustomResourcePolicy_FromStatements(&[]awsiam.PolicyStatement{
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:     jsii.String("SetSMSAttributes"),
				Actions: jsii.Strings("sns:SetSMSAttributes"),
				// SetSMSAttributes is an account setting: it has no
				// resource ARN, so AWS requires "*".
				Resources: jsii.Strings("*"),
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:        jsii.String("PassDeliveryStatusRole"),
				Actions:    jsii.Strings("iam:PassRole"),
				Resources:  &[]*string{s.Role.RoleArn()},
				Conditions: &map[string]interface{}{"StringEquals": map[string]interface{}{"iam:PassedToService": "sns.amazonaws.com"}},
			}),
		}),
	})
	// The custom resource's function (one per stack, made by the CDK) has
	// DependsOn its role, which its Role GetAtt already enforces: cfn-lint
	// warns (W3005) about the CDK's own output, so that check is off for
	// this one resource.
	if fn := awscdk.Stack_Of(c).Node().TryFindChild(jsii.String(customResourceFunctionID)); fn != nil {
		if cfn, ok := fn.Node().DefaultChild().(awscdk.CfnResource); ok {
			cfn.AddMetadata(jsii.String("cfn-lint"), map[string]any{"config": map[string]any{"ignore_checks": []string{"W3005"}}})
		}
	}
	return s, nil
}

// customResourceFunctionID is the id the CDK gives the function behind
// every AwsCustomResource of a stack (aws-cdk-lib custom-resources,
// AwsCustomResource.PROVIDER_FUNCTION_UUID without dashes).
const customResourceFunctionID = "AWS679f53fac002430cb0da5b7982bd2287"
