package embedded_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher/internal/clock"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
)

// TestLoopbackWebhookEndpointInDevMode: make dev accepts an http endpoint
// on a loopback host (a local receiver), and still refuses http elsewhere.
func TestLoopbackWebhookEndpointInDevMode(t *testing.T) {
	t.Parallel()
	n := startNode(t, t.TempDir(), dispatch.Config{}, clock.NewFake(base))
	defer n.stop()
	for url, want := range map[string]int{
		"http://127.0.0.1:9000/hooks": 201,
		"http://localhost:9000/hooks": 201,
		"https://93.184.215.14/hook":  201, // a public address: the test resolves no name
		"http://93.184.215.14/hook":   422,
	} {
		req := httptest.NewRequest("POST", "/v1/webhook-endpoints", strings.NewReader(`{"url":"`+url+`"}`))
		req.Header.Set("Authorization", "Bearer "+n.key)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		n.l.API.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("%s: %d %s, want %d", url, rec.Code, rec.Body, want)
		}
	}
}
