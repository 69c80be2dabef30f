// Package rfc3339 parses timestamps exactly as RFC 3339 §5.6 writes them,
// the grammar JSON Schema's "date-time" and "full-date" formats name:
//
//	date-fullyear   = 4DIGIT
//	date-month      = 2DIGIT  ; 01-12
//	date-mday       = 2DIGIT  ; 01-28, 01-29, 01-30, 01-31 based on month/year
//	time-hour       = 2DIGIT  ; 00-23
//	time-minute     = 2DIGIT  ; 00-59
//	time-second     = 2DIGIT  ; 00-58, 00-59, 00-60 based on leap second rules
//	time-secfrac    = "." 1*DIGIT
//	time-numoffset  = ("+" / "-") time-hour ":" time-minute
//	time-offset     = "Z" / time-numoffset
//	partial-time    = time-hour ":" time-minute ":" time-second [time-secfrac]
//	full-date       = date-fullyear "-" date-month "-" date-mday
//	full-time       = partial-time time-offset
//	date-time       = full-date "T" full-time
//
// "T" and "Z" may be lower case (§5.6, NOTE). Go's time.Parse is looser
// than this grammar: it accepts offsets up to ±24:59 (+24:00 silently moves
// the instant a day), a comma before the fraction, and it refuses what the
// grammar allows (a lower-case t or z, a leap second). Every API input that
// is a time — the create body, query strings — goes through this package.
//
// A leap second (second 60) is valid only as the last second of a UTC day
// (23:59:60 once the offset is applied), as the JSON-Schema test suite has
// it; it is read as the instant one second after 23:59:59, the start of the
// next day, since Go's time has no leap seconds.
package rfc3339

import (
	"errors"
	"fmt"
	"time"
)

// Error says which part of a timestamp breaks the grammar.
type Error struct {
	Input  string
	Reason string
}

// Error quotes the input and says what is wrong.
func (e *Error) Error() string {
	return fmt.Sprintf("%q is not an RFC 3339 date-time: %s", e.Input, e.Reason)
}

// ErrSyntax is what every *Error matches.
var ErrSyntax = errors.New("not RFC 3339")

// Is makes errors.Is(err, ErrSyntax) hold.
func (e *Error) Is(target error) bool { return target == ErrSyntax }

// ParseDateTime parses an RFC 3339 date-time (with its offset, or Z) and
// returns it in UTC. Errors are *Error.
func ParseDateTime(s string) (time.Time, error) {
	p := parser{s: s}
	year, month, day := p.fullDate()
	p.sep("Tt", `"T" between the date and the time`)
	hour := p.num(2, 0, 23, "hour")
	p.sep(":", `":" after the hour`)
	minute := p.num(2, 0, 59, "minute")
	p.sep(":", `":" after the minute`)
	second := p.num(2, 0, 60, "second")
	nanos := 0
	if p.err == nil && p.i < len(s) && s[p.i] == '.' {
		p.i++
		nanos = p.fraction()
	}
	offset := p.offset()
	if p.err == nil && p.i != len(s) {
		p.fail("unexpected %q after the offset", s[p.i:])
	}
	if p.err != nil {
		return time.Time{}, p.err
	}
	if day > daysIn(month, year) {
		return time.Time{}, &Error{s, fmt.Sprintf("day %02d does not exist in %04d-%02d", day, year, month)}
	}
	leap := second == 60
	if leap {
		second = 59
	}
	t := time.Date(year, time.Month(month), day, hour, minute, second, nanos, time.UTC).Add(-offset)
	if leap {
		if t.Hour() != 23 || t.Minute() != 59 {
			return time.Time{}, &Error{s, "a leap second (:60) can only be the last second of a UTC day, 23:59:60Z"}
		}
		t = t.Add(time.Second)
	}
	return t, nil
}

// ParseFullDate parses an RFC 3339 full-date (YYYY-MM-DD) as midnight UTC
// of that date. Errors are *Error.
func ParseFullDate(s string) (time.Time, error) {
	p := parser{s: s}
	year, month, day := p.fullDate()
	if p.err == nil && p.i != len(s) {
		p.fail("unexpected %q after the date", s[p.i:])
	}
	if p.err != nil {
		return time.Time{}, p.err
	}
	if day > daysIn(month, year) {
		return time.Time{}, &Error{s, fmt.Sprintf("day %02d does not exist in %04d-%02d", day, year, month)}
	}
	return time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC), nil
}

// parser reads s left to right; the first failure sticks in err.
type parser struct {
	s   string
	i   int
	err error
}

func (p *parser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = &Error{p.s, fmt.Sprintf(format, args...)}
	}
}

// num reads exactly n ASCII digits in [lo, hi].
func (p *parser) num(n, lo, hi int, what string) int {
	if p.err != nil {
		return 0
	}
	v := 0
	for k := 0; k < n; k++ {
		if p.i >= len(p.s) || p.s[p.i] < '0' || p.s[p.i] > '9' {
			p.fail("the %s must be %d digits", what, n)
			return 0
		}
		v = v*10 + int(p.s[p.i]-'0')
		p.i++
	}
	if v < lo || v > hi {
		p.fail("the %s %0*d is out of range %0*d–%0*d", what, n, v, n, lo, n, hi)
	}
	return v
}

// sep reads one of the bytes in set.
func (p *parser) sep(set, what string) {
	if p.err != nil {
		return
	}
	if p.i < len(p.s) {
		for k := 0; k < len(set); k++ {
			if p.s[p.i] == set[k] {
				p.i++
				return
			}
		}
	}
	p.fail("expected %s", what)
}

func (p *parser) fullDate() (year, month, day int) {
	year = p.num(4, 0, 9999, "year")
	p.sep("-", `"-" after the year`)
	month = p.num(2, 1, 12, "month")
	p.sep("-", `"-" after the month`)
	day = p.num(2, 1, 31, "day")
	return year, month, day
}

// fraction reads 1 or more digits after the "." and returns nanoseconds
// (digits beyond the ninth are read and dropped).
func (p *parser) fraction() int {
	start, nanos := p.i, 0
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		if p.i-start < 9 {
			nanos = nanos*10 + int(p.s[p.i]-'0')
		}
		p.i++
	}
	if p.i == start {
		p.fail(`the fraction after "." needs at least one digit`)
		return 0
	}
	for k := p.i - start; k < 9; k++ {
		nanos *= 10
	}
	return nanos
}

// offset reads "Z", "z" or ±hh:mm with hh 00–23 and mm 00–59.
func (p *parser) offset() time.Duration {
	if p.err != nil {
		return 0
	}
	if p.i >= len(p.s) {
		p.fail(`missing the offset: end with "Z" or "±hh:mm"`)
		return 0
	}
	switch c := p.s[p.i]; c {
	case 'Z', 'z':
		p.i++
		return 0
	case '+', '-':
		p.i++
		h := p.num(2, 0, 23, "offset hour")
		p.sep(":", `":" in the offset`)
		m := p.num(2, 0, 59, "offset minute")
		d := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute
		if c == '-' {
			d = -d
		}
		return d
	}
	p.fail(`expected the offset "Z" or "±hh:mm", got %q`, p.s[p.i:])
	return 0
}

func daysIn(month, year int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
