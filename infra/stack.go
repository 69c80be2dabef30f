// Package infra is the AWS CDK (Go) definition of the serverless deployment:
// constructs that expose their resources as fields and validate their props
// (DataTable, DispatchQueue, Scheduling, MinuteSchedule, GoFunction,
// HTTPAPI, Monitoring), composed by NewDispatcherStack into one stack. The
// CDK app is infra/app; the template tests are in template-tests.
package infra

import (
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdadestinations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsses"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/dispatcherhq/dispatcher/internal/config"
	"github.com/dispatcherhq/dispatcher/internal/ratelimit"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
)

// FunctionSize is a function's memory and timeout.
type FunctionSize struct {
	MemoryMB int
	Timeout  time.Duration
}

// FunctionSizes sizes the functions. Go on arm64 needs little memory, but
// Lambda allots CPU in proportion to it: the latency-facing api and
// dispatch get 512 MB; the sweeper, a batch job, 256 MB. Timeouts: the API
// answers within API Gateway's 30 s integration limit; dispatch handles a
// batch of up to DispatchBatchSize fires, each well within the 2-minute
// lease; the sweeper finishes before the next minute's run.
var FunctionSizes = map[string]FunctionSize{
	FnAPI:      {MemoryMB: 512, Timeout: 15 * time.Second},
	FnDispatch: {MemoryMB: 512, Timeout: 60 * time.Second},
	FnSweeper:  {MemoryMB: 256, Timeout: 55 * time.Second},
	// events records a batch of at most EventsBatchSize reports, one
	// conditional write each.
	FnEvents: {MemoryMB: 256, Timeout: 30 * time.Second},
	// webhooks makes a batch of WebhookBatchSize attempts at once, each at
	// most 15 s (webhooks.AttemptTimeout), some waiting for one of their
	// endpoint's slots; or a fan-out of a few pages.
	FnWebhooks: {MemoryMB: 256, Timeout: 60 * time.Second},
}

// Event sources of the webhooks function.
const (
	// WebhookBatchSize is how many webhook fires one invocation gets.
	WebhookBatchSize = 10
	// StreamBatchSize is how many stream records one invocation gets (up
	// to a second of them): one fan-out fire per company named.
	StreamBatchSize = 100
)

// FunctionLogicalID is the CloudFormation logical id of function fn
// ("ApiFunction", "DispatchFunction", "SweeperFunction").
func FunctionLogicalID(fn string) string { return titleCase(fn) + "Function" }

// DispatchBatchSize is how many SQS messages one dispatch invocation gets.
const DispatchBatchSize = 10

// FunctionEnv is the environment contract: the variables each function is
// given (names from package internal/config). The template tests hold their
// own copy of it, so a change here is a change of contract.
var FunctionEnv = map[string][]string{
	// The api function verifies voice webhooks with the provider's key.
	// It limits each company's requests (the bucket in the table).
	FnAPI: append([]string{config.EnvVoiceSecretARN, config.EnvCompanyRateLimit, config.EnvCompanyRateBurst,
		config.EnvCompanyRateOverrides}, commonEnv...),
	FnDispatch: append(append([]string(nil), commonEnv...), voiceEnv...),
	FnSweeper:  append(append([]string(nil), commonEnv...), voiceEnv...),
	// The events function only reads and writes rows (a finished row it
	// writes keeps its TTL: the retention).
	FnEvents: {config.EnvTableName, config.EnvLogLevel, config.EnvMetricsNamespace, config.EnvRetentionDays},
	// The webhooks function arms webhook fires (the webhook queue, and
	// schedules for retries hours away) and reads rows and events.
	FnWebhooks: {config.EnvTableName, config.EnvWebhookQueueURL, config.EnvScheduleGroup, config.EnvSchedulerRoleARN,
		config.EnvDispatchTargetARN, config.EnvSchedulerDLQARN, config.EnvLogLevel, config.EnvMetricsNamespace},
}

var (
	commonEnv = []string{
		config.EnvTableName, config.EnvQueueURL, config.EnvScheduleGroup,
		config.EnvSchedulerRoleARN, config.EnvDispatchTargetARN, config.EnvSchedulerDLQARN,
		config.EnvDefaultFromEmail, config.EnvSESConfigSet, config.EnvLogLevel,
		config.EnvMetricsNamespace, config.EnvWebhookQueueURL, config.EnvRetentionDays,
	}
	voiceEnv = []string{config.EnvVoiceProviderURL, config.EnvVoiceSecretARN}
)

