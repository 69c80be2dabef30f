package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// Group commit of row updates (docs/design.md §15, the batched hot path).
// UpdateCommunication and UpdateCommunications queue their changes like
// creates (groupcommit.go): the caller that finds no commit under way
// leads and writes everything queued — up to maxUpdateGroup changes, its
// own first — in one transaction and one fsync, each change in its own
// SAVEPOINT. A change is still a compare-and-swap on its row's version with
// its events in the same transaction: one whose CAS loses (ErrConflict),
// whose row is gone (ErrNotFound), or that is refused (no credits, a
// constraint) is rolled back to its savepoint and answered alone; the
// others commit. Any other failure, or a failed COMMIT, leaves nothing of
// the group on disk, and each change is then written again in a
// transaction of its own, so each caller gets the answer it would have had
// alone.

// The savepoint of each change of a group, prepared on the writer with
// txStatements.
const (
	savepointUpdate = "SAVEPOINT update_one"
	rollbackUpdate  = "ROLLBACK TO update_one"
	releaseUpdate   = "RELEASE update_one"
)

// maxUpdateGroup bounds how many changes share one transaction.
const maxUpdateGroup = 256

// updateReq is one caller's changes waiting for their commit.
type updateReq struct {
	ctx   context.Context
	chs   []comms.Change
	args  [][]any     // commArgs of each change's row
	upd   []rowUpdate // each change's UPDATE of its row
	debit bool        // UpdateCommunication's withDebit (a single change)
	wake  chan bool
	// Results, one per change.
	credits []int64
	errs    []error
}

func (r *updateReq) wakeChan() chan bool { return r.wake }
func (r *updateReq) size() int           { return len(r.chs) }

// UpdateCommunication writes ch as one compare-and-swap: the row if its
// stored version is ch.Row.Version (as ch.Row.Version+1), its events, its
// suppressions, ch.Insert, and with debit one credit, all or nothing. It
// shares its transaction with the updates of other goroutines queued at the
// same moment (group commit, see above). ErrConflict: the version moved;
// ErrNotFound: no such row.
func (s *Store) UpdateCommunication(ctx context.Context, ch comms.Change, withDebit bool) (comms.Communication, int64, error) {
	r, err := s.updateRequest(ctx, []comms.Change{ch}, withDebit)
	if err != nil {
		return comms.Communication{}, 0, wrap("UpdateCommunication", err)
	}
	s.updates.submit(r, maxUpdateGroup, s.commitUpdates)
	if r.errs[0] != nil {
		return comms.Communication{}, 0, wrap("UpdateCommunication", r.errs[0])
	}
	return asStored(ch.Row, ch.Row.Version+1), r.credits[0], nil
}

// UpdateCommunications writes many changes, each exactly as
// UpdateCommunication without debit writes one — its own compare-and-swap
// on its row's version, with its events — in one transaction (with those of
// other callers queued meanwhile). It is the batch claim and the batch
// completion of the dispatcher (dispatch.BatchStore). errs[i] is the error
// of chs[i] alone: nil (stored[i] is the row as stored), ErrConflict (the
// row moved on: another claimer, a cancel, a sweep — nothing of that change
// is written, the others are), ErrNotFound, or a failure of the store.
func (s *Store) UpdateCommunications(ctx context.Context, chs []comms.Change) (stored []comms.Communication, errs []error) {
	stored, errs = make([]comms.Communication, len(chs)), make([]error, len(chs))
	if len(chs) == 0 {
		return stored, errs
	}
	r, err := s.updateRequest(ctx, chs, false)
	if err != nil {
		for i := range errs {
			errs[i] = wrap("UpdateCommunications", err)
		}
		return stored, errs
	}
	s.updates.submit(r, maxUpdateGroup, s.commitUpdates)
	for i, ch := range chs {
		if r.errs[i] != nil {
			errs[i] = wrap("UpdateCommunications", r.errs[i])
			continue
		}
		stored[i] = asStored(ch.Row, ch.Row.Version+1)
	}
	return stored, errs
}

func (s *Store) updateRequest(ctx context.Context, chs []comms.Change, debit bool) (*updateReq, error) {
	r := &updateReq{ctx: ctx, chs: chs, debit: debit, args: make([][]any, len(chs)), upd: make([]rowUpdate, len(chs)),
		wake: make(chan bool, 1), credits: make([]int64, len(chs)), errs: make([]error, len(chs))}
	for i, ch := range chs {
		args, err := commArgs(ch.Row)
		if err != nil {
			return nil, fmt.Errorf("row %s: %w", ch.Row.ID, err)
		}
		r.args[i] = args
		if r.upd[i], err = s.rowUpdate(ctx, ch, args); err != nil {
			return nil, fmt.Errorf("row %s: %w", ch.Row.ID, err)
		}
	}
	return r, nil
}

