package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/contract"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/scheduling"
	"github.com/dispatcherhq/dispatcher/internal/store/sqlite"
)

const (
	phoneID = "6b1f3c2a-8d4e-4a5b-9c6d-7e8f9a0b1c2d"
	agentID = "0c9d8e7f-6a5b-4c3d-8e1f-2a3b4c5d6e7f"
)

// clock is an injected clock: business logic never sleeps in these tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// timer records arms instead of firing them: the test fires them.
type timer struct {
	mu   sync.Mutex
	arms []armed
}

type armed struct {
	f  comms.Fire
	at time.Time
}

func (t *timer) Arm(_ context.Context, f comms.Fire, at time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.arms = append(t.arms, armed{f, at})
	return nil
}

func (t *timer) last() armed {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.arms[len(t.arms)-1]
}

func (t *timer) count() int { t.mu.Lock(); defer t.mu.Unlock(); return len(t.arms) }

// senders is a hand-written fake of the three channel ports: it records
// every call and answers with what the test scripted.
type senders struct {
	mu     sync.Mutex
	calls  []string // communication id + attempt of every call
	byID   map[string]int
	result func(channel, id string, attempt int) error
	block  chan struct{} // when set, sends wait on it
}

func newSenders() *senders { return &senders{byID: map[string]int{}} }

func (s *senders) record(ctx context.Context, channel, id string, attempt int) (string, error) {
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	s.mu.Lock()
	s.calls = append(s.calls, fmt.Sprintf("%s#%d", id, attempt))
	s.byID[id]++
	s.mu.Unlock()
	if s.result != nil {
		if err := s.result(channel, id, attempt); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%s-%s-%d", channel, id[:8], attempt), nil
}

func (s *senders) SendEmail(ctx context.Context, m dispatch.Email) (string, error) {
	return s.record(ctx, "email", m.CommunicationID, m.Attempt)
}
func (s *senders) SendSMS(ctx context.Context, m dispatch.SMS) (string, error) {
	if m.From != "+61412345678" {
		return "", comms.Permanent("test", "origination number %q is not the phone number's", m.From)
	}
	return s.record(ctx, "sms", m.CommunicationID, m.Attempt)
}
func (s *senders) PlaceCall(ctx context.Context, c dispatch.Call) (string, error) {
	if c.AgentID != "agent_123" || c.From != "+61412345678" {
		return "", comms.Permanent("test", "agent %q from %q", c.AgentID, c.From)
	}
	return s.record(ctx, "voice_call", c.CommunicationID, c.Attempt)
}

func (s *senders) sends(id string) int { s.mu.Lock(); defer s.mu.Unlock(); return s.byID[id] }

// bundle is one isolated dispatcher over a real SQLite file.
type bundle struct {
	t       *testing.T
	ctx     context.Context
	store   *sqlite.Store
	clock   *clock
	timer   *timer
	senders *senders
	svc     *scheduling.Service
	d       *dispatch.Dispatcher
	p       comms.Principal
}

var start = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC) // a Wednesday, inside default hours

