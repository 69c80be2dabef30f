package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/ratelimit"
)

// RateLimitPolicyName names the one quota policy in RateLimit-Policy and
// RateLimit: the company's bucket.
const RateLimitPolicyName = "company"

// rateLimitedError is a request refused by its company's bucket (429).
type rateLimitedError struct{ retryAfter time.Duration }

func (e *rateLimitedError) Error() string {
	return fmt.Sprintf("rate limited; retry after %s", e.retryAfter)
}

// limit takes the request's token from its company's bucket and writes the
// rate-limit header fields; a refused request is a *rateLimitedError. Every
// authenticated request costs one token, reads and writes alike
// (docs/design.md, "Rate limits"). A limiter error is logged and the
// request goes on: availability first, the stage throttling is the
// backstop.
func (a *API) limit(w http.ResponseWriter, r *http.Request, company string) error {
	if a.limiter == nil {
		return nil
	}
	d, err := a.limiter.Allow(r.Context(), company, 1)
	if err != nil {
		a.log.WarnContext(r.Context(), "rate limiter failed; request let through", "request_id", requestID(r),
			"company_id", company, "error", err.Error())
		return nil
	}
	h := w.Header()
	h.Set("RateLimit-Policy", RateLimitPolicy(d.Limit))
	h.Set("RateLimit", fmt.Sprintf("%q;r=%d;t=%d", RateLimitPolicyName, max(d.Remaining, 0), ceilSeconds(d.Reset, 0)))
	if !d.Allowed {
		return &rateLimitedError{retryAfter: d.RetryAfter}
	}
	return nil
}

// RateLimitPolicy is the RateLimit-Policy field value of a bucket, as
// draft-ietf-httpapi-ratelimit-headers-10 §2 writes a quota policy: the
// policy's name, q the quota (the burst: requests a full bucket admits at
// once) and w the window in seconds (how long an empty bucket takes to
// fill, at least 1), e.g. `"company";q=50;w=2` for 25 requests/s, burst 50.
func RateLimitPolicy(l ratelimit.Limit) string {
	return fmt.Sprintf("%q;q=%d;w=%d", RateLimitPolicyName, l.Burst, ceilSeconds(l.Window(), 1))
}

// ceilSeconds is d in whole seconds rounded up, at least floor.
func ceilSeconds(d time.Duration, floor int64) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	return max(s, floor)
}
