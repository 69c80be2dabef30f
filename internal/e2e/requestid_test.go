package e2e_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/dispatch"
)

// lockedBuffer is the product's log, written by the handlers and read by
// the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines are the JSON lines logged so far with message msg about row id.
func (b *lockedBuffer) lines(t *testing.T, msg, id string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, sc.Text())
		}
		if m["msg"] == msg && m["communication_id"] == id {
			out = append(out, m)
		}
	}
	return out
}

// TestRequestIDFollowsTheFire: the X-Request-Id of a create is on the
// delivery attempt of the dispatch that handles its fire — through SQS
// (due in seconds) and through a Scheduler schedule (due in 20 minutes) —
// as the request_id of the line, which is also its EMF record.
func TestRequestIDFollowsTheFire(t *testing.T) {
	t.Parallel()
	var log lockedBuffer
	s := deploy(t, options{log: &log})
	create := func(reqID string, due time.Time) string {
		t.Helper()
		ev := event(t, "api-create-email.json", due, setTo(uniqueTo(t)))
		delete(ev.Headers, "idempotency-key")
		ev.Headers["x-request-id"] = reqID
		res, err := s.api(s.ctx, ev)
		if err != nil || res.StatusCode != 201 {
			t.Fatalf("create: %v %d %s", err, res.StatusCode, res.Body)
		}
		if got := res.Headers["X-Request-Id"]; got != reqID {
			t.Errorf("X-Request-Id answered %q, want %q", got, reqID)
		}
		var body struct{ Data struct{ ID string } }
		_ = json.Unmarshal([]byte(res.Body), &body)
		return body.Data.ID
	}
	check := func(id, reqID string) {
		t.Helper()
		lines := log.lines(t, dispatch.MsgDeliveryAttempt, id)
		if len(lines) != 1 {
			t.Fatalf("%d delivery attempts logged for %s, want 1", len(lines), id)
		}
		if got := lines[0]["request_id"]; got != reqID {
			t.Errorf("delivery attempt of %s: request_id %v, want %s: %v", id, got, reqID, lines[0])
		}
		if _, emf := lines[0]["_aws"]; !emf {
			t.Errorf("the delivery attempt is not an EMF record: %v", lines[0])
		}
	}

	soon := create("req-sqs-1", s.clock.Now().Add(2*time.Second))
	deadline := time.Now().Add(20 * time.Second)
	for s.get(soon)["status"] == "pending" && time.Now().Before(deadline) {
		s.pump(2 * time.Second)
	}
	check(soon, "req-sqs-1")

	due := s.clock.Now().Add(20 * time.Minute).Truncate(time.Second)
	later := create("req-scheduler-1", due)
	s.clock.AdvanceTo(due.Add(-2 * time.Second))
	if n := s.fireDue(); n != 1 {
		t.Fatalf("fired %d schedules, want 1", n)
	}
	// The schedule fires early (the Scheduler lead): the dispatcher arms
	// the rest on SQS, and that fire keeps the request id.
	s.clock.AdvanceTo(due)
	deadline = time.Now().Add(20 * time.Second)
	for s.get(later)["status"] == "pending" && time.Now().Before(deadline) {
		s.pump(2 * time.Second)
	}
	check(later, "req-scheduler-1")
}