func setup(t *testing.T) *bundle {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	b := &bundle{t: t, ctx: ctx, store: store, clock: &clock{t: start}, timer: &timer{}, senders: newSenders(),
		p: comms.Principal{CompanyID: "acme", Scopes: comms.AllScopes}}
	if err := store.CreateCompany(ctx, comms.Company{ID: "acme", Credits: 1 << 20, Settings: comms.DefaultSettings(), CreatedAt: start}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := store.PutPhoneNumber(ctx, comms.PhoneNumber{ID: phoneID, CompanyID: "acme", E164: "+61412345678", Capabilities: []string{"sms", "voice"}, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := store.PutVoiceAgent(ctx, comms.VoiceAgent{ID: agentID, CompanyID: "acme", Provider: "retell", AgentID: "agent_123", PhoneNumberID: phoneID, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	b.svc = scheduling.NewService(store, scheduling.WithClock(b.clock.Now), scheduling.WithTimer(b.timer))
	b.d = dispatch.New(store, b.timer, dispatch.Senders{Email: b.senders, SMS: b.senders, Voice: b.senders}, dispatch.Config{},
		dispatch.WithClock(b.clock.Now), dispatch.WithJitter(func() float64 { return 1 }))
	return b
}

// create makes a row through the real create path; extra is merged into
// the body ("" for none).
func (b *bundle) create(channel string, in time.Duration, extra string) comms.Communication {
	b.t.Helper()
	when := b.clock.Now().Add(in).Format(time.RFC3339Nano)
	body := map[string]string{
		"email": `{"channel":"email","scheduled_for":"` + when + `","payload":{"to_email":"sarah@example.com","subject":"Hi","html_body":"<p>Hi</p>"}}`,
		"sms":   `{"channel":"sms","scheduled_for":"` + when + `","payload":{"phone_number_id":"` + phoneID + `","to_number":"+61498765432","message_body":"Hi"}}`,
		"voice": `{"channel":"voice_call","scheduled_for":"` + when + `","payload":{"voice_agent_outbound_config_id":"` + agentID + `","to_number":"+14155550123"}}`,
	}[channel]
	if extra != "" {
		doc, _ := contract.DecodeJSON([]byte(body))
		patch, err := contract.DecodeJSON([]byte(extra))
		if err != nil {
			b.t.Fatal(err)
		}
		merged := contract.MergePatch(doc, patch)
		body = string(mustMarshal(merged))
	}
	c, err := b.svc.Create(b.ctx, b.p, []byte(body), "")
	if err != nil {
		b.t.Fatalf("create: %v", err)
	}
	return c.Row
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func (b *bundle) get(id string) comms.Communication {
	b.t.Helper()
	row, err := b.store.GetCommunication(b.ctx, "acme", id)
	if err != nil {
		b.t.Fatal(err)
	}
	return row
}

// fire delivers the row's current fire at its due time.
func (b *bundle) fire(id string) comms.Communication {
	b.t.Helper()
	row := b.get(id)
	if b.clock.Now().Before(row.NextAttemptAt) {
		b.clock.Set(row.NextAttemptAt)
	}
	if err := b.d.Handle(b.ctx, comms.FireOf(row)); err != nil {
		b.t.Fatal(err)
	}
	return b.get(id)
}

func TestSuccess(t *testing.T) {
	t.Parallel()
	for _, ch := range []string{"email", "sms", "voice"} {
		t.Run(ch, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			row := b.fire(b.create(ch, time.Minute, "").ID)
			want, lease := comms.StatusSent, time.Time{}
			if ch == "voice" { // a placed call waits for its outcome
				want, lease = comms.StatusProcessing, row.SentAt.Add(30*time.Minute)
			}
			if row.Status != want || row.AttemptCount != 1 || row.SentAt == nil || row.ProviderMessageID == "" || row.LastError != nil {
				t.Errorf("row = %+v", row)
			}
			if !row.LeaseUntil.Equal(lease) {
				t.Errorf("lease after send = %v, want %v", row.LeaseUntil, lease)
			}
			if n := b.senders.sends(row.ID); n != 1 {
				t.Errorf("%d sends", n)
			}
		})
	}
}

func TestStaleUnknownAndTerminalFiresAreDropped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	row := b.create("email", time.Minute, "")
	b.clock.Advance(time.Minute)
	stale := comms.FireOf(row)
	stale.Token = "old"
	for _, f := range []comms.Fire{stale, {CompanyID: "acme", CommunicationID: "7f7f7f7f-7f7f-4f7f-8f7f-7f7f7f7f7f7f", Token: "x"},
		{CompanyID: "other", CommunicationID: row.ID, Token: row.Token}} {
		if err := b.d.Handle(b.ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.get(row.ID); got.Status != comms.StatusPending || b.senders.sends(row.ID) != 0 {
		t.Fatalf("a stale/foreign fire acted: %+v", got)
	}
	sent := b.fire(row.ID)
	if err := b.d.Handle(b.ctx, comms.FireOf(row)); err != nil { // the same fire again, after the send
		t.Fatal(err)
	}
	if b.senders.sends(row.ID) != 1 || b.get(row.ID).Version != sent.Version {
		t.Errorf("a fire of a sent row acted")
	}
	// Cancel then fire: nothing is sent.
	c := b.create("sms", time.Minute, "")
	if _, err := b.svc.Cancel(b.ctx, b.p, c.ID); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(time.Minute)
	if err := b.d.Handle(b.ctx, comms.FireOf(c)); err != nil {
		t.Fatal(err)
	}
	if b.senders.sends(c.ID) != 0 || b.get(c.ID).Status != comms.StatusCancelled {
		t.Errorf("a cancelled row was sent")
	}
	// A rescheduled row's old fire is stale; its new fire sends.
	r := b.create("email", time.Minute, "")
	if _, _, err := b.svc.Patch(b.ctx, b.p, r.ID, []byte(`{"scheduled_for":"`+b.clock.Now().Add(time.Hour).Format(time.RFC3339)+`"}`)); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(time.Minute)
	_ = b.d.Handle(b.ctx, comms.FireOf(r))
	if b.senders.sends(r.ID) != 0 {
		t.Errorf("the fire of the old time sent a rescheduled row")
	}
	if b.fire(r.ID).Status != comms.StatusSent {
		t.Errorf("the new fire did not send")
	}
	if got := b.d.Stats().Dropped.Load(); got < 6 {
		t.Errorf("dropped %d fires, want at least 6", got)
	}
}

func TestEarlyFireIsRearmed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	row := b.create("email", 2*time.Minute, "")
	if err := b.d.Handle(b.ctx, comms.FireOf(row)); err != nil { // 2 minutes early, as a Scheduler stage would
		t.Fatal(err)
	}
	if b.senders.sends(row.ID) != 0 {
		t.Fatal("sent early")
	}
	if a := b.timer.last(); a.f != comms.FireOf(row) || !a.at.Equal(row.NextAttemptAt) {
		t.Errorf("re-armed %+v at %v, want the same fire at %v", a.f, a.at, row.NextAttemptAt)
	}
	// A fire that does not carry its due time is checked against the row.
	bare := comms.FireOf(row)
	bare.DueAt = time.Time{}
	before := b.timer.count()
	if err := b.d.Handle(b.ctx, bare); err != nil {
		t.Fatal(err)
	}
	if b.senders.sends(row.ID) != 0 || b.timer.count() != before+1 || !b.timer.last().at.Equal(row.NextAttemptAt) {
		t.Errorf("a bare early fire was not re-armed at the row's time")
	}
}

func TestMaxDelayExpires(t *testing.T) {
	t.Parallel()
	b := setup(t)
	row := b.create("email", time.Minute, `{"cancel_policy":{"max_delay_minutes":10}}`)
	b.clock.Advance(time.Minute + 10*time.Minute + time.Second)
	if err := b.d.Handle(b.ctx, comms.FireOf(row)); err != nil {
		t.Fatal(err)
	}
	got := b.get(row.ID)
	if got.Status != comms.StatusCancelled || got.LastError == nil || got.LastError.Code != "expired" || got.CancelledAt == nil || b.senders.sends(row.ID) != 0 {
		t.Errorf("expired row = %+v %+v", got, got.LastError)
	}
	// Within the allowance it is sent.
	ok := b.create("email", time.Minute, `{"cancel_policy":{"max_delay_minutes":10}}`)
	b.clock.Advance(time.Minute + 9*time.Minute)
	_ = b.d.Handle(b.ctx, comms.FireOf(ok))
	if b.get(ok.ID).Status != comms.StatusSent {
		t.Errorf("a 9-minute-late row was not sent")
	}
}

func TestBusinessHoursRecheckUsesSettingsInForce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Created inside the default hours (Wednesday 10:00 UTC)...
	row := b.create("sms", time.Hour, `{"respect_business_hours":true}`)
	if !row.NextAttemptAt.Equal(row.ScheduledFor) {
		t.Fatalf("next_attempt_at %v != scheduled_for %v inside hours", row.NextAttemptAt, row.ScheduledFor)
	}
	// ...then the company moves to afternoons only.
	set := comms.DefaultSettings()
	for _, d := range comms.Weekdays[:5] {
		set.BusinessHours[d] = [][2]string{{"14:00", "18:00"}}
	}
	if err := b.store.PutSettings(b.ctx, "acme", set); err != nil {
		t.Fatal(err)
	}
	got := b.fire(row.ID)
	want := time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC)
	if got.Status != comms.StatusPending || !got.NextAttemptAt.Equal(want) || got.Token == row.Token || b.senders.sends(row.ID) != 0 {
		t.Fatalf("held row = status %s next %v", got.Status, got.NextAttemptAt)
	}
	if a := b.timer.last(); a.f != comms.FireOf(got) || !a.at.Equal(want) {
		t.Errorf("armed %+v at %v", a.f, a.at)
	}
	if sent := b.fire(row.ID); sent.Status != comms.StatusSent || sent.AttemptCount != 1 {
		t.Errorf("at the window start: %+v", sent)
	}
}

func TestPermanentFailure(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.senders.result = func(string, string, int) error { return comms.Permanent("bounce", "mailbox does not exist") }
	got := b.fire(b.create("email", time.Minute, "").ID)
	if got.Status != comms.StatusFailed || got.AttemptCount != 1 || got.LastError == nil || got.LastError.Code != "bounce" {
		t.Errorf("row = %+v %+v", got, got.LastError)
	}
}

func TestTransientRetriesWithGrowingBackoffThenFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		channel  string
		attempts int
	}{{"email", 3}, {"sms", 3}} {
		t.Run(tc.channel, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.senders.result = func(string, string, int) error { return comms.Transient("throttled", "slow down") }
			row := b.create(tc.channel, time.Minute, "")
			var gaps []time.Duration
			for i := 1; i <= tc.attempts; i++ {
				before := b.clock.Now()
				if i > 1 {
					gaps = append(gaps, b.get(row.ID).NextAttemptAt.Sub(before))
				}
				row = b.fire(row.ID)
				if row.AttemptCount != i {
					t.Fatalf("attempt %d: attempt_count %d", i, row.AttemptCount)
				}
			}
			if row.Status != comms.StatusFailed || row.LastError.Code != "throttled" || b.senders.sends(row.ID) != tc.attempts {
				t.Errorf("after %d attempts: %+v %+v, %d sends", tc.attempts, row.Status, row.LastError, b.senders.sends(row.ID))
			}
			// Jitter is pinned to the top of each step: 30 s, then 60 s.
			if len(gaps) != 2 || gaps[0] != 30*time.Second || gaps[1] != 60*time.Second {
				t.Errorf("backoff gaps = %v, want [30s 1m0s]", gaps)
			}
		})
	}
}

