package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	svix "github.com/svix/svix-webhooks/go"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/emulator"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
	"github.com/dispatcherhq/dispatcher/internal/testrand"
)

// request sends an API request through the api function's handler.
func (s *stack) request(method, path, body string) (int, map[string]any) {
	s.t.Helper()
	ev := event(s.t, "api-create-email.json", time.Time{}, nil)
	delete(ev.Headers, "idempotency-key")
	ev.RawPath, ev.RequestContext.HTTP.Path, ev.RequestContext.HTTP.Method, ev.Body = path, path, method, body
	return s.call(ev)
}

// pumpStream plays the table's stream event source into the webhooks
// function: event inserts only (dynamo.EventStreamFilter), batches of 100.
func (s *stack) pumpStream() (int, error) {
	return s.stream.Pump(s.ctx, 100, func(r events.DynamoDBEventRecord) bool {
		_, ok := dynamo.EventItemCompany(r.Change.Keys[dynamo.AttrPK].String(), r.Change.Keys[dynamo.AttrSK].String())
		return r.EventName == "INSERT" && ok
	}, func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		raw, _ := json.Marshal(ev)
		out, err := s.webhooks(ctx, raw)
		if err != nil {
			return events.DynamoDBEventResponse{}, err
		}
		return out.(events.DynamoDBEventResponse), nil
	})
}

// pumpWebhooks plays the webhook queue's event source into the webhooks
// function until the queue stays empty for wait.
func (s *stack) pumpWebhooks(wait time.Duration) int {
	s.t.Helper()
	n, err := emulator.PumpSQS(s.ctx, sqs.NewFromConfig(s.cfg), s.webhookQueue, func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		raw, _ := json.Marshal(ev)
		out, err := s.webhooks(ctx, raw)
		if err != nil {
			return events.SQSEventResponse{}, err
		}
		return out.(events.SQSEventResponse), nil
	}, wait)
	if err != nil {
		s.t.Fatalf("pump the webhook queue: %v", err)
	}
	return n
}

// svixReceiver verifies each request with the Svix library and answers
// 500 to the first fails requests of type failType, 200 otherwise.
type svixReceiver struct {
	mu       sync.Mutex
	secret   string
	failType string
	fails    int
	got      []string // "type webhook-id"
	bad      atomic.Int32
}

func (r *svixReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	wh, err := svix.NewWebhook(r.secret)
	if err != nil || wh.VerifyIgnoringTimestamp(body, req.Header) != nil {
		r.bad.Add(1)
	}
	var msg struct{ Type string }
	_ = json.Unmarshal(body, &msg)
	r.got = append(r.got, msg.Type+" "+req.Header.Get("webhook-id"))
	if msg.Type == r.failType && r.fails > 0 {
		r.fails--
		w.WriteHeader(500)
		return
	}
	w.WriteHeader(200)
}

func (r *svixReceiver) types() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, g := range r.got {
		out[strings.Fields(g)[0]]++
	}
	return out
}

// failingTimer fails its first n arms: the webhooks function dying
// between reading the stream and arming the fan-out.
type failingTimer struct {
	comms.Timer
	n atomic.Int32
}

func (f *failingTimer) Arm(ctx context.Context, fire comms.Fire, at time.Time) error {
	if f.n.Add(-1) >= 0 {
		return errors.New("injected: the function died before the fan-out was armed")
	}
	return f.Timer.Arm(ctx, fire, at)
}

