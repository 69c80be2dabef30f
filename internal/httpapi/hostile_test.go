package httpapi_test

import (
	"strings"
	"testing"
	"time"
)

// goInternals are fragments of Go's own error texts and of package names
// that no response may carry.
var goInternals = []string{"Go struct", "Go value", "strconv", "json:", "unmarshal", "bizhours", "comms.", "contract.", "scheduling.", "store.", "ParseFloat", "parsing time"}

func checkNoGoInternals(t *testing.T, what string, r *resp) {
	t.Helper()
	for _, bad := range goInternals {
		if strings.Contains(string(r.Body), bad) {
			t.Errorf("%s: response carries %q: %s", what, bad, truncate(r.Body))
		}
	}
}

// TestHostileBodies: one case per class of issue 10, through the API;
// every response is validated against openapi.json by e.do.
func TestHostileBodies(t *testing.T) {
	t.Parallel()
	e := setup(t)
	when := at(time.Hour)
	email := emailBody(when)
	sms := smsBody(when)
	cases := []struct {
		name, method, path, body string
		status                   int
		code, field, message     string // field: the one offending field; message: a fragment of error.message
	}{
		// C0 controls and DEL in text fields.
		{"NUL in subject", "POST", "/v1/scheduled-communications", strings.Replace(email, `Following up`, `Following\u0000up`, 1), 422, "validation_failed", "payload.subject", ""},
		{"LF in subject", "POST", "/v1/scheduled-communications", strings.Replace(email, `Following up`, `Following\nup`, 1), 422, "validation_failed", "payload.subject", ""},
		{"ESC in to_name", "POST", "/v1/scheduled-communications", strings.Replace(email, `Sarah Lee`, `Sarah\u001bLee`, 1), 422, "validation_failed", "payload.to_name", ""},
		{"DEL in html_body", "POST", "/v1/scheduled-communications", strings.Replace(email, `<p>Hi`, `<p>\u007fHi`, 1), 422, "validation_failed", "payload.html_body", ""},
		{"BEL in message_body", "POST", "/v1/scheduled-communications", strings.Replace(sms, `Hi Sarah`, `Hi\u0007Sarah`, 1), 422, "validation_failed", "payload.message_body", ""},
		{"NUL in related_entity_type", "POST", "/v1/scheduled-communications", strings.Replace(email, `"channel"`, `"related_entity_type":"in\u0000voice","channel"`, 1), 422, "validation_failed", "related_entity_type", ""},
		{"NUL in a phone label", "PUT", "/v1/phone-numbers/" + phoneID, `{"e164":"+61412345678","capabilities":["sms"],"label":"Syd\u0000ney"}`, 422, "validation_failed", "label", ""},
		{"TAB in an agent label", "PUT", "/v1/voice-agents/" + agentID, `{"provider":"retell","agent_id":"agent_123","phone_number_id":"` + phoneID + `","label":"S\tDR"}`, 422, "validation_failed", "label", ""},
		{"CR in default_from_name", "PUT", "/v1/settings", `{"timezone":"UTC","default_from_name":"Team\r"}`, 422, "validation_failed", "default_from_name", ""},
		{"NUL in a cancel-by-event event", "POST", "/v1/scheduled-communications/cancel-by-event", `{"event":"contact_replied\u0000","contact_id":"` + contactID + `"}`, 422, "validation_failed", "event", ""},
		// Invalid UTF-8, and escapes that are not characters.
		{"invalid UTF-8 in subject", "POST", "/v1/scheduled-communications", strings.Replace(email, `Following up`, "Following \xff up", 1), 400, "invalid_json", "", "not valid UTF-8"},
		{"Latin-1 body", "PUT", "/v1/settings", "{\"timezone\":\"UTC\",\"default_from_name\":\"Caf\xe9\"}", 400, "invalid_json", "", "not valid UTF-8"},
		{"lone surrogate", "POST", "/v1/scheduled-communications", strings.Replace(email, `Following up`, `Following \udead up`, 1), 400, "invalid_json", "", "surrogate"},
		// Duplicate keys at any depth.
		{"duplicate channel", "POST", "/v1/scheduled-communications", strings.Replace(sms, `"channel":"sms"`, `"channel":"sms","channel":"email"`, 1), 400, "invalid_json", "", "the key channel appears more than once"},
		{"duplicate key in payload", "POST", "/v1/scheduled-communications", strings.Replace(email, `"to_email":"sarah@example.com"`, `"to_email":"sarah@example.com","to_email":"eve@example.com"`, 1), 400, "invalid_json", "", "the key payload.to_email appears"},
		{"duplicate key in cancel_policy", "POST", "/v1/scheduled-communications", strings.Replace(email, `"max_delay_minutes":120`, `"max_delay_minutes":120,"max_delay_minutes":1`, 1), 400, "invalid_json", "", "cancel_policy.max_delay_minutes"},
		{"duplicate key in settings", "PUT", "/v1/settings", `{"timezone":"UTC","business_hours":{"mon":[],"mon":[["09:00","17:00"]]}}`, 400, "invalid_json", "", "business_hours.mon"},
		{"duplicate key in a patch", "PATCH", "/v1/scheduled-communications/" + contactID, `{"scheduled_for":"` + when + `","scheduled_for":"` + when + `"}`, 400, "invalid_json", "", "scheduled_for"},
		// Numbers Go would explain in its own terms.
		{"1e400 in voice metadata", "POST", "/v1/scheduled-communications", strings.Replace(voiceBody(when), `"crm_task":"t-42"`, `"crm_task":1e400`, 1), 400, "invalid_json", "", "the number 1e400 at payload.metadata.crm_task is beyond"},
		{"1e400 as max_attempts", "POST", "/v1/scheduled-communications", strings.Replace(voiceBody(when), `"max_attempts":3`, `"max_attempts":1e400`, 1), 400, "invalid_json", "", "payload.follow_ups.max_attempts"},
		{"huge integer as max_attempts", "POST", "/v1/scheduled-communications", strings.Replace(voiceBody(when), `"max_attempts":3`, `"max_attempts":`+strings.Repeat("9", 400), 1), 400, "invalid_json", "", "payload.follow_ups.max_attempts"},
		// Settings.
		{"duplicate holiday", "PUT", "/v1/settings", `{"timezone":"UTC","holidays":["2026-12-25","2026-12-26","2026-12-25"]}`, 422, "validation_failed", "holidays[2]", ""},
		{"too many holidays", "PUT", "/v1/settings", `{"timezone":"UTC","holidays":[` + strings.Repeat(`"2026-12-25",`, 20000) + `"2026-12-25"]}`, 422, "validation_failed", "holidays", ""},
		{"overlapping hours", "PUT", "/v1/settings", `{"timezone":"UTC","business_hours":{"mon":[["09:00","12:00"],["11:00","13:00"]]}}`, 422, "validation_failed", "business_hours.mon[1]", ""},
	}
	for _, tc := range cases {
		r := e.do(tc.method, tc.path, "all", tc.body)
		if r.Status != tc.status || r.Error.Code != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.Status, truncate(r.Body), tc.status, tc.code)
			continue
		}
		if tc.field != "" && (len(r.Error.Details) != 1 || r.Error.Details[0].Field != tc.field) {
			t.Errorf("%s: details %v, want one for %s", tc.name, r.Error.Details, tc.field)
		}
		if !strings.Contains(r.Error.Message, tc.message) {
			t.Errorf("%s: message %q, want it to contain %q", tc.name, r.Error.Message, tc.message)
		}
		checkNoGoInternals(t, tc.name, r)
	}
	// Nothing of the above was stored: the row of setup's phone number and
	// settings are as before, no row was created.
	assertCount(t, e, "all", "", 0)
	if r := e.mustDo("GET", "/v1/phone-numbers/"+phoneID, "all", "", 200); !strings.Contains(string(r.Data), `"label":"Sydney sales"`) {
		t.Errorf("a refused PUT changed the phone number: %s", r.Data)
	}
	// What stays allowed: line breaks and tabs in the multi-line fields.
	e.mustDo("POST", "/v1/scheduled-communications", "all", strings.Replace(sms, `Hi Sarah,`, `Hi Sarah,\r\n\tsee you`, 1), 201)
	e.mustDo("POST", "/v1/scheduled-communications", "all", strings.Replace(email, `<p>Hi`, `<p>\n\tHi`, 1), 201)
}

