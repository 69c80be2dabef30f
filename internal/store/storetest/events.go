package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// created stores a new row through the lifecycle's Create at at and returns
// it as stored, with its created event.
func (b *bundle) created(t *testing.T, companyID string, at time.Time) comms.Communication {
	t.Helper()
	ch := comms.Create(b.comm(companyID, at), at)
	_, err := b.store.CreateCommunication(b.ctx, ch, nil)
	requireNoError(t, err)
	row := ch.Row
	row.Version = 1
	return row
}

// apply returns a function that writes a transition's change and returns
// the row as stored: b.apply(t)(comms.Claim(…)).
func (b *bundle) apply(t *testing.T) func(comms.Change, error) comms.Communication {
	return func(ch comms.Change, err error) comms.Communication {
		t.Helper()
		requireNoError(t, err)
		stored, _, err := b.store.UpdateCommunication(b.ctx, ch, false)
		requireNoError(t, err)
		return stored
	}
}

// history reads a row's whole history, page by page of size limit.
func (b *bundle) history(t *testing.T, companyID, id string, limit int) []comms.Event {
	t.Helper()
	var all []comms.Event
	after := int64(0)
	for page := 0; ; page++ {
		evs, more, err := b.store.ListEvents(b.ctx, companyID, id, after, limit)
		requireNoError(t, err)
		if len(evs) > limit {
			t.Fatalf("ListEvents returned %d events, limit %d", len(evs), limit)
		}
		all = append(all, evs...)
		if !more {
			return all
		}
		if len(evs) == 0 || page > 1000 {
			t.Fatalf("ListEvents says more but returned %d events", len(evs))
		}
		after = evs[len(evs)-1].Sequence
	}
}

// lifecycle takes a row through a failed attempt, a retry and a send,
// starting at base: seven events in all.
func (b *bundle) lifecycle(t *testing.T, companyID string, base time.Time) comms.Communication {
	t.Helper()
	row := b.created(t, companyID, base)
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	row = b.apply(t)(comms.Defer(row, comms.DeferBusinessHours, at(10), at(1)))
	row = b.apply(t)(comms.Claim(row, at(130), at(10)))
	row = b.apply(t)(comms.RecordTransientFailure(row, comms.LastError{Code: "throttled", Message: "slow down"}, at(40), at(11)))
	row = b.apply(t)(comms.Claim(row, at(160), at(40)))
	return b.apply(t)(comms.RecordSent(row, "msg-1", at(41)))
}