func TestBackoffBoundsWithRealJitter(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := dispatch.New(b.store, b.timer, dispatch.Senders{Email: b.senders}, dispatch.Config{}, dispatch.WithClock(b.clock.Now))
	b.senders.result = func(string, string, int) error { return errors.New("connection reset") }
	for range 50 {
		row := b.create("email", 0, "")
		if err := d.Handle(b.ctx, comms.FireOf(row)); err != nil {
			t.Fatal(err)
		}
		got := b.get(row.ID)
		gap := got.NextAttemptAt.Sub(b.clock.Now().UTC().Truncate(time.Millisecond))
		if got.Status != comms.StatusPending || got.LastError.Code != "provider_error" || gap < 15*time.Second || gap > 30*time.Second {
			t.Fatalf("first retry after %v (%s %+v), want within [15s, 30s]", gap, got.Status, got.LastError)
		}
	}
}

func TestVoiceMaxAttemptsAndTimeoutIsNotRedialled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	row := b.create("voice", time.Minute, "")
	if row.MaxAttempts != 2 {
		t.Errorf("voice max_attempts = %d", row.MaxAttempts)
	}
	b.senders.result = func(string, string, int) error { return context.DeadlineExceeded }
	got := b.fire(row.ID)
	if got.Status != comms.StatusFailed || got.LastError.Code != "outcome_unknown" || b.senders.sends(row.ID) != 1 {
		t.Errorf("voice timeout: %s %+v, %d calls", got.Status, got.LastError, b.senders.sends(row.ID))
	}
}

