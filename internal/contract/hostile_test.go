package contract_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/contract"
)

// goInternals are fragments of Go's own error texts that must never reach
// a client.
var goInternals = []string{"Go struct", "Go value", "strconv", "json:", "bizhours", "comms.", "contract.", "unmarshal", "ParseFloat"}

func noGoInternals(t *testing.T, what, msg string) {
	t.Helper()
	for _, bad := range goInternals {
		if strings.Contains(msg, bad) {
			t.Errorf("%s: message %q contains %q", what, msg, bad)
		}
	}
}

// TestDecodeJSONHostile: bodies that a lenient decoder would read
// differently from another reader are refused as invalid JSON, with a
// message naming where, in JSON's terms.
func TestDecodeJSONHostile(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body, want string // want: a fragment of the message
	}{
		{"invalid UTF-8 in a string", "{\"subject\":\"caf\xe9\"}", "not valid UTF-8 (first bad byte at offset 15)"},
		{"invalid UTF-8 in a key", "{\"a\xff\":1}", "not valid UTF-8"},
		{"truncated UTF-8 sequence", "{\"a\":\"\xe2\x82\"}", "not valid UTF-8"},
		{"overlong encoding", "{\"a\":\"\xc0\xaf\"}", "not valid UTF-8"},
		{"UTF-16 surrogate as UTF-8", "{\"a\":\"\xed\xa0\x80\"}", "not valid UTF-8"},
		{"lone high surrogate escape", `{"a":"\ud800"}`, "surrogate"},
		{"lone low surrogate escape", `{"a":"x\udc00"}`, "surrogate"},
		{"high surrogate then non-low", `{"a":"\ud800\u0041"}`, "surrogate"},
		{"duplicate top-level key", `{"channel":"sms","channel":"email"}`, "the key channel appears more than once"},
		{"duplicate key in payload", `{"payload":{"to_email":"a@example.com","to_email":"b@example.com"}}`, "the key payload.to_email appears"},
		{"duplicate key deep in an array", `{"a":[{"x":1},{"b":{"c":1,"c":2}}]}`, "the key a[1].b.c appears"},
		{"duplicate key spelled with an escape", `{"channel":"sms","\u0063hannel":"email"}`, "the key channel appears"},
		{"duplicate odd key", `{"a b":1,"a b":2}`, `the key ["a b"] appears`},
		{"number beyond float64", `{"payload":{"metadata":{"n":1e400}}}`, "the number 1e400 at payload.metadata.n is beyond the range"},
		{"negative number beyond float64", `[1,-2e308]`, "at [1] is beyond"},
		{"too deep", strings.Repeat("[", 10001) + strings.Repeat("]", 10001), "nests too deeply"},
		{"truncated", `{"a":`, "ends before the JSON value does"},
	}
	for _, tc := range cases {
		_, err := contract.DecodeJSON([]byte(tc.body))
		if !errors.Is(err, comms.ErrInvalidJSON) {
			t.Errorf("%s: err = %v, want ErrInvalidJSON", tc.name, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %q, want it to contain %q", tc.name, err, tc.want)
		}
		noGoInternals(t, tc.name, strings.TrimPrefix(err.Error(), comms.ErrInvalidJSON.Error()+": "))
	}
	// What stays valid decodes exactly as before: same keys at different
	// depths, proper surrogate pairs, escaped backslashes before a u, big
	// but finite numbers kept exact.
	for _, in := range []string{
		`{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}`,
		`{"e":"\ud83d\ude00","f":"\\ud800","g":"\\\ud83d\ude00"}`,
		`{"n":1.7976931348623157e308,"m":123456789012345678901234567890,"s":1e-400}`,
		"{\"x\":\"caf\u00e9 \u2028\"}",
	} {
		got, err := contract.DecodeJSON([]byte(in))
		if err != nil {
			t.Errorf("DecodeJSON(%s) = %v", in, err)
			continue
		}
		if m, _ := got.(map[string]any); in[2] == 'n' && m["m"] != any(json.Number("123456789012345678901234567890")) {
			t.Errorf("number not kept exact: %#v", m["m"])
		}
	}
}

