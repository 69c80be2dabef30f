package local_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/clock"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/timer/local"
)

// fakeStore stands in for the store's due index: the fire each row waits
// for and when. Writers put the row, then arm, as the dispatcher does.
type fakeStore struct {
	mu    sync.Mutex
	rows  map[string]local.Armed // by communication id
	fail  int                    // loads still to fail
	loads [][2]time.Time
}

func newFakeStore() *fakeStore { return &fakeStore{rows: map[string]local.Armed{}} }

func (s *fakeStore) put(f comms.Fire, at time.Time) {
	s.mu.Lock()
	s.rows[f.CommunicationID] = local.Armed{Fire: f, At: at}
	s.mu.Unlock()
}

func (s *fakeStore) load(_ context.Context, from, to time.Time) ([]local.Armed, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		return nil, errors.New("disk on fire")
	}
	s.loads = append(s.loads, [2]time.Time{from, to})
	var out []local.Armed
	for _, a := range s.rows {
		if !a.At.Before(from) && a.At.Before(to) {
			out = append(out, a)
		}
	}
	return out, nil
}

// put writes the row due at at and arms its fire (DueAt at), as a create
// or a reschedule does, and returns the fire.
func put(t testing.TB, s *fakeStore, tm *local.Timer, f comms.Fire, at time.Time) comms.Fire {
	t.Helper()
	f.DueAt = at
	s.put(f, at)
	if err := tm.Arm(context.Background(), f, at); err != nil {
		t.Fatal(err)
	}
	return f
}

// due is fire(i) due at at.
func due(i int, at time.Time) comms.Fire {
	f := fire(i)
	f.DueAt = at
	return f
}

func horizonTimer(t testing.TB, clk *clock.Fake, r *recorder, s *fakeStore) *local.Timer {
	t.Helper()
	return local.New(r.handle, local.Options{Clock: clk, Load: s.load, Horizon: 5 * time.Minute})
}

// ready waits for the first load.
func ready(t testing.TB, tm *local.Timer) {
	t.Helper()
	select {
	case <-tm.Ready():
	case <-time.After(wait):
		t.Fatal("the first load did not finish")
	}
}

// loadedAtLeast waits until n loads have succeeded.
func loadedAtLeast(t testing.TB, tm *local.Timer, n int64) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for tm.Loads() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d loads after %v, want %d", tm.Loads(), wait, n)
		}
		time.Sleep(time.Millisecond) // a poll interval, not a wait for time to pass
	}
}

// TestFireBeyondHorizonIsNotHeld: a fire due in an hour is not in memory
// (Arm is a no-op for it), is loaded once its time is within the horizon,
// and is delivered at its time, not before.
func TestFireBeyondHorizonIsNotHeld(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(base)
	r := newRecorder(clk)
	s := newFakeStore()
	tm := horizonTimer(t, clk, r, s)
	start(t, tm)
	ready(t, tm)
	due := base.Add(time.Hour)
	put(t, s, tm, fire(1), due)
	if got := tm.Len(); got != 0 {
		t.Fatalf("Len with one fire an hour ahead = %d, want 0", got)
	}
	clk.Set(due.Add(-10 * time.Minute)) // the loader's alarm rings: [base+5m, due-5m)
	loadedAtLeast(t, tm, 2)
	if got := tm.Len(); got != 0 {
		t.Fatalf("Len 10 minutes before = %d, want 0", got)
	}
	clk.Set(due.Add(-time.Nanosecond))
	loadedAtLeast(t, tm, 3)
	if got := tm.Len(); got != 1 {
		t.Fatalf("Len 1 ns before = %d, want 1", got)
	}
	if n := r.n.Load(); n != 0 {
		t.Fatalf("%d delivered before the due time", n)
	}
	clk.Set(due)
	r.waitFor(t, 1)
	if r.at[0].Before(due) {
		t.Errorf("delivered at %v, before %v", r.at[0], due)
	}
}

