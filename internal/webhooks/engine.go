package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// Feed is what the engine reads of the lifecycle: a company's events in
// feed order, and the rows they are about.
type Feed interface {
	ListCompanyEvents(ctx context.Context, companyID string, f comms.EventFilter) ([]comms.Event, string, bool, error)
	GetCommunication(ctx context.Context, companyID, id string) (comms.Communication, error)
}

// Renderer builds the body of an event's message, as the issue fixes it:
// {"type": <event type>, "timestamp": <event time>, "data": {"event":
// <the event as the API shows it>, "communication": <the row as GET
// returns it>}}. The HTTP layer owns both views, so it provides this.
type Renderer func(ev comms.Event, row comms.Communication) ([]byte, error)

// Timer arms a delivery's next attempt: the product's timer port, with a
// fire of kind FireKind (see DeliveryFire).
type Timer interface {
	Arm(ctx context.Context, f comms.Fire, at time.Time) error
}

// FireKind marks the timer fires of webhook deliveries; other fires are
// the dispatcher's.
const FireKind = "webhook"

// FanOutFireKind marks the timer fires that ask for a company's events to
// be fanned out (the AWS fan-out: a stream record of an event arms one;
// see FanOutFire).
const FanOutFireKind = "webhook_fanout"

// FanOutFire is the fire that fans out the company's events once due;
// token names what armed it (for the logs).
func FanOutFire(companyID, token string, due time.Time) comms.Fire {
	return comms.Fire{Kind: FanOutFireKind, CompanyID: companyID, CommunicationID: FanOutFireKind, Token: token, DueAt: due.UTC()}
}

// DeliveryFire is the timer fire of a delivery's next attempt.
func DeliveryFire(d Delivery) comms.Fire {
	return comms.Fire{Kind: FireKind, CompanyID: d.CompanyID, CommunicationID: d.EndpointID, Token: d.ID, DueAt: d.NextAttemptAt.UTC()}
}

// fanOutPage bounds how many events one fan-out write takes, so that the
// deliveries it makes fit one atomic write (MaxFanOut).
const fanOutPage = 25

// Engine delivers each company's events to its endpoints. NewEngine makes one.
//
//   - FanOut follows the company's event feed from a cursor kept in the
//     store: each event after it becomes one Delivery per enabled endpoint
//     that wants its type and existed when it happened, written with the
//     cursor's move in one atomic write (a crash replays the page; the
//     deliveries' ids make the replay write nothing twice).
//   - Deliver makes a delivery's next attempt when its fire comes due:
//     signed, through the SSRF-checked client; success ends it, 410 Gone
//     disables the endpoint, anything else is retried on RetrySchedule
//     (eight attempts over about 27.6 hours) by arming the timer again.
type Engine struct {
	feed       Feed
	endpoints  EndpointStore
	deliveries DeliveryStore
	timer      Timer
	client     *http.Client
	render     Renderer
	now        func() time.Time
	log        *slog.Logger
	jitter     func() float64
	locks      sync.Map // company id → *sync.Mutex: one fan-out per company at a time
	pending    sync.Map // company id → *notified
	slots      sync.Map // endpoint id → chan struct{}: its attempts in flight (PerEndpoint)
	inflight   sync.Map // delivery id → true while its attempt runs
	breakers   sync.Map // endpoint id → *breaker
	// perEndpoint is the size of each endpoint's slots.
	perEndpoint int
	pingWait    time.Duration
	ctx         context.Context // cancelled by Close: queued attempts give up, running ones end
	stop        context.CancelFunc
	running     sync.WaitGroup
}

// notified coalesces the notifications of one company: while a fan-out
// runs, more notifications ask for one more run, not one each.
type notified struct {
	mu             sync.Mutex
	running, again bool
}

