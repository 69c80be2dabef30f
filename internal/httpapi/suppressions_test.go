package httpapi_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConcurrentPutsOfOneRecipientCreateOnce: six concurrent PUTs of one
// recipient answer one 201 and five 200s, every body the stored record.
func TestConcurrentPutsOfOneRecipientCreateOnce(t *testing.T) {
	e := setup(t)
	const n = 6
	out := make([]*resp, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out[i] = e.do("PUT", "/v1/suppressions", "all", `{"channel":"email","recipient":"ada@example.com","detail":"put `+string(rune('a'+i))+`"}`)
		})
	}
	wg.Wait()
	stored := e.mustDo("GET", "/v1/suppressions/email/ada@example.com", "all", "", 200).row(t)
	created := 0
	for i, r := range out {
		switch r.Status {
		case http.StatusCreated:
			created++
		case http.StatusOK:
		default:
			t.Fatalf("put %d: %d %s", i, r.Status, r.Body)
		}
		if got, want := mustJSON(t, r.row(t)), mustJSON(t, stored); got != want {
			t.Errorf("put %d answered %s, stored %s", i, got, want)
		}
	}
	if created != 1 {
		t.Fatalf("%d of %d concurrent PUTs answered 201, want 1", created, n)
	}
}

// TestPutAfterALiftShowsTheLifts: the PUT that suppresses a lifted
// recipient again answers the record as stored, the earlier lift in lifts.
func TestPutAfterALiftShowsTheLifts(t *testing.T) {
	e := setup(t)
	e.mustDo("PUT", "/v1/suppressions", "all", `{"channel":"email","recipient":"ada@example.com"}`, 201)
	e.mustDo("DELETE", "/v1/suppressions/email/ada@example.com", "all", "", 200)
	again := e.mustDo("PUT", "/v1/suppressions", "all", `{"channel":"email","recipient":"ada@example.com","detail":"again"}`, 201).row(t)
	if lifts, _ := again["lifts"].([]any); len(lifts) != 1 {
		t.Fatalf("PUT after a lift answered lifts %v", again["lifts"])
	}
	got := e.mustDo("GET", "/v1/suppressions/email/ada@example.com", "all", "", 200).row(t)
	if mustJSON(t, got) != mustJSON(t, again) {
		t.Errorf("PUT answered %v, GET shows %v", again, got)
	}
}

// TestSuppressionListMetaAndCursorFilters: a listing says has_more; its
// cursor is refused with other filters (422 naming cursor).
func TestSuppressionListMetaAndCursorFilters(t *testing.T) {
	e := setup(t)
	for _, r := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		e.mustDo("PUT", "/v1/suppressions", "all", `{"channel":"email","recipient":"`+r+`"}`, 201)
	}
	first := e.mustDo("GET", "/v1/suppressions?channel=email&limit=2", "all", "", 200)
	cur, _ := first.Meta["next_cursor"].(string)
	if first.Meta["has_more"] != true || cur == "" {
		t.Fatalf("first page meta %v", first.Meta)
	}
	last := e.mustDo("GET", "/v1/suppressions?channel=email&limit=2&cursor="+cur, "all", "", 200)
	if last.Meta["has_more"] != false || last.Meta["next_cursor"] != nil {
		t.Errorf("last page meta %v", last.Meta)
	}
	for _, q := range []string{"channel=sms", "", "channel=email&include_lifted=true"} {
		r := e.mustDo("GET", "/v1/suppressions?"+q+"&limit=2&cursor="+cur, "all", "", 422)
		if f := r.fields(); len(f) != 1 || f[0] != "cursor" {
			t.Errorf("%s: fields %v, want cursor", q, f)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSenderProblemsAreReportedWithTheOthers: a create (or an edit) with a
// field error and a sender resource the company does not have reports
// both at once — the from_email's domain, a missing phone number.
func TestSenderProblemsAreReportedWithTheOthers(t *testing.T) {
	e := setup(t)
	body := strings.Replace(strings.Replace(emailBody(at(time.Hour)), "alex@example.com", "alex@elsewhere.example", 1),
		`"timezone":"Australia/Sydney"`, `"timezone":"Mars/Olympus"`, 1)
	r := e.mustDo("POST", "/v1/scheduled-communications", "all", body, 422)
	if f := r.fields(); !slices.Contains(f, "timezone") || !slices.Contains(f, "payload.from_email") {
		t.Errorf("create: fields %v, want timezone and payload.from_email", f)
	}
	sms := strings.Replace(smsBody(at(time.Hour)), phoneID, "00000000-0000-4000-8000-000000000000", 1)
	sms = strings.Replace(sms, `"channel":"sms",`, `"channel":"sms","timezone":"Mars/Olympus",`, 1)
	r = e.mustDo("POST", "/v1/scheduled-communications", "all", sms, 422)
	if f := r.fields(); !slices.Contains(f, "timezone") || !slices.Contains(f, "payload.phone_number_id") {
		t.Errorf("sms create: fields %v, want timezone and payload.phone_number_id (body %s)", f, sms)
	}
	id := e.mustDo("POST", "/v1/scheduled-communications", "all", emailBody(at(time.Hour)), 201).row(t)["id"].(string)
	r = e.mustDo("PATCH", "/v1/scheduled-communications/"+id, "all", `{"timezone":"Mars/Olympus","payload":{"from_email":"alex@elsewhere.example"}}`, 422)
	if f := r.fields(); !slices.Contains(f, "timezone") || !slices.Contains(f, "payload.from_email") {
		t.Errorf("edit: fields %v, want timezone and payload.from_email", f)
	}
}