// TestRescheduledIntoHorizonFiresOnTime: a row moved from beyond the
// horizon to inside it is armed at once and fires on time; its old fire
// is not delivered (the store no longer has it).
func TestRescheduledIntoHorizonFiresOnTime(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(base)
	r := newRecorder(clk)
	s := newFakeStore()
	tm := horizonTimer(t, clk, r, s)
	start(t, tm)
	ready(t, tm)
	old := put(t, s, tm, fire(1), base.Add(time.Hour))
	moved := old
	moved.Token = "t2"
	moved = put(t, s, tm, moved, base.Add(2*time.Minute))
	if got := tm.Len(); got != 1 {
		t.Fatalf("Len after moving into the horizon = %d, want 1", got)
	}
	asleepUntil2(t, clk, base.Add(2*time.Minute))
	clk.Set(base.Add(2 * time.Minute))
	r.waitFor(t, 1)
	clk.Set(base.Add(2 * time.Hour))
	loadedAtLeast(t, tm, 2)
	if got := tm.Len(); got != 0 {
		t.Errorf("Len = %d, want 0", got)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.order) != 1 || r.order[0] != moved || !r.at[0].Equal(base.Add(2*time.Minute)) {
		t.Errorf("delivered %v at %v, want only %v at %v", r.order, r.at, moved, base.Add(2*time.Minute))
	}
}

// asleepUntil2 waits until one of the fake clock's alarms is set at at
// (the scheduler's; the loader holds another).
func asleepUntil2(t testing.TB, c *clock.Fake, at time.Time) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		if next, ok := c.Next(); ok && next.Equal(at) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no alarm at %v after %v", at, wait)
		}
		time.Sleep(time.Millisecond) // a poll interval, not a wait for time to pass
	}
}

// TestStartHoldsOnlyNearFires: at start the timer loads the overdue rows
// and those due within the horizon, not the many due later.
func TestStartHoldsOnlyNearFires(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(base)
	r := newRecorder(clk)
	s := newFakeStore()
	rng := rand.New(rand.NewPCG(seed, 0))
	id := 0
	for range 10_000 { // over 30 days, all beyond the horizon
		at := base.Add(5*time.Minute + time.Duration(rng.Int64N(int64(30*24*time.Hour))))
		s.put(due(id, at), at)
		id++
	}
	for i := range 10 { // due within the horizon
		s.put(due(id, base.Add(time.Duration(i+1)*time.Second)), base.Add(time.Duration(i+1)*time.Second))
		id++
	}
	for i := range 5 { // overdue
		s.put(due(id, base.Add(-time.Duration(i+1)*time.Hour)), base.Add(-time.Duration(i+1)*time.Hour))
		id++
	}
	tm := horizonTimer(t, clk, r, s)
	start(t, tm)
	ready(t, tm)
	r.waitFor(t, 5)
	if got := tm.Len(); got != 10 {
		t.Fatalf("Len after start = %d, want the 10 due within the horizon", got)
	}
	clk.Set(base.Add(10 * time.Second))
	r.waitFor(t, 15)
}

