package bizhours_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the DST tests must not depend on the host's zoneinfo

	"github.com/dispatcherhq/dispatcher/internal/bizhours"
)

// cal builds a Calendar from a compact spec such as
// "Mon 09:00-12:00,13:00-17:00; Sun 02:30-04:00", panicking on errors.
func cal(spec string, holidays ...string) bizhours.Calendar {
	days := map[string]time.Weekday{"Sun": 0, "Mon": 1, "Tue": 2, "Wed": 3, "Thu": 4, "Fri": 5, "Sat": 6}
	var week [7][]bizhours.Interval
	for entry := range strings.SplitSeq(spec, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, ranges, _ := strings.Cut(entry, " ")
		d, ok := days[name]
		if !ok {
			panic("bad day " + name)
		}
		for r := range strings.SplitSeq(ranges, ",") {
			a, b, _ := strings.Cut(r, "-")
			week[d] = append(week[d], bizhours.Interval{Start: clock(a), End: clock(b)})
		}
	}
	c, err := bizhours.New(week, holidays)
	if err != nil {
		panic(err)
	}
	return c
}

func clock(s string) int {
	m, err := bizhours.ParseClock(s)
	if err != nil {
		panic(err)
	}
	return m
}

func loadLoc(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatal(err)
	}
	return loc
}

func instant(tb testing.TB, s string) time.Time {
	tb.Helper()
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

type nextCase struct {
	name string
	cal  bizhours.Calendar
	loc  string
	t    string // RFC3339 with explicit offset, so ambiguous wall times are unambiguous
	want string // RFC3339; "" means ok == false
}

func runNextCases(t *testing.T, cases []nextCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			loc := loadLoc(t, tc.loc)
			from := instant(t, tc.t)
			got, ok := tc.cal.NextOpen(from, loc)
			if tc.want == "" {
				if ok {
					t.Fatalf("NextOpen(%s) = %s, want ok=false", tc.t, got.In(loc))
				}
				return
			}
			want := instant(t, tc.want)
			if !ok || !got.Equal(want) {
				t.Fatalf("NextOpen(%s) = %s (%s), %v; want %s", tc.t, got.In(loc), got, ok, want.In(loc))
			}
			if got.Location() != time.UTC {
				t.Errorf("result location = %v, want UTC", got.Location())
			}
			if !tc.cal.IsOpen(got, loc) {
				t.Errorf("IsOpen(NextOpen) = false")
			}
			if open := tc.cal.IsOpen(from, loc); open != got.Equal(from) {
				t.Errorf("IsOpen(t) = %v but NextOpen(t) == t is %v", open, got.Equal(from))
			}
		})
	}
}

