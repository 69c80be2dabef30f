package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// The batched hot path (docs/design.md §3 and §15). On a store that reads
// and writes many rows at once (BatchStore: the embedded SQLite store), a
// burst of due fires goes read-batch → screen each row → claim-batch →
// sends in parallel → complete-batch:
//
//   - HandleBatch reads the rows of up to a timer batch of fires in one
//     query per company, runs every per-row step on each (stale fires
//     dropped, early ones re-armed, expiry, cancel-on-event, business and
//     quiet hours, suppressions — a row such a step settles takes the same
//     per-row write as in Handle), and claims the rest in one call of
//     UpdateCommunications: each claim a compare-and-swap on the version
//     read, with its attempt_started event, so a row another claimer (a
//     sweep, a cancel, another delivery of the fire) moved on is never
//     returned: its claim loses alone and is dropped;
//   - the claimed rows are sent in parallel, each as Handle sends it;
//   - their results go through the completer: results of every worker are
//     written many per transaction, flushed when MaxBatchResults are
//     queued or BatchLinger after the first, each still a
//     compare-and-swap on its row with its events; one that loses is
//     reported to its own caller only.
//
// Without a BatchStore (DynamoDB: a transaction is all or nothing),
// HandleBatch is Handle per fire and results are written one by one.

// BatchStore is a store that reads the rows of many fires in one query and
// writes many changes in one transaction, each its own compare-and-swap.
type BatchStore interface {
	// GetCommunications returns the company's rows among ids that exist,
	// in any order.
	GetCommunications(ctx context.Context, companyID string, ids []string) ([]comms.Communication, error)
	// UpdateCommunications writes each change as UpdateCommunication
	// without debit would, in one transaction: errs[i] is chs[i]'s alone
	// (nil, ErrConflict, ErrNotFound or a store failure), stored[i] the row
	// as stored when nil.
	UpdateCommunications(ctx context.Context, chs []comms.Change) (stored []comms.Communication, errs []error)
}

// BatchConfig tunes the batched path; zero fields take the defaults.
type BatchConfig struct {
	// MaxResults is how many results one completer flush writes at most
	// (default 128).
	MaxResults int
	// Linger is how long the completer waits after the first queued result
	// for more before it writes (default 2 ms, wall clock). Results are
	// not on the lag's path: the send has happened.
	Linger time.Duration
}

// WithBatch gives the dispatcher a batch store: HandleBatch then claims a
// batch of fires in one write and results are recorded many per write.
func WithBatch(s BatchStore, cfg BatchConfig) Option {
	if cfg.MaxResults <= 0 {
		cfg.MaxResults = 128
	}
	if cfg.Linger <= 0 {
		cfg.Linger = 2 * time.Millisecond
	}
	return func(d *Dispatcher) { d.batch, d.completer = s, &completer{store: s, cfg: cfg} }
}

// HandleBatch acts on fires due together, as Handle acts on each (see the
// comment above for how), and returns one error per fire: non-nil exactly
// when the store failed and that fire should be delivered again.
func (d *Dispatcher) HandleBatch(ctx context.Context, fires []comms.Fire) []error {
	errs := make([]error, len(fires))
	if d.batch == nil {
		for i, f := range fires {
			errs[i] = d.Handle(ctx, f)
		}
		return errs
	}
	// Read the rows, one query per company.
	type key struct{ company, id string }
	byCompany := map[string][]string{}
	rearmed := make([]bool, len(fires))
	for i, f := range fires {
		if d.earlyByItsOwnAccount(f) {
			rearmed[i] = true
			if err := d.timer.Arm(ctx, f, f.DueAt); err != nil {
				errs[i] = fmt.Errorf("timer.Arm: %w", err)
			}
			continue
		}
		byCompany[f.CompanyID] = append(byCompany[f.CompanyID], f.CommunicationID)
	}
	rows := make(map[key]comms.Communication, len(fires))
	readErr := map[string]error{}
	for co, ids := range byCompany {
		rs, err := d.batch.GetCommunications(ctx, co, ids)
		if err != nil {
			readErr[co] = fmt.Errorf("store.GetCommunications: %w", err)
			continue
		}
		for _, r := range rs {
			rows[key{r.CompanyID, r.ID}] = r
		}
	}
	// Screen each row as Handle does; collect the claims.
	var (
		now      = d.clock()
		settings = map[string]func() (comms.Settings, error){}
		claims   []comms.Change
		claimOf  []int // fire index of each claim
	)
	for i, f := range fires {
		if rearmed[i] {
			continue
		}
		if err := readErr[f.CompanyID]; err != nil {
			errs[i] = err
			continue
		}
		row, found := rows[key{f.CompanyID, f.CommunicationID}]
		var err error
		if !found {
			err = comms.ErrNotFound
		}
		row, current, err := d.check(ctx, f, row, err)
		if !current || err != nil {
			errs[i] = err
			continue
		}
		set, ok := settings[row.CompanyID]
		if !ok {
			set = d.settings(ctx, row.CompanyID)
			settings[row.CompanyID] = set
		}
		if done, err := d.screen(ctx, row, set, now); done {
			errs[i] = err
			continue
		}
		// The same row twice in one batch (two fires of one token) is
		// claimed once: the second claim loses its compare-and-swap.
		ch, err := comms.Claim(row, now.Add(d.cfg.LeaseFor(row.Channel)), now)
		if err != nil {
			errs[i] = d.drop(ctx, row.ID, "claim: "+err.Error())
			continue
		}
		ch.Row.LeaseOwner = d.instance
		claims, claimOf = append(claims, ch), append(claimOf, i)
	}
	if len(claims) == 0 {
		return errs
	}
	// Claim them in one write; send what was won, in parallel.
	stored, cerrs := d.batch.UpdateCommunications(ctx, claims)
	var wg sync.WaitGroup
	for j, err := range cerrs {
		i := fires[claimOf[j]]
		switch {
		case errors.Is(err, comms.ErrConflict) || errors.Is(err, comms.ErrNotFound):
			errs[claimOf[j]] = d.drop(ctx, i.CommunicationID, "lost the race to claim")
			continue
		case err != nil:
			errs[claimOf[j]] = fmt.Errorf("store.UpdateCommunications: %w", err)
			continue
		}
		d.stats.Claimed.Add(1)
		wg.Go(func() { errs[claimOf[j]] = d.deliver(ctx, stored[j], settings[stored[j].CompanyID]) })
	}
	wg.Wait()
	return errs
}