// Notify asks for the company's new events to be fanned out, in the
// background (the embedded mode calls it after every write that records
// events; a restart catches up with FanOut). Notifications while a
// fan-out runs coalesce into one more run.
func (e *Engine) Notify(companyID string) {
	v, _ := e.pending.LoadOrStore(companyID, &notified{})
	n := v.(*notified)
	n.mu.Lock()
	if n.running {
		n.again = true
		n.mu.Unlock()
		return
	}
	n.running = true
	n.mu.Unlock()
	e.running.Go(func() {
		for {
			switch err := e.FanOut(e.ctx, companyID); {
			case err == nil:
			case e.ctx.Err() != nil:
				// Stopping: what is left is fanned out at the next start
				// (the cursor says what is left), not an error.
				e.log.Debug("webhook fan-out stopped with the engine", "company_id", companyID, "error", err.Error())
			default:
				e.log.Error("webhook fan-out failed; the next write or the sweep retries it", "company_id", companyID, "error", err.Error())
			}
			n.mu.Lock()
			if !n.again {
				n.running = false
				n.mu.Unlock()
				return
			}
			n.again = false
			n.mu.Unlock()
		}
	})
}

// Sweep makes the attempts whose fires were lost (a restart, a full
// timer): pending deliveries due before t are delivered now. It returns
// how many it tried.
func (e *Engine) Sweep(ctx context.Context, t time.Time, limit int) (int, error) {
	ds, err := e.deliveries.DueDeliveries(ctx, t, limit)
	if err != nil {
		return 0, fmt.Errorf("store.DueDeliveries: %w", err)
	}
	var errs []error
	for _, d := range ds {
		if err := e.Deliver(ctx, DeliveryFire(d)); err != nil {
			errs = append(errs, err)
		}
	}
	return len(ds), errors.Join(errs...)
}

// EngineOptions are the engine's ports. Now defaults to time.Now, Log to
// a discarding logger, Jitter to math/rand.
type EngineOptions struct {
	Feed       Feed
	Endpoints  EndpointStore
	Deliveries DeliveryStore
	Timer      Timer
	Client     *http.Client
	Render     Renderer
	Now        func() time.Time
	Log        *slog.Logger
	Jitter     func() float64
	// PerEndpoint bounds the attempts to one endpoint in flight at once;
	// 0 means the package's PerEndpoint.
	PerEndpoint int
	// PingSlotWait bounds a test message's wait for a slot; 0 means the
	// package's PingSlotWait.
	PingSlotWait time.Duration
}

