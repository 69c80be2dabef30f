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

// ErrStopped is returned by Arm once the timer's Run has ended (or its
// context is done), and by a second call to Run.
var ErrStopped = errors.New("local timer: stopped")

// Handler receives a due fire. An error says the fire should be delivered
// again (the dispatcher's store failed): the timer logs it and re-arms the
// fire after a backoff (Options.RetryBase, doubling up to RetryCap, equal
// jitter) for as long as it keeps failing, instead of leaving it to the
// sweeper's grace. A panic is logged and not retried.
type Handler func(ctx context.Context, f comms.Fire) error

// Options configure a Timer. The zero value is usable.
type Options struct {
	// Workers is the number of concurrent deliveries, default 32.
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
}

// Timer is the in-process comms.Timer. Create it with New, arm fires from
// any goroutine, and call Run once.
type Timer struct {
	handler Handler
	log     *slog.Logger
	clock   clock.Clock
	workers int

	retry backoff.Policy

	mu     sync.Mutex
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
	// queue carries due fires to the workers.
	queue chan comms.Fire
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
	return &Timer{
		handler:  h,
		log:      opts.Logger,
		clock:    clock.OrSystem(opts.Clock),
		workers:  opts.Workers,
		retry:    backoff.Policy{Base: opts.RetryBase, Cap: opts.RetryCap},
		failures: make(map[comms.Fire]int),
		byFire:   make(map[comms.Fire]*entry),
		wake:     make(chan struct{}, 1),
		queue:    make(chan comms.Fire, 2*opts.Workers),
	}
}

// Arm schedules f at at; a time in the past means due now. Arming a fire
// that is already armed moves it to at. Arm is safe for concurrent use and
// never waits for a delivery; it fails only with ErrStopped, once Run has
// ended. ctx is not used: arming cannot block.
func (t *Timer) Arm(_ context.Context, f comms.Fire, at time.Time) error {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return ErrStopped
	}
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
	earliest := t.fires[0] == e
	t.mu.Unlock()
	if earliest {
		t.signal()
	}
	return nil
}

// Len reports how many fires are armed and not yet handed to the handler.
func (t *Timer) Len() int {
	t.mu.Lock()
	n := len(t.fires)
	t.mu.Unlock()
	return n + len(t.queue)
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

// handOver moves every due fire, in due order, from the heap to the queue,
// as far as the queue has room. It returns when the next fire is due; ok is
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
		if !t.offer(e.fire) {
			return time.Time{}, false
		}
		heap.Pop(&t.fires)
		delete(t.byFire, e.fire)
	}
	// A burst leaves a large backing array and map behind; drop them.
	if cap(t.fires) > 1024 {
		t.fires = nil
		t.byFire = make(map[comms.Fire]*entry)
	}
	return time.Time{}, false
}

// offer puts f on the queue without blocking. When the queue is full it
// marks the scheduler starved before trying once more, so that a worker
// taking a fire after that last try is sure to see the mark and wake it.
func (t *Timer) offer(f comms.Fire) bool {
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
		case f := <-t.queue:
			if t.starved.CompareAndSwap(true, false) {
				t.signal()
			}
			if ctx.Err() != nil {
				return
			}
			t.deliver(hctx, f)
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
	err := t.handler(ctx, f)
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
