package storetest

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// listFixture is a company with rows varied along every filterable field,
// and another company holding rows that match the same filters.
type listFixture struct {
	*bundle
	rows   []comms.Communication // the company's rows, as stored
	rootA  string
	rootB  string
	others []comms.Communication
}

var (
	statuses = []comms.Status{comms.StatusPending, comms.StatusProcessing, comms.StatusSent, comms.StatusFailed, comms.StatusCancelled}
	channels = []comms.Channel{comms.ChannelEmail, comms.ChannelSMS, comms.ChannelVoice}
)

// variedComm returns row i of a list fixture: scheduled_for takes 7 values, so
// that many rows tie on it.
func (f *listFixture) variedComm(companyID string, i int) comms.Communication {
	c := f.comm(companyID, f.now.Add(time.Duration(i%7)*time.Minute))
	c.Status = statuses[i%5]
	c.Channel = channels[i%3]
	c.ContactID = []string{"contact-0", "contact-1", "contact-2", "contact-3"}[i%4]
	if i%2 == 0 {
		c.CustomerID = "customer-even"
	}
	c.DealID = []string{"", "deal-1", "", "deal-3", ""}[i%5]
	switch i % 4 {
	case 1:
		c.Cadence = &comms.Cadence{RootID: f.rootA, Attempt: 1 + i%3, MaxAttempts: 3}
	case 3:
		c.Cadence = &comms.Cadence{RootID: f.rootB, Attempt: 1, MaxAttempts: 2}
	}
	return c
}

func (s suite) newListFixture(t *testing.T) *listFixture {
	t.Helper()
	f := &listFixture{bundle: s.setup(t), rootA: uuid.NewString(), rootB: uuid.NewString()}
	other := f.newCompany(t, 100)
	for i := range 42 {
		f.rows = append(f.rows, f.create(t, f.variedComm(f.company.ID, i)))
	}
	for i := range 12 {
		f.others = append(f.others, f.create(t, f.variedComm(other.ID, i)))
	}
	return f
}

// matches is the reference model of ListFilter, but for After and Limit.
func matches(c comms.Communication, f comms.ListFilter) bool {
	return (f.Status == "" || c.Status == f.Status) &&
		(f.Channel == "" || c.Channel == f.Channel) &&
		(f.ContactID == "" || c.ContactID == f.ContactID) &&
		(f.CustomerID == "" || c.CustomerID == f.CustomerID) &&
		(f.DealID == "" || c.DealID == f.DealID) &&
		(f.CadenceRootID == "" || c.Cadence != nil && c.Cadence.RootID == f.CadenceRootID) &&
		(f.ScheduledAfter.IsZero() || !c.ScheduledFor.Before(f.ScheduledAfter)) &&
		(f.ScheduledBefore.IsZero() || c.ScheduledFor.Before(f.ScheduledBefore))
}

// byScheduleThenID is the order of a listing.
func byScheduleThenID(a, b comms.Communication) int {
	if c := a.ScheduledFor.Compare(b.ScheduledFor); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// expect returns the ids the model says a listing of rows with f yields.
func expect(rows []comms.Communication, f comms.ListFilter) []string {
	var out []comms.Communication
	for _, c := range rows {
		if matches(c, f) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, byScheduleThenID)
	return ids(out)
}

// listAll pages through a listing with f.Limit, checking every page's size
// and more flag, and returns every row in the order visited.
func listAll(t *testing.T, ctx context.Context, store comms.Store, companyID string, f comms.ListFilter) []comms.Communication {
	t.Helper()
	var all []comms.Communication
	for page := 0; ; page++ {
		if page > 1000 {
			t.Fatalf("paging does not end")
		}
		rows, more, err := store.ListCommunications(ctx, companyID, f)
		requireNoError(t, err)
		if len(rows) > f.Limit {
			t.Fatalf("page %d has %d rows, limit %d", page, len(rows), f.Limit)
		}
		if more && len(rows) != f.Limit {
			t.Fatalf("page %d has %d rows and more, limit %d", page, len(rows), f.Limit)
		}
		all = append(all, rows...)
		if !more {
			return all
		}
		last := rows[len(rows)-1]
		f.After = &comms.Cursor{ScheduledFor: last.ScheduledFor, ID: last.ID}
	}
}

// The extreme times RFC 3339 can write.
var (
	farPast   = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	farFuture = time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC)
)