func TestNextOpen(t *testing.T) {
	def := bizhours.Default()
	split := cal("Mon 13:00-17:00,09:00-12:00") // deliberately unsorted
	late := cal("Fri 22:00-24:00; Sat 00:00-02:00")
	runNextCases(t, []nextCase{
		{"before window", def, "America/New_York", "2026-01-05T08:00:00-05:00", "2026-01-05T09:00:00-05:00"},
		{"at window start", def, "America/New_York", "2026-01-05T09:00:00-05:00", "2026-01-05T09:00:00-05:00"},
		{"inside window", def, "America/New_York", "2026-01-05T10:30:15.5-05:00", "2026-01-05T10:30:15.5-05:00"},
		{"last second of window", def, "America/New_York", "2026-01-05T16:59:59-05:00", "2026-01-05T16:59:59-05:00"},
		{"at window end is closed", def, "America/New_York", "2026-01-05T17:00:00-05:00", "2026-01-06T09:00:00-05:00"},
		{"after window", def, "America/New_York", "2026-01-05T18:00:00-05:00", "2026-01-06T09:00:00-05:00"},
		{"friday evening skips weekend", def, "America/New_York", "2026-01-09T17:00:00-05:00", "2026-01-12T09:00:00-05:00"},
		{"saturday", def, "America/New_York", "2026-01-10T12:00:00-05:00", "2026-01-12T09:00:00-05:00"},
		{"t in another zone", def, "America/New_York", "2026-01-05T22:00:00+09:00", "2026-01-05T09:00:00-05:00"},
		{"UTC", def, "UTC", "2026-01-09T23:00:00Z", "2026-01-12T09:00:00Z"},
		{"half-hour zone", def, "Asia/Kolkata", "2026-01-05T03:00:00Z", "2026-01-05T09:00:00+05:30"},
		{"between two intervals", split, "UTC", "2026-01-05T12:30:00Z", "2026-01-05T13:00:00Z"},
		{"end of first interval", split, "UTC", "2026-01-05T12:00:00Z", "2026-01-05T13:00:00Z"},
		{"before first interval", split, "UTC", "2026-01-05T00:00:00Z", "2026-01-05T09:00:00Z"},
		{"after last interval", split, "UTC", "2026-01-05T17:00:00Z", "2026-01-12T09:00:00Z"},
		{"24:00 end is open at 23:59", late, "UTC", "2026-01-09T23:59:59Z", "2026-01-09T23:59:59Z"},
		{"window continues past midnight", late, "UTC", "2026-01-10T00:00:00Z", "2026-01-10T00:00:00Z"},
		{"after midnight window", late, "UTC", "2026-01-10T02:00:00Z", "2026-01-16T22:00:00Z"},
		{"empty week", bizhours.Calendar{}, "UTC", "2026-01-05T09:00:00Z", ""},
		{"empty week built by New", cal(""), "Australia/Sydney", "2026-01-05T09:00:00Z", ""},
	})
}

func TestHolidays(t *testing.T) {
	tue := cal("Mon 09:00-17:00; Tue 09:00-17:00; Wed 09:00-17:00; Thu 09:00-17:00; Fri 09:00-17:00", "2026-01-06", "2026-01-06")
	long := cal("Mon 09:00-17:00; Tue 09:00-17:00; Thu 09:00-17:00; Fri 09:00-17:00", "2026-01-09", "2026-01-12")
	// The same instant falls on Monday in New York but on the Tuesday holiday
	// in Tokyo and UTC: holidays use the local date in loc.
	runNextCases(t, []nextCase{
		{"holiday skipped", tue, "America/New_York", "2026-01-05T22:00:00-05:00", "2026-01-07T09:00:00-05:00"},
		{"inside holiday hours", tue, "America/New_York", "2026-01-06T10:00:00-05:00", "2026-01-07T09:00:00-05:00"},
		{"holiday by Tokyo date", tue, "Asia/Tokyo", "2026-01-06T03:00:00Z", "2026-01-07T09:00:00+09:00"},
		{"holiday by UTC date", tue, "UTC", "2026-01-06T03:00:00Z", "2026-01-07T09:00:00Z"},
		{"day before holiday still open", tue, "America/New_York", "2026-01-05T16:00:00-05:00", "2026-01-05T16:00:00-05:00"},
		{"long weekend", long, "Europe/London", "2026-01-08T17:00:00Z", "2026-01-13T09:00:00Z"},
	})
	ny := loadLoc(t, "America/New_York")
	if !tue.IsOpen(instant(t, "2026-01-05T10:00:00-05:00"), ny) {
		t.Error("Monday 10:00 should be open")
	}
	if tue.IsOpen(instant(t, "2026-01-06T10:00:00-05:00"), ny) {
		t.Error("holiday Tuesday 10:00 should be closed")
	}
	if !tue.IsOpen(instant(t, "2026-01-06T00:30:00Z"), loadLoc(t, "America/Los_Angeles")) {
		t.Error("Monday 16:30 in Los Angeles (Tuesday in UTC) should be open")
	}
}