// NewEngine returns an engine over o.
func NewEngine(o EngineOptions) *Engine {
	e := &Engine{feed: o.Feed, endpoints: o.Endpoints, deliveries: o.Deliveries, timer: o.Timer, client: o.Client,
		render: o.Render, now: o.Now, log: o.Log, jitter: o.Jitter, perEndpoint: o.PerEndpoint}
	if e.perEndpoint <= 0 {
		e.perEndpoint = PerEndpoint
	}
	if e.pingWait = o.PingSlotWait; e.pingWait <= 0 {
		e.pingWait = PingSlotWait
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.jitter == nil {
		e.jitter = rand.Float64
	}
	e.ctx, e.stop = context.WithCancel(context.Background())
	return e
}

// Close stops the engine: attempts waiting for a slot are dropped (their
// deliveries stay pending; a restart's sweep sends them), running ones are
// cancelled, and fan-outs in progress finish. It waits for all of them.
func (e *Engine) Close() {
	e.stop()
	e.running.Wait()
}

func (e *Engine) clock() time.Time { return e.now().UTC().Truncate(time.Millisecond) }

// FanOut turns the company's events after its fan-out cursor into
// deliveries and arms their first attempts.
func (e *Engine) FanOut(ctx context.Context, companyID string) error {
	mu, _ := e.locks.LoadOrStore(companyID, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	eps, err := e.enabledEndpoints(ctx, companyID)
	if err != nil {
		return err
	}
	for {
		cursor, err := e.deliveries.FanOutCursor(ctx, companyID)
		if err != nil {
			return fmt.Errorf("store.FanOutCursor: %w", err)
		}
		now := e.clock()
		evs, next, more, err := e.feed.ListCompanyEvents(ctx, companyID, comms.EventFilter{After: cursor, Limit: fanOutPage, Now: now})
		if err != nil {
			return fmt.Errorf("store.ListCompanyEvents: %w", err)
		}
		if len(evs) == 0 {
			return nil
		}
		ds, err := e.deliveriesOf(ctx, companyID, eps, evs, now)
		if err != nil {
			return err
		}
		err = e.deliveries.FanOut(ctx, companyID, cursor, next, ds)
		if errors.Is(err, comms.ErrConflict) {
			continue // another process moved the cursor: read it again
		}
		if err != nil {
			return fmt.Errorf("store.FanOut: %w", err)
		}
		for _, d := range ds {
			if err := e.timer.Arm(ctx, DeliveryFire(d), d.NextAttemptAt); err != nil {
				e.log.WarnContext(ctx, "arming a webhook delivery failed; the sweep will send it", "webhook_id", d.ID, "error", err.Error())
			}
		}
		if !more {
			return nil
		}
	}
}

func (e *Engine) enabledEndpoints(ctx context.Context, companyID string) ([]Endpoint, error) {
	var out []Endpoint
	after := ""
	for {
		page, more, err := e.endpoints.ListWebhookEndpoints(ctx, companyID, after, 100)
		if err != nil {
			return nil, fmt.Errorf("store.ListWebhookEndpoints: %w", err)
		}
		for _, ep := range page {
			if !ep.Disabled {
				out = append(out, ep)
			}
		}
		if !more || len(page) == 0 {
			return out, nil
		}
		after = page[len(page)-1].ID
	}
}

// deliveriesOf makes the deliveries of a page of events: one per event and
// enabled endpoint that wants its type and was registered when it happened.
func (e *Engine) deliveriesOf(ctx context.Context, companyID string, eps []Endpoint, evs []comms.Event, now time.Time) ([]Delivery, error) {
	var ds []Delivery
	rows := map[string]comms.Communication{}
	for _, ev := range evs {
		var body []byte
		for _, ep := range eps {
			if !ep.Wants(ev.Type) || ev.At.Before(ep.CreatedAt) {
				continue
			}
			if body == nil {
				row, ok := rows[ev.CommunicationID]
				if !ok {
					var err error
					if row, err = e.feed.GetCommunication(ctx, companyID, ev.CommunicationID); err != nil {
						return nil, fmt.Errorf("store.GetCommunication: %w", err)
					}
					rows[ev.CommunicationID] = row
				}
				var err error
				if body, err = e.render(ev, row); err != nil {
					return nil, fmt.Errorf("webhooks.render: %w", err)
				}
			}
			ds = append(ds, Delivery{ID: DeliveryID(ep.ID, ev.ID), CompanyID: companyID, EndpointID: ep.ID, EventID: ev.ID,
				EventType: ev.Type, CommunicationID: ev.CommunicationID, Payload: body, State: DeliveryPending,
				NextAttemptAt: now, CreatedAt: now, UpdatedAt: now})
		}
	}
	return ds, nil
}

// take reads the delivery a fire names and reports whether its attempt is
// to be made now, by the caller, which then holds it in flight (and
// removes it from e.inflight when done). A delivery gone, settled or moved
// on drops the fire; one not due yet re-arms it; one whose attempt is
// already running arms the fire again a moment later (busy).
func (e *Engine) take(ctx context.Context, f comms.Fire) (Delivery, bool, error) {
	d, err := e.deliveries.GetDelivery(ctx, f.CompanyID, f.CommunicationID, f.Token)
	if errors.Is(err, comms.ErrNotFound) {
		return Delivery{}, false, nil
	}
	if err != nil {
		return Delivery{}, false, fmt.Errorf("store.GetDelivery: %w", err)
	}
	if d.State != DeliveryPending || stale(f, d) {
		return Delivery{}, false, nil
	}
	if now := e.clock(); now.Before(d.NextAttemptAt) {
		return Delivery{}, false, e.timer.Arm(ctx, DeliveryFire(d), d.NextAttemptAt)
	}
	if _, busy := e.inflight.LoadOrStore(d.ID, true); busy {
		return Delivery{}, false, e.busy(ctx, f)
	}
	return d, true, nil
}

// Deliver makes the next attempt of the delivery a fire names, when it is
// still pending and due; a fire of anything else is dropped.
func (e *Engine) Deliver(ctx context.Context, f comms.Fire) error {
	d, due, err := e.take(ctx, f)
	if !due {
		return err
	}
	// The attempt runs on a goroutine of its own that waits for one of the
	// endpoint's PerEndpoint slots: the timer's workers (which also dispatch
	// the communications) never wait on a receiver, and a slow or dead
	// endpoint holds only its own slots — its messages queue behind each
	// other, nobody else's do. The delivery and its endpoint are read again
	// once a slot is taken: a message that waited must go to the endpoint as
	// it is then (moved, disabled, deleted, its secrets rotated).
	slots, _ := e.slots.LoadOrStore(d.EndpointID, make(chan struct{}, e.perEndpoint))
	e.running.Go(func() {
		defer e.inflight.Delete(d.ID)
		select {
		case slots.(chan struct{}) <- struct{}{}:
		case <-e.ctx.Done():
			return // stopping: the fire is lost, the restart's sweep sends it
		}
		defer func() { <-slots.(chan struct{}) }()
		if err := e.attemptNow(e.ctx, d.CompanyID, d.EndpointID, d.ID); err != nil {
			e.log.Error("recording a webhook attempt failed; the sweep retries it", "webhook_id", d.ID, "error", err.Error())
		}
	})
	return nil
}

// HandleFire handles a webhook fire on the caller's goroutine, returning
// once the work is done (the AWS webhooks function: an invocation must not
// return before its attempts end):
//
//   - a FanOutFireKind fire fans out its company's events (re-armed when it
//     came early: the feed returns an event only once it has settled);
//   - a FireKind fire makes the delivery's attempt when it is pending and
//     due, waiting for one of the endpoint's PerEndpoint slots in this
//     process (ctx bounds the wait and the send).
//
// Another kind of fire is an error. The error is a store's, and retrying
// the fire is right.
func (e *Engine) HandleFire(ctx context.Context, f comms.Fire) error {
	switch f.Kind {
	case FanOutFireKind:
		if e.clock().Before(f.DueAt) {
			return e.timer.Arm(ctx, f, f.DueAt)
		}
		return e.FanOut(ctx, f.CompanyID)
	case FireKind:
	default:
		return fmt.Errorf("webhooks.HandleFire: a fire of kind %q is not a webhook's", f.Kind)
	}
	d, due, err := e.take(ctx, f)
	if !due {
		return err
	}
	defer e.inflight.Delete(d.ID)
	slots, _ := e.slots.LoadOrStore(d.EndpointID, make(chan struct{}, e.perEndpoint))
	select {
	case slots.(chan struct{}) <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("webhooks.HandleFire: waiting for a slot of endpoint %s: %w", d.EndpointID, ctx.Err())
	}
	defer func() { <-slots.(chan struct{}) }()
	return e.attemptNow(ctx, d.CompanyID, d.EndpointID, d.ID)
}

// BusyRetry is how soon a fire that found its delivery's attempt still
// running (a manual retry made during an attempt, a sweep meeting a fire)
// comes again.
const BusyRetry = time.Second

// busy arms f again BusyRetry from now: its delivery's attempt is running.
// When that attempt is recorded, f is either stale (the attempt moved the
// delivery on) and dropped, or still due (a manual retry made meanwhile)
// and sent — a retry is never lost behind the attempt it met.
func (e *Engine) busy(ctx context.Context, f comms.Fire) error {
	return e.timer.Arm(ctx, f, e.clock().Add(BusyRetry))
}

// stale reports whether f was armed for another attempt of d than its
// next one. Every write that moves a delivery's NextAttemptAt arms a fire
// due then (and the sweeps arm one for the stored time), so a fire due at
// another time — an attempt already made, a schedule a manual retry
// replaced — is dropped: otherwise each such fire would re-arm itself
// forever beside the real one. A second of tolerance covers stores that
// keep times coarser than the fire; a fire without DueAt is never stale.
func stale(f comms.Fire, d Delivery) bool {
	if f.DueAt.IsZero() {
		return false
	}
	diff := f.DueAt.Sub(d.NextAttemptAt)
	return diff > time.Second || diff < -time.Second
}

// Rearm arms again the attempts whose fires were lost (a failed arm, a
// crash between a write and its arm): pending deliveries due before t. It
// returns how many it armed. The AWS sweeper calls it every minute.
func (e *Engine) Rearm(ctx context.Context, t time.Time, limit int) (int, error) {
	ds, err := e.deliveries.DueDeliveries(ctx, t, limit)
	if err != nil {
		return 0, fmt.Errorf("store.DueDeliveries: %w", err)
	}
	var errs []error
	for _, d := range ds {
		if err := e.timer.Arm(ctx, DeliveryFire(d), d.NextAttemptAt); err != nil {
			errs = append(errs, fmt.Errorf("timer.Arm: %w", err))
		}
	}
	return len(ds), errors.Join(errs...)
}

// PingSlotWait is how long a test message waits for one of its endpoint's
// PerEndpoint slots before it is refused with ErrEndpointBusy.
const PingSlotWait = 2 * time.Second

// ErrEndpointBusy refuses a test message to an endpoint whose every slot
// is taken by attempts in flight.
var ErrEndpointBusy = errors.New("webhooks: the endpoint has the most attempts in flight")

// PingType is the event type of a test message (POST
// /v1/webhook-endpoints/{id}/test).
const PingType = "ping"

// Ping sends the endpoint a signed test message now and returns its
// webhook-id and what the attempt did. The message is not stored, not
// retried and does not count towards the endpoint's health; it is sent to
// a disabled endpoint too (to check it before enabling it again).
// Errors: comms.ErrNotFound when the endpoint is not the company's.
func (e *Engine) Ping(ctx context.Context, companyID, endpointID string) (string, Attempt, error) {
	ep, err := e.endpoints.GetWebhookEndpoint(ctx, companyID, endpointID)
	if err != nil {
		return "", Attempt{}, fmt.Errorf("store.GetWebhookEndpoint: %w", err)
	}
	now := e.clock()
	ep = ep.Live(now)
	secrets := make([]string, len(ep.Secrets))
	for i, s := range ep.Secrets {
		secrets[i] = s.Value
	}
	id, err := newPingID()
	if err != nil {
		return "", Attempt{}, err
	}
	body, err := json.Marshal(map[string]any{"type": PingType, "timestamp": now.Format(time.RFC3339Nano),
		"data": map[string]any{"endpoint_id": ep.ID, "message": "A test message from Dispatcher: this endpoint receives and verifies webhooks."}})
	if err != nil {
		return "", Attempt{}, fmt.Errorf("json.Marshal: %w", err)
	}
	// A test message takes one of the endpoint's slots like any attempt,
	// so tests cannot add connections to an endpoint already at its limit
	// (a hanging one): they wait PingSlotWait at most, then are refused.
	slots, _ := e.slots.LoadOrStore(ep.ID, make(chan struct{}, e.perEndpoint))
	wait, cancel := context.WithTimeout(ctx, e.pingWait)
	defer cancel()
	select {
	case slots.(chan struct{}) <- struct{}{}:
		defer func() { <-slots.(chan struct{}) }()
	case <-wait.Done():
		return "", Attempt{}, fmt.Errorf("webhooks.Ping: endpoint %s: %w", ep.ID, ErrEndpointBusy)
	}
	a := Send(ctx, e.client, Request{URL: ep.URL, MsgID: id, Body: body, Secrets: secrets}, now)
	e.log.LogAttrs(ctx, levelOf(a), MsgWebhookAttempt, slog.String("webhook_id", id), slog.String("company_id", companyID),
		slog.String("endpoint_id", ep.ID), slog.String("event_type", PingType), slog.Int("attempt", 1),
		slog.String("result", string(a.Result)), slog.Int("status_code", a.StatusCode), slog.Float64("duration_ms", a.DurationMS),
		slog.String("error", a.Error))
	return id, a, nil
}

// attemptNow reads the delivery and its endpoint as they are now and, if
// the delivery is still pending and due, makes its attempt. The send is
// cancelled with sendCtx (Close, or the end of a Lambda invocation); its
// recording is not (an attempt that was made is recorded).
func (e *Engine) attemptNow(sendCtx context.Context, companyID, endpointID, id string) error {
	ctx := context.WithoutCancel(sendCtx)
	d, err := e.deliveries.GetDelivery(ctx, companyID, endpointID, id)
	if errors.Is(err, comms.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store.GetDelivery: %w", err)
	}
	now := e.clock()
	if d.State != DeliveryPending || now.Before(d.NextAttemptAt) {
		return nil // settled, or moved on, while it waited
	}
	ep, err := e.endpoints.GetWebhookEndpoint(ctx, companyID, endpointID)
	switch {
	case errors.Is(err, comms.ErrNotFound):
		return e.abandon(ctx, d, now, "the endpoint was deleted")
	case err != nil:
		return fmt.Errorf("store.GetWebhookEndpoint: %w", err)
	case ep.Disabled:
		return e.abandon(ctx, d, now, "the endpoint is disabled ("+string(ep.DisabledReason)+")")
	}
	if until, open := e.breaker(ep.ID).open(now); open {
		return e.hold(ctx, d, until)
	}
	return e.attempt(sendCtx, ctx, d, ep, now)
}

// hold moves a delivery whose endpoint's breaker is open to when it
// closes (with jitter), without an attempt: the endpoint failed
// BreakerThreshold times in a row, so its other messages wait instead of
// each spending a connection on it (a dead endpoint then costs a probe per
// BreakerCooldown, not one attempt per message).
func (e *Engine) hold(ctx context.Context, d Delivery, until time.Time) error {
	d.NextAttemptAt = until.Add(time.Duration(float64(BreakerCooldown) * 0.5 * e.jitter())).Truncate(time.Millisecond)
	d.UpdatedAt = e.clock()
	stored, err := e.deliveries.UpdateDelivery(ctx, d)
	if errors.Is(err, comms.ErrConflict) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store.UpdateDelivery: %w", err)
	}
	e.log.DebugContext(ctx, "webhook attempt held: the endpoint's breaker is open", "webhook_id", d.ID,
		"endpoint_id", d.EndpointID, "next_attempt_at", stored.NextAttemptAt)
	return e.timer.Arm(ctx, DeliveryFire(stored), stored.NextAttemptAt)
}

// The breaker of an endpoint, kept per process.
const (
	// BreakerThreshold is how many attempts in a row must fail before an
	// endpoint's other messages are held.
	BreakerThreshold = 5
	// BreakerCooldown is how long they are held; then one attempt probes.
	BreakerCooldown = 30 * time.Second
)

type breaker struct {
	mu        sync.Mutex
	fails     int
	openUntil time.Time
}

func (e *Engine) breaker(endpointID string) *breaker {
	b, _ := e.breakers.LoadOrStore(endpointID, &breaker{})
	return b.(*breaker)
}

// open reports whether an attempt at now is held, and until when. Once a
// cool-down has passed, the first caller is let through as the probe and
// the others are held for another cool-down while it runs (half-open): a
// dead endpoint gets one connection per BreakerCooldown, not one per
// slot.
func (b *breaker) open(now time.Time) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Before(b.openUntil) {
		return b.openUntil, true
	}
	if b.fails >= BreakerThreshold {
		b.openUntil = now.Add(BreakerCooldown)
	}
	return time.Time{}, false
}