// TestHorizonLosesNothing arms fires at random times over three hours, some
// before Run, some while the clock moves in random steps (so arms race with
// loads): every fire is delivered, never before its time. A fire may come
// twice — armed while a load that also read it ran, and delivered before
// the load ended (here: the clock jumps minutes during a load) — which
// comms.Timer allows; the dispatcher drops the second by its row's state.
func TestHorizonLosesNothing(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(base)
	r := newRecorder(clk)
	s := newFakeStore()
	tm := horizonTimer(t, clk, r, s)
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	const n = 2000
	end := base.Add(3 * time.Hour)
	dueAt := map[comms.Fire]time.Time{}
	arm := func(i int) {
		now := clk.Now()
		at := now.Add(time.Duration(rng.Int64N(int64(end.Sub(now)))))
		dueAt[put(t, s, tm, fire(i), at)] = at
	}
	for i := range n / 2 {
		arm(i)
	}
	start(t, tm)
	for i := n / 2; i < n; i++ {
		arm(i)
		if i%10 == 0 {
			clk.Advance(time.Duration(rng.Int64N(int64(20 * time.Second))))
		}
	}
	clk.Set(end)
	for clk.Now().Before(end.Add(time.Hour)) { // let the loader's alarms ring
		clk.Advance(time.Minute)
	}
	deadline := time.After(wait)
	for {
		r.mu.Lock()
		distinct := len(r.counts)
		r.mu.Unlock()
		if distinct >= n {
			break
		}
		select {
		case <-r.notify:
		case <-deadline:
			t.Fatalf("%d of %d fires delivered after %v", distinct, n, wait)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t.Logf("%d deliveries of %d fires", len(r.order), n)
	for i, f := range r.order {
		if r.at[i].Before(dueAt[f]) {
			t.Errorf("%v delivered at %v, before %v", f, r.at[i], dueAt[f])
		}
	}
	for f := range dueAt {
		if r.counts[f] < 1 {
			t.Errorf("%v delivered %d times", f, r.counts[f])
		}
	}
}

// TestFailedLoadIsRetried: a load that fails is tried again after a
// backoff, over the same range.
func TestFailedLoadIsRetried(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(base)
	r := newRecorder(clk)
	s := newFakeStore()
	s.fail = 2
	s.put(due(1, base.Add(-time.Minute)), base.Add(-time.Minute))
	tm := horizonTimer(t, clk, r, s)
	start(t, tm)
	for i := 0; ; i++ {
		select {
		case <-tm.Ready():
		default:
			if i > 10_000 {
				t.Fatal("never ready")
			}
			clk.Advance(time.Second)
			time.Sleep(time.Millisecond) // a poll interval, not a wait for time to pass
			continue
		}
		break
	}
	r.waitFor(t, 1)
}

// TestKindsNotLoadedAreHeld: a fire of a kind the loader does not read is
// held whatever its time.
func TestKindsNotLoadedAreHeld(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(base)
	r := newRecorder(clk)
	s := newFakeStore()
	tm := local.New(r.handle, local.Options{Clock: clk, Load: s.load, Loads: func(k string) bool { return k == "" }})
	f := due(1, base.Add(time.Hour))
	f.Kind = "other"
	if err := tm.Arm(context.Background(), f, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := tm.Arm(context.Background(), due(2, base.Add(time.Hour)), base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := tm.Len(); got != 1 {
		t.Fatalf("Len = %d, want 1 (the kind not loaded)", got)
	}
}

// TestRetryBeyondHorizonIsHeld: a fire whose handler failed is armed again
// after a backoff; when that lands beyond the edge (a horizon shorter than
// the backoff) it is still held — the loader has read past its row's time.
func TestRetryBeyondHorizonIsHeld(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(base)
	s := newFakeStore()
	var mu sync.Mutex
	calls := 0
	got := make(chan time.Time, 10)
	h := func(_ context.Context, f comms.Fire) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		got <- clk.Now()
		if calls == 1 {
			return errors.New("store down")
		}
		return nil
	}
	tm := local.New(h, local.Options{Clock: clk, Load: s.load, Horizon: time.Second, RetryBase: time.Minute, RetryCap: time.Minute})
	s.put(due(1, base), base)
	start(t, tm)
	ready(t, tm)
	select {
	case <-got:
	case <-time.After(wait):
		t.Fatal("not delivered")
	}
	deadline := time.Now().Add(wait)
	for tm.Len() != 1 { // the retry is held, not left to the loader
		if time.Now().After(deadline) {
			t.Fatalf("Len = %d after the failure, want 1", tm.Len())
		}
		time.Sleep(time.Millisecond) // a poll interval, not a wait for time to pass
	}
	clk.Advance(time.Minute)
	select {
	case <-got:
	case <-time.After(wait):
		t.Fatal("the retry was not delivered")
	}
}
