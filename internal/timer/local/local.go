// Package local is the in-process timer of the embedded mode.
//
// A Timer keeps armed fires in a min-heap ordered by due time. One
// scheduling goroutine (Run) sleeps on a single alarm of its clock set to
// the earliest due time, pops every due fire in one pass and hands them through a
// bounded, buffered channel to a fixed pool of workers that call the Handler.
// There is no goroutine per fire and no polling: Arm wakes the scheduler only
// when the new fire becomes the earliest one.
//
// Arming the same fire (company, id and token) again moves it instead of
// adding a duplicate. A fire with another token is another fire: both are
// delivered and the dispatcher drops the stale one. A fire already handed to
// the workers can no longer be moved, so arming it again then delivers it a
// second time, which comms.Timer allows.
//
// Nothing is persisted: fires still armed when Run ends are forgotten, and
// the embedded service re-arms them from the store at start.
//
// With Options.Load the timer holds only what is due within a horizon
// (Options.Horizon, default DefaultHorizon) and reads the rest from the
// store as time advances, so its memory is bounded by the work due soon, not
// by every pending row. It keeps an edge: everything due before it has been
// read from the store (or is being read), so Arm holds a fire due before the
// edge and drops one due at or after it (at, and its row's time, DueAt) —
// the store has that fire's row, and a later load covers it. The loader reads [loaded, now+Horizon) once
// now passes loaded−Horizon/2, moving the edge to now+Horizon before it
// reads: a fire armed during a read is held (its row may have been written
// after the read began), so the slices join without a gap. The first load,
// when Run starts, reads everything due before now+Horizon, overdue rows
// included: it is the re-arming at start (Ready says when it is done).
// Fires of kinds the loader does not read (Options.Loads) are always held.
//
// What is due is decided by the timer's clock alone (Options.Clock, default
// the wall clock). With a clock.Fake a fire is handed over only once the
// test has advanced the clock to its due time, so tests assert what was and
// was not delivered without sleeping.
package local

