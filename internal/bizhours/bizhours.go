// Package bizhours computes business-hours windows: a weekly schedule of
// local wall-clock intervals plus holidays, evaluated in an arbitrary
// time zone and correct across daylight-saving transitions.
//
// Windows are wall-clock times, so a 09:00 window opens at 09:00 local time
// on both sides of a DST change. Around transitions the rules are:
//
//   - Spring forward (gap): a window whose start falls in the skipped hour
//     opens at the transition instant, the first instant whose wall clock is
//     inside the window. A window lying entirely inside the gap (for example
//     02:10–02:50 when 02:00 jumps to 03:00) has no instant at all that day
//     and is skipped.
//   - Fall back (overlap): an instant is open when its wall clock is inside a
//     window, so repeated wall times are open on both occurrences; NextOpen
//     returns the first one.
//   - Days a zone skips entirely (Pacific/Apia, 2011-12-30) simply have no
//     instants and are passed over.
//
// The package is pure: it reads no clock and holds no mutable state.
package bizhours

import (
	"fmt"
	"slices"
	"time"
)

// minutesPerDay is the number of wall-clock minutes in a day, and the
// largest valid interval end ("24:00").
const minutesPerDay = 24 * 60

// maxOffset bounds the absolute UTC offset of any zone (real ones stay
// within about ±16h, including historical local mean times), so every
// instant whose local date is day lies in [day-maxOffset, day+24h+maxOffset).
const maxOffset = 24 * time.Hour

// Interval is [Start, End) in minutes after local midnight: 0 <= Start < End <= 1440.
type Interval struct{ Start, End int }

// Calendar is a weekly schedule plus holidays.
//
// The zero Calendar has no windows and is never open. A Calendar is
// immutable and safe for concurrent use.
type Calendar struct {
	week     [7][]Interval      // by time.Weekday, sorted, non-overlapping
	holidays map[int64]struct{} // Unix seconds of the holiday's midnight, read as UTC
}