// commitUpdates writes a group of update requests in one transaction, one
// SAVEPOINT per change, setting each change's result.
func (s *Store) commitUpdates(batch []*updateReq) {
	// As commitCreates: the transaction serves several callers, so it runs
	// on a context no one caller can cancel; a request whose context has
	// ended before its turn is skipped with its context's error.
	ctx := context.WithoutCancel(batch[0].ctx)
	if len(batch) == 1 && len(batch[0].chs) == 1 {
		s.updateAlone(ctx, batch[0], 0)
		return
	}
	err := inTx(ctx, s.w, func(tx *sql.Tx) error {
		for _, r := range batch {
			for i := range r.chs {
				r.credits[i], r.errs[i] = 0, r.ctx.Err()
				if r.errs[i] != nil {
					continue
				}
				if _, err := s.stmt(ctx, tx, savepointUpdate).ExecContext(ctx); err != nil {
					return err
				}
				credits, err := s.update(ctx, tx, r.chs[i], r.upd[i], r.debit)
				switch {
				case err == nil:
					r.credits[i] = credits
				case errors.Is(err, comms.ErrConflict) || refusal(err):
					r.errs[i] = err
					if _, err := s.stmt(ctx, tx, rollbackUpdate).ExecContext(ctx); err != nil {
						return err
					}
				default:
					return err
				}
				if _, err := s.stmt(ctx, tx, releaseUpdate).ExecContext(ctx); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err == nil {
		return
	}
	// Nothing of the group committed: each change on its own.
	for _, r := range batch {
		for i := range r.chs {
			s.updateAlone(ctx, r, i)
		}
	}
}

// updateAlone writes change i of r in a transaction of its own.
func (s *Store) updateAlone(ctx context.Context, r *updateReq, i int) {
	r.credits[i], r.errs[i] = 0, r.ctx.Err()
	if r.errs[i] != nil {
		return
	}
	var credits int64
	err := inTx(ctx, s.w, func(tx *sql.Tx) error {
		var err error
		credits, err = s.update(ctx, tx, r.chs[i], r.upd[i], r.debit)
		return err
	})
	r.credits[i], r.errs[i] = credits, err
}

// update runs one change's statements inside tx: the row's
// compare-and-swap, its events, suppressions, inserted row and debit.
func (s *Store) update(ctx context.Context, tx *sql.Tx, ch comms.Change, u rowUpdate, withDebit bool) (int64, error) {
	c := ch.Row
	res, err := tx.StmtContext(ctx, u.stmt).ExecContext(ctx, u.args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	if n == 0 {
		var exists bool
		err := s.stmt(ctx, tx, commExists).QueryRowContext(ctx, c.CompanyID, c.ID).Scan(&exists)
		switch {
		case err != nil:
			return 0, err
		case exists:
			return 0, comms.ErrConflict
		default:
			return 0, comms.ErrNotFound
		}
	}
	if err := s.insertEvents(ctx, tx, ch.Events); err != nil {
		return 0, err
	}
	for _, x := range ch.Suppress {
		_, added, err := s.putSuppression(ctx, tx, x)
		if err != nil {
			return 0, fmt.Errorf("suppression of %s %s: %w", x.Channel, x.Recipient, err)
		}
		if !added {
			// Suppressed since the caller read it: an active one is kept as
			// it is, and the caller reads again (as on DynamoDB).
			return 0, fmt.Errorf("%w: %s %s has an active suppression", comms.ErrConflict, x.Channel, x.Recipient)
		}
	}
	if ch.Insert != nil {
		if err := s.insert(ctx, tx, *ch.Insert); err != nil {
			return 0, err
		}
	}
	if withDebit {
		return s.debit(ctx, tx, c.CompanyID)
	}
	return 0, nil
}

// GetCommunications returns the company's rows among ids (those that
// exist, in no particular order): the dispatcher's batch read of the rows
// of a batch of fires, one query instead of one per row.
func (s *Store) GetCommunications(ctx context.Context, companyID string, ids []string) ([]comms.Communication, error) {
	out := make([]comms.Communication, 0, len(ids))
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), maxBatchRead)]
		ids = ids[len(chunk):]
		// The statement is prepared for a few sizes only (1, 2, 4 … 64
		// ids); the rest of its slots repeat the last id.
		n := 1
		for n < len(chunk) {
			n *= 2
		}
		st, err := s.reader(ctx, selectComm+` WHERE company_id = ? AND id IN (?`+strings.Repeat(", ?", n-1)+`)`)
		if err != nil {
			return nil, wrap("GetCommunications", err)
		}
		args := make([]any, 0, n+1)
		args = append(args, companyID)
		for i := range n {
			args = append(args, chunk[min(i, len(chunk)-1)])
		}
		rows, err := st.QueryContext(ctx, args...)
		if err != nil {
			return nil, wrap("GetCommunications", err)
		}
		cs, err := collect(rows, scanComm)
		if err != nil {
			return nil, wrap("GetCommunications", err)
		}
		out = append(out, cs...)
	}
	return out, nil
}

// maxBatchRead bounds the ids of one GetCommunications query.
const maxBatchRead = 64

// readerStmts are the hot read queries, prepared once on the read pool
// (database/sql prepares them on each reader connection as it is used):
// parsing the SQL of a row's select anew on every read was most of a
// read's cost.
type readerStmts struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// reader returns the statement q prepared on the read pool.
func (s *Store) reader(ctx context.Context, q string) (*sql.Stmt, error) {
	s.rstmts.mu.Lock()
	defer s.rstmts.mu.Unlock()
	if st, ok := s.rstmts.m[q]; ok {
		return st, nil
	}
	st, err := s.r.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if s.rstmts.m == nil {
		s.rstmts.m = make(map[string]*sql.Stmt)
	}
	s.rstmts.m[q] = st
	return st, nil
}