import (
	"container/heap"
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/backoff"
	"github.com/dispatcherhq/dispatcher/internal/clock"
	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// DefaultWorkers is the number of concurrent deliveries when Options.Workers
// is not set.
const DefaultWorkers = 32

// DefaultBatchWorkers is the number of batches delivered at once with a
// BatchHandler when Options.Workers is not set: up to 8 × MaxBatch fires in
// flight. More workers only held more rows in memory at once: the store
// merges the claims of concurrent batches into one write anyway, and
// fires that wait for a worker are handed over in fuller batches.
const DefaultBatchWorkers = 8

// ErrStopped is returned by Arm once the timer's Run has ended (or its
// context is done), and by a second call to Run.
var ErrStopped = errors.New("local timer: stopped")

// Handler receives a due fire. An error says the fire should be delivered
// again (the dispatcher's store failed): the timer logs it and re-arms the
// fire after a backoff (Options.RetryBase, doubling up to RetryCap, equal
// jitter) for as long as it keeps failing, instead of leaving it to the
// sweeper's grace. A panic is logged and not retried.
type Handler func(ctx context.Context, f comms.Fire) error

// BatchHandler receives fires due together, at most Options.MaxBatch, in
// due order, and returns one error per fire (nil, or a store failure: that
// fire is re-armed with backoff as a Handler's error is). It lets the
// embedded dispatcher read, claim and record a burst many rows per
// transaction (docs/design.md §5).
type BatchHandler func(ctx context.Context, fs []comms.Fire) []error

// Options configure a Timer. The zero value is usable.
type Options struct {
	// Workers is the number of concurrent deliveries, default 32 (with
	// Batch: concurrent batches, default DefaultBatchWorkers).
	Workers int
	// Logger receives handler errors and panics; default: discard.
	Logger *slog.Logger
	// Clock decides what is due and wakes the scheduler when it is;
	// default clock.System. Tests inject a clock.Fake.
	Clock clock.Clock
	// RetryBase and RetryCap bound the backoff before a fire whose
	// handler failed is delivered again; defaults 250 ms and 5 s, so a
	// fire is tried again within seconds of the store recovering.
	RetryBase, RetryCap time.Duration

	// Load, when set, returns the fires due in [from, to) (from zero:
	// everything due before to) as the store holds them; the timer then
	// holds only fires due within Horizon and loads the next slice as time
	// advances (see the package comment). Nil: every armed fire is held.
	Load func(ctx context.Context, from, to time.Time) ([]Armed, error)
	// Loads reports whether Load returns the fires of a kind
	// (comms.Fire.Kind); only those may be left to it. Nil: every kind.
	Loads func(kind string) bool
	// Horizon is how far ahead fires are held when Load is set; default
	// DefaultHorizon.
	Horizon time.Duration

	// Batch, when set, receives the due fires instead of the Handler: the
	// scheduler hands the fires due at one moment over in batches of up
	// to MaxBatch (default DefaultMaxBatch), so a quiet timer still hands
	// over one fire at a time and a burst many. Each worker takes one
	// batch at a time.
	Batch BatchHandler
	// MaxBatch bounds a batch; default DefaultMaxBatch.
	MaxBatch int
}

// DefaultMaxBatch is the largest batch handed to a BatchHandler by default
// (River fetches up to 32 jobs at a time too).
const DefaultMaxBatch = 32

// DefaultHorizon is how far ahead a timer with a loader holds fires.
const DefaultHorizon = 5 * time.Minute

// Armed is a fire and when it is due, as Options.Load returns them.
type Armed struct {
	Fire comms.Fire
	At   time.Time
}

// Timer is the in-process comms.Timer. Create it with New, arm fires from
// any goroutine, and call Run once.
type Timer struct {
	handler  Handler
	batch    BatchHandler
	maxBatch int
	log      *slog.Logger
	clock    clock.Clock
	workers  int

	retry backoff.Policy

	load    func(ctx context.Context, from, to time.Time) ([]Armed, error)
	loads   func(kind string) bool
	horizon time.Duration
	ready   chan struct{} // closed once the first load has succeeded
	loadsN  atomic.Int64  // loads done

	mu sync.Mutex
	// edge: with a loader, fires due at or after it are left to the
	// loader; everything before it is held, handed over or being loaded.
	edge   time.Time
	fires  fireHeap
	byFire map[comms.Fire]*entry
	// failures counts the consecutive failed deliveries of each fire
	// being retried.
	failures map[comms.Fire]int
	seq      uint64 // arm order, breaks ties between equal due times
	stopped  bool

	// wake (capacity 1) tells the scheduler to look at the heap again: a new
	// earliest fire, or room in queue after it was full.
	wake chan struct{}
	// queue carries due fires to the workers: one fire per item, or a
	// batch of up to maxBatch with a BatchHandler.
	queue chan []comms.Fire
	// starved is set while due fires wait in the heap because queue is
	// full; the first worker to make room then wakes the scheduler.
	starved atomic.Bool
	started atomic.Bool
}

var _ comms.Timer = (*Timer)(nil)

// New returns a timer that delivers due fires to h once Run is called.
// Fires may be armed before Run; they are delivered when it starts.
func New(h Handler, opts Options) *Timer {
	if h == nil {
		panic("local timer: nil handler")
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
		if opts.Batch != nil {
			opts.Workers = DefaultBatchWorkers
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = 250 * time.Millisecond
	}
	if opts.RetryCap <= 0 {
		opts.RetryCap = 5 * time.Second
	}
	if opts.Horizon <= 0 {
		opts.Horizon = DefaultHorizon
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.Batch == nil {
		opts.MaxBatch = 1
	}
	if opts.Loads == nil {
		opts.Loads = func(string) bool { return true }
	}
	clk := clock.OrSystem(opts.Clock)
	ready := make(chan struct{})
	if opts.Load == nil {
		close(ready)
	}
	return &Timer{
		load:     opts.Load,
		loads:    opts.Loads,
		horizon:  opts.Horizon,
		ready:    ready,
		edge:     clk.Now().Add(opts.Horizon),
		handler:  h,
		batch:    opts.Batch,
		maxBatch: opts.MaxBatch,
		log:      opts.Logger,
		clock:    clk,
		workers:  opts.Workers,
		retry:    backoff.Policy{Base: opts.RetryBase, Cap: opts.RetryCap},
		failures: make(map[comms.Fire]int),
		byFire:   make(map[comms.Fire]*entry),
		wake:     make(chan struct{}, 1),
		queue:    make(chan []comms.Fire, 2*opts.Workers),
	}
}

// Arm schedules f at at; a time in the past means due now. Arming a fire
// that is already armed moves it to at. Arm is safe for concurrent use and
// never waits for a delivery; it fails only with ErrStopped, once Run has
// ended. ctx is not used: arming cannot block.
//
// With a loader (Options.Load), a fire of a kind it loads due beyond the
// horizon's edge — at and its DueAt both — is not held (and is let go if it
// was): the caller has written its row, due at DueAt, which the loader
// reads once its time is near. A fire without DueAt is always held.
func (t *Timer) Arm(_ context.Context, f comms.Fire, at time.Time) error {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return ErrStopped
	}
	if t.load != nil && t.leftToLoader(f, at) {
		if e, ok := t.byFire[f]; ok {
			heap.Remove(&t.fires, e.index)
			delete(t.byFire, f)
		}
		t.mu.Unlock()
		return nil
	}
	earliest := t.hold(f, at)
	t.mu.Unlock()
	if earliest {
		t.signal()
	}
	return nil
}

// leftToLoader reports whether an Arm of f at at may be left to the
// loader: a kind it reads, due (at, and the row's time f.DueAt, which is
// what the loader reads it by) at or after the edge. A fire armed beyond
// the edge for a row due before it — a failed fire's retry, a busy
// delivery's — is held: the loader has read past its row. t.mu is held.
func (t *Timer) leftToLoader(f comms.Fire, at time.Time) bool {
	return t.loads(f.Kind) && !at.Before(t.edge) && !f.DueAt.IsZero() && !f.DueAt.Before(t.edge)
}

// hold puts f in the heap at at (moving it if it is there) and reports
// whether it is now the earliest. t.mu is held.
func (t *Timer) hold(f comms.Fire, at time.Time) bool {
	t.seq++
	e, ok := t.byFire[f]
	if ok {
		e.at, e.seq = at, t.seq
		heap.Fix(&t.fires, e.index)
	} else {
		e = &entry{fire: f, at: at, seq: t.seq}
		heap.Push(&t.fires, e)
		t.byFire[f] = e
	}
	return t.fires[0] == e
}

// Ready is closed once the first load from the store (Options.Load) has
// succeeded: every fire due within the horizon is then held. Without a
// loader it is closed from the start.
func (t *Timer) Ready() <-chan struct{} { return t.ready }

// Loads reports how many loads from the store have succeeded.
func (t *Timer) Loads() int64 { return t.loadsN.Load() }

// loadLoop reads from the store, slice by slice, the fires due before
// now+horizon, until ctx is done: first everything due before it, then
// [loaded, now+horizon) each time now passes loaded−horizon/2. A failed
// read is tried again after a backoff; the range it missed stays to read.
func (t *Timer) loadLoop(ctx context.Context) {
	var loaded time.Time // everything due before it has been read; zero: nothing yet
	failures := 0
	for ctx.Err() == nil {
		to := t.clock.Now().Add(t.horizon)
		t.mu.Lock()
		if to.Before(t.edge) {
			to = t.edge
		}
		t.edge = to // Arm holds from now on what this read may miss
		t.mu.Unlock()
		fs, err := t.load(ctx, loaded, to)
		var next time.Time
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			wait := t.retry.Random(failures)
			t.log.WarnContext(ctx, "local timer: loading due fires from the store failed; tried again", slog.Any("err", err),
				slog.Int("failures", failures), slog.Duration("retry_in", wait))
			next = t.clock.Now().Add(wait)
		} else {
			failures = 0
			t.mu.Lock()
			if t.stopped {
				t.mu.Unlock()
				return
			}
			for _, a := range fs {
				t.hold(a.Fire, a.At)
			}
			t.mu.Unlock()
			t.signal()
			loaded = to
			if t.loadsN.Add(1) == 1 {
				close(t.ready)
			}
			next = loaded.Add(-t.horizon / 2)
		}
		ring, release := t.clock.Alarm(next)
		select {
		case <-ctx.Done():
		case <-ring:
		}
		release()
	}
}

// Len reports how many fires are armed and not yet handed to the handler.
func (t *Timer) Len() int {
	t.mu.Lock()
	n := len(t.fires)
	t.mu.Unlock()
	return n + len(t.queue) // a batch waiting counts once
}

// Run delivers fires until ctx is done, then stops taking new fires (Arm
// returns ErrStopped), waits for in-flight handler calls and returns nil.
// Handlers get a context that carries ctx's values but is not cancelled with
// it, so a delivery in flight at shutdown completes rather than being cut off
// half-way. Fires still armed are forgotten. Run must be called once.
func (t *Timer) Run(ctx context.Context) error {
	if !t.started.CompareAndSwap(false, true) {
		return ErrStopped
	}
	hctx := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for range t.workers {
		wg.Go(func() { t.work(ctx, hctx) })
	}
	if t.load != nil {
		wg.Go(func() { t.loadLoop(ctx) })
	}
	t.schedule(ctx)

	t.mu.Lock()
	t.stopped = true
	t.fires, t.byFire, t.failures = nil, nil, nil
	t.mu.Unlock()
	wg.Wait()
	for {
		select {
		case <-t.queue:
		default:
			return nil
		}
	}
}

// schedule is the scheduling loop: hand over what is due, then sleep until
// the next fire is due, an earlier fire is armed, or the queue has room.
func (t *Timer) schedule(ctx context.Context) {
	var (
		ring    <-chan time.Time // the alarm for the earliest fire; nil: none
		release = func() {}
	)
	defer func() { release() }()
	for ctx.Err() == nil {
		t.starved.Store(false)
		next, ok := t.handOver()
		release()
		ring, release = nil, func() {}
		if ok {
			ring, release = t.clock.Alarm(next)
		}
		select {
		case <-ctx.Done():
		case <-t.wake:
		case <-ring:
		}
	}
}

// handOver moves every due fire, in due order, from the heap to the queue
// (in batches of up to maxBatch), as far as the queue has room. It returns when the next fire is due; ok is
// false when there is nothing to wait for on the clock (the heap is empty,
// or due fires wait for room in the queue and a worker will wake the
// scheduler).
func (t *Timer) handOver() (next time.Time, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock.Now()
	for len(t.fires) > 0 {
		e := t.fires[0]
		if e.at.After(now) {
			return e.at, true
		}
		var (
			batch  = make([]comms.Fire, 0, min(t.maxBatch, len(t.fires)))
			popped = make([]*entry, 0, cap(batch))
		)
		for len(batch) < t.maxBatch && len(t.fires) > 0 && !t.fires[0].at.After(now) {
			e := heap.Pop(&t.fires).(*entry)
			batch, popped = append(batch, e.fire), append(popped, e)
		}
		if !t.offer(batch) {
			for _, e := range popped { // back in the heap, in the same order (seq)
				heap.Push(&t.fires, e)
			}
			return time.Time{}, false
		}
		for _, e := range popped {
			delete(t.byFire, e.fire)
		}
	}
	// A burst leaves a large backing array and map behind; drop them.
	if cap(t.fires) > 1024 {
		t.fires = nil
		t.byFire = make(map[comms.Fire]*entry)
	}
	return time.Time{}, false
}

// offer puts a batch on the queue without blocking. When the queue is full it
// marks the scheduler starved before trying once more, so that a worker
// taking a fire after that last try is sure to see the mark and wake it.
func (t *Timer) offer(f []comms.Fire) bool {
	select {
	case t.queue <- f:
		return true
	default:
	}
	t.starved.Store(true)
	select {
	case t.queue <- f:
		return true
	default:
		return false
	}
}

func (t *Timer) signal() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// work is one worker: it delivers queued fires until ctx is done.
func (t *Timer) work(ctx, hctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case fs := <-t.queue:
			if t.starved.CompareAndSwap(true, false) {
				t.signal()
			}
			if ctx.Err() != nil {
				return
			}
			if t.batch != nil {
				t.deliverBatch(hctx, fs)
				continue
			}
			for _, f := range fs {
				t.deliver(hctx, f)
			}
		}
	}
}

