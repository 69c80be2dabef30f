// Package awsfn wires the AWS functions that run behind the API — dispatch,
// sweeper, events, webhooks — each from only the parts it uses: the AWS
// adapters (DynamoDB, SQS + EventBridge Scheduler, SES v2, SNS, Retell
// through Secrets Manager) over internal/app/core. It links neither the
// HTTP API nor libphonenumber, which is what keeps these bootstraps small
// and their init short (BENCHMARKS.md, "Lambda binaries"). internal/app's
// NewAWS builds the same adapters (NewAdapters) and adds the API on top:
// the api function, the CLI's --backend aws and the emulator tests.
package awsfn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/dispatcherhq/dispatcher/internal/app/core"
	"github.com/dispatcherhq/dispatcher/internal/channel/ses"
	snssender "github.com/dispatcherhq/dispatcher/internal/channel/sns"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/config"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/feedback"
	"github.com/dispatcherhq/dispatcher/internal/rowview"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
	awstimer "github.com/dispatcherhq/dispatcher/internal/timer/aws"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
)

// Clients are the SDK clients, built once from one aws.Config (at cold
// start in Lambda). A function builds only those it uses; the others
// stay nil.
type Clients struct {
	DynamoDB  *dynamodb.Client
	SQS       *sqs.Client
	Scheduler *scheduler.Client
	SES       *sesv2.Client
	SNS       *sns.Client
}

// NewClients builds every client from cfg (endpoints follow
// AWS_ENDPOINT_URL when it is set, as the SDK does).
func NewClients(cfg aws.Config) Clients {
	return Clients{
		DynamoDB:  dynamodb.NewFromConfig(cfg),
		SQS:       sqs.NewFromConfig(cfg),
		Scheduler: scheduler.NewFromConfig(cfg),
		SES:       sesv2.NewFromConfig(cfg),
		SNS:       sns.NewFromConfig(cfg),
	}
}

// Options tune NewAdapters (tests inject a clock, a voice caller, a store
// wrapper).
type Options struct {
	// Now replaces time.Now everywhere.
	Now func() time.Time
	// Dispatch overrides the dispatcher's retry and lease settings.
	Dispatch dispatch.Config
	// Voice places calls; nil: calls fail as voice_not_configured.
	Voice dispatch.VoiceCaller
	// Wrap wraps the store the use cases write through (tests inject
	// crashes); Adapters.Store stays the bare store.
	Wrap func(core.Store) core.Store
	// WebhookLoopbackHTTP lets webhook endpoints be http on a loopback
	// host (the emulator tests' local receivers only).
	WebhookLoopbackHTTP bool
}

// Adapters are the AWS adapters of the core.
type Adapters struct {
	Store *dynamo.Store
	// Timer arms row fires (SQS for near ones, Scheduler for far ones,
	// whose target is the dispatch function).
	Timer *awstimer.Timer
	// WebhookTimer arms webhook fires on the webhook queue (Scheduler for
	// far ones, through the dispatch function: see Core.Handle).
	WebhookTimer comms.Timer
	// Ports are the core's ports over them.
	Ports core.Ports
}

// NewAdapters builds the AWS adapters over c. Only the clients the
// adapters are asked for are used: the store (c.DynamoDB) always, the
// timers when cfg has a queue, the senders when c has their clients.
func NewAdapters(cfg config.AWS, c Clients, log *slog.Logger, o Options) Adapters {
	if o.Now == nil {
		o.Now = time.Now
	}
	a := Adapters{Store: dynamo.New(DynamoDB(c.DynamoDB), cfg.TableName).WithRetention(cfg.Retention)}
	var store core.Store = a.Store
	if o.Wrap != nil {
		store = o.Wrap(store)
	}
	a.WebhookTimer = noWebhookQueue{}
	if c.SQS != nil {
		a.Timer = awstimer.New(SQS(c.SQS), Scheduler(c.Scheduler), awstimer.Config{
			QueueURL: cfg.QueueURL, ScheduleGroup: cfg.ScheduleGroup, TargetARN: cfg.DispatchTargetARN,
			RoleARN: cfg.SchedulerRoleARN, DLQARN: cfg.SchedulerDLQARN, Lead: cfg.SchedulerLead, Now: o.Now,
		})
		// Webhook fires go to their own queue; a far one is a schedule
		// like a row's, whose target (the dispatch function) hands it to
		// this queue when it fires (Core.Handle).
		if cfg.WebhookQueueURL != "" {
			a.WebhookTimer = awstimer.New(SQS(c.SQS), Scheduler(c.Scheduler), awstimer.Config{
				QueueURL: cfg.WebhookQueueURL, ScheduleGroup: cfg.ScheduleGroup, TargetARN: cfg.DispatchTargetARN,
				RoleARN: cfg.SchedulerRoleARN, DLQARN: cfg.SchedulerDLQARN, Lead: cfg.SchedulerLead, Now: o.Now,
			})
		}
	}
	dcfg := o.Dispatch
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
	// SMS delivery reports no row claims are kept as receipts; the sweeper
	// settles an uncertain SMS attempt from its number's receipts
	// (docs/design.md §8.5). The ledger's recorder is configured as the
	// graph's (recorders keep no state).
	receipts := feedback.New(store, log, o.Now, feedback.WithSMSReceipts(a.Store))
	a.Ports = core.Ports{
		Store: store,
		// Fires come back through the dispatch function (Scheduler, SQS), not in process.
		Timer: func(core.Deliver) comms.Timer {
			if a.Timer == nil {
				return nil // no SQS client: core.Build says so
			}
			return a.Timer
		},
		Voice:       o.Voice,
		Clock:       o.Now,
		Logger:      log,
		Dispatch:    dcfg,
		Ledger:      feedback.NewSMSLedger(a.Store, dcfg.WithDefaults().SMSLease, receipts, log),
		SMSReceipts: a.Store,
		// The table's stream triggers the fan-out (the webhooks function).
		WebhookTimer:        a.WebhookTimer,
		WebhookLoopbackHTTP: o.WebhookLoopbackHTTP,
		Render:              rowview.WebhookPayload,
	}
	if c.SES != nil {
		a.Ports.Email = ses.New(SESSend(c.SES), ses.Options{ConfigurationSet: cfg.SESConfigSet})
	}
	if c.SNS != nil {
		a.Ports.SMS = snssender.New(SNS(c.SNS), snssender.Options{})
	}
	return a
}

