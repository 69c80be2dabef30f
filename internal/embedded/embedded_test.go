package embedded_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/channel/devsink"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/embedded"
)

// node is one running embedded process over a data directory.
type node struct {
	l    *embedded.Local
	key  string
	stop func()
	done chan error
}

func startNode(t testing.TB, dir string, cfg dispatch.Config) *node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l, err := embedded.NewLocal(ctx, embedded.LocalConfig{DataDir: dir, SweepEvery: 200 * time.Millisecond, Dispatch: cfg},
		slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := app.EnsureDevCompany(ctx, l.Store, dir)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{l: l, key: key, done: make(chan error, 1)}
	go func() { n.done <- l.Run(ctx) }()
	n.stop = func() {
		cancel()
		if err := <-n.done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	return n
}

func (n *node) create(t testing.TB, body string) string {
	t.Helper()
	req := httptest.NewRequest("POST", "/v1/scheduled-communications", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+n.key)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	n.l.API.ServeHTTP(rec, req)
	if rec.Code != 201 {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	var r struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &r)
	return r.Data.ID
}

func emailAt(at time.Time, to string) string {
	return fmt.Sprintf(`{"channel":"email","scheduled_for":%q,"payload":{"to_email":%q,"subject":"Hi","html_body":"<p>Hi</p>"}}`,
		at.UTC().Format(time.RFC3339Nano), to)
}

// waitTerminal polls the store until every row is terminal or the
// deadline passes (a bound for a broken build, not a timing assertion).
func waitTerminal(t testing.TB, n *node, ids []string, within time.Duration) map[string]comms.Communication {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		rows := map[string]comms.Communication{}
		for _, id := range ids {
			row, err := n.l.Store.GetCommunication(context.Background(), app.DevCompany, id)
			if err != nil {
				t.Fatal(err)
			}
			if row.Status.Terminal() {
				rows[id] = row
			}
		}
		if len(rows) == len(ids) {
			return rows
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d rows terminal after %v", len(rows), len(ids), within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRestartLosesNothing stops the process while fires are armed, starts
// it again on the same data directory, and checks that every row reaches
// its terminal state exactly once.
func TestRestartLosesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := startNode(t, dir, dispatch.Config{BackoffBase: 50 * time.Millisecond})
	var ids []string
	now := time.Now()
	for i := range 40 {
		to := "sarah@example.com"
		if i%10 == 3 {
			to = "bounce@simulator.amazonses.com"
		}
		ids = append(ids, first.create(t, emailAt(now.Add(time.Duration(i)*50*time.Millisecond), to)))
	}
	time.Sleep(500 * time.Millisecond) // some rows delivered, most still armed
	first.stop()

	second := startNode(t, dir, dispatch.Config{BackoffBase: 50 * time.Millisecond})
	defer second.stop()
	rows := waitTerminal(t, second, ids, 30*time.Second)
	lines, err := devsink.ReadOutbox(filepath.Join(dir, embedded.OutboxFile))
	if err != nil {
		t.Fatal(err)
	}
	perRow := map[string]int{}
	for _, l := range lines {
		perRow[l.CommunicationID]++
	}
	for i, id := range ids {
		want := comms.StatusSent
		if i%10 == 3 {
			want = comms.StatusFailed
		}
		if rows[id].Status != want || rows[id].AttemptCount != 1 || perRow[id] != 1 {
			t.Errorf("row %d: %s after %d attempts, %d outbox lines", i, rows[id].Status, rows[id].AttemptCount, perRow[id])
		}
	}
}

// TestTransientRetriesEndToEnd: a +transient address fails after exactly
// three attempts, with growing gaps between them.
func TestTransientRetriesEndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	n := startNode(t, dir, dispatch.Config{BackoffBase: 100 * time.Millisecond})
	defer n.stop()
	id := n.create(t, emailAt(time.Now(), "sarah+transient@example.com"))
	row := waitTerminal(t, n, []string{id}, 30*time.Second)[id]
	if row.Status != comms.StatusFailed || row.AttemptCount != 3 || row.LastError.Code != "throttled" {
		t.Fatalf("row = %s after %d attempts: %+v", row.Status, row.AttemptCount, row.LastError)
	}
	lines, _ := devsink.ReadOutbox(filepath.Join(dir, embedded.OutboxFile))
	var at []time.Time
	for _, l := range lines {
		if l.CommunicationID == id {
			at = append(at, l.At)
		}
	}
	// Equal jitter: the first gap is within [50, 100] ms, the second within
	// [100, 200] ms. Lower bounds only: a loaded machine may deliver late, never early.
	if len(at) != 3 || at[1].Sub(at[0]) < 50*time.Millisecond || at[2].Sub(at[1]) < 100*time.Millisecond {
		t.Errorf("attempts at %v: want 3, the second gap at least twice the first's floor", at)
	}
}