// TestUncleanPaths: paths ServeMux would redirect (in text/html) get the
// JSON 404 envelope, as does every other unknown path.
func TestUncleanPaths(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.validate = false // none of these is a path of the document
	for _, p := range []string{
		"/v1//scheduled-communications",
		"//v1/scheduled-communications",
		"/v1/scheduled-communications//",
		"/v1/./settings",
		"/v1/settings/.",
		"/v1/scheduled-communications/../settings",
		"/v1/settings/..",
		"/v1/%2e%2e/v1/settings",
		"/v1/phone-numbers/" + phoneID + "/",
		"//healthz",
		"/healthz/",
	} {
		for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
			body := ""
			if m == "POST" || m == "PUT" {
				body = smsBody(at(time.Hour))
			}
			r := e.do(m, p, "all", body)
			if r.Status != 404 || r.Error.Code != "not_found" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || r.Header.Get("Location") != "" {
				t.Errorf("%s %s: %d %q %s", m, p, r.Status, r.Header.Get("Content-Type"), truncate(r.Body))
			}
		}
	}
	assertCount(t, e, "all", "", 0)
}

// TestHeaderTooLarge: header fields beyond httpapi.MaxHeaderBytes are a 431
// in the envelope (net/http's own, larger limit answers in plain text
// before any handler; see MaxHeaderBytes).
func TestHeaderTooLarge(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.validate = false // 431 is not an operation's response
	r := e.do("GET", "/v1/settings", "all", "", header{"X-Padding", strings.Repeat("a", 40<<10)})
	if r.Status != 431 || r.Error.Code != "header_too_large" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Errorf("big header: %d %s", r.Status, truncate(r.Body))
	}
	// Just under the bound is served.
	e.mustDo("GET", "/v1/settings", "all", "", 200, header{"X-Padding", strings.Repeat("a", 30<<10)})
}
