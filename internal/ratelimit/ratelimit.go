// Package ratelimit limits each company's API requests with a token bucket
// kept in the store, so that the limit holds across processes (Lambda
// instances) that share the store.
//
// The bucket is kept in GCRA form (the generic cell rate algorithm, a
// token bucket stated as one number): the theoretical arrival time TAT, in
// Unix nanoseconds. A bucket of Burst tokens refilled at Rate tokens per
// second holds, at time now, Burst − (TAT − now)·Rate tokens (all of them
// when TAT ≤ now). Taking n tokens moves TAT to max(TAT, now) + n/Rate, and
// is allowed when the new TAT is at most Burst/Rate ahead of now. One
// number, and an update that is either "set" (an idle bucket) or "add"
// (a busy one), is what lets DynamoDB apply it in one conditional
// UpdateItem without reading first (internal/store/dynamo, ratelimit.go).
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limit is one company's bucket: Rate tokens per second (a request costs
// one token) refill it up to Burst tokens.
type Limit struct {
	Rate  float64
	Burst int
}

// Valid reports an error naming what is wrong with l: Rate must be > 0 and
// at most MaxRate, Burst at least 1 and at most MaxBurst.
func (l Limit) Valid() error {
	if !(l.Rate > 0) || l.Rate > MaxRate || math.IsInf(l.Rate, 0) {
		return fmt.Errorf("rate %v: want requests per second in (0, %d]", l.Rate, MaxRate)
	}
	if l.Burst < 1 || l.Burst > MaxBurst {
		return fmt.Errorf("burst %d: want 1 to %d requests", l.Burst, MaxBurst)
	}
	return nil
}

// Bounds of a Limit: a token is at least one microsecond of TAT, far above
// the nanosecond resolution the arithmetic keeps.
const (
	MaxRate  = 1_000_000
	MaxBurst = 1_000_000
)

// Interval is how long one token takes to come back, in nanoseconds.
func (l Limit) Interval() int64 { return int64(math.Ceil(float64(time.Second) / l.Rate)) }

// Window is how long an empty bucket takes to fill: Burst tokens at Rate.
func (l Limit) Window() time.Duration { return time.Duration(int64(l.Burst) * l.Interval()) }

// Decision is what one Take decided, with what the response's headers say.
type Decision struct {
	Allowed bool
	Limit   Limit
	// Remaining is the whole tokens left after this request (0 when denied
	// with an empty bucket).
	Remaining int
	// Reset is how long until the bucket is full again.
	Reset time.Duration
	// RetryAfter, when denied, is how long until the request's tokens are
	// back; 0 when allowed.
	RetryAfter time.Duration
}

// Decide applies GCRA: tat is the bucket's stored TAT (Unix ns; 0 for a
// bucket never used), now the time of the request, cost the tokens it
// takes (≥ 1). It returns the TAT to store (tat unchanged when denied) and
// the decision.
func Decide(tat, now int64, lim Limit, cost int) (int64, Decision) {
	step := lim.Interval()
	tau := int64(lim.Burst) * step
	base := max(tat, now)
	next := base + int64(cost)*step
	if next-now > tau {
		return tat, Decision{Allowed: false, Limit: lim, Remaining: int((now + tau - base) / step),
			Reset: time.Duration(base - now), RetryAfter: time.Duration(next - now - tau)}
	}
	return next, Decision{Allowed: true, Limit: lim, Remaining: int((now + tau - next) / step), Reset: time.Duration(next - now)}
}

// Store takes tokens from a bucket atomically: the in-memory Memory in
// one process (the embedded mode), the DynamoDB table across Lambda
// instances. key names the bucket (a company id); a store may keep a
// bucket only as long as it is not full (its TAT is in the future).
type Store interface {
	TakeTokens(ctx context.Context, key string, lim Limit, cost int, now time.Time) (Decision, error)
}

// Policy is the limit of every company: Default, or Companies[id].
type Policy struct {
	Default   Limit
	Companies map[string]Limit
}

// Enabled reports whether the policy limits anything (Default set).
func (p Policy) Enabled() bool { return p.Default.Rate > 0 }

// For returns company's limit.
func (p Policy) For(company string) Limit {
	if l, ok := p.Companies[company]; ok {
		return l
	}
	return p.Default
}

