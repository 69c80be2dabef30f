package dispatch_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
)

// TestLeaseDefaults: each channel has its own lease (issue 15: an SES or
// SNS send takes well under a second, a call placement longer); Lease,
// when set, stands for every channel not given its own, and after
// WithDefaults is the longest of the three.
func TestLeaseDefaults(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name              string
		in                dispatch.Config
		email, sms, voice time.Duration
	}{
		{"defaults", dispatch.Config{}, 30 * time.Second, 30 * time.Second, 2 * time.Minute},
		{"Lease for all", dispatch.Config{Lease: 8 * time.Second}, 8 * time.Second, 8 * time.Second, 8 * time.Second},
		{"Lease and one channel's own", dispatch.Config{Lease: 8 * time.Second, VoiceLease: time.Minute}, 8 * time.Second, 8 * time.Second, time.Minute},
		{"one channel only", dispatch.Config{SMSLease: 5 * time.Second}, 30 * time.Second, 5 * time.Second, 2 * time.Minute},
	} {
		got := c.in.WithDefaults()
		if got.LeaseFor(comms.ChannelEmail) != c.email || got.LeaseFor(comms.ChannelSMS) != c.sms || got.LeaseFor(comms.ChannelVoice) != c.voice {
			t.Errorf("%s: leases email %v sms %v voice %v, want %v %v %v", c.name,
				got.LeaseFor(comms.ChannelEmail), got.LeaseFor(comms.ChannelSMS), got.LeaseFor(comms.ChannelVoice), c.email, c.sms, c.voice)
		}
		if want := max(c.email, c.sms, c.voice); got.Lease != want {
			t.Errorf("%s: Lease after defaults = %v, want the longest, %v", c.name, got.Lease, want)
		}
	}
}

// deadlines is a sender that records how long each send's context had
// left, then blocks until released (the attempt stays claimed).
type deadlines struct {
	*senders
	mu   sync.Mutex
	left map[string]time.Duration
}

func (d *deadlines) note(ctx context.Context, id string) {
	dl, ok := ctx.Deadline()
	d.mu.Lock()
	defer d.mu.Unlock()
	if ok {
		d.left[id] = time.Until(dl)
	} else {
		d.left[id] = -1
	}
}

func (d *deadlines) SendEmail(ctx context.Context, m dispatch.Email) (string, error) {
	d.note(ctx, m.CommunicationID)
	return d.senders.SendEmail(ctx, m)
}
func (d *deadlines) SendSMS(ctx context.Context, m dispatch.SMS) (string, error) {
	d.note(ctx, m.CommunicationID)
	return d.senders.SendSMS(ctx, m)
}
func (d *deadlines) PlaceCall(ctx context.Context, c dispatch.Call) (string, error) {
	d.note(ctx, c.CommunicationID)
	return d.senders.PlaceCall(ctx, c)
}

