package ratelimit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/clock"
	"github.com/dispatcherhq/dispatcher/internal/ratelimit"
)

// A bucket of 3 at 2/s: three requests pass at once, the fourth waits
// half a second; after 1.5 s idle the bucket is full again.
func TestBucket(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	lim := ratelimit.New(ratelimit.NewMemory(), ratelimit.Policy{Default: ratelimit.Limit{Rate: 2, Burst: 3}}, clk.Now)
	ctx := context.Background()
	for i, want := range []int{2, 1, 0} {
		d, err := lim.Allow(ctx, "co", 1)
		if err != nil || !d.Allowed || d.Remaining != want {
			t.Fatalf("request %d: %+v, %v; want allowed with %d left", i, d, err, want)
		}
	}
	d, _ := lim.Allow(ctx, "co", 1)
	if d.Allowed || d.RetryAfter != 500*time.Millisecond || d.Remaining != 0 || d.Reset != 1500*time.Millisecond {
		t.Fatalf("4th: %+v; want denied, retry after 500ms, reset 1.5s", d)
	}
	// A denied request takes nothing: after 500 ms exactly one passes.
	clk.Advance(500 * time.Millisecond)
	if d, _ := lim.Allow(ctx, "co", 1); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("after 500ms: %+v; want allowed, 0 left", d)
	}
	if d, _ := lim.Allow(ctx, "co", 1); d.Allowed {
		t.Fatalf("again: %+v; want denied", d)
	}
	// Another company has its own bucket.
	if d, _ := lim.Allow(ctx, "other", 1); !d.Allowed || d.Remaining != 2 {
		t.Fatalf("other company: %+v; want allowed with 2 left", d)
	}
	clk.Advance(time.Hour)
	if d, _ := lim.Allow(ctx, "co", 1); !d.Allowed || d.Remaining != 2 || d.Reset != 500*time.Millisecond {
		t.Fatalf("after an hour: %+v; want a full bucket less one", d)
	}
}

// Decide never lets more than burst + rate·t requests through in t.
func TestDecideBound(t *testing.T) {
	lim := ratelimit.Limit{Rate: 7, Burst: 5}
	var tat int64
	allowed := 0
	const span = int64(10 * time.Second)
	for now := int64(0); now < span; now += int64(3 * time.Millisecond) {
		var d ratelimit.Decision
		tat, d = ratelimit.Decide(tat, now, lim, 1)
		if d.Allowed {
			allowed++
		}
	}
	if max := 5 + 7*10; allowed > max || allowed < max-1 {
		t.Fatalf("allowed %d in 10 s; want about %d (burst 5 + 7/s)", allowed, max)
	}
}

func TestParsePolicy(t *testing.T) {
	p, err := ratelimit.ParsePolicy("R", "25", "B", "50", "O", " acme=100/200 , tiny=0.5/1")
	if err != nil {
		t.Fatal(err)
	}
	if p.For("x") != (ratelimit.Limit{Rate: 25, Burst: 50}) || p.For("acme") != (ratelimit.Limit{Rate: 100, Burst: 200}) ||
		p.For("tiny") != (ratelimit.Limit{Rate: 0.5, Burst: 1}) {
		t.Fatalf("policy %v", p)
	}
	if off, err := ratelimit.ParsePolicy("R", "", "B", "", "O", ""); err != nil || off.Enabled() {
		t.Fatalf("empty: %v, %v; want off", off, err)
	}
	for _, bad := range [][3]string{{"0", "5", ""}, {"x", "5", ""}, {"5", "0", ""}, {"5", "1.5", ""}, {"5", "5", "acme=1"},
		{"5", "5", "=1/2"}, {"5", "5", "a=-1/2"}, {"", "5", ""}, {"", "", "a=1/1"}} {
		if _, err := ratelimit.ParsePolicy("R", bad[0], "B", bad[1], "O", bad[2]); err == nil ||
			!strings.ContainsAny(err.Error(), "ROB") {
			t.Errorf("%q: err %v; want an error naming the variable", bad, err)
		}
	}
}

// BenchmarkMemory is one TakeTokens of the in-memory store (the embedded
// mode's limiter), a limit never hit.
func BenchmarkMemory(b *testing.B) {
	m := ratelimit.NewMemory()
	lim := ratelimit.Limit{Rate: ratelimit.MaxRate, Burst: ratelimit.MaxBurst}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		if d, _ := m.TakeTokens(ctx, "co", lim, 1, now); !d.Allowed {
			b.Fatal("denied")
		}
	}
}