// TestStatusWebhooksOnAWS: the AWS fan-out end to end on the emulator. A
// company registers a local receiver; an email is created and sent; the
// table's stream carries the event inserts to the webhooks function,
// whose first invocation dies before it arms the fan-out (nothing is
// lost: the stream delivers the records again), the second arms it; the
// fan-out fire comes through the webhook queue once the events settled;
// the receiver — which verifies with the Svix library — gets created,
// attempt_started and sent, "sent" after a 500 and a retry through the
// timer, with the same webhook-id; …/deliveries shows it.
//
// Its table has a stream, so `make test` runs it apart from the tests that
// read moto's data.json (STREAM_TESTS in the Makefile).
func TestStatusWebhooksOnAWS(t *testing.T) {
	t.Parallel()
	ft := &failingTimer{}
	ft.n.Store(1)
	s := deploy(t, options{stream: true, webhookTimer: func(tm comms.Timer) comms.Timer { ft.Timer = tm; return ft }})
	rc := &svixReceiver{failType: "sent", fails: 1}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	status, body := s.request("POST", "/v1/webhook-endpoints", `{"url":"`+srv.URL+`/hooks"}`)
	if status != 201 {
		t.Fatalf("register: %d %v", status, body)
	}
	ep := body["data"].(map[string]any)
	rc.mu.Lock()
	rc.secret = ep["secret"].(string)
	rc.mu.Unlock()

	s.clock.Advance(time.Millisecond)
	to := testrand.New(t).PhoneNumber("AU")
	status, body = s.call(event(t, "api-create-sms.json", s.clock.Now(), func(b map[string]any) {
		b["payload"].(map[string]any)["to_number"] = to
	}))
	if status != 201 {
		t.Fatalf("create: %d %v", status, body)
	}
	id := body["data"].(map[string]any)["id"].(string)
	deadline := time.Now().Add(20 * time.Second)
	for s.get(id)["status"] == "pending" && time.Now().Before(deadline) {
		s.pump(2 * time.Second)
	}
	if got := s.get(id)["status"]; got != "sent" {
		t.Fatalf("the SMS is %v", got)
	}

	// The stream: the first invocation fails to arm (a batch item
	// failure), the second arms the company's fan-out.
	if n, err := s.pumpStream(); err != nil || n == 0 {
		t.Fatalf("stream: %d records, %v", n, err)
	}
	if n, err := s.pumpStream(); err != nil || n < 3 {
		t.Fatalf("after the failed invocation the stream delivered %d records (%v), want the events again", n, err)
	}
	// The fan-out reads events once they are dynamo.FeedSettle old.
	s.clock.Advance(dynamo.FeedSettle + time.Second)
	deadline = time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		s.pumpWebhooks(2 * time.Second)
		if got := rc.types(); got["sent"] >= 2 {
			break
		}
		// The retry of "sent" is 5 s after its 500: a delayed SQS message.
	}
	got := rc.types()
	for _, typ := range []string{"created", "attempt_started"} {
		if got[typ] != 1 {
			t.Errorf("%s delivered %d times, want 1 (%v)", typ, got[typ], got)
		}
	}
	if got["sent"] != 2 {
		t.Fatalf("sent delivered %d times, want 2 (a 500, then 200): %v", got["sent"], got)
	}
	if n := rc.bad.Load(); n != 0 {
		t.Errorf("%d deliveries did not verify with the Svix library", n)
	}
	rc.mu.Lock()
	ids := map[string]bool{}
	for _, g := range rc.got {
		if strings.HasPrefix(g, "sent ") {
			ids[strings.Fields(g)[1]] = true
		}
	}
	rc.mu.Unlock()
	if len(ids) != 1 {
		t.Errorf("the retry of sent had another webhook-id: %v", ids)
	}
	status, body = s.request("GET", "/v1/webhook-endpoints/"+ep["id"].(string)+"/deliveries", "")
	if status != 200 {
		t.Fatalf("deliveries: %d %v", status, body)
	}
	var sent map[string]any
	for _, d := range body["data"].([]any) {
		if d.(map[string]any)["event_type"] == "sent" {
			sent = d.(map[string]any)
		}
	}
	if sent == nil || sent["state"] != "succeeded" || len(sent["attempts"].([]any)) != 2 {
		t.Errorf("the sent delivery: %v", sent)
	}
	// A replayed stream arms a fan-out that finds nothing new: nothing is
	// delivered twice.
	before := len(rc.got)
	s.stream = mustStream(t, s)
	if _, err := s.pumpStream(); err != nil {
		t.Fatal(err)
	}
	s.pumpWebhooks(time.Second)
	if after := len(rc.types()); len(rc.got) != before {
		t.Errorf("a replayed stream delivered again: %d → %d messages (%d types)", before, len(rc.got), after)
	}
}

// mustStream is a fresh reader of the stack's table stream, from its start.
func mustStream(t *testing.T, s *stack) *emulator.Stream {
	t.Helper()
	st, err := emulator.NewStream(s.ctx, s.cfg, s.conf.TableName)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
