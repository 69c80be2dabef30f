package rfc3339

import (
	"errors"
	"testing"
	"time"
)

// The cases of the JSON-Schema test suite's date-time format (draft 2020-12,
// optional/format/date-time.json), and what Go's time.Parse gets wrong.
func TestParseDateTime(t *testing.T) {
	valid := []struct{ in, want string }{
		{"1963-06-19T08:30:06.283185Z", "1963-06-19T08:30:06.283185Z"},
		{"1963-06-19T08:30:06Z", "1963-06-19T08:30:06Z"},
		{"1937-01-01T12:00:27.87+00:20", "1937-01-01T11:40:27.87Z"},
		{"1990-12-31T15:59:50.123-08:00", "1990-12-31T23:59:50.123Z"},
		{"1998-12-31T23:59:60Z", "1999-01-01T00:00:00Z"},                         // leap second, UTC
		{"1998-12-31T15:59:60.123-08:00", "1999-01-01T00:00:00.123Z"},            // leap second with offset
		{"1963-06-19t08:30:06.283185z", "1963-06-19T08:30:06.283185Z"},           // lower-case t and z
		{"2026-12-01t09:00:00z", "2026-12-01T09:00:00Z"},                         // the example
		{"2026-12-05T09:00:00+23:59", "2026-12-04T09:01:00Z"},                    // the largest offset
		{"2026-12-05T09:00:00-00:00", "2026-12-05T09:00:00Z"},                    // unknown local offset
		{"2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z"},                         // a leap day
		{"2026-12-01T09:00:00.1234567891234Z", "2026-12-01T09:00:00.123456789Z"}, // digits beyond ns dropped
		{"0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"},
		{"9999-12-31T23:59:59.999999999Z", "9999-12-31T23:59:59.999999999Z"},
	}
	for _, c := range valid {
		got, err := ParseDateTime(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if w, _ := time.Parse(time.RFC3339Nano, c.want); !got.Equal(w) || got.Location() != time.UTC {
			t.Errorf("%s = %v, want %s in UTC", c.in, got, c.want)
		}
	}
	invalid := []string{
		"1990-02-31T15:59:59.123-08:00", // day 31 in February
		"2026-02-29T00:00:00Z",          // not a leap year
		"1990-12-31T15:59:59-24:00",     // offset hour 24
		"2026-12-05T09:00:00+24:00",     // the example: Go reads it as the day before
		"2026-12-05T09:00:00+23:60",     // offset minute 60
		"2026-12-05T09:00:00+0900",      // offset without ":"
		"2026-12-05T09:00:00+09",        // offset without minutes
		"1998-12-31T23:59:61Z",          // past a leap second
		"1998-12-31T22:59:60Z",          // leap second, wrong hour
		"1998-12-31T23:58:60Z",          // leap second, wrong minute
		"2026-12-01T09:00:60+01:00",     // leap second not at the end of a UTC day
		"06/19/1963 08:30:06 PST",
		"2013-350T01:01:01",          // ISO 8601 ordinal date, not RFC 3339
		"1963-6-19T08:30:06.283185Z", // month not padded
		"1963-06-1T08:30:06.283185Z", // day not padded
		"1963-06-1৪T00:00:00Z",       // a non-ASCII digit
		"1963-06-11T0৪:00:00Z",       // a non-ASCII digit in the time
		"2026-12-01T09:00:00,5Z",     // Go accepts a comma before the fraction
		"2026-12-01T09:00:00.Z",      // an empty fraction
		"2026-12-01T09:00:00",        // no offset
		"2026-12-01 09:00:00Z",       // a space for T
		"2026-12-01T9:00:00Z",        // hour not padded
		"2026-12-01T24:00:00Z",       // hour 24
		"2026-12-01T09:00Z",          // no seconds
		" 2026-12-01T09:00:00Z",      // white space
		"2026-12-01T09:00:00Z ",      // trailing white space
		"2026-12-01T09:00:00ZZ",      // trailing garbage
		"+2026-12-01T09:00:00Z",      // a signed year
		"20261-12-01T09:00:00Z",      // five-digit year
		"2026-13-01T09:00:00Z",       // month 13
		"2026-00-01T09:00:00Z",       // month 0
		"2026-12-00T09:00:00Z",       // day 0
		"",
	}
	for _, in := range invalid {
		if got, err := ParseDateTime(in); !errors.Is(err, ErrSyntax) {
			t.Errorf("%q = %v, %v; want an RFC 3339 syntax error", in, got, err)
		}
	}
}

func TestParseFullDate(t *testing.T) {
	for in, ok := range map[string]bool{
		"2026-12-25": true, "2024-02-29": true, "2026-02-29": false, "2026-12-5": false, "2026-12-25T00:00:00Z": false,
		"2026/12/25": false, "2026-12-32": false, "": false, "2026-1২-25": false,
	} {
		got, err := ParseFullDate(in)
		if (err == nil) != ok {
			t.Errorf("%q: %v, %v; want ok=%v", in, got, err, ok)
		}
	}
}

func TestErrorsSayWhatIsWrong(t *testing.T) {
	for in, want := range map[string]string{
		"2026-12-05T09:00:00+24:00": `"2026-12-05T09:00:00+24:00" is not an RFC 3339 date-time: the offset hour 24 is out of range 00–23`,
		"2026-02-30T09:00:00Z":      `"2026-02-30T09:00:00Z" is not an RFC 3339 date-time: day 30 does not exist in 2026-02`,
		"2026-12-01T09:00:00":       `"2026-12-01T09:00:00" is not an RFC 3339 date-time: missing the offset: end with "Z" or "±hh:mm"`,
	} {
		if _, err := ParseDateTime(in); err == nil || err.Error() != want {
			t.Errorf("%s: %v\nwant %s", in, err, want)
		}
	}
}
