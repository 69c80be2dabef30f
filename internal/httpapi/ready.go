package httpapi

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// ReadyCheck is one dependency GET /readyz asks: Check returns nil when
// the dependency can serve (for a store: can commit a write now).
type ReadyCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// ReadyTimeout bounds one round of readiness checks: a store that cannot
// commit within it is not ready.
const ReadyTimeout = 2 * time.Second

// ReadyReuse is how long one round's answer is reused: /readyz needs no
// key and a check may write (the SQLite probe commits, with an fsync), so
// a flood of probes costs at most one round per second.
const ReadyReuse = time.Second

// readiness runs the checks of /readyz, one round at a time.
type readiness struct {
	checks []ReadyCheck
	now    func() time.Time
	mu     sync.Mutex // held for a round; callers meanwhile wait and reuse it
	at     time.Time  // when the last round ended
	failed map[string]string
	ran    bool
}

// SetReadiness makes GET /readyz answer 503 while any of checks fails, and
// 200 otherwise; now is the clock ReadyReuse is measured on (nil:
// time.Now). Without checks /readyz answers 200, like /healthz.
func (a *API) SetReadiness(now func() time.Time, checks ...ReadyCheck) {
	if now == nil {
		now = time.Now
	}
	a.ready = &readiness{checks: checks, now: now}
}

// round returns the failing checks by name (empty when ready).
func (rd *readiness) round(ctx context.Context) map[string]string {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if rd.ran && rd.now().Sub(rd.at) < ReadyReuse {
		return rd.failed
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ReadyTimeout)
	defer cancel()
	failed := map[string]string{}
	for _, c := range rd.checks {
		if err := c.Check(ctx); err != nil {
			failed[c.Name] = err.Error()
		}
	}
	rd.failed, rd.at, rd.ran = failed, rd.now(), true
	return failed
}

// readyz is readiness, for load balancers and orchestrators: 200 when every
// dependency can serve, 503 (with Retry-After) naming those that cannot.
// The body is not wrapped in the envelope; why a check failed is logged,
// not shown (the endpoint needs no key).
func (a *API) readyz(w http.ResponseWriter, r *http.Request, _ comms.Principal) error {
	checks := map[string]string{}
	var failed map[string]string
	if a.ready != nil {
		failed = a.ready.round(r.Context())
		for _, c := range a.ready.checks {
			checks[c.Name] = "ok"
		}
	}
	if len(failed) == 0 {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": checks})
		return nil
	}
	for name, why := range failed {
		checks[name] = "failing"
		a.log.WarnContext(r.Context(), "not ready", "check", name, "error", why)
	}
	w.Header().Set("Retry-After", "5")
	writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "checks": checks})
	return nil
}