// access says which resources a function may use.
type access struct {
	table, sendQueue, schedules, email, sms, voiceSecret bool
	// identities: read SES identities (the API checks a company's
	// sending_domains when its settings are saved).
	identities bool
	// deleteItems: delete table items (only the API deletes: sender
	// resources, webhook endpoints, claims; see DataTable.GrantReadWrite).
	deleteItems bool
	// deleteSchedules: delete the group's schedules (the API takes back
	// the schedule of a row it cancels or reschedules).
	deleteSchedules bool
	// webhookQueue: send webhook fires (the API's retries, dispatch's
	// hand-over of far ones, the sweeper's re-arms, the webhooks function).
	webhookQueue bool
}

// functionAccess is each function's least privilege.
var functionAccess = map[string]access{
	FnAPI:      {table: true, deleteItems: true, sendQueue: true, schedules: true, deleteSchedules: true, voiceSecret: true, identities: true, webhookQueue: true},
	FnDispatch: {table: true, sendQueue: true, schedules: true, email: true, sms: true, voiceSecret: true, webhookQueue: true},
	FnSweeper:  {table: true, sendQueue: true, schedules: true, email: true, sms: true, voiceSecret: true, webhookQueue: true},
	// The events function records reports on rows: the table only (its
	// queue's consume grant comes with its event source).
	FnEvents: {table: true},
	// The webhooks function: the table, its own queue and schedules (the
	// stream's and the queue's read grants come with the event sources).
	FnWebhooks: {table: true, schedules: true, webhookQueue: true},
}

// DispatcherStack is the whole deployment of one stage.
type DispatcherStack struct {
	// Stack is the CDK stack.
	Stack awscdk.Stack
	// Props are the props with defaults applied.
	Props DispatcherStackProps
	// Table is the DynamoDB single table.
	Table *DataTable
	// Queue is the dispatch queue and its DLQ.
	Queue *DispatchQueue
	// WebhookQueue is the queue of webhook fires and its DLQ.
	WebhookQueue *DispatchQueue
	// WebhookFanOutDLQ receives the stream records the webhooks function
	// could not arm a fan-out for, after the stream's retries.
	WebhookFanOutDLQ awssqs.Queue
	// Scheduling is the schedule group, the Scheduler role and its DLQ.
	Scheduling *Scheduling
	// VoiceSecret holds the voice provider's API key (JSON key
	// VoiceSecretAPIKey, optionally VoiceSecretWebhookAPIKey).
	VoiceSecret awssecretsmanager.Secret
	// ConfigurationSet is the SES configuration set the stack created, or
	// nil when the props named an existing one.
	ConfigurationSet awsses.ConfigurationSet
	// ConfigurationSetName is the SES configuration set mail is sent
	// through.
	ConfigurationSetName *string
	// DispatchFunctionArn is the dispatch function's ARN, built from its
	// name (no reference to the function, so its own environment can hold
	// it).
	DispatchFunctionArn *string
	// Functions by name (FnAPI, FnDispatch, FnSweeper).
	Functions map[string]*GoFunction
	// DispatchEvents is the dispatch function's SQS event source.
	DispatchEvents awslambdaeventsources.SqsEventSource
	// Feedback is the SES event destination, the EventBridge rule and the
	// events queue feeding the events function.
	Feedback *DeliveryFeedback
	// FeedbackEvents is the events function's SQS event source.
	FeedbackEvents awslambdaeventsources.SqsEventSource
	// SMSDeliveryStatus is the SNS SMS delivery-status logging and its
	// subscription filters to the events function.
	SMSDeliveryStatus *SMSDeliveryStatus
	// API is the HTTP API in front of the api function.
	API *HTTPAPI
	// SweepSchedule runs the sweeper every minute.
	SweepSchedule *MinuteSchedule
	// Monitoring is the alarm topic, the alarms and the dashboard.
	Monitoring *Monitoring
}

