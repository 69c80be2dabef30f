package embedded_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/clock"
	"github.com/dispatcherhq/dispatcher/internal/embedded"
)

// syncBuffer is a log sink the test reads while the node writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns the JSON log records whose msg is msg.
func (s *syncBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(s.b.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %s", sc.Bytes())
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// client calls a node's API over a real HTTP server.
type client struct {
	t    *testing.T
	base string
	key  string
	dir  string // the data directory
}

func (c client) do(method, path, body string, want int) map[string]any {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		c.t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, raw)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return m
}

// events reads a listing of events page by page of limit.
func (c client) events(path string, limit int) []map[string]any {
	c.t.Helper()
	var all []map[string]any
	cursor := ""
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	for range 1000 {
		q := fmt.Sprintf("%s%slimit=%d", path, sep, limit)
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		page := c.do("GET", q, "", 200)
		data, _ := page["data"].([]any)
		if len(data) > limit {
			c.t.Fatalf("%s: %d events on a page of %d", q, len(data), limit)
		}
		for _, e := range data {
			all = append(all, e.(map[string]any))
		}
		meta := page["meta"].(map[string]any)
		if meta["has_more"] != true {
			return all
		}
		cursor = meta["next_cursor"].(string)
	}
	c.t.Fatal("the listing does not end")
	return nil
}

// settle waits until the row is terminal, moving the fake clock to each
// retry's time once the row waits for it. The wait is a bounded poll for
// what must happen (the dispatcher works on other goroutines), not a timing
// assertion.
func (c client) settle(clk *clock.Fake, id string) map[string]any {
	c.t.Helper()
	deadline := time.Now().Add(patience)
	for {
		row := c.do("GET", "/v1/scheduled-communications/"+id, "", 200)["data"].(map[string]any)
		switch row["status"] {
		case "sent", "failed", "cancelled":
			return row
		case "pending":
			if next, _ := time.Parse(time.RFC3339Nano, row["next_attempt_at"].(string)); row["attempt_count"].(float64) > 0 && next.After(clk.Now()) {
				clk.Set(next)
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("row %s still %s after %v", id, row["status"], patience)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

// waitDelivery polls the row until its delivery_status is want (a bounded
// wait for what must happen, not a timing assertion) and returns it.
func (c client) waitDelivery(id, want string) map[string]any {
	c.t.Helper()
	deadline := time.Now().Add(patience)
	for {
		row := c.do("GET", "/v1/scheduled-communications/"+id, "", 200)["data"].(map[string]any)
		if row["delivery_status"] == want {
			return row
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("row %s: delivery_status %v after %v, want %s", id, row["delivery_status"], patience, want)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

// startProduct runs the embedded product on a fake clock behind a real
// HTTP server, with the dev company's key; it stops with the test.
func startProduct(t *testing.T) (client, *clock.Fake, *syncBuffer) {
	t.Helper()
	dir := t.TempDir()
	logs := &syncBuffer{}
	clk := clock.NewFake(base)
	ctx, cancel := context.WithCancel(context.Background())
	l, err := embedded.NewLocal(ctx, embedded.LocalConfig{DataDir: dir, SweepEvery: time.Hour, Clock: clk}, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := app.EnsureDevCompany(ctx, l.Store, dir)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	srv := httptest.NewServer(l.API)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		_ = l.Close()
	})
	return client{t: t, base: srv.URL, key: key, dir: dir}, clk, logs
}

func types(evs []map[string]any) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e["type"].(string)
	}
	return out
}

// TestHistoryAndFeedOnTheEmbeddedProduct is the walkthrough as a
// user would do it on `make dev`: a delivered email, a transiently failing
// one, a cancel by event, then the company feed and the attempt log lines.
func TestHistoryAndFeedOnTheEmbeddedProduct(t *testing.T) {
	t.Parallel()
	c, clk, logs := startProduct(t)
	now := base.Format(time.RFC3339Nano)
	email := func(to string) string {
		return fmt.Sprintf(`{"channel":"email","scheduled_for":%q,"payload":{"to_email":%q,"subject":"Hi","html_body":"<p>Hi</p>"}}`, now, to)
	}
	create := func(body string) string {
		return c.do("POST", "/v1/scheduled-communications", body, 201)["data"].(map[string]any)["id"].(string)
	}

	ok := create(email("sarah@example.com"))
	retry := create(email("sarah+transient@example.com"))
	contact := "1d2e3f4a-5b6c-4d7e-8f9a-0b1c2d3e4f5a"
	later := base.Add(time.Hour).Format(time.RFC3339)
	held := create(fmt.Sprintf(`{"channel":"email","scheduled_for":%q,"contact_id":%q,"cancel_policy":{"cancel_on":["contact_replied"]},
		"payload":{"to_email":"sarah@example.com","subject":"Hi","html_body":"<p>Hi</p>"}}`, later, contact))

	if got := c.settle(clk, ok)["status"]; got != "sent" {
		t.Fatalf("the email is %s", got)
	}
	if got := c.settle(clk, retry)["status"]; got != "failed" {
		t.Fatalf("the +transient email is %s", got)
	}
	// The dev SES reports the delivery a moment after the send.
	clk.Advance(time.Second)
	if got := c.waitDelivery(ok, "delivered")["delivery_detail"]; got != "250 2.6.0 Message received" {
		t.Fatalf("delivery_detail %v", got)
	}

	t.Run("DeliveredEmail", func(t *testing.T) {
		evs := c.events("/v1/scheduled-communications/"+ok+"/events", 50)
		if got := strings.Join(types(evs), ","); got != "created,attempt_started,sent,delivered" {
			t.Fatalf("history %s, want created,attempt_started,sent,delivered", got)
		}
		for i, e := range evs {
			if e["sequence"] != float64(i+1) || e["communication_id"] != ok {
				t.Fatalf("event %d: %v", i, e)
			}
			if i < 3 && e["at"] != base.Format("2006-01-02T15:04:05.000Z") {
				t.Fatalf("at %q, want the fake clock's %s in UTC RFC 3339 with milliseconds", e["at"], base.Format("2006-01-02T15:04:05.000Z"))
			}
		}
	})

	t.Run("TransientFailures", func(t *testing.T) {
		evs := c.events("/v1/scheduled-communications/"+retry+"/events", 2)
		want := "created,attempt_started,attempt_failed,attempt_started,attempt_failed,attempt_started,attempt_failed,failed"
		if got := strings.Join(types(evs), ","); got != want {
			t.Fatalf("history %s, want %s", got, want)
		}
		for _, i := range []int{2, 4} {
			d := evs[i]["data"].(map[string]any)
			if d["retry_at"] == nil || d["permanent"] != false || d["error"].(map[string]any)["code"] == "" {
				t.Fatalf("attempt_failed %d: %v, want a retry_at and the error", i, d)
			}
		}
		if d := evs[6]["data"].(map[string]any); d["retry_at"] != nil {
			t.Fatalf("last attempt_failed: %v, want retry_at null", d)
		}
	})

	t.Run("CancelByEvent", func(t *testing.T) {
		res := c.do("POST", "/v1/scheduled-communications/cancel-by-event", fmt.Sprintf(`{"event":"contact_replied","contact_id":%q}`, contact), 200)
		if got := res["data"].(map[string]any)["cancelled"].([]any); len(got) != 1 || got[0] != held {
			t.Fatalf("cancel-by-event cancelled %v, want [%s]", got, held)
		}
		row := c.do("GET", "/v1/scheduled-communications/"+held, "", 200)["data"].(map[string]any)
		if row["status"] != "cancelled" || row["cancel_reason"] != "event:contact_replied" {
			t.Fatalf("row %v / %v, want cancelled by event:contact_replied", row["status"], row["cancel_reason"])
		}
		evs := c.events("/v1/scheduled-communications/"+held+"/events", 10)
		if len(evs) != 2 || evs[1]["type"] != "cancelled" || evs[1]["data"].(map[string]any)["reason"] != "event:contact_replied" {
			t.Fatalf("history %v", evs)
		}
		if okRow := c.do("GET", "/v1/scheduled-communications/"+ok, "", 200)["data"].(map[string]any); okRow["cancel_reason"] != nil {
			t.Fatalf("a sent row has cancel_reason %v", okRow["cancel_reason"])
		}
	})

	t.Run("FeedPagesThroughEveryEventOnce", func(t *testing.T) {
		histories := map[string]int{ok: 4, retry: 8, held: 2}
		for _, limit := range []int{1, 4, 100} {
			feed := c.events("/v1/events", limit)
			seen, last := map[string]bool{}, map[string]float64{}
			for _, e := range feed {
				id, row := e["id"].(string), e["communication_id"].(string)
				if seen[id] {
					t.Fatalf("limit %d: event %s twice", limit, id)
				}
				seen[id] = true
				if e["sequence"].(float64) != last[row]+1 {
					t.Fatalf("limit %d: row %s seq %v after %v", limit, row, e["sequence"], last[row])
				}
				last[row] = e["sequence"].(float64)
			}
			for row, n := range histories {
				if last[row] != float64(n) {
					t.Fatalf("limit %d: the feed has %v of row %s's %d events", limit, last[row], row, n)
				}
			}
			if len(feed) != 14 {
				t.Fatalf("limit %d: %d events, want 14", limit, len(feed))
			}
		}
		sent := types(c.events("/v1/events?type=sent,failed", 10))
		slices.Sort(sent)
		if got := strings.Join(sent, ","); got != "failed,sent" {
			t.Fatalf("type=sent,failed: %s", got)
		}
		page := c.do("GET", "/v1/events?limit=100", "", 200)
		cursor := page["meta"].(map[string]any)["next_cursor"].(string)
		empty := c.do("GET", "/v1/events?cursor="+cursor, "", 200)
		if n := len(empty["data"].([]any)); n != 0 || empty["meta"].(map[string]any)["next_cursor"] != cursor {
			t.Fatalf("past the end: %d events, cursor %v; want none and the same cursor to poll with", n, empty["meta"])
		}
		c.do("GET", "/v1/events?cursor=bm90LWEtY3Vyc29y", "", 422)
		c.do("GET", "/v1/events?type=delivered_yesterday", "", 422)
	})

	t.Run("OneLogLinePerAttempt", func(t *testing.T) {
		attempts := logs.lines(t, "delivery attempt")
		byRow := map[string][]string{}
		for _, a := range attempts {
			for _, k := range []string{"communication_id", "company_id", "channel", "attempt", "result", "error_code", "duration_ms"} {
				if _, ok := a[k]; !ok {
					t.Fatalf("attempt line without %s: %v", k, a)
				}
			}
			id := a["communication_id"].(string)
			byRow[id] = append(byRow[id], fmt.Sprintf("%v:%v", a["attempt"], a["result"]))
		}
		if got := strings.Join(byRow[ok], ","); got != "1:sent" {
			t.Errorf("attempt lines of the delivered email: %s", got)
		}
		if got := strings.Join(byRow[retry], ","); got != "1:transient,2:transient,3:transient" {
			t.Errorf("attempt lines of the failing email: %s", got)
		}
	})
}
