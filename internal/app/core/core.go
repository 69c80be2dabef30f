// Package core wires the part of Dispatcher every deployment runs behind
// its API: store → timer → dispatcher, the delivery-feedback recorder and
// the status-webhook engine. internal/app's Build adds the service and the
// HTTP API on top of it (the embedded process, the api function); the
// dispatch and sweeper functions run Build alone, the events and webhooks
// functions one piece each (Feedback, Webhooks). This package imports no
// part of the API (internal/httpapi, internal/scheduling,
// internal/contract), so a function wired from it links neither the API
// nor libphonenumber (docs/design.md, "Functions").
package core

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/feedback"
	"github.com/dispatcherhq/dispatcher/internal/netguard"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
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

// Ports are the adapters the core runs over (internal/app.Ports says
// which deployment gives which).
type Ports struct {
	// Store keeps rows, companies, keys and sender resources. Required.
	Store Store
	// Timer builds the timer the dispatcher (and the service) arm. deliver
	// is how a timer that delivers in process hands a due fire over; a
	// timer whose fires arrive from outside (the AWS timer) ignores it.
	// Required by Build.
	Timer func(deliver Deliver) comms.Timer
	// Email and SMS are the senders. Required by Build.
	Email dispatch.EmailSender
	SMS   dispatch.SMSSender
	// Voice places calls; nil: calls fail as voice_not_configured.
	Voice dispatch.VoiceCaller
	// Clock is the time of every part; default time.Now.
	Clock func() time.Time
	// Logger receives what the parts log; default: discard.
	Logger *slog.Logger
	// Dispatch tunes retries and leases (zero fields: the defaults).
	Dispatch dispatch.Config
	// Instance names this process on the leases its dispatcher takes.
	Instance string
	// Ledger is the provider's record the sweeper asks before sending an
	// uncertain attempt again; nil: none.
	Ledger dispatch.AttemptLedger
	// SMSReceipts, when set, keeps the SMS delivery reports no row claims.
	SMSReceipts feedback.SMSReceipts
	// WebhookFanOut fans each company's events out in process after every
	// write that records events (the embedded mode); false: triggered from
	// outside (AWS: the table's stream → the webhooks function).
	WebhookFanOut bool
	// WebhookTimer arms the webhook fires; nil: Timer's.
	WebhookTimer comms.Timer
	// WebhookClient makes webhook attempts; default webhooks.NewClient over
	// netguard.Transport with WebhookLoopbackHTTP.
	WebhookClient *http.Client
	// WebhookLoopbackHTTP allows webhook endpoints on loopback over http.
	WebhookLoopbackHTTP bool
	// Render is the body of a status webhook (rowview.WebhookPayload).
	// Required by Build and Webhooks.
	Render webhooks.Renderer
}

// Graph is the core wired over one set of Ports.
type Graph struct {
	// Store is the bare store; Writes the one the use cases write through
	// (with the in-process fan-out's notifications when WebhookFanOut).
	Store, Writes Store
	Timer         comms.Timer
	Dispatcher    *dispatch.Dispatcher
	// Feedback records the providers' delivery reports on the rows.
	Feedback *feedback.Recorder
	// WebhookDeliveries fans events out to endpoints and makes the attempts.
	WebhookDeliveries *webhooks.Engine
}

func (p Ports) clock() func() time.Time {
	if p.Clock == nil {
		return time.Now
	}
	return p.Clock
}

func (p Ports) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Logger
}