func (s suite) events(t *testing.T) {
	t.Run("CreateWritesTheCreatedEvent", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		ch := comms.Create(b.comm(b.company.ID, b.now.Add(time.Hour)), b.now)
		_, err := b.store.CreateCommunication(b.ctx, ch, nil)
		requireNoError(t, err)
		got := b.history(t, b.company.ID, ch.Row.ID, 10)
		if len(got) != 1 {
			t.Fatalf("history of a new row: %d events, want 1", len(got))
		}
		requireEqual(t, ch.Events[0], got[0])
		if got[0].At.Location() != time.UTC {
			t.Errorf("event time in %v, want UTC", got[0].At.Location())
		}
		row, err := b.store.GetCommunication(b.ctx, b.company.ID, ch.Row.ID)
		requireNoError(t, err)
		if row.EventSeq != 1 {
			t.Fatalf("row EventSeq = %d after its create, want 1", row.EventSeq)
		}
	})

	t.Run("TransitionsAppendInOrderWithoutGaps", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		row := b.lifecycle(t, b.company.ID, b.now)
		want := []comms.EventType{comms.EventCreated, comms.EventDeferred, comms.EventAttemptStarted,
			comms.EventAttemptFailed, comms.EventAttemptStarted, comms.EventSent}
		for _, limit := range []int{1, 2, 4, 100} {
			got := b.history(t, b.company.ID, row.ID, limit)
			if len(got) != len(want) {
				t.Fatalf("limit %d: %d events, want %d: %+v", limit, len(got), len(want), got)
			}
			for i, e := range got {
				if e.Sequence != int64(i+1) || e.Type != want[i] || e.CommunicationID != row.ID || e.ID != comms.EventID(row.ID, e.Sequence) {
					t.Fatalf("limit %d: event %d = seq %d %s of %s (id %s), want seq %d %s", limit, i, e.Sequence, e.Type, e.CommunicationID, e.ID, i+1, want[i])
				}
			}
		}
		if row.EventSeq != int64(len(want)) {
			t.Fatalf("row EventSeq = %d, want %d", row.EventSeq, len(want))
		}
		tail, more, err := b.store.ListEvents(b.ctx, b.company.ID, row.ID, 4, 10)
		requireNoError(t, err)
		if more || len(tail) != 2 || tail[0].Sequence != 5 {
			t.Fatalf("after sequence 4: %d events (more %v), want 5 and 6", len(tail), more)
		}
	})

	t.Run("LosingCompareAndSwapWritesNoEvent", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		row := b.created(t, b.company.ID, b.now)
		first, err := comms.Claim(row, b.now.Add(2*time.Minute), b.now)
		requireNoError(t, err)
		second, err := comms.Cancel(row, comms.CancelAPI, b.now)
		requireNoError(t, err)
		_, _, err = b.store.UpdateCommunication(b.ctx, first, false)
		requireNoError(t, err)
		for _, debit := range []bool{false, true} {
			_, _, err = b.store.UpdateCommunication(b.ctx, second, debit)
			requireErrorIs(t, err, comms.ErrConflict)
		}
		got := b.history(t, b.company.ID, row.ID, 10)
		if len(got) != 2 || got[1].Type != comms.EventAttemptStarted {
			t.Fatalf("history after a lost race: %+v, want created and attempt_started only", got)
		}
		if c := b.credits(t, b.company.ID); c != startCredits-1 {
			t.Fatalf("credits = %d, want %d: a lost race debits nothing", c, startCredits-1)
		}
	})

	t.Run("RefusedDebitWritesNoEvent", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		co := b.newCompany(t, 1)
		row := b.created(t, co.ID, b.now)
		edit := row
		edit.ScheduledFor = b.now.Add(time.Hour)
		ch, err := comms.Reschedule(row, edit, b.now)
		requireNoError(t, err)
		_, _, err = b.store.UpdateCommunication(b.ctx, ch, true)
		requireErrorIs(t, err, comms.ErrInsufficientCredits)
		if got := b.history(t, co.ID, row.ID, 10); len(got) != 1 {
			t.Fatalf("history after a refused debit: %d events, want the created one only", len(got))
		}
	})

	t.Run("DebitingChangeWritesItsEvents", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		row := b.created(t, b.company.ID, b.now)
		edit := row
		edit.ScheduledFor, edit.NextAttemptAt = b.now.Add(time.Hour), b.now.Add(time.Hour)
		ch, err := comms.Reschedule(row, edit, b.now.Add(time.Second))
		requireNoError(t, err)
		_, credits, err := b.store.UpdateCommunication(b.ctx, ch, true)
		requireNoError(t, err)
		if credits != startCredits-2 {
			t.Fatalf("credits = %d, want %d", credits, startCredits-2)
		}
		got := b.history(t, b.company.ID, row.ID, 10)
		if len(got) != 2 || got[1].Type != comms.EventRescheduled || string(got[1].Data) != string(ch.Events[0].Data) {
			t.Fatalf("history: %+v, want created then rescheduled with %s", got, ch.Events[0].Data)
		}
	})

	t.Run("InsertWritesTheNewRowsEvents", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		root := b.created(t, b.company.ID, b.now)
		root.Channel = comms.ChannelVoice
		root = b.apply(t)(comms.Claim(root, b.now.Add(time.Minute), b.now))
		root = b.apply(t)(comms.RecordCallPlaced(root, "call-1", b.now.Add(30*time.Minute), b.now))
		next := b.comm(b.company.ID, b.now.Add(2*time.Hour))
		next.Source = comms.SourceCadence
		ch, err := comms.RecordOutcome(root, comms.Outcome{EndedReason: "no_answer"}, &next, "", b.now.Add(time.Minute))
		requireNoError(t, err)
		_, _, err = b.store.UpdateCommunication(b.ctx, ch, false)
		requireNoError(t, err)
		rootEvents := b.history(t, b.company.ID, root.ID, 10)
		if n := len(rootEvents); n != 5 || rootEvents[3].Type != comms.EventOutcomeRecorded || rootEvents[4].Type != comms.EventFollowUpCreated {
			t.Fatalf("root history %+v, want … outcome_recorded, follow_up_created", rootEvents)
		}
		child := b.history(t, b.company.ID, next.ID, 10)
		if len(child) != 1 || child[0].Type != comms.EventCreated || child[0].Sequence != 1 {
			t.Fatalf("follow-up history %+v, want one created event", child)
		}
	})

	t.Run("ScopedToTheCompany", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		row := b.created(t, b.company.ID, b.now)
		other := b.newCompany(t, 10)
		evs, more, err := b.store.ListEvents(b.ctx, other.ID, row.ID, 0, 10)
		requireNoError(t, err)
		if len(evs) != 0 || more {
			t.Fatalf("another company read %d events of the row", len(evs))
		}
		feed, _, _, err := b.store.ListCompanyEvents(b.ctx, other.ID, comms.EventFilter{Limit: 100, Now: b.now.Add(time.Hour)})
		requireNoError(t, err)
		if len(feed) != 0 {
			t.Fatalf("another company's feed holds %d events of this one", len(feed))
		}
	})
}