// ParsePolicy reads a policy from its configuration text: rate (requests
// per second, a decimal), burst (a whole number) and overrides, a
// comma-separated list of company_id=rate/burst ("" for none). rate ""
// means no limit (the zero Policy); then burst and overrides must be
// empty. Errors name the variable (the names given).
func ParsePolicy(rateName, rate, burstName, burst, overridesName, overrides string) (Policy, error) {
	if strings.TrimSpace(rate) == "" {
		if strings.TrimSpace(burst) != "" || strings.TrimSpace(overrides) != "" {
			return Policy{}, fmt.Errorf("%s and %s need %s", burstName, overridesName, rateName)
		}
		return Policy{}, nil
	}
	var p Policy
	var err error
	if p.Default, err = parseLimit(rate, burst); err != nil {
		return Policy{}, fmt.Errorf("%s/%s: %w", rateName, burstName, err)
	}
	for _, o := range strings.Split(overrides, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		id, lim, ok := strings.Cut(o, "=")
		r, b, ok2 := strings.Cut(lim, "/")
		if !ok || !ok2 || strings.TrimSpace(id) == "" {
			return Policy{}, fmt.Errorf("%s: %q: want company_id=rate/burst", overridesName, o)
		}
		l, err := parseLimit(r, b)
		if err != nil {
			return Policy{}, fmt.Errorf("%s: company %s: %w", overridesName, strings.TrimSpace(id), err)
		}
		if p.Companies == nil {
			p.Companies = map[string]Limit{}
		}
		p.Companies[strings.TrimSpace(id)] = l
	}
	return p, nil
}

func parseLimit(rate, burst string) (Limit, error) {
	r, err := strconv.ParseFloat(strings.TrimSpace(rate), 64)
	if err != nil {
		return Limit{}, fmt.Errorf("rate %q is not a number", rate)
	}
	b, err := strconv.Atoi(strings.TrimSpace(burst))
	if err != nil {
		return Limit{}, fmt.Errorf("burst %q is not a whole number", burst)
	}
	l := Limit{Rate: r, Burst: b}
	return l, l.Valid()
}

// OverridesText is p.Companies as ParsePolicy's overrides read them:
// "company_id=rate/burst,…", sorted by company id ("" for none).
func (p Policy) OverridesText() string {
	var parts []string
	for _, id := range slices.Sorted(maps.Keys(p.Companies)) {
		l := p.Companies[id]
		parts = append(parts, id+"="+strconv.FormatFloat(l.Rate, 'g', -1, 64)+"/"+strconv.Itoa(l.Burst))
	}
	return strings.Join(parts, ",")
}

// Limiter takes a request's tokens from its company's bucket.
type Limiter struct {
	store  Store
	policy Policy
	now    func() time.Time
}

// New returns a limiter over store with policy, reading time from now.
func New(store Store, policy Policy, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{store: store, policy: policy, now: now}
}

// Allow takes cost tokens from company's bucket. A store error is returned
// with the zero Decision (the caller decides whether to fail open).
func (l *Limiter) Allow(ctx context.Context, company string, cost int) (Decision, error) {
	if company == "" {
		return Decision{}, errors.New("ratelimit.Allow: a company id is required")
	}
	d, err := l.store.TakeTokens(ctx, company, l.policy.For(company), cost, l.now())
	if err != nil {
		return Decision{}, fmt.Errorf("store.TakeTokens: %w", err)
	}
	return d, nil
}

// Memory is a Store in this process's memory: one process owns the
// buckets (the embedded mode). Full buckets are forgotten as it grows.
type Memory struct {
	mu  sync.Mutex
	tat map[string]int64
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{tat: map[string]int64{}} }

// memorySweepAt is the size past which TakeTokens forgets full buckets.
const memorySweepAt = 10_000

// TakeTokens implements Store.
func (m *Memory) TakeTokens(_ context.Context, key string, lim Limit, cost int, now time.Time) (Decision, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := now.UnixNano()
	if len(m.tat) >= memorySweepAt {
		for k, t := range m.tat {
			if t <= n {
				delete(m.tat, k)
			}
		}
	}
	next, d := Decide(m.tat[key], n, lim, cost)
	m.tat[key] = next
	return d, nil
}
