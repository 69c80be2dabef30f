package app_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher/internal/app"
)

// TestBuildServesWebhookEndpoints: the graph wires the endpoints' use cases
// into the API, with the default (https-only) URL check and a whsec_
// secret of 32 random bytes.
func TestBuildServesWebhookEndpoints(t *testing.T) {
	t.Parallel()
	f := build(t, false)
	e := f.do(t, "POST", "/v1/webhook-endpoints", `{"url":"https://crm.example.com/hooks"}`, 201)
	if s, _ := e["secret"].(string); !regexp.MustCompile(`^whsec_[A-Za-z0-9+/]{43}=$`).MatchString(s) {
		t.Errorf("secret = %q", s)
	}
	if e["created_at"] != base.Format("2006-01-02T15:04:05Z") {
		t.Errorf("created_at %v: not the graph's clock (%v)", e["created_at"], base)
	}
	f.do(t, "GET", "/v1/webhook-endpoints/"+e["id"].(string), "", 200)
	f.do(t, "POST", "/v1/webhook-endpoints", `{"url":"http://127.0.0.1:9000/hooks"}`, 422)
}

// The URL check FOR NOW (internal/netguard replaces it at merge): parsing
// only, https, and http to loopback in the embedded mode.
func TestParseWebhookURLForNow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		raw          string
		loopbackHTTP bool
		refused      string // "" when accepted
	}{
		{"https://crm.example.com/hooks?x=1", false, ""},
		{"https://crm.example.com/hooks", true, ""},
		{"http://crm.example.com/hooks", false, "https"},
		{"http://crm.example.com/hooks", true, "loopback"},
		{"http://127.0.0.1:9000/hooks", true, ""},
		{"http://localhost:9000/hooks", true, ""},
		{"http://[::1]:9000/hooks", true, ""},
		{"http://127.0.0.1:9000/hooks", false, "https"},
		{"http://10.0.0.1/hook", true, "loopback"},
		{"ftp://crm.example.com/", true, "https"},
		{"/hooks", false, "absolute"},
		{"https://", false, "absolute"},
		{"mailto:ops@example.com", false, "absolute"},
		{"https://u:p@crm.example.com/", false, "password"},
		{"https://crm.example.com/#frag", false, "fragment"},
		{"https://crm.example.com/%zz", false, "absolute"},
	} {
		u, err := app.ParseWebhookURLForNow(tc.loopbackHTTP)(ctx, tc.raw)
		switch {
		case tc.refused == "" && (err != nil || u.String() != tc.raw):
			t.Errorf("%s (loopback http %v): %v, %v; want it accepted as is", tc.raw, tc.loopbackHTTP, u, err)
		case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
			t.Errorf("%s (loopback http %v): %v; want it refused, saying %q", tc.raw, tc.loopbackHTTP, err, tc.refused)
		}
	}
}
