package embedded_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"
)

// hookReceiver is a real HTTP server on loopback that verifies every
// delivery with the Svix library and answers with the statuses scripted
// for each webhook-id (200 once they run out).
type hookReceiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	fail   map[string]int // event type → how many first attempts answer 500
	got    []received
}

type received struct {
	id, typ  string
	verified bool
	status   int
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	wh, err := svix.NewWebhook(h.secret)
	// The product signs at its own clock, a fake one in 2030 here: the
	// signature is checked, the timestamp's distance from the wall clock
	// is not.
	verified := err == nil && wh.VerifyIgnoringTimestamp(body, r.Header) == nil
	var msg struct{ Type string }
	_ = json.Unmarshal(body, &msg)
	h.mu.Lock()
	defer h.mu.Unlock()
	status := 200
	if h.fail[msg.Type] > 0 {
		h.fail[msg.Type]--
		status = 500
	}
	h.got = append(h.got, received{id: r.Header.Get("webhook-id"), typ: msg.Type, verified: verified, status: status})
	w.WriteHeader(status)
}

func (h *hookReceiver) snapshot() []received {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

// TestStatusWebhooksOnTheEmbeddedProduct: a company registers a loopback
// receiver; an email due now brings it created, attempt_started, sent and
// delivered, each signed (verified by the Svix library); the receiver
// answering 500 three times to one message gets it a fourth time with the
// same webhook-id, after the retry schedule's delays.
func TestStatusWebhooksOnTheEmbeddedProduct(t *testing.T) {
	t.Parallel()
	c, clk, _ := startProduct(t)
	rc := &hookReceiver{t: t, fail: map[string]int{"sent": 3}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	ep := c.do("POST", "/v1/webhook-endpoints", fmt.Sprintf(`{"url":%q}`, srv.URL+"/hooks"), 201)["data"].(map[string]any)
	rc.mu.Lock()
	rc.secret = ep["secret"].(string)
	rc.mu.Unlock()

	clk.Advance(time.Millisecond) // events after the endpoint's creation
	id := c.do("POST", "/v1/scheduled-communications", fmt.Sprintf(
		`{"channel":"email","scheduled_for":%q,"payload":{"to_email":"sarah@example.com","subject":"Hi","html_body":"<p>Hi</p>"}}`,
		clk.Now().Format(time.RFC3339Nano)), 201)["data"].(map[string]any)["id"].(string)
	c.settle(clk, id)
	clk.Advance(time.Second) // the dev SES's DELIVERY report
	c.waitDelivery(id, "delivered")

	// The retries of "sent": 5 s, 5 min, 30 min (jitter ≤ 10 %).
	deadline := time.Now().Add(patience)
	for {
		got := rc.snapshot()
		n := 0
		for _, g := range got {
			if g.typ == "sent" {
				n++
			}
		}
		if n >= 4 && len(got) >= 7 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the receiver got %+v", got)
		}
		clk.Advance(time.Minute)
		time.Sleep(5 * time.Millisecond) // poll interval (the deliveries run on other goroutines)
	}
	byType, ids := map[string]int{}, map[string]map[string]bool{}
	for _, g := range rc.snapshot() {
		if !g.verified {
			t.Errorf("a %s delivery did not verify with the endpoint's secret", g.typ)
		}
		byType[g.typ]++
		if ids[g.typ] == nil {
			ids[g.typ] = map[string]bool{}
		}
		ids[g.typ][g.id] = true
	}
	for _, typ := range []string{"created", "attempt_started", "delivered"} {
		if byType[typ] != 1 {
			t.Errorf("%s delivered %d times, want 1", typ, byType[typ])
		}
	}
	if byType["sent"] != 4 || len(ids["sent"]) != 1 {
		t.Errorf("sent: %d attempts with %d webhook-ids, want 4 with one", byType["sent"], len(ids["sent"]))
	}

	// What the receiver saw is visible in …/deliveries, and a retry sends
	// the message again with the same webhook-id.
	// The receiver answers before the engine records the answer: wait
	// for the record, not for the request.
	var list []any
	var sent map[string]any
	deadline = time.Now().Add(patience)
	for {
		list = c.do("GET", "/v1/webhook-endpoints/"+ep["id"].(string)+"/deliveries?state=succeeded", "", 200)["data"].([]any)
		sent = nil
		for _, x := range list {
			if x.(map[string]any)["event_type"] == "sent" {
				sent = x.(map[string]any)
			}
		}
		if len(list) == 4 && sent != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries: %d, sent %v", len(list), sent)
		}
		time.Sleep(5 * time.Millisecond) // poll interval (the engine records on its own goroutine)
	}
	if len(sent["attempts"].([]any)) != 4 || sent["next_attempt_at"] != nil {
		t.Fatalf("sent delivery %v", sent)
	}
	if codes := sent["attempts"].([]any); codes[0].(map[string]any)["status_code"] != 500.0 || codes[3].(map[string]any)["status_code"] != 200.0 {
		t.Errorf("attempts %v", codes)
	}
	c.do("POST", "/v1/webhook-endpoints/"+ep["id"].(string)+"/deliveries/"+sent["id"].(string)+"/retry", "", 202)
	deadline = time.Now().Add(patience)
	for len(rc.snapshot()) < 8 {
		if time.Now().After(deadline) {
			t.Fatalf("no delivery after the retry: %+v", rc.snapshot())
		}
		time.Sleep(5 * time.Millisecond) // poll interval
	}
	if last := rc.snapshot()[7]; last.id != sent["id"] || !last.verified {
		t.Errorf("the retry sent %+v, want webhook-id %v", last, sent["id"])
	}
	c.do("GET", "/v1/webhook-endpoints/"+ep["id"].(string)+"/deliveries?state=bogus", "", 422)
}

