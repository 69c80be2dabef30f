package clock_test

import (
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/clock"
)

var start = time.Date(2030, 1, 7, 9, 0, 0, 0, time.UTC)

// rung reports whether c has received, without waiting: a fake clock rings
// its alarms inside Set, so there is nothing to wait for.
func rung(c <-chan time.Time) (time.Time, bool) {
	select {
	case t := <-c:
		return t, true
	default:
		return time.Time{}, false
	}
}

func TestFakeRingsAlarmsWhenDue(t *testing.T) {
	t.Parallel()
	f := clock.NewFake(start)
	if got := f.Now(); !got.Equal(start) {
		t.Fatalf("Now = %v, want %v", got, start)
	}
	early, _ := f.Alarm(start.Add(time.Second))
	late, _ := f.Alarm(start.Add(time.Hour))
	cancelled, cancel := f.Alarm(start.Add(time.Second))
	cancel()
	if next, ok := f.Next(); !ok || !next.Equal(start.Add(time.Second)) || f.Alarms() != 2 {
		t.Fatalf("Next = %v %v, Alarms = %d; want %v, 2", next, ok, f.Alarms(), start.Add(time.Second))
	}

	f.Advance(999 * time.Millisecond)
	if _, ok := rung(early); ok {
		t.Fatal("an alarm rang 1 ms before its time")
	}
	if got := f.Advance(time.Millisecond); !got.Equal(start.Add(time.Second)) {
		t.Fatalf("Advance returned %v", got)
	}
	if at, ok := rung(early); !ok || !at.Equal(start.Add(time.Second)) {
		t.Fatalf("alarm at its time: rang %v at %v", ok, at)
	}
	if _, ok := rung(cancelled); ok {
		t.Error("a released alarm rang")
	}
	if _, ok := rung(late); ok {
		t.Error("the later alarm rang early")
	}
	f.Set(start.Add(2 * time.Hour))
	if at, ok := rung(late); !ok || !at.Equal(start.Add(2*time.Hour)) {
		t.Errorf("Set past the late alarm: rang %v at %v (alarms ring with the new time)", ok, at)
	}
	if _, ok := f.Next(); ok || f.Alarms() != 0 {
		t.Errorf("alarms left after all rang: %d", f.Alarms())
	}
}

func TestFakeAlarmInThePastRingsAtOnce(t *testing.T) {
	t.Parallel()
	f := clock.NewFake(start)
	for _, at := range []time.Time{start, start.Add(-time.Hour)} {
		c, release := f.Alarm(at)
		if got, ok := rung(c); !ok || !got.Equal(start) {
			t.Errorf("alarm at %v: rang %v at %v, want at once", at, ok, got)
		}
		release() // harmless after ringing
	}
	if f.Alarms() != 0 {
		t.Errorf("Alarms = %d, want 0", f.Alarms())
	}
}

func TestFakeRefusesToGoBack(t *testing.T) {
	t.Parallel()
	f := clock.NewFake(start)
	for name, move := range map[string]func(){
		"Set":     func() { f.Set(start.Add(-time.Nanosecond)) },
		"Advance": func() { f.Advance(-time.Nanosecond) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s into the past did not panic", name)
				}
			}()
			move()
		}()
	}
	if !f.Now().Equal(start) {
		t.Errorf("Now = %v after refused moves", f.Now())
	}
}

// TestSystemAlarm checks the wall clock's alarm goes off; the bound is
// generous because the machine may be busy, and lateness is not asserted.
func TestSystemAlarm(t *testing.T) {
	t.Parallel()
	c := clock.OrSystem(nil)
	at := c.Now().Add(5 * time.Millisecond)
	ring, _ := c.Alarm(at)
	select {
	case got := <-ring:
		if got.Before(at) {
			t.Errorf("rang at %v, before %v", got, at)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the system alarm did not ring within 10 s")
	}
	never, release := c.Alarm(c.Now().Add(time.Hour))
	release()
	if _, ok := rung(never); ok {
		t.Error("a released system alarm rang")
	}
}