// noWebhookQueue is the webhook timer of a function configured without
// the webhook queue: arming fails, naming the missing variable (the
// sweeper's Rearm retries what it could not arm once it is configured).
type noWebhookQueue struct{}

func (noWebhookQueue) Arm(context.Context, comms.Fire, time.Time) error {
	return errors.New("awsfn: no webhook queue is configured (" + config.EnvWebhookQueueURL + ")")
}

// Core is what the dispatch and sweeper functions run: the dispatcher,
// and the webhook engine and timer for the webhook fires they route.
type Core struct {
	Config       config.AWS
	Dispatcher   *dispatch.Dispatcher
	Webhooks     *webhooks.Engine
	WebhookTimer comms.Timer
	Log          *slog.Logger
	Now          func() time.Time
}

// Handle is what the dispatch function does with a fire: a row's goes
// to the dispatcher; a webhook's (a far one, which Scheduler delivers to
// the dispatch function like every schedule) is handed to the webhook
// queue, so that its attempt runs in the webhooks function and a slow
// receiver never holds a dispatch invocation.
func (c *Core) Handle(ctx context.Context, f comms.Fire) error {
	switch f.Kind {
	case webhooks.FireKind, webhooks.FanOutFireKind:
		if err := c.WebhookTimer.Arm(ctx, f, f.DueAt); err != nil {
			return fmt.Errorf("webhook timer.Arm: %w", err)
		}
		return nil
	}
	return c.Dispatcher.Handle(ctx, f)
}

// WebhookSweepGrace is how overdue a pending webhook delivery must be
// before the sweeper arms it again (its fire presumed lost).
const WebhookSweepGrace = 5 * time.Minute

// WebhookSweepLimit bounds the deliveries one sweep arms again.
const WebhookSweepLimit = 200

// Sweep is the sweeper function's run: the dispatcher's sweep, then the
// webhook deliveries whose fires were lost armed again.
func (c *Core) Sweep(ctx context.Context) (dispatch.SweepResult, error) {
	res, err := c.Dispatcher.Sweep(ctx)
	if c.Config.WebhookQueueURL == "" {
		return res, err
	}
	n, werr := c.Webhooks.Rearm(ctx, c.Now().Add(-WebhookSweepGrace), WebhookSweepLimit)
	if n > 0 {
		c.Log.InfoContext(ctx, "webhook deliveries armed again", "rearmed", n)
	}
	return res, errors.Join(err, werr)
}

// Env is what every function does first at cold start: it reads the
// environment (need: the variables it requires), makes the JSON logger
// and makes the SDK config from the function's environment (LambdaConfig).
func Env(_ context.Context, need config.Needs) (config.AWS, aws.Config, *slog.Logger, error) {
	cfg, err := config.LoadAWS(os.Getenv, need)
	if err != nil {
		return cfg, aws.Config{}, nil, err
	}
	log := NewLogger(os.Stdout, cfg.LogLevel, cfg.MetricsNamespace)
	awsCfg, err := LambdaConfig(os.Getenv)
	if err != nil {
		return cfg, aws.Config{}, nil, err
	}
	return cfg, awsCfg, log, nil
}