// TestADeadEndpointDelaysNoOtherDelivery: one company's endpoint hangs on
// every request; the other endpoint still gets every message, and the
// communications are still sent.
func TestADeadEndpointDelaysNoOtherDelivery(t *testing.T) {
	t.Parallel()
	c, clk, logs := startProduct(t)
	hang := make(chan struct{})
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer dead.Close()
	defer close(hang)
	rc := &hookReceiver{t: t}
	alive := httptest.NewServer(rc)
	defer alive.Close()
	c.do("POST", "/v1/webhook-endpoints", fmt.Sprintf(`{"url":%q}`, dead.URL), 201)
	ep := c.do("POST", "/v1/webhook-endpoints", fmt.Sprintf(`{"url":%q}`, alive.URL), 201)["data"].(map[string]any)
	rc.mu.Lock()
	rc.secret = ep["secret"].(string)
	rc.mu.Unlock()
	clk.Advance(time.Millisecond)
	var ids []string
	for range 10 {
		ids = append(ids, c.do("POST", "/v1/scheduled-communications", fmt.Sprintf(
			`{"channel":"email","scheduled_for":%q,"payload":{"to_email":"sarah@example.com","subject":"Hi","html_body":"<p>Hi</p>"}}`,
			clk.Now().Format(time.RFC3339Nano)), 201)["data"].(map[string]any)["id"].(string))
	}
	for _, id := range ids {
		if got := c.settle(clk, id)["status"]; got != "sent" {
			t.Fatalf("row %s is %v", id, got)
		}
	}
	// created, attempt_started and sent of 10 rows (delivered comes later).
	deadline := time.Now().Add(patience)
	for len(rc.snapshot()) < 30 {
		if time.Now().After(deadline) {
			list := c.do("GET", "/v1/webhook-endpoints/"+ep["id"].(string)+"/deliveries?limit=100", "", 200)["data"].([]any)
			states := map[string]int{}
			for _, x := range list {
				m := x.(map[string]any)
				states[m["state"].(string)+"/"+m["event_type"].(string)]++
				if m["state"] == "pending" {
					t.Logf("pending %v next %v attempts %v", m["event_type"], m["next_attempt_at"], m["attempts"])
				}
			}
			for _, l := range logs.lines(t, "local timer: handler failed") {
				t.Logf("handler failed: %v", l)
			}
			t.Fatalf("the live endpoint got %d messages while the other hangs; deliveries %v (clock %v)", len(rc.snapshot()), states, clk.Now())
		}
		time.Sleep(5 * time.Millisecond) // poll interval
	}
	for _, g := range rc.snapshot() {
		if !g.verified {
			t.Fatalf("unverified delivery %+v", g)
		}
	}
}

// TestTestMessageAndRefusedRetry: POST …/test sends a signed ping and
// answers with what the receiver did (a 500 is still a 200 answer, with
// succeeded false); a message of a disabled endpoint is not retried
// (409 endpoint_disabled).
func TestTestMessageAndRefusedRetry(t *testing.T) {
	t.Parallel()
	c, clk, _ := startProduct(t)
	rc := &hookReceiver{t: t, fail: map[string]int{"ping": 1}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	ep := c.do("POST", "/v1/webhook-endpoints", fmt.Sprintf(`{"url":%q,"event_types":["created"]}`, srv.URL), 201)["data"].(map[string]any)
	rc.mu.Lock()
	rc.secret = ep["secret"].(string)
	rc.mu.Unlock()
	id := ep["id"].(string)
	first := c.do("POST", "/v1/webhook-endpoints/"+id+"/test", "", 200)["data"].(map[string]any)
	second := c.do("POST", "/v1/webhook-endpoints/"+id+"/test", "", 200)["data"].(map[string]any)
	if first["succeeded"] != false || first["attempt"].(map[string]any)["status_code"] != 500.0 || second["succeeded"] != true {
		t.Errorf("test messages: %v then %v", first, second)
	}
	got := rc.snapshot()
	if len(got) != 2 || got[0].typ != "ping" || !got[0].verified || !got[1].verified || got[1].id != second["webhook_id"] || got[0].id == got[1].id {
		t.Errorf("the receiver got %+v", got)
	}
	// A message to retry, then the endpoint disabled.
	clk.Advance(time.Millisecond)
	c.do("POST", "/v1/scheduled-communications", fmt.Sprintf(
		`{"channel":"email","scheduled_for":%q,"payload":{"to_email":"sarah@example.com","subject":"Hi","html_body":"<p>Hi</p>"}}`,
		clk.Now().Add(time.Hour).Format(time.RFC3339Nano)), 201)
	var msg string
	deadline := time.Now().Add(patience)
	for msg == "" {
		for _, x := range c.do("GET", "/v1/webhook-endpoints/"+id+"/deliveries?state=succeeded", "", 200)["data"].([]any) {
			msg = x.(map[string]any)["id"].(string)
		}
		if time.Now().After(deadline) {
			t.Fatal("the created event was not delivered")
		}
		time.Sleep(5 * time.Millisecond) // poll interval (the engine runs on its own goroutines)
	}
	c.do("PATCH", "/v1/webhook-endpoints/"+id, `{"disabled":true}`, 200)
	if e := c.do("POST", "/v1/webhook-endpoints/"+id+"/deliveries/"+msg+"/retry", "", 409)["error"].(map[string]any); e["code"] != "endpoint_disabled" {
		t.Errorf("retry to a disabled endpoint: %v", e)
	}
	if e := c.do("POST", "/v1/webhook-endpoints/00000000-0000-4000-8000-000000000000/test", "", 404)["error"].(map[string]any); e["code"] != "not_found" {
		t.Errorf("test of no endpoint: %v", e)
	}
}
