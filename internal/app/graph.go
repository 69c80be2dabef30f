package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/auth"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/feedback"
	"github.com/dispatcherhq/dispatcher/internal/httpapi"
	"github.com/dispatcherhq/dispatcher/internal/netguard"
	"github.com/dispatcherhq/dispatcher/internal/scheduling"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
	"github.com/dispatcherhq/dispatcher/internal/webhooks/endpoints"
)

// Store is every store port the product uses: the service's and the
// dispatcher's. The SQLite and DynamoDB stores implement it.
type Store interface {
	comms.Store
	dispatch.Store
	webhooks.EndpointStore
	webhooks.DeliveryStore
}

// Deliver hands a due fire to the dispatcher (it is the dispatcher's
// Handle).
type Deliver func(ctx context.Context, f comms.Fire) error

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

// Build wires the product in dependency order: store → service and timer →
// voice caller → dispatcher → API → voice webhooks. Two edges of the graph
// point backwards, and this is the one place they are closed:
//
//   - the timer delivers due fires to the dispatcher, which is built after
//     it because the dispatcher arms the timer;
//   - the voice caller of the embedded mode (the simulator) posts call
//     outcomes to the API, which is built after the dispatcher that places
//     the calls.
//
// Each is closed by a forwarder, handed to the factory in Ports, that calls
// through the finished Graph. Build fills the Graph before it returns, and
// nothing calls a forwarder before then: the local timer delivers only once
// its Run is called, and the simulator posts only about a call the
// dispatcher placed.
//
// Build fails only when a required port is missing.
func Build(p Ports) (*Graph, error) {
	var missing []error
	for _, port := range []struct {
		name   string
		absent bool
	}{{"Store", p.Store == nil}, {"Timer", p.Timer == nil}, {"Email", p.Email == nil}, {"SMS", p.SMS == nil}, {"Identities", p.Identities == nil}} {
		if port.absent {
			missing = append(missing, errors.New("app.Build: Ports."+port.name+" is required"))
		}
	}
	if err := errors.Join(missing...); err != nil {
		return nil, err
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
	// The two back edges (see above): forwarders into the finished graph.
	deliver := func(ctx context.Context, f comms.Fire) error {
		if f.Kind == webhooks.FireKind {
			return g.WebhookDeliveries.Deliver(ctx, f)
		}
		return g.Dispatcher.Handle(ctx, f)
	}
	// With the in-process fan-out, every write that records events tells
	// the engine (built below) which company to fan out.
	var store Store = p.Store
	if p.WebhookFanOut {
		n := notifying{Store: p.Store, notify: func(companyID string) { g.WebhookDeliveries.Notify(companyID) }}
		store = n
		if pr, ok := p.Store.(dispatch.ProcessingReader); ok {
			store = notifyingProcessing{notifying: n, pr: pr}
		}
	}
	apiHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.API.ServeHTTP(w, r) })

	g.Timer = p.Timer(deliver)
	if g.Timer == nil {
		return nil, errors.New("app.Build: Ports.Timer returned no timer")
	}
	g.Service = scheduling.NewService(store, scheduling.WithTimer(g.Timer), scheduling.WithClock(now), scheduling.WithLogger(log),
		scheduling.WithIdentityVerifier(p.Identities))
	var voice dispatch.VoiceCaller = voiceUnavailable{}
	if p.Voice != nil {
		if v := p.Voice(apiHandler); v != nil {
			voice = v
		}
	}
	dopts := []dispatch.Option{dispatch.WithClock(now), dispatch.WithLogger(log), dispatch.WithInstance(p.Instance)}
	if p.Ledger != nil {
		dopts = append(dopts, dispatch.WithLedger(p.Ledger))
	}
	if lookup, ok := voice.(dispatch.CallLookup); ok {
		// The provider's record settles a call whose outcome never came.
		dopts = append(dopts, dispatch.WithCallLookup(lookup))
	}
	g.Dispatcher = dispatch.New(store, g.Timer, dispatch.Senders{Email: p.Email, SMS: p.SMS, Voice: voice}, p.Dispatch, dopts...)
	var fopts []feedback.Option
	if p.SMSReceipts != nil {
		fopts = append(fopts, feedback.WithSMSReceipts(p.SMSReceipts))
	}
	g.Feedback = feedback.New(store, log, now, fopts...)
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
	client := p.WebhookClient
	if client == nil {
		client = webhooks.NewClient(netguard.Transport(netguard.Options{AllowLoopbackHTTP: p.WebhookLoopbackHTTP}))
	}
	whTimer := p.WebhookTimer
	if whTimer == nil {
		whTimer = g.Timer
	}
	g.WebhookDeliveries = webhooks.NewEngine(webhooks.EngineOptions{Feed: p.Store, Endpoints: p.Store, Deliveries: p.Store,
		Timer: whTimer, Client: client, Render: httpapi.WebhookPayload, Now: now, Log: log})
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

// voiceUnavailable is the voice port until a provider is configured: every
// call fails permanently, naming why.
type voiceUnavailable struct{}

func (voiceUnavailable) PlaceCall(context.Context, dispatch.Call) (string, error) {
	return "", comms.Permanent("voice_not_configured", "no voice provider is configured for this deployment")
}

// notifying is the store of the in-process webhook fan-out: every write
// that records events tells notify the row's company after it commits.
// notifyingProcessing is notifying over a store that lists its processing
// rows alone: the dispatcher still finds dispatch.ProcessingReader.
type notifyingProcessing struct {
	notifying
	pr dispatch.ProcessingReader
}

func (n notifyingProcessing) ProcessingCommunications(ctx context.Context, limit int) ([]comms.Communication, error) {
	return n.pr.ProcessingCommunications(ctx, limit)
}

type notifying struct {
	Store
	notify func(companyID string)
}

func (n notifying) CreateCommunication(ctx context.Context, ch comms.Change, idem *comms.Idempotency) (int64, error) {
	credits, err := n.Store.CreateCommunication(ctx, ch, idem)
	if err == nil {
		n.notify(ch.Row.CompanyID)
	}
	return credits, err
}

func (n notifying) UpdateCommunication(ctx context.Context, ch comms.Change, debit bool) (comms.Communication, int64, error) {
	stored, credits, err := n.Store.UpdateCommunication(ctx, ch, debit)
	if err == nil && len(ch.Events) > 0 {
		n.notify(ch.Row.CompanyID)
	}
	return stored, credits, err
}
