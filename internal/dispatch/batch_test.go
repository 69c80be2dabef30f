package dispatch_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/store/sqlite"
)

// batchSpy is the batch port of a real SQLite store that counts the batch
// writes and can act just before the first one (another claimer).
type batchSpy struct {
	*sqlite.Store
	mu     sync.Mutex
	writes [][]comms.Change
	before func() // run once, before the first UpdateCommunications
}

func (s *batchSpy) UpdateCommunications(ctx context.Context, chs []comms.Change) ([]comms.Communication, []error) {
	s.mu.Lock()
	before := s.before
	s.before = nil
	s.writes = append(s.writes, chs)
	s.mu.Unlock()
	if before != nil {
		before()
	}
	return s.Store.UpdateCommunications(ctx, chs)
}

// claimWrites returns the sizes of the batch writes made only of claims.
func (s *batchSpy) claimWrites() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, w := range s.writes {
		claims := 0
		for _, ch := range w {
			if ch.Row.Status == comms.StatusProcessing && len(ch.Events) == 1 && ch.Events[0].Type == comms.EventAttemptStarted {
				claims++
			}
		}
		if claims == len(w) {
			out = append(out, claims)
		}
	}
	return out
}

// batched gives b's dispatcher the batched path over a spy of its store.
func (b *bundle) batched(t *testing.T) *batchSpy {
	t.Helper()
	spy := &batchSpy{Store: b.store}
	b.d = dispatch.New(b.store, b.timer, dispatch.Senders{Email: b.senders, SMS: b.senders, Voice: b.senders}, dispatch.Config{},
		dispatch.WithClock(b.clock.Now), dispatch.WithJitter(func() float64 { return 1 }),
		dispatch.WithBatch(spy, dispatch.BatchConfig{Linger: time.Millisecond}))
	return spy
}

// TestBatchClaimsTheReadyRowsInOneWriteAndSendsTheRestPerRow: one batch of
// fires — three plain emails, one held by business hours, one expired, one
// to a suppressed recipient, a stale fire and an unknown row. The three
// plain ones are claimed in one write and sent once each; every other row
// takes the per-row step Handle would take; nothing is retried.
func TestBatchClaimsTheReadyRowsInOneWriteAndSendsTheRestPerRow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spy := b.batched(t)
	plain := []comms.Communication{b.create("email", time.Minute, ""), b.create("sms", time.Minute, ""), b.create("email", time.Minute, "")}
	held := b.create("sms", time.Minute, `{"respect_business_hours":true}`)
	expiring := b.create("email", time.Minute, `{"cancel_policy":{"max_delay_minutes":1}}`)
	suppressed := b.create("email", time.Minute, `{"payload":{"to_email":"gone@example.com"}}`)
	if _, _, err := b.store.PutSuppression(b.ctx, comms.Suppression{CompanyID: "acme", Channel: comms.SuppressEmail, Recipient: "gone@example.com",
		Reason: comms.SuppressBounce, CreatedAt: start, CreatedBy: "test"}); err != nil {
		t.Fatal(err)
	}
	stale := b.create("email", time.Minute, "")
	early := b.create("email", time.Minute, "")
	// Afternoons only from now on: the held row is outside its hours.
	set := comms.DefaultSettings()
	for _, d := range comms.Weekdays[:5] {
		set.BusinessHours[d] = [][2]string{{"14:00", "18:00"}}
	}
	if err := b.store.PutSettings(b.ctx, "acme", set); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(3 * time.Minute) // two minutes late: the expiring row is past its one minute
	staleFire := comms.FireOf(stale)
	staleFire.Token = "another-token"
	unknown := comms.Fire{CompanyID: "acme", CommunicationID: "no-such-row", Token: "t"}
	// A fire armed for later than its row is due (early by its own
	// account): re-armed for its time, not acted on.
	earlyFire := comms.FireOf(early)
	earlyFire.DueAt = b.clock.Now().Add(time.Hour)
	fires := []comms.Fire{comms.FireOf(plain[0]), comms.FireOf(held), comms.FireOf(plain[1]), comms.FireOf(expiring),
		comms.FireOf(suppressed), staleFire, unknown, earlyFire, comms.FireOf(plain[2])}
	for i, err := range b.d.HandleBatch(b.ctx, fires) {
		if err != nil {
			t.Fatalf("fire %d: %v", i, err)
		}
	}
	for _, r := range plain {
		if got := b.get(r.ID); got.Status != comms.StatusSent || got.AttemptCount != 1 || b.senders.sends(r.ID) != 1 {
			t.Errorf("plain row %s: %s attempt %d, %d sends", r.Channel, got.Status, got.AttemptCount, b.senders.sends(r.ID))
		}
	}
	if got := b.get(held.ID); got.Status != comms.StatusPending || !got.NextAttemptAt.Equal(time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC)) || b.senders.sends(held.ID) != 0 {
		t.Errorf("held row: %s next %v", got.Status, got.NextAttemptAt)
	}
	if got := b.get(expiring.ID); got.Status != comms.StatusCancelled || got.CancelReason != comms.CancelExpired {
		t.Errorf("expiring row: %s %q", got.Status, got.CancelReason)
	}
	if got := b.get(suppressed.ID); got.Status != comms.StatusFailed || got.LastError == nil || got.LastError.Code != dispatch.CodeRecipientSuppressed ||
		b.senders.sends(suppressed.ID) != 0 {
		t.Errorf("suppressed row: %s %+v", got.Status, got.LastError)
	}
	if got := b.get(stale.ID); got.Status != comms.StatusPending || got.Version != stale.Version || b.senders.sends(stale.ID) != 0 {
		t.Errorf("a stale fire moved its row: %s v%d", got.Status, got.Version)
	}
	if got := b.get(early.ID); got.Status != comms.StatusPending || b.senders.sends(early.ID) != 0 {
		t.Errorf("the early fire's row is %s after %d sends", got.Status, b.senders.sends(early.ID))
	}
	b.timer.mu.Lock()
	rearmed := slices.ContainsFunc(b.timer.arms, func(a armed) bool { return a.f == earlyFire && a.at.Equal(earlyFire.DueAt) })
	b.timer.mu.Unlock()
	if !rearmed {
		t.Errorf("the early fire was not re-armed at its time")
	}
	if w := spy.claimWrites(); len(w) != 1 || w[0] != 3 {
		t.Errorf("claim writes %v, want one of the 3 ready rows", w)
	}
}