func TestDeletedResourceFailsPermanently(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sms := b.create("sms", time.Minute, "")
	voice := b.create("voice", time.Minute, "")
	if err := b.store.DeletePhoneNumber(b.ctx, "acme", phoneID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{sms.ID, voice.ID} {
		if got := b.fire(id); got.Status != comms.StatusFailed || got.LastError.Code != "unknown_resource" || b.senders.sends(id) != 0 {
			t.Errorf("row %s: %s %+v", id, got.Status, got.LastError)
		}
	}
}

func TestConcurrentDeliveriesSendOnce(t *testing.T) {
	t.Parallel()
	for _, ch := range []string{"email", "voice"} {
		t.Run(ch, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			row := b.create(ch, time.Minute, "")
			b.clock.Advance(time.Minute)
			var wg sync.WaitGroup
			var errs atomic.Int64
			for range 50 {
				wg.Go(func() {
					if err := b.d.Handle(b.ctx, comms.FireOf(row)); err != nil {
						errs.Add(1)
					}
				})
			}
			wg.Wait()
			if n := b.senders.sends(row.ID); n != 1 || errs.Load() != 0 {
				t.Errorf("50 deliveries of one fire: %d sends, %d errors", n, errs.Load())
			}
			if got := b.get(row.ID); got.AttemptCount != 1 || got.ProviderMessageID == "" {
				t.Errorf("row = %s attempt %d", got.Status, got.AttemptCount)
			}
		})
	}
}

func TestCancelRacingDispatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 1000
	rows := make([]comms.Communication, n)
	for i := range rows {
		rows[i] = b.create("sms", 0, "")
	}
	var cancelled, sent atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, row := range rows {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var inner sync.WaitGroup
			inner.Go(func() { _ = b.d.Handle(b.ctx, comms.FireOf(row)) })
			inner.Go(func() {
				if _, err := b.svc.Cancel(b.ctx, b.p, row.ID); err == nil {
					cancelled.Add(1)
				} else if !errors.Is(err, comms.ErrNotPending) {
					t.Errorf("cancel: %v", err)
				}
			})
			inner.Wait()
		})
	}
	wg.Wait()
	for _, row := range rows {
		got := b.get(row.ID)
		sends := b.senders.sends(row.ID)
		switch got.Status {
		case comms.StatusCancelled:
			if sends != 0 {
				t.Fatalf("row %s cancelled and sent %d times", row.ID, sends)
			}
		case comms.StatusSent:
			sent.Add(1)
			if sends != 1 {
				t.Fatalf("row %s sent %d times", row.ID, sends)
			}
		default:
			t.Fatalf("row %s ended %s", row.ID, got.Status)
		}
	}
	if cancelled.Load()+sent.Load() != n {
		t.Errorf("%d cancelled + %d sent != %d", cancelled.Load(), sent.Load(), n)
	}
	t.Logf("%d cancelled, %d sent", cancelled.Load(), sent.Load())
}

func TestLeaseExpiry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	email := b.create("email", 0, "")
	voice := b.create("voice", 0, "")
	last := b.create("sms", 0, "")
	for _, id := range []string{email.ID, voice.ID, last.ID} {
		// A dispatcher claimed each row and stopped before recording.
		row := b.get(id)
		if id == last.ID {
			row.AttemptCount = row.MaxAttempts - 1
		}
		ch, err := comms.Claim(row, b.clock.Now().Add(2*time.Minute), b.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.store.UpdateCommunication(b.ctx, ch, false); err != nil {
			t.Fatal(err)
		}
	}
	// Before the lease (plus grace) runs out, the sweeper leaves them alone.
	b.clock.Advance(2 * time.Minute)
	if res, err := b.d.Sweep(b.ctx); err != nil || res != (dispatch.SweepResult{}) {
		t.Fatalf("early sweep: %+v %v", res, err)
	}
	b.clock.Advance(time.Minute + time.Second)
	// The voice call is settled at once (nobody is called twice); the email
	// and SMS wait SettleWait for the provider's record of the attempt.
	res, err := b.d.Sweep(b.ctx)
	if err != nil || res != (dispatch.SweepResult{Unknown: 1, Waiting: 2}) {
		t.Fatalf("sweep at lease+grace = %+v, %v", res, err)
	}
	b.clock.Advance(5 * time.Minute) // SettleWait: no SES SEND event came
	res, err = b.d.Sweep(b.ctx)
	if err != nil || res.Released != 1 || res.Exhausted != 1 {
		t.Fatalf("sweep after SettleWait = %+v, %v", res, err)
	}
	if got := b.get(email.ID); got.Status != comms.StatusSent || got.AttemptCount != 2 || b.senders.sends(email.ID) != 1 {
		t.Errorf("email after lease expiry: %s attempt %d, %d sends", got.Status, got.AttemptCount, b.senders.sends(email.ID))
	}
	if got := b.get(voice.ID); got.Status != comms.StatusFailed || got.LastError.Code != "outcome_unknown" || b.senders.sends(voice.ID) != 0 {
		t.Errorf("voice after lease expiry: %s %+v, %d calls", got.Status, got.LastError, b.senders.sends(voice.ID))
	}
	if got := b.get(last.ID); got.Status != comms.StatusFailed || got.LastError.Code != "lease_expired" {
		t.Errorf("last attempt after lease expiry: %s %+v", got.Status, got.LastError)
	}
}

