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

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/timer/local"
)

// wait is the generous bound for anything that should happen "at once":
// machines are shared and noisy, so tests measure order and counts, not
// latency.
const wait = 10 * time.Second

func fire(i int) comms.Fire {
	return comms.Fire{CompanyID: "co", CommunicationID: fmt.Sprintf("c%05d", i), Token: "t1"}
}

// recorder is a handler that records deliveries.
type recorder struct {
	mu     sync.Mutex
	order  []comms.Fire
	at     []time.Time
	counts map[comms.Fire]int
	n      atomic.Int64
	notify chan struct{} // receives a token per delivery, never blocks
}

func newRecorder() *recorder {
	return &recorder{counts: map[comms.Fire]int{}, notify: make(chan struct{}, 1)}
}

func (r *recorder) handle(_ context.Context, f comms.Fire) error {
	r.mu.Lock()
	r.order = append(r.order, f)
	r.at = append(r.at, time.Now())
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

func TestDeliversInDueOrder(t *testing.T) {
	t.Parallel()
	r := newRecorder()
	tm := local.New(r.handle, local.Options{Workers: 1})
	ctx := context.Background()

	// 100 distinct due times within 200 ms, armed in random order before Run
	// starts, so the order cannot depend on how fast arming is.
	base := time.Now().Add(50 * time.Millisecond)
	due := map[comms.Fire]time.Time{}
	for _, i := range rand.Perm(100) {
		f := fire(i)
		due[f] = base.Add(time.Duration(i) * 2 * time.Millisecond)
		if err := tm.Arm(ctx, f, due[f]); err != nil {
			t.Fatal(err)
		}
	}
	if got := tm.Len(); got != 100 {
		t.Fatalf("Len = %d, want 100", got)
	}
	start(t, tm)
	r.waitFor(t, 100)

	r.mu.Lock()
	defer r.mu.Unlock()
	for i, f := range r.order {
		if f != fire(i) {
			t.Fatalf("delivery %d was %v, want %v (order %v)", i, f.CommunicationID, fire(i).CommunicationID, r.order)
		}
		if r.at[i].Before(due[f]) {
			t.Errorf("%v delivered %v before its due time", f.CommunicationID, due[f].Sub(r.at[i]))
		}
	}
}

func TestPastFireIsDeliveredImmediately(t *testing.T) {
	t.Parallel()
	r := newRecorder()
	tm := local.New(r.handle, local.Options{})
	start(t, tm)
	if err := tm.Arm(context.Background(), fire(1), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, 1)
	if got := tm.Len(); got != 0 {
		t.Errorf("Len after delivery = %d, want 0", got)
	}
}

func TestRearmMovesFireLater(t *testing.T) {
	t.Parallel()
	r := newRecorder()
	tm := local.New(r.handle, local.Options{})
	start(t, tm)
	ctx := context.Background()

	now := time.Now()
	first, second := now.Add(time.Second), now.Add(1500*time.Millisecond)
	if err := tm.Arm(ctx, fire(1), first); err != nil {
		t.Fatal(err)
	}
	if err := tm.Arm(ctx, fire(1), second); err != nil {
		t.Fatal(err)
	}
	if got := tm.Len(); got != 1 {
		t.Fatalf("Len after re-arm = %d, want 1", got)
	}
	r.waitFor(t, 1)
	time.Sleep(300 * time.Millisecond) // room for a wrong second delivery

	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.order) != 1 {
		t.Fatalf("delivered %d times, want once", len(r.order))
	}
	if r.at[0].Before(second) {
		t.Errorf("delivered %v before the later due time (earlier one was %v)", second.Sub(r.at[0]), first.Sub(now))
	}
}