// TestTextRule: every text field refuses C0 controls and DEL with a 422
// naming it; multi-line fields accept TAB, LF and CR and nothing else.
func TestTextRule(t *testing.T) {
	t.Parallel()
	type field struct {
		channel, path string
		multiline     bool
		patch         func(v string) string
	}
	str := func(v string) string { return `"` + v + `"` }
	fields := []field{
		{"email", "payload.subject", false, func(v string) string { return `{"payload":{"subject":` + str(v) + `}}` }},
		{"email", "payload.to_name", false, func(v string) string { return `{"payload":{"to_name":` + str(v) + `}}` }},
		{"email", "payload.mode", false, func(v string) string { return `{"payload":{"mode":` + str(v) + `}}` }},
		{"email", "payload.html_body", true, func(v string) string { return `{"payload":{"html_body":` + str(v) + `}}` }},
		{"sms", "payload.message_body", true, func(v string) string { return `{"payload":{"message_body":` + str(v) + `}}` }},
		{"email", "related_entity_type", false, func(v string) string { return `{"related_entity_type":` + str(v) + `}` }},
		{"voice", "payload.dynamic_variables.first_name", true, func(v string) string {
			return `{"payload":{"dynamic_variables":{"first_name":` + str(v) + `}}}`
		}},
		{"voice", "payload.follow_ups.dynamic_variables.first_name", true, func(v string) string {
			return `{"payload":{"follow_ups":{"dynamic_variables":{"first_name":` + str(v) + `}}}}`
		}},
	}
	chars := []struct {
		esc       string
		multiline bool // allowed in a multi-line field
	}{
		{`\u0000`, false}, {`\u0001`, false}, {`\u0007`, false}, {`\b`, false}, {`\t`, true}, {`\n`, true},
		{`\u000b`, false}, {`\f`, false}, {`\r`, true}, {`\u001b`, false}, {`\u001f`, false}, {`\u007f`, false},
	}
	for _, f := range fields {
		for _, ch := range chars {
			_, got := validate(t, body(t, f.channel, f.patch("a"+ch.esc+"b")))
			wantOK := f.multiline && ch.multiline
			if wantOK && len(got) != 0 {
				t.Errorf("%s with %s: rejected %v, want accepted", f.path, ch.esc, got)
			}
			if !wantOK && (len(got) != 1 || got[0] != f.path) {
				t.Errorf("%s with %s: offending %v, want [%s]", f.path, ch.esc, got, f.path)
			}
		}
		// Printable text, U+0080 and beyond, stays accepted.
		if _, got := validate(t, body(t, f.channel, f.patch(`Zoë — 😀 \u0085 \u00a0`))); len(got) != 0 {
			t.Errorf("%s: printable text rejected: %v", f.path, got)
		}
	}
	// A dynamic variable's key is single-line text too.
	if _, got := validate(t, body(t, "voice", `{"payload":{"dynamic_variables":{"a\u0000b":"x"}}}`)); len(got) != 1 || got[0] != `payload.dynamic_variables["a\x00b"]` {
		t.Errorf("control character in a key: %v", got)
	}
	// The message names the character and where it is.
	doc, _ := contract.DecodeJSON(body(t, "email", `{"payload":{"subject":"ab\u0000"}}`))
	_, err := contract.ValidateCreate(doc, now, contract.ValidateOptions{})
	var ve *comms.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Message != "must not contain control characters (U+0000 at character 3)" {
		t.Errorf("message: %v", err)
	}
}