// record counts an attempt's result: a success closes the breaker, the
// BreakerThreshold-th failure in a row (and every one after) opens it for
// BreakerCooldown.
func (b *breaker) record(ok bool, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok {
		b.fails, b.openUntil = 0, time.Time{}
		return
	}
	b.fails++
	if b.fails >= BreakerThreshold {
		b.openUntil = now.Add(BreakerCooldown)
	}
}

// abandon fails a delivery that will not be sent (its endpoint is gone or
// disabled) without inventing an attempt: the reason is logged.
func (e *Engine) abandon(ctx context.Context, d Delivery, now time.Time, why string) error {
	e.log.InfoContext(ctx, "webhook message not sent", "webhook_id", d.ID, "endpoint_id", d.EndpointID, "reason", why)
	d.State, d.NextAttemptAt, d.UpdatedAt = DeliveryFailed, time.Time{}, now
	_, err := e.deliveries.UpdateDelivery(ctx, d)
	if err != nil && !errors.Is(err, comms.ErrConflict) {
		return fmt.Errorf("store.UpdateDelivery: %w", err)
	}
	return nil
}

// PerEndpoint is how many attempts to one endpoint run at once in one
// process, unless EngineOptions.PerEndpoint says otherwise: enough for a
// receiver answering in 200 ms to take 160 messages a second, few enough
// not to flood a small one. On AWS it holds per warm instance of the
// webhooks function.
const PerEndpoint = 32