// LambdaConfig is the SDK config of a Lambda function, read from what
// Lambda puts in every function's environment: AWS_REGION and the
// execution role's AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN (what the SDK's default chain finds there too), and
// AWS_ENDPOINT_URL when set (a function run against the emulator). It is
// not config.LoadDefaultConfig on purpose: that links every credential
// provider of the default chain (STS, SSO, SSO-OIDC, sign-in, IMDS,
// process, shared files), ~2 MiB per bootstrap and their inits, none of
// which a function uses. The CLI (cmd/dispatcher) keeps the default chain.
// It fails naming the variable when the region or the keys are absent.
func LambdaConfig(getenv func(string) string) (aws.Config, error) {
	region := getenv("AWS_REGION")
	if region == "" {
		region = getenv("AWS_DEFAULT_REGION")
	}
	creds := aws.Credentials{AccessKeyID: getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken: getenv("AWS_SESSION_TOKEN"), Source: "LambdaEnvironment"}
	var missing []string
	if region == "" {
		missing = append(missing, "AWS_REGION")
	}
	if creds.AccessKeyID == "" {
		missing = append(missing, "AWS_ACCESS_KEY_ID")
	}
	if creds.SecretAccessKey == "" {
		missing = append(missing, "AWS_SECRET_ACCESS_KEY")
	}
	if len(missing) > 0 {
		return aws.Config{}, fmt.Errorf("awsfn.LambdaConfig: missing %s", strings.Join(missing, ", "))
	}
	cfg := aws.NewConfig()
	cfg.Region = region
	cfg.Credentials = aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return creds, nil
	}))
	if u := getenv("AWS_ENDPOINT_URL"); u != "" {
		cfg.BaseEndpoint = aws.String(u)
	}
	return *cfg, nil
}

// VoiceFromEnv is the voice caller and the webhook key of cfg: Retell at
// cfg.VoiceProviderURL with the keys of cfg.VoiceSecretARN, read when a
// call or a voice webhook first needs them, never here — a Secrets
// Manager hiccup must not fail a function's init (the whole API, email
// included). Nil and nil without a secret.
func VoiceFromEnv(cfg config.AWS, awsCfg aws.Config) (dispatch.VoiceCaller, *VoiceSecret) {
	if cfg.VoiceSecretARN == "" {
		return nil, nil
	}
	secret := NewVoiceSecret(Secrets(secretsmanager.NewFromConfig(awsCfg)), cfg.VoiceSecretARN, VoiceSecretOptions{})
	return NewLazyRetell(secret, cfg.VoiceProviderURL, nil), secret
}

// NewCore wires the core over the AWS adapters of cfg and c, which must
// hold every client (core.Build requires the senders; it fails naming a
// missing one).
func NewCore(cfg config.AWS, c Clients, log *slog.Logger, o Options) (*Core, error) {
	a := NewAdapters(cfg, c, log, o)
	g, err := core.Build(a.Ports)
	if err != nil {
		return nil, err
	}
	return &Core{Config: cfg, Dispatcher: g.Dispatcher, Webhooks: g.WebhookDeliveries, WebhookTimer: a.WebhookTimer,
		Log: log, Now: a.Ports.Clock}, nil
}

// DispatchFromEnv is the cold start of the dispatch and sweeper
// functions: every client (they send, arm, and ask the voice provider).
func DispatchFromEnv(ctx context.Context) (*Core, *slog.Logger, error) {
	cfg, awsCfg, log, err := Env(ctx, config.Needs{Table: true, Queue: true, Scheduler: true, WebhookQueue: true})
	if err != nil {
		return nil, nil, err
	}
	voice, _ := VoiceFromEnv(cfg, awsCfg)
	c, err := NewCore(cfg, NewClients(awsCfg), log, Options{Voice: voice})
	return c, log, err
}

// EventsFromEnv is the cold start of the events function: the recorder of
// delivery reports over the table alone (it neither sends nor arms).
func EventsFromEnv(ctx context.Context) (*feedback.Recorder, *slog.Logger, error) {
	cfg, awsCfg, log, err := Env(ctx, config.Needs{Table: true})
	if err != nil {
		return nil, nil, err
	}
	a := NewAdapters(cfg, Clients{DynamoDB: dynamodb.NewFromConfig(awsCfg)}, log, Options{})
	return core.Feedback(a.Ports), log, nil
}

// WebhooksFromEnv is the cold start of the webhooks function: the webhook
// engine over the table and the webhook timer (a retry hours away is a
// schedule).
func WebhooksFromEnv(ctx context.Context) (*webhooks.Engine, comms.Timer, *slog.Logger, error) {
	cfg, awsCfg, log, err := Env(ctx, config.Needs{Table: true, Scheduler: true, WebhookQueue: true})
	if err != nil {
		return nil, nil, nil, err
	}
	a := NewAdapters(cfg, Clients{DynamoDB: dynamodb.NewFromConfig(awsCfg), SQS: sqs.NewFromConfig(awsCfg),
		Scheduler: scheduler.NewFromConfig(awsCfg)}, log, Options{})
	return core.Webhooks(a.Ports), a.WebhookTimer, log, nil
}