// writeResult writes an attempt's result: through the completer (with
// other results, in one transaction) on a batch store, else alone.
func (d *Dispatcher) writeResult(ctx context.Context, ch comms.Change) (comms.Communication, error) {
	if d.completer != nil {
		return d.completer.write(ctx, ch)
	}
	stored, _, err := d.store.UpdateCommunication(ctx, ch, false)
	return stored, err
}

// completer gathers results from every delivery and writes them many per
// transaction: the first result queued waits up to Linger for others (or
// until MaxResults are queued), then writes the queue with one
// UpdateCommunications and answers each caller with its own result.
// Results queued while a write is under way start the next group.
type completer struct {
	store BatchStore
	cfg   BatchConfig

	mu    sync.Mutex
	queue []*result
	full  chan struct{} // closed when the current group reaches MaxResults
}

type result struct {
	ctx    context.Context
	ch     comms.Change
	done   chan struct{}
	stored comms.Communication
	err    error
}

// write queues ch and returns once it is written (or lost its CAS).
func (c *completer) write(ctx context.Context, ch comms.Change) (comms.Communication, error) {
	r := &result{ctx: ctx, ch: ch, done: make(chan struct{})}
	c.mu.Lock()
	c.queue = append(c.queue, r)
	lead := len(c.queue) == 1
	if lead {
		c.full = make(chan struct{})
	}
	if len(c.queue) == c.cfg.MaxResults {
		close(c.full)
	}
	full := c.full
	c.mu.Unlock()
	if lead {
		c.lead(full)
	}
	<-r.done
	return r.stored, r.err
}

// lead gathers a group — the queue's first result waits Linger, or until
// full is closed — then takes it off the queue, hands the lead of what
// was queued beyond MaxResults to a new goroutine, and writes the group.
func (c *completer) lead(full chan struct{}) {
	t := time.NewTimer(c.cfg.Linger)
	select {
	case <-t.C:
	case <-full:
		t.Stop()
	}
	c.mu.Lock()
	group := c.queue[:min(len(c.queue), c.cfg.MaxResults)]
	c.queue = append([]*result(nil), c.queue[len(group):]...)
	if len(c.queue) > 0 {
		c.full = make(chan struct{})
		if len(c.queue) >= c.cfg.MaxResults {
			close(c.full)
		}
		go c.lead(c.full)
	}
	c.mu.Unlock()
	c.flush(group)
}

// flush writes a group in one UpdateCommunications and answers each
// result's caller. A result whose caller's context ended is written all
// the same (the provider has acted); the store skips none.
func (c *completer) flush(group []*result) {
	chs := make([]comms.Change, len(group))
	for i, r := range group {
		chs[i] = r.ch
	}
	stored, errs := c.store.UpdateCommunications(context.WithoutCancel(group[0].ctx), chs)
	for i, r := range group {
		r.stored, r.err = stored[i], errs[i]
		close(r.done)
	}
}
