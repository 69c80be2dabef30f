package webhooks_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"

	"github.com/dispatcherhq/dispatcher/internal/netguard"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
)

// receiver is a real HTTP server on loopback that verifies every request
// with the Svix library (never with this package's code) and answers with
// the statuses it is given, in order (200 once they run out).
type receiver struct {
	t        *testing.T
	secrets  []string
	statuses []int
	mu       sync.Mutex
	got      []http.Header
	verified []bool
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ok := false
	for _, s := range rc.secrets {
		wh, err := svix.NewWebhook(s)
		if err != nil {
			rc.t.Errorf("svix.NewWebhook: %v", err)
			continue
		}
		ok = ok || wh.Verify(body, r.Header) == nil
	}
	rc.mu.Lock()
	rc.got = append(rc.got, r.Header.Clone())
	rc.verified = append(rc.verified, ok)
	status := 200
	if len(rc.statuses) > 0 {
		status, rc.statuses = rc.statuses[0], rc.statuses[1:]
	}
	rc.mu.Unlock()
	if status == http.StatusFound {
		w.Header().Set("Location", "http://127.0.0.1:1/elsewhere")
	}
	w.WriteHeader(status)
}

func TestSendToARealReceiver(t *testing.T) {
	t.Parallel()
	old, current := mustSecret(t), mustSecret(t)
	rc := &receiver{t: t, secrets: []string{old}, statuses: []int{500, 302, 410, 200}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	client := webhooks.NewClient(netguard.Transport(netguard.Options{AllowLoopbackHTTP: true}))
	req := webhooks.Request{URL: srv.URL + "/hook", MsgID: "msg_01", Body: []byte(`{"type":"sent"}`), Secrets: []string{current, old}}

	var results []webhooks.Result
	var codes []int
	for range 4 {
		a := webhooks.Send(context.Background(), client, req, time.Now())
		results, codes = append(results, a.Result), append(codes, a.StatusCode)
	}
	want := []webhooks.Result{webhooks.Retry, webhooks.Retry, webhooks.Gone, webhooks.Succeeded}
	for i := range want {
		if results[i] != want[i] {
			t.Errorf("attempt %d (HTTP %d): %s, want %s", i+1, codes[i], results[i], want[i])
		}
	}
	if codes[1] != http.StatusFound || len(rc.got) != 4 {
		t.Errorf("the redirect was followed: codes %v, %d requests", codes, len(rc.got))
	}
	for i, h := range rc.got {
		// The receiver knows only the old secret: during a rotation either verifies.
		if !rc.verified[i] || h.Get("webhook-id") != "msg_01" || h.Get("Content-Type") != "application/json" || h.Get("User-Agent") != webhooks.UserAgent {
			t.Errorf("request %d: verified %v, headers %v", i+1, rc.verified[i], h)
		}
	}
}

// TestSendRefusesForbiddenAddresses: without the embedded mode's loopback
// allowance, the connection to a loopback receiver is refused at connect
// time (netguard's dialer), and the attempt is a retry with the reason.
func TestSendRefusesForbiddenAddresses(t *testing.T) {
	t.Parallel()
	rc := &receiver{t: t}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	client := webhooks.NewClient(netguard.Transport(netguard.Options{}))
	a := webhooks.Send(context.Background(), client, webhooks.Request{URL: srv.URL, MsgID: "m", Body: []byte(`{}`), Secrets: []string{mustSecret(t)}}, time.Now())
	if a.Result != webhooks.Retry || a.StatusCode != 0 || a.Error == "" || len(rc.got) != 0 {
		t.Errorf("attempt %+v, %d requests reached the receiver", a, len(rc.got))
	}
}

func TestSendTimesOut(t *testing.T) {
	t.Parallel()
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer srv.Close()
	defer close(hang)
	client := webhooks.NewClient(netguard.Transport(netguard.Options{AllowLoopbackHTTP: true}))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	a := webhooks.Send(ctx, client, webhooks.Request{URL: srv.URL, MsgID: "m", Body: []byte(`{}`), Secrets: []string{mustSecret(t)}}, time.Now())
	if a.Result != webhooks.Retry || a.StatusCode != 0 {
		t.Errorf("a receiver that never answers: %+v", a)
	}
}

func TestRetryScheduleSpansADay(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at, attempts := t0, 1
	for {
		next, ok := webhooks.NextRetry(attempts, at, 0)
		if !ok {
			break
		}
		at, attempts = next, attempts+1
	}
	if attempts < 8 || at.Sub(t0) < 24*time.Hour {
		t.Errorf("%d attempts over %v; want 8 or more over at least 24 h", attempts, at.Sub(t0))
	}
	if next, _ := webhooks.NextRetry(1, t0, 0.999); next.Sub(t0) > 5500*time.Millisecond || next.Sub(t0) < 5*time.Second {
		t.Errorf("jittered first retry after %v", next.Sub(t0))
	}
}

func mustSecret(t *testing.T) string {
	t.Helper()
	s, err := webhooks.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
