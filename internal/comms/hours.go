package comms

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/bizhours"
	"github.com/dispatcherhq/dispatcher/internal/rfc3339"
)

// weekdayIndex maps the settings' day keys to time.Weekday.
var weekdayIndex = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// MaxHolidays is the most holidays a settings document lists: ten years of
// public holidays at the ~40 a year of the most generous calendars (national
// plus regional ones), with room to spare. A real calendar never needs more,
// and every calendar check walks the list.
const MaxHolidays = 400

// Calendar turns the settings' business hours and holidays into a
// bizhours.Calendar, reporting every offending field under "business_hours"
// and "holidays" at once (see Validate). It accepts what a stored document
// may hold from before Validate's stricter rules (repeated holidays, more
// than MaxHolidays), so a company's rows keep firing.
func (s Settings) Calendar() (bizhours.Calendar, error) {
	week, errs := s.check(false)
	if err := errs.Err(); err != nil {
		return bizhours.Calendar{}, err
	}
	cal, err := bizhours.New(week, s.Holidays)
	if err != nil {
		// Unreachable: check refuses whatever New does. Say so without
		// New's internal minutes-of-day.
		errs.Add("business_hours", "is not a valid weekly schedule")
		return bizhours.Calendar{}, errs.Err()
	}
	return cal, nil
}

// Validate checks a settings document a caller sends, reporting every
// problem at once, named by field path (business_hours.mon[1],
// holidays[3]) in the caller's terms: wall-clock times, never minutes.
// Beyond what Calendar needs, holidays must be distinct and at most
// MaxHolidays. Quiet hours are checked too (quiet_hours.voice_call.start).
func (s Settings) Validate() error {
	_, errs := s.check(true)
	s.QuietHours.check(&errs)
	return errs.Err()
}

// clockInterval is one business-hours interval as sent and as parsed.
type clockInterval struct {
	i          int // index in the day's list
	from, to   string
	start, end int
}

func (iv clockInterval) String() string { return iv.from + "–" + iv.to }

func (s Settings) check(strict bool) ([7][]bizhours.Interval, ValidationError) {
	var errs ValidationError
	var week [7][]bizhours.Interval
	for _, day := range sortedDays(s.BusinessHours) {
		wd, ok := weekdayIndex[day]
		if !ok {
			errs.Add("business_hours."+day, "is not a weekday; use mon, tue, wed, thu, fri, sat, sun")
			continue
		}
		var good []clockInterval
		for i, iv := range s.BusinessHours[day] {
			path := fmt.Sprintf("business_hours.%s[%d]", day, i)
			start, err1 := bizhours.ParseClock(iv[0])
			end, err2 := bizhours.ParseClock(iv[1])
			switch {
			case err1 != nil:
				errs.Add(path+"[0]", "must be a wall-clock time HH:MM from 00:00 to 23:59, got %q", iv[0])
			case err2 != nil:
				errs.Add(path+"[1]", "must be a wall-clock time HH:MM from 00:01 to 24:00, got %q", iv[1])
			case start == 24*60:
				errs.Add(path+"[0]", "24:00 can only end an interval")
			case start >= end:
				errs.Add(path, "%s–%s must start before it ends", iv[0], iv[1])
			default:
				good = append(good, clockInterval{i: i, from: iv[0], to: iv[1], start: start, end: end})
			}
		}
		for _, o := range overlaps(good) {
			errs.Add(fmt.Sprintf("business_hours.%s[%d]", day, max(o[0].i, o[1].i)), "%s overlaps %s (business_hours.%s[%d] and [%d])",
				o[0], o[1], day, min(o[0].i, o[1].i), max(o[0].i, o[1].i))
		}
		for _, iv := range good {
			week[wd] = append(week[wd], bizhours.Interval{Start: iv.start, End: iv.end})
		}
	}
	if strict && len(s.Holidays) > MaxHolidays {
		errs.Add("holidays", "must list at most %d dates, got %d", MaxHolidays, len(s.Holidays))
		return week, errs
	}
	first := make(map[string]int, len(s.Holidays))
	for i, h := range s.Holidays {
		path := fmt.Sprintf("holidays[%d]", i)
		if _, err := rfc3339.ParseFullDate(h); err != nil {
			errs.Add(path, "must be a date YYYY-MM-DD, got %q", h)
			continue
		}
		if j, seen := first[h]; seen && strict {
			errs.Add(path, "repeats %s (holidays[%d])", h, j)
			continue
		}
		first[h] = i
	}
	return week, errs
}

// overlaps returns the pairs of a day's intervals that overlap, earlier
// start first; touching ones (09:00–12:00, 12:00–17:00) do not.
func overlaps(ivs []clockInterval) [][2]clockInterval {
	sorted := slices.Clone(ivs)
	slices.SortStableFunc(sorted, func(a, b clockInterval) int { return a.start - b.start })
	var out [][2]clockInterval
	if len(sorted) == 0 {
		return nil
	}
	// reach is the interval reaching furthest among those seen; the next
	// one overlaps it if it starts before reach ends.
	reach := sorted[0]
	for _, cur := range sorted[1:] {
		if cur.start < reach.end {
			out = append(out, [2]clockInterval{reach, cur})
		}
		if cur.end > reach.end {
			reach = cur
		}
	}
	return out
}

// sortedDays returns the keys Monday first, unknown keys last, for stable
// error lists.
func sortedDays(m map[string][][2]string) []string {
	rank := func(d string) int {
		for i, w := range Weekdays {
			if w == d {
				return i
			}
		}
		return len(Weekdays)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		ri, rj := rank(keys[i]), rank(keys[j])
		return ri < rj || ri == rj && keys[i] < keys[j]
	})
	return keys
}

// Timezone loads an IANA zone by name, refusing "" and "Local".
func Timezone(name string) (*time.Location, error) {
	if name == "" || name == "Local" || strings.HasPrefix(name, "/") || strings.Contains(name, "..") {
		return nil, fmt.Errorf("%q is not an IANA time zone name", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IANA time zone name", name)
	}
	return loc, nil
}