// attempt makes one attempt of d to ep (the send cancelled with sendCtx)
// and records it, then what it says of the endpoint's health.
func (e *Engine) attempt(sendCtx, ctx context.Context, d Delivery, ep Endpoint, now time.Time) error {
	ep = ep.Live(now)
	secrets := make([]string, len(ep.Secrets))
	for i, s := range ep.Secrets {
		secrets[i] = s.Value
	}
	a := Send(sendCtx, e.client, Request{URL: ep.URL, MsgID: d.ID, Body: d.Payload, Secrets: secrets}, now)
	e.breaker(ep.ID).record(a.Result == Succeeded, now)
	e.log.LogAttrs(ctx, levelOf(a), MsgWebhookAttempt, slog.String("webhook_id", d.ID), slog.String("company_id", d.CompanyID),
		slog.String("endpoint_id", d.EndpointID), slog.String("event_type", string(d.EventType)), slog.Int("attempt", len(d.Attempts)+1),
		slog.String("result", string(a.Result)), slog.Int("status_code", a.StatusCode), slog.Float64("duration_ms", a.DurationMS),
		slog.String("error", a.Error))
	switch a.Result {
	case Succeeded:
		return errors.Join(e.finish(ctx, d, a, DeliverySucceeded), e.health(ctx, ep, true, now))
	case Gone:
		if err := e.disable(ctx, ep, DisabledGone, now); err != nil {
			return err
		}
		return e.finish(ctx, d, a, DeliveryFailed)
	}
	if err := e.health(ctx, ep, false, now); err != nil {
		return err
	}
	next, ok := NextRetry(len(d.Attempts)+1, now, e.jitter())
	if !ok {
		return e.finish(ctx, d, a, DeliveryFailed)
	}
	d.Attempts = append(d.Attempts, a)
	d.NextAttemptAt, d.UpdatedAt = next, now
	stored, ours, err := e.save(ctx, d, a)
	if err != nil || !ours {
		return err // not ours: the writer that moved it on armed its own fire
	}
	return e.timer.Arm(ctx, DeliveryFire(stored), stored.NextAttemptAt)
}

