package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/dispatcherhq/dispatcher/internal/channel/ses"
	snssender "github.com/dispatcherhq/dispatcher/internal/channel/sns"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/config"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/feedback"
	"github.com/dispatcherhq/dispatcher/internal/httpapi"
	"github.com/dispatcherhq/dispatcher/internal/ratelimit"
	"github.com/dispatcherhq/dispatcher/internal/scheduling"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
	awstimer "github.com/dispatcherhq/dispatcher/internal/timer/aws"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
)

// AWS is the product on AWS: the same service and dispatcher as the
// embedded mode, over DynamoDB, SQS + EventBridge Scheduler, SES v2 and SNS.
// The SDK clients are built once (at cold start in Lambda).
type AWS struct {
	Config     config.AWS
	Clients    Clients
	Store      *dynamo.Store
	Timer      *awstimer.Timer
	Service    *scheduling.Service
	Dispatcher *dispatch.Dispatcher
	API        *httpapi.API
	// Feedback records the providers' delivery reports (the events function).
	Feedback *feedback.Recorder
	// Webhooks fans events out to the companies' endpoints and makes the
	// attempts (the webhooks function), and takes the API's retries.
	Webhooks *webhooks.Engine
	// WebhookTimer arms webhook fires on the webhook queue (Scheduler for
	// far ones, through the dispatch function: see Handle).
	WebhookTimer comms.Timer
	log          *slog.Logger
	now          func() time.Time
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
	voice    dispatch.VoiceCaller
	hookKey  string
	hookKeys func(ctx context.Context) (string, error)
	wrap     func(Store) Store
	loopback bool
}

// WithWebhookLoopback lets webhook endpoints be http on a loopback host,
// as the embedded mode does: for the emulator tests' local receivers only.
func WithWebhookLoopback() AWSOption { return func(o *awsOptions) { o.loopback = true } }

// WithStoreWrap wraps the store the service, dispatcher and recorder use
// (tests inject crashes into it); AWS.Store stays the bare store.
func WithStoreWrap(wrap func(Store) Store) AWSOption { return func(o *awsOptions) { o.wrap = wrap } }

// WithVoice sets the voice caller and the key voice webhooks are verified
// with (without it, calls fail as voice_not_configured and the webhook
// refuses every delivery).
func WithVoice(caller dispatch.VoiceCaller, webhookKey string) AWSOption {
	return func(o *awsOptions) { o.voice, o.hookKey = caller, webhookKey }
}

// WithVoiceSecret places calls through Retell at baseURL and verifies
// voice webhooks with the keys of secret, read when first needed and
// cached (VoiceSecret): what the functions do on AWS.
func WithVoiceSecret(secret *VoiceSecret, baseURL string) AWSOption {
	return func(o *awsOptions) {
		o.voice, o.hookKey, o.hookKeys = NewLazyRetell(secret, baseURL, nil), "", secret.WebhookKey
	}
}

// WithAWSClock replaces time.Now in the service, dispatcher and timer.
func WithAWSClock(now func() time.Time) AWSOption { return func(o *awsOptions) { o.now = now } }

// WithDispatchConfig overrides the dispatcher's retry and lease settings.
func WithDispatchConfig(c dispatch.Config) AWSOption { return func(o *awsOptions) { o.dispatch = c } }