// Build wires the core in dependency order: store → timer → dispatcher →
// feedback → webhook engine. One edge points backwards, and this is the
// one place it is closed: the timer delivers due fires to the dispatcher
// (or, for a webhook fire, the engine), both built after it because they
// arm it. A forwarder handed to Ports.Timer calls through the finished
// Graph; nothing calls it before Build returns (the local timer delivers
// only once its Run is called). The other back edge of the product (the
// voice simulator posting to the API) is closed by internal/app.Build,
// which builds the API.
//
// Build fails only when a required port is missing.
func Build(p Ports) (*Graph, error) {
	if err := p.Missing(); err != nil {
		return nil, err
	}
	now, log := p.clock(), p.logger()
	g := &Graph{Store: p.Store, Writes: p.Store}
	// The back edge (see above): a forwarder into the finished graph.
	deliver := func(ctx context.Context, f comms.Fire) error {
		if f.Kind == webhooks.FireKind {
			return g.WebhookDeliveries.Deliver(ctx, f)
		}
		return g.Dispatcher.Handle(ctx, f)
	}
	// With the in-process fan-out, every write that records events tells
	// the engine (built below) which company to fan out.
	if p.WebhookFanOut {
		n := notifying{Store: p.Store, notify: func(companyID string) { g.WebhookDeliveries.Notify(companyID) }}
		g.Writes = n
		if pr, ok := p.Store.(dispatch.ProcessingReader); ok {
			g.Writes = notifyingProcessing{notifying: n, pr: pr}
		}
	}
	g.Timer = p.Timer(deliver)
	if g.Timer == nil {
		return nil, errors.New("core.Build: Ports.Timer returned no timer")
	}
	var voice dispatch.VoiceCaller = voiceUnavailable{}
	if p.Voice != nil {
		voice = p.Voice
	}
	dopts := []dispatch.Option{dispatch.WithClock(now), dispatch.WithLogger(log), dispatch.WithInstance(p.Instance)}
	if p.Ledger != nil {
		dopts = append(dopts, dispatch.WithLedger(p.Ledger))
	}
	if lookup, ok := voice.(dispatch.CallLookup); ok {
		// The provider's record settles a call whose outcome never came.
		dopts = append(dopts, dispatch.WithCallLookup(lookup))
	}
	var fopts []feedback.Option
	if b, ok := p.Store.(dispatch.BatchStore); ok {
		// The batched hot path (docs/design.md §15): claims, results and
		// the dev senders' reports many rows per write. DynamoDB has no
		// such port and stays per row.
		var bs dispatch.BatchStore = b
		if p.WebhookFanOut {
			bs = notifyingBatch{BatchStore: b, notify: func(companyID string) { g.WebhookDeliveries.Notify(companyID) }}
		}
		dopts = append(dopts, dispatch.WithBatch(bs, dispatch.BatchConfig{}))
		fopts = append(fopts, feedback.WithBatch(bs))
	}
	g.Dispatcher = dispatch.New(g.Writes, g.Timer, dispatch.Senders{Email: p.Email, SMS: p.SMS, Voice: voice}, p.Dispatch, dopts...)
	writes := p
	writes.Store = g.Writes
	g.Feedback = Feedback(writes, fopts...)
	if p.WebhookTimer == nil {
		p.WebhookTimer = g.Timer
	}
	g.WebhookDeliveries = Webhooks(p)
	return g, nil
}

// Missing names each port Build requires that p lacks, joined; nil when
// none is missing.
func (p Ports) Missing() error {
	var missing []error
	for _, port := range []struct {
		name   string
		absent bool
	}{{"Store", p.Store == nil}, {"Timer", p.Timer == nil}, {"Email", p.Email == nil}, {"SMS", p.SMS == nil}, {"Render", p.Render == nil}} {
		if port.absent {
			missing = append(missing, errors.New("core.Build: Ports."+port.name+" is required"))
		}
	}
	return errors.Join(missing...)
}

// Feedback is the recorder of the providers' delivery reports over
// p.Store (the events function runs it alone), with opts added.
func Feedback(p Ports, opts ...feedback.Option) *feedback.Recorder {
	fopts := slices.Clone(opts)
	if p.SMSReceipts != nil {
		fopts = append(fopts, feedback.WithSMSReceipts(p.SMSReceipts))
	}
	return feedback.New(p.Store, p.logger(), p.clock(), fopts...)
}

// Webhooks is the status-webhook engine over p.Store, arming
// p.WebhookTimer and rendering with p.Render (the webhooks function runs
// it alone).
func Webhooks(p Ports) *webhooks.Engine {
	client := p.WebhookClient
	if client == nil {
		client = webhooks.NewClient(netguard.Transport(netguard.Options{AllowLoopbackHTTP: p.WebhookLoopbackHTTP}))
	}
	return webhooks.NewEngine(webhooks.EngineOptions{Feed: p.Store, Endpoints: p.Store, Deliveries: p.Store,
		Timer: p.WebhookTimer, Client: client, Render: p.Render, Now: p.clock(), Log: p.logger()})
}

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

// notifyingBatch is notifying for the batch writes of the dispatcher.
type notifyingBatch struct {
	dispatch.BatchStore
	notify func(companyID string)
}

func (n notifyingBatch) UpdateCommunications(ctx context.Context, chs []comms.Change) ([]comms.Communication, []error) {
	stored, errs := n.BatchStore.UpdateCommunications(ctx, chs)
	told := map[string]bool{}
	for i, ch := range chs {
		if errs[i] == nil && len(ch.Events) > 0 && !told[ch.Row.CompanyID] {
			told[ch.Row.CompanyID] = true
			n.notify(ch.Row.CompanyID)
		}
	}
	return stored, errs
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
