package webhooks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
	"github.com/dispatcherhq/dispatcher/internal/webhooks/endpoints"
)

// armed records the fires the engine arms, instead of a timer.
type armed struct {
	mu    sync.Mutex
	fires []comms.Fire
	ats   []time.Time
}

func (a *armed) Arm(_ context.Context, f comms.Fire, at time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fires, a.ats = append(a.fires, f), append(a.ats, at)
	return nil
}

func (a *armed) last() (comms.Fire, time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fires[len(a.fires)-1], a.ats[len(a.ats)-1]
}

// scripted is a receiver that answers every request with the status status holds and
// counts them.
type scripted struct {
	status atomic.Int32
	n      atomic.Int32
	mu     sync.Mutex
	bodies [][]byte
	heads  []http.Header
}

func (r *scripted) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.bodies, r.heads = append(r.bodies, b), append(r.heads, req.Header.Clone())
	r.mu.Unlock()
	r.n.Add(1)
	w.WriteHeader(int(r.status.Load()))
}

type engineFixture struct {
	*fixture
	eng   *webhooks.Engine
	timer *armed
	rc    *scripted
	ep    webhooks.Endpoint
}

// engineSetup is an engine over a real SQLite file, a scripted on
// loopback answering status, and one endpoint of acme pointing at it.
func engineSetup(t *testing.T, status int) *engineFixture {
	t.Helper()
	f := setup(t)
	// Real secrets: the messages are signed and verified.
	svc, err := endpoints.NewService(endpoints.Options{Store: f.store, Secrets: webhooks.NewSecret, Clock: f.clock,
		URLs: func(_ context.Context, raw string) (*url.URL, error) { return url.Parse(raw) }})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	rc := &scripted{}
	rc.status.Store(int32(status))
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	ep, err := f.svc.Create(context.Background(), f.p, []byte(fmt.Sprintf(`{"url":%q}`, srv.URL)))
	if err != nil {
		t.Fatal(err)
	}
	tm := &armed{}
	eng := webhooks.NewEngine(webhooks.EngineOptions{Feed: f.store, Endpoints: f.store, Deliveries: f.store, Timer: tm,
		Client: webhooks.NewClient(http.DefaultTransport), Now: f.clock, Jitter: func() float64 { return 0 },
		Render: func(ev comms.Event, _ comms.Communication) ([]byte, error) {
			return json.Marshal(map[string]any{"type": ev.Type})
		}})
	t.Cleanup(eng.Close)
	return &engineFixture{fixture: f, eng: eng, timer: tm, rc: rc, ep: ep}
}