// ParseClock parses "HH:MM" (two digits each, 00:00..23:59, plus "24:00")
// into minutes after midnight.
//
// "24:00" yields 1440, which New accepts only as an interval end.
func ParseClock(s string) (int, error) {
	if len(s) != 5 || s[2] != ':' || !isDigit(s[0]) || !isDigit(s[1]) || !isDigit(s[3]) || !isDigit(s[4]) {
		return 0, fmt.Errorf("bizhours: clock %q: want HH:MM with two digits each", s)
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	switch {
	case h == 24 && m == 0:
		return minutesPerDay, nil
	case h > 23:
		return 0, fmt.Errorf("bizhours: clock %q: hour %d out of range 00..23 (24:00 is the only time allowed past 23:59)", s, h)
	case m > 59:
		return 0, fmt.Errorf("bizhours: clock %q: minute %d out of range 00..59", s, m)
	}
	return h*60 + m, nil
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

// New builds a Calendar from week, indexed by time.Weekday (Sunday = 0), and
// holidays given as local dates "YYYY-MM-DD".
//
// Each day's intervals may come in any order. New rejects an interval with
// Start >= End or outside [0, 1440], and two intervals of a day that
// overlap; touching intervals such as [540,720) and [720,1020) are allowed.
// Duplicate holidays are allowed. New copies its inputs.
func New(week [7][]Interval, holidays []string) (Calendar, error) {
	var c Calendar
	for d, ivs := range week {
		if len(ivs) == 0 {
			continue
		}
		ivs = slices.Clone(ivs)
		slices.SortFunc(ivs, func(a, b Interval) int { return a.Start - b.Start })
		for i, iv := range ivs {
			if iv.Start < 0 || iv.End > minutesPerDay || iv.Start >= iv.End {
				return Calendar{}, fmt.Errorf("bizhours: %v interval [%d,%d): want 0 <= start < end <= %d", time.Weekday(d), iv.Start, iv.End, minutesPerDay)
			}
			if i > 0 && iv.Start < ivs[i-1].End {
				p := ivs[i-1]
				return Calendar{}, fmt.Errorf("bizhours: %v intervals [%d,%d) and [%d,%d) overlap", time.Weekday(d), p.Start, p.End, iv.Start, iv.End)
			}
		}
		c.week[d] = ivs
	}
	if len(holidays) > 0 {
		c.holidays = make(map[int64]struct{}, len(holidays))
	}
	for _, h := range holidays {
		day, err := time.Parse(time.DateOnly, h)
		if err != nil {
			return Calendar{}, fmt.Errorf("bizhours: holiday %q: want YYYY-MM-DD: %w", h, err)
		}
		c.holidays[day.Unix()] = struct{}{}
	}
	return c, nil
}

// Default is Monday–Friday 09:00–17:00, no holidays.
func Default() Calendar {
	nineToFive := []Interval{{9 * 60, 17 * 60}}
	var c Calendar
	for d := time.Monday; d <= time.Friday; d++ {
		c.week[d] = nineToFive
	}
	return c
}

// IsOpen reports whether instant t is inside a window: t's local wall-clock
// time in loc falls in an interval of its local weekday, and its local date
// is not a holiday. Like time.Time.In, it panics if loc is nil.
func (c Calendar) IsOpen(t time.Time, loc *time.Location) bool {
	lt := t.In(loc)
	if c.isHoliday(civilDay(lt)) {
		return false
	}
	m := lt.Hour()*60 + lt.Minute()
	for _, iv := range c.week[lt.Weekday()] {
		if iv.Start <= m && m < iv.End {
			return true
		}
	}
	return false
}

// NextOpen returns, in UTC, the earliest instant >= t at which the calendar
// is open in loc (t itself when open). ok is false when no window opens
// within the next 3 years, for example when the week is empty. Like
// time.Time.In, it panics if loc is nil.
//
// The search walks local dates one at a time, so its cost is proportional to
// the number of days until the next window, not the number of minutes.
func (c Calendar) NextOpen(t time.Time, loc *time.Location) (next time.Time, ok bool) {
	day := civilDay(t.In(loc))
	// A fall-back transition just after local midnight can make instants
	// after t carry the previous local date, so start one day early.
	day = day.Add(-24 * time.Hour)
	for end := day.AddDate(3, 0, 2); day.Before(end); day = day.Add(24 * time.Hour) {
		// Every instant of this date and later ones is >= day-maxOffset.
		if ok && !day.Add(-maxOffset).Before(next) {
			break
		}
		ivs := c.week[day.Weekday()]
		if len(ivs) == 0 || c.isHoliday(day) {
			continue
		}
		if x, found := firstInDay(day, ivs, t, loc); found && (!ok || x.Before(next)) {
			next, ok = x, true
		}
	}
	if !ok {
		return time.Time{}, false
	}
	return next.UTC(), true
}

// firstInDay returns the earliest instant >= from whose local date in loc is
// day and whose wall clock lies in one of ivs (sorted, non-overlapping).
//
// It walks the zone's constant-offset spans with ZoneBounds. Within a span
// of offset off, wall clock w is reached at exactly day+w-off, so the
// instants whose wall clock is in [Start,End) form one range of instants,
// clipped to the span. Gaps and overlaps need no special casing: a start in
// a gap clips to the span's beginning (the transition instant), a window
// wholly inside a gap clips to nothing, and an overlap is seen in the
// earlier span first.
func firstInDay(day time.Time, ivs []Interval, from time.Time, loc *time.Location) (time.Time, bool) {
	limit := day.Add(24*time.Hour + maxOffset)
	x := day.Add(-maxOffset)
	if from.After(x) {
		x = from
	}
	for x.Before(limit) {
		lt := x.In(loc)
		_, off := lt.Zone()
		_, spanEnd := lt.ZoneBounds()
		if !spanEnd.IsZero() && !spanEnd.After(x) {
			// Go computes the spans of rule-based times (after a zone's
			// last listed transition, e.g. New York from 2038) a year at a
			// time, and at some instants (2040-12-31T00:00Z in New York,
			// the last day of a leap year) it answers a span that ends at
			// that very instant: the walk would never move. The span a
			// nanosecond later is the right one. Found by a rapid property
			// test; TestNextOpenAtARuleBasedYearBoundary.
			_, spanEnd = x.Add(time.Nanosecond).In(loc).ZoneBounds()
			if !spanEnd.IsZero() && !spanEnd.After(x) {
				spanEnd = limit
			}
		}
		if spanEnd.IsZero() || spanEnd.After(limit) {
			spanEnd = limit
		}
		shift := time.Duration(off) * time.Second
		for _, iv := range ivs {
			lo := day.Add(time.Duration(iv.Start)*time.Minute - shift)
			hi := day.Add(time.Duration(iv.End)*time.Minute - shift)
			if lo.Before(x) {
				lo = x
			}
			if hi.After(spanEnd) {
				hi = spanEnd
			}
			if lo.Before(hi) {
				return lo, true
			}
		}
		x = spanEnd
	}
	return time.Time{}, false
}

// civilDay returns the local date of lt as midnight UTC, the representation
// used for dates throughout the package.
func civilDay(lt time.Time) time.Time {
	y, m, d := lt.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func (c Calendar) isHoliday(day time.Time) bool {
	_, ok := c.holidays[day.Unix()]
	return ok
}

// Constraint is one calendar read in one time zone: an instant satisfies it
// when the calendar is open there in loc.
type Constraint struct {
	Calendar Calendar
	Loc      *time.Location
}

// horizon bounds NextOpenAll's search, as NextOpen's own bound does.
const horizon = 3 * 366 * 24 * time.Hour

// NextOpenAll returns, in UTC, the earliest instant >= t at which every
// constraint is open (t itself when all are), for example the business
// hours of a company read in each time zone a callee may be in. With no
// constraints it returns t. ok is false when no such instant comes within
// about three years: a constraint that never opens, or windows that never
// overlap (08:00–09:00 in New York and in Los Angeles).
//
// It advances t to each constraint's NextOpen in turn until none moves it.
// Every step lands on an instant that some constraint needs, never past an
// instant that all accept (each NextOpen is the earliest for its own
// constraint), so the first instant that no constraint moves is the
// earliest common one.
func NextOpenAll(t time.Time, cs ...Constraint) (next time.Time, ok bool) {
	end := t.Add(horizon)
	next = t
	for settled := 0; settled < len(cs); {
		for _, c := range cs {
			x, ok := c.Calendar.NextOpen(next, c.Loc)
			if !ok || x.After(end) {
				return time.Time{}, false
			}
			if x.After(next) {
				next, settled = x, 0
			}
			settled++
			if settled == len(cs) {
				break
			}
		}
	}
	return next.UTC(), true
}