// TestDST checks windows across transitions in both hemispheres. Expected
// instants carry the offset in force, so a 09:00 window visibly moves by the
// DST shift in UTC.
func TestDST(t *testing.T) {
	def := bizhours.Default()
	runNextCases(t, []nextCase{
		// America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST.
		{"NY 09:00 before spring", def, "America/New_York", "2026-03-06T08:00:00-05:00", "2026-03-06T09:00:00-05:00"},
		{"NY 09:00 after spring", def, "America/New_York", "2026-03-06T17:00:00-05:00", "2026-03-09T09:00:00-04:00"},
		{"NY 09:00 after fall", def, "America/New_York", "2026-10-30T17:00:00-04:00", "2026-11-02T09:00:00-05:00"},
		{"NY start in gap opens at 03:00", cal("Sun 02:30-04:00"), "America/New_York", "2026-03-07T12:00:00-05:00", "2026-03-08T03:00:00-04:00"},
		{"NY start at gap start", cal("Sun 02:00-02:45,05:00-06:00"), "America/New_York", "2026-03-08T01:59:00-05:00", "2026-03-08T05:00:00-04:00"},
		{"NY window inside gap skipped", cal("Sun 02:10-02:50"), "America/New_York", "2026-03-08T00:00:00-05:00", "2026-03-15T02:10:00-04:00"},
		{"NY window across gap", cal("Sun 01:30-03:30"), "America/New_York", "2026-03-08T00:00:00-05:00", "2026-03-08T01:30:00-05:00"},
		{"NY window across gap, t at transition", cal("Sun 01:30-03:30"), "America/New_York", "2026-03-08T03:00:00-04:00", "2026-03-08T03:00:00-04:00"},
		{"NY overlap first occurrence", cal("Sun 01:00-02:00"), "America/New_York", "2026-10-31T12:00:00-04:00", "2026-11-01T01:00:00-04:00"},
		{"NY overlap second occurrence open", cal("Sun 01:00-02:00"), "America/New_York", "2026-11-01T01:30:00-05:00", "2026-11-01T01:30:00-05:00"},
		{"NY overlap after both", cal("Sun 01:00-02:00"), "America/New_York", "2026-11-01T02:00:00-05:00", "2026-11-08T01:00:00-05:00"},
		{"NY overlap between occurrences", cal("Sun 01:30-01:45"), "America/New_York", "2026-11-01T01:50:00-04:00", "2026-11-01T01:30:00-05:00"},

		// Europe/London: 2026-03-29 01:00 GMT -> 02:00 BST; 2026-10-25 02:00 BST -> 01:00 GMT.
		{"London 09:00 after spring", def, "Europe/London", "2026-03-27T18:00:00Z", "2026-03-30T09:00:00+01:00"},
		{"London 09:00 after fall", def, "Europe/London", "2026-10-23T18:00:00+01:00", "2026-10-26T09:00:00Z"},
		{"London start in gap", cal("Sun 01:30-03:00"), "Europe/London", "2026-03-28T12:00:00Z", "2026-03-29T02:00:00+01:00"},
		{"London overlap first occurrence", cal("Sun 01:00-01:30"), "Europe/London", "2026-10-24T12:00:00+01:00", "2026-10-25T01:00:00+01:00"},
		{"London overlap second occurrence", cal("Sun 01:00-01:30"), "Europe/London", "2026-10-25T01:40:00+01:00", "2026-10-25T01:00:00Z"},

		// Australia/Sydney: 2026-04-05 03:00 AEDT -> 02:00 AEST; 2026-10-04 02:00 AEST -> 03:00 AEDT.
		{"Sydney 09:00 after fall", def, "Australia/Sydney", "2026-04-03T17:00:00+11:00", "2026-04-06T09:00:00+10:00"},
		{"Sydney 09:00 after spring", def, "Australia/Sydney", "2026-10-02T17:00:00+10:00", "2026-10-05T09:00:00+11:00"},
		{"Sydney start in gap opens at 03:00", cal("Sun 02:30-04:00"), "Australia/Sydney", "2026-10-03T12:00:00+10:00", "2026-10-04T03:00:00+11:00"},
		{"Sydney window inside gap skipped", cal("Sun 02:10-02:50"), "Australia/Sydney", "2026-10-03T12:00:00+10:00", "2026-10-11T02:10:00+11:00"},
		{"Sydney overlap first occurrence", cal("Sun 02:15-02:45"), "Australia/Sydney", "2026-04-04T12:00:00+11:00", "2026-04-05T02:15:00+11:00"},
		{"Sydney overlap second occurrence", cal("Sun 02:15-02:45"), "Australia/Sydney", "2026-04-05T02:50:00+11:00", "2026-04-05T02:15:00+10:00"},

		// Pacific/Auckland: 2026-04-05 03:00 NZDT -> 02:00 NZST; 2026-09-27 02:00 NZST -> 03:00 NZDT.
		{"Auckland 09:00 after spring", def, "Pacific/Auckland", "2026-09-25T17:00:00+12:00", "2026-09-28T09:00:00+13:00"},
		{"Auckland 09:00 after fall", def, "Pacific/Auckland", "2026-04-03T17:00:00+13:00", "2026-04-06T09:00:00+12:00"},
		{"Auckland start in gap opens at 03:00", cal("Sun 02:30-04:00"), "Pacific/Auckland", "2026-09-26T12:00:00+12:00", "2026-09-27T03:00:00+13:00"},
		{"Auckland overlap first occurrence", cal("Sun 02:00-03:00"), "Pacific/Auckland", "2026-04-04T12:00:00+13:00", "2026-04-05T02:00:00+13:00"},
		{"Auckland overlap second occurrence open", cal("Sun 02:00-03:00"), "Pacific/Auckland", "2026-04-05T02:10:00+12:00", "2026-04-05T02:10:00+12:00"},

		// Australia/Lord_Howe (30-minute DST): 2026-04-05 02:00 +11 -> 01:30 +10:30; 2026-10-04 02:00 +10:30 -> 02:30 +11.
		{"Lord Howe 09:00 after spring", def, "Australia/Lord_Howe", "2026-10-02T17:00:00+10:30", "2026-10-05T09:00:00+11:00"},
		{"Lord Howe 09:00 after fall", def, "Australia/Lord_Howe", "2026-04-03T17:00:00+11:00", "2026-04-06T09:00:00+10:30"},
		{"Lord Howe start in gap opens at 02:30", cal("Sun 02:10-04:00"), "Australia/Lord_Howe", "2026-10-03T12:00:00+10:30", "2026-10-04T02:30:00+11:00"},
		{"Lord Howe 02:30 is not in the gap", cal("Sun 02:30-04:00"), "Australia/Lord_Howe", "2026-10-03T12:00:00+10:30", "2026-10-04T02:30:00+11:00"},
		{"Lord Howe window inside gap skipped", cal("Sun 02:05-02:25"), "Australia/Lord_Howe", "2026-10-03T12:00:00+10:30", "2026-10-11T02:05:00+11:00"},
		{"Lord Howe overlap first occurrence", cal("Sun 01:30-01:45"), "Australia/Lord_Howe", "2026-04-04T12:00:00+11:00", "2026-04-05T01:30:00+11:00"},
		{"Lord Howe overlap second occurrence", cal("Sun 01:30-01:45"), "Australia/Lord_Howe", "2026-04-05T01:50:00+11:00", "2026-04-05T01:30:00+10:30"},

		// America/Santiago changes at midnight: 2026-09-06 00:00 -04 -> 01:00 -03, so Sunday begins at 01:00.
		{"Santiago day starts in gap", cal("Sun 00:00-02:00"), "America/Santiago", "2026-09-05T12:00:00-04:00", "2026-09-06T01:00:00-03:00"},
		{"Santiago overlap before midnight", cal("Sat 23:00-24:00"), "America/Santiago", "2026-04-04T23:59:00-03:00", "2026-04-04T23:59:00-03:00"},
		{"Santiago overlap second occurrence", cal("Sat 23:30-24:00"), "America/Santiago", "2026-04-04T23:45:00-03:00", "2026-04-04T23:45:00-03:00"},
		{"Santiago overlap repeated hour", cal("Sat 23:30-24:00"), "America/Santiago", "2026-04-04T23:10:00-04:00", "2026-04-04T23:30:00-04:00"},

		// Pacific/Apia skipped Friday 2011-12-30 (2011-12-29 23:59:59 -10 -> 2011-12-31 00:00 +14).
		{"Apia skipped Friday", def, "Pacific/Apia", "2011-12-29T17:00:00-10:00", "2012-01-02T09:00:00+14:00"},
		{"Apia Friday-only calendar", cal("Fri 00:00-24:00"), "Pacific/Apia", "2011-12-29T12:00:00-10:00", "2012-01-06T00:00:00+14:00"},
	})
}