// deliveries fans out n hand-made deliveries to the endpoint, due now.
func (e *engineFixture) deliveries(t *testing.T, n int) []webhooks.Delivery {
	t.Helper()
	now := e.clock()
	var ds []webhooks.Delivery
	for i := range n {
		ev := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		ds = append(ds, webhooks.Delivery{ID: webhooks.DeliveryID(e.ep.ID, ev), CompanyID: "acme", EndpointID: e.ep.ID, EventID: ev,
			EventType: comms.EventSent, CommunicationID: ev, Payload: []byte(`{"type":"sent"}`), State: webhooks.DeliveryPending,
			NextAttemptAt: now, CreatedAt: now, UpdatedAt: now})
	}
	cursor, err := e.store.FanOutCursor(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.FanOut(context.Background(), "acme", cursor, fmt.Sprintf("c%d", now.UnixNano()), ds); err != nil {
		t.Fatal(err)
	}
	return ds
}

func (e *engineFixture) endpoint(t *testing.T) webhooks.Endpoint {
	t.Helper()
	ep, err := e.store.GetWebhookEndpoint(context.Background(), "acme", e.ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// fire delivers the fire of d's next attempt, as stored now (the timer
// would).
func (e *engineFixture) fire(t *testing.T, d webhooks.Delivery) {
	t.Helper()
	cur, err := e.store.GetDelivery(context.Background(), "acme", d.EndpointID, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.eng.HandleFire(context.Background(), webhooks.DeliveryFire(cur)); err != nil {
		t.Fatal(err)
	}
}

// TestAnEndpointFailingForFiveDaysIsDisabled: the first failed attempt
// sets failing_since; failures within five days of it leave the endpoint
// enabled; the first failure five days after it disables the endpoint
// with reason failing, and the messages still pending are then failed
// without another request. A success in between starts the run afresh.
func TestAnEndpointFailingForFiveDaysIsDisabled(t *testing.T) {
	t.Parallel()
	e := engineSetup(t, 500)
	ds := e.deliveries(t, 4)
	start := e.clock()
	e.fire(t, ds[0])
	if got := e.endpoint(t); !got.FailingSince.Equal(start) || got.Disabled {
		t.Fatalf("after the first failure: failing_since %v disabled %v, want %v and enabled", got.FailingSince, got.Disabled, start)
	}
	// A success clears the run.
	e.rc.status.Store(200)
	e.advance(time.Hour)
	e.fire(t, ds[1])
	if got := e.endpoint(t); !got.FailingSince.IsZero() {
		t.Fatalf("a success left failing_since %v", got.FailingSince)
	}
	// A new run: failures for just under five days, then one at five days.
	e.rc.status.Store(503)
	e.advance(time.Hour)
	runStart := e.clock()
	e.fire(t, ds[0]) // its next attempt was due 5 s after the first
	e.advance(webhooks.FailingFor - time.Millisecond)
	e.fire(t, ds[0])
	if got := e.endpoint(t); got.Disabled || !got.FailingSince.Equal(runStart) {
		t.Fatalf("failing for just under 5 days: disabled %v, failing_since %v (want %v)", got.Disabled, got.FailingSince, runStart)
	}
	e.advance(time.Millisecond)
	e.fire(t, ds[3]) // ds[0]'s next attempt is not due yet
	got := e.endpoint(t)
	if !got.Disabled || got.DisabledReason != webhooks.DisabledFailing || !got.DisabledAt.Equal(e.clock()) {
		t.Fatalf("failing for 5 days: disabled %v reason %q at %v, want failing at %v", got.Disabled, got.DisabledReason, got.DisabledAt, e.clock())
	}
	before := e.rc.n.Load()
	e.fire(t, ds[2])
	if e.rc.n.Load() != before {
		t.Error("a message of the disabled endpoint was sent")
	}
	d, err := e.store.GetDelivery(context.Background(), "acme", e.ep.ID, ds[2].ID)
	if err != nil || d.State != webhooks.DeliveryFailed || len(d.Attempts) != 0 {
		t.Errorf("the disabled endpoint's pending message: %+v %v, want failed with no attempt", d, err)
	}
	// A manual retry to a disabled endpoint is refused; enabling it again
	// clears the health fields.
	if _, err := e.eng.Retry(context.Background(), "acme", e.ep.ID, ds[2].ID); !errors.Is(err, webhooks.ErrEndpointDisabled) {
		t.Errorf("retry to a disabled endpoint: %v, want ErrEndpointDisabled", err)
	}
	en, err := e.svc.Patch(context.Background(), e.p, e.ep.ID, []byte(`{"disabled":false}`))
	if err != nil || en.Disabled || !en.FailingSince.IsZero() || !en.DisabledAt.IsZero() || en.DisabledReason != "" {
		t.Errorf("re-enabled: %+v %v", en, err)
	}
}

// TestTheBreakerHoldsADeadEndpointsMessages: after BreakerThreshold
// failures in a row, the endpoint's other due messages are moved to the
// end of the cool-down without a request and without an attempt; after
// it, one attempt probes, and a success lets the rest through.
func TestTheBreakerHoldsADeadEndpointsMessages(t *testing.T) {
	t.Parallel()
	e := engineSetup(t, 500)
	ds := e.deliveries(t, webhooks.BreakerThreshold+2)
	for _, d := range ds[:webhooks.BreakerThreshold] {
		e.fire(t, d)
	}
	if n := e.rc.n.Load(); n != webhooks.BreakerThreshold {
		t.Fatalf("%d requests, want %d", n, webhooks.BreakerThreshold)
	}
	held := ds[webhooks.BreakerThreshold]
	e.fire(t, held)
	if n := e.rc.n.Load(); n != webhooks.BreakerThreshold {
		t.Fatalf("a message was sent while the breaker was open (%d requests)", n)
	}
	d, err := e.store.GetDelivery(context.Background(), "acme", e.ep.ID, held.ID)
	if err != nil || len(d.Attempts) != 0 || d.State != webhooks.DeliveryPending || !d.NextAttemptAt.Equal(e.clock().Add(webhooks.BreakerCooldown)) {
		t.Fatalf("held message %+v %v: want pending, no attempt, due after the cool-down", d, err)
	}
	if f, at := e.timer.last(); f.Token != held.ID || !at.Equal(d.NextAttemptAt) {
		t.Errorf("armed %v at %v, want the held message at %v", f, at, d.NextAttemptAt)
	}
	// The fire of the attempt the hold replaced is stale: dropped, even
	// once the breaker closes.
	e.rc.status.Store(200)
	e.advance(webhooks.BreakerCooldown)
	if err := e.eng.HandleFire(context.Background(), webhooks.DeliveryFire(held)); err != nil {
		t.Fatal(err)
	}
	if n := e.rc.n.Load(); n != webhooks.BreakerThreshold {
		t.Fatalf("a stale fire was sent (%d requests)", n)
	}
	// Half-open: one probe goes; while it runs (it has not answered yet)
	// the others are held. Here the probe fails: held again.
	e.rc.status.Store(500)
	e.fire(t, held)
	if n := e.rc.n.Load(); n != webhooks.BreakerThreshold+1 {
		t.Fatalf("%d requests after the cool-down, want the one probe", n)
	}
	e.rc.status.Store(200)
	e.advance(webhooks.BreakerCooldown)
	e.fire(t, held) // its next attempt (5 s after the failed probe) is due: the new probe
	e.fire(t, ds[webhooks.BreakerThreshold+1])
	if n := e.rc.n.Load(); n != webhooks.BreakerThreshold+3 {
		t.Errorf("%d requests after a successful probe, want the next message too", n)
	}
}

// TestPingSendsASignedTestMessage: POST …/test's use case sends one ping,
// signed with the endpoint's secret (verified with the Svix library),
// stores nothing, and works on a disabled endpoint; an endpoint of
// another company is not found.
func TestPingSendsASignedTestMessage(t *testing.T) {
	t.Parallel()
	e := engineSetup(t, 204)
	if _, err := e.svc.Patch(context.Background(), e.p, e.ep.ID, []byte(`{"disabled":true}`)); err != nil {
		t.Fatal(err)
	}
	id, a, err := e.eng.Ping(context.Background(), "acme", e.ep.ID)
	if err != nil || a.Result != webhooks.Succeeded || a.StatusCode != 204 {
		t.Fatalf("ping: %s %+v %v", id, a, err)
	}
	wh, err := svix.NewWebhook(e.ep.Secrets[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	e.rc.mu.Lock()
	body, head := e.rc.bodies[0], e.rc.heads[0]
	e.rc.mu.Unlock()
	if err := wh.VerifyIgnoringTimestamp(body, head); err != nil || head.Get("webhook-id") != id {
		t.Errorf("the ping does not verify (%v) or has webhook-id %q, want %q", err, head.Get("webhook-id"), id)
	}
	var msg struct {
		Type string
		Data struct {
			EndpointID string `json:"endpoint_id"`
		}
	}
	if err := json.Unmarshal(body, &msg); err != nil || msg.Type != "ping" || msg.Data.EndpointID != e.ep.ID {
		t.Errorf("ping body %s", body)
	}
	if ds, _, err := e.store.ListDeliveries(context.Background(), "acme", e.ep.ID, webhooks.DeliveryFilter{}); err != nil || len(ds) != 0 {
		t.Errorf("the ping was stored: %v %v", ds, err)
	}
	if _, _, err := e.eng.Ping(context.Background(), "other", e.ep.ID); !errors.Is(err, comms.ErrNotFound) {
		t.Errorf("another company's ping: %v, want ErrNotFound", err)
	}
}

// TestHandleFireFansOutWhenDue: a fan-out fire that comes early is armed
// again for its time; one that is due fans the company's feed out.
func TestHandleFireFansOutWhenDue(t *testing.T) {
	t.Parallel()
	e := engineSetup(t, 200)
	due := e.clock().Add(16 * time.Second)
	f := webhooks.FanOutFire("acme", "seq-1", due)
	if err := e.eng.HandleFire(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if got, at := e.timer.last(); got != f || !at.Equal(due) {
		t.Fatalf("early fan-out fire: armed %v at %v, want itself at %v", got, at, due)
	}
	e.advance(16 * time.Second)
	if err := e.eng.HandleFire(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if err := e.eng.HandleFire(context.Background(), comms.Fire{Kind: "other", CompanyID: "acme", CommunicationID: "x", Token: "y"}); err == nil {
		t.Error("a fire of another kind was accepted")
	}
}

// TestARetryDuringAnAttemptLosesNeither: a manual retry made while an
// attempt is running does not erase that attempt's record (it is appended
// to the delivery the retry rewrote), and the retry's fire, which found
// the attempt running, comes again a moment later and sends: the receiver
// gets exactly as many requests as attempts are recorded.
func TestARetryDuringAnAttemptLosesNeither(t *testing.T) {
	t.Parallel()
	e := engineSetup(t, 200)
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		e.rc.ServeHTTP(w, r)
	}))
	defer slow.Close()
	if _, err := e.svc.Patch(context.Background(), e.p, e.ep.ID, []byte(fmt.Sprintf(`{"url":%q}`, slow.URL))); err != nil {
		t.Fatal(err)
	}
	d := e.deliveries(t, 1)[0]
	done := make(chan error, 1)
	go func() { done <- e.eng.HandleFire(context.Background(), webhooks.DeliveryFire(d)) }()
	<-entered // the first attempt is at the receiver
	e.advance(time.Second)
	retried, err := e.eng.Retry(context.Background(), "acme", e.ep.ID, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.eng.HandleFire(context.Background(), webhooks.DeliveryFire(retried)); err != nil {
		t.Fatal(err)
	}
	if f, at := e.timer.last(); f.Token != d.ID || !at.Equal(e.clock().Add(webhooks.BusyRetry)) {
		t.Fatalf("the retry's fire met the running attempt: armed %v at %v, want it again after %v", f, at, webhooks.BusyRetry)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mid, err := e.store.GetDelivery(context.Background(), "acme", e.ep.ID, d.ID)
	if err != nil || len(mid.Attempts) != 1 || mid.State != webhooks.DeliveryPending {
		t.Fatalf("after the first attempt: %+v %v, want it recorded and the retry still pending", mid, err)
	}
	e.advance(webhooks.BusyRetry)
	if err := e.eng.HandleFire(context.Background(), webhooks.DeliveryFire(retried)); err != nil {
		t.Fatal(err)
	}
	final, err := e.store.GetDelivery(context.Background(), "acme", e.ep.ID, d.ID)
	if err != nil || len(final.Attempts) != 2 || final.State != webhooks.DeliverySucceeded || e.rc.n.Load() != 2 {
		t.Errorf("final %s with %d attempts, %d requests (%v); want succeeded, 2 and 2", final.State, len(final.Attempts), e.rc.n.Load(), err)
	}
}

// TestPingWaitsForASlot: a test message takes one of the endpoint's slots;
// when every slot is held by an attempt in flight (a hanging receiver), it
// is refused with ErrEndpointBusy instead of adding a connection.
func TestPingWaitsForASlot(t *testing.T) {
	t.Parallel()
	f := setup(t)
	svc, err := endpoints.NewService(endpoints.Options{Store: f.store, Secrets: webhooks.NewSecret, Clock: f.clock,
		URLs: func(_ context.Context, raw string) (*url.URL, error) { return url.Parse(raw) }})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	defer hang.Close()
	defer close(release)
	ep, err := svc.Create(context.Background(), f.p, []byte(fmt.Sprintf(`{"url":%q}`, hang.URL)))
	if err != nil {
		t.Fatal(err)
	}
	eng := webhooks.NewEngine(webhooks.EngineOptions{Feed: f.store, Endpoints: f.store, Deliveries: f.store, Timer: &armed{},
		Client: webhooks.NewClient(http.DefaultTransport), Now: f.clock, PerEndpoint: 1, PingSlotWait: 50 * time.Millisecond})
	t.Cleanup(eng.Close)
	first := make(chan error, 1)
	go func() { _, _, err := eng.Ping(context.Background(), "acme", ep.ID); first <- err }()
	<-entered // the first test message holds the one slot
	if _, _, err := eng.Ping(context.Background(), "acme", ep.ID); !errors.Is(err, webhooks.ErrEndpointBusy) {
		t.Errorf("a test message to an endpoint with no free slot: %v, want ErrEndpointBusy", err)
	}
}
