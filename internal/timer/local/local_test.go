package local_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/clock"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/timer/local"
)

// wait bounds waiting for something that must happen (a delivery, Run
// returning): machines are shared and noisy, so tests never measure
// latency. What is due, and when, is decided by a fake clock the test
// moves; nothing here sleeps.
const wait = 10 * time.Second

// base is where every fake clock starts.
var base = time.Date(2030, 1, 7, 9, 0, 0, 0, time.UTC)

// seed drives the randomised arming orders; it is fixed so that a failure
// replays, and logged by the tests that use it.
const seed = 20300107

func fire(i int) comms.Fire {
	return comms.Fire{CompanyID: "co", CommunicationID: fmt.Sprintf("c%05d", i), Token: "t1"}
}

// recorder is a handler that records deliveries and the timer clock's time
// of each.
type recorder struct {
	clock  clock.Clock
	mu     sync.Mutex
	order  []comms.Fire
	at     []time.Time
	counts map[comms.Fire]int
	n      atomic.Int64
	notify chan struct{} // receives a token per delivery, never blocks
}

func newRecorder(c clock.Clock) *recorder {
	return &recorder{clock: c, counts: map[comms.Fire]int{}, notify: make(chan struct{}, 1)}
}

func (r *recorder) handle(_ context.Context, f comms.Fire) error {
	r.mu.Lock()
	r.order = append(r.order, f)
	r.at = append(r.at, r.clock.Now())
	r.counts[f]++
	r.mu.Unlock()
	r.n.Add(1)
	select {
	case r.notify <- struct{}{}:
	default:
	}
	return nil
}

// waitFor waits until at least n deliveries were recorded.
func (r *recorder) waitFor(t testing.TB, n int) {
	t.Helper()
	deadline := time.After(wait)
	for r.n.Load() < int64(n) {
		select {
		case <-r.notify:
		case <-deadline:
			t.Fatalf("%d of %d fires delivered after %v", r.n.Load(), n, wait)
		}
	}
}

// asleepUntil waits until the timer's scheduler sleeps on one alarm of the
// fake clock, set at at. From then on nothing is handed over until the
// clock reaches at: what a test asserts "did not happen" before that
// instant cannot happen later either.
func asleepUntil(t testing.TB, c *clock.Fake, at time.Time) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		next, ok := c.Next()
		if ok && next.Equal(at) && c.Alarms() == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the scheduler is not asleep until %v after %v (alarms: %d, next %v %v)", at, wait, c.Alarms(), next, ok)
		}
		time.Sleep(time.Millisecond) // a poll interval, not a wait for time to pass
	}
}

// start runs tm until the test ends and checks that Run returned nil.
func start(t testing.TB, tm *local.Timer) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tm.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(wait):
			t.Errorf("Run did not return after cancel")
		}
	})
	return cancel
}