// NewAWS wires the product over AWS clients: the AWS adapters, then Build.
func NewAWS(cfg config.AWS, clients Clients, log *slog.Logger, opts ...AWSOption) *AWS {
	o := awsOptions{now: time.Now, voice: voiceUnavailable{}}
	for _, opt := range opts {
		opt(&o)
	}
	a := &AWS{Config: cfg, Clients: clients, Store: dynamo.New(clients.DynamoDB, cfg.TableName).WithRetention(cfg.Retention), log: log, now: o.now}
	a.Timer = awstimer.New(clients.SQS, clients.Scheduler, awstimer.Config{
		QueueURL: cfg.QueueURL, ScheduleGroup: cfg.ScheduleGroup, TargetARN: cfg.DispatchTargetARN,
		RoleARN: cfg.SchedulerRoleARN, DLQARN: cfg.SchedulerDLQARN, Lead: cfg.SchedulerLead, Now: o.now,
	})
	// Webhook fires go to their own queue; a far one is a schedule like a
	// row's, whose target (the dispatch function) hands it to this queue
	// when it fires (Handle).
	a.WebhookTimer = noWebhookQueue{}
	if cfg.WebhookQueueURL != "" {
		a.WebhookTimer = awstimer.New(clients.SQS, clients.Scheduler, awstimer.Config{
			QueueURL: cfg.WebhookQueueURL, ScheduleGroup: cfg.ScheduleGroup, TargetARN: cfg.DispatchTargetARN,
			RoleARN: cfg.SchedulerRoleARN, DLQARN: cfg.SchedulerDLQARN, Lead: cfg.SchedulerLead, Now: o.now,
		})
	}
	dcfg := o.dispatch
	if dcfg.DefaultFrom == "" {
		dcfg.DefaultFrom = cfg.DefaultFromEmail
	}
	// The sweeper function sends nothing itself: what it fires again goes
	// to the dispatch queue, under the dispatch function's concurrency.
	dcfg.SweepEnqueues = true
	// Leases and the sweep grace from the environment, where the option
	// left them zero (zero in both: the dispatcher's defaults).
	for _, f := range []struct{ to, from *time.Duration }{{&dcfg.EmailLease, &cfg.EmailLease}, {&dcfg.SMSLease, &cfg.SMSLease},
		{&dcfg.VoiceLease, &cfg.VoiceLease}, {&dcfg.SweepGrace, &cfg.SweepGrace}} {
		if *f.to == 0 {
			*f.to = *f.from
		}
	}
	var store Store = a.Store
	if o.wrap != nil {
		store = o.wrap(store)
	}
	// SMS delivery reports no row claims are kept as receipts; the sweeper
	// settles an uncertain SMS attempt from its number's receipts
	// (docs/design.md §8.5). The ledger's recorder is configured as the
	// graph's (recorders keep no state).
	receipts := feedback.New(store, log, o.now, feedback.WithSMSReceipts(a.Store))
	ledger := feedback.NewSMSLedger(a.Store, dcfg.WithDefaults().SMSLease, receipts, log)
	g, err := Build(Ports{
		Store: store,
		// Fires come back through the dispatch function (Scheduler, SQS), not in process.
		Timer: func(Deliver) comms.Timer { return a.Timer },
		Email: ses.New(clients.SES, ses.Options{ConfigurationSet: cfg.SESConfigSet}),
		SMS:   snssender.New(clients.SNS, snssender.Options{}),
		// Declared sending domains must be verified SES identities of the
		// account; positive answers are cached per process (warm Lambda).
		Identities: ses.NewIdentities(clients.SES, ses.IdentityOptions{Now: o.now}),
		// The provider reports outcomes by its own webhooks, through API Gateway.
		Voice:           func(http.Handler) dispatch.VoiceCaller { return o.voice },
		VoiceSecret:     o.hookKey,
		VoiceWebhookKey: o.hookKeys,
		Clock:           o.now,
		Logger:          log,
		Dispatch:        dcfg,
		Ledger:          ledger,
		SMSReceipts:     a.Store,
		// The table's stream triggers the fan-out (the webhooks function).
		WebhookTimer:        a.WebhookTimer,
		WebhookURLs:         WebhookURLs(o.loopback, nil),
		WebhookLoopbackHTTP: o.loopback,
	})
	if err != nil {
		panic(err) // every port is given above
	}
	a.Service, a.Dispatcher, a.API, a.Feedback, a.Webhooks = g.Service, g.Dispatcher, g.API, g.Feedback, g.WebhookDeliveries
	if cfg.RateLimit.Enabled() {
		// Each company's bucket is an item of the table, shared by every
		// instance of the api function (internal/store/dynamo, ratelimit.go).
		a.API.SetRateLimiter(ratelimit.New(a.Store, cfg.RateLimit, o.now))
	}
	return a
}

// noWebhookQueue is the webhook timer of a function configured without
// the webhook queue: arming fails, naming the missing variable (the
// sweeper's Rearm retries what it could not arm once it is configured).
type noWebhookQueue struct{}

func (noWebhookQueue) Arm(context.Context, comms.Fire, time.Time) error {
	return errors.New("app: no webhook queue is configured (" + config.EnvWebhookQueueURL + ")")
}

// Handle is what the dispatch function does with a fire: a row's goes
// to the dispatcher; a webhook's (a far one, which Scheduler delivers to
// the dispatch function like every schedule) is handed to the webhook
// queue, so that its attempt runs in the webhooks function and a slow
// receiver never holds a dispatch invocation.
func (a *AWS) Handle(ctx context.Context, f comms.Fire) error {
	switch f.Kind {
	case webhooks.FireKind, webhooks.FanOutFireKind:
		if err := a.WebhookTimer.Arm(ctx, f, f.DueAt); err != nil {
			return fmt.Errorf("webhook timer.Arm: %w", err)
		}
		return nil
	}
	return a.Dispatcher.Handle(ctx, f)
}

// WebhookSweepGrace is how overdue a pending webhook delivery must be
// before the sweeper arms it again (its fire presumed lost).
const WebhookSweepGrace = 5 * time.Minute

// WebhookSweepLimit bounds the deliveries one sweep arms again.
const WebhookSweepLimit = 200

// Sweep is the sweeper function's run: the dispatcher's sweep, then the
// webhook deliveries whose fires were lost armed again.
func (a *AWS) Sweep(ctx context.Context) (dispatch.SweepResult, error) {
	res, err := a.Dispatcher.Sweep(ctx)
	if a.Config.WebhookQueueURL == "" {
		return res, err
	}
	n, werr := a.Webhooks.Rearm(ctx, a.now().Add(-WebhookSweepGrace), WebhookSweepLimit)
	if n > 0 {
		a.log.InfoContext(ctx, "webhook deliveries armed again", "rearmed", n)
	}
	return res, errors.Join(err, werr)
}

// NewAWSFromEnv is what a Lambda main calls once at cold start: it reads
// the environment, loads the SDK config and wires everything.
func NewAWSFromEnv(ctx context.Context, need config.Needs) (*AWS, *slog.Logger, error) {
	cfg, err := config.LoadAWS(os.Getenv, need)
	if err != nil {
		return nil, nil, err
	}
	log := NewLogger(os.Stdout, cfg.LogLevel, cfg.MetricsNamespace)
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("config.LoadDefaultConfig: %w", err)
	}
	var opts []AWSOption
	if cfg.VoiceSecretARN != "" {
		// Read when a call or a voice webhook needs it, never here: a
		// Secrets Manager hiccup must not fail the function's init (the
		// whole API, email included).
		secret := NewVoiceSecret(secretsmanager.NewFromConfig(awsCfg), cfg.VoiceSecretARN, VoiceSecretOptions{})
		opts = append(opts, WithVoiceSecret(secret, cfg.VoiceProviderURL))
	}
	return NewAWS(cfg, NewClients(awsCfg), log, opts...), log, nil
}
