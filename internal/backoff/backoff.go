// Package backoff is the one retry-delay rule of Dispatcher: exponential
// growth from a base, capped, with "equal jitter" — a uniform draw from the
// upper half of the step (AWS Architecture Blog, "Exponential Backoff And
// Jitter", 2015). Equal jitter keeps every delay at least half its step, so
// gaps still grow from one attempt to the next, while the retries of many
// callers spread out instead of arriving together.
//
// It is used for delivery retries (dispatch), the timer's retries of SQS and
// Scheduler calls (timer/aws) and the DynamoDB store's retries of contended
// transactions (store/dynamo).
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff with equal jitter.
type Policy struct {
	// Base is the step of the first retry; each later retry doubles it.
	Base time.Duration
	// Cap bounds the step.
	Cap time.Duration
}

// Step is the undithered delay before retry n (n ≥ 1 is the retry after the
// n-th failure): min(Base·2^(n−1), Cap). n < 1 counts as 1.
func (p Policy) Step(n int) time.Duration {
	step := p.Base
	for i := 1; i < n && step < p.Cap; i++ {
		step *= 2
	}
	return min(step, p.Cap)
}

// Delay is the delay before retry n given r, a draw in [0, 1]: Step(n)/2
// at r = 0, Step(n) at r = 1. Tests pass a fixed r; callers use Random.
func (p Policy) Delay(n int, r float64) time.Duration {
	step := p.Step(n)
	half := step / 2
	return half + time.Duration(min(max(r, 0), 1)*float64(step-half))
}

// Random is Delay with a fresh random draw.
func (p Policy) Random(n int) time.Duration { return p.Delay(n, rand.Float64()) }

// Sleep waits Random(n), or until ctx ends (then it returns ctx.Err()).
func (p Policy) Sleep(ctx context.Context, n int) error {
	t := time.NewTimer(p.Random(n))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
