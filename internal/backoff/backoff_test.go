package backoff

import (
	"testing"
	"time"
)

func TestDelayGrowsWithinTheUpperHalfOfTheStep(t *testing.T) {
	p := Policy{Base: 30 * time.Second, Cap: 15 * time.Minute}
	cases := []struct {
		n    int
		step time.Duration
	}{
		{0, 30 * time.Second}, {1, 30 * time.Second}, {2, time.Minute}, {3, 2 * time.Minute},
		{5, 8 * time.Minute}, {6, 15 * time.Minute}, {60, 15 * time.Minute},
	}
	for _, c := range cases {
		if got := p.Step(c.n); got != c.step {
			t.Errorf("Step(%d) = %v, want %v", c.n, got, c.step)
		}
		lo, hi := p.Delay(c.n, 0), p.Delay(c.n, 1)
		if lo != c.step/2 {
			t.Errorf("Delay(%d, 0) = %v, want %v", c.n, lo, c.step/2)
		}
		if hi != c.step {
			t.Errorf("Delay(%d, 1) = %v, want %v", c.n, hi, c.step)
		}
		for range 100 {
			if d := p.Random(c.n); d < c.step/2 || d > c.step {
				t.Fatalf("Random(%d) = %v outside [%v, %v]", c.n, d, c.step/2, c.step)
			}
		}
	}
}