// JSON keys of the voice secret (read by internal/app.VoiceSecret).
const (
	// VoiceSecretAPIKey places calls and verifies Retell's webhooks.
	VoiceSecretAPIKey = "api_key"
	// VoiceSecretWebhookAPIKey, when set, verifies webhooks instead.
	VoiceSecretWebhookAPIKey = "webhook_api_key"
	// VoiceSecretWebhookKey is generated by the stack and unused: kept so
	// an update never regenerates the secret's value.
	VoiceSecretWebhookKey = "webhook_signing_secret"
)

// NewDispatcherStack validates props and builds the stack.
func NewDispatcherStack(scope constructs.Construct, id string, props *DispatcherStackProps) (*DispatcherStack, error) {
	p, err := props.Resolved()
	if err != nil {
		return nil, err
	}
	sp := p.StackProps
	if sp.Description == nil {
		sp.Description = jsii.String("Dispatcher (" + p.Stage + "): scheduled email, SMS and voice calls")
	}
	stack := awscdk.NewStack(scope, jsii.String(id), &sp)
	awscdk.Tags_Of(stack).Add(jsii.String("service"), jsii.String("dispatcher"), nil)
	awscdk.Tags_Of(stack).Add(jsii.String("stage"), jsii.String(p.Stage), nil)
	s := &DispatcherStack{Stack: stack, Props: p, Functions: map[string]*GoFunction{}}
	prefix := p.ResourcePrefix()
	retain := p.IsProd()
	fnName := func(fn string) string { return prefix + "-" + fn }

	if s.Table, err = NewDataTable(stack, "Data", &DataTableProps{Retain: retain, ListingIndexAll: p.ListingIndexAll}); err != nil {
		return nil, err
	}
	if s.Queue, err = NewDispatchQueue(stack, "DispatchQueue", &DispatchQueueProps{
		ConsumerTimeout: FunctionSizes[FnDispatch].Timeout,
	}); err != nil {
		return nil, err
	}
	// Webhook fires have a queue of their own: receivers that are slow
	// hold webhooks invocations, never dispatch ones.
	if s.WebhookQueue, err = NewDispatchQueue(stack, "WebhookQueue", &DispatchQueueProps{
		ConsumerTimeout: FunctionSizes[FnWebhooks].Timeout,
	}); err != nil {
		return nil, err
	}
	s.DispatchFunctionArn = stack.FormatArn(&awscdk.ArnComponents{
		Service:      jsii.String("lambda"),
		Resource:     jsii.String("function"),
		ResourceName: jsii.String(fnName(FnDispatch)),
		ArnFormat:    awscdk.ArnFormat_COLON_RESOURCE_NAME,
	})
	if s.Scheduling, err = NewScheduling(stack, "Scheduling", &SchedulingProps{
		GroupName:         prefix,
		TargetFunctionArn: s.DispatchFunctionArn,
		Retain:            retain,
	}); err != nil {
		return nil, err
	}

	secretRemoval := awscdk.RemovalPolicy_DESTROY
	if retain {
		secretRemoval = awscdk.RemovalPolicy_RETAIN
	}
	s.VoiceSecret = awssecretsmanager.NewSecret(stack, jsii.String("VoiceSecret"), &awssecretsmanager.SecretProps{
		// The generated webhook_signing_secret is unused (Retell signs its
		// webhooks with the API key; see docs/deploy.md, step 4). It stays,
		// because changing GenerateSecretString would make CloudFormation
		// generate the whole value again, erasing the operator's api_key.
		Description: jsii.String(fmt.Sprintf("Dispatcher (%s): the voice provider's API key (%q: set it after deploying; it places calls and verifies Retell's webhooks, "+
			"or %q when another key of the account carries Retell's webhook badge). %q is generated but unused.",
			p.Stage, VoiceSecretAPIKey, VoiceSecretWebhookAPIKey, VoiceSecretWebhookKey)),
		GenerateSecretString: &awssecretsmanager.SecretStringGenerator{
			SecretStringTemplate: jsii.String(fmt.Sprintf(`{%q:""}`, VoiceSecretAPIKey)),
			GenerateStringKey:    jsii.String(VoiceSecretWebhookKey),
			ExcludePunctuation:   jsii.Bool(true),
			PasswordLength:       jsii.Number(48),
		},
		RemovalPolicy: secretRemoval,
	})

	if p.SESConfigurationSet != "" {
		s.ConfigurationSetName = jsii.String(p.SESConfigurationSet)
	} else {
		set := &awsses.ConfigurationSetProps{
			ConfigurationSetName: jsii.String(prefix),
			ReputationMetrics:    jsii.Bool(true),
			SendingEnabled:       jsii.Bool(true),
			// Suppressions are per company (docs/design.md §8.4): SES's
			// account list would let one company's complaint stop every
			// other company's mail to the address, beyond their reach.
			DisableSuppressionList: jsii.Bool(true),
		}
		if p.SESAccountSuppression {
			set.DisableSuppressionList = nil
			set.SuppressionReasons = awsses.SuppressionReasons_BOUNCES_AND_COMPLAINTS
		}
		s.ConfigurationSet = awsses.NewConfigurationSet(stack, jsii.String("ConfigurationSet"), set)
		s.ConfigurationSetName = s.ConfigurationSet.ConfigurationSetName()
	}
	configSet := awsses.IConfigurationSet(s.ConfigurationSet)
	if configSet == nil {
		// An existing set gets the event destination too.
		configSet = awsses.ConfigurationSet_FromConfigurationSetName(stack, jsii.String("ExistingConfigurationSet"), s.ConfigurationSetName)
	}
	if s.Feedback, err = NewDeliveryFeedback(stack, "Feedback", &DeliveryFeedbackProps{
		ConfigurationSet:     configSet,
		ConfigurationSetName: s.ConfigurationSetName,
		TrackOpensAndClicks:  p.TrackOpensAndClicks,
		ConsumerTimeout:      FunctionSizes[FnEvents].Timeout,
	}); err != nil {
		return nil, err
	}

	values := map[string]*string{
		config.EnvTableName:            s.Table.Table.TableName(),
		config.EnvQueueURL:             s.Queue.Queue.QueueUrl(),
		config.EnvScheduleGroup:        s.Scheduling.Group.ScheduleGroupName(),
		config.EnvSchedulerRoleARN:     s.Scheduling.Role.RoleArn(),
		config.EnvDispatchTargetARN:    s.DispatchFunctionArn,
		config.EnvSchedulerDLQARN:      s.Scheduling.DLQ.QueueArn(),
		config.EnvDefaultFromEmail:     jsii.String(p.DefaultFromEmail),
		config.EnvSESConfigSet:         s.ConfigurationSetName,
		config.EnvLogLevel:             jsii.String(p.LogLevel),
		config.EnvMetricsNamespace:     jsii.String(p.MetricsNamespace()),
		config.EnvVoiceProviderURL:     jsii.String(p.VoiceProviderURL),
		config.EnvVoiceSecretARN:       s.VoiceSecret.SecretArn(),
		config.EnvWebhookQueueURL:      s.WebhookQueue.Queue.QueueUrl(),
		config.EnvRetentionDays:        jsii.String(strconv.Itoa(p.RetentionDays)),
		config.EnvCompanyRateLimit:     jsii.String(strconv.FormatFloat(p.CompanyRateLimit, 'g', -1, 64)),
		config.EnvCompanyRateBurst:     jsii.String(strconv.Itoa(p.CompanyRateBurst)),
		config.EnvCompanyRateOverrides: jsii.String(ratelimit.Policy{Companies: p.CompanyRateLimits}.OverridesText()),
	}
	descriptions := map[string]string{
		FnAPI:      "Dispatcher HTTP API (API Gateway HTTP API, payload 2.0).",
		FnDispatch: "Dispatcher: delivers fires from EventBridge Scheduler and SQS.",
		FnSweeper:  "Dispatcher: every minute, re-fires lost fires and settles expired leases.",
		FnEvents:   "Dispatcher: records delivery feedback (SES events from SQS, SNS SMS delivery-status logs).",
		FnWebhooks: "Dispatcher: status webhooks (fan-out from the table's stream, attempts from the webhook queue).",
	}
	for _, fn := range FunctionNames {
		env := map[string]*string{}
		for _, name := range FunctionEnv[fn] {
			v, ok := values[name]
			if !ok {
				return nil, fmt.Errorf("infra.NewDispatcherStack: no value for %s of function %s", name, fn)
			}
			env[name] = v
		}
		size := FunctionSizes[fn]
		id := FunctionLogicalID(fn)
		f, err := NewGoFunction(stack, id, &GoFunctionProps{
			FunctionName:        fnName(fn),
			Description:         descriptions[fn],
			AssetDir:            assetDir(p.AssetRoot, fn),
			MemoryMB:            size.MemoryMB,
			Timeout:             size.Timeout,
			Environment:         env,
			LogLevel:            p.LogLevel,
			LogRetention:        p.LogRetention,
			Retain:              retain,
			AllowRecursiveLoop:  fn == FnDispatch,
			ReservedConcurrency: p.ReservedConcurrency[fn],
		})
		if err != nil {
			return nil, err
		}
		// A stable logical id: `sam local invoke <id>` and the template
		// tests name the function by it.
		f.Function.Node().DefaultChild().(awslambda.CfnFunction).OverrideLogicalId(jsii.String(id))
		s.grant(f, functionAccess[fn])
		s.Functions[fn] = f
	}

	dispatch := s.Functions[FnDispatch].Function
	s.DispatchEvents = awslambdaeventsources.NewSqsEventSource(s.Queue.Queue, &awslambdaeventsources.SqsEventSourceProps{
		BatchSize:               jsii.Number(DispatchBatchSize),
		ReportBatchItemFailures: jsii.Bool(true),
		MaxConcurrency:          jsii.Number(float64(p.DispatchMaxConcurrency)),
	})
	dispatch.AddEventSource(s.DispatchEvents)
	// Scheduler invokes dispatch asynchronously: Lambda retries a failed
	// fire twice, then parks it on the Scheduler DLQ (alarmed) rather than
	// dropping it.
	dispatch.ConfigureAsyncInvoke(&awslambda.EventInvokeConfigOptions{
		RetryAttempts: jsii.Number(2),
		MaxEventAge:   awscdk.Duration_Hours(jsii.Number(1)),
		OnFailure:     awslambdadestinations.NewSqsDestination(s.Scheduling.DLQ),
	})
	// A failed sweep is not retried: the next minute's sweep is the retry.
	s.Functions[FnSweeper].Function.ConfigureAsyncInvoke(&awslambda.EventInvokeConfigOptions{
		RetryAttempts: jsii.Number(0),
		MaxEventAge:   awscdk.Duration_Minutes(jsii.Number(1)),
	})

	events := s.Functions[FnEvents].Function
	s.FeedbackEvents = s.Feedback.Consume(events)
	// CloudWatch Logs invokes the events function asynchronously with SMS
	// delivery-status lines: a batch it failed on (Lambda's two retries
	// spent) is parked on the events DLQ (alarmed), not dropped — the SMS
	// ledger needs those reports to settle uncertain attempts. `dispatcher
	// dlq redrive` sends it back through the events queue.
	events.ConfigureAsyncInvoke(&awslambda.EventInvokeConfigOptions{
		RetryAttempts: jsii.Number(2),
		MaxEventAge:   awscdk.Duration_Hours(jsii.Number(6)),
		OnFailure:     awslambdadestinations.NewSqsDestination(s.Feedback.Queue.DLQ),
	})
	if s.SMSDeliveryStatus, err = NewSMSDeliveryStatus(stack, "SMSDeliveryStatus", &SMSDeliveryStatusProps{
		Function:     events,
		LogRetention: p.LogRetention,
		Retain:       retain,
	}); err != nil {
		return nil, err
	}

	// Status webhooks: the stream's event inserts arm each company's
	// fan-out (a record that cannot be armed is retried until it leaves
	// the stream, then parked on the fan-out DLQ); the webhook queue brings
	// fan-outs and attempts.
	webhooksFn := s.Functions[FnWebhooks].Function
	s.WebhookFanOutDLQ = awssqs.NewQueue(stack, jsii.String("WebhookFanOutDLQ"), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
	})
	webhooksFn.AddEventSource(awslambdaeventsources.NewDynamoEventSource(s.Table.Table, &awslambdaeventsources.DynamoEventSourceProps{
		StartingPosition:        awslambda.StartingPosition_LATEST,
		BatchSize:               jsii.Number(StreamBatchSize),
		MaxBatchingWindow:       awscdk.Duration_Seconds(jsii.Number(1)),
		ReportBatchItemFailures: jsii.Bool(true),
		BisectBatchOnError:      jsii.Bool(true),
		RetryAttempts:           jsii.Number(-1), // until the record leaves the stream (24 h)
		MaxRecordAge:            awscdk.Duration_Hours(jsii.Number(24)),
		OnFailure:               awslambdaeventsources.NewSqsDlq(s.WebhookFanOutDLQ),
		Filters:                 &[]*map[string]any{{"pattern": jsii.String(dynamo.EventStreamFilter)}},
	}))
	webhooksFn.AddEventSource(awslambdaeventsources.NewSqsEventSource(s.WebhookQueue.Queue, &awslambdaeventsources.SqsEventSourceProps{
		BatchSize:               jsii.Number(WebhookBatchSize),
		ReportBatchItemFailures: jsii.Bool(true),
		MaxConcurrency:          jsii.Number(float64(p.WebhookMaxConcurrency)),
	}))

	if s.SweepSchedule, err = NewMinuteSchedule(stack, "SweepSchedule", &MinuteScheduleProps{
		GroupName:         prefix + "-sweeper",
		Retain:            retain,
		TargetFunctionArn: s.Functions[FnSweeper].Function.FunctionArn(),
		DLQ:               s.Scheduling.DLQ,
	}); err != nil {
		return nil, err
	}

	if s.API, err = NewHTTPAPI(stack, "Http", &HTTPAPIProps{
		Name:          prefix,
		Handler:       s.Functions[FnAPI].Function,
		ThrottleRate:  p.APIThrottleRate,
		ThrottleBurst: p.APIThrottleBurst,
		LogRetention:  p.LogRetention,
		Retain:        retain,
		// Optional: the API on a custom domain, execute-api disabled.
		DomainName:     p.DomainName,
		CertificateArn: p.CertificateArn,
	}); err != nil {
		return nil, err
	}

	fns := map[string]awslambda.IFunction{}
	for name, f := range s.Functions {
		fns[name] = f.Function
	}
	if s.Monitoring, err = NewMonitoring(stack, "Monitoring", &MonitoringProps{
		AlarmEmail: p.AlarmEmail,
		Functions:  fns,
		Queue:      s.Queue.Queue,
		DeadLetterQueues: map[string]awssqs.IQueue{
			"dispatch":      s.Queue.DLQ,
			"scheduler":     s.Scheduling.DLQ,
			"webhooks":      s.WebhookQueue.DLQ,
			"webhookFanOut": s.WebhookFanOutDLQ,
		},
		Feedback: &FeedbackMonitoring{
			Queue:     s.Feedback.Queue.Queue,
			DLQ:       s.Feedback.Queue.DLQ,
			TargetDLQ: s.Feedback.TargetDLQ,
			Function:  events,
		},
		API:                   s.API.Stage,
		DashboardName:         prefix,
		MetricsNamespace:      p.MetricsNamespace(),
		PermanentFailureRatio: p.PermanentFailureRatio,
	}); err != nil {
		return nil, err
	}

	out := func(id, description string, value *string) {
		awscdk.NewCfnOutput(stack, jsii.String(id), &awscdk.CfnOutputProps{Value: value, Description: jsii.String(description)})
	}
	out("ApiUrl", "Base URL of the HTTP API", s.API.URL())
	if s.API.Domain != nil {
		out("ApiDomainTarget", "Regional domain name to point the custom domain's DNS record (CNAME or alias) at", s.API.Domain.RegionalDomainName())
		out("ApiDomainHostedZoneId", "Route 53 hosted zone id of ApiDomainTarget (for an alias record)", s.API.Domain.RegionalHostedZoneId())
	}
	out("TableName", "DynamoDB table", s.Table.Table.TableName())
	out("QueueName", "SQS dispatch queue", s.Queue.Queue.QueueName())
	out("QueueUrl", "SQS dispatch queue URL", s.Queue.Queue.QueueUrl())
	out("DeadLetterQueueName", "SQS dead-letter queue of the dispatch queue", s.Queue.DLQ.QueueName())
	out("SchedulerDeadLetterQueueName", "SQS dead-letter queue of EventBridge Scheduler and of async dispatch invokes", s.Scheduling.DLQ.QueueName())
	out("ScheduleGroupName", "EventBridge Scheduler group of the one-time schedules", s.Scheduling.Group.ScheduleGroupName())
	out("SweepScheduleGroupName", "EventBridge Scheduler group of the sweeper's every-minute schedule", s.SweepSchedule.Group.ScheduleGroupName())
	out("DispatchFunctionName", "Dispatch Lambda function", dispatch.FunctionName())
	out("VoiceSecretArn", "Secrets Manager secret of the voice provider (set api_key after deploying)", s.VoiceSecret.SecretArn())
	out("AlarmTopicArn", "SNS topic of the alarms", s.Monitoring.Topic.TopicArn())
	out("SesConfigurationSetName", "SES configuration set mail is sent through", s.ConfigurationSetName)
	out("EventsQueueName", "SQS queue of SES delivery events", s.Feedback.Queue.Queue.QueueName())
	out("EventsDeadLetterQueueName", "SQS dead-letter queue of the events queue", s.Feedback.Queue.DLQ.QueueName())
	out("FeedbackTargetDeadLetterQueueName", "SQS dead-letter queue of SES events EventBridge could not deliver to the events queue", s.Feedback.TargetDLQ.QueueName())
	out("EventsFunctionName", "Events Lambda function (delivery feedback)", events.FunctionName())
	out("WebhookQueueName", "SQS queue of status-webhook fires", s.WebhookQueue.Queue.QueueName())
	out("WebhookDeadLetterQueueName", "SQS dead-letter queue of the webhook queue", s.WebhookQueue.DLQ.QueueName())
	out("WebhookFanOutDeadLetterQueueName", "SQS dead-letter queue of the stream records whose fan-out could not be armed", s.WebhookFanOutDLQ.QueueName())
	out("WebhooksFunctionName", "Webhooks Lambda function (status webhooks)", webhooksFn.FunctionName())

	addNagSuppressions(s)
	return s, nil
}