func (s suite) listCommunications(t *testing.T) {
	t.Run("Filters", func(t *testing.T) {
		t.Parallel()
		f := s.newListFixture(t)
		at := func(m int) time.Time { return f.now.Add(time.Duration(m) * time.Minute) }
		for _, tc := range []struct {
			name   string
			filter comms.ListFilter
		}{
			{"None", comms.ListFilter{}},
			{"Status", comms.ListFilter{Status: comms.StatusPending}},
			{"StatusTerminal", comms.ListFilter{Status: comms.StatusCancelled}},
			{"Channel", comms.ListFilter{Channel: comms.ChannelSMS}},
			{"ContactID", comms.ListFilter{ContactID: "contact-2"}},
			{"CustomerID", comms.ListFilter{CustomerID: "customer-even"}},
			{"DealID", comms.ListFilter{DealID: "deal-3"}},
			{"CadenceRootID", comms.ListFilter{CadenceRootID: f.rootA}},
			{"ScheduledAfterIsInclusive", comms.ListFilter{ScheduledAfter: at(3)}},
			{"ScheduledBeforeIsExclusive", comms.ListFilter{ScheduledBefore: at(3)}},
			{"Window", comms.ListFilter{ScheduledAfter: at(2), ScheduledBefore: at(5)}},
			{"StatusAndChannel", comms.ListFilter{Status: comms.StatusSent, Channel: comms.ChannelVoice}},
			{"ContactCustomerWindow", comms.ListFilter{ContactID: "contact-0", CustomerID: "customer-even", ScheduledAfter: at(1)}},
			{"CadenceAndStatus", comms.ListFilter{CadenceRootID: f.rootB, Status: comms.StatusFailed}},
			{"DealAndChannel", comms.ListFilter{DealID: "deal-1", Channel: comms.ChannelEmail}},
			{"NoMatch", comms.ListFilter{ContactID: "nobody"}},
			{"EmptyWindow", comms.ListFilter{ScheduledAfter: at(4), ScheduledBefore: at(4)}},
			// The extremes a client may use for "no bound" (RFC 3339 allows
			// years 0000–9999): the right rows, whatever the store's own range.
			{"BeforeTheFarFuture", comms.ListFilter{ScheduledBefore: farFuture}},
			{"AfterTheFarPast", comms.ListFilter{ScheduledAfter: farPast}},
			{"AfterTheFarFuture", comms.ListFilter{ScheduledAfter: farFuture}},
			{"BeforeTheFarPast", comms.ListFilter{ScheduledBefore: farPast}},
			{"FromTheFarPastToTheFarFuture", comms.ListFilter{ScheduledAfter: farPast, ScheduledBefore: farFuture}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				want := expect(f.rows, tc.filter)
				if tc.name != "NoMatch" && tc.name != "EmptyWindow" && tc.name != "AfterTheFarFuture" && tc.name != "BeforeTheFarPast" && len(want) == 0 {
					t.Fatalf("fixture bug: the filter matches nothing")
				}
				for _, limit := range []int{1, 4, 100} {
					lf := tc.filter
					lf.Limit = limit
					requireIDs(t, want, ids(listAll(t, f.ctx, f.store, f.company.ID, lf)))
				}
			})
		}
	})

	t.Run("RowsAreComplete", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		full := b.fullComm(b.company.ID)
		full.Version = 1
		_, err := b.store.CreateCommunication(b.ctx, comms.Change{Row: full}, nil)
		requireNoError(t, err)
		rows, more, err := b.store.ListCommunications(b.ctx, b.company.ID, comms.ListFilter{Limit: 10})
		requireNoError(t, err)
		if len(rows) != 1 || more {
			t.Fatalf("listed %d rows (more %v), want 1", len(rows), more)
		}
		requireEqual(t, full, rows[0])
	})

	t.Run("TiesOnScheduledForBrokenByID", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		var rows []comms.Communication
		for range 10 {
			rows = append(rows, b.create(t, b.comm(b.company.ID, b.now.Add(time.Hour))))
		}
		rows = append(rows, b.create(t, b.comm(b.company.ID, b.now.Add(time.Hour-time.Millisecond))))
		want := expect(rows, comms.ListFilter{})
		if want[0] != rows[10].ID {
			t.Fatalf("fixture bug: the earlier row is not first")
		}
		for _, limit := range []int{1, 3, 100} {
			requireIDs(t, want, ids(listAll(t, b.ctx, b.store, b.company.ID, comms.ListFilter{Limit: limit})))
		}
	})

	t.Run("LimitAndMore", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		var all []comms.Communication
		for i := range 5 {
			all = append(all, b.create(t, b.comm(b.company.ID, b.now.Add(time.Duration(i)*time.Second))))
		}
		for _, tc := range []struct {
			limit, n int
			more     bool
		}{{1, 1, true}, {4, 4, true}, {5, 5, false}, {6, 5, false}, {100, 5, false}} {
			rows, more, err := b.store.ListCommunications(b.ctx, b.company.ID, comms.ListFilter{Limit: tc.limit})
			requireNoError(t, err)
			if len(rows) != tc.n || more != tc.more {
				t.Fatalf("limit %d: %d rows, more %v; want %d rows, more %v", tc.limit, len(rows), more, tc.n, tc.more)
			}
			requireIDs(t, ids(all[:tc.n]), ids(rows))
		}
		// A cursor on the last row leaves nothing.
		last := all[4]
		rows, more, err := b.store.ListCommunications(b.ctx, b.company.ID, comms.ListFilter{
			Limit: 10, After: &comms.Cursor{ScheduledFor: last.ScheduledFor, ID: last.ID},
		})
		requireNoError(t, err)
		if len(rows) != 0 || more {
			t.Fatalf("after the last row: %d rows, more %v", len(rows), more)
		}
	})

	t.Run("TenantIsolation", func(t *testing.T) {
		t.Parallel()
		f := s.newListFixture(t)
		theirs := f.others[0].CompanyID
		for _, lf := range []comms.ListFilter{
			{Limit: 100},
			{Limit: 100, ContactID: "contact-1"},
			{Limit: 100, CadenceRootID: f.rootA},
		} {
			requireIDs(t, expect(f.rows, lf), ids(listAll(t, f.ctx, f.store, f.company.ID, lf)))
			requireIDs(t, expect(f.others, lf), ids(listAll(t, f.ctx, f.store, theirs, lf)))
		}
		none, more, err := f.store.ListCommunications(f.ctx, f.newCompany(t, 0).ID, comms.ListFilter{Limit: 100})
		requireNoError(t, err)
		if len(none) != 0 || more {
			t.Fatalf("a company without rows listed %d (more %v)", len(none), more)
		}
	})

	t.Run("PagingWhileInserting", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		co := b.newCompany(t, 1<<40)
		span := 50 * time.Minute
		var before []comms.Communication
		for i := range 60 {
			// Every fifth row ties with the previous one.
			at := b.now.Add(time.Duration(i-i%5/4) * span / 60)
			before = append(before, b.create(t, b.comm(co.ID, at)))
		}

		ctx, stop := context.WithCancel(b.ctx)
		var wg sync.WaitGroup
		defer wg.Wait()
		defer stop()
		for w := range 4 {
			wg.Go(func() {
				for i := 0; i < 150 && ctx.Err() == nil; i++ {
					// Spread over and around the span, ties included.
					at := b.now.Add(time.Duration((i*7+w*13)%70-10) * span / 60)
					if _, err := b.store.CreateCommunication(ctx, comms.Change{Row: b.comm(co.ID, at)}, nil); err != nil && ctx.Err() == nil {
						t.Errorf("concurrent insert: %v", err)
						return
					}
				}
			})
		}
		seen := map[string]int{}
		for _, r := range listAll(t, b.ctx, b.store, co.ID, comms.ListFilter{Limit: 3}) {
			seen[r.ID]++
		}
		stop()
		wg.Wait()

		for id, n := range seen {
			if n != 1 {
				t.Errorf("row %s seen %d times", id, n)
			}
		}
		for _, r := range before {
			if seen[r.ID] != 1 {
				t.Errorf("row %s that existed before paging was seen %d times", r.ID, seen[r.ID])
			}
		}
	})
}