// save writes d, which records attempt a, on the version read. When
// another writer moved the delivery meanwhile (a manual retry made during
// the attempt), the attempt is still recorded: appended to the delivery as
// it is now, whose state and next attempt that writer chose (ours false).
// Every attempt made is recorded.
func (e *Engine) save(ctx context.Context, d Delivery, a Attempt) (stored Delivery, ours bool, err error) {
	stored, err = e.deliveries.UpdateDelivery(ctx, d)
	for range 3 {
		if !errors.Is(err, comms.ErrConflict) {
			break
		}
		cur, gerr := e.deliveries.GetDelivery(ctx, d.CompanyID, d.EndpointID, d.ID)
		if errors.Is(gerr, comms.ErrNotFound) {
			return Delivery{}, false, nil // its endpoint was deleted
		}
		if gerr != nil {
			return Delivery{}, false, fmt.Errorf("store.GetDelivery: %w", gerr)
		}
		cur.Attempts = append(cur.Attempts, a)
		if stored, err = e.deliveries.UpdateDelivery(ctx, cur); err == nil {
			return stored, false, nil
		}
	}
	if err != nil {
		return Delivery{}, false, fmt.Errorf("store.UpdateDelivery: %w", err)
	}
	return stored, true, nil
}

// MsgWebhookAttempt is the message of the one log line of each webhook
// delivery attempt.
const MsgWebhookAttempt = "webhook attempt"

