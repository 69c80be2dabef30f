package embedded_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/clock"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
)

// until waits for cond, which must come true; patience bounds a broken
// build, it is not a timing assertion.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s after %v", what, patience)
		}
		time.Sleep(time.Millisecond) // poll interval
	}
}

// eventsOf lists a row's events of the dev company.
func eventsOf(t *testing.T, n *node, id string) []comms.Event {
	t.Helper()
	evs, _, err := n.l.Store.ListEvents(context.Background(), app.DevCompany, id, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestOurOwnDiskErrorUsesUpNoAttempt: while the dev sink cannot write its
// outbox (a full disk), an email due now is tried again and again — more
// often than it has attempts — and stays pending with no attempt used;
// once the disk has room it is sent as attempt 1.
func TestOurOwnDiskErrorUsesUpNoAttempt(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(base)
	n := startNode(t, t.TempDir(), dispatch.Config{InfraRetry: time.Second}, clk)
	defer n.stop()
	n.l.Outbox.FailWrites(syscall.ENOSPC)
	id := n.create(t, emailAt(base, "sarah@example.com"))
	st := n.l.Dispatcher.Stats()
	const tries = 5 // more than the 3 attempts an email has
	for i := int64(1); i <= tries; i++ {
		clk.Advance(time.Second) // past the retry (half to all of InfraRetry)
		until(t, "given back", func() bool { return st.Unsent.Load() >= i })
	}
	row := n.waitRow(t, id, "pending again", func(c comms.Communication) bool { return c.Status == comms.StatusPending })
	if row.AttemptCount != 0 || row.LastError == nil || row.LastError.Code != "not_sent" {
		t.Fatalf("after %d failed writes of our own: %d attempts, last error %+v; want 0 attempts, not_sent", tries, row.AttemptCount, row.LastError)
	}
	if lines := outbox(t, n.dir)[id]; len(lines) != 0 {
		t.Fatalf("outbox lines for a send that was never written: %+v", lines)
	}

	n.l.Outbox.FailWrites(nil) // space freed
	clk.Advance(time.Second)
	row = n.waitRow(t, id, "sent", func(c comms.Communication) bool { return c.Status == comms.StatusSent })
	if row.AttemptCount != 1 {
		t.Fatalf("sent with attempt_count %d, want 1", row.AttemptCount)
	}
	if lines := outbox(t, n.dir)[id]; len(lines) != 1 || lines[0].Attempt != 1 {
		t.Fatalf("outbox: %+v, want one line, attempt 1", lines)
	}
	unsent := 0
	for _, e := range eventsOf(t, n, id) {
		if e.Type != comms.EventAttemptFailed {
			continue
		}
		var d struct {
			Attempt int   `json:"attempt"`
			Counted *bool `json:"counted"`
		}
		if err := json.Unmarshal(e.Data, &d); err != nil || d.Counted == nil || *d.Counted || d.Attempt != 1 {
			t.Fatalf("attempt_failed %s (%v): want attempt 1, counted false", e.Data, err)
		}
		unsent++
	}
	if unsent < tries {
		t.Fatalf("%d attempt_failed events (not counted), want ≥ %d", unsent, tries)
	}
}

// TestStoreOutageRetriesFiresWithinSeconds: while the store refuses writes
// (a read-only or full database), rows that come due cannot be claimed; their
// fires are armed again with backoff rather than dropped, so once the store
// takes writes again every row is sent within the backoff's cap (5 s) — well
// inside the sweeper's one-minute grace, which never gets to act here —
// and readiness fails only while the outage lasts.
func TestStoreOutageRetriesFiresWithinSeconds(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(base)
	n := startNode(t, t.TempDir(), dispatch.Config{}, clk)
	defer n.stop()
	var ids []string
	for i := range 5 {
		ids = append(ids, n.create(t, emailAt(base.Add(time.Second+time.Duration(i)*time.Millisecond), "sarah@example.com")))
	}
	ready := func() int {
		rec := httptest.NewRecorder()
		n.l.API.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		return rec.Code
	}
	if err := n.l.Store.RefuseWrites(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	// 30 s of outage, in steps: every fire fails, is armed again, fails again.
	for range 30 {
		clk.Advance(time.Second)
		until(t, "the failed fires armed again", func() bool { return n.l.Timer.Len() >= len(ids) })
	}
	if got := ready(); got != 503 {
		t.Fatalf("/readyz = %d while the store refuses writes, want 503", got)
	}
	for _, id := range ids {
		if row := n.get(t, id); row.Status != comms.StatusPending || row.AttemptCount != 0 {
			t.Fatalf("row %s during the outage: %s, %d attempts", id, row.Status, row.AttemptCount)
		}
	}
	if err := n.l.Store.RefuseWrites(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	for range 5 { // the backoff's cap: every fire is tried again within it
		clk.Advance(time.Second)
	}
	rows := waitTerminal(t, n, ids, patience)
	for id, row := range rows {
		if row.Status != comms.StatusSent || row.AttemptCount != 1 {
			t.Fatalf("row %s: %s after %d attempts, want sent after 1", id, row.Status, row.AttemptCount)
		}
	}
	if got := ready(); got != 200 {
		t.Fatalf("/readyz = %d after the outage, want 200", got)
	}
}
