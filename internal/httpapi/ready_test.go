package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/httpapi"
)

// TestReadiness: /readyz is 200 while the store commits and 503 (naming
// the store, with Retry-After) while it cannot, and 200 again after; the
// liveness endpoint stays 200 throughout. One round of checks is reused for
// ReadyReuse.
func TestReadiness(t *testing.T) {
	t.Parallel()
	e := setup(t)
	body := func(b []byte) (status string, store any) {
		t.Helper()
		var v struct {
			Status string         `json:"status"`
			Checks map[string]any `json:"checks"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return v.Status, v.Checks["store"]
	}

	// Without checks: ready, like /healthz.
	if r := e.mustDo("GET", "/readyz", "", "", 200); r.Status != 200 {
		t.Fatal(r.Status)
	}

	var broken atomic.Bool
	e.api.SetReadiness(e.clock.Now, httpapi.ReadyCheck{Name: "store", Check: func(ctx context.Context) error {
		if broken.Load() {
			return errors.New("sqlite.Ready: disk full")
		}
		return e.store.Ready(ctx)
	}})
	r := e.mustDo("GET", "/readyz", "", "", 200)
	if st, store := body(r.Body); st != "ready" || store != "ok" {
		t.Fatalf("ready store: %s", r.Body)
	}

	broken.Store(true)
	e.mustDo("GET", "/readyz", "", "", 200) // the last round, reused
	e.clock.Advance(httpapi.ReadyReuse)
	r = e.mustDo("GET", "/readyz", "", "", 503)
	if st, store := body(r.Body); st != "unavailable" || store != "failing" {
		t.Fatalf("failing store: %s", r.Body)
	}
	if r.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if strings.Contains(string(r.Body), "disk full") || strings.Contains(string(r.Body), "sqlite") {
		t.Errorf("the reason is shown to an unauthenticated caller: %s", r.Body)
	}
	e.mustDo("GET", "/healthz", "", "", 200) // liveness is not readiness

	broken.Store(false)
	e.clock.Advance(time.Second)
	e.mustDo("GET", "/readyz", "", "", 200)
}
