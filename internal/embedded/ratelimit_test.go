package embedded_test

import (
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/clock"
	"github.com/dispatcherhq/dispatcher/internal/embedded"
	"github.com/dispatcherhq/dispatcher/internal/ratelimit"
)

// TestRateLimit: LocalConfig.RateLimit (serve --rate-limit/--rate-burst)
// limits the dev company's creates on the process's clock; a refused
// create stores nothing.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(base)
	n := startNodeWith(t, embedded.LocalConfig{DataDir: t.TempDir(), SweepEvery: time.Hour,
		RateLimit: ratelimit.Policy{Default: ratelimit.Limit{Rate: 1, Burst: 2}}}, clk)
	defer n.stop()
	n.create(t, emailAt(base.Add(time.Hour), "a@example.com"))
	n.create(t, emailAt(base.Add(time.Hour), "b@example.com"))
	if code := n.post(t, emailAt(base.Add(time.Hour), "c@example.com")); code != 429 {
		t.Fatalf("third create within the second: %d; want 429", code)
	}
	clk.Advance(time.Second)
	n.create(t, emailAt(base.Add(time.Hour), "d@example.com"))
	rows, err := n.l.Store.DueCommunications(t.Context(), base.Add(2*time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows stored; want 3 (the refused create stored nothing)", len(rows))
	}
}