func TestRearmMovesFireEarlier(t *testing.T) {
	t.Parallel()
	r := newRecorder()
	tm := local.New(r.handle, local.Options{})
	start(t, tm)
	ctx := context.Background()

	if err := tm.Arm(ctx, fire(1), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := tm.Arm(ctx, fire(2), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Moving a fire earlier than the current earliest wakes the scheduler.
	if err := tm.Arm(ctx, fire(2), time.Now()); err != nil {
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
	r := newRecorder()
	tm := local.New(r.handle, local.Options{})
	ctx := context.Background()
	old := fire(1)
	renewed := old
	renewed.Token = "t2"
	past := time.Now().Add(-time.Second)
	for _, f := range []comms.Fire{old, renewed, old} {
		if err := tm.Arm(ctx, f, past); err != nil {
			t.Fatal(err)
		}
	}
	if got := tm.Len(); got != 2 {
		t.Fatalf("Len = %d, want 2", got)
	}
	start(t, tm)
	r.waitFor(t, 2)
	time.Sleep(100 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.counts[old] != 1 || r.counts[renewed] != 1 || len(r.order) != 2 {
		t.Errorf("deliveries %v, want each token once", r.counts)
	}
}

func TestBurstDeliveredExactlyOnce(t *testing.T) {
	t.Parallel()
	const n = 10_000
	r := newRecorder()
	tm := local.New(r.handle, local.Options{Workers: 32})
	start(t, tm)
	ctx := context.Background()

	at := time.Now().Add(100 * time.Millisecond) // one instant for all
	for i := range n {
		if err := tm.Arm(ctx, fire(i), at); err != nil {
			t.Fatal(err)
		}
	}
	r.waitFor(t, n)
	time.Sleep(100 * time.Millisecond)

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
	r := newRecorder()
	tm := local.New(r.handle, local.Options{Workers: 4})
	start(t, tm)
	ctx := context.Background()

	arm := func(at func() time.Time) {
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range per {
					if err := tm.Arm(ctx, fire(g*per+i), at()); err != nil {
						t.Error(err)
						return
					}
					_ = tm.Len()
				}
			})
		}
		wg.Wait()
	}
	// First far in the future, then every fire moved to within 20 ms: each
	// is armed twice and must be delivered once.
	arm(func() time.Time { return time.Now().Add(time.Hour) })
	if got := tm.Len(); got != goroutines*per {
		t.Fatalf("Len = %d, want %d", got, goroutines*per)
	}
	arm(func() time.Time { return time.Now().Add(rand.N(20 * time.Millisecond)) })
	r.waitFor(t, goroutines*per)
	time.Sleep(100 * time.Millisecond)

	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.order) != goroutines*per || len(r.counts) != goroutines*per {
		t.Fatalf("%d deliveries of %d distinct fires, want %d", len(r.order), len(r.counts), goroutines*per)
	}
}

func TestRunWaitsForInFlightHandler(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	release := make(chan struct{})
	var handlerCtxErr error
	tm := local.New(func(ctx context.Context, f comms.Fire) error {
		close(started)
		<-release
		handlerCtxErr = ctx.Err()
		return nil
	}, local.Options{Workers: 2})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- tm.Run(ctx) }()

	if err := tm.Arm(ctx, fire(1), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := tm.Arm(ctx, fire(2), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(wait):
		t.Fatal("handler not called")
	}
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while a handler was in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
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
	tm := local.New(func(context.Context, comms.Fire) error { return nil }, local.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := tm.Run(ctx); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if err := tm.Arm(context.Background(), fire(1), time.Now()); !errors.Is(err, local.ErrStopped) {
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
	r := newRecorder()
	var logs syncBuffer
	tm := local.New(func(ctx context.Context, f comms.Fire) error {
		switch f {
		case fire(0):
			panic("boom")
		case fire(1):
			return errors.New("send failed")
		}
		return r.handle(ctx, f)
	}, local.Options{Workers: 1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	start(t, tm)
	ctx := context.Background()

	now := time.Now()
	for i := range 4 {
		if err := tm.Arm(ctx, fire(i), now.Add(time.Duration(i)*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
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
	r := newRecorder()
	tm := local.New(r.handle, local.Options{})
	ctx := context.Background()
	if got := tm.Len(); got != 0 {
		t.Fatalf("Len of a new timer = %d", got)
	}
	later := time.Now().Add(time.Hour)
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
	if err := tm.Arm(ctx, fire(1), time.Now()); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, 1)
	if got := tm.Len(); got != 2 {
		t.Errorf("Len after one delivery = %d, want 2", got)
	}
}

func TestInjectedClockDecidesWhatIsDue(t *testing.T) {
	t.Parallel()
	r := newRecorder()
	var fake atomic.Int64
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	fake.Store(base.UnixNano())
	tm := local.New(r.handle, local.Options{Now: func() time.Time { return time.Unix(0, fake.Load()) }})
	start(t, tm)
	ctx := context.Background()

	// Due in the past by the wall clock, but an hour ahead by the injected one.
	if err := tm.Arm(ctx, fire(1), base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := tm.Arm(ctx, fire(2), base); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, 1)
	time.Sleep(100 * time.Millisecond)
	if got := r.n.Load(); got != 1 {
		t.Fatalf("%d deliveries, want 1: fire 1 is not due by the injected clock", got)
	}
	r.mu.Lock()
	if r.order[0] != fire(2) {
		t.Errorf("delivered %v, want %v", r.order[0], fire(2))
	}
	r.mu.Unlock()
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
