package httpapi_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// quietVoiceBody is a call to number scheduled for when, with no
// timezone and no business hours.
func quietVoiceBody(when, number string) string {
	return `{"channel":"voice_call","scheduled_for":"` + when + `",
"payload":{"voice_agent_outbound_config_id":"` + agentID + `","to_number":"` + number + `"}}`
}

const quietSettingsBody = `{"timezone":"Australia/Sydney","sending_domains":["example.com"],
"quiet_hours":{"voice_call":{"start":"08:00","end":"21:00"}},"timezone_from_phone_number":true}`

// TestQuietHoursSettings: the settings document shows both settings (off
// by default); bad quiet hours are a 422 naming each field and store
// nothing.
func TestQuietHoursSettings(t *testing.T) {
	t.Parallel()
	e := setup(t)
	var s struct {
		QuietHours map[string]any `json:"quiet_hours"`
		FromNumber *bool          `json:"timezone_from_phone_number"`
	}
	_ = json.Unmarshal(e.mustDo("GET", "/v1/settings", "read", "", 200).Data, &s)
	if len(s.QuietHours) != 3 || s.QuietHours["voice_call"] != nil || s.QuietHours["sms"] != nil || s.QuietHours["email"] != nil ||
		s.FromNumber == nil || *s.FromNumber {
		t.Fatalf("defaults: %+v", s)
	}
	good := e.mustDo("PUT", "/v1/settings", "all", quietSettingsBody, 200)
	if !strings.Contains(string(good.Data), `"quiet_hours":{"voice_call":{"start":"08:00","end":"21:00"},"sms":null,"email":null},"timezone_from_phone_number":true`) {
		t.Fatalf("PUT answered %s", good.Data)
	}
	for _, tc := range []struct {
		body   string
		fields []string
	}{
		{`{"timezone":"UTC","quiet_hours":{"voice_call":{"start":"8:00","end":"21:00"}}}`, []string{"quiet_hours.voice_call.start"}},
		{`{"timezone":"UTC","quiet_hours":{"voice_call":{"start":"08:00","end":"21:60"}}}`, []string{"quiet_hours.voice_call.end"}},
		{`{"timezone":"UTC","quiet_hours":{"sms":{"start":"09:00","end":"09:00"}}}`, []string{"quiet_hours.sms"}},
		{`{"timezone":"UTC","quiet_hours":{"fax":{"start":"08:00","end":"21:00"}}}`, []string{"quiet_hours.fax"}},
		{`{"timezone":"UTC","quiet_hours":{"email":{"start":"08:00"}},"timezone_from_phone_number":1}`, []string{"quiet_hours.email.end", "timezone_from_phone_number"}},
	} {
		r := e.do("PUT", "/v1/settings", "all", tc.body)
		if r.Status != 422 || r.Error.Code != "validation_failed" || !slices.Equal(sorted(r.fields()), tc.fields) {
			t.Errorf("%s: %d %s, want 422 naming %v", tc.body, r.Status, r.Body, tc.fields)
		}
	}
	if again := e.mustDo("GET", "/v1/settings", "read", "", 200); string(again.Data) != string(good.Data) {
		t.Errorf("a refused PUT changed the settings:\n%s\n%s", again.Data, good.Data)
	}
}

