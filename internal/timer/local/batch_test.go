package local_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/clock"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/timer/local"
)

// TestBatchHandlerGetsDueFiresInBatches arms 70 fires due at one instant
// and 5 due later: once the clock reaches the first instant the batch
// handler gets the 70, in batches of at most MaxBatch and in arm order,
// each exactly once, and none of the later ones until their time.
func TestBatchHandlerGetsDueFiresInBatches(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(base)
	r := newRecorder(clk)
	var (
		mu      sync.Mutex
		batches [][]comms.Fire
	)
	tm := local.New(r.handle, local.Options{Workers: 1, Clock: clk, MaxBatch: 32,
		Batch: func(ctx context.Context, fs []comms.Fire) []error {
			mu.Lock()
			batches = append(batches, append([]comms.Fire(nil), fs...))
			mu.Unlock()
			for _, f := range fs {
				_ = r.handle(ctx, f)
			}
			return make([]error, len(fs))
		}})
	first, later := base.Add(time.Second), base.Add(2*time.Second)
	for i := range 70 {
		if err := tm.Arm(t.Context(), fire(i), first); err != nil {
			t.Fatal(err)
		}
	}
	for i := 70; i < 75; i++ {
		if err := tm.Arm(t.Context(), fire(i), later); err != nil {
			t.Fatal(err)
		}
	}
	start(t, tm)
	asleepUntil(t, clk, first)
	clk.Set(first)
	r.waitFor(t, 70)
	asleepUntil(t, clk, later)
	r.mu.Lock()
	for i, f := range r.order {
		if f != fire(i) {
			t.Fatalf("delivery %d is %v, want %v (arm order)", i, f, fire(i))
		}
		if r.counts[f] != 1 {
			t.Fatalf("%v delivered %d times", f, r.counts[f])
		}
	}
	if len(r.order) != 70 {
		t.Fatalf("%d fires delivered before the later instant, want 70", len(r.order))
	}
	r.mu.Unlock()
	mu.Lock()
	largest := 0
	for _, b := range batches {
		if len(b) == 0 || len(b) > 32 {
			t.Fatalf("a batch of %d fires, want 1 to 32", len(b))
		}
		largest = max(largest, len(b))
	}
	if largest != 32 {
		t.Fatalf("the largest batch has %d fires, want 32: fires due together are handed over together", largest)
	}
	if len(batches) < 3 {
		t.Fatalf("%d batches for 70 fires, want at least 3 of at most 32", len(batches))
	}
	mu.Unlock()
	clk.Set(later)
	r.waitFor(t, 75)
}

// TestBatchHandlerErrorRetriesThatFireAlone: a batch handler's error for
// one fire re-arms that fire alone after the retry backoff; the others of
// its batch are done.
func TestBatchHandlerErrorRetriesThatFireAlone(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(base)
	r := newRecorder(clk)
	var once sync.Once
	tm := local.New(r.handle, local.Options{Workers: 1, Clock: clk, RetryBase: 100 * time.Millisecond, RetryCap: 100 * time.Millisecond,
		Batch: func(ctx context.Context, fs []comms.Fire) []error {
			errs := make([]error, len(fs))
			for i, f := range fs {
				failed := false
				if f == fire(1) {
					once.Do(func() { failed = true })
				}
				if failed {
					errs[i] = errors.New("store unavailable")
					continue
				}
				_ = r.handle(ctx, f)
			}
			return errs
		}})
	for i := range 3 {
		if err := tm.Arm(t.Context(), fire(i), base); err != nil {
			t.Fatal(err)
		}
	}
	start(t, tm)
	r.waitFor(t, 2)
	// The retry is due between 50 and 100 ms later (equal jitter).
	asleepUntilAfter(t, clk, base)
	clk.Set(base.Add(100 * time.Millisecond))
	r.waitFor(t, 3)
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range 3 {
		if r.counts[fire(i)] != 1 {
			t.Fatalf("%v delivered %d times, want once", fire(i), r.counts[fire(i)])
		}
	}
	if r.order[2] != fire(1) {
		t.Fatalf("the retried fire came %v, want fire 1 last", r.order)
	}
}

// asleepUntilAfter waits until the scheduler sleeps on one alarm after t.
func asleepUntilAfter(t testing.TB, c *clock.Fake, after time.Time) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		if next, ok := c.Next(); ok && next.After(after) && c.Alarms() == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the scheduler is not asleep on an alarm after %v", after)
		}
		time.Sleep(time.Millisecond) // a poll interval, not a wait for time to pass
	}
}
