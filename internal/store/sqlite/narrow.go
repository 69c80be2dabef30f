package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"strings"
	"sync"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// updateColumns are the columns a row's UPDATE may set: all but the key
// (company_id, id) and version, in commColumns order.
var updateColumns = commColumns[2 : len(commColumns)-1]

// allColumns is the mask of every updateColumns bit.
var allColumns = uint64(1)<<len(updateColumns) - 1

// rowUpdate is one change's UPDATE of its row: the statement and its
// arguments (the values set, then company_id, id and the expected version).
type rowUpdate struct {
	stmt *sql.Stmt
	args []any
}

// narrowStmts caches the UPDATE statements of the column sets seen, by
// mask (bit i: updateColumns[i]), prepared on the writer.
type narrowStmts struct {
	mu sync.Mutex
	m  map[uint64]*sql.Stmt
}

// rowUpdate returns the UPDATE of ch's row, whose commArgs are args. A
// change made by a transition (ch.Before at the version it writes) sets
// only the columns whose values differ from Before's: under the
// compare-and-swap the stored row is Before, so the others already hold
// those values. SQLite's UPDATE code generator (sqlite3Update, update.c)
// maintains only the indexes with a column — or, for a partial index, a
// WHERE column — among those the statement assigns, so a claim no longer
// rewrites the schedule and message-id indexes and a delivery report no
// index at all; each statement also binds a few values instead of 35.
// Any other change sets every column.
func (s *Store) rowUpdate(ctx context.Context, ch comms.Change, args []any) (rowUpdate, error) {
	c := ch.Row
	mask := allColumns
	if b := ch.Before; b != nil && b.Version == c.Version && b.ID == c.ID && b.CompanyID == c.CompanyID {
		before, err := commArgs(*b)
		if err != nil {
			return rowUpdate{}, err
		}
		mask = 0
		for i := range updateColumns {
			if args[2+i] != before[2+i] {
				mask |= 1 << i
			}
		}
		if mask == 0 {
			mask = allColumns // nothing differs: a plain write, as before
		}
	}
	if mask == allColumns {
		return rowUpdate{stmt: s.prepared[updateComm], args: append(args[2:len(args):len(args)], c.CompanyID, c.ID, c.Version)}, nil
	}
	st, err := s.narrow.get(ctx, s.w, mask)
	if err != nil {
		return rowUpdate{}, err
	}
	out := make([]any, 0, bits.OnesCount64(mask)+3)
	for i := range updateColumns {
		if mask&(1<<i) != 0 {
			out = append(out, args[2+i])
		}
	}
	return rowUpdate{stmt: st, args: append(out, c.CompanyID, c.ID, c.Version)}, nil
}

// get returns the statement of mask, preparing it on w the first time.
// It runs before the caller's write is queued, never inside the writer's
// transaction (w has one connection: preparing there would wait for it).
func (n *narrowStmts) get(ctx context.Context, w *sql.DB, mask uint64) (*sql.Stmt, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if st, ok := n.m[mask]; ok {
		return st, nil
	}
	var set []string
	for i, col := range updateColumns {
		if mask&(1<<i) != 0 {
			set = append(set, col+" = ?")
		}
	}
	st, err := w.PrepareContext(ctx, "UPDATE communications SET "+strings.Join(set, ", ")+
		", version = version + 1 WHERE company_id = ? AND id = ? AND version = ?")
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	if n.m == nil {
		n.m = map[uint64]*sql.Stmt{}
	}
	n.m[mask] = st
	return st, nil
}

// close closes the cached statements.
func (n *narrowStmts) close() []error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var errs []error
	for _, st := range n.m {
		errs = append(errs, st.Close())
	}
	n.m = nil
	return errs
}
