package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/dispatcherhq/dispatcher/internal/auth"
	"github.com/dispatcherhq/dispatcher/internal/channel/ses"
	snssender "github.com/dispatcherhq/dispatcher/internal/channel/sns"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/config"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/httpapi"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
	awstimer "github.com/dispatcherhq/dispatcher/internal/timer/aws"
)

// AWS is the product on AWS: the same service and dispatcher as the
// embedded mode, over DynamoDB, SQS + EventBridge Scheduler, SES v2 and SNS.
// The SDK clients are built once (at cold start in Lambda).
type AWS struct {
	Config     config.AWS
	Clients    Clients
	Store      *dynamo.Store
	Timer      *awstimer.Timer
	Service    *comms.Service
	Dispatcher *dispatch.Dispatcher
	API        *httpapi.API
}

// Clients are the SDK clients, built once from one aws.Config.
type Clients struct {
	DynamoDB  *dynamodb.Client
	SQS       *sqs.Client
	Scheduler *scheduler.Client
	SES       *sesv2.Client
	SNS       *sns.Client
}

// NewClients builds every client from cfg (endpoints follow AWS_ENDPOINT_URL
// when it is set, as the SDK does).
func NewClients(cfg aws.Config) Clients {
	return Clients{
		DynamoDB:  dynamodb.NewFromConfig(cfg),
		SQS:       sqs.NewFromConfig(cfg),
		Scheduler: scheduler.NewFromConfig(cfg),
		SES:       sesv2.NewFromConfig(cfg),
		SNS:       sns.NewFromConfig(cfg),
	}
}

// AWSOption tunes NewAWS (tests inject a clock).
type AWSOption func(*awsOptions)

type awsOptions struct {
	now      func() time.Time
	dispatch dispatch.Config
}

// WithAWSClock replaces time.Now in the service, dispatcher and timer.
func WithAWSClock(now func() time.Time) AWSOption { return func(o *awsOptions) { o.now = now } }

// WithDispatchConfig overrides the dispatcher's retry and lease settings.
func WithDispatchConfig(c dispatch.Config) AWSOption { return func(o *awsOptions) { o.dispatch = c } }

// NewAWS wires the product over AWS clients.
func NewAWS(cfg config.AWS, clients Clients, log *slog.Logger, opts ...AWSOption) *AWS {
	o := awsOptions{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	store := dynamo.New(clients.DynamoDB, cfg.TableName)
	timer := awstimer.New(clients.SQS, clients.Scheduler, awstimer.Config{
		QueueURL: cfg.QueueURL, ScheduleGroup: cfg.ScheduleGroup, TargetARN: cfg.DispatchTargetARN,
		RoleARN: cfg.SchedulerRoleARN, DLQARN: cfg.SchedulerDLQARN, Lead: cfg.SchedulerLead, Now: o.now,
	})
	dcfg := o.dispatch
	if dcfg.DefaultFrom == "" {
		dcfg.DefaultFrom = cfg.DefaultFromEmail
	}
	d := dispatch.New(store, timer, dispatch.Senders{
		Email: ses.New(clients.SES, ses.Options{ConfigurationSet: cfg.SESConfigSet}),
		SMS:   snssender.New(clients.SNS, snssender.Options{}),
		Voice: voiceUnavailable{},
	}, dcfg, dispatch.WithClock(o.now), dispatch.WithLogger(log))
	svc := comms.NewService(store, comms.WithTimer(timer), comms.WithClock(o.now), comms.WithLogger(log))
	return &AWS{Config: cfg, Clients: clients, Store: store, Timer: timer, Service: svc, Dispatcher: d,
		API: httpapi.New(svc, auth.NewAuthenticator(store), log)}
}

// NewAWSFromEnv is what a Lambda main calls once at cold start: it reads
// the environment, loads the SDK config and wires everything.
func NewAWSFromEnv(ctx context.Context, need config.Needs) (*AWS, *slog.Logger, error) {
	cfg, err := config.LoadAWS(os.Getenv, need)
	if err != nil {
		return nil, nil, err
	}
	log := NewLogger(os.Stdout, cfg.LogLevel)
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("config.LoadDefaultConfig: %w", err)
	}
	return NewAWS(cfg, NewClients(awsCfg), log), log, nil
}

// voiceUnavailable is the voice port until a provider is configured: every
// call fails permanently, naming why.
type voiceUnavailable struct{}

func (voiceUnavailable) PlaceCall(context.Context, dispatch.Call) (string, error) {
	return "", comms.Permanent("voice_not_configured", "no voice provider is configured for this deployment")
}
