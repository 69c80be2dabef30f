package httpapi_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzCreate throws arbitrary bodies at POST /v1/scheduled-communications.
// Whatever the input, the API answers with the JSON envelope and never a
// 5xx; a 201 means the row is really there; a refusal stores nothing. The
// seed corpus runs in every `make test`; `make fuzz` explores further.
func FuzzCreate(f *testing.F) {
	when := testNow.Add(48 * time.Hour).Format(time.RFC3339)
	for _, seed := range []string{
		emailBody(when), smsBody(when), voiceBody(when),
		``, `{}`, `[]`, `null`, `"x"`, `{"channel":"email"}`, `{"channel":"sms","payload":[]}`,
		`{"channel":"voice_call","scheduled_for":"` + when + `","payload":{"voice_agent_outbound_config_id":"` + agentID + `","to_number":"+14155550123","follow_ups":{"max_attempts":1e308,"follow_up_delays":[1e-320]}}}`,
		`{"channel":"email","scheduled_for":"9999-12-31T23:59:59Z","payload":{"to_email":"a@b.c","subject":"\u0000","html_body":"\ud800"}}`,
		`{"channel":"email","scheduled_for":"` + when + `","cancel_policy":{"max_delay_minutes":-1e400,"cancel_on":[null]},"payload":{}}`,
		`{"channel":"sms","scheduled_for":"` + when + `","payload":{"phone_number_id":"` + phoneID + `","to_number":"+` + strings.Repeat("9", 40) + `","message_body":{}}}`,
		`{"a":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
	} {
		f.Add(seed)
	}
	e := setup(f)
	e.validate = false // the response shape is checked by the API tests; here: no 5xx, no phantom rows
	f.Fuzz(func(t *testing.T, body string) {
		e.t = t
		before := countRows(t, e)
		r := e.do("POST", "/v1/scheduled-communications", "all", body)
		if r.Status >= 500 {
			t.Fatalf("status %d for %q: %s", r.Status, body, r.Body)
		}
		after := countRows(t, e)
		switch {
		case r.Status == 201:
			id, _ := r.row(t)["id"].(string)
			if after != before+1 || e.do("GET", "/v1/scheduled-communications/"+id, "all", "").Status != 200 {
				t.Fatalf("a 201 stored %d rows (id %q)", after-before, id)
			}
		case after != before:
			t.Fatalf("a %d stored a row: %s", r.Status, r.Body)
		case r.Error.Code == "":
			t.Fatalf("a %d without an error code: %s", r.Status, r.Body)
		}
	})
}

func countRows(t *testing.T, e *env) int {
	t.Helper()
	n, cursor := 0, ""
	for {
		req := httptest.NewRequest("GET", "/v1/scheduled-communications?limit=100"+cursor, nil)
		req.Header.Set("Authorization", "Bearer "+e.keys["all"])
		rec := httptest.NewRecorder()
		e.api.ServeHTTP(rec, req)
		var env struct {
			Data []json.RawMessage `json:"data"`
			Meta struct {
				NextCursor *string `json:"next_cursor"`
			} `json:"meta"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
			t.Fatalf("list: %v", err)
		}
		n += len(env.Data)
		if env.Meta.NextCursor == nil {
			return n
		}
		cursor = "&cursor=" + *env.Meta.NextCursor
	}
}