// feed reads the company's whole feed from after, page by page.
func (b *bundle) feed(t *testing.T, companyID string, f comms.EventFilter) ([]comms.Event, string) {
	t.Helper()
	var all []comms.Event
	for page := 0; ; page++ {
		evs, next, more, err := b.store.ListCompanyEvents(b.ctx, companyID, f)
		requireNoError(t, err)
		if len(evs) > f.Limit {
			t.Fatalf("ListCompanyEvents returned %d events, limit %d", len(evs), f.Limit)
		}
		all = append(all, evs...)
		if len(evs) > 0 && next == f.After {
			t.Fatalf("the cursor did not move past %d events", len(evs))
		}
		if next == "" && (len(evs) > 0 || f.After != "") {
			t.Fatalf("no cursor after a page of %d events", len(evs))
		}
		f.After = next
		if !more {
			return all, f.After
		}
		if page > 1000 {
			t.Fatal("the feed does not end")
		}
	}
}

// checkOnce fails unless got holds exactly the events of want, once each,
// and each row's events in sequence order.
func checkOnce(t *testing.T, got []comms.Event, want map[string]int64) {
	t.Helper()
	last := map[string]int64{}
	seen := map[string]bool{}
	for _, e := range got {
		if seen[e.ID] {
			t.Fatalf("event %s (seq %d of %s) returned twice", e.ID, e.Sequence, e.CommunicationID)
		}
		seen[e.ID] = true
		if e.Sequence != last[e.CommunicationID]+1 {
			t.Fatalf("row %s: event seq %d after %d", e.CommunicationID, e.Sequence, last[e.CommunicationID])
		}
		last[e.CommunicationID] = e.Sequence
	}
	for id, n := range want {
		if last[id] != n {
			t.Fatalf("row %s: the feed has %d of its %d events", id, last[id], n)
		}
	}
	if len(last) != len(want) {
		t.Fatalf("the feed has events of %d rows, want %d", len(last), len(want))
	}
}

