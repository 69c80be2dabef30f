package sqlite

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// TestNarrowUpdatesStoreTheWholeRow takes a row through a lifecycle that
// moves every kind of column (edits of the schedule and payload, a defer,
// claims with their lease and owner, a failure's last_error, a send's
// message id, delivery reports, a cancel of a second row), and after each
// transition reads the row back: it must be exactly the row the change
// meant (what a full UPDATE writes), although the store set only the
// columns that differ from the row the transition started from. A change
// whose Before is at another version, or absent, writes every column.
func TestNarrowUpdatesStoreTheWholeRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "dispatcher.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)
	if err := s.CreateCompany(ctx, comms.Company{ID: "co", Credits: 10, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	create := func() comms.Communication {
		ch := newRow("co", now)
		ch.Row.MaxAttempts = 3
		if _, err := s.CreateCommunication(ctx, ch, nil); err != nil {
			t.Fatal(err)
		}
		return asStored(ch.Row, 1)
	}
	step := 0
	apply := func(ch comms.Change, err error) comms.Communication {
		t.Helper()
		step++
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		stored, _, err := s.UpdateCommunication(ctx, ch, false)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		got, err := s.GetCommunication(ctx, "co", ch.Row.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, stored) {
			t.Fatalf("step %d: read back\n %+v\nwant\n %+v", step, got, stored)
		}
		return stored
	}
	at := func(min int) time.Time { return now.Add(time.Duration(min) * time.Minute) }

	row := create()
	next := row
	next.ScheduledFor, next.NextAttemptAt = at(90), at(90)
	next.Payload = json.RawMessage(`{"to_email":"b@example.com","subject":"edited"}`)
	next.ContactID = "contact-1"
	row = apply(comms.Reschedule(row, next, at(1)))
	row = apply(comms.Defer(row, comms.DeferBusinessHours, at(120), at(90)))
	claim, err := comms.Claim(row, at(122), at(120))
	claim.Row.LeaseOwner = "instance-a" // as the dispatcher sets it
	row = apply(claim, err)
	row = apply(comms.RecordTransientFailure(row, comms.LastError{Code: "throttled", Message: "slow down"}, at(125), at(121)))
	row = apply(comms.Claim(row, at(127), at(125)))
	row = apply(comms.RecordSent(row, "msg-1", at(126)))
	row = apply(comms.RecordDelivery(row, comms.DeliveryReport{Status: comms.DeliveryDelivered, ProviderMessageID: "msg-1",
		Attempt: 1, At: at(127), Detail: "250 ok"}, at(127)))
	row = apply(comms.RecordDelivery(row, comms.DeliveryReport{Status: comms.DeliveryComplained, ProviderMessageID: "msg-1",
		Attempt: 1, At: at(128), Detail: "abuse"}, at(128)))
	if row.Status != comms.StatusSent || row.Delivery.Status != comms.DeliveryComplained || row.LastError != nil {
		t.Fatalf("final row %+v", row)
	}
	other := create()
	apply(comms.Cancel(other, comms.CancelAPI, at(2)))

	s.narrow.mu.Lock()
	narrow := len(s.narrow.m)
	s.narrow.mu.Unlock()
	if narrow == 0 {
		t.Fatal("no narrow UPDATE was prepared: every transition set every column")
	}

	// A Before at another version than the write (a change not made from
	// the stored row), or none, sets every column.
	stale := create()
	ch, err := comms.Cancel(stale, comms.CancelAPI, at(3))
	ch.Before = &comms.Communication{ID: stale.ID, CompanyID: "co", Version: stale.Version + 1}
	apply(ch, err)
	if u, err := s.rowUpdate(ctx, ch, mustArgs(t, ch.Row)); err != nil || u.stmt != s.prepared[updateComm] {
		t.Fatalf("a Before at another version: %v, narrow statement", err)
	}
	ch.Before = nil
	if u, err := s.rowUpdate(ctx, ch, mustArgs(t, ch.Row)); err != nil || u.stmt != s.prepared[updateComm] {
		t.Fatalf("no Before: %v, narrow statement", err)
	}
}

func mustArgs(t *testing.T, c comms.Communication) []any {
	t.Helper()
	args, err := commArgs(c)
	if err != nil {
		t.Fatal(err)
	}
	return args
}