// TestQuietHoursFromTheNumberThroughTheAPI is the case through the
// API: quiet_hours.voice_call 08:00–21:00 and timezone_from_phone_number; a
// call to a New York number scheduled for 03:00 New York time, no timezone
// given, is due at 08:00 New York; one to area code 208 (Boise and Los
// Angeles) at the later opening, 08:00 Los Angeles. A PATCH that moves the
// recipient to another number moves the row; windows the number's zones
// never share are a 422 naming payload.to_number, charging nothing.
func TestQuietHoursFromTheNumberThroughTheAPI(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.mustDo("PUT", "/v1/settings", "all", quietSettingsBody, 200)
	// testNow is 2026-12-02 10:00Z; New York is on EST (-05:00).
	threeAM := "2026-12-03T03:00:00-05:00"

	ny := e.mustDo("POST", "/v1/scheduled-communications", "all", quietVoiceBody(threeAM, "+12125550123"), 201).row(t)
	if ny["next_attempt_at"] != "2026-12-03T13:00:00Z" || ny["scheduled_for"] != "2026-12-03T08:00:00Z" ||
		ny["timezone"] != nil || ny["timezone_source"] != "phone_number" || fmt.Sprint(ny["timezones"]) != "[America/New_York]" {
		t.Errorf("New York: %v", ny)
	}
	idaho := e.mustDo("POST", "/v1/scheduled-communications", "all", quietVoiceBody(threeAM, "+12085550123"), 201).row(t)
	// 08:00 Boise (MST) = 15:00Z, 08:00 Los Angeles (PST) = 16:00Z: the later.
	if idaho["next_attempt_at"] != "2026-12-03T16:00:00Z" || fmt.Sprint(idaho["timezones"]) != "[America/Boise America/Los_Angeles]" {
		t.Errorf("Idaho: %v", idaho)
	}
	// The request's timezone wins over the number.
	paris := e.mustDo("POST", "/v1/scheduled-communications", "all",
		strings.Replace(quietVoiceBody(threeAM, "+12125550123"), `"channel"`, `"timezone":"Europe/Paris","channel"`, 1), 201).row(t)
	if paris["next_attempt_at"] != "2026-12-03T08:00:00Z" || paris["timezone_source"] != "request" || fmt.Sprint(paris["timezones"]) != "[Europe/Paris]" {
		t.Errorf("timezone in the request: %v", paris)
	}
	// A number the mapper cannot place falls back to the company (Sydney, AEDT +11:00: 08:00 = 21:00Z).
	unknown := e.mustDo("POST", "/v1/scheduled-communications", "all", quietVoiceBody(threeAM, "+80012345678"), 201).row(t)
	if unknown["timezone_source"] != "company" || fmt.Sprint(unknown["timezones"]) != "[Australia/Sydney]" || unknown["next_attempt_at"] != "2026-12-03T08:00:00Z" {
		t.Errorf("unplaceable number: %v", unknown)
	}

	// PATCH the New York call to the Idaho number: the row moves with it.
	moved := e.mustDo("PATCH", "/v1/scheduled-communications/"+ny["id"].(string), "all",
		`{"payload":{"voice_agent_outbound_config_id":"`+agentID+`","to_number":"+12085550123"}}`, 200).row(t)
	if moved["next_attempt_at"] != "2026-12-03T16:00:00Z" || fmt.Sprint(moved["timezones"]) != "[America/Boise America/Los_Angeles]" {
		t.Errorf("patched to Idaho: %v", moved)
	}

	e.mustDo("PUT", "/v1/settings", "all", strings.Replace(quietSettingsBody, `"end":"21:00"`, `"end":"09:00"`, 1), 200)
	credits := func() any {
		r := e.mustDo("POST", "/v1/scheduled-communications", "all", quietVoiceBody(threeAM, "+12125550123"), 201)
		return r.Meta["credits_remaining"]
	}
	c0 := credits()
	r := e.do("POST", "/v1/scheduled-communications", "all", quietVoiceBody(threeAM, "+12085550123"))
	if r.Status != 422 || !slices.Equal(r.fields(), []string{"payload.to_number"}) ||
		!strings.Contains(r.Error.Details[0].Message, "America/Boise, America/Los_Angeles") {
		t.Errorf("windows that never overlap: %d %s", r.Status, r.Body)
	}
	if c1 := credits(); fmt.Sprint(c1) != fmt.Sprint(c0.(float64)-1) {
		t.Errorf("the refused create was charged: %v then %v", c0, c1)
	}
}

// TestBusinessHoursNeverSharedByTheNumbersZones: business hours that open
// every weekday, but only for a minute, never open at the same time in
// Boise and Los Angeles: the 422 names payload.to_number (give the
// recipient's timezone), not respect_business_hours (they do open).
func TestBusinessHoursNeverSharedByTheNumbersZones(t *testing.T) {
	t.Parallel()
	e := setup(t)
	minute := `[["09:00","09:01"]]`
	e.mustDo("PUT", "/v1/settings", "all", `{"timezone":"UTC","timezone_from_phone_number":true,"business_hours":{"mon":`+minute+
		`,"tue":`+minute+`,"wed":`+minute+`,"thu":`+minute+`,"fri":`+minute+`,"sat":[],"sun":[]}}`, 200)
	body := strings.Replace(quietVoiceBody("2026-12-03T03:00:00-05:00", "+12085550123"), `"channel"`, `"respect_business_hours":true,"channel"`, 1)
	r := e.do("POST", "/v1/scheduled-communications", "all", body)
	if r.Status != 422 || !slices.Equal(r.fields(), []string{"payload.to_number"}) ||
		!strings.Contains(r.Error.Details[0].Message, "America/Boise, America/Los_Angeles") {
		t.Errorf("business hours the zones never share: %d %s", r.Status, r.Body)
	}
	// One zone (the request's): the same hours are fine.
	e.mustDo("POST", "/v1/scheduled-communications", "all", strings.Replace(body, `"channel"`, `"timezone":"America/Boise","channel"`, 1), 201)
}
