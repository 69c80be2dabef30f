package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/dispatcherhq/dispatcher/internal/app/awsfn"
	"github.com/dispatcherhq/dispatcher/internal/channel/ses"
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
// The SDK clients are built once (at cold start in Lambda). The adapters
// and the core are internal/app/awsfn's (what the functions behind the API
// run alone); AWS adds the service and the HTTP API.
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
	core         *awsfn.Core
}

// Clients are the SDK clients (awsfn.Clients).
type Clients = awsfn.Clients

// NewClients builds every client from cfg (awsfn.NewClients).
func NewClients(cfg aws.Config) Clients { return awsfn.NewClients(cfg) }

// NewLogger is the JSON logger with EMF metrics every function uses
// (awsfn.NewLogger).
func NewLogger(w io.Writer, level, namespace string) *slog.Logger {
	return awsfn.NewLogger(w, level, namespace)
}

// VoiceSecret is the voice provider's secret, read lazily and cached
// (awsfn.VoiceSecret).
type VoiceSecret = awsfn.VoiceSecret

// AWSOption tunes NewAWS (tests inject a clock).
type AWSOption func(*awsOptions)

type awsOptions struct {
	fn       awsfn.Options
	hookKey  string
	hookKeys func(ctx context.Context) (string, error)
}

// WithWebhookLoopback lets webhook endpoints be http on a loopback host,
// as the embedded mode does: for the emulator tests' local receivers only.
func WithWebhookLoopback() AWSOption {
	return func(o *awsOptions) { o.fn.WebhookLoopbackHTTP = true }
}

// WithStoreWrap wraps the store the service, dispatcher and recorder use
// (tests inject crashes into it); AWS.Store stays the bare store.
func WithStoreWrap(wrap func(Store) Store) AWSOption { return func(o *awsOptions) { o.fn.Wrap = wrap } }

// WithVoice sets the voice caller and the key voice webhooks are verified
// with (without it, calls fail as voice_not_configured and the webhook
// refuses every delivery).
func WithVoice(caller dispatch.VoiceCaller, webhookKey string) AWSOption {
	return func(o *awsOptions) { o.fn.Voice, o.hookKey = caller, webhookKey }
}

// WithVoiceSecret places calls through Retell at baseURL and verifies
// voice webhooks with the keys of secret, read when first needed and
// cached (VoiceSecret): what the functions do on AWS.
func WithVoiceSecret(secret *VoiceSecret, baseURL string) AWSOption {
	return func(o *awsOptions) {
		o.fn.Voice, o.hookKey, o.hookKeys = awsfn.NewLazyRetell(secret, baseURL, nil), "", secret.WebhookKey
	}
}

// WithAWSClock replaces time.Now in the service, dispatcher and timer.
func WithAWSClock(now func() time.Time) AWSOption { return func(o *awsOptions) { o.fn.Now = now } }

// WithDispatchConfig overrides the dispatcher's retry and lease settings.
func WithDispatchConfig(c dispatch.Config) AWSOption {
	return func(o *awsOptions) { o.fn.Dispatch = c }
}

// NewAWS wires the product over AWS clients: the AWS adapters
// (awsfn.NewAdapters), then Build.
func NewAWS(cfg config.AWS, clients Clients, log *slog.Logger, opts ...AWSOption) *AWS {
	var o awsOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.fn.Now == nil {
		o.fn.Now = time.Now
	}
	ad := awsfn.NewAdapters(cfg, clients, log, o.fn)
	a := &AWS{Config: cfg, Clients: clients, Store: ad.Store, Timer: ad.Timer, WebhookTimer: ad.WebhookTimer}
	cp := ad.Ports
	voice := cp.Voice
	g, err := Build(Ports{
		Store: cp.Store, Timer: cp.Timer, Email: cp.Email, SMS: cp.SMS,
		// Declared sending domains must be verified SES identities of the
		// account; positive answers are cached per process (warm Lambda).
		Identities: ses.NewIdentities(awsfn.SESIdentities(clients.SES), ses.IdentityOptions{Now: o.fn.Now}),
		// The provider reports outcomes by its own webhooks, through API Gateway.
		Voice:           func(http.Handler) dispatch.VoiceCaller { return voice },
		VoiceSecret:     o.hookKey,
		VoiceWebhookKey: o.hookKeys,
		Clock:           cp.Clock,
		Logger:          log,
		Dispatch:        cp.Dispatch,
		Ledger:          cp.Ledger,
		SMSReceipts:     cp.SMSReceipts,
		// The table's stream triggers the fan-out (the webhooks function).
		WebhookTimer:        cp.WebhookTimer,
		WebhookURLs:         WebhookURLs(o.fn.WebhookLoopbackHTTP, nil),
		WebhookLoopbackHTTP: cp.WebhookLoopbackHTTP,
	})
	if err != nil {
		panic(err) // every port is given above
	}
	a.Service, a.Dispatcher, a.API, a.Feedback, a.Webhooks = g.Service, g.Dispatcher, g.API, g.Feedback, g.WebhookDeliveries
	a.core = &awsfn.Core{Config: cfg, Dispatcher: g.Dispatcher, Webhooks: g.WebhookDeliveries, WebhookTimer: ad.WebhookTimer,
		Log: log, Now: o.fn.Now}
	if cfg.RateLimit.Enabled() {
		// Each company's bucket is an item of the table, shared by every
		// instance of the api function (internal/store/dynamo, ratelimit.go).
		a.API.SetRateLimiter(ratelimit.New(a.Store, cfg.RateLimit, o.fn.Now))
	}
	return a
}

// Handle is what the dispatch function does with a fire (awsfn.Core.Handle).
func (a *AWS) Handle(ctx context.Context, f comms.Fire) error { return a.core.Handle(ctx, f) }

// WebhookSweepGrace is how overdue a pending webhook delivery must be
// before the sweeper arms it again (its fire presumed lost).
const WebhookSweepGrace = awsfn.WebhookSweepGrace

// WebhookSweepLimit bounds the deliveries one sweep arms again.
const WebhookSweepLimit = awsfn.WebhookSweepLimit

// Sweep is the sweeper function's run (awsfn.Core.Sweep).
func (a *AWS) Sweep(ctx context.Context) (dispatch.SweepResult, error) { return a.core.Sweep(ctx) }

// NewAWSFromEnv is what the api function calls once at cold start: it
// reads the environment, loads the SDK config and wires everything.
func NewAWSFromEnv(ctx context.Context, need config.Needs) (*AWS, *slog.Logger, error) {
	cfg, awsCfg, log, err := awsfn.Env(ctx, need)
	if err != nil {
		return nil, nil, err
	}
	var opts []AWSOption
	if _, secret := awsfn.VoiceFromEnv(cfg, awsCfg); secret != nil {
		opts = append(opts, WithVoiceSecret(secret, cfg.VoiceProviderURL))
	}
	return NewAWS(cfg, NewClients(awsCfg), log, opts...), log, nil
}