func (s suite) dueCommunications(t *testing.T) {
	// row returns a row of the company in status whose next_attempt_at and
	// lease_until are now plus the given offsets.
	row := func(t *testing.T, b *bundle, companyID string, status comms.Status, next, lease time.Duration) comms.Communication {
		c := b.comm(companyID, b.now.Add(next))
		c.Status = status
		c.NextAttemptAt = b.now.Add(next)
		if lease != 0 {
			c.LeaseUntil = b.now.Add(lease)
		}
		return b.create(t, c)
	}

	t.Run("PendingAndExpiredLeasesEarliestFirst", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		other := b.newCompany(t, 100)
		a, o := b.company.ID, other.ID
		p1 := row(t, b, a, comms.StatusPending, -3*time.Minute, 0)
		l1 := row(t, b, o, comms.StatusProcessing, time.Hour, -2*time.Minute)
		p2 := row(t, b, o, comms.StatusPending, -time.Minute, time.Hour)
		l2 := row(t, b, a, comms.StatusProcessing, -time.Hour, -time.Millisecond)

		// Not due: future, exactly now, or the wrong time for the status.
		row(t, b, a, comms.StatusPending, time.Minute, 0)
		row(t, b, a, comms.StatusPending, 0, 0)
		row(t, b, o, comms.StatusPending, time.Minute, -time.Hour)
		row(t, b, a, comms.StatusProcessing, -time.Hour, time.Minute)
		// Terminal rows never are, whatever their times.
		for _, st := range []comms.Status{comms.StatusSent, comms.StatusFailed, comms.StatusCancelled} {
			row(t, b, a, st, -time.Hour, -time.Hour)
			row(t, b, o, st, -2*time.Hour, -2*time.Hour)
		}

		got, err := b.store.DueCommunications(b.ctx, b.now, 100)
		requireNoError(t, err)
		requireIDs(t, ids([]comms.Communication{p1, l1, p2, l2}), ids(got))
		for i, want := range []comms.Communication{p1, l1, p2, l2} {
			requireEqual(t, want, got[i])
		}
	})

	t.Run("LimitKeepsTheEarliest", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		var want []comms.Communication
		for i := range 6 {
			st := comms.StatusPending
			next, lease := -time.Duration(10-i)*time.Minute, time.Duration(0)
			if i%2 == 1 {
				st, next, lease = comms.StatusProcessing, time.Hour, -time.Duration(10-i)*time.Minute
			}
			want = append(want, row(t, b, b.company.ID, st, next, lease))
		}
		for _, limit := range []int{1, 3, 6, 10} {
			got, err := b.store.DueCommunications(b.ctx, b.now, limit)
			requireNoError(t, err)
			requireIDs(t, ids(want[:min(limit, len(want))]), ids(got))
		}
	})

	t.Run("NothingDue", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		row(t, b, b.company.ID, comms.StatusPending, time.Minute, 0)
		got, err := b.store.DueCommunications(b.ctx, b.now, 10)
		requireNoError(t, err)
		if len(got) != 0 {
			t.Fatalf("%d rows due, want none", len(got))
		}
	})
}