func TestCrashAfterClaim(t *testing.T) {
	t.Parallel()
	for _, ch := range []string{"email", "voice"} {
		t.Run(ch, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			row := b.create(ch, 0, "")
			// Claim with a dispatcher whose send hangs, then abandon it (the crash).
			stuck := newSenders()
			stuck.block = make(chan struct{})
			hung := dispatch.New(b.store, b.timer, dispatch.Senders{Email: stuck, Voice: stuck}, dispatch.Config{SendTimeout: time.Hour},
				dispatch.WithClock(b.clock.Now))
			ctx, crash := context.WithCancel(b.ctx)
			done := make(chan struct{})
			go func() { _ = hung.Handle(ctx, comms.FireOf(row)); close(done) }()
			for b.get(row.ID).Status != comms.StatusProcessing {
				time.Sleep(time.Millisecond)
			}
			claimed := b.get(row.ID)
			b.clock.Advance(3*time.Minute + time.Second) // lease (2 min) + sweep grace (1 min)
			if ch == "email" {
				b.clock.Advance(5 * time.Minute) // + SettleWait: no provider record of attempt 1
			}
			if _, err := b.d.Sweep(b.ctx); err != nil {
				t.Fatal(err)
			}
			crash() // the hung process finally dies; its late result must not count
			close(stuck.block)
			<-done
			got := b.get(row.ID)
			switch ch {
			case "email":
				if got.Status != comms.StatusSent || got.AttemptCount != 2 || b.senders.sends(row.ID) != 1 || stuck.sends(row.ID) != 0 {
					t.Errorf("email: %s attempt %d, %d sends", got.Status, got.AttemptCount, b.senders.sends(row.ID))
				}
			case "voice":
				if got.Status != comms.StatusFailed || got.LastError.Code != "outcome_unknown" || b.senders.sends(row.ID)+stuck.sends(row.ID) != 0 {
					t.Errorf("voice: %s %+v, %d calls", got.Status, got.LastError, b.senders.sends(row.ID))
				}
			}
			if claimed.AttemptCount != 1 {
				t.Errorf("claim attempt_count = %d", claimed.AttemptCount)
			}
		})
	}
}

func TestSweeperRefiresLostFires(t *testing.T) {
	t.Parallel()
	b := setup(t)
	lost := b.create("email", time.Minute, "")
	fresh := b.create("email", 2*time.Minute, "")
	b.clock.Advance(2*time.Minute + 30*time.Second) // lost is 90 s overdue, fresh 30 s
	res, err := b.d.Sweep(b.ctx)
	if err != nil || res.Refired != 1 {
		t.Fatalf("sweep = %+v %v", res, err)
	}
	if b.get(lost.ID).Status != comms.StatusSent || b.get(fresh.ID).Status != comms.StatusPending {
		t.Errorf("lost %s, fresh %s", b.get(lost.ID).Status, b.get(fresh.ID).Status)
	}
}

// flaky fails the first n writes of a result (a row leaving processing).
type flaky struct {
	*sqlite.Store
	n atomic.Int64
}

func (f *flaky) UpdateCommunication(ctx context.Context, ch comms.Change, debit bool) (comms.Communication, int64, error) {
	if ch.Row.Status != comms.StatusProcessing && f.n.Add(-1) >= 0 {
		return comms.Communication{}, 0, errors.New("dynamodb: 503 service unavailable")
	}
	return f.Store.UpdateCommunication(ctx, ch, debit)
}

