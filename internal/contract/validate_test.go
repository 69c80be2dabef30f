package contract_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/contract"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

const (
	uuidA = "3f2b8c1e-5d4a-4e7b-9c61-2a8f0d9e4b17"
	uuidB = "9a7c2e10-1b3d-4f5e-8a6b-7c8d9e0f1a2b"
)

// body builds a create body from a base per channel, with overrides applied
// as a JSON Merge Patch (null removes a member).
func body(t testing.TB, channel string, patch string) []byte {
	t.Helper()
	base := map[string]string{
		"email": `{"channel":"email","scheduled_for":"2026-11-28T09:00:00+11:00","payload":{"to_email":"sarah@example.com","subject":"Follow-up","html_body":"<p>Hi Sarah</p>"}}`,
		"sms":   `{"channel":"sms","scheduled_for":"2026-11-28T09:00:00Z","payload":{"phone_number_id":"` + uuidA + `","to_number":"+61412345678","message_body":"Hi"}}`,
		"voice": `{"channel":"voice_call","scheduled_for":"2026-11-28T09:00:00Z","payload":{"voice_agent_outbound_config_id":"` + uuidA + `","to_number":"+14155550123","follow_ups":{"max_attempts":3,"follow_up_delays":[2,24],"voice_agent_outbound_config_id":"` + uuidA + `","to_number":"+14155550123"}}}`,
	}[channel]
	doc, err := contract.DecodeJSON([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if patch != "" {
		p, err := contract.DecodeJSON([]byte(patch))
		if err != nil {
			t.Fatalf("patch: %v", err)
		}
		doc = contract.MergePatch(doc, p)
	}
	b, _ := json.Marshal(doc)
	return b
}

func validate(t testing.TB, b []byte) (contract.CreateRequest, []string) {
	t.Helper()
	doc, err := contract.DecodeJSON(b)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	req, err := contract.ValidateCreate(doc, now, contract.ValidateOptions{})
	if err == nil {
		return req, nil
	}
	var ve *comms.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError, got %T %v", err, err)
	}
	var fields []string
	for _, f := range ve.Fields {
		if f.Message == "" {
			t.Errorf("field %s has no message", f.Field)
		}
		fields = append(fields, f.Field)
	}
	return req, fields
}

func TestValidateCreate(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 1601)
	cases := []struct {
		name    string
		channel string
		patch   string
		want    []string // offending fields, in any order; nil = valid
	}{
		// accepted
		{"email minimal", "email", ``, nil},
		{"sms minimal", "sms", ``, nil},
		{"voice with follow-ups", "voice", ``, nil},
		{"email all optional", "email", `{"timezone":"Australia/Sydney","respect_business_hours":true,"contact_id":"` + uuidA + `","customer_id":"` + uuidB + `","deal_id":"` + uuidA + `","related_entity_id":"` + uuidB + `","related_entity_type":"deal","cancel_policy":{"max_delay_minutes":30,"cancel_on":["contact_replied"],"custom":{"x":1}},"payload":{"from_email":"a@example.com","sender_user_id":"` + uuidB + `","mode":"send","cc":["b@example.com","c@example.org"],"to_name":"Sarah Lee","contact_id":"` + uuidA + `"}}`, nil},
		{"null optional is absent", "email", `{"payload":{"to_name":null}}`, nil},
		{"decimal follow-up delays", "voice", `{"payload":{"follow_ups":{"follow_up_delays":[0.0005,719.5]}}}`, nil},
		{"single attempt cadence", "voice", `{"payload":{"follow_ups":{"max_attempts":1,"follow_up_delays":[]}}}`, nil},
		{"sms 1600 chars", "sms", `{"payload":{"message_body":"` + strings.Repeat("é", 1600) + `"}}`, nil},
		{"scheduled 59s ago", "email", `{"scheduled_for":"2026-11-27T11:59:01Z"}`, nil},
		{"max_attempts as 3.0", "voice", `{"payload":{"follow_ups":{"max_attempts":3.0}}}`, nil},
		{"voice dynamic variables", "voice", `{"payload":{"dynamic_variables":{"first_name":"Sarah"},"metadata":{"n":1,"nested":{"a":[1]}}}}`, nil},

		// top level
		{"unknown top field", "email", `{"colour":"blue"}`, []string{"colour"}},
		{"missing channel", "email", `{"channel":null}`, []string{"channel"}},
		{"bad channel", "email", `{"channel":"fax"}`, []string{"channel"}},
		{"channel wrong type", "email", `{"channel":7}`, []string{"channel"}},
		{"missing scheduled_for", "email", `{"scheduled_for":null}`, []string{"scheduled_for"}},
		{"scheduled_for no offset", "email", `{"scheduled_for":"2026-11-28T09:00:00"}`, []string{"scheduled_for"}},
		{"scheduled_for date only", "email", `{"scheduled_for":"2026-11-28"}`, []string{"scheduled_for"}},
		{"scheduled_for number", "email", `{"scheduled_for":1764320400}`, []string{"scheduled_for"}},
		{"scheduled_for 61s ago", "email", `{"scheduled_for":"2026-11-27T11:58:59Z"}`, []string{"scheduled_for"}},
		{"scheduled_for 366 days ahead", "email", `{"scheduled_for":"2027-11-28T12:00:00Z"}`, []string{"scheduled_for"}},
		{"missing payload", "email", `{"payload":null}`, []string{"payload"}},
		{"payload not object", "email", `{"payload":"hi"}`, []string{"payload"}},
		{"timezone Local", "email", `{"timezone":"Local"}`, []string{"timezone"}},
		{"timezone empty", "email", `{"timezone":""}`, []string{"timezone"}},
		{"timezone unknown", "email", `{"timezone":"Mars/Olympus"}`, []string{"timezone"}},
		{"timezone path", "email", `{"timezone":"../../etc/passwd"}`, []string{"timezone"}},
		{"respect_business_hours string", "email", `{"respect_business_hours":"yes"}`, []string{"respect_business_hours"}},
		{"contact_id not uuid", "email", `{"contact_id":"abc123"}`, []string{"contact_id"}},
		{"customer_id braces uuid", "email", `{"customer_id":"{` + uuidA + `}"}`, []string{"customer_id"}},
		{"deal_id urn uuid", "email", `{"deal_id":"urn:uuid:` + uuidA + `"}`, []string{"deal_id"}},
		{"related_entity_id number", "email", `{"related_entity_id":12}`, []string{"related_entity_id"}},
		{"related_entity_type too long", "email", `{"related_entity_type":"` + strings.Repeat("a", 65) + `"}`, []string{"related_entity_type"}},
		{"cancel_policy not object", "email", `{"cancel_policy":[1]}`, []string{"cancel_policy"}},
		{"cancel_policy too big", "email", `{"cancel_policy":{"note":"` + strings.Repeat("a", 4100) + `"}}`, []string{"cancel_policy"}},
		{"max_delay_minutes zero", "email", `{"cancel_policy":{"max_delay_minutes":0}}`, []string{"cancel_policy.max_delay_minutes"}},
		{"max_delay_minutes fraction", "email", `{"cancel_policy":{"max_delay_minutes":1.5}}`, []string{"cancel_policy.max_delay_minutes"}},
		{"cancel_on not list", "email", `{"cancel_policy":{"cancel_on":"replied"}}`, []string{"cancel_policy.cancel_on"}},
		{"cancel_on empty", "email", `{"cancel_policy":{"cancel_on":[]}}`, []string{"cancel_policy.cancel_on"}},
		{"cancel_on bad name and dup", "email", `{"cancel_policy":{"cancel_on":["Replied!","ok","ok"]}}`, []string{"cancel_policy.cancel_on[0]", "cancel_policy.cancel_on[2]"}},

		// email
		{"email missing required", "email", `{"payload":{"to_email":null,"subject":null,"html_body":null}}`, []string{"payload.to_email", "payload.subject", "payload.html_body"}},
		{"email bad address", "email", `{"payload":{"to_email":"sarah"}}`, []string{"payload.to_email"}},
		{"email display name", "email", `{"payload":{"to_email":"Sarah <sarah@example.com>"}}`, []string{"payload.to_email"}},
		{"email no dot domain", "email", `{"payload":{"to_email":"sarah@localhost"}}`, []string{"payload.to_email"}},
		{"email subject newline", "email", `{"payload":{"subject":"Hi\r\nBcc: x@example.com"}}`, []string{"payload.subject"}},
		{"email empty subject", "email", `{"payload":{"subject":""}}`, []string{"payload.subject"}},
		{"email html number", "email", `{"payload":{"html_body":5}}`, []string{"payload.html_body"}},
		{"email html too large", "email", `{"payload":{"html_body":"` + strings.Repeat("é", 128<<10+1) + `"}}`, []string{"payload.html_body"}},
		{"email from bad", "email", `{"payload":{"from_email":"nope"}}`, []string{"payload.from_email"}},
		{"email sender_user_id bad", "email", `{"payload":{"sender_user_id":"u1"}}`, []string{"payload.sender_user_id"}},
		{"email cc bad entries", "email", `{"payload":{"cc":["ok@example.com","bad",3,"ok@example.com"]}}`, []string{"payload.cc[1]", "payload.cc[2]", "payload.cc[3]"}},
		{"email cc not array", "email", `{"payload":{"cc":"a@example.com"}}`, []string{"payload.cc"}},
		{"email unknown payload field", "email", `{"payload":{"bcc":["a@example.com"]}}`, []string{"payload.bcc"}},
		{"email to_name newline", "email", `{"payload":{"to_name":"a\nb"}}`, []string{"payload.to_name"}},

		// sms
		{"sms missing required", "sms", `{"payload":{"phone_number_id":null,"to_number":null,"message_body":null}}`, []string{"payload.phone_number_id", "payload.to_number", "payload.message_body"}},
		{"sms local number", "sms", `{"payload":{"to_number":"0412345678"}}`, []string{"payload.to_number"}},
		{"sms spaces", "sms", `{"payload":{"to_number":"+61 412 345 678"}}`, []string{"payload.to_number"}},
		{"sms invalid number", "sms", `{"payload":{"to_number":"+6100"}}`, []string{"payload.to_number"}},
		{"sms unassigned country code", "sms", `{"payload":{"to_number":"+99912345678"}}`, []string{"payload.to_number"}},
		{"sms too long", "sms", `{"payload":{"message_body":"` + long + `"}}`, []string{"payload.message_body"}},
		{"sms empty body", "sms", `{"payload":{"message_body":""}}`, []string{"payload.message_body"}},
		{"sms phone id bad", "sms", `{"payload":{"phone_number_id":"pn_1"}}`, []string{"payload.phone_number_id"}},
		{"sms email fields", "sms", `{"payload":{"subject":"x"}}`, []string{"payload.subject"}},

		// voice
		{"voice missing required", "voice", `{"payload":{"voice_agent_outbound_config_id":null,"to_number":null}}`, []string{"payload.voice_agent_outbound_config_id", "payload.to_number"}},
		{"voice dynamic var not string", "voice", `{"payload":{"dynamic_variables":{"n":1}}}`, []string{"payload.dynamic_variables.n"}},
		{"voice metadata array", "voice", `{"payload":{"metadata":[1]}}`, []string{"payload.metadata"}},
		{"follow_ups max 0", "voice", `{"payload":{"follow_ups":{"max_attempts":0}}}`, []string{"payload.follow_ups.max_attempts"}},
		{"follow_ups max 11", "voice", `{"payload":{"follow_ups":{"max_attempts":11}}}`, []string{"payload.follow_ups.max_attempts"}},
		{"follow_ups delays length", "voice", `{"payload":{"follow_ups":{"follow_up_delays":[2]}}}`, []string{"payload.follow_ups.follow_up_delays"}},
		{"follow_ups delay zero and over", "voice", `{"payload":{"follow_ups":{"follow_up_delays":[0,721]}}}`, []string{"payload.follow_ups.follow_up_delays[0]", "payload.follow_ups.follow_up_delays[1]"}},
		{"follow_ups delay string", "voice", `{"payload":{"follow_ups":{"follow_up_delays":[2,"24"]}}}`, []string{"payload.follow_ups.follow_up_delays[1]"}},
		{"follow_ups missing", "voice", `{"payload":{"follow_ups":{"max_attempts":null,"follow_up_delays":null,"voice_agent_outbound_config_id":null,"to_number":null}}}`,
			[]string{"payload.follow_ups.max_attempts", "payload.follow_ups.follow_up_delays", "payload.follow_ups.voice_agent_outbound_config_id", "payload.follow_ups.to_number"}},
		{"follow_ups optional bad", "voice", `{"payload":{"follow_ups":{"respect_business_hours":1,"dynamic_variables":[],"contact_id":"x","customer_id":"y","deal_id":"z","extra":true}}}`,
			[]string{"payload.follow_ups.respect_business_hours", "payload.follow_ups.dynamic_variables", "payload.follow_ups.contact_id", "payload.follow_ups.customer_id", "payload.follow_ups.deal_id", "payload.follow_ups.extra"}},

		// everything at once
		{"every field reported", "email", `{"timezone":"Nowhere","contact_id":"x","payload":{"to_email":"bad","subject":3},"extra":1}`,
			[]string{"timezone", "contact_id", "payload.to_email", "payload.subject", "extra"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, got := validate(t, body(t, tc.channel, tc.patch))
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("offending fields\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestValidateCreateResult(t *testing.T) {
	t.Parallel()
	req, errs := validate(t, body(t, "voice", `{"contact_id":"`+strings.ToUpper(uuidB)+`","payload":{"follow_ups":{"max_attempts":3,"follow_up_delays":[0.5,24]}}}`))
	if errs != nil {
		t.Fatal(errs)
	}
	if !req.ScheduledFor.Equal(time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)) || req.ScheduledFor.Location() != time.UTC {
		t.Errorf("scheduled_for = %v, want UTC 09:00", req.ScheduledFor)
	}
	if req.ContactID != uuidB {
		t.Errorf("contact_id not normalized to lowercase: %q", req.ContactID)
	}
	if req.FollowUps == nil || req.FollowUps.MaxAttempts != 3 || !slices.Equal(req.FollowUps.FollowUpDelays, []float64{0.5, 24}) {
		t.Errorf("follow_ups = %+v", req.FollowUps)
	}
	if len(req.Refs) != 2 || req.Refs[0].Field != "payload.voice_agent_outbound_config_id" || req.Refs[1].Field != "payload.follow_ups.voice_agent_outbound_config_id" {
		t.Errorf("refs = %+v", req.Refs)
	}

	// Offsets are converted to UTC; the email's payload contact id fills the row's.
	req, errs = validate(t, body(t, "email", `{"payload":{"contact_id":"`+uuidA+`"}}`))
	if errs != nil {
		t.Fatal(errs)
	}
	if want := time.Date(2026, 11, 27, 22, 0, 0, 0, time.UTC); !req.ScheduledFor.Equal(want) {
		t.Errorf("scheduled_for = %v, want %v", req.ScheduledFor, want)
	}
	if req.ContactID != uuidA {
		t.Errorf("contact_id from payload = %q", req.ContactID)
	}
}

func TestSkipWindowForUnmovedPatch(t *testing.T) {
	t.Parallel()
	doc, _ := contract.DecodeJSON(body(t, "email", `{"scheduled_for":"2026-11-01T00:00:00Z"}`))
	if _, err := contract.ValidateCreate(doc, now, contract.ValidateOptions{SkipWindow: true}); err != nil {
		t.Fatalf("a held row's old time must pass when not moved: %v", err)
	}
}

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	for _, in := range []string{``, `{`, `{"a":1}{"b":2}`, `{"a":1} x`, `nul`, `{"a":01}`} {
		if _, err := contract.DecodeJSON([]byte(in)); !errors.Is(err, comms.ErrInvalidJSON) {
			t.Errorf("DecodeJSON(%q) = %v, want ErrInvalidJSON", in, err)
		}
	}
	for _, in := range []string{`{}`, ` {"a":1} `, `[]`, `"x"`} {
		if _, err := contract.DecodeJSON([]byte(in)); err != nil {
			t.Errorf("DecodeJSON(%q) = %v", in, err)
		}
	}
}
