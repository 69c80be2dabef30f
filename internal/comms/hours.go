package comms

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/bizhours"
)

// weekdayIndex maps the settings' day keys to time.Weekday.
var weekdayIndex = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// Calendar turns the settings' business hours and holidays into a
// bizhours.Calendar, reporting offending fields under "business_hours" and
// "holidays".
func (s Settings) Calendar() (bizhours.Calendar, error) {
	var errs ValidationError
	var week [7][]bizhours.Interval
	for _, day := range sortedDays(s.BusinessHours) {
		wd, ok := weekdayIndex[day]
		if !ok {
			errs.Add("business_hours."+day, "is not a weekday; use mon, tue, wed, thu, fri, sat, sun")
			continue
		}
		for i, iv := range s.BusinessHours[day] {
			path := fmt.Sprintf("business_hours.%s[%d]", day, i)
			start, err1 := bizhours.ParseClock(iv[0])
			end, err2 := bizhours.ParseClock(iv[1])
			switch {
			case err1 != nil:
				errs.Add(path+"[0]", "%v", err1)
			case err2 != nil:
				errs.Add(path+"[1]", "%v", err2)
			case start >= end:
				errs.Add(path, "must start before it ends")
			case start == 24*60:
				errs.Add(path+"[0]", "24:00 can only end an interval")
			default:
				week[wd] = append(week[wd], bizhours.Interval{Start: start, End: end})
			}
		}
	}
	for i, h := range s.Holidays {
		if _, err := time.Parse(time.DateOnly, h); err != nil {
			errs.Add(fmt.Sprintf("holidays[%d]", i), "must be a date YYYY-MM-DD")
		}
	}
	if err := errs.Err(); err != nil {
		return bizhours.Calendar{}, err
	}
	cal, err := bizhours.New(week, s.Holidays)
	if err != nil {
		errs.Add("business_hours", "%v", err)
	}
	return cal, errs.Err()
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

// NextAttemptAt is when a row scheduled for t should first be acted on:
// t itself, or, when respect is set, the next window start of the
// company's business hours in the row's zone (else the company's, else UTC).
// ok is false when the calendar never opens.
func NextAttemptAt(t time.Time, respect bool, rowZone string, s Settings) (time.Time, bool) {
	if !respect {
		return t, true
	}
	cal, err := s.Calendar()
	if err != nil {
		return time.Time{}, false
	}
	loc := time.UTC
	for _, name := range []string{rowZone, s.Timezone} {
		if l, err := Timezone(name); err == nil {
			loc = l
			break
		}
	}
	next, ok := cal.NextOpen(t, loc)
	return next.UTC(), ok
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