// TestDeliversInDueOrder arms 100 fires, 2 ms apart, in a shuffled order
// before Run starts, then moves the clock through their due times one at a
// time: each fire is delivered at its due time and not before.
func TestDeliversInDueOrder(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(base)
	r := newRecorder(clk)
	tm := local.New(r.handle, local.Options{Workers: 1, Clock: clk})
	ctx := context.Background()

	t.Logf("arming order seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	first := base.Add(50 * time.Millisecond)
	due := func(i int) time.Time { return first.Add(time.Duration(i) * 2 * time.Millisecond) }
	for _, i := range rng.Perm(100) {
		if err := tm.Arm(ctx, fire(i), due(i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := tm.Len(); got != 100 {
		t.Fatalf("Len = %d, want 100", got)
	}
	start(t, tm)
	for i := range 100 {
		asleepUntil(t, clk, due(i))
		if n := r.n.Load(); n != int64(i) {
			t.Fatalf("%d fires delivered before fire %d was due, want %d", n, i, i)
		}
		clk.Set(due(i))
		r.waitFor(t, i+1)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	for i, f := range r.order {
		if f != fire(i) {
			t.Fatalf("delivery %d was %v, want %v (order %v)", i, f.CommunicationID, fire(i).CommunicationID, r.order)
		}
		if !r.at[i].Equal(due(i)) {
			t.Errorf("%v delivered at %v, want at its due time %v", f.CommunicationID, r.at[i], due(i))
		}
	}
	if got := tm.Len(); got != 0 {
		t.Errorf("Len = %d, want 0", got)
	}
}

func TestPastFireIsDeliveredImmediately(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(base)
	r := newRecorder(clk)
	tm := local.New(r.handle, local.Options{Clock: clk})
	start(t, tm)
	if err := tm.Arm(context.Background(), fire(1), base.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, 1) // the clock never moves: an overdue fire needs no alarm
	if got := tm.Len(); got != 0 {
		t.Errorf("Len after delivery = %d, want 0", got)
	}
}

func TestRearmMovesFireLater(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(base)
	r := newRecorder(clk)
	tm := local.New(r.handle, local.Options{Clock: clk})
	start(t, tm)
	ctx := context.Background()

	first, second := base.Add(time.Second), base.Add(1500*time.Millisecond)
	if err := tm.Arm(ctx, fire(1), first); err != nil {
		t.Fatal(err)
	}
	if err := tm.Arm(ctx, fire(1), second); err != nil {
		t.Fatal(err)
	}
	if got := tm.Len(); got != 1 {
		t.Fatalf("Len after re-arm = %d, want 1", got)
	}
	asleepUntil(t, clk, second)
	clk.Set(first)
	if n, l := r.n.Load(), tm.Len(); n != 0 || l != 1 {
		t.Fatalf("at the first due time: %d deliveries, Len %d; want 0, 1 (the fire moved later)", n, l)
	}
	clk.Set(second)
	r.waitFor(t, 1)

	r.mu.Lock()
	defer r.mu.Unlock()
	// One heap entry existed and none is left: one delivery, and no other can follow.
	if len(r.order) != 1 || tm.Len() != 0 {
		t.Fatalf("delivered %d times, Len %d; want once, 0", len(r.order), tm.Len())
	}
	if !r.at[0].Equal(second) {
		t.Errorf("delivered at %v, want %v", r.at[0], second)
	}
}

func TestRearmMovesFireEarlier(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(base)
	r := newRecorder(clk)
	tm := local.New(r.handle, local.Options{Clock: clk})
	start(t, tm)
	ctx := context.Background()

	if err := tm.Arm(ctx, fire(1), base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := tm.Arm(ctx, fire(2), base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	asleepUntil(t, clk, base.Add(time.Hour))
	// Moving a fire earlier than the current earliest wakes the scheduler.
	if err := tm.Arm(ctx, fire(2), base); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.order[0] != fire(2) {
		t.Errorf("delivered %v, want %v", r.order[0], fire(2))
	}
	if got := tm.Len(); got != 1 {
		t.Errorf("Len = %d, want 1 (fire 1 still armed)", got)
	}
}

func TestOtherTokenIsAnotherFire(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(base)
	r := newRecorder(clk)
	tm := local.New(r.handle, local.Options{Clock: clk})
	ctx := context.Background()
	old := fire(1)
	renewed := old
	renewed.Token = "t2"
	for _, f := range []comms.Fire{old, renewed, old} {
		if err := tm.Arm(ctx, f, base.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if got := tm.Len(); got != 2 {
		t.Fatalf("Len = %d, want 2", got)
	}
	start(t, tm)
	r.waitFor(t, 2)
	// Two entries were armed and both were delivered: no third can follow.
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.counts[old] != 1 || r.counts[renewed] != 1 || len(r.order) != 2 || tm.Len() != 0 {
		t.Errorf("deliveries %v, Len %d; want each token once", r.counts, tm.Len())
	}
}

func TestBurstDeliveredExactlyOnce(t *testing.T) {
	t.Parallel()
	const n = 10_000
	clk := clock.NewFake(base)
	r := newRecorder(clk)
	tm := local.New(r.handle, local.Options{Workers: 32, Clock: clk})
	start(t, tm)
	ctx := context.Background()

	at := base.Add(100 * time.Millisecond) // one instant for all
	for i := range n {
		if err := tm.Arm(ctx, fire(i), at); err != nil {
			t.Fatal(err)
		}
	}
	if got := tm.Len(); got != n {
		t.Fatalf("Len = %d, want %d", got, n)
	}
	clk.Set(at)
	r.waitFor(t, n)

	// n entries were armed, n distinct fires delivered and none is left.
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.order) != n || len(r.counts) != n {
		t.Fatalf("%d deliveries of %d distinct fires, want %d of %d", len(r.order), len(r.counts), n, n)
	}
	for f, c := range r.counts {
		if c != 1 {
			t.Errorf("%v delivered %d times", f, c)
		}
	}
	if got := tm.Len(); got != 0 {
		t.Errorf("Len = %d, want 0", got)
	}
}

func TestConcurrentArm(t *testing.T) {
	t.Parallel()
	const goroutines, per = 8, 500
	clk := clock.NewFake(base)
	r := newRecorder(clk)
	tm := local.New(r.handle, local.Options{Workers: 4, Clock: clk})
	start(t, tm)
	ctx := context.Background()
	t.Logf("due-time seed %d", seed)

	arm := func(at func(rng *rand.Rand) time.Time) {
		var wg sync.WaitGroup
		for g := range goroutines {
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			wg.Go(func() {
				for i := range per {
					if err := tm.Arm(ctx, fire(g*per+i), at(rng)); err != nil {
						t.Error(err)
						return
					}
					_ = tm.Len()
				}
			})
		}
		wg.Wait()
	}
	// First an hour ahead, then every fire moved to within 1–21 ms: each is
	// armed twice, stays one entry, and must be delivered once.
	arm(func(*rand.Rand) time.Time { return base.Add(time.Hour) })
	if got := tm.Len(); got != goroutines*per {
		t.Fatalf("Len = %d, want %d", got, goroutines*per)
	}
	arm(func(rng *rand.Rand) time.Time {
		return base.Add(time.Millisecond + time.Duration(rng.Int64N(int64(20*time.Millisecond))))
	})
	if got := tm.Len(); got != goroutines*per {
		t.Fatalf("Len after moving every fire = %d, want %d", got, goroutines*per)
	}
	clk.Advance(21 * time.Millisecond)
	r.waitFor(t, goroutines*per)

	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.order) != goroutines*per || len(r.counts) != goroutines*per || tm.Len() != 0 {
		t.Fatalf("%d deliveries of %d distinct fires, Len %d; want %d, 0 left", len(r.order), len(r.counts), tm.Len(), goroutines*per)
	}
}

func TestRunWaitsForInFlightHandler(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(base)
	started := make(chan struct{})
	release := make(chan struct{})
	var handlerDone atomic.Bool
	var handlerCtxErr error
	tm := local.New(func(ctx context.Context, f comms.Fire) error {
		close(started)
		<-release
		handlerCtxErr = ctx.Err()
		handlerDone.Store(true)
		return nil
	}, local.Options{Workers: 2, Clock: clk})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		err         error
		handlerDone bool // when Run returned
	}
	done := make(chan result, 1)
	go func() {
		err := tm.Run(ctx)
		done <- result{err, handlerDone.Load()}
	}()

	if err := tm.Arm(ctx, fire(1), base); err != nil {
		t.Fatal(err)
	}
	if err := tm.Arm(ctx, fire(2), base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(wait):
		t.Fatal("handler not called")
	}
	cancel()
	// Arm fails once Run has stopped taking fires, which is when it starts
	// waiting for the handler: it must not return while the handler is held.
	deadline := time.Now().Add(wait)
	for !errors.Is(tm.Arm(context.Background(), fire(3), base.Add(time.Hour)), local.ErrStopped) {
		if time.Now().After(deadline) {
			t.Fatal("Arm still accepted fires long after cancel")
		}
		time.Sleep(time.Millisecond) // poll interval
	}
	select {
	case res := <-done:
		t.Fatalf("Run returned (%v) while a handler was in flight", res.err)
	default:
	}
	close(release)
	select {
	case res := <-done:
		if res.err != nil {
			t.Fatalf("Run = %v, want nil", res.err)
		}
		if !res.handlerDone {
			t.Fatal("Run returned before the in-flight handler finished")
		}
	case <-time.After(wait):
		t.Fatal("Run did not return after the handler finished")
	}
	if handlerCtxErr != nil {
		t.Errorf("handler context was cancelled with Run's: %v", handlerCtxErr)
	}
	if got := tm.Len(); got != 0 {
		t.Errorf("Len after Run = %d, want 0 (armed fires are forgotten)", got)
	}
}

func TestArmAfterRunEnded(t *testing.T) {
	t.Parallel()
	tm := local.New(func(context.Context, comms.Fire) error { return nil }, local.Options{Clock: clock.NewFake(base)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := tm.Run(ctx); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if err := tm.Arm(context.Background(), fire(1), base); !errors.Is(err, local.ErrStopped) {
		t.Errorf("Arm after Run = %v, want ErrStopped", err)
	}
	if err := tm.Run(context.Background()); !errors.Is(err, local.ErrStopped) {
		t.Errorf("second Run = %v, want ErrStopped", err)
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestHandlerPanicAndErrorDoNotStopDeliveries(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(base)
	r := newRecorder(clk)
	var logs syncBuffer
	tm := local.New(func(ctx context.Context, f comms.Fire) error {
		switch f {
		case fire(0):
			panic("boom")
		case fire(1):
			return errors.New("send failed")
		}
		return r.handle(ctx, f)
	}, local.Options{Workers: 1, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Clock: clk})
	start(t, tm)
	ctx := context.Background()

	for i := range 4 {
		if err := tm.Arm(ctx, fire(i), base.Add(time.Duration(i)*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(3 * time.Millisecond)
	// One worker takes fires in due order: fires 0 and 1 were handled, and
	// logged, before fire 2 was recorded.
	r.waitFor(t, 2)
	r.mu.Lock()
	got := slices.Clone(r.order)
	r.mu.Unlock()
	if want := []comms.Fire{fire(2), fire(3)}; !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
	out := logs.String()
	for _, want := range []string{"panicked", "boom", "send failed", "c00001"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestLenReflectsArmedFires(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(base)
	r := newRecorder(clk)
	tm := local.New(r.handle, local.Options{Clock: clk})
	ctx := context.Background()
	if got := tm.Len(); got != 0 {
		t.Fatalf("Len of a new timer = %d", got)
	}
	later := base.Add(time.Hour)
	for i := range 3 {
		if err := tm.Arm(ctx, fire(i), later); err != nil {
			t.Fatal(err)
		}
	}
	if err := tm.Arm(ctx, fire(0), later.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := tm.Len(); got != 3 {
		t.Fatalf("Len = %d, want 3", got)
	}
	start(t, tm)
	if err := tm.Arm(ctx, fire(1), base); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, 1)
	if got := tm.Len(); got != 2 {
		t.Errorf("Len after one delivery = %d, want 2", got)
	}
}

// TestNothingIsDeliveredBeforeItsTime: the clock alone decides what is due.
// A fire due an hour ahead stays armed, however long the test runs, until
// the clock reads its time — even when the scheduler wakes 1 ns before it
// to deliver another fire.
func TestNothingIsDeliveredBeforeItsTime(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(base)
	r := newRecorder(clk)
	tm := local.New(r.handle, local.Options{Clock: clk})
	start(t, tm)
	ctx := context.Background()

	later := base.Add(time.Hour)
	just := later.Add(-time.Nanosecond)
	for f, at := range map[comms.Fire]time.Time{fire(1): later, fire(2): base, fire(3): just} {
		if err := tm.Arm(ctx, f, at); err != nil {
			t.Fatal(err)
		}
	}
	r.waitFor(t, 1)
	asleepUntil(t, clk, just)
	clk.Set(just)
	r.waitFor(t, 2)
	asleepUntil(t, clk, later)
	if n, l := r.n.Load(), tm.Len(); n != 2 || l != 1 {
		t.Fatalf("1 ns before fire 1 is due: %d deliveries, Len %d; want 2, 1", n, l)
	}
	clk.Set(later)
	r.waitFor(t, 3)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Equal(r.order, []comms.Fire{fire(2), fire(3), fire(1)}) || !r.at[2].Equal(later) {
		t.Errorf("delivered %v at %v, want fires 2, 3, then 1 at %v", r.order, r.at, later)
	}
}

// TestSystemClockByDefault: without Options.Clock the wall clock decides,
// and its alarm wakes the scheduler. Only "not before its time" is
// asserted; how late is for benchmarks.
func TestSystemClockByDefault(t *testing.T) {
	t.Parallel()
	r := newRecorder(clock.System)
	tm := local.New(r.handle, local.Options{})
	start(t, tm)
	due := time.Now().Add(20 * time.Millisecond)
	if err := tm.Arm(context.Background(), fire(1), due); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.at[0].Before(due) {
		t.Errorf("delivered %v before its due time", due.Sub(r.at[0]))
	}
}

func BenchmarkArmDeliver(b *testing.B) {
	var delivered atomic.Int64
	done := make(chan struct{})
	n := int64(b.N)
	tm := local.New(func(context.Context, comms.Fire) error {
		if delivered.Add(1) == n {
			close(done)
		}
		return nil
	}, local.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { _ = tm.Run(ctx); close(ran) }()
	defer func() { cancel(); <-ran }()

	fires := make([]comms.Fire, b.N)
	for i := range fires {
		fires[i] = fire(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	now := time.Now()
	for _, f := range fires {
		if err := tm.Arm(ctx, f, now); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.StopTimer()
}

// TestFailedFireIsArmedAgainWithBackoff: a fire whose handler fails (the
// store could not write) is delivered again after a backoff that grows with
// each failure — not dropped for the sweeper — until it succeeds; then
// nothing more is armed.
func TestFailedFireIsArmedAgainWithBackoff(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(base)
	var calls atomic.Int64
	handled := make(chan struct{}, 10)
	tm := local.New(func(ctx context.Context, f comms.Fire) error {
		defer func() { handled <- struct{}{} }()
		if calls.Add(1) <= 3 {
			return errors.New("store: disk full")
		}
		return nil
	}, local.Options{Workers: 1, Clock: clk, RetryBase: 100 * time.Millisecond, RetryCap: 300 * time.Millisecond})
	start(t, tm)
	if err := tm.Arm(context.Background(), fire(0), base); err != nil {
		t.Fatal(err)
	}
	// Failure n is retried after half to all of min(100 ms × 2^(n-1), 300 ms).
	steps := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}
	for n := 0; n <= len(steps); n++ {
		select {
		case <-handled:
		case <-time.After(wait):
			t.Fatalf("delivery %d did not happen", n+1)
		}
		if n == len(steps) {
			break
		}
		deadline := time.Now().Add(wait)
		for tm.Len() == 0 { // the failed fire is being armed again
			if time.Now().After(deadline) {
				t.Fatalf("failure %d: the fire was not armed again", n+1)
			}
			time.Sleep(time.Millisecond) // poll interval
		}
		now := clk.Now()
		next, ok := clk.Next()
		for !ok || !next.After(now) { // until the scheduler sleeps on the retry's alarm
			if time.Now().After(deadline) {
				t.Fatalf("failure %d: no alarm for the retry", n+1)
			}
			time.Sleep(time.Millisecond) // poll interval
			next, ok = clk.Next()
		}
		if wait := next.Sub(now); wait < steps[n]/2 || wait > steps[n] {
			t.Fatalf("failure %d retried after %v, want %v–%v", n+1, wait, steps[n]/2, steps[n])
		}
		clk.Set(next)
	}
	if got := calls.Load(); got != 4 {
		t.Fatalf("%d deliveries, want 4 (3 failures, then success)", got)
	}
	if tm.Len() != 0 {
		t.Fatalf("%d fires still armed after the success", tm.Len())
	}
}
