package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/app/core"
	"github.com/dispatcherhq/dispatcher/internal/auth"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/config"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/feedback"
	"github.com/dispatcherhq/dispatcher/internal/httpapi"
	"github.com/dispatcherhq/dispatcher/internal/mailaddr"
	"github.com/dispatcherhq/dispatcher/internal/rowview"
	"github.com/dispatcherhq/dispatcher/internal/scheduling"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
	"github.com/dispatcherhq/dispatcher/internal/webhooks/endpoints"
)

// Store is every store port the product uses (core.Store).
type Store = core.Store

// Deliver hands a due fire to the dispatcher (core.Deliver).
type Deliver = core.Deliver

// Ports are the adapters of one deployment: all that differs between the
// embedded process (SQLite, the in-process timer, the dev senders and voice
// simulator) and the AWS functions (DynamoDB, SQS + Scheduler, SES, SNS,
// Retell). Build wires them into the same Graph.
type Ports struct {
	// Store keeps rows, companies, keys and sender resources. Required.
	Store Store
	// Timer builds the timer the service and the dispatcher arm. deliver
	// is how a timer that delivers in process hands a due fire over; a
	// timer whose fires arrive from outside (the AWS timer: Scheduler and
	// SQS invoke the dispatch function) ignores it. Required.
	Timer func(deliver Deliver) comms.Timer
	// Email and SMS are the senders. Required.
	Email dispatch.EmailSender
	SMS   dispatch.SMSSender
	// Voice builds the voice caller. webhooks is the HTTP API, where a
	// simulator posts the outcomes of its calls; a real provider's client
	// ignores it. Nil: calls fail as voice_not_configured.
	Voice func(webhooks http.Handler) dispatch.VoiceCaller
	// Identities tells which domains a company may declare as
	// settings.sending_domains: on AWS the SES identity check
	// (ses.Identities), in the embedded mode AnyDomain. Required.
	Identities scheduling.IdentityVerifier
	// VoiceSecret verifies voice webhooks; empty refuses every delivery.
	VoiceSecret string
	// VoiceWebhookKey, when set, replaces VoiceSecret: it returns the key
	// when a webhook arrives (AWS: read lazily from Secrets Manager).
	VoiceWebhookKey func(ctx context.Context) (string, error)
	// Clock is the time of the service, the dispatcher and the webhook
	// verification; default time.Now.
	Clock func() time.Time
	// Logger receives what the parts log; default: discard.
	Logger *slog.Logger
	// Dispatch tunes retries and leases (zero fields: the defaults).
	Dispatch dispatch.Config
	// Instance names this process on the leases its dispatcher takes
	// (dispatch.WithInstance); empty: leases name no owner.
	Instance string
	// Ledger is the provider's record the sweeper asks before sending an
	// uncertain attempt again (dispatch.AttemptLedger): the dev senders'
	// outbox in the embedded mode, feedback.SMSLedger on AWS (where SES's
	// SEND event settles an email by itself through Feedback); nil: none.
	Ledger dispatch.AttemptLedger
	// WebhookURLs checks the URL of every webhook endpoint registered or
	// patched in; default WebhookURLs(false, nil) (https to public
	// addresses only). The embedded mode passes WebhookURLs(true, nil)
	// (also http to a loopback host).
	WebhookURLs webhooks.URLChecker
	// WebhookSecrets makes endpoints' signing secrets; default
	// webhooks.NewSecret.
	WebhookSecrets webhooks.SecretMaker
	// WebhookFanOut, when true, fans each company's events out to its
	// webhook endpoints in process, after every write that records events
	// (the embedded mode: one process owns the store), and makes their
	// attempts through the timer. False: the fan-out is triggered from
	// outside (AWS: the table's stream → the webhooks function).
	WebhookFanOut bool
	// WebhookTimer arms the webhook fires (attempts, fan-outs); nil: Timer's.
	// On AWS it is a timer of its own over the webhook queue, so that
	// webhook attempts run in the webhooks function, never in dispatch.
	WebhookTimer comms.Timer
	// WebhookClient makes webhook attempts; default webhooks.NewClient over
	// netguard.Transport with WebhookLoopbackHTTP.
	WebhookClient *http.Client
	// WebhookLoopbackHTTP allows webhook endpoints on loopback over http
	// (the embedded mode, so that a local receiver works).
	WebhookLoopbackHTTP bool
	// SMSReceipts, when set, keeps the SMS delivery reports no row claims
	// (feedback.WithSMSReceipts), for an SMSLedger to find.
	SMSReceipts feedback.SMSReceipts
}

// Graph is the product wired over one set of Ports.
type Graph struct {
	Store      Store
	Timer      comms.Timer
	Service    *scheduling.Service
	Dispatcher *dispatch.Dispatcher
	API        *httpapi.API
	// Feedback records the providers' delivery reports (SES events, SNS
	// SMS delivery status) on the rows.
	Feedback *feedback.Recorder
	// Webhooks manages the companies' status-webhook endpoints.
	Webhooks *endpoints.Service
	// WebhookDeliveries fans events out to endpoints and makes the attempts.
	WebhookDeliveries *webhooks.Engine
}

