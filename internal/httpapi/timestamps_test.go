package httpapi_test

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestTimestampsFollowRFC3339: every time the API reads — the create body,
// PATCH, the list and feed query strings — follows RFC 3339's grammar
// (internal/rfc3339): what it allows is accepted and answered in canonical
// UTC; what it refuses is a 422 naming the field, never a silent shift.
func TestTimestampsFollowRFC3339(t *testing.T) {
	t.Parallel()
	e := setup(t)
	create := func(when string) *resp {
		return e.do("POST", "/v1/scheduled-communications", "all", strings.Replace(smsBody(at(0)), at(0), when, 1))
	}
	for in, want := range map[string]string{
		"2026-12-03t09:00:00z":           "2026-12-03T09:00:00Z",
		"2026-12-03T09:00:00.5+11:00":    "2026-12-02T22:00:00.5Z",
		"2026-12-04T09:00:00+23:59":      "2026-12-03T09:01:00Z",
		"2026-12-31T23:59:60Z":           "2027-01-01T00:00:00Z",
		"2026-12-03T09:00:00.123456789Z": "2026-12-03T09:00:00.123Z", // kept to the millisecond
	} {
		r := create(in)
		if r.Status != 201 {
			t.Errorf("%s: %d %s", in, r.Status, r.Body)
			continue
		}
		if got := r.row(t)["scheduled_for"]; got != want {
			t.Errorf("%s: scheduled_for %v, want %s", in, got, want)
		}
	}
	for _, in := range []string{
		"2026-12-05T09:00:00+24:00", "2026-12-05T09:00:00-99:00", "2026-12-05T09:00:00+05:60", "2026-12-03T09:00:00,5Z",
		"2026-02-29T09:00:00Z", "2026-12-03T09:00:00", "2026-12-03 09:00:00Z", "2026-12-03T24:00:00Z", "2026-12-03T09:00:61Z",
	} {
		r := create(in)
		if r.Status != 422 || len(r.Error.Details) == 0 || r.Error.Details[0].Field != "scheduled_for" {
			t.Errorf("%s: %d %s, want 422 naming scheduled_for", in, r.Status, r.Body)
		}
	}
	for _, q := range []struct {
		param, value string
		status       int
	}{
		{"scheduled_after", "2026-12-01t00:00:00z", 200},
		{"scheduled_before", "2026-12-05T09:00:00+24:00", 422},
		{"scheduled_after", "2026-13-01T00:00:00Z", 422},
	} {
		r := e.do("GET", "/v1/scheduled-communications?"+q.param+"="+url.QueryEscape(q.value), "read", "")
		if r.Status != q.status || (q.status == 422 && r.Error.Details[0].Field != q.param) {
			t.Errorf("%s=%s: %d %s", q.param, q.value, r.Status, r.Body)
		}
	}
	for value, status := range map[string]int{"2026-12-01t00:00:00z": 200, "2026-12-01T00:00:00-24:00": 422} {
		if r := e.do("GET", "/v1/events?created_after="+url.QueryEscape(value), "read", ""); r.Status != status {
			t.Errorf("created_after=%s: %d %s", value, r.Status, r.Body)
		}
	}
}

// TestAddressesAreWhatSESAccepts: every e-mail address the API takes —
// to_email, cc, from_email, default_from_email — follows one rule
// (internal/mailaddr), the one the SES sender and the dev sink apply.
func TestAddressesAreWhatSESAccepts(t *testing.T) {
	t.Parallel()
	e := setup(t)
	email := func(field, addr string) string {
		body := `{"channel":"email","scheduled_for":"` + at(time.Hour) + `","payload":{"to_email":"sarah@example.com","subject":"Hi","html_body":"<p>Hi</p>"}}`
		switch field {
		case "to_email":
			return strings.Replace(body, `"sarah@example.com"`, strconv.Quote(addr), 1)
		case "cc":
			return strings.Replace(body, `"subject"`, `"cc":[`+strconv.Quote(addr)+`],"subject"`, 1)
		}
		return strings.Replace(body, `"subject"`, `"from_email":`+strconv.Quote(addr)+`,"subject"`, 1)
	}
	e.mustDo("PUT", "/v1/settings", "all", `{"timezone":"UTC","sending_domains":["example.com","bücher.de"]}`, 200)
	for _, field := range []string{"to_email", "cc", "from_email"} {
		path := "payload." + field
		if field == "cc" {
			path += "[0]"
		}
		for _, addr := range []string{"dån@example.com", "sarah@exa_mple.com", "sarah@example", "Sarah <sarah@example.com>", "sarah@-x.com"} {
			r := e.do("POST", "/v1/scheduled-communications", "all", email(field, addr))
			if r.Status != 422 || len(r.Error.Details) != 1 || r.Error.Details[0].Field != path {
				t.Errorf("%s %q: %d %s, want 422 naming %s", field, addr, r.Status, r.Body, path)
			}
		}
		if r := e.do("POST", "/v1/scheduled-communications", "all", email(field, "user@bücher.de")); r.Status != 201 {
			t.Errorf("%s user@bücher.de: %d %s", field, r.Status, r.Body)
		}
	}
	r := e.do("PUT", "/v1/settings", "all", `{"default_from_email":"dån@example.com"}`)
	if r.Status != 422 || len(r.Error.Details) == 0 || r.Error.Details[0].Field != "default_from_email" {
		t.Errorf("settings default_from_email: %d %s", r.Status, r.Body)
	}
}

