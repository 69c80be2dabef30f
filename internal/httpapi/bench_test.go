package httpapi_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/ratelimit"
)

// BenchmarkCreate measures POST /v1/scheduled-communications in process
// (httptest, no socket): routing, auth (SHA-256 + key lookup), decoding,
// validation, resource lookup, and the SQLite transaction (row + debit) on
// a real file with the store's default durability. No timer is armed (the
// scheduling service here has none), so it is the handler's cost, not the
// process's: creates over real HTTP with the timer armed as `serve` arms
// it, at 2, 8 and 32 clients with p50/p99, are BenchmarkCreateHTTP in
// internal/embedded.
func BenchmarkCreate(b *testing.B) {
	for _, tc := range []struct{ name, body string }{
		{"email", emailBody(testNow.Add(48 * time.Hour).Format(time.RFC3339))},
		{"voice", voiceBody(testNow.Add(48 * time.Hour).Format(time.RFC3339))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := setupCredits(b, 1<<40)
			key := e.keys["all"]
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req := httptest.NewRequest("POST", "/v1/scheduled-communications", strings.NewReader(tc.body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+key)
				rec := httptest.NewRecorder()
				e.api.ServeHTTP(rec, req)
				if rec.Code != 201 {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

// BenchmarkCreateParallel is BenchmarkCreate from GOMAXPROCS goroutines at
// once: the single SQLite writer serializes the transactions.
func BenchmarkCreateParallel(b *testing.B) {
	e := setupCredits(b, 1<<40)
	body := emailBody(testNow.Add(48 * time.Hour).Format(time.RFC3339))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("POST", "/v1/scheduled-communications", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+e.keys["all"])
			rec := httptest.NewRecorder()
			e.api.ServeHTTP(rec, req)
			if rec.Code != 201 {
				b.Errorf("status %d: %s", rec.Code, rec.Body)
				return
			}
		}
	})
}

// BenchmarkRateLimit is one authenticated read (GET /v1/settings: auth
// from the key cache, one company read on SQLite) without a rate limiter
// and with the embedded mode's (the in-memory bucket, a limit never hit):
// the difference is the limiter's cost per request.
func BenchmarkRateLimit(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "memory"}[on], func(b *testing.B) {
			e := setup(b)
			if on {
				withLimit(e, ratelimit.Limit{Rate: ratelimit.MaxRate, Burst: ratelimit.MaxBurst}, nil)
			}
			key := e.keys["all"]
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req := httptest.NewRequest("GET", "/v1/settings", nil)
				req.Header.Set("Authorization", "Bearer "+key)
				rec := httptest.NewRecorder()
				e.api.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