func levelOf(a Attempt) slog.Level {
	if a.Result == Succeeded {
		return slog.LevelInfo
	}
	return slog.LevelWarn
}

// finish records a delivery's last attempt and final state.
func (e *Engine) finish(ctx context.Context, d Delivery, a Attempt, state DeliveryState) error {
	d.Attempts = append(d.Attempts, a)
	d.State, d.NextAttemptAt, d.UpdatedAt = state, time.Time{}, a.At
	_, _, err := e.save(ctx, d, a)
	return err
}

// health records what an attempt says of its endpoint: the first failure
// of a run sets FailingSince, a success clears it, and a failure
// FailingFor or more after the run began disables the endpoint
// (DisabledFailing). It writes only when that changes something, on the
// endpoint's version; a write that lost a race reads the endpoint again
// (a success must not leave an old FailingSince behind, or a later
// failure would disable an endpoint that works).
func (e *Engine) health(ctx context.Context, ep Endpoint, ok bool, now time.Time) error {
	for range 3 {
		switch {
		case ok && ep.FailingSince.IsZero(), !ok && !ep.FailingSince.IsZero() && now.Sub(ep.FailingSince) < FailingFor, ep.Disabled:
			return nil
		case ok:
			ep.FailingSince = time.Time{}
		case ep.FailingSince.IsZero():
			ep.FailingSince = now
		default:
			return e.disable(ctx, ep, DisabledFailing, now)
		}
		err := e.endpoints.PutWebhookEndpoint(ctx, ep)
		if errors.Is(err, comms.ErrNotFound) || err == nil {
			return nil
		}
		if !errors.Is(err, comms.ErrConflict) {
			return fmt.Errorf("store.PutWebhookEndpoint: %w", err)
		}
		if ep, err = e.endpoints.GetWebhookEndpoint(ctx, ep.CompanyID, ep.ID); err != nil {
			if errors.Is(err, comms.ErrNotFound) {
				return nil
			}
			return fmt.Errorf("store.GetWebhookEndpoint: %w", err)
		}
	}
	return nil // three writers in a row moved it: one of them recorded the news
}