// TestRoutesAndQueryStringsAsDocumented: what Schemathesis found in the
// contract — a literal route shadowed by a wildcard one, and empty query
// values read as "no filter" against the document — answered as the
// document says.
func TestRoutesAndQueryStringsAsDocumented(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.validate = false // undeclared methods have no document to check against
	for _, m := range []string{"GET", "PATCH", "DELETE"} {
		r := e.do(m, "/v1/scheduled-communications/cancel-by-event", "all", "")
		if r.Status != 405 || r.Header.Get("Allow") != "POST" {
			t.Errorf("%s cancel-by-event: %d, Allow %q; want 405 with Allow: POST", m, r.Status, r.Header.Get("Allow"))
		}
	}
	e.validate = true
	for _, path := range []string{"/v1/events?type=", "/v1/scheduled-communications?scheduled_before=", "/v1/scheduled-communications?cursor=",
		"/v1/scheduled-communications/" + phoneID + "/events?cursor="} {
		r := e.do("GET", path, "read", "")
		if r.Status != 422 || len(r.Error.Details) == 0 || !strings.Contains(r.Error.Details[0].Message, "must not be empty") {
			t.Errorf("%s: %d %s, want 422: must not be empty", path, r.Status, r.Body)
		}
	}
	if r := e.do("PUT", "/v1/phone-numbers/"+phoneID, "all", `{"e164":"+61412345678","capabilities":["sms"],"label":null}`); r.Status != 200 {
		t.Errorf("label null: %d %s", r.Status, r.Body)
	}
}

// TestSecondHostileReview: members of the classes a second review
// found getting through, each now refused (or served) as documented.
func TestSecondHostileReview(t *testing.T) {
	t.Parallel()
	e := setup(t)
	// A query pair net/http would drop (bad %-escape, ';') is a 422, never an unfiltered list.
	for _, q := range []string{"?status=cancelled%zz", "?status=cancelled;", "?contact_id=" + contactID + "%", "?limit=2;"} {
		if r := e.do("GET", "/v1/scheduled-communications"+q, "read", ""); r.Status != 422 || r.Error.Details[0].Field != "query" {
			t.Errorf("%s: %d %s", q, r.Status, r.Body)
		}
	}
	id := e.mustDo("POST", "/v1/scheduled-communications", "all", smsBody(at(time.Hour)), 201).row(t)["id"].(string)
	e.validate = false // HEAD has no document of its own
	for _, path := range []string{"/v1/scheduled-communications/" + id, "/v1/scheduled-communications/" + id + "/events", "/v1/phone-numbers/" + phoneID} {
		if r := e.do("HEAD", path, "read", ""); r.Status != 200 {
			t.Errorf("HEAD %s: %d", path, r.Status)
		}
	}
	e.validate = true
	// null inside cancel_policy is absent, as everywhere.
	body := `{"channel":"email","scheduled_for":"` + at(time.Hour) + `","cancel_policy":{"max_delay_minutes":null,"cancel_on":null},
		"payload":{"to_email":"a@example.com","subject":"s","html_body":"h"}}`
	if r := e.do("POST", "/v1/scheduled-communications", "all", body); r.Status != 201 {
		t.Errorf("cancel_policy with nulls: %d %s", r.Status, r.Body)
	}
	email := func(payload string) *resp {
		return e.do("POST", "/v1/scheduled-communications", "all", `{"channel":"email","scheduled_for":"`+at(time.Hour)+`","payload":`+payload+`}`)
	}
	cc := make([]string, 50)
	for i := range cc {
		cc[i] = strconv.Quote("cc" + strconv.Itoa(i) + "@example.com")
	}
	for name, c := range map[string]struct {
		payload, field string
	}{
		"51 recipients":           {`{"to_email":"a@example.com","subject":"s","html_body":"h","cc":[` + strings.Join(cc, ",") + `]}`, "payload.cc"},
		"same domain, other case": {`{"to_email":"a@example.com","subject":"s","html_body":"h","cc":["b@x.com","b@X.COM"]}`, "payload.cc[1]"},
		"IDN and its Punycode":    {`{"to_email":"a@example.com","subject":"s","html_body":"h","cc":["b@bücher.de","b@xn--bcher-kva.de"]}`, "payload.cc[1]"},
		"to_email again in cc":    {`{"to_email":"a@example.com","subject":"s","html_body":"h","cc":["a@EXAMPLE.com"]}`, "payload.cc[0]"},
		"stored payload too big":  {`{"to_email":"a@example.com","subject":"s","html_body":"` + strings.Repeat(`\"`, 200_000) + `"}`, "payload"},
	} {
		r := email(c.payload)
		if r.Status != 422 || len(r.Error.Details) == 0 || r.Error.Details[0].Field != c.field {
			t.Errorf("%s: %d %s, want 422 naming %s", name, r.Status, truncateBody(r.Body), c.field)
		}
	}
	// A charset other than UTF-8, or a Content-Encoding, would be ignored: 415.
	for _, h := range []header{{"Content-Type", "application/json; charset=utf-16"}, {"Content-Encoding", "gzip"}} {
		if r := e.do("POST", "/v1/scheduled-communications", "all", smsBody(at(time.Hour)), h); r.Status != 415 {
			t.Errorf("%s: %s: %d %s", h.k, h.v, r.Status, r.Body)
		}
	}
	// A byte-order mark or NaN is described in our words, not the decoder's.
	for _, b := range []string{"\xef\xbb\xbf{}", `{"channel":NaN}`} {
		r := e.do("POST", "/v1/scheduled-communications", "all", b)
		if r.Status != 400 || strings.Contains(r.Error.Message, "invalid character") {
			t.Errorf("%q: %d %s", b, r.Status, r.Body)
		}
	}
}

func truncateBody(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