// TestDateRepeats covers a backward jump across midnight, where instants
// after t carry an earlier local date: at 1867-10-19T00:31:13Z America/Sitka
// went from Saturday 15:29:59 (LMT +14:58:47) back to Friday 15:30 (LMT
// -09:01:13). Offsets with seconds cannot be written in RFC 3339, hence UTC.
func TestDateRepeats(t *testing.T) {
	runNextCases(t, []nextCase{
		// t is Saturday 15:00; the repeated Friday afternoon follows.
		{"repeated Friday", cal("Fri 16:00-17:00"), "America/Sitka", "1867-10-19T00:01:13Z", "1867-10-19T01:01:13Z"},
		// Saturday 15:10 comes before the repeated Friday 16:00.
		{"earlier date later in time", cal("Fri 16:00-17:00; Sat 15:10-15:20"), "America/Sitka", "1867-10-19T00:01:13Z", "1867-10-19T00:11:13Z"},
	})
}

func TestNewCopiesInput(t *testing.T) {
	var week [7][]bizhours.Interval
	week[time.Monday] = []bizhours.Interval{{600, 700}, {540, 560}}
	c, err := bizhours.New(week, nil)
	if err != nil {
		t.Fatal(err)
	}
	if week[time.Monday][0] != (bizhours.Interval{600, 700}) {
		t.Error("New reordered the caller's slice")
	}
	week[time.Monday][0] = bizhours.Interval{0, 1440}
	if c.IsOpen(instant(t, "2026-01-05T00:30:00Z"), time.UTC) {
		t.Error("mutating the input changed the Calendar")
	}
	if !c.IsOpen(instant(t, "2026-01-05T09:10:00Z"), time.UTC) {
		t.Error("Monday 09:10 should be open")
	}
}

