package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// BatchStore is the batched hot path a store may offer (the dispatcher's
// dispatch.BatchStore): a read of many rows and many compare-and-swap
// writes in one transaction. The SQLite store implements it; DynamoDB does
// not (a TransactWriteItems is all or nothing: one losing condition would
// undo the others), so on it these subtests skip and the dispatcher keeps
// its per-row writes.
type BatchStore interface {
	GetCommunications(ctx context.Context, companyID string, ids []string) ([]comms.Communication, error)
	UpdateCommunications(ctx context.Context, chs []comms.Change) ([]comms.Communication, []error)
}

func (s suite) batch(t *testing.T) {
	probe := s.newStore(t)
	if _, ok := probe.(BatchStore); !ok {
		t.Skip("the store has no batch claim/complete (dispatch.BatchStore); the dispatcher writes row by row on it")
	}
	setup := func(t *testing.T) (*bundle, BatchStore, []comms.Communication) {
		b := s.setup(t)
		rows := make([]comms.Communication, 6)
		for i := range rows {
			rows[i] = b.created(t, b.company.ID, b.now.Add(time.Duration(i)*time.Millisecond))
		}
		return b, b.store.(BatchStore), rows
	}
	claims := func(t *testing.T, b *bundle, rows []comms.Communication, owner string) []comms.Change {
		t.Helper()
		out := make([]comms.Change, len(rows))
		for i, r := range rows {
			ch, err := comms.Claim(r, b.now.Add(2*time.Minute), b.now.Add(time.Second))
			requireNoError(t, err)
			ch.Row.LeaseOwner = owner
			out[i] = ch
		}
		return out
	}

	t.Run("GetCommunications returns the company's rows among the ids", func(t *testing.T) {
		t.Parallel()
		b, bs, rows := setup(t)
		other := b.newCompany(t, 10)
		theirs := b.created(t, other.ID, b.now)
		want := []string{rows[0].ID, rows[2].ID, rows[5].ID}
		got, err := bs.GetCommunications(b.ctx, b.company.ID, append(slices.Clone(want), "no-such-row", theirs.ID))
		requireNoError(t, err)
		gotIDs := ids(got)
		slices.Sort(gotIDs)
		slices.Sort(want)
		requireIDs(t, want, gotIDs)
		for _, g := range got {
			one, err := b.store.GetCommunication(b.ctx, b.company.ID, g.ID)
			requireNoError(t, err)
			requireEqual(t, one, g)
		}
		none, err := bs.GetCommunications(b.ctx, b.company.ID, nil)
		requireNoError(t, err)
		if len(none) != 0 {
			t.Fatalf("GetCommunications of no ids returned %d rows", len(none))
		}
	})

	t.Run("a batch claim never returns a row another claimer holds", func(t *testing.T) {
		t.Parallel()
		b, bs, rows := setup(t)
		// Claimer A reads every row; claimer B claims rows 1 and 3 first.
		_, errsB := bs.UpdateCommunications(b.ctx, claims(t, b, []comms.Communication{rows[1], rows[3]}, "B"))
		for _, err := range errsB {
			requireNoError(t, err)
		}
		stored, errsA := bs.UpdateCommunications(b.ctx, claims(t, b, rows, "A"))
		for i, err := range errsA {
			if i == 1 || i == 3 {
				requireErrorIs(t, err, comms.ErrConflict)
				continue
			}
			requireNoError(t, err)
			if stored[i].Status != comms.StatusProcessing || stored[i].LeaseOwner != "A" || stored[i].Version != 2 {
				t.Fatalf("row %d returned %s owner %q version %d, want processing A 2", i, stored[i].Status, stored[i].LeaseOwner, stored[i].Version)
			}
			got, err := b.store.GetCommunication(b.ctx, b.company.ID, rows[i].ID)
			requireNoError(t, err)
			requireEqual(t, stored[i], got)
		}
		for i, r := range rows {
			got, err := b.store.GetCommunication(b.ctx, b.company.ID, r.ID)
			requireNoError(t, err)
			want := "A"
			if i == 1 || i == 3 {
				want = "B"
			}
			if got.LeaseOwner != want || got.AttemptCount != 1 || got.Version != 2 {
				t.Fatalf("row %d: owner %q attempt %d version %d, want %s 1 2", i, got.LeaseOwner, got.AttemptCount, got.Version, want)
			}
			// One attempt_started, the winner's: the loser wrote no event.
			evs := b.history(t, b.company.ID, r.ID, 10)
			if len(evs) != 2 || evs[1].Type != comms.EventAttemptStarted {
				t.Fatalf("row %d history %v, want created, attempt_started", i, evs)
			}
		}
	})

	t.Run("concurrent batch claims of the same rows: each row is claimed once", func(t *testing.T) {
		t.Parallel()
		b, bs, rows := setup(t)
		more := make([]comms.Communication, 0, 24)
		more = append(more, rows...)
		for i := range 18 {
			more = append(more, b.created(t, b.company.ID, b.now.Add(time.Duration(10+i)*time.Millisecond)))
		}
		const claimers = 4
		won := make([][]bool, claimers)
		var mu sync.Mutex
		var failures []error
		errs := parallel(claimers, func(c int) error {
			// Each claimer asks for every row, in its own order.
			order := slices.Clone(more)
			if c%2 == 1 {
				slices.Reverse(order)
			}
			chs := claims(t, b, order, string(rune('A'+c)))
			_, es := bs.UpdateCommunications(b.ctx, chs)
			won[c] = make([]bool, len(more))
			for i, err := range es {
				switch {
				case err == nil:
					won[c][slices.IndexFunc(more, func(r comms.Communication) bool { return r.ID == order[i].ID })] = true
				case !errors.Is(err, comms.ErrConflict):
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
				}
			}
			return nil
		})
		for _, err := range append(errs, failures...) {
			requireNoError(t, err)
		}
		for i, r := range more {
			n := 0
			for c := range claimers {
				if won[c][i] {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("row %d claimed by %d claimers, want exactly 1", i, n)
			}
			if evs := b.history(t, b.company.ID, r.ID, 10); len(evs) != 2 {
				t.Fatalf("row %d has %d events, want created and one attempt_started", i, len(evs))
			}
		}
	})

	t.Run("a batch complete with one losing CAS commits the others", func(t *testing.T) {
		t.Parallel()
		b, bs, rows := setup(t)
		claimed, errs := bs.UpdateCommunications(b.ctx, claims(t, b, rows[:4], "A"))
		for _, err := range errs {
			requireNoError(t, err)
		}
		// Row 2's lease is taken over (a sweep) before its result is recorded.
		swept, err := comms.ReleaseExpiredLease(claimed[2], b.now.Add(3*time.Minute))
		requireNoError(t, err)
		_, _, err = b.store.UpdateCommunication(b.ctx, swept, false)
		requireNoError(t, err)
		results := make([]comms.Change, 0, 5)
		for i, r := range claimed {
			var ch comms.Change
			var err error
			if i == 1 {
				ch, err = comms.RecordTransientFailure(r, comms.LastError{Code: "throttled", Message: "slow"}, b.now.Add(time.Minute), b.now.Add(2*time.Second))
			} else {
				ch, err = comms.RecordSent(r, "msg-"+r.ID, b.now.Add(2*time.Second))
			}
			requireNoError(t, err)
			results = append(results, ch)
		}
		gone := claimed[0]
		gone.ID, gone.EventSeq = "no-such-row", 0
		missing, err := comms.RecordSent(gone, "msg-x", b.now.Add(2*time.Second))
		requireNoError(t, err)
		results = append(results, missing)
		stored, errs := bs.UpdateCommunications(b.ctx, results)
		requireErrorIs(t, errs[2], comms.ErrConflict)
		requireErrorIs(t, errs[4], comms.ErrNotFound)
		for _, i := range []int{0, 1, 3} {
			requireNoError(t, errs[i])
			got, err := b.store.GetCommunication(b.ctx, b.company.ID, rows[i].ID)
			requireNoError(t, err)
			requireEqual(t, stored[i], got)
			evs := b.history(t, b.company.ID, rows[i].ID, 10)
			last := evs[len(evs)-1].Type
			if i == 1 && (got.Status != comms.StatusPending || last != comms.EventAttemptFailed) ||
				i != 1 && (got.Status != comms.StatusSent || last != comms.EventSent) {
				t.Fatalf("row %d is %s with last event %s", i, got.Status, last)
			}
		}
		// The loser keeps the sweep's write, and none of the result's events.
		got, err := b.store.GetCommunication(b.ctx, b.company.ID, rows[2].ID)
		requireNoError(t, err)
		if got.Status != comms.StatusPending || got.Version != claimed[2].Version+1 {
			t.Fatalf("row 2 is %s v%d, want pending as the sweep left it", got.Status, got.Version)
		}
		for _, e := range b.history(t, b.company.ID, rows[2].ID, 10) {
			if e.Type == comms.EventSent {
				t.Fatalf("row 2 has a sent event though its result lost the CAS")
			}
		}
	})
}
