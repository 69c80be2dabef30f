// Package clock is the time source of the in-process parts of Dispatcher
// (the local timer, the embedded sweeper, the dev voice simulator): it tells
// the time and wakes a sleeper at an instant.
//
// System is the wall clock. Fake is a clock that moves only when a test
// moves it, so tests decide exactly what is due instead of sleeping: arm a
// fire an hour ahead, advance the fake clock an hour, and the fire is
// delivered; do not advance it, and it provably stays armed.
//
// Alarms are set at an absolute instant, not after a duration, so a sleeper
// that computes its deadline from Now and sets its alarm a moment later
// cannot miss a fake clock that moved in between: an alarm at or before the
// clock's current time goes off at once.
package clock

import (
	"slices"
	"sync"
	"time"
)

// Clock tells the time and wakes sleepers.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// Alarm returns a channel that receives once the clock reads at or
	// later (at once if it already does), and a function that releases the
	// alarm early. The channel receives at most one value and is never
	// closed.
	Alarm(at time.Time) (<-chan time.Time, func())
}

// System is the wall clock.
var System Clock = system{}

type system struct{}

func (system) Now() time.Time { return time.Now() }

func (system) Alarm(at time.Time) (<-chan time.Time, func()) {
	t := time.NewTimer(time.Until(at))
	return t.C, func() { t.Stop() }
}

// OrSystem returns c, or System when c is nil.
func OrSystem(c Clock) Clock {
	if c == nil {
		return System
	}
	return c
}

// Fake is a Clock for tests: its time changes only through Set and
// Advance, which ring every alarm that is then due. It is safe for
// concurrent use.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	alarms []*alarm
}

type alarm struct {
	at time.Time
	c  chan time.Time
}

var _ Clock = (*Fake)(nil)

// NewFake returns a fake clock that reads start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Alarm implements Clock.
func (f *Fake) Alarm(at time.Time) (<-chan time.Time, func()) {
	c := make(chan time.Time, 1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !at.After(f.now) {
		c <- f.now
		return c, func() {}
	}
	a := &alarm{at: at, c: c}
	f.alarms = append(f.alarms, a)
	return c, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if i := slices.Index(f.alarms, a); i >= 0 {
			f.alarms = slices.Delete(f.alarms, i, i+1)
		}
	}
}

// Advance moves the clock forward by d (d < 0 panics) and rings every alarm
// due by then. Alarms ring when Advance returns the new time: a sleeper
// woken by it reads the new time, not its alarm's instant. To run events one
// at a time, advance to Next.
func (f *Fake) Advance(d time.Duration) time.Time {
	if d < 0 {
		panic("clock.Fake: Advance with a negative duration")
	}
	f.mu.Lock()
	t := f.now.Add(d)
	f.mu.Unlock()
	f.Set(t)
	return t
}

// Set moves the clock to t (earlier than now panics: time does not go
// back) and rings every alarm due by then.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t.Before(f.now) {
		panic("clock.Fake: Set to " + t.String() + ", before the current time " + f.now.String())
	}
	f.now = t
	kept := f.alarms[:0]
	for _, a := range f.alarms {
		if a.at.After(t) {
			kept = append(kept, a)
			continue
		}
		a.c <- t // capacity 1, rung once: never blocks
	}
	clear(f.alarms[len(kept):])
	f.alarms = kept
}

// Next returns the instant of the earliest alarm still set; ok is false
// when none is.
func (f *Fake) Next() (at time.Time, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.alarms {
		if !ok || a.at.Before(at) {
			at, ok = a.at, true
		}
	}
	return at, ok
}

// Alarms reports how many alarms are set and not yet rung.
func (f *Fake) Alarms() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.alarms)
}