// deliver calls the handler, logging its error or panic.
func (t *Timer) deliver(ctx context.Context, f comms.Fire) {
	defer func() {
		if r := recover(); r != nil {
			t.log.ErrorContext(ctx, "local timer: handler panicked",
				fireAttrs(f), slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
		}
	}()
	t.settle(ctx, f, t.handler(ctx, f))
}

// deliverBatch calls the batch handler, logging a panic, and settles each
// fire with its error.
func (t *Timer) deliverBatch(ctx context.Context, fs []comms.Fire) {
	var errs []error
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.log.ErrorContext(ctx, "local timer: batch handler panicked", slog.Int("fires", len(fs)),
					slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
			}
		}()
		errs = t.batch(ctx, fs)
	}()
	if errs == nil { // a panic: not retried, as with Handler
		return
	}
	for i, f := range fs {
		var err error
		if i < len(errs) {
			err = errs[i]
		}
		t.settle(ctx, f, err)
	}
}

// settle forgets a delivered fire's failures, or re-arms a failed one after
// a backoff.
func (t *Timer) settle(ctx context.Context, f comms.Fire, err error) {
	t.mu.Lock()
	if err == nil || t.stopped {
		delete(t.failures, f)
		t.mu.Unlock()
		return
	}
	t.failures[f]++
	n := t.failures[f]
	t.mu.Unlock()
	wait := t.retry.Random(n)
	t.log.WarnContext(ctx, "local timer: handler failed; the fire is armed again", fireAttrs(f), slog.Any("err", err),
		slog.Int("failures", n), slog.Duration("retry_in", wait))
	if err := t.Arm(ctx, f, t.clock.Now().Add(wait)); err != nil {
		t.log.WarnContext(ctx, "local timer: re-arming a failed fire", fireAttrs(f), slog.Any("err", err))
	}
}

func fireAttrs(f comms.Fire) slog.Attr {
	return slog.Group("fire",
		slog.String("company_id", f.CompanyID),
		slog.String("communication_id", f.CommunicationID),
		slog.String("token", f.Token))
}

// entry is one armed fire.
type entry struct {
	fire  comms.Fire
	at    time.Time
	seq   uint64
	index int
}

// fireHeap is a container/heap of entries, earliest due first, then first
// armed.
type fireHeap []*entry

func (h fireHeap) Len() int { return len(h) }

func (h fireHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}

func (h fireHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *fireHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *fireHeap) Pop() any {
	old := *h
	n := len(old) - 1
	e := old[n]
	old[n] = nil
	e.index = -1
	*h = old[:n]
	return e
}
