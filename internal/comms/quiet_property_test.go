package comms_test

import (
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// numberPrefixes are where the property test's numbers start: one-zone and
// several-zone area codes (+1 208, 605, 701), a toll-free one (every zone
// of the NANP), and countries with one zone, several zones at one offset,
// several offsets (+7, +55, +61 with Lord Howe's half-hour DST, +52), and
// none (+800, Etc/Unknown).
var numberPrefixes = []string{
	"+1212", "+1208", "+1605", "+1701", "+1850", "+1907", "+1808", "+1800",
	"+447911", "+6141", "+6128", "+614", "+55", "+5511", "+5592", "+79", "+7495", "+52", "+9180", "+64", "+56", "+685", "+800",
}

var zonePool = []string{"UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Apia", "America/Santiago"}

func drawWindow(t *rapid.T, label string) *comms.ClockWindow {
	if !rapid.Bool().Draw(t, label+"Set") {
		return nil
	}
	clock := func(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }
	start := rapid.IntRange(0, 1439).Draw(t, label+"Start")
	end := rapid.IntRange(1, 1440).Filter(func(e int) bool { return e != start }).Draw(t, label+"End")
	return &comms.ClockWindow{Start: clock(start), End: clock(end)}
}

// TestNextAllowedProperties: for random numbers (zones from the number
// when the company opts in), quiet-hours windows (wrapping ones too),
// business hours and instants around DST changes, the instant NextAllowed
// gives is allowed in every zone the recipient may be in — inside the
// channel's window and, when asked, the business hours — and no earlier
// instant from t on is. Every offset of these zones in 2020–2030 is whole
// minutes and changes on a minute, so openness is constant within each UTC
// minute: checking t and every minute boundary up to the answer (the first
// four days of it, then samples) is exhaustive there.
func TestNextAllowedProperties(t *testing.T) {
	start := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	end := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	rapid.Check(t, func(t *rapid.T) {
		s := comms.DefaultSettings()
		s.Timezone = rapid.SampledFrom(zonePool).Draw(t, "companyZone")
		s.TimezoneFromPhoneNumber = rapid.Bool().Draw(t, "fromNumber")
		s.QuietHours = comms.QuietHours{VoiceCall: drawWindow(t, "voice"), SMS: drawWindow(t, "sms"), Email: drawWindow(t, "email")}
		if rapid.Bool().Draw(t, "weekend") {
			s.BusinessHours["sat"] = [][2]string{{"10:00", "14:00"}}
		}
		ch := rapid.SampledFrom(comms.QuietHoursChannels).Draw(t, "channel")
		number := rapid.SampledFrom(numberPrefixes).Draw(t, "prefix") + rapid.StringMatching(`[0-9]{6,8}`).Draw(t, "rest")
		requestTZ := ""
		if rapid.IntRange(0, 4).Draw(t, "requestTZ") == 0 {
			requestTZ = rapid.SampledFrom(zonePool).Draw(t, "zone")
		}
		row := comms.Communication{Channel: ch, RespectBusinessHours: rapid.Bool().Draw(t, "respect")}
		row.Timezone = requestTZ
		row.TimezoneSource, row.Timezones = comms.RecipientZones(ch, requestTZ, number, s)

		var locs []*time.Location
		for _, n := range row.Timezones {
			loc, err := time.LoadLocation(n)
			if err != nil {
				t.Fatal(err)
			}
			locs = append(locs, loc)
		}
		from := time.Unix(rapid.Int64Range(start, end).Draw(t, "unix"), 0)
		if rapid.Bool().Draw(t, "nearTransition") {
			if _, next := from.In(locs[0]).ZoneBounds(); !next.IsZero() {
				from = next.Add(time.Duration(rapid.Int64Range(-2*86400, 2*86400).Draw(t, "delta")) * time.Second)
			}
		}
		from = from.Add(time.Duration(rapid.IntRange(0, 59_999).Draw(t, "ms")) * time.Millisecond)

		cal, err := s.Calendar()
		if err != nil {
			t.Fatal(err)
		}
		w := s.QuietHours.For(ch)
		allowed := func(x time.Time) bool {
			for _, loc := range locs {
				if row.RespectBusinessHours && !cal.IsOpen(x, loc) {
					return false
				}
				if w != nil {
					lt := x.In(loc)
					m := fmt.Sprintf("%02d:%02d", lt.Hour(), lt.Minute())
					in := w.Start <= m && m < w.End
					if w.End < w.Start {
						in = m >= w.Start || m < w.End
					}
					if w.End == "24:00" {
						in = m >= w.Start
					}
					if !in {
						return false
					}
				}
			}
			return true
		}

		a := comms.NextAllowed(from, row, s)
		upTo := a.At
		if a.Never {
			upTo = from.Add(8 * 24 * time.Hour)
		} else {
			if a.At.Before(from) || !allowed(a.At) {
				t.Fatalf("NextAllowed(%v) = %v in %v: before t or not allowed", from, a.At, row.Timezones)
			}
			if (a.Reason == "") != a.At.Equal(from) {
				t.Fatalf("reason %q with At %v, t %v", a.Reason, a.At, from)
			}
		}
		if allowed(from) && !a.At.Equal(from) {
			t.Fatalf("t %v is allowed in %v, NextAllowed = %+v", from, row.Timezones, a)
		}
		x := from.Truncate(time.Minute).Add(time.Minute)
		for limit := from.Add(4 * 24 * time.Hour); x.Before(upTo) && x.Before(limit); x = x.Add(time.Minute) {
			if allowed(x) {
				t.Fatalf("NextAllowed(%v) = %+v in %v, but %v is allowed", from, a, row.Timezones, x)
			}
		}
		for span := upTo.Sub(x); span > 0 && !x.Before(from.Add(4*24*time.Hour)); {
			for range 200 {
				if y := x.Add(time.Duration(rapid.Int64Range(0, int64(span)-1).Draw(t, "sample"))); allowed(y) {
					t.Fatalf("NextAllowed(%v) = %+v in %v, but %v is allowed", from, a, row.Timezones, y)
				}
			}
			break
		}
	})
}