// TestTextRuleOtherBodies: the same rule in the settings, phone-number,
// voice-agent and cancel-by-event bodies.
func TestTextRuleOtherBodies(t *testing.T) {
	t.Parallel()
	const id = "3f2b8c1e-5d4a-4e7b-9c61-2a8f0d9e4b17"
	fieldsOf := func(err error) []string {
		var ve *comms.ValidationError
		if !errors.As(err, &ve) {
			return []string{"not a ValidationError: " + errString(err)}
		}
		var out []string
		for _, f := range ve.Fields {
			noGoInternals(t, f.Field, f.Message)
			out = append(out, f.Field)
		}
		return out
	}
	for _, ch := range []string{`\u0000`, `\n`, `\t`, `\u007f`, `\u001b`} {
		_, err := contract.ParseSettings([]byte(`{"timezone":"UTC","default_from_name":"A` + ch + `"}`))
		if got := fieldsOf(err); !reflect.DeepEqual(got, []string{"default_from_name"}) {
			t.Errorf("settings %s: %v", ch, got)
		}
		_, err = contract.ParsePhoneNumber([]byte(`{"e164":"+61412345678","capabilities":["sms"],"label":"A` + ch + `"}`))
		if got := fieldsOf(err); !reflect.DeepEqual(got, []string{"label"}) {
			t.Errorf("phone number %s: %v", ch, got)
		}
		_, problems, err := contract.ParseVoiceAgent([]byte(`{"provider":"retell","agent_id":"x` + ch + `","phone_number_id":"` + id + `","label":"A` + ch + `"}`))
		if got := fieldsOf(errors.Join(err, problems.Err())); !reflect.DeepEqual(got, []string{"agent_id", "label"}) {
			t.Errorf("voice agent %s: %v", ch, got)
		}
		_, err = contract.ParseCancelByEvent([]byte(`{"event":"contact_replied` + ch + `","contact_id":"` + id + `"}`))
		if got := fieldsOf(err); !reflect.DeepEqual(got, []string{"event"}) {
			t.Errorf("cancel-by-event %s: %v", ch, got)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// TestSettingsProblems: a settings document's problems are all reported at
// once, by field path, in wall-clock terms; holidays are distinct and at
// most comms.MaxHolidays.
func TestSettingsProblems(t *testing.T) {
	t.Parallel()
	holidays := func(n int) string {
		days := make([]string, n)
		for i := range days {
			days[i] = `"` + time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i).Format(time.DateOnly) + `"`
		}
		return strings.Join(days, ",")
	}
	cases := []struct {
		name, body string
		want       map[string]string // field → message fragment
	}{
		{"cap", `{"timezone":"UTC","holidays":[` + holidays(comms.MaxHolidays+1) + `]}`,
			map[string]string{"holidays": "must list at most 400 dates, got 401"}},
		{"tens of thousands", `{"timezone":"UTC","holidays":[` + strings.Repeat(`"2026-12-25",`, 30000) + `"2026-12-25"]}`,
			map[string]string{"holidays": "must list at most 400 dates, got 30001"}},
		{"duplicates", `{"timezone":"UTC","holidays":["2026-12-25","2026-01-26","2026-12-25","2026-01-26","2026-12-25"]}`,
			map[string]string{"holidays[2]": "repeats 2026-12-25 (holidays[0])", "holidays[3]": "repeats 2026-01-26 (holidays[1])", "holidays[4]": "repeats 2026-12-25 (holidays[0])"}},
		{"everything at once", `{"timezone":"Mars/Olympus","business_hours":{"mon":[["09:00","12:00"],["11:00","13:00"],["12:30","12:45"]],
			"tue":[["17:00","09:00"],["24:00","24:00"],["08:00","25:00"],"9-5",["07:00", 8]],"caturday":[]},
			"holidays":["2026-12-25",7,"2026-02-30","2026-12-25"],"default_from_name":"a\u0000"}`,
			map[string]string{
				"timezone":                 "IANA time zone",
				"business_hours.mon[1]":    "09:00–12:00 overlaps 11:00–13:00 (business_hours.mon[0] and [1])",
				"business_hours.mon[2]":    "11:00–13:00 overlaps 12:30–12:45 (business_hours.mon[1] and [2])",
				"business_hours.tue[0]":    "17:00–09:00 must start before it ends",
				"business_hours.tue[1][0]": "24:00 can only end an interval",
				"business_hours.tue[2][1]": `must be a wall-clock time HH:MM from 00:01 to 24:00, got "25:00"`,
				"business_hours.tue[3]":    "must be a [start, end] pair",
				"business_hours.tue[4]":    `must hold two "HH:MM" strings`,
				"business_hours.caturday":  "is not a weekday",
				"holidays[1]":              "must be a date YYYY-MM-DD, got a number",
				"holidays[2]":              `must be a date YYYY-MM-DD, got "2026-02-30"`,
				"holidays[3]":              "repeats 2026-12-25 (holidays[0])",
				"default_from_name":        "control characters",
			}},
		{"quiet hours", `{"timezone":"UTC","timezone_from_phone_number":"yes","quiet_hours":{"voice_call":{"start":"8:00","end":"21:00"},
			"sms":{"start":"09:00","end":"09:00"},"email":{"start":"07:00","end":"25:00","tz":"UTC"},"fax":{"start":"08:00","end":"21:00"}}}`,
			map[string]string{
				"timezone_from_phone_number":   "must be a boolean",
				"quiet_hours.voice_call.start": `must be a wall-clock time HH:MM from 00:00 to 23:59, got "8:00"`,
				"quiet_hours.sms":              "09:00–09:00 starts where it ends",
				"quiet_hours.email.tz":         "is not a known field",
				"quiet_hours.fax":              "is not a channel with quiet hours; use voice_call, sms or email",
			}},
		{"quiet hours of the wrong shape", `{"timezone":"UTC","quiet_hours":{"voice_call":{"start":8},"sms":"08:00-21:00"}}`,
			map[string]string{
				"quiet_hours.voice_call.start": `must be a wall-clock time "HH:MM", got a number`,
				"quiet_hours.voice_call.end":   "is required",
				"quiet_hours.sms":              "must be a JSON object",
			}},
		{"quiet hours not an object", `{"timezone":"UTC","quiet_hours":[]}`,
			map[string]string{"quiet_hours": "must be an object keyed by channel"}},
		{"touching intervals are fine; order does not matter", `{"timezone":"UTC","business_hours":{"wed":[["12:00","17:00"],["09:00","12:00"],["00:00","24:00"]]}}`,
			map[string]string{"business_hours.wed[2]": "00:00–24:00 overlaps 09:00–12:00 (business_hours.wed[1] and [2])"}},
	}
	for _, tc := range cases {
		_, err := contract.ParseSettings([]byte(tc.body))
		var ve *comms.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%s: err = %v, want a ValidationError", tc.name, err)
			continue
		}
		got := map[string]string{}
		for _, f := range ve.Fields {
			if _, twice := got[f.Field]; twice {
				t.Errorf("%s: %s reported twice", tc.name, f.Field)
			}
			got[f.Field] = f.Message
			noGoInternals(t, tc.name, f.Message)
			// Wall-clock times, not bizhours' minutes of day or Go weekday names.
			for _, internal := range []string{"540", "660", "720", "780", "Monday", "Tuesday", "Wednesday"} {
				if strings.Contains(f.Message, internal) {
					t.Errorf("%s: %s: message %q contains %q", tc.name, f.Field, f.Message, internal)
				}
			}
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: %d fields %v, want %d", tc.name, len(got), got, len(tc.want))
		}
		for field, frag := range tc.want {
			if !strings.Contains(got[field], frag) {
				t.Errorf("%s: %s = %q, want it to contain %q", tc.name, field, got[field], frag)
			}
		}
	}
	// At the cap, distinct dates are fine.
	if _, err := contract.ParseSettings([]byte(`{"timezone":"UTC","holidays":[` + holidays(comms.MaxHolidays) + `]}`)); err != nil {
		t.Errorf("%d distinct holidays: %v", comms.MaxHolidays, err)
	}
}

// TestStoredSettingsStayUsable: Calendar, which rows fire by, still accepts
// what PUT now refuses but older documents may hold (repeated holidays).
func TestStoredSettingsStayUsable(t *testing.T) {
	t.Parallel()
	s := comms.Settings{Timezone: "UTC", Holidays: []string{"2026-12-25", "2026-12-25"}}
	if _, err := s.Calendar(); err != nil {
		t.Errorf("Calendar: %v", err)
	}
	if err := s.Validate(); err == nil {
		t.Errorf("Validate accepted a repeated holiday")
	}
}

// TestSettingsQuietHours: a good document reads back as sent; null turns a
// channel's window off; both settings are off when absent.
func TestSettingsQuietHours(t *testing.T) {
	t.Parallel()
	s, err := contract.ParseSettings([]byte(`{"timezone":"UTC","timezone_from_phone_number":true,
		"quiet_hours":{"voice_call":{"start":"08:00","end":"21:00"},"sms":{"start":"22:00","end":"06:00"},"email":null}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !s.TimezoneFromPhoneNumber || *s.QuietHours.VoiceCall != (comms.ClockWindow{Start: "08:00", End: "21:00"}) ||
		*s.QuietHours.SMS != (comms.ClockWindow{Start: "22:00", End: "06:00"}) || s.QuietHours.Email != nil {
		t.Fatalf("ParseSettings = %+v", s)
	}
	s, err = contract.ParseSettings([]byte(`{"timezone":"UTC"}`))
	if err != nil || s.TimezoneFromPhoneNumber || s.QuietHours != (comms.QuietHours{}) {
		t.Fatalf("absent: %+v, %v", s, err)
	}
}