// grant gives f exactly the access a describes.
func (s *DispatcherStack) grant(f *GoFunction, a access) {
	if a.table {
		s.Table.GrantReadWrite(f.Role, a.deleteItems)
	}
	if a.sendQueue {
		s.Queue.GrantSend(f.Role)
	}
	if a.schedules {
		s.Scheduling.GrantCreateSchedule(f.Role)
	}
	if a.deleteSchedules {
		s.Scheduling.GrantDeleteSchedule(f.Role)
	}
	if a.webhookQueue {
		s.WebhookQueue.GrantSendAs(f.Role, "WebhookQueueSend")
	}
	if a.email {
		f.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("SendEmail"),
			Actions:   jsii.Strings("ses:SendEmail"),
			Resources: s.sesResources(),
		}))
	}
	if a.identities {
		f.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("ReadSESIdentities"),
			Actions:   jsii.Strings("ses:GetEmailIdentity"),
			Resources: &[]*string{s.sesARN("identity", "*")},
		}))
	}
	if a.sms {
		f.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:     jsii.String("PublishSMS"),
			Actions: jsii.Strings("sns:Publish"),
			// Publishing straight to a phone number has no resource ARN:
			// AWS requires "*". Listed in the template tests' exceptions.
			Resources: jsii.Strings("*"),
		}))
	}
	if a.voiceSecret {
		f.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("VoiceSecret"),
			Actions:   jsii.Strings("secretsmanager:GetSecretValue"),
			Resources: &[]*string{s.VoiceSecret.SecretArn()},
		}))
	}
}

// sesResources are the SES resources ses:SendEmail is checked against: the
// account's identities — companies send from the domains they declare in
// their settings at run time, each checked to be a verified identity of
// this account when declared (docs/deploy.md) — and the configuration set.
func (s *DispatcherStack) sesResources() *[]*string {
	set := s.Props.SESConfigurationSet
	if set == "" {
		set = s.Props.ResourcePrefix()
	}
	return &[]*string{s.sesARN("identity", "*"), s.sesARN("configuration-set", set)}
}

// sesARN is the ARN of an SES v2 resource of this stack's account and region.
func (s *DispatcherStack) sesARN(resource, name string) *string {
	return s.Stack.FormatArn(&awscdk.ArnComponents{
		Service:      jsii.String("ses"),
		Resource:     jsii.String(resource),
		ResourceName: jsii.String(name),
		ArnFormat:    awscdk.ArnFormat_SLASH_RESOURCE_NAME,
	})
}

func assetDir(root, fn string) string { return filepath.Join(root, fn) }