func TestNewErrors(t *testing.T) {
	iv := func(d time.Weekday, ivs ...bizhours.Interval) [7][]bizhours.Interval {
		var w [7][]bizhours.Interval
		w[d] = ivs
		return w
	}
	cases := []struct {
		name     string
		week     [7][]bizhours.Interval
		holidays []string
		wantErr  string // substring; "" means success
	}{
		{"touching ok", iv(time.Monday, bizhours.Interval{720, 1020}, bizhours.Interval{540, 720}), nil, ""},
		{"full day ok", iv(time.Sunday, bizhours.Interval{0, 1440}), []string{"2026-01-01", "2026-01-01"}, ""},
		{"overlap", iv(time.Tuesday, bizhours.Interval{540, 720}, bizhours.Interval{600, 800}), nil, "Tuesday intervals [540,720) and [600,800) overlap"},
		{"overlap unsorted", iv(time.Tuesday, bizhours.Interval{600, 800}, bizhours.Interval{0, 1440}), nil, "overlap"},
		{"duplicate interval", iv(time.Friday, bizhours.Interval{60, 120}, bizhours.Interval{60, 120}), nil, "overlap"},
		{"start equals end", iv(time.Monday, bizhours.Interval{600, 600}), nil, "Monday interval [600,600)"},
		{"start after end", iv(time.Monday, bizhours.Interval{700, 600}), nil, "start < end"},
		{"negative start", iv(time.Saturday, bizhours.Interval{-1, 60}), nil, "Saturday interval [-1,60)"},
		{"end past 24:00", iv(time.Saturday, bizhours.Interval{0, 1441}), nil, "<= 1440"},
		{"start at 24:00", iv(time.Saturday, bizhours.Interval{1440, 1440}), nil, "start < end"},
		{"impossible date", [7][]bizhours.Interval{}, []string{"2026-02-30"}, `holiday "2026-02-30"`},
		{"unpadded date", [7][]bizhours.Interval{}, []string{"2026-1-05"}, `holiday "2026-1-05"`},
		{"empty date", [7][]bizhours.Interval{}, []string{""}, `holiday ""`},
		{"date with time", [7][]bizhours.Interval{}, []string{"2026-01-05T00:00:00Z"}, "holiday"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bizhours.New(tc.week, tc.holidays)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("New: unexpected error %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("New: no error, want %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("New: error %q, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseClock(t *testing.T) {
	for s, want := range map[string]int{"00:00": 0, "00:01": 1, "09:30": 570, "12:00": 720, "23:59": 1439, "24:00": 1440} {
		if got, err := bizhours.ParseClock(s); err != nil || got != want {
			t.Errorf("ParseClock(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for s, wantErr := range map[string]string{
		"":       "want HH:MM",
		"9:00":   "want HH:MM",
		"09:0":   "want HH:MM",
		"0900":   "want HH:MM",
		"09-00":  "want HH:MM",
		"ab:cd":  "want HH:MM",
		"+9:00":  "want HH:MM",
		"09:00 ": "want HH:MM",
		"24:01":  "hour 24 out of range",
		"25:00":  "hour 25 out of range",
		"99:99":  "hour 99",
		"12:60":  "minute 60 out of range",
	} {
		_, err := bizhours.ParseClock(s)
		if err == nil || !strings.Contains(err.Error(), wantErr) || !strings.Contains(err.Error(), fmt.Sprintf("%q", s)) {
			t.Errorf("ParseClock(%q) error = %v, want one mentioning the input and %q", s, err, wantErr)
		}
	}
}

func BenchmarkNextOpen(b *testing.B) {
	syd := loadLoc(b, "Australia/Sydney")
	c := bizhours.Default()
	fri := instant(b, "2026-01-09T18:30:00+11:00")
	want := instant(b, "2026-01-12T09:00:00+11:00")
	for b.Loop() {
		if got, ok := c.NextOpen(fri, syd); !ok || !got.Equal(want) {
			b.Fatalf("NextOpen = %v, %v", got, ok)
		}
	}
}

func Example_nextOpen() {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		panic(err)
	}
	// Friday evening before the 2026 spring-forward weekend.
	fri := time.Date(2026, time.March, 6, 17, 30, 0, 0, ny)
	next, ok := bizhours.Default().NextOpen(fri, ny)
	fmt.Println(next, ok)
	fmt.Println(next.In(ny))
	// Output:
	// 2026-03-09 13:00:00 +0000 UTC true
	// 2026-03-09 09:00:00 -0400 EDT
}

// TestNextOpenAtARuleBasedYearBoundary: from 2038 on, Go computes New
// York's offsets from its rule a year at a time, and at 2040-12-31T00:00Z
// (where the walk of 2041-01-01 starts) ZoneBounds answered a span ending
// at that very instant; the walk then never moved and a create hung.
// Found by TestNextOpenAllProperties.
func TestNextOpenAtARuleBasedYearBoundary(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	var week [7][]bizhours.Interval
	week[time.Tuesday] = []bizhours.Interval{{Start: 9 * 60, End: 17 * 60}}
	c, err := bizhours.New(week, nil)
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2040, 12, 30, 12, 0, 0, 0, time.UTC)
	got, ok := c.NextOpen(from, ny)
	// 2041-01-01 is a Tuesday: 09:00 EST is 14:00 UTC.
	if want := time.Date(2041, 1, 1, 14, 0, 0, 0, time.UTC); !ok || !got.Equal(want) {
		t.Errorf("NextOpen(%v) = %v, %v; want %v", from, got, ok, want)
	}
}
