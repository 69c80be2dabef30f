package embedded_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/clock"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/embedded"
)

// timerReady waits for the timer's first load from the store.
func timerReady(t testing.TB, n *node) {
	t.Helper()
	select {
	case <-n.l.Timer.Ready():
	case <-time.After(patience):
		t.Fatal("the timer did not load from the store")
	}
}

// TestTimerHoldsOnlyTheHorizon: rows due within the timer's horizon are
// held in memory, rows due later are not — after a create and after a
// restart alike — and a far row is still sent at its time, read from the
// store when its time nears. The sweeper never runs here (SweepEvery a
// year), so nothing but the timer can send it.
func TestTimerHoldsOnlyTheHorizon(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clk := clock.NewFake(base)
	lc := embedded.LocalConfig{DataDir: dir, SweepEvery: 365 * 24 * time.Hour}
	first := startNodeWith(t, lc, clk)
	timerReady(t, first)
	var near, far []string
	for i := range 3 {
		near = append(near, first.create(t, emailAt(base.Add(time.Duration(i+1)*time.Minute), "sarah@example.com")))
	}
	for i := range 40 { // over 30 days
		far = append(far, first.create(t, emailAt(base.Add(time.Hour+time.Duration(i)*18*time.Hour), fmt.Sprintf("far%d@example.com", i))))
	}
	if got := first.l.Timer.Len(); got != len(near) {
		t.Fatalf("timer holds %d fires after the creates, want the %d near ones", got, len(near))
	}
	first.stop()

	second := startNodeWith(t, lc, clk)
	defer second.stop()
	timerReady(t, second)
	if got := second.l.Timer.Len(); got != len(near) {
		t.Fatalf("timer holds %d fires after the restart, want the %d near ones", got, len(near))
	}
	clk.Advance(3 * time.Minute)
	waitTerminal(t, second, near, patience)
	// The first far row is due at base+1h: a jump past it lets the loader
	// read it and the timer send it.
	clk.Set(base.Add(time.Hour))
	row := second.waitRow(t, far[0], "sent", func(c comms.Communication) bool { return c.Status == comms.StatusSent })
	if row.SentAt == nil || row.SentAt.Before(base.Add(time.Hour)) {
		t.Errorf("far row sent at %v, want at or after %v", row.SentAt, base.Add(time.Hour))
	}
	if got := second.get(t, far[1]).Status; got != comms.StatusPending {
		t.Errorf("second far row is %s, want pending", got)
	}
	if got := second.l.Timer.Len(); got != 0 {
		t.Errorf("timer holds %d fires, want 0 (the next far row is 18 h away)", got)
	}
}
