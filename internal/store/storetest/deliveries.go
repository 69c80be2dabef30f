package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
)

// This file is the suite of status-webhook deliveries
// (webhooks.DeliveryStore): the fan-out with its cursor, reads, paging,
// the compare-and-swap update and the due deliveries.

func (s suite) deliveries(t *testing.T) {
	setup := func(t *testing.T) (*bundle, webhooks.DeliveryStore) {
		t.Helper()
		b := s.setup(t)
		ds, ok := b.store.(webhooks.DeliveryStore)
		if !ok {
			t.Fatalf("%T does not implement webhooks.DeliveryStore", b.store)
		}
		return b, ds
	}
	// delivery returns a new pending delivery of a fresh event of the
	// company to the endpoint, created (and due) at at.
	delivery := func(companyID, endpointID string, at time.Time) webhooks.Delivery {
		eventID := uuid.NewString()
		return webhooks.Delivery{
			ID: webhooks.DeliveryID(endpointID, eventID), CompanyID: companyID, EndpointID: endpointID,
			EventID: eventID, EventType: comms.EventSent, CommunicationID: uuid.NewString(),
			// Not canonical JSON on purpose: the bytes must come back as given.
			Payload:       json.RawMessage("{\"type\": \"sent\",\n \"data\":{\"z\":1, \"a\":[1.50, null]}, \"é\": \"✓\"}"),
			State:         webhooks.DeliveryPending,
			NextAttemptAt: at,
			CreatedAt:     at,
			UpdatedAt:     at,
		}
	}
	endpoint := func() string { return "we_" + uuid.NewString() }
	stored := func(d webhooks.Delivery) webhooks.Delivery { d.Version = 1; return d }

	t.Run("FanOutInsertsAndMovesTheCursor", func(t *testing.T) {
		t.Parallel()
		b, st := setup(t)
		cur, err := st.FanOutCursor(b.ctx, b.company.ID)
		requireNoError(t, err)
		if cur != "" {
			t.Fatalf("cursor of a new company = %q, want \"\"", cur)
		}
		ep1, ep2 := endpoint(), endpoint()
		d1, d2, d3 := delivery(b.company.ID, ep1, b.now), delivery(b.company.ID, ep1, b.now), delivery(b.company.ID, ep2, b.now)
		d2.Attempts = []webhooks.Attempt{{At: b.now, StatusCode: 500, DurationMS: 12.5, Error: "HTTP 500", Result: webhooks.Retry}}
		requireNoError(t, st.FanOut(b.ctx, b.company.ID, "", "feed-1", []webhooks.Delivery{d1, d2, d3}))
		requireCursor(t, st, b, b.company.ID, "feed-1")
		for _, d := range []webhooks.Delivery{d1, d2, d3} {
			requireStoredDelivery(t, st, b, stored(d))
		}

		d4 := delivery(b.company.ID, ep2, b.now.Add(time.Second))
		requireNoError(t, st.FanOut(b.ctx, b.company.ID, "feed-1", "feed-2", []webhooks.Delivery{d4}))
		requireCursor(t, st, b, b.company.ID, "feed-2")
		requireStoredDelivery(t, st, b, stored(d4))

		// A fan-out of no delivery still moves the cursor (events no
		// endpoint wants).
		requireNoError(t, st.FanOut(b.ctx, b.company.ID, "feed-2", "feed-3", nil))
		requireCursor(t, st, b, b.company.ID, "feed-3")

		// From a cursor that is not the stored one, or from none when one
		// is stored: ErrConflict.
		requireErrorIs(t, st.FanOut(b.ctx, b.company.ID, "", "feed-9", nil), comms.ErrConflict)
		requireErrorIs(t, st.FanOut(b.ctx, b.company.ID, "feed-2", "feed-9", nil), comms.ErrConflict)
		requireCursor(t, st, b, b.company.ID, "feed-3")
	})

	t.Run("ReplayedFanOutWritesNothing", func(t *testing.T) {
		t.Parallel()
		b, st := setup(t)
		ep := endpoint()
		d1, d2 := delivery(b.company.ID, ep, b.now), delivery(b.company.ID, ep, b.now.Add(time.Millisecond))
		requireNoError(t, st.FanOut(b.ctx, b.company.ID, "", "feed-1", []webhooks.Delivery{d1, d2}))

		// The same fan-out again, from the cursor it started from, with a
		// delivery it did not have: refused, and the new one not written.
		extra := delivery(b.company.ID, ep, b.now)
		err := st.FanOut(b.ctx, b.company.ID, "", "feed-1", []webhooks.Delivery{d1, d2, extra})
		requireErrorIs(t, err, comms.ErrConflict)
		requireCursor(t, st, b, b.company.ID, "feed-1")
		_, err = st.GetDelivery(b.ctx, b.company.ID, ep, extra.ID)
		requireErrorIs(t, err, comms.ErrNotFound)
		got, more, err := st.ListDeliveries(b.ctx, b.company.ID, ep, webhooks.DeliveryFilter{Limit: 100})
		requireNoError(t, err)
		if len(got) != 2 || more {
			t.Fatalf("after the replay the endpoint has %d deliveries (more %v), want 2", len(got), more)
		}
		requireStoredDelivery(t, st, b, stored(d1))
	})

	t.Run("ExistingDeliveriesLeftUntouched", func(t *testing.T) {
		t.Parallel()
		b, st := setup(t)
		ep := endpoint()
		d1, d2 := delivery(b.company.ID, ep, b.now), delivery(b.company.ID, ep, b.now)
		requireNoError(t, st.FanOut(b.ctx, b.company.ID, "", "feed-1", []webhooks.Delivery{d1, d2}))
		// d1 is delivered meanwhile.
		done := stored(d1)
		done.State, done.NextAttemptAt, done.UpdatedAt = webhooks.DeliverySucceeded, time.Time{}, b.now.Add(time.Second)
		done.Attempts = []webhooks.Attempt{{At: b.now, StatusCode: 204, DurationMS: 3, Result: webhooks.Succeeded}}
		done, err := st.UpdateDelivery(b.ctx, done)
		requireNoError(t, err)

		// A later fan-out that carries d1 and d2 again (rebuilt: another
		// payload, pending), and a new d3, writes d3 only.
		again1, again2 := d1, d2
		again1.Payload, again2.Payload = json.RawMessage(`{"rebuilt":1}`), json.RawMessage(`{"rebuilt":2}`)
		again2.CreatedAt = b.now.Add(time.Hour)
		d3 := delivery(b.company.ID, ep, b.now.Add(time.Minute))
		requireNoError(t, st.FanOut(b.ctx, b.company.ID, "feed-1", "feed-2", []webhooks.Delivery{again1, again2, d3, d3}))
		requireStoredDelivery(t, st, b, done)
		requireStoredDelivery(t, st, b, stored(d2))
		requireStoredDelivery(t, st, b, stored(d3))
		requireCursor(t, st, b, b.company.ID, "feed-2")
	})

	t.Run("Refused", func(t *testing.T) {
		t.Parallel()
		b, st := setup(t)
		ep := endpoint()
		tooMany := make([]webhooks.Delivery, webhooks.MaxFanOut+1)
		for i := range tooMany {
			tooMany[i] = delivery(b.company.ID, ep, b.now)
		}
		other := b.newCompany(t, 1)
		pendingWithoutTime := delivery(b.company.ID, ep, b.now)
		pendingWithoutTime.NextAttemptAt = time.Time{}
		for name, ds := range map[string][]webhooks.Delivery{
			"too many":               tooMany,
			"another company's":      {delivery(b.company.ID, ep, b.now), delivery(other.ID, ep, b.now)},
			"pending without a time": {pendingWithoutTime},
		} {
			if err := st.FanOut(b.ctx, b.company.ID, "", "feed-1", ds); !errors.Is(err, webhooks.ErrInvalidDelivery) {
				t.Errorf("%s: FanOut error = %v, want ErrInvalidDelivery", name, err)
			}
		}
		requireErrorIs(t, st.FanOut(b.ctx, b.company.ID, "", "", nil), webhooks.ErrInvalidDelivery)
		requireCursor(t, st, b, b.company.ID, "")
		got, _, err := st.ListDeliveries(b.ctx, b.company.ID, ep, webhooks.DeliveryFilter{Limit: 100})
		requireNoError(t, err)
		if len(got) != 0 {
			t.Fatalf("refused fan-outs wrote %d deliveries", len(got))
		}

		// MaxFanOut itself is accepted.
		requireNoError(t, st.FanOut(b.ctx, b.company.ID, "", "feed-1", tooMany[:webhooks.MaxFanOut]))
		got, more, err := st.ListDeliveries(b.ctx, b.company.ID, ep, webhooks.DeliveryFilter{Limit: 100})
		requireNoError(t, err)
		if len(got) != webhooks.MaxFanOut || more {
			t.Fatalf("listed %d deliveries (more %v), want %d", len(got), more, webhooks.MaxFanOut)
		}
	})

	t.Run("TenantIsolation", func(t *testing.T) {
		t.Parallel()
		b, st := setup(t)
		other := b.newCompany(t, 1)
		ep := endpoint()
		d := delivery(b.company.ID, ep, b.now)
		requireNoError(t, st.FanOut(b.ctx, b.company.ID, "", "feed-1", []webhooks.Delivery{d}))

		_, err := st.GetDelivery(b.ctx, other.ID, ep, d.ID)
		requireErrorIs(t, err, comms.ErrNotFound)
		got, more, err := st.ListDeliveries(b.ctx, other.ID, ep, webhooks.DeliveryFilter{Limit: 10})
		requireNoError(t, err)
		if len(got) != 0 || more {
			t.Fatalf("another company lists %d deliveries (more %v)", len(got), more)
		}
		requireCursor(t, st, b, other.ID, "")
		stolen := stored(d)
		stolen.CompanyID = other.ID
		_, err = st.UpdateDelivery(b.ctx, stolen)
		requireErrorIs(t, err, comms.ErrNotFound)

		// The other company's fan-out has its own cursor, and the same
		// endpoint and delivery ids stay apart.
		theirs := d
		theirs.CompanyID = other.ID
		theirs.Payload = json.RawMessage(`{"theirs":true}`)
		requireNoError(t, st.FanOut(b.ctx, other.ID, "", "theirs-1", []webhooks.Delivery{theirs}))
		requireCursor(t, st, b, other.ID, "theirs-1")
		requireCursor(t, st, b, b.company.ID, "feed-1")
		requireStoredDelivery(t, st, b, stored(d))
		requireStoredDelivery(t, st, b, stored(theirs))
	})

	t.Run("ListPagingAndState", func(t *testing.T) {
		t.Parallel()
		b, st := setup(t)
		ep := endpoint()
		// 7 deliveries over 4 creation times (ties are ordered by id),
		// and one of another endpoint.
		var all []webhooks.Delivery
		for i := range 7 {
			all = append(all, delivery(b.company.ID, ep, b.now.Add(time.Duration(i/2)*time.Second)))
		}
		requireNoError(t, st.FanOut(b.ctx, b.company.ID, "", "feed-1",
			append(slices.Clone(all), delivery(b.company.ID, endpoint(), b.now))))
		// Newest first, by CreatedAt then id.
		want := slices.Clone(all)
		slices.SortFunc(want, func(x, y webhooks.Delivery) int {
			if c := y.CreatedAt.Compare(x.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(y.ID, x.ID)
		})
		for _, size := range []int{1, 2, 100} {
			var got []string
			after := ""
			for page := 0; ; page++ {
				ds, more, err := st.ListDeliveries(b.ctx, b.company.ID, ep, webhooks.DeliveryFilter{After: after, Limit: size})
				requireNoError(t, err)
				if len(ds) > size {
					t.Fatalf("size %d: page of %d", size, len(ds))
				}
				for _, d := range ds {
					got = append(got, d.ID)
				}
				if !more {
					break
				}
				if len(ds) == 0 || page > 10 {
					t.Fatalf("size %d: more with an empty page, or no end", size)
				}
				after = webhooks.DeliveryCursor(ds[len(ds)-1])
			}
			requireIDs(t, deliveryIDs(want), got)
		}

		// The state filter.
		succeeded := stored(want[1])
		succeeded.State, succeeded.NextAttemptAt = webhooks.DeliverySucceeded, time.Time{}
		_, err := st.UpdateDelivery(b.ctx, succeeded)
		requireNoError(t, err)
		failed := stored(want[4])
		failed.State, failed.NextAttemptAt = webhooks.DeliveryFailed, time.Time{}
		_, err = st.UpdateDelivery(b.ctx, failed)
		requireNoError(t, err)
		for state, ids := range map[webhooks.DeliveryState][]string{
			webhooks.DeliverySucceeded: {want[1].ID},
			webhooks.DeliveryFailed:    {want[4].ID},
			webhooks.DeliveryPending:   {want[0].ID},
		} {
			ds, more, err := st.ListDeliveries(b.ctx, b.company.ID, ep, webhooks.DeliveryFilter{State: state, Limit: 1})
			requireNoError(t, err)
			requireIDs(t, ids, deliveryIDs(ds))
			if more != (state == webhooks.DeliveryPending) {
				t.Errorf("state %s: more = %v", state, more)
			}
		}
		var pending []string
		after := ""
		for {
			ds, more, err := st.ListDeliveries(b.ctx, b.company.ID, ep, webhooks.DeliveryFilter{State: webhooks.DeliveryPending, After: after, Limit: 2})
			requireNoError(t, err)
			pending = append(pending, deliveryIDs(ds)...)
			if !more {
				break
			}
			after = webhooks.DeliveryCursor(ds[len(ds)-1])
		}
		requireIDs(t, deliveryIDs([]webhooks.Delivery{want[0], want[2], want[3], want[5], want[6]}), pending)

		_, _, err = st.ListDeliveries(b.ctx, b.company.ID, ep, webhooks.DeliveryFilter{After: "not a cursor!", Limit: 10})
		requireErrorIs(t, err, comms.ErrBadCursor)
	})

	t.Run("UpdateIsCompareAndSwap", func(t *testing.T) {
		t.Parallel()
		b, st := setup(t)
		ep := endpoint()
		d := delivery(b.company.ID, ep, b.now)
		requireNoError(t, st.FanOut(b.ctx, b.company.ID, "", "feed-1", []webhooks.Delivery{d}))

		next := stored(d)
		next.NextAttemptAt, next.UpdatedAt = b.now.Add(5*time.Second), b.now.Add(time.Second)
		next.Attempts = []webhooks.Attempt{{At: b.now, DurationMS: 15000, Error: "no response within 15s", Result: webhooks.Retry}}
		next.Payload = json.RawMessage(`{"changed":true}`) // ignored: the payload is as fanned out
		got, err := st.UpdateDelivery(b.ctx, next)
		requireNoError(t, err)
		want := next
		want.Payload, want.Version = d.Payload, 2
		requireDeliveryEqual(t, want, got)
		requireStoredDelivery(t, st, b, want)

		// The same version again lost the race.
		_, err = st.UpdateDelivery(b.ctx, next)
		requireErrorIs(t, err, comms.ErrConflict)
		requireStoredDelivery(t, st, b, want)

		// 25 attempts: the last 20 are kept.
		many := want
		many.Attempts = nil
		for i := range 25 {
			many.Attempts = append(many.Attempts, webhooks.Attempt{At: b.now.Add(time.Duration(i) * time.Minute),
				StatusCode: 500 + i, DurationMS: float64(i), Error: fmt.Sprintf("HTTP %d", 500+i), Result: webhooks.Retry})
		}
		got, err = st.UpdateDelivery(b.ctx, many)
		requireNoError(t, err)
		many.Attempts, many.Version = many.Attempts[5:], 3
		requireDeliveryEqual(t, many, got)
		requireStoredDelivery(t, st, b, many)

		missing := delivery(b.company.ID, ep, b.now)
		missing.Version = 1
		_, err = st.UpdateDelivery(b.ctx, missing)
		requireErrorIs(t, err, comms.ErrNotFound)

		bad := many
		bad.State = webhooks.DeliverySucceeded // with a NextAttemptAt
		_, err = st.UpdateDelivery(b.ctx, bad)
		requireErrorIs(t, err, webhooks.ErrInvalidDelivery)
		requireStoredDelivery(t, st, b, many)
	})

	t.Run("DueDeliveries", func(t *testing.T) {
		t.Parallel()
		b, st := setup(t)
		other := b.newCompany(t, 1)
		t0 := b.now
		ep1, ep2 := endpoint(), endpoint()
		a1 := delivery(b.company.ID, ep1, t0.Add(-time.Hour))
		a2 := delivery(b.company.ID, ep2, t0) // due at exactly t: included
		a3 := delivery(b.company.ID, ep1, t0.Add(time.Millisecond))
		done := delivery(b.company.ID, ep1, t0.Add(-2*time.Hour))
		o1 := delivery(other.ID, ep1, t0.Add(-30*time.Minute))
		o2 := delivery(other.ID, ep2, t0.Add(-3*time.Hour))
		failed := delivery(other.ID, ep2, t0.Add(-4*time.Hour))
		requireNoError(t, st.FanOut(b.ctx, b.company.ID, "", "f", []webhooks.Delivery{a3, a2, done, a1}))
		requireNoError(t, st.FanOut(b.ctx, other.ID, "", "f", []webhooks.Delivery{o1, failed, o2}))
		for _, d := range []webhooks.Delivery{done, failed} {
			d = stored(d)
			d.State, d.NextAttemptAt = webhooks.DeliverySucceeded, time.Time{}
			if d.ID == failed.ID {
				d.State = webhooks.DeliveryFailed
			}
			_, err := st.UpdateDelivery(b.ctx, d)
			requireNoError(t, err)
		}

		got, err := st.DueDeliveries(b.ctx, t0, 100)
		requireNoError(t, err)
		requireIDs(t, deliveryIDs([]webhooks.Delivery{o2, a1, o1, a2}), deliveryIDs(got))
		requireDeliveryEqual(t, stored(o2), got[0])

		got, err = st.DueDeliveries(b.ctx, t0, 2)
		requireNoError(t, err)
		requireIDs(t, deliveryIDs([]webhooks.Delivery{o2, a1}), deliveryIDs(got))

		// A retry moves a delivery later; a manual retry makes a failed
		// one due again.
		later := stored(o2)
		later.NextAttemptAt = t0.Add(time.Hour)
		_, err = st.UpdateDelivery(b.ctx, later)
		requireNoError(t, err)
		again, err := st.GetDelivery(b.ctx, other.ID, ep2, failed.ID)
		requireNoError(t, err)
		again.State, again.NextAttemptAt = webhooks.DeliveryPending, t0.Add(-time.Minute)
		_, err = st.UpdateDelivery(b.ctx, again)
		requireNoError(t, err)
		got, err = st.DueDeliveries(b.ctx, t0, 100)
		requireNoError(t, err)
		requireIDs(t, deliveryIDs([]webhooks.Delivery{a1, o1, failed, a2}), deliveryIDs(got))
	})

	t.Run("ConcurrentFanOutsOneWins", func(t *testing.T) {
		t.Parallel()
		b, st := setup(t)
		const n = 8
		eps := make([]string, n)
		sets := make([][]webhooks.Delivery, n)
		for i := range n {
			eps[i] = endpoint()
			sets[i] = []webhooks.Delivery{delivery(b.company.ID, eps[i], b.now), delivery(b.company.ID, eps[i], b.now)}
		}
		errs := parallel(n, func(i int) error {
			return st.FanOut(b.ctx, b.company.ID, "", fmt.Sprintf("feed-%d", i), sets[i])
		})
		ok, conflicts, other := count(errs, comms.ErrConflict)
		if ok != 1 || conflicts != n-1 || len(other) > 0 {
			t.Fatalf("%d won, %d conflicted, other errors %v; want 1 and %d", ok, conflicts, other, n-1)
		}
		winner := slices.IndexFunc(errs, func(err error) bool { return err == nil })
		requireCursor(t, st, b, b.company.ID, fmt.Sprintf("feed-%d", winner))
		for i := range n {
			ds, _, err := st.ListDeliveries(b.ctx, b.company.ID, eps[i], webhooks.DeliveryFilter{Limit: 10})
			requireNoError(t, err)
			if want := map[bool]int{true: 2, false: 0}[i == winner]; len(ds) != want {
				t.Errorf("fan-out %d (winner %d) left %d deliveries, want %d", i, winner, len(ds), want)
			}
		}
	})
}

func deliveryIDs(ds []webhooks.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

func requireCursor(t *testing.T, st webhooks.DeliveryStore, b *bundle, companyID, want string) {
	t.Helper()
	got, err := st.FanOutCursor(b.ctx, companyID)
	requireNoError(t, err)
	if got != want {
		t.Fatalf("fan-out cursor = %q, want %q", got, want)
	}
}

// requireStoredDelivery reads want's delivery back and compares it.
func requireStoredDelivery(t *testing.T, st webhooks.DeliveryStore, b *bundle, want webhooks.Delivery) {
	t.Helper()
	got, err := st.GetDelivery(b.ctx, want.CompanyID, want.EndpointID, want.ID)
	requireNoError(t, err)
	requireDeliveryEqual(t, want, got)
}

// requireDeliveryEqual compares deliveries as requireEqual does, their
// attempts one by one.
func requireDeliveryEqual(t *testing.T, want, got webhooks.Delivery) {
	t.Helper()
	if len(want.Attempts) != len(got.Attempts) {
		t.Fatalf("delivery %s has %d attempts, want %d", want.ID, len(got.Attempts), len(want.Attempts))
	}
	for i := range want.Attempts {
		requireEqual(t, want.Attempts[i], got.Attempts[i])
	}
	want.Attempts, got.Attempts = nil, nil
	requireEqual(t, want, got)
}
