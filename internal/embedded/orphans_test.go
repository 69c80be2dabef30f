package embedded_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/channel/devsink"
	"github.com/dispatcherhq/dispatcher/internal/clock"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/embedded"
)

// TestRestartSettlesThePredecessorsAttemptsAtOnce: a process died with
// three attempts in flight — one never sent, one sent but not recorded, one
// on the row's last attempt and never sent. The next process, started on the
// same data, settles all three at start-up, without the clock moving (no
// lease expiry, no sweeper grace): the unsent ones are sent without their
// crashed attempt counting, the sent one is recorded from the outbox and not
// sent again.
func TestRestartSettlesThePredecessorsAttemptsAtOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clk := clock.NewFake(base)
	first := startNode(t, dir, dispatch.Config{}, clk)
	var ids []string
	for range 3 {
		ids = append(ids, first.create(t, emailAt(base.Add(time.Hour), "sarah@example.com")))
	}
	first.stop()

	// What the dead process left: its claims, under its own instance id.
	ctx := context.Background()
	store, err := embedded.OpenStore(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := devsink.Open(filepath.Join(dir, embedded.OutboxFile), clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		row, err := store.GetCommunication(ctx, app.DevCompany, id)
		if err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			row.AttemptCount = row.MaxAttempts - 1 // its claim is the last attempt
		}
		ch, err := comms.Claim(row, base.Add(2*time.Minute), base)
		if err != nil {
			t.Fatal(err)
		}
		ch.Row.LeaseOwner = "the-dead-process"
		if _, _, err := store.UpdateCommunication(ctx, ch, false); err != nil {
			t.Fatal(err)
		}
		if i == 1 { // sent, and killed before recording it
			if _, err := sink.SendEmail(ctx, dispatch.Email{CommunicationID: id, CompanyID: app.DevCompany,
				Attempt: ch.Row.AttemptCount, To: "sarah@example.com", From: "a@example.com"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	sink.Close()
	store.Close()

	second := startNode(t, dir, dispatch.Config{}, clk) // the clock has not moved
	defer second.stop()
	rows := waitTerminal(t, second, ids, patience)
	lines := outbox(t, dir)
	for i, id := range ids {
		row := rows[id]
		wantAttempts := []int{1, 1, 3}[i]
		if row.Status != comms.StatusSent || row.AttemptCount != wantAttempts || len(lines[id]) != 1 {
			t.Errorf("row %d: %s after %d attempts with %d outbox lines; want sent after %d, one line",
				i, row.Status, row.AttemptCount, len(lines[id]), wantAttempts)
		}
	}
	if !clk.Now().Equal(base) {
		t.Fatal("the clock moved")
	}
}

// TestOneProcessPerDataDirectory: a second process cannot serve a data
// directory another one serves (so the first one's claims are never taken
// for a dead predecessor's).
func TestOneProcessPerDataDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	n := startNode(t, dir, dispatch.Config{}, clock.NewFake(base))
	defer n.stop()
	_, err := embedded.NewLocal(context.Background(), embedded.LocalConfig{DataDir: dir}, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "another dispatcher serve is running") {
		t.Fatalf("a second process on the same data: %v", err)
	}
}

// TestNoProviderReportIsLostToAStopOrACrash: the dev providers' reports
// arrive reportDelay after a send, as SES's do. A process stopped before
// they were due records them as it stops; one killed before (here: its
// bounce@ email sent and not recorded, its report never recorded) has them
// replayed from the outbox at the next start — the row ends bounced and the
// address suppressed without the clock moving.
func TestNoProviderReportIsLostToAStopOrACrash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bounced := func(t *testing.T, n *node, id string) {
		t.Helper()
		n.waitRow(t, id, "bounced", func(r comms.Communication) bool { return r.Delivery.Status == comms.DeliveryBounced })
		if _, err := n.l.Store.GetSuppression(ctx, app.DevCompany, comms.SuppressEmail, devsink.SimulatorBounce); err != nil {
			t.Fatalf("the bounced address is not suppressed: %v", err)
		}
	}

	t.Run("Stop", func(t *testing.T) {
		dir := t.TempDir()
		clk := clock.NewFake(base)
		first := startNode(t, dir, dispatch.Config{}, clk)
		id := first.create(t, emailAt(base, devsink.SimulatorBounce))
		first.waitRow(t, id, "sent", func(r comms.Communication) bool { return r.Status == comms.StatusSent })
		first.stop() // the clock never reached the report's time
		second := startNode(t, dir, dispatch.Config{}, clk)
		defer second.stop()
		bounced(t, second, id)
	})

	t.Run("Crash", func(t *testing.T) {
		dir := t.TempDir()
		clk := clock.NewFake(base)
		first := startNode(t, dir, dispatch.Config{}, clk)
		id := first.create(t, emailAt(base.Add(time.Hour), devsink.SimulatorBounce))
		first.stop()
		// What the killed process left: its claim, and the outbox line of a
		// send whose result and reports it never recorded.
		store, err := embedded.OpenStore(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		sink, err := devsink.Open(filepath.Join(dir, embedded.OutboxFile), clk.Now)
		if err != nil {
			t.Fatal(err)
		}
		row, err := store.GetCommunication(ctx, app.DevCompany, id)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := comms.Claim(row, base.Add(2*time.Minute), base)
		if err != nil {
			t.Fatal(err)
		}
		ch.Row.LeaseOwner = "the-dead-process"
		if _, _, err := store.UpdateCommunication(ctx, ch, false); err != nil {
			t.Fatal(err)
		}
		if _, err := sink.SendEmail(ctx, dispatch.Email{CommunicationID: id, CompanyID: app.DevCompany,
			Attempt: ch.Row.AttemptCount, To: devsink.SimulatorBounce, From: "a@example.com"}); err != nil {
			t.Fatal(err)
		}
		sink.Close()
		store.Close()

		second := startNode(t, dir, dispatch.Config{}, clk) // the clock has not moved
		defer second.stop()
		bounced(t, second, id)
		if lines := outbox(t, dir)[id]; len(lines) != 1 {
			t.Fatalf("%d outbox lines, want the one the dead process wrote", len(lines))
		}
	})
}