func TestResultWriteIsRetriedNotResent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := &flaky{Store: b.store}
	st.n.Store(3)
	d := dispatch.New(st, b.timer, dispatch.Senders{Email: b.senders}, dispatch.Config{}, dispatch.WithClock(b.clock.Now))
	row := b.create("email", 0, "")
	if err := d.Handle(b.ctx, comms.FireOf(row)); err != nil {
		t.Fatal(err)
	}
	if got := b.get(row.ID); got.Status != comms.StatusSent || b.senders.sends(row.ID) != 1 {
		t.Errorf("after 3 failed result writes: %s, %d sends", got.Status, b.senders.sends(row.ID))
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// ledger is a hand-written AttemptLedger: the attempts the provider has a
// record of.
type ledger map[string]string

func (l ledger) FindAttempt(_ context.Context, row comms.Communication) (string, bool, error) {
	msg, ok := l[fmt.Sprintf("%s#%d", row.ID, row.AttemptCount)]
	return msg, ok, nil
}

func (l ledger) Complete() bool { return true }

// TestUncertainAttemptsAreSettledFromTheProvidersRecord: a dispatcher
// stopped between the send and recording it. The sweeper asks the
// provider's record before sending again: a sent attempt is recorded as
// sent (settled late), never sent twice; an attempt the provider has no
// record of is sent again at once — uncounted, since the provider's record
// is complete and shows it never went out (issue 15).
func TestUncertainAttemptsAreSettledFromTheProvidersRecord(t *testing.T) {
	t.Parallel()
	b := setup(t)
	wentOut, never := b.create("email", 0, ""), b.create("sms", 0, "")
	for _, r := range []comms.Communication{wentOut, never} {
		ch, err := comms.Claim(b.get(r.ID), b.clock.Now().Add(2*time.Minute), b.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.store.UpdateCommunication(b.ctx, ch, false); err != nil {
			t.Fatal(err)
		}
	}
	d := dispatch.New(b.store, b.timer, dispatch.Senders{Email: b.senders, SMS: b.senders, Voice: b.senders}, dispatch.Config{},
		dispatch.WithClock(b.clock.Now), dispatch.WithLedger(ledger{wentOut.ID + "#1": "ses-msg-1"}))
	b.clock.Advance(3*time.Minute + time.Second)
	res, err := d.Sweep(b.ctx)
	if err != nil || res != (dispatch.SweepResult{Settled: 1, Released: 1}) {
		t.Fatalf("sweep = %+v %v", res, err)
	}
	got := b.get(wentOut.ID)
	if got.Status != comms.StatusSent || got.ProviderMessageID != "ses-msg-1" || got.AttemptCount != 1 || b.senders.sends(wentOut.ID) != 0 {
		t.Errorf("settled row: %s %q attempt %d, %d sends", got.Status, got.ProviderMessageID, got.AttemptCount, b.senders.sends(wentOut.ID))
	}
	if h := b.history(wentOut.ID); h != "created,attempt_started,sent" {
		t.Errorf("settled history %s", h)
	}
	if got := b.get(never.ID); got.Status != comms.StatusSent || got.AttemptCount != 1 || b.senders.sends(never.ID) != 1 {
		t.Errorf("resent row: %s attempt %d, %d sends; want sent as attempt 1 again", got.Status, got.AttemptCount, b.senders.sends(never.ID))
	}
	if h := b.history(never.ID); h != "created,attempt_started,attempt_failed,attempt_started,sent" {
		t.Errorf("resent history %s", h)
	}
}

// TestSenderDomainRecheckedAtSend: a row created with from_email at a
// declared domain is not sent from it once the company has removed the
// domain (as a phone number that lost its capability is not used).
func TestSenderDomainRecheckedAtSend(t *testing.T) {
	t.Parallel()
	b := setup(t)
	set := comms.DefaultSettings()
	set.SendingDomains = []string{"example.com"}
	if err := b.store.PutSettings(b.ctx, "acme", set); err != nil {
		t.Fatal(err)
	}
	kept := b.create("email", time.Minute, `{"payload":{"from_email":"alex@mail.example.com"}}`)
	dropped := b.create("email", time.Minute, `{"payload":{"from_email":"alex@example.com"}}`)
	set.SendingDomains = []string{"mail.example.com"}
	if err := b.store.PutSettings(b.ctx, "acme", set); err != nil {
		t.Fatal(err)
	}
	if got := b.fire(kept.ID); got.Status != comms.StatusSent {
		t.Errorf("from a still-declared domain: %s %+v", got.Status, got.LastError)
	}
	got := b.fire(dropped.ID)
	if got.Status != comms.StatusFailed || got.LastError.Code != "sender_not_allowed" || b.senders.sends(dropped.ID) != 0 {
		t.Errorf("from a removed domain: %s %+v, %d sends", got.Status, got.LastError, b.senders.sends(dropped.ID))
	}
}

// slowClaims is a store whose claim writes take 100 s on the clock (a
// store busy for that long).
type slowClaims struct {
	dispatch.Store
	clock *clock
}

func (s slowClaims) UpdateCommunication(ctx context.Context, ch comms.Change, debit bool) (comms.Communication, int64, error) {
	stored, n, err := s.Store.UpdateCommunication(ctx, ch, debit)
	if len(ch.Events) > 0 && ch.Events[0].Type == comms.EventAttemptStarted {
		s.clock.Advance(100 * time.Second)
	}
	return stored, n, err
}

// TestNoSendThatCouldOutliveTheLease: a claim that took so long that the
// send could run past the lease sends nothing; the sweeper then sends the
// attempt once, as the next attempt.
func TestNoSendThatCouldOutliveTheLease(t *testing.T) {
	t.Parallel()
	b := setup(t)
	row := b.create("email", 0, "")
	d := dispatch.New(slowClaims{b.store, b.clock}, b.timer, dispatch.Senders{Email: b.senders}, dispatch.Config{},
		dispatch.WithClock(b.clock.Now))
	if err := d.Handle(b.ctx, comms.FireOf(b.get(row.ID))); err != nil {
		t.Fatal(err)
	}
	if got := b.get(row.ID); got.Status != comms.StatusProcessing || b.senders.sends(row.ID) != 0 {
		t.Fatalf("after a 100 s claim: %s, %d sends", got.Status, b.senders.sends(row.ID))
	}
	b.clock.Advance(time.Minute + 5*time.Minute + time.Second) // lease end + grace + SettleWait
	if _, err := b.d.Sweep(b.ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.get(row.ID); got.Status != comms.StatusSent || got.AttemptCount != 2 || b.senders.sends(row.ID) != 1 {
		t.Errorf("after the sweep: %s attempt %d, %d sends", got.Status, got.AttemptCount, b.senders.sends(row.ID))
	}
}

// With SweepEnqueues (AWS), the sweep sends nothing itself: a lost fire
// and a released lease are armed on the timer (the dispatch queue), and
// the send happens when that fire comes back through Handle.
func TestSweepEnqueues(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.d = dispatch.New(b.store, b.timer, dispatch.Senders{Email: b.senders, SMS: b.senders, Voice: b.senders}, dispatch.Config{SweepEnqueues: true},
		dispatch.WithClock(b.clock.Now), dispatch.WithJitter(func() float64 { return 1 }))
	lost := b.create("email", time.Minute, "")
	leased := b.create("sms", 0, "")
	ch, err := comms.Claim(b.get(leased.ID), b.clock.Now().Add(2*time.Minute), b.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.store.UpdateCommunication(b.ctx, ch, false); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(10 * time.Minute) // lost overdue; the lease, its grace and SettleWait past
	arms := b.timer.count()
	res, err := b.d.Sweep(b.ctx)
	if err != nil || res.Refired != 1 || res.Released != 1 {
		t.Fatalf("sweep = %+v, %v; want one refired, one released", res, err)
	}
	if b.senders.sends(lost.ID)+b.senders.sends(leased.ID) != 0 {
		t.Fatalf("the sweep sent %d; want nothing sent by the sweeper", b.senders.sends(lost.ID)+b.senders.sends(leased.ID))
	}
	if got := b.timer.count() - arms; got != 2 {
		t.Fatalf("%d fires armed by the sweep; want 2", got)
	}
	b.timer.mu.Lock()
	fired := append([]armed(nil), b.timer.arms[arms:]...)
	b.timer.mu.Unlock()
	for _, a := range fired {
		if row := b.get(a.f.CommunicationID); row.Status != comms.StatusPending || a.at.After(b.clock.Now()) {
			t.Fatalf("armed %s at %v: row %s; want a pending row, armed for now or earlier", a.f.CommunicationID, a.at, row.Status)
		}
		if err := b.d.Handle(b.ctx, a.f); err != nil { // the dispatch function takes it from the queue
			t.Fatal(err)
		}
	}
	if b.get(lost.ID).Status != comms.StatusSent || b.get(leased.ID).Status != comms.StatusSent ||
		b.senders.sends(lost.ID) != 1 || b.senders.sends(leased.ID) != 1 {
		t.Fatalf("after the queue's fires: lost %s (%d sends), leased %s (%d sends); want both sent once",
			b.get(lost.ID).Status, b.senders.sends(lost.ID), b.get(leased.ID).Status, b.senders.sends(leased.ID))
	}
}
