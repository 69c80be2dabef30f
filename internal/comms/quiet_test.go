package comms_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

const (
	newYorkNumber = "+12125550123" // Manhattan: America/New_York
	idahoNumber   = "+12085550123" // area code 208 spans America/Boise and America/Los_Angeles
)

func quietSettings() comms.Settings {
	s := comms.DefaultSettings()
	s.Timezone = "Australia/Sydney"
	s.QuietHours.VoiceCall = &comms.ClockWindow{Start: "08:00", End: "21:00"}
	s.TimezoneFromPhoneNumber = true
	return s
}

func at(t *testing.T, s string) time.Time {
	t.Helper()
	x, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// voiceRow is a call to number with no timezone in the request, placed as
// a create places it.
func voiceRow(number string, s comms.Settings) comms.Communication {
	row := comms.Communication{Channel: comms.ChannelVoice, Payload: []byte(`{"to_number":"` + number + `"}`)}
	row.TimezoneSource, row.Timezones = comms.RecipientZones(row.Channel, "", number, s)
	return row
}

// TestQuietHoursFromThePhoneNumber is the case: voice quiet hours
// 08:00–21:00 and zones from numbers; a call scheduled for 03:00 New York
// time with no timezone waits for 08:00 New York; one to an area code
// spanning two zones waits for the later of the two openings.
func TestQuietHoursFromThePhoneNumber(t *testing.T) {
	s := quietSettings()
	threeAMNewYork := at(t, "2026-03-10T03:00:00-04:00")

	ny := voiceRow(newYorkNumber, s)
	if ny.TimezoneSource != comms.TimezoneFromPhoneNumber || !slices.Equal(ny.Timezones, []string{"America/New_York"}) {
		t.Fatalf("zones of %s = %s %v", newYorkNumber, ny.TimezoneSource, ny.Timezones)
	}
	a := comms.NextAllowed(threeAMNewYork, ny, s)
	if want := at(t, "2026-03-10T08:00:00-04:00"); !a.At.Equal(want) || a.Reason != comms.DeferQuietHours || a.Never {
		t.Fatalf("New York: %+v, want %v (quiet_hours)", a, want)
	}

	id := voiceRow(idahoNumber, s)
	if !slices.Equal(id.Timezones, []string{"America/Boise", "America/Los_Angeles"}) {
		t.Fatalf("zones of %s = %v", idahoNumber, id.Timezones)
	}
	// 08:00 in Boise is 14:00Z, 08:00 in Los Angeles 15:00Z: the later.
	a = comms.NextAllowed(threeAMNewYork, id, s)
	if want := at(t, "2026-03-10T08:00:00-07:00"); !a.At.Equal(want) {
		t.Fatalf("Idaho: %v, want %v (08:00 Los Angeles)", a.At, want)
	}
	// 20:30 in Boise is 19:30 in Los Angeles: Boise has closed at 21:00
	// Boise = 03:00Z; the next instant open in both is 08:00 Los Angeles.
	a = comms.NextAllowed(at(t, "2026-03-10T21:30:00-06:00"), id, s)
	if want := at(t, "2026-03-11T08:00:00-07:00"); !a.At.Equal(want) {
		t.Fatalf("Idaho evening: %v, want %v", a.At, want)
	}
	if a := comms.NextAllowed(at(t, "2026-03-10T12:00:00-07:00"), id, s); !a.At.Equal(at(t, "2026-03-10T12:00:00-07:00")) || a.Reason != "" {
		t.Fatalf("Idaho noon is allowed at once, got %+v", a)
	}
}

// TestWhereTheRecipientIs: the request's zone first, then the number's
// (only when the company opts in, only for SMS and calls, only when the
// mapper places it), then the company's.
func TestWhereTheRecipientIs(t *testing.T) {
	on := quietSettings()
	off := quietSettings()
	off.TimezoneFromPhoneNumber = false
	cases := []struct {
		name      string
		ch        comms.Channel
		requestTZ string
		number    string
		s         comms.Settings
		source    comms.TimezoneSource
		zones     []string
	}{
		{"request wins", comms.ChannelVoice, "Europe/Paris", newYorkNumber, on, comms.TimezoneFromRequest, []string{"Europe/Paris"}},
		{"number", comms.ChannelSMS, "", newYorkNumber, on, comms.TimezoneFromPhoneNumber, []string{"America/New_York"}},
		{"setting off: company", comms.ChannelVoice, "", newYorkNumber, off, comms.TimezoneFromCompany, []string{"Australia/Sydney"}},
		{"email has no number: company", comms.ChannelEmail, "", "", on, comms.TimezoneFromCompany, []string{"Australia/Sydney"}},
		{"several zones, same offsets", comms.ChannelVoice, "", "+447911123456", on, comms.TimezoneFromPhoneNumber,
			[]string{"Europe/Guernsey", "Europe/Isle_of_Man", "Europe/London"}},
		// +800 (international freephone) is placed nowhere: Etc/Unknown.
		{"Etc/Unknown: company", comms.ChannelVoice, "", "+80012345678", on, comms.TimezoneFromCompany, []string{"Australia/Sydney"}},
		{"not a number: company", comms.ChannelVoice, "", "+0", on, comms.TimezoneFromCompany, []string{"Australia/Sydney"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, zones := comms.RecipientZones(tc.ch, tc.requestTZ, tc.number, tc.s)
			if src != tc.source || !slices.Equal(zones, tc.zones) {
				t.Fatalf("RecipientZones = %s %v, want %s %v", src, zones, tc.source, tc.zones)
			}
		})
	}
	if z := comms.PhoneNumberTimezones("+80012345678"); z != nil {
		t.Fatalf("PhoneNumberTimezones(+800…) = %v, want none (the mapper says Etc/Unknown)", z)
	}
}

// TestQuietHoursWhateverBusinessHoursSay: quiet hours hold a row that does
// not respect business hours; both hold one that does, quiet_hours named
// when the legal window is closed, business_hours otherwise; email and
// channels without a window are not held.
func TestQuietHoursWhateverBusinessHoursSay(t *testing.T) {
	s := quietSettings()
	s.TimezoneFromPhoneNumber = false
	s.Timezone = "America/New_York"
	s.QuietHours.SMS = &comms.ClockWindow{Start: "22:00", End: "06:00"} // wraps past midnight
	call := comms.Communication{Channel: comms.ChannelVoice}
	// Tuesday 2026-03-10, 07:00 New York.
	seven := at(t, "2026-03-10T07:00:00-04:00")
	if a := comms.NextAllowed(seven, call, s); !a.At.Equal(at(t, "2026-03-10T08:00:00-04:00")) || a.Reason != comms.DeferQuietHours {
		t.Fatalf("call at 07:00: %+v", a)
	}
	call.RespectBusinessHours = true // Mon–Fri 09:00–17:00
	if a := comms.NextAllowed(seven, call, s); !a.At.Equal(at(t, "2026-03-10T09:00:00-04:00")) || a.Reason != comms.DeferQuietHours {
		t.Fatalf("call at 07:00 respecting business hours: %+v", a)
	}
	if a := comms.NextAllowed(at(t, "2026-03-10T08:30:00-04:00"), call, s); !a.At.Equal(at(t, "2026-03-10T09:00:00-04:00")) || a.Reason != comms.DeferBusinessHours {
		t.Fatalf("call at 08:30 respecting business hours: %+v", a)
	}
	sms := comms.Communication{Channel: comms.ChannelSMS}
	if a := comms.NextAllowed(at(t, "2026-03-10T12:00:00-04:00"), sms, s); !a.At.Equal(at(t, "2026-03-10T22:00:00-04:00")) {
		t.Fatalf("sms at noon, window 22:00–06:00: %+v", a)
	}
	if a := comms.NextAllowed(at(t, "2026-03-10T05:59:00-04:00"), sms, s); a.Reason != "" {
		t.Fatalf("sms at 05:59, window 22:00–06:00: %+v", a)
	}
	email := comms.Communication{Channel: comms.ChannelEmail}
	if a := comms.NextAllowed(seven, email, s); !a.At.Equal(seven) || a.Reason != "" {
		t.Fatalf("email has no window: %+v", a)
	}
	s.QuietHours.VoiceCall = &comms.ClockWindow{Start: "18:00", End: "21:00"}
	if a := comms.NextAllowed(seven, call, s); !a.Never || a.Reason != comms.DeferQuietHours {
		t.Fatalf("business hours and quiet hours that never overlap: %+v", a)
	}
	if msg := comms.NeverAllowedMessage(call, s, comms.DeferQuietHours); !strings.Contains(msg, "quiet_hours.voice_call (18:00–21:00)") || !strings.Contains(msg, "America/New_York") {
		t.Fatalf("NeverAllowedMessage = %q", msg)
	}
}

// TestStoredRowsWithoutZones: a row stored before zones were recorded
// reads its source from its timezone and follows the company otherwise.
func TestStoredRowsWithoutZones(t *testing.T) {
	s := quietSettings()
	s.Timezone = "America/New_York"
	old := comms.Communication{Channel: comms.ChannelVoice}
	if old.ZoneSource() != comms.TimezoneFromCompany {
		t.Fatal(old.ZoneSource())
	}
	if a := comms.NextAllowed(at(t, "2026-03-10T07:00:00-04:00"), old, s); !a.At.Equal(at(t, "2026-03-10T08:00:00-04:00")) {
		t.Fatalf("old row, company zone: %+v", a)
	}
	old.Timezone = "Europe/London"
	if old.ZoneSource() != comms.TimezoneFromRequest {
		t.Fatal(old.ZoneSource())
	}
	if a := comms.NextAllowed(at(t, "2026-03-10T07:00:00Z"), old, s); !a.At.Equal(at(t, "2026-03-10T08:00:00Z")) {
		t.Fatalf("old row, its own zone: %+v", a)
	}
}

// TestQuietHoursValidation: each problem is named by its field path.
func TestQuietHoursValidation(t *testing.T) {
	cases := []struct {
		name string
		q    comms.QuietHours
		want []string
	}{
		{"ok", comms.QuietHours{VoiceCall: &comms.ClockWindow{Start: "08:00", End: "21:00"}, SMS: &comms.ClockWindow{Start: "00:00", End: "24:00"},
			Email: &comms.ClockWindow{Start: "22:00", End: "06:00"}}, nil},
		{"bad start", comms.QuietHours{VoiceCall: &comms.ClockWindow{Start: "8am", End: "21:00"}}, []string{"quiet_hours.voice_call.start"}},
		{"bad end", comms.QuietHours{SMS: &comms.ClockWindow{Start: "08:00", End: "25:00"}}, []string{"quiet_hours.sms.end"}},
		{"start 24:00", comms.QuietHours{SMS: &comms.ClockWindow{Start: "24:00", End: "08:00"}}, []string{"quiet_hours.sms.start"}},
		{"start == end", comms.QuietHours{Email: &comms.ClockWindow{Start: "09:00", End: "09:00"}}, []string{"quiet_hours.email"}},
		{"both bad", comms.QuietHours{VoiceCall: &comms.ClockWindow{Start: "", End: "9"}}, []string{"quiet_hours.voice_call.start", "quiet_hours.voice_call.end"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := comms.DefaultSettings()
			s.QuietHours = tc.q
			err := s.Validate()
			var ve *comms.ValidationError
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %v", err)
			}
			var got []string
			for _, f := range ve.Fields {
				got = append(got, f.Field)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("fields %v, want %v (%v)", got, tc.want, err)
			}
		})
	}
}