// Build wires the product in dependency order: the core (internal/app/core:
// store → timer → dispatcher → feedback → webhook engine), then the
// service, the API and the voice webhooks. Two edges of the graph point
// backwards:
//
//   - the timer delivers due fires to the dispatcher, which is built after
//     it because the dispatcher arms the timer: core.Build closes it;
//   - the voice caller of the embedded mode (the simulator) posts call
//     outcomes to the API, which is built after the dispatcher that places
//     the calls: closed here, the one place the API is built.
//
// Each is closed by a forwarder, handed to the factory in Ports, that calls
// through the finished graph. Build fills the Graph before it returns, and
// nothing calls a forwarder before then: the local timer delivers only once
// its Run is called, and the simulator posts only about a call the
// dispatcher placed.
//
// Build fails only when a required port is missing.
func Build(p Ports) (*Graph, error) {
	cp := core.Ports{Store: p.Store, Timer: p.Timer, Email: p.Email, SMS: p.SMS,
		Clock: p.Clock, Logger: p.Logger, Dispatch: p.Dispatch, Instance: p.Instance, Ledger: p.Ledger, SMSReceipts: p.SMSReceipts,
		WebhookFanOut: p.WebhookFanOut, WebhookTimer: p.WebhookTimer, WebhookClient: p.WebhookClient,
		WebhookLoopbackHTTP: p.WebhookLoopbackHTTP, Render: rowview.WebhookPayload}
	missing := cp.Missing()
	if p.Identities == nil {
		missing = errors.Join(missing, errors.New("app.Build: Ports.Identities is required"))
	}
	// The deployment's own sender domain is reserved (no company may
	// declare it): a default From that names none would reserve nothing.
	reserved := mailaddr.DomainOf(p.Dispatch.WithDefaults().DefaultFrom)
	if reserved == "" {
		missing = errors.Join(missing, fmt.Errorf("app.Build: the default From address %q is not a bare address (name@domain, as %s takes it)",
			p.Dispatch.DefaultFrom, config.EnvDefaultFromEmail))
	}
	if missing != nil {
		return nil, missing
	}
	now := p.Clock
	if now == nil {
		now = time.Now
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Graph{Store: p.Store}
	// The API back edge (see above): a forwarder into the finished graph.
	apiHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.API.ServeHTTP(w, r) })
	var voice dispatch.VoiceCaller
	if p.Voice != nil {
		voice = p.Voice(apiHandler)
	}
	cp.Voice, cp.Clock, cp.Logger = voice, now, log
	c, err := core.Build(cp)
	if err != nil {
		return nil, fmt.Errorf("app.Build: %w", err)
	}
	g.Timer, g.Dispatcher, g.Feedback, g.WebhookDeliveries = c.Timer, c.Dispatcher, c.Feedback, c.WebhookDeliveries
	g.Service = scheduling.NewService(c.Writes, scheduling.WithTimer(g.Timer), scheduling.WithClock(now), scheduling.WithLogger(log),
		scheduling.WithIdentityVerifier(p.Identities),
		scheduling.WithReservedDomains(reserved))
	g.API = httpapi.New(g.Service, auth.NewAuthenticator(p.Store), log)
	if r, ok := p.Store.(interface{ Ready(context.Context) error }); ok {
		// GET /readyz: 503 while the store cannot commit (SQLite) or answer
		// (DynamoDB).
		g.API.SetReadiness(now, httpapi.ReadyCheck{Name: "store", Check: r.Ready})
	}
	urls, secrets := p.WebhookURLs, p.WebhookSecrets
	if urls == nil {
		urls = WebhookURLs(false, nil)
	}
	if secrets == nil {
		secrets = webhooks.NewSecret
	}
	wh, err := endpoints.NewService(endpoints.Options{Store: p.Store, Secrets: secrets, URLs: urls, Clock: now, Logger: log})
	if err != nil {
		return nil, err
	}
	g.Webhooks = wh
	g.API.SetWebhookEndpoints(wh)
	g.API.SetWebhookDeliveries(g.WebhookDeliveries)
	g.API.SetVoiceWebhooks(&VoiceHooks{Secret: p.VoiceSecret, Key: p.VoiceWebhookKey, Dispatcher: g.Dispatcher, Now: now, Log: log})
	return g, nil
}

// AnyDomain is the identity check of the embedded mode: nothing leaves the
// machine, so a company may declare any domain as a sending domain.
type AnyDomain struct{}

// VerifiedForSending accepts every domain.
func (AnyDomain) VerifiedForSending(context.Context, string) (bool, error) { return true, nil }

var _ scheduling.IdentityVerifier = AnyDomain{}
