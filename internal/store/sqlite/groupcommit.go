package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// Group commit. With synchronous=FULL every COMMIT waits for an fsync of
// the WAL, and the one writer connection runs transactions one at a time, so
// concurrent creates would each wait for all the fsyncs queued before them.
// Instead, creates that arrive while a commit is under way queue up, and the
// next commit takes all of them (at most maxGroup) in one transaction: each
// create runs inside its own SAVEPOINT, so a create that is refused
// (idempotency key taken, no credits, no such company, a duplicate id) is
// rolled back alone and gets its own error, while the others are kept; the
// one COMMIT makes them durable together, and no caller is answered before
// it. Nothing waits on a timer to gather a group: a create that finds no
// commit under way commits at once, alone.
//
// Should anything else fail inside a group (an I/O error, a full disk,
// SQLite rolling the whole transaction back) or the COMMIT itself, nothing
// of the group is on disk, and each create of it is run again in a
// transaction of its own, so each still gets the result it would have had
// alone.

// maxGroup bounds how many creates share one transaction.
const maxGroup = 64

// createReq is one CreateCommunication waiting for its commit.
type createReq struct {
	ctx  context.Context
	ch   comms.Change
	args []any // commArgs(ch.Row)
	idem *comms.Idempotency
	// wake says, once, what to do next: false — the result is in credits
	// and err; true — lead: commit the queue (this request first).
	wake    chan bool
	credits int64
	err     error
}

func (r *createReq) wakeChan() chan bool { return r.wake }
func (r *createReq) size() int           { return 1 }

// request is what a group queues: a caller waiting on wakeChan, carrying
// size writes.
type request interface {
	wakeChan() chan bool
	size() int
}

// group queues requests for the writer. Its zero value is ready.
type group[R request] struct {
	mu      sync.Mutex
	queue   []R
	leading bool         // a goroutine is committing; the queue waits for it
	groups  atomic.Int64 // groups committed (or tried), for tests
}

// submit runs r in a group commit and returns once its result is set. The
// goroutine that finds no commit under way leads: it commits the queue
// (itself included, and as many requests after it as fit in limit writes)
// with run, answers every other request of the group, and hands the lead to
// the first request queued meanwhile — so each caller returns as soon as its
// own group is committed, and never serves others'.
func (g *group[R]) submit(r R, limit int, run func([]R)) {
	g.mu.Lock()
	g.queue = append(g.queue, r)
	if g.leading {
		g.mu.Unlock()
		if lead := <-r.wakeChan(); !lead {
			return
		}
		g.mu.Lock()
	} else {
		g.leading = true
	}
	// r is the queue's first: only a leader removes requests, and the lead
	// passes to queue[0].
	n, writes := 1, g.queue[0].size()
	for n < len(g.queue) && writes+g.queue[n].size() <= limit {
		writes += g.queue[n].size()
		n++
	}
	batch := slices.Clone(g.queue[:n])
	g.queue = slices.Delete(g.queue, 0, n)
	g.groups.Add(1)
	g.mu.Unlock()

	run(batch)

	g.mu.Lock()
	var next R
	lead := len(g.queue) > 0
	if lead {
		next = g.queue[0]
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	for _, b := range batch[1:] {
		b.wakeChan() <- false
	}
	if lead {
		next.wakeChan() <- true
	}
}

// commitCreates commits a group of creates in one transaction, one
// SAVEPOINT each, setting each request's result.
func (s *Store) commitCreates(batch []*createReq) {
	// The transaction serves several callers: one caller's cancelled context
	// must not roll back the others' creates (database/sql rolls a
	// transaction back when the context it began with ends, and an
	// interrupted statement can make SQLite roll back the whole
	// transaction). A request whose context has ended before its turn is
	// skipped instead.
	ctx := context.WithoutCancel(batch[0].ctx)
	if len(batch) == 1 {
		s.createAlone(ctx, batch[0])
		return
	}
	err := inTx(ctx, s.w, func(tx *sql.Tx) error {
		for _, r := range batch {
			r.credits, r.err = 0, r.ctx.Err()
			if r.err != nil {
				continue
			}
			if _, err := tx.ExecContext(ctx, "SAVEPOINT create_one"); err != nil {
				return err
			}
			credits, err := s.create(ctx, tx, r)
			switch {
			case err == nil:
				r.credits = credits
			case refusal(err):
				r.err = err
				if _, err := tx.ExecContext(ctx, "ROLLBACK TO create_one"); err != nil {
					return err
				}
			default:
				return err
			}
			if _, err := tx.ExecContext(ctx, "RELEASE create_one"); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		return
	}
	// Nothing of the group committed: each create on its own.
	for _, r := range batch {
		s.createAlone(ctx, r)
	}
}

// createAlone runs one create in a transaction of its own.
func (s *Store) createAlone(ctx context.Context, r *createReq) {
	r.credits, r.err = 0, r.ctx.Err()
	if r.err != nil {
		return
	}
	var credits int64
	err := inTx(ctx, s.w, func(tx *sql.Tx) error {
		var err error
		credits, err = s.create(ctx, tx, r)
		return err
	})
	if err != nil {
		r.err = err
		return
	}
	r.credits = credits
}

// refusal reports whether a create's error is an answer about that create
// alone — its statements failed and left the transaction usable — rather
// than a failure of the transaction.
func refusal(err error) bool {
	if errors.Is(err, comms.ErrIdempotencyKeyExists) || errors.Is(err, comms.ErrInsufficientCredits) ||
		errors.Is(err, comms.ErrNotFound) {
		return true
	}
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
}