// TestClaimTakesItsChannelsLease: a row of each channel, claimed by a
// dispatcher whose sends hang, holds the lease of its channel
// (lease_until = claim + EmailLease, SMSLease or VoiceLease); its send is
// given at most a quarter of it; and the sweeper leaves each alone until
// its own lease and the sweep grace have run out, not the others'.
func TestClaimTakesItsChannelsLease(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := dispatch.Config{EmailLease: 10 * time.Second, SMSLease: 20 * time.Second, VoiceLease: 40 * time.Second, SweepGrace: 5 * time.Second}
	rows := map[comms.Channel]comms.Communication{}
	for _, ch := range []string{"email", "sms", "voice"} {
		r := b.create(ch, 0, "")
		rows[r.Channel] = r
	}
	stuck := &deadlines{senders: newSenders(), left: map[string]time.Duration{}}
	stuck.block = make(chan struct{})
	hung := dispatch.New(b.store, b.timer, dispatch.Senders{Email: stuck, SMS: stuck, Voice: stuck}, cfg, dispatch.WithClock(b.clock.Now))
	sweeper := dispatch.New(b.store, b.timer, dispatch.Senders{Email: b.senders, SMS: b.senders, Voice: b.senders}, cfg, dispatch.WithClock(b.clock.Now))
	ctx, crash := context.WithCancel(b.ctx)
	var wg sync.WaitGroup
	for _, r := range rows {
		wg.Go(func() { _ = hung.Handle(ctx, comms.FireOf(r)) })
	}
	defer func() { crash(); close(stuck.block); wg.Wait() }()
	claimedAt := b.clock.Now()
	for _, r := range rows {
		for b.get(r.ID).Status != comms.StatusProcessing {
			time.Sleep(time.Millisecond)
		}
	}
	for ch, r := range rows {
		lease := cfg.LeaseFor(ch)
		if got := b.get(r.ID).LeaseUntil; !got.Equal(claimedAt.Add(lease)) {
			t.Errorf("%s claimed with lease_until %v, want claim + %v = %v", ch, got, lease, claimedAt.Add(lease))
		}
	}
	// The sends are under way once every row's send has noted its deadline.
	for {
		stuck.mu.Lock()
		n := len(stuck.left)
		stuck.mu.Unlock()
		if n == len(rows) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	for ch, r := range rows {
		stuck.mu.Lock()
		left := stuck.left[r.ID]
		stuck.mu.Unlock()
		if left <= 0 || left > cfg.LeaseFor(ch)/4 {
			t.Errorf("%s send had %v left, want at most a quarter of its lease (%v)", ch, left, cfg.LeaseFor(ch)/4)
		}
	}
	sweep := func(at time.Duration) dispatch.SweepResult {
		t.Helper()
		b.clock.Set(claimedAt.Add(at))
		res, err := sweeper.Sweep(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// At exactly the email's lease + grace nothing is touched (the sweeper
	// wants a lease expired more than the grace ago).
	if res := sweep(15 * time.Second); res != (dispatch.SweepResult{}) {
		t.Errorf("sweep before the email's lease + grace: %+v", res)
	}
	// The email's lease + grace just passed, not the SMS's: only the email is
	// looked at (no provider record yet: it waits SettleWait).
	if res := sweep(15*time.Second + time.Millisecond); res != (dispatch.SweepResult{Waiting: 1}) {
		t.Errorf("sweep at the email's lease + grace: %+v, want the email alone waiting", res)
	}
	if res := sweep(25*time.Second + time.Millisecond); res != (dispatch.SweepResult{Waiting: 2}) {
		t.Errorf("sweep at the SMS's lease + grace: %+v, want the email and the SMS waiting", res)
	}
	if got := b.get(rows[comms.ChannelVoice].ID); got.Status != comms.StatusProcessing {
		t.Fatalf("voice call settled before its own lease ran out: %s", got.Status)
	}
	// The call's lease + grace: settled as outcome_unknown (nobody is called twice).
	if res := sweep(45*time.Second + time.Millisecond); res != (dispatch.SweepResult{Waiting: 2, Unknown: 1}) {
		t.Errorf("sweep at the call's lease + grace: %+v", res)
	}
	if got := b.get(rows[comms.ChannelVoice].ID); got.Status != comms.StatusFailed || got.LastError == nil || got.LastError.Code != "outcome_unknown" {
		t.Errorf("voice after its lease: %s %+v", got.Status, got.LastError)
	}
}

// TestGiveBackOutlastsHalfTheLease: an attempt that never reached the
// provider (ErrNotSent: our own outbox could not be written, a full disk)
// is given back uncounted; when the store refuses that write too (the same
// full disk) for longer than half the lease — all a send's result is given
// — the give-back is still retried, so the row is pending again with no
// attempt used once the store takes writes, rather than left processing
// for the sweeper (issue 15). Seven failed writes take 2.6–4.2 s of the
// retry's real backoff: more than half the 4 s lease, less than the lease
// and the grace.
func TestGiveBackOutlastsHalfTheLease(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := &flaky{Store: b.store}
	st.n.Store(7)
	full := newSenders()
	full.result = func(string, string, int) error {
		return fmt.Errorf("devsink: write outbox: no space left on device: %w", dispatch.ErrNotSent)
	}
	d := dispatch.New(st, b.timer, dispatch.Senders{Email: full}, dispatch.Config{EmailLease: 4 * time.Second, SweepGrace: 10 * time.Second},
		dispatch.WithClock(b.clock.Now))
	row := b.create("email", 0, "")
	if err := d.Handle(b.ctx, comms.FireOf(row)); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	got := b.get(row.ID)
	if got.Status != comms.StatusPending || got.AttemptCount != 0 || got.LastError == nil || got.LastError.Code != "not_sent" {
		t.Errorf("after the give-back's writes failed 7 times: %s, attempt %d, %+v; want pending, 0 attempts, not_sent", got.Status, got.AttemptCount, got.LastError)
	}
	if n := st.n.Load(); n >= 0 {
		t.Errorf("%d of the 7 failures left unused: the give-back was not retried through them", n+1)
	}
}
