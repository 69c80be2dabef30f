package httpapi_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/ratelimit"
)

// withLimit gives e a per-company limit on its own clock (e.clock).
func withLimit(e *env, lim ratelimit.Limit, companies map[string]ratelimit.Limit) {
	e.api.SetRateLimiter(ratelimit.New(ratelimit.NewMemory(), ratelimit.Policy{Default: lim, Companies: companies}, e.clock.Now))
}

// A company over its limit gets 429 rate_limited with Retry-After and the
// RateLimit fields, as the document says; another company is not
// affected; public routes are never limited; the bucket refills with time.
func TestRateLimitPerCompany(t *testing.T) {
	e := setup(t)
	withLimit(e, ratelimit.Limit{Rate: 2, Burst: 3}, nil)
	for i := range 3 {
		r := e.mustDo("GET", "/v1/settings", "all", "", 200)
		if got, want := r.Header.Get("RateLimit"), `"company";r=`+string(rune('2'-i))+`;t=`; !strings.HasPrefix(got, want) {
			t.Fatalf("request %d: RateLimit %q; want prefix %q", i, got, want)
		}
		if got := r.Header.Get("RateLimit-Policy"); got != `"company";q=3;w=2` {
			t.Fatalf("RateLimit-Policy %q; want \"company\";q=3;w=2 (burst 3, refilled in 1.5 s)", got)
		}
	}
	// The bucket is the company's, not the key's: a read-only key of acme
	// is refused too, before its scope is checked.
	for _, key := range []string{"all", "read"} {
		r := e.mustDo("POST", "/v1/scheduled-communications", key, emailBody(at(time.Hour)), 429)
		if r.Error.Code != "rate_limited" || r.Header.Get("Retry-After") != "1" || r.Header.Get("RateLimit") != `"company";r=0;t=2` {
			t.Fatalf("%s over the limit: %d %s, Retry-After %q, RateLimit %q", key, r.Status, r.Error.Code, r.Header.Get("Retry-After"), r.Header.Get("RateLimit"))
		}
	}
	e.mustDo("GET", "/v1/settings", "other", "", 200) // another company's bucket
	for _, p := range []string{"/healthz", "/readyz", "/v1/openapi.json"} {
		if r := e.do("GET", p, "", ""); r.Status != 200 || r.Header.Get("RateLimit") != "" {
			t.Fatalf("GET %s: %d, RateLimit %q; want 200, not limited", p, r.Status, r.Header.Get("RateLimit"))
		}
	}
	// An unknown key spends nobody's tokens (401 before the limit).
	e.mustDo("GET", "/v1/settings", "dk_live_nobody", "", 401)
	e.clock.Advance(500 * time.Millisecond) // one token back
	e.mustDo("GET", "/v1/settings", "all", "", 200)
	e.mustDo("GET", "/v1/settings", "all", "", 429)
	// Nothing the refused creates asked for was stored.
	e.clock.Advance(time.Minute)
	assertCount(t, e, "all", "", 0)
}

// Every authenticated operation is limited, and its 429 matches the
// document (env.do validates every response against it).
func TestRateLimitEveryOperation(t *testing.T) {
	e := setup(t)
	withLimit(e, ratelimit.Limit{Rate: 1, Burst: 1}, nil)
	e.mustDo("GET", "/v1/settings", "all", "", 200) // the one token
	ids := strings.NewReplacer("{id}", "3f0c9a52-6f7e-4d8a-9b1c-2d3e4f5a6b7c", "{delivery_id}", "4a1b2c3d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
		"{channel}", "email", "{recipient}", "alex@example.com")
	n := 0
	for _, rt := range e.api.Routes() {
		if rt.Public {
			continue
		}
		body := ""
		if rt.Method != "GET" && rt.Method != "DELETE" {
			body = "{}"
		}
		r := e.do(rt.Method, ids.Replace(rt.Path), "all", body)
		if r.Status != 429 || r.Error.Code != "rate_limited" {
			t.Errorf("%s %s: %d %s; want 429 rate_limited", rt.Method, rt.Path, r.Status, r.Error.Code)
		}
		n++
	}
	if n < 30 {
		t.Fatalf("%d authenticated routes; want them all", n)
	}
}

// A company's own limit replaces the default.
func TestRateLimitOverride(t *testing.T) {
	e := setup(t)
	withLimit(e, ratelimit.Limit{Rate: 1, Burst: 1}, map[string]ratelimit.Limit{"other": {Rate: 10, Burst: 5}})
	e.mustDo("GET", "/v1/settings", "all", "", 200)
	e.mustDo("GET", "/v1/settings", "all", "", 429)
	for range 5 {
		e.mustDo("GET", "/v1/settings", "other", "", 200)
	}
	e.mustDo("GET", "/v1/settings", "other", "", 429)
}
