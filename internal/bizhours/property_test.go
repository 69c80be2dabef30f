package bizhours_test

import (
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/dispatcherhq/dispatcher/internal/bizhours"
)

var propertyZones = []string{
	"UTC",
	"America/New_York",
	"Europe/London",
	"Australia/Sydney",
	"Pacific/Auckland",
	"Australia/Lord_Howe",
	"Asia/Kolkata",
	"America/Santiago",
	"Pacific/Apia",
}

var (
	rangeStart = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	rangeEnd   = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
)

// minuteGen favours the small hours, where DST transitions happen, and the
// day's edges.
var minuteGen = rapid.OneOf(
	rapid.IntRange(0, 1440),
	rapid.SampledFrom([]int{0, 30, 60, 90, 120, 130, 150, 170, 180, 210, 240, 1380, 1410, 1440}),
)

// weekGen draws up to three disjoint intervals per weekday.
var weekGen = rapid.Custom(func(t *rapid.T) [7][]bizhours.Interval {
	var week [7][]bizhours.Interval
	for d := range week {
		pts := rapid.SliceOfNDistinct(minuteGen, 0, 6, rapid.ID[int]).Draw(t, time.Weekday(d).String())
		slices.Sort(pts)
		for i := 0; i+1 < len(pts); i += 2 {
			week[d] = append(week[d], bizhours.Interval{Start: pts[i], End: pts[i+1]})
		}
	}
	return week
})

func drawLoc(t *rapid.T, label string) *time.Location {
	loc, err := time.LoadLocation(rapid.SampledFrom(propertyZones).Draw(t, label))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// drawInstant draws an instant in 2020–2030, half the time within three
// days of one of loc's transitions, expressed in a random location.
func drawInstant(t *rapid.T, loc *time.Location) time.Time {
	x := time.Unix(rapid.Int64Range(rangeStart.Unix(), rangeEnd.Unix()).Draw(t, "unix"), 0)
	if rapid.Bool().Draw(t, "nearTransition") {
		if _, end := x.In(loc).ZoneBounds(); !end.IsZero() {
			x = end.Add(time.Duration(rapid.Int64Range(-3*86400, 3*86400).Draw(t, "delta")) * time.Second)
		}
	}
	if rapid.Bool().Draw(t, "subsecond") {
		x = x.Add(time.Duration(rapid.IntRange(0, int(time.Second)-1).Draw(t, "nanos")))
	}
	return x.In(drawLoc(t, "tZone"))
}

// drawHolidays draws dates near t's local date so that they interact with
// the search.
func drawHolidays(t *rapid.T, from time.Time) []string {
	n := rapid.IntRange(0, 6).Draw(t, "holidays")
	hs := make([]string, n)
	for i := range hs {
		hs[i] = from.AddDate(0, 0, rapid.IntRange(-2, 30).Draw(t, "holiday")).Format(time.DateOnly)
	}
	return hs
}

func TestNextOpenProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		loc := drawLoc(t, "zone")
		from := drawInstant(t, loc)
		week := weekGen.Draw(t, "week")
		c, err := bizhours.New(week, drawHolidays(t, from.In(loc)))
		if err != nil {
			t.Fatal(err)
		}
		next, ok := c.NextOpen(from, loc)
		end := next
		if ok {
			if next.Before(from) { // (1)
				t.Fatalf("NextOpen(%v) = %v is before t", from, next)
			}
			if !c.IsOpen(next, loc) { // (2)
				t.Fatalf("NextOpen(%v) = %v is closed", from, next.In(loc))
			}
			if again, ok2 := c.NextOpen(next, loc); !ok2 || !again.Equal(next) { // (4)
				t.Fatalf("NextOpen(NextOpen(t)) = %v, %v; want %v", again, ok2, next)
			}
		} else {
			end = from.AddDate(3, 0, 0)
		}
		// (3) Nothing in [from, end) is open. Openness only changes when the
		// wall clock reaches an interval start or jumps at a transition, so
		// checking those instants plus random samples suffices.
		for _, x := range candidateOpenings(week, from, end, loc) {
			if c.IsOpen(x, loc) {
				t.Fatalf("NextOpen(%v) = %v, %v but %v (%v) is open", from, next.In(loc), ok, x, x.In(loc))
			}
		}
		span := int64(end.Sub(from))
		for range 200 {
			if span <= 0 {
				break
			}
			x := from.Add(time.Duration(rapid.Int64Range(0, span-1).Draw(t, "sample")))
			if c.IsOpen(x, loc) {
				t.Fatalf("NextOpen(%v) = %v, %v but sample %v is open", from, next.In(loc), ok, x.In(loc))
			}
		}
	})
}

// candidateOpenings lists from (unless the range is empty), every zone transition in (from, end), and
// every instant in [from, end) at which the wall clock reads an interval
// start under one of the offsets in force during the range.
func candidateOpenings(week [7][]bizhours.Interval, from, end time.Time, loc *time.Location) []time.Time {
	var out []time.Time
	if from.Before(end) {
		out = append(out, from)
	}
	_, off := from.In(loc).Zone()
	offsets := []int{off}
	for x := from; ; {
		_, next := x.In(loc).ZoneBounds()
		if next.IsZero() || !next.Before(end) {
			break
		}
		out = append(out, next)
		_, off := next.In(loc).Zone()
		offsets = append(offsets, off)
		x = next
	}
	slices.Sort(offsets)
	offsets = slices.Compact(offsets)
	first := from.In(loc)
	last := end.In(loc)
	day := time.Date(first.Year(), first.Month(), first.Day()-1, 0, 0, 0, 0, time.UTC)
	stop := time.Date(last.Year(), last.Month(), last.Day()+1, 0, 0, 0, 0, time.UTC)
	for ; !day.After(stop); day = day.AddDate(0, 0, 1) {
		for _, iv := range week[day.Weekday()] {
			for _, o := range offsets {
				x := day.Add(time.Duration(iv.Start)*time.Minute - time.Duration(o)*time.Second)
				if !x.Before(from) && x.Before(end) {
					out = append(out, x)
				}
			}
		}
	}
	return out
}