func (s suite) companyEvents(t *testing.T) {
	later := func(b *bundle) time.Time { return b.now.Add(24 * time.Hour) }

	t.Run("PagesThroughEveryEventOnceInOrder", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		want := map[string]int64{}
		for i := range 4 {
			row := b.lifecycle(t, b.company.ID, b.now.Add(time.Duration(i)*time.Minute))
			want[row.ID] = row.EventSeq
		}
		var first []comms.Event
		for _, limit := range []int{1, 3, 7, 100} {
			got, _ := b.feed(t, b.company.ID, comms.EventFilter{Limit: limit, Now: later(b)})
			checkOnce(t, got, want)
			if first == nil {
				first = got
			}
			if !slices.EqualFunc(first, got, func(x, y comms.Event) bool { return x.ID == y.ID }) {
				t.Fatalf("limit %d reads the feed in another order", limit)
			}
			for i := 1; i < len(got); i++ {
				if got[i].At.Before(got[i-1].At) {
					t.Fatalf("event %d at %v before event %d at %v: written in time order, read out of it", i, got[i].At, i-1, got[i-1].At)
				}
			}
		}
	})

	t.Run("ACursorSeesOnlyLaterEvents", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		row := b.created(t, b.company.ID, b.now)
		got, cursor := b.feed(t, b.company.ID, comms.EventFilter{Limit: 10, Now: later(b)})
		if len(got) != 1 || cursor == "" {
			t.Fatalf("first read: %d events, cursor %q", len(got), cursor)
		}
		again, next, more, err := b.store.ListCompanyEvents(b.ctx, b.company.ID, comms.EventFilter{After: cursor, Limit: 10, Now: later(b)})
		requireNoError(t, err)
		if len(again) != 0 || more || next != cursor {
			t.Fatalf("at the end: %d events, more %v, cursor %q → %q; want none and the same cursor", len(again), more, cursor, next)
		}
		b.apply(t)(comms.Cancel(row, comms.CancelAPI, b.now.Add(time.Second)))
		other := b.created(t, b.company.ID, b.now.Add(2*time.Second))
		got, _ = b.feed(t, b.company.ID, comms.EventFilter{After: cursor, Limit: 10, Now: later(b)})
		if len(got) != 2 || got[0].Type != comms.EventCancelled || got[1].CommunicationID != other.ID {
			t.Fatalf("after the cursor: %+v, want the cancel and the new row's created", got)
		}
	})

	t.Run("FiltersByTypeAndTime", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		early := b.lifecycle(t, b.company.ID, b.now)
		late := b.lifecycle(t, b.company.ID, b.now.Add(time.Hour))
		got, _ := b.feed(t, b.company.ID, comms.EventFilter{Types: []comms.EventType{comms.EventSent, comms.EventAttemptFailed}, Limit: 1, Now: later(b)})
		if len(got) != 4 {
			t.Fatalf("sent and attempt_failed: %d events, want 4", len(got))
		}
		for _, e := range got {
			if e.Type != comms.EventSent && e.Type != comms.EventAttemptFailed {
				t.Fatalf("type filter let %s through", e.Type)
			}
		}
		got, _ = b.feed(t, b.company.ID, comms.EventFilter{CreatedAfter: b.now.Add(time.Hour), Limit: 2, Now: later(b)})
		checkOnce(t, got, map[string]int64{late.ID: late.EventSeq})
		// Bounds far outside what a store keeps times for: everything, or nothing.
		got, _ = b.feed(t, b.company.ID, comms.EventFilter{CreatedAfter: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), Limit: 100, Now: later(b)})
		checkOnce(t, got, map[string]int64{early.ID: early.EventSeq, late.ID: late.EventSeq})
		got, _ = b.feed(t, b.company.ID, comms.EventFilter{CreatedAfter: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), Limit: 100, Now: later(b)})
		if len(got) != 0 {
			t.Fatalf("created after the year 9999: %d events", len(got))
		}
	})

	t.Run("RejectsAForeignCursor", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		for _, c := range []string{"not a cursor", "-5", "2026-01-01"} {
			_, _, _, err := b.store.ListCompanyEvents(b.ctx, b.company.ID, comms.EventFilter{After: c, Limit: 10, Now: later(b)})
			requireErrorIs(t, err, comms.ErrBadCursor)
		}
	})

	t.Run("ConcurrentWritersLoseAndRepeatNothing", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		const rows = 12
		ids := make([]string, rows)
		var wg sync.WaitGroup
		for i := range rows {
			wg.Go(func() {
				row := b.lifecycle(t, b.company.ID, b.now.Add(time.Duration(i)*time.Millisecond))
				ids[i] = row.ID
			})
		}
		wg.Wait()
		want := map[string]int64{}
		for _, id := range ids {
			want[id] = 6
		}
		got, _ := b.feed(t, b.company.ID, comms.EventFilter{Limit: 5, Now: later(b)})
		checkOnce(t, got, want)
		if len(got) != rows*6 {
			t.Fatal(fmt.Sprintf("%d events, want %d", len(got), rows*6))
		}
	})
}
