package bizhours_test

import (
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/dispatcherhq/dispatcher/internal/bizhours"
)

func everyDay(from, to string) bizhours.Calendar {
	spec := ""
	for _, d := range []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"} {
		spec += d + " " + from + "-" + to + ";"
	}
	return cal(spec)
}

// TestNextOpenAll: the earliest instant open in every zone — the later of
// the openings when two zones differ, t itself when all are open, none
// when the windows never overlap.
func TestNextOpenAll(t *testing.T) {
	ny, la, boise := loadLoc(t, "America/New_York"), loadLoc(t, "America/Los_Angeles"), loadLoc(t, "America/Boise")
	eightToNine := everyDay("08:00", "21:00")
	cases := []struct {
		name string
		t    string
		cs   []bizhours.Constraint
		want string // "" for none
	}{
		{"no constraints: t", "2026-03-02T08:00:00Z", nil, "2026-03-02T08:00:00Z"},
		{"one zone, closed: its opening", "2026-03-02T08:00:00Z", []bizhours.Constraint{{eightToNine, ny}}, "2026-03-02T13:00:00Z"},
		{"two zones: the later opening (08:00 Los Angeles = 09:00 Boise)", "2026-03-02T10:00:00Z",
			[]bizhours.Constraint{{eightToNine, boise}, {eightToNine, la}}, "2026-03-02T16:00:00Z"},
		{"open in both: t", "2026-03-02T20:30:00Z", []bizhours.Constraint{{eightToNine, boise}, {eightToNine, la}}, "2026-03-02T20:30:00Z"},
		{"closed in one since its close: next day's later opening", "2026-03-03T04:30:00Z",
			[]bizhours.Constraint{{eightToNine, boise}, {eightToNine, la}}, "2026-03-03T16:00:00Z"},
		{"windows that never overlap", "2026-03-02T10:00:00Z",
			[]bizhours.Constraint{{everyDay("08:00", "09:00"), ny}, {everyDay("08:00", "09:00"), la}}, ""},
		{"a calendar that never opens", "2026-03-02T10:00:00Z", []bizhours.Constraint{{bizhours.Calendar{}, ny}}, ""},
		// 2026-03-08: New York springs forward at 02:00 local (07:00Z), Los
		// Angeles at 02:00 local (10:00Z); a 02:30 opening is in both gaps.
		{"DST gap in both zones", "2026-03-08T06:00:00Z",
			[]bizhours.Constraint{{everyDay("02:30", "12:00"), ny}, {everyDay("02:30", "12:00"), la}}, "2026-03-08T10:00:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := bizhours.NextOpenAll(instant(t, tc.t), tc.cs...)
			if tc.want == "" {
				if ok {
					t.Fatalf("NextOpenAll = %v, want none", got)
				}
				return
			}
			if !ok || !got.Equal(instant(t, tc.want)) || got.Location() != time.UTC {
				t.Fatalf("NextOpenAll = %v, %v; want %s", got, ok, tc.want)
			}
		})
	}
}

// TestNextOpenAllProperties: for random weeks, zones (one to four) and
// instants near DST changes, NextOpenAll's answer is open under every
// constraint, not before t, and no earlier instant in [t, answer) is open
// under all of them; when it finds none, no instant of the next year is.
// The common openness of several constraints begins where one of them
// opens, so the instants checked are t, every zone transition and every
// interval start of each constraint (candidateOpenings), plus samples.
func TestNextOpenAllProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 4).Draw(t, "constraints")
		cs := make([]bizhours.Constraint, n)
		weeks := make([][7][]bizhours.Interval, n)
		for i := range cs {
			weeks[i] = weekGen.Draw(t, "week")
			c, err := bizhours.New(weeks[i], nil)
			if err != nil {
				t.Fatal(err)
			}
			cs[i] = bizhours.Constraint{Calendar: c, Loc: drawLoc(t, "zone")}
		}
		from := drawInstant(t, cs[0].Loc)
		next, ok := bizhours.NextOpenAll(from, cs...)
		allOpen := func(x time.Time) bool {
			for _, c := range cs {
				if !c.Calendar.IsOpen(x, c.Loc) {
					return false
				}
			}
			return true
		}
		end := next
		if ok {
			if next.Before(from) || !allOpen(next) {
				t.Fatalf("NextOpenAll(%v) = %v: before t or not open everywhere", from, next)
			}
		} else {
			end = from.AddDate(1, 0, 0)
		}
		var xs []time.Time
		for i, c := range cs {
			xs = append(xs, candidateOpenings(weeks[i], from, end, c.Loc)...)
		}
		slices.SortFunc(xs, time.Time.Compare)
		for _, x := range xs {
			if allOpen(x) {
				t.Fatalf("NextOpenAll(%v) = %v, %v but %v is open everywhere", from, next, ok, x)
			}
		}
		if span := int64(end.Sub(from)); span > 0 {
			for range 100 {
				if x := from.Add(time.Duration(rapid.Int64Range(0, span-1).Draw(t, "sample"))); allOpen(x) {
					t.Fatalf("NextOpenAll(%v) = %v, %v but sample %v is open everywhere", from, next, ok, x)
				}
			}
		}
	})
}
