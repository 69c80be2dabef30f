package app_test

import (
	"context"
	"net"
	"net/netip"
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
	e := f.do(t, "POST", "/v1/webhook-endpoints", `{"url":"https://93.184.215.14/hooks"}`, 201) // a public literal: no lookup
	if s, _ := e["secret"].(string); !regexp.MustCompile(`^whsec_[A-Za-z0-9+/]{43}=$`).MatchString(s) {
		t.Errorf("secret = %q", s)
	}
	if e["created_at"] != base.Format("2006-01-02T15:04:05Z") {
		t.Errorf("created_at %v: not the graph's clock (%v)", e["created_at"], base)
	}
	f.do(t, "GET", "/v1/webhook-endpoints/"+e["id"].(string), "", 200)
	f.do(t, "POST", "/v1/webhook-endpoints", `{"url":"http://127.0.0.1:9000/hooks"}`, 422)
}

// stubResolver answers names from a table; any other name fails, so the
// test never touches the network.
type stubResolver map[string]string

func (r stubResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return []netip.Addr{netip.MustParseAddr(a)}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// TestWebhookURLs: the check every registered URL goes through is
// netguard's — https to public addresses, literal or resolved; the
// embedded mode also http to loopback; private and metadata addresses
// refused before any connection.
func TestWebhookURLs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := stubResolver{"crm.example.com": "93.184.215.14", "rebind.example.com": "169.254.169.254", "intra.example.com": "10.0.0.7"}
	for _, tc := range []struct {
		raw          string
		loopbackHTTP bool
		refused      bool
	}{
		{"https://crm.example.com/hooks?x=1", false, false},
		{"https://93.184.215.14/hooks", false, false},
		{"http://crm.example.com/hooks", false, true},
		{"http://crm.example.com/hooks", true, true},
		{"http://127.0.0.1:9000/hooks", true, false},
		{"http://[::1]:9000/hooks", true, false},
		{"http://127.0.0.1:9000/hooks", false, true},
		{"http://10.0.0.1/hook", true, true},
		{"https://10.0.0.1/hook", false, true},
		{"http://169.254.169.254/", true, true},
		{"https://rebind.example.com/", false, true},
		{"https://intra.example.com/", false, true},
		{"https://unknown.example.com/", false, true},
		{"ftp://crm.example.com/", true, true},
		{"/hooks", false, true},
		{"https://u:p@crm.example.com/", false, true},
	} {
		u, err := app.WebhookURLs(tc.loopbackHTTP, r)(ctx, tc.raw)
		switch {
		case !tc.refused && (err != nil || u.String() != tc.raw):
			t.Errorf("%s (loopback http %v): %v, %v; want it accepted as is", tc.raw, tc.loopbackHTTP, u, err)
		case tc.refused && err == nil:
			t.Errorf("%s (loopback http %v): accepted, want it refused", tc.raw, tc.loopbackHTTP)
		case tc.refused && strings.Contains(err.Error(), "netguard"):
			t.Errorf("%s: %q carries a package name", tc.raw, err)
		}
	}
}