// TestBatchClaimLosingItsCASIsNotSent: a row cancelled between the batch's
// read and its claim loses its compare-and-swap alone: it is not sent and
// stays cancelled; the others of the batch are claimed and sent.
func TestBatchClaimLosingItsCASIsNotSent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spy := b.batched(t)
	rows := []comms.Communication{b.create("email", time.Minute, ""), b.create("email", time.Minute, ""), b.create("email", time.Minute, "")}
	spy.before = func() {
		if _, err := b.svc.Cancel(b.ctx, b.p, rows[1].ID); err != nil {
			t.Errorf("cancel: %v", err)
		}
	}
	b.clock.Advance(time.Minute)
	fires := []comms.Fire{comms.FireOf(rows[0]), comms.FireOf(rows[1]), comms.FireOf(rows[2])}
	for i, err := range b.d.HandleBatch(b.ctx, fires) {
		if err != nil {
			t.Fatalf("fire %d: %v", i, err)
		}
	}
	if got := b.get(rows[1].ID); got.Status != comms.StatusCancelled || b.senders.sends(rows[1].ID) != 0 {
		t.Errorf("the cancelled row is %s after %d sends", got.Status, b.senders.sends(rows[1].ID))
	}
	for _, i := range []int{0, 2} {
		if got := b.get(rows[i].ID); got.Status != comms.StatusSent || b.senders.sends(rows[i].ID) != 1 {
			t.Errorf("row %d is %s after %d sends", i, got.Status, b.senders.sends(rows[i].ID))
		}
	}
}

// TestBatchConcurrentDeliveriesSendOnce: the same fire in 20 concurrent
// batches (and twice in each) is sent once.
func TestBatchConcurrentDeliveriesSendOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.batched(t)
	row := b.create("email", time.Minute, "")
	other := b.create("sms", time.Minute, "")
	b.clock.Advance(time.Minute)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 20 {
		wg.Go(func() {
			for _, err := range b.d.HandleBatch(b.ctx, []comms.Fire{comms.FireOf(row), comms.FireOf(other), comms.FireOf(row)}) {
				if err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n, m := b.senders.sends(row.ID), b.senders.sends(other.ID); n != 1 || m != 1 || failed.Load() != 0 {
		t.Errorf("sends %d and %d, want 1 each; %d errors", n, m, failed.Load())
	}
}

// TestBatchResultLosingItsCASLeavesTheOthers: while a batch's rows are
// being sent, one row's lease is taken over (a sweep). Its result loses its
// compare-and-swap alone — counted as lost, the sweep's write kept — and
// the other results, written with it, are recorded.
func TestBatchResultLosingItsCASLeavesTheOthers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.batched(t)
	rows := []comms.Communication{b.create("email", time.Minute, ""), b.create("email", time.Minute, ""), b.create("email", time.Minute, "")}
	var swept atomic.Bool
	b.senders.result = func(_, id string, _ int) error {
		if id == rows[1].ID && swept.CompareAndSwap(false, true) {
			claimed := b.get(id)
			ch, err := comms.ReleaseExpiredLease(claimed, b.clock.Now())
			if err == nil {
				_, _, err = b.store.UpdateCommunication(context.Background(), ch, false)
			}
			if err != nil {
				t.Errorf("sweep: %v", err)
			}
		}
		return nil
	}
	b.clock.Advance(time.Minute)
	for i, err := range b.d.HandleBatch(b.ctx, []comms.Fire{comms.FireOf(rows[0]), comms.FireOf(rows[1]), comms.FireOf(rows[2])}) {
		if err != nil {
			t.Fatalf("fire %d: %v", i, err)
		}
	}
	if got := b.get(rows[1].ID); got.Status != comms.StatusPending || got.SentAt != nil {
		t.Errorf("the swept row is %s (sent_at %v): the lost result was written", got.Status, got.SentAt)
	}
	for _, i := range []int{0, 2} {
		if got := b.get(rows[i].ID); got.Status != comms.StatusSent {
			t.Errorf("row %d is %s", i, got.Status)
		}
	}
	if st := b.d.Stats(); st.LostRecord.Load() != 1 || st.Sent.Load() != 2 {
		t.Errorf("lost %d sent %d, want 1 and 2", st.LostRecord.Load(), st.Sent.Load())
	}
}
