package embedded_test

import (
	"context"
	"encoding/json"
	"errors"
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
	"github.com/dispatcherhq/dispatcher/internal/clock"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/embedded"
)

// The tests run the process on a fake clock that starts at base and moves
// only when a test moves it: what is due, when the sweeper runs and when
// the voice simulator answers is decided by the test, not by how busy the
// machine is. Waiting is only ever for something that must happen, bounded
// by patience.
var base = time.Date(2030, 1, 7, 9, 0, 0, 0, time.UTC)

// patience bounds a wait for something that must happen; it is a bound for
// a broken build, never a timing assertion.
const patience = 20 * time.Second

// node is one running embedded process over a data directory.
type node struct {
	l    *embedded.Local
	dir  string
	key  string
	stop func()
	done chan error
}

// startNode runs the embedded process on dir, on clk when it is not nil
// (tests) or on the wall clock (benchmarks).
func startNode(t testing.TB, dir string, cfg dispatch.Config, clk *clock.Fake) *node {
	t.Helper()
	return startNodeWith(t, embedded.LocalConfig{DataDir: dir, SweepEvery: 200 * time.Millisecond, Dispatch: cfg}, clk)
}

// startNodeWith is startNode with the whole configuration.
func startNodeWith(t testing.TB, lc embedded.LocalConfig, clk *clock.Fake) *node {
	t.Helper()
	dir := lc.DataDir
	ctx, cancel := context.WithCancel(context.Background())
	if clk != nil {
		lc.Clock = clk
	}
	l, err := embedded.NewLocal(ctx, lc, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := app.EnsureDevCompany(ctx, l.Store, dir)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{l: l, dir: dir, key: key, done: make(chan error, 1)}
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

// post creates a row and returns the status code alone.
func (n *node) post(t testing.TB, body string) int {
	t.Helper()
	req := httptest.NewRequest("POST", "/v1/scheduled-communications", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+n.key)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	n.l.API.ServeHTTP(rec, req)
	return rec.Code
}

func (n *node) create(t testing.TB, body string) string {
	t.Helper()
	id, err := n.tryCreate(body)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// tryCreate is create for any goroutine: it returns what went wrong.
func (n *node) tryCreate(body string) (string, error) {
	req := httptest.NewRequest("POST", "/v1/scheduled-communications", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+n.key)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	n.l.API.ServeHTTP(rec, req)
	if rec.Code != 201 {
		return "", fmt.Errorf("create: %d %s", rec.Code, rec.Body)
	}
	var r struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || r.Data.ID == "" {
		return "", fmt.Errorf("create: no id in %s (%v)", rec.Body, err)
	}
	return r.Data.ID, nil
}

func emailAt(at time.Time, to string) string {
	return fmt.Sprintf(`{"channel":"email","scheduled_for":%q,"payload":{"to_email":%q,"subject":"Hi","html_body":"<p>Hi</p>"}}`,
		at.UTC().Format(time.RFC3339Nano), to)
}

// get reads a row of the dev company from the store.
func (n *node) get(t testing.TB, id string) comms.Communication {
	t.Helper()
	row, err := n.l.Store.GetCommunication(context.Background(), app.DevCompany, id)
	if err != nil {
		t.Fatal(err)
	}
	return row
}

// waitRow polls the store until the row exists and satisfies ok, and
// returns it.
func (n *node) waitRow(t testing.TB, id, what string, ok func(comms.Communication) bool) comms.Communication {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		row, err := n.l.Store.GetCommunication(context.Background(), app.DevCompany, id)
		if err != nil && !errors.Is(err, comms.ErrNotFound) {
			t.Fatal(err)
		}
		if err == nil && ok(row) {
			return row
		}
		if time.Now().After(deadline) {
			t.Fatalf("row %s: not %s after %v: %s, %d attempts, last error %+v, outcome %+v",
				id, what, patience, row.Status, row.AttemptCount, row.LastError, row.Outcome)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

// waitTerminal polls the store until every row is terminal or the
// deadline passes (a bound for a broken build, not a timing assertion).
func waitTerminal(t testing.TB, n *node, ids []string, within time.Duration) map[string]comms.Communication {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		rows := map[string]comms.Communication{}
		for _, id := range ids {
			if row := n.get(t, id); row.Status.Terminal() {
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

// outbox reads the outbox lines of dir, per row.
func outbox(t testing.TB, dir string) map[string][]devsink.Line {
	t.Helper()
	lines, err := devsink.ReadOutbox(filepath.Join(dir, embedded.OutboxFile))
	if err != nil {
		t.Fatal(err)
	}
	perRow := map[string][]devsink.Line{}
	for _, l := range lines {
		perRow[l.CommunicationID] = append(perRow[l.CommunicationID], l)
	}
	return perRow
}

// TestRestartLosesNothing stops the process while fires are armed, starts
// it again on the same data directory, and checks that every row reaches
// its terminal state exactly once.
func TestRestartLosesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clk := clock.NewFake(base)
	cfg := dispatch.Config{BackoffBase: 50 * time.Millisecond}
	first := startNode(t, dir, cfg, clk)
	// 40 rows 50 ms apart; every tenth (3, 13, …) goes to a bouncing
	// mailbox: sent (SES accepts it), then reported bounced.
	var ids []string
	want := func(int) comms.Status { return comms.StatusSent }
	for i := range 40 {
		to := "sarah@example.com"
		if i%10 == 3 {
			to = fmt.Sprintf("bounce+%d@simulator.amazonses.com", i)
		}
		ids = append(ids, first.create(t, emailAt(base.Add(time.Duration(i)*50*time.Millisecond), to)))
	}
	// Rows 0–10 come due and are delivered; 11–39 are still armed when the
	// process stops.
	const delivered = 11
	clk.Advance(500 * time.Millisecond)
	waitTerminal(t, first, ids[:delivered], patience)
	first.stop()
	before := outbox(t, dir)
	for i, id := range ids {
		if got, wantLines := len(before[id]), map[bool]int{true: 1, false: 0}[i < delivered]; got != wantLines {
			t.Errorf("row %d: %d outbox lines before the restart, want %d", i, got, wantLines)
		}
	}

	second := startNode(t, dir, cfg, clk)
	defer second.stop()
	clk.Advance(2 * time.Second) // past every row's time
	rows := waitTerminal(t, second, ids, patience)
	perRow := outbox(t, dir)
	for i, id := range ids {
		if rows[id].Status != want(i) || rows[id].AttemptCount != 1 || len(perRow[id]) != 1 {
			t.Errorf("row %d: %s after %d attempts, %d outbox lines; want %s after 1, 1 line",
				i, rows[id].Status, rows[id].AttemptCount, len(perRow[id]), want(i))
		}
	}
}

// TestTransientRetriesEndToEnd: a +transient address fails after exactly
// three attempts, each retry after the backoff's equal-jitter delay.
func TestTransientRetriesEndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clk := clock.NewFake(base)
	const backoffBase = 100 * time.Millisecond
	n := startNode(t, dir, dispatch.Config{BackoffBase: backoffBase}, clk)
	defer n.stop()
	id := n.create(t, emailAt(base, "sarah+transient@example.com"))

	attemptAt := []time.Time{base}
	var row comms.Communication
	for attempt := 1; ; attempt++ {
		row = n.waitRow(t, id, fmt.Sprintf("settled after attempt %d", attempt), func(r comms.Communication) bool {
			return r.AttemptCount == attempt && r.Status != comms.StatusProcessing
		})
		if row.Status != comms.StatusPending {
			break
		}
		// Equal jitter: the wait after attempt k is within [step/2, step],
		// step = base·2^(k-1).
		step := backoffBase << (attempt - 1)
		if gap := row.NextAttemptAt.Sub(clk.Now()); gap < step/2 || gap > step {
			t.Errorf("retry %d due %v after attempt %d, want within [%v, %v]", attempt, gap, attempt, step/2, step)
		}
		clk.Set(row.NextAttemptAt)
		attemptAt = append(attemptAt, row.NextAttemptAt)
	}
	if row.Status != comms.StatusFailed || row.AttemptCount != 3 || row.LastError == nil || row.LastError.Code != "throttled" {
		t.Fatalf("row = %s after %d attempts: %+v", row.Status, row.AttemptCount, row.LastError)
	}
	lines := outbox(t, dir)[id]
	if len(lines) != len(attemptAt) {
		t.Fatalf("%d outbox lines, want %d", len(lines), len(attemptAt))
	}
	for i, l := range lines {
		if !l.At.Equal(attemptAt[i]) || l.Attempt != i+1 || l.Result != devsink.ResultTransientFailure {
			t.Errorf("line %d: attempt %d %s at %v, want attempt %d transient_failure at %v", i, l.Attempt, l.Result, l.At, i+1, attemptAt[i])
		}
	}
}
