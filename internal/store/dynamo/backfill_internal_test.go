package dynamo

import (
	"context"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/clock"
)

// TestCapacityCap: after a call that consumed u units, the next call
// waits until u / rate seconds have passed (on a fake clock); units
// consumed while idle do not accumulate credit; no rate never waits.
func TestCapacityCap(t *testing.T) {
	start := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	clk := clock.NewFake(start)
	c := newCapacityCap(50, clk) // 50 units a second
	ctx := t.Context()
	if err := c.wait(ctx); err != nil {
		t.Fatal(err)
	}
	c.charge(100) // two seconds' worth
	done := make(chan error, 1)
	go func() { done <- c.wait(ctx) }()
	for clk.Alarms() == 0 {
		time.Sleep(time.Millisecond) // until the waiter has set its alarm
	}
	clk.Advance(1999 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("wait returned %v before 2 s of 100 units at 50/s", err)
	default:
	}
	clk.Advance(time.Millisecond)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Idle for a minute: no saved credit, the next charge starts from now.
	clk.Advance(time.Minute)
	c.charge(5)
	if want := clk.Now().Add(100 * time.Millisecond); !c.next.Equal(want) {
		t.Errorf("next %v, want %v", c.next, want)
	}
	// A cancelled wait returns its context's error.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.wait(cancelled); err == nil {
		t.Error("cancelled wait: no error")
	}
	var none *capacityCap = newCapacityCap(0, clk)
	none.charge(1e9)
	if err := none.wait(ctx); err != nil || none != nil {
		t.Errorf("no rate: %v, %v", none, err)
	}
}
