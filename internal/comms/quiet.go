package comms

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/bizhours"
	"github.com/dispatcherhq/dispatcher/internal/phonezone"
)

// This file decides when a row may be sent at all (docs/design.md §11):
// where its recipient is (the zones: from the request, from the phone
// number, or the company's), the company's business hours when the row
// respects them, and the channel's quiet hours, which apply to every row of
// the channel. A recipient whose number maps to several zones is reached
// only at instants allowed in every one of them.

// ClockWindow is a daily window [Start, End) of local wall-clock time,
// "HH:MM" each ("08:00", "21:00"; End may be "24:00"). An End before Start
// wraps past midnight ("22:00"–"06:00"). Start and End are never equal.
type ClockWindow struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// String writes the window as "08:00–21:00".
func (w ClockWindow) String() string { return w.Start + "–" + w.End }

// QuietHours are, per channel, the daily window of the recipient's local
// time inside which a row of that channel may be sent at all (whatever its
// respect_business_hours says); nil means no limit for the channel. US
// federal rules, for example, allow telemarketing calls only 08:00–21:00
// at the called party's location.
type QuietHours struct {
	VoiceCall *ClockWindow `json:"voice_call"`
	SMS       *ClockWindow `json:"sms"`
	Email     *ClockWindow `json:"email"`
}

// QuietHoursChannels are the keys of settings.quiet_hours, in the order
// they are checked and shown.
var QuietHoursChannels = []Channel{ChannelVoice, ChannelSMS, ChannelEmail}

// For returns the channel's window, nil when the channel has none.
func (q QuietHours) For(ch Channel) *ClockWindow {
	switch ch {
	case ChannelVoice:
		return q.VoiceCall
	case ChannelSMS:
		return q.SMS
	case ChannelEmail:
		return q.Email
	}
	return nil
}

// check reports the problems of every channel's window under
// quiet_hours.<channel>.
func (q QuietHours) check(errs *ValidationError) {
	for _, ch := range QuietHoursChannels {
		w := q.For(ch)
		if w == nil {
			continue
		}
		path := "quiet_hours." + string(ch)
		start, err1 := bizhours.ParseClock(w.Start)
		end, err2 := bizhours.ParseClock(w.End)
		switch {
		case err1 != nil:
			errs.Add(path+".start", "must be a wall-clock time HH:MM from 00:00 to 23:59, got %q", w.Start)
		case start == 24*60:
			errs.Add(path+".start", "24:00 can only end a window; use 00:00")
		}
		if err2 != nil {
			errs.Add(path+".end", "must be a wall-clock time HH:MM from 00:00 to 24:00, got %q", w.End)
		}
		if err1 == nil && err2 == nil && start == end {
			errs.Add(path, "%s starts where it ends; give the window in which sending is allowed (e.g. 08:00–21:00), or null for no limit", w)
		}
	}
}

// calendar is the window as a bizhours.Calendar: the same window on every
// day of the week, no holidays (quiet hours are a daily rule), a wrapping
// window split at midnight. ok is false for a window check refuses.
func (w ClockWindow) calendar() (bizhours.Calendar, bool) {
	start, err1 := bizhours.ParseClock(w.Start)
	end, err2 := bizhours.ParseClock(w.End)
	if err1 != nil || err2 != nil || start >= 24*60 || start == end {
		return bizhours.Calendar{}, false
	}
	day := []bizhours.Interval{{Start: start, End: end}}
	if end < start {
		day = []bizhours.Interval{{Start: 0, End: end}, {Start: start, End: 24 * 60}}
		if end == 0 {
			day = day[1:]
		}
	}
	var week [7][]bizhours.Interval
	for d := range week {
		week[d] = day
	}
	cal, err := bizhours.New(week, nil)
	return cal, err == nil
}

// TimezoneSource says where a row's recipient zones come from.
type TimezoneSource string

// The sources of a row's zones.
const (
	// TimezoneFromRequest: the create (or PATCH) body gave timezone.
	TimezoneFromRequest TimezoneSource = "request"
	// TimezoneFromPhoneNumber: the company's timezone_from_phone_number,
	// and libphonenumber places the SMS or voice recipient's number.
	TimezoneFromPhoneNumber TimezoneSource = "phone_number"
	// TimezoneFromCompany: the company's default timezone.
	TimezoneFromCompany TimezoneSource = "company"
)

// unknownTimezone is what libphonenumber's mapper answers for a number it
// cannot place.
const unknownTimezone = phonezone.Unknown

