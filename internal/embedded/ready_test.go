package embedded_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/clock"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
)

// TestReadinessFollowsTheDisk: /readyz is 200 while the SQLite file takes
// writes and 503 while it is full — when creates fail too — and 200 again
// once space is freed, while /healthz stays 200 throughout.
func TestReadinessFollowsTheDisk(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(base)
	n := startNode(t, t.TempDir(), dispatch.Config{}, clk)
	defer n.stop()
	get := func(path string) int {
		rec := httptest.NewRecorder()
		n.l.API.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code
	}
	if got := get("/readyz"); got != 200 {
		t.Fatalf("/readyz = %d on a healthy store", got)
	}
	if err := n.l.Store.LimitGrowth(t.Context(), 0); err != nil { // the disk is full
		t.Fatal(err)
	}
	for i := 0; ; i++ { // until a create needs a page the file cannot have
		if code := n.post(t, emailAt(base.Add(time.Hour), "sarah@example.com")); code != 201 {
			if code != 503 {
				t.Fatalf("a create on a full disk: %d, want 503 store_unavailable (nothing was changed; retry later)", code)
			}
			break
		}
		if i == 1000 {
			t.Fatal("1000 creates fit in a full file")
		}
	}
	clk.Advance(time.Second) // past the reuse of the last round of checks
	if got := get("/readyz"); got != 503 {
		t.Fatalf("/readyz = %d on a full disk, want 503", got)
	}
	if got := get("/healthz"); got != 200 {
		t.Fatalf("/healthz = %d on a full disk, want 200 (the process is alive)", got)
	}
	if err := n.l.Store.LimitGrowth(t.Context(), -1); err != nil { // space freed
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if got := get("/readyz"); got != 200 {
		t.Fatalf("/readyz = %d once space is freed", got)
	}
	n.create(t, emailAt(base.Add(time.Hour), "sarah@example.com"))
}