// disable disables an endpoint for reason (410 Gone at once, or failing
// for days), unless it was changed meanwhile.
func (e *Engine) disable(ctx context.Context, ep Endpoint, reason DisabledReason, now time.Time) error {
	if ep.Disabled {
		return nil
	}
	ep.Disabled, ep.DisabledReason, ep.DisabledAt, ep.UpdatedAt = true, reason, now, now
	err := e.endpoints.PutWebhookEndpoint(ctx, ep)
	if errors.Is(err, comms.ErrConflict) || errors.Is(err, comms.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store.PutWebhookEndpoint: %w", err)
	}
	e.log.WarnContext(ctx, "webhook endpoint disabled", "company_id", ep.CompanyID, "endpoint_id", ep.ID, "reason", string(reason),
		"failing_since", ep.FailingSince)
	return nil
}

// Deliveries returns a page of an endpoint's deliveries, newest first, and
// the cursor of the next page ("" on the last); comms.ErrNotFound when the
// endpoint is not the company's.
func (e *Engine) Deliveries(ctx context.Context, companyID, endpointID string, f DeliveryFilter) ([]Delivery, string, error) {
	if _, err := e.endpoints.GetWebhookEndpoint(ctx, companyID, endpointID); err != nil {
		return nil, "", fmt.Errorf("store.GetWebhookEndpoint: %w", err)
	}
	ds, more, err := e.deliveries.ListDeliveries(ctx, companyID, endpointID, f)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListDeliveries: %w", err)
	}
	next := ""
	if more && len(ds) > 0 {
		next = DeliveryCursor(ds[len(ds)-1])
	}
	return ds, next, nil
}

// ErrEndpointDisabled refuses a manual retry to a disabled endpoint: the
// attempt would be abandoned at once.
var ErrEndpointDisabled = errors.New("webhooks: the endpoint is disabled")

// Retry makes a delivery due again now, whatever its state (a failed one
// gets its attempts anew from the schedule's start, its earlier attempts
// kept), and arms it.
func (e *Engine) Retry(ctx context.Context, companyID, endpointID, id string) (Delivery, error) {
	ep, err := e.endpoints.GetWebhookEndpoint(ctx, companyID, endpointID)
	if err != nil {
		return Delivery{}, fmt.Errorf("store.GetWebhookEndpoint: %w", err)
	}
	if ep.Disabled {
		return Delivery{}, fmt.Errorf("webhooks.Retry: endpoint %s: %w", endpointID, ErrEndpointDisabled)
	}
	d, err := e.deliveries.GetDelivery(ctx, companyID, endpointID, id)
	if err != nil {
		return Delivery{}, fmt.Errorf("store.GetDelivery: %w", err)
	}
	now := e.clock()
	d.State, d.NextAttemptAt, d.UpdatedAt = DeliveryPending, now, now
	stored, err := e.deliveries.UpdateDelivery(ctx, d)
	if err != nil {
		return Delivery{}, fmt.Errorf("store.UpdateDelivery: %w", err)
	}
	if err := e.timer.Arm(ctx, DeliveryFire(stored), now); err != nil {
		e.log.WarnContext(ctx, "arming a webhook retry failed; the sweep will send it", "webhook_id", id, "error", err.Error())
	}
	return stored, nil
}