// PhoneNumberTimezones returns the IANA zones libphonenumber's timezone
// mapper places an E.164 number in, sorted and distinct: one for most
// numbers, several for an area code that spans zones (+1 208: Boise and Los
// Angeles), every zone of the country for a number it knows only by its
// country (toll-free, unassigned area codes). The table is the library's
// (internal/phonezone: read on first use, so that functions which never
// place a number do not pay libphonenumber's init). It returns nil when the
// number is not "+" and digits, the mapper knows nothing of it (Etc/Unknown), or
// one of the zones it names does not load: then nothing is known of where
// the recipient is.
func PhoneNumberTimezones(e164 string) []string {
	names, err := phonezone.Zones(e164)
	if err != nil {
		return nil
	}
	var out []string
	for _, n := range names {
		if n == unknownTimezone || n == "" {
			continue
		}
		if _, err := Timezone(n); err != nil {
			return nil
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// RecipientZones decides where a row's recipient is: the request's
// timezone when it gave one; else, for an SMS or a call when the company
// has timezone_from_phone_number, the zones of toNumber; else the company's
// default timezone. The company's zone is shown as it is now (a row of
// source company follows the company's timezone when it changes).
func RecipientZones(ch Channel, requestTZ, toNumber string, s Settings) (TimezoneSource, []string) {
	if requestTZ != "" {
		return TimezoneFromRequest, []string{requestTZ}
	}
	if s.TimezoneFromPhoneNumber && (ch == ChannelSMS || ch == ChannelVoice) && toNumber != "" {
		if zones := PhoneNumberTimezones(toNumber); len(zones) > 0 {
			return TimezoneFromPhoneNumber, zones
		}
	}
	return TimezoneFromCompany, []string{companyZone(s).String()}
}

// companyZone is the company's default zone, UTC when it does not load.
func companyZone(s Settings) *time.Location {
	if loc, err := Timezone(s.Timezone); err == nil {
		return loc
	}
	return time.UTC
}

// ZoneSource is where the row's zones come from. A row stored before
// zones were recorded has none: its timezone, when set, came from the
// request; else it follows the company.
func (c Communication) ZoneSource() TimezoneSource {
	switch {
	case c.TimezoneSource != "":
		return c.TimezoneSource
	case c.Timezone != "":
		return TimezoneFromRequest
	}
	return TimezoneFromCompany
}

// locations are the zones the row's recipient may be in, as the
// dispatcher reads them now: the request's zone, the number's zones, or
// the company's current default (UTC when none of them loads).
func (c Communication) locations(s Settings) []*time.Location {
	var names []string
	switch c.ZoneSource() {
	case TimezoneFromRequest:
		names = []string{c.Timezone}
		if c.Timezone == "" {
			names = c.Timezones
		}
	case TimezoneFromPhoneNumber:
		names = c.Timezones
	}
	var locs []*time.Location
	for _, n := range names {
		loc, err := Timezone(n)
		if err != nil {
			return []*time.Location{companyZone(s)}
		}
		locs = append(locs, loc)
	}
	if len(locs) == 0 {
		return []*time.Location{companyZone(s)}
	}
	return locs
}

// Allowed is when a row may next be sent (NextAllowed's answer).
type Allowed struct {
	// At is the earliest allowed instant at or after the time asked.
	At time.Time
	// Reason says what holds the row at the time asked (At is later), ""
	// when it may be sent then. When Never, it names what never opens.
	Reason DeferReason
	// Never is true when no allowed instant comes within about three
	// years: business hours that never open, or windows that never overlap
	// in the recipient's zones.
	Never bool
}

// NextAllowed returns the earliest instant at or after t at which row may
// be sent under the company's settings s: inside s's business hours when
// the row respects them, and inside the channel's quiet hours when s has
// them, in every zone the row's recipient may be in (Communication's
// zones; see RecipientZones). The reason given is quiet_hours when the
// channel's quiet hours are closed at t in one of the zones (the legal
// window first), else business_hours.
func NextAllowed(t time.Time, row Communication, s Settings) Allowed {
	locs := row.locations(s)
	var business, quiet []bizhours.Constraint
	if row.RespectBusinessHours {
		cal, err := s.Calendar()
		if err != nil {
			return Allowed{Reason: DeferBusinessHours, Never: true}
		}
		for _, loc := range locs {
			business = append(business, bizhours.Constraint{Calendar: cal, Loc: loc})
		}
	}
	if w := s.QuietHours.For(row.Channel); w != nil {
		if cal, ok := w.calendar(); ok {
			for _, loc := range locs {
				quiet = append(quiet, bizhours.Constraint{Calendar: cal, Loc: loc})
			}
		}
	}
	next, ok := bizhours.NextOpenAll(t, append(slices.Clone(business), quiet...)...)
	if !ok {
		if _, bok := bizhours.NextOpenAll(t, business...); !bok {
			return Allowed{Reason: DeferBusinessHours, Never: true}
		}
		return Allowed{Reason: DeferQuietHours, Never: true}
	}
	a := Allowed{At: next}
	if next.After(t) {
		a.Reason = DeferBusinessHours
		for _, c := range quiet {
			if !c.Calendar.IsOpen(t, c.Loc) {
				a.Reason = DeferQuietHours
			}
		}
	}
	return a
}

// NeverAllowedMessage says, for a row NextAllowed never allows, why, in
// the caller's terms: what never opens, and in which zones.
func NeverAllowedMessage(row Communication, s Settings, reason DeferReason) string {
	if reason == DeferBusinessHours {
		return "the company's business hours never open"
	}
	var names []string
	for _, loc := range row.locations(s) {
		names = append(names, loc.String())
	}
	w := s.QuietHours.For(row.Channel)
	what := fmt.Sprintf("quiet_hours.%s (%s)", row.Channel, w)
	if row.RespectBusinessHours {
		what += " and the company's business hours"
	}
	return fmt.Sprintf("%s never allow an instant in every zone the recipient may be in (%s)", what, strings.Join(names, ", "))
}
