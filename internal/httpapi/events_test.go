package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

type eventJSON struct {
	ID              string          `json:"id"`
	CommunicationID string          `json:"communication_id"`
	Sequence        int64           `json:"sequence"`
	Type            string          `json:"type"`
	At              string          `json:"at"`
	Data            json.RawMessage `json:"data"`
}

func (r *resp) events(t *testing.T) []eventJSON {
	t.Helper()
	var evs []eventJSON
	if err := json.Unmarshal(r.Data, &evs); err != nil {
		t.Fatalf("data is not a list of events: %s", r.Data)
	}
	return evs
}

func TestEventRoutes(t *testing.T) {
	t.Parallel()
	e := setup(t)
	id := e.mustDo("POST", "/v1/scheduled-communications", "all", smsBody(at(time.Hour)), 201).row(t)["id"].(string)
	path := "/v1/scheduled-communications/" + id
	e.mustDo("PATCH", path, "all", `{"scheduled_for":"`+at(2*time.Hour)+`"}`, 200)
	e.mustDo("POST", path+"/cancel", "all", "", 200)

	t.Run("HistoryInOrder", func(t *testing.T) {
		r := e.mustDo("GET", path+"/events", "read", "", 200)
		evs := r.events(t)
		var got []string
		for i, ev := range evs {
			got = append(got, ev.Type)
			if ev.Sequence != int64(i+1) || ev.CommunicationID != id {
				t.Errorf("event %d: %+v", i, ev)
			}
		}
		if strings.Join(got, ",") != "created,rescheduled,cancelled" {
			t.Fatalf("history %v", got)
		}
		if !strings.HasPrefix(string(evs[1].Data), `{"changed":["scheduled_for"],`) {
			t.Errorf("rescheduled data %s, want changed [scheduled_for] first", evs[1].Data)
		}
		if string(evs[2].Data) != `{"reason":"api"}` {
			t.Errorf("cancelled data %s", evs[2].Data)
		}
		if r.Meta["has_more"] != false || r.Meta["next_cursor"] != nil {
			t.Errorf("meta %v on the last page", r.Meta)
		}
		row := e.mustDo("GET", path, "read", "", 200).row(t)
		if row["cancel_reason"] != "api" {
			t.Errorf("cancel_reason %v, want api", row["cancel_reason"])
		}
	})

	t.Run("HistoryPages", func(t *testing.T) {
		first := e.mustDo("GET", path+"/events?limit=2", "all", "", 200)
		if len(first.events(t)) != 2 || first.Meta["has_more"] != true {
			t.Fatalf("first page %s %v", first.Data, first.Meta)
		}
		rest := e.mustDo("GET", path+"/events?limit=2&cursor="+first.Meta["next_cursor"].(string), "all", "", 200)
		if evs := rest.events(t); len(evs) != 1 || evs[0].Sequence != 3 {
			t.Fatalf("second page %s", rest.Data)
		}
	})

	t.Run("Feed", func(t *testing.T) {
		r := e.mustDo("GET", "/v1/events?type=cancelled&created_after="+at(-time.Hour), "read", "", 200)
		if evs := r.events(t); len(evs) != 1 || evs[0].CommunicationID != id {
			t.Fatalf("feed of cancelled: %s", r.Data)
		}
		if r.Meta["next_cursor"] == nil {
			t.Errorf("no cursor to poll from: %v", r.Meta)
		}
	})

	t.Run("AnotherCompanySeesNothing", func(t *testing.T) {
		if r := e.do("GET", path+"/events", "other", ""); r.Status != 404 {
			t.Errorf("another company's history: %d", r.Status)
		}
		if r := e.mustDo("GET", "/v1/events", "other", "", 200); len(r.events(t)) != 0 {
			t.Errorf("another company's feed has %s", r.Data)
		}
	})

	t.Run("Refusals", func(t *testing.T) {
		for _, c := range []struct {
			path, key string
			status    int
			field     string
		}{
			{path + "/events?limit=0", "all", 422, "limit"},
			{path + "/events?cursor=zzz", "all", 422, "cursor"},
			{path + "/events?type=sent", "all", 422, "type"},
			{"/v1/events?type=sent,nope", "all", 422, "type"},
			{"/v1/events?created_after=yesterday", "all", 422, "created_after"},
			{"/v1/events?cursor=" + strings.Repeat("A", 8), "all", 422, "cursor"},
			{path + "/events?cursor=" + base64.RawURLEncoding.EncodeToString([]byte("seq:9223372036854775807")), "all", 422, "cursor"},
			{"/v1/events?type=" + strings.TrimSuffix(strings.Repeat("sent,", 40000), ","), "all", 200, ""},
			{"/v1/events", "sendnowrite", 200, ""},
			{"/v1/events", "emailonly", 200, ""},
			{"/v1/scheduled-communications/not-a-uuid/events", "all", 404, ""},
		} {
			r := e.do("GET", c.path, c.key, "")
			if r.Status != c.status {
				t.Errorf("%s as %s: %d, want %d: %s", c.path, c.key, r.Status, c.status, r.Body)
				continue
			}
			if c.field != "" && (len(r.Error.Details) == 0 || r.Error.Details[0].Field != c.field) {
				t.Errorf("%s: details %+v, want the field %s", c.path, r.Error.Details, c.field)
			}
		}
		if r := e.do("GET", "/v1/events", "", ""); r.Status != 401 {
			t.Errorf("no key: %d", r.Status)
		}
	})
}

// TestCancelByEventListsOnlyWhatItCancelled: a row another request
// cancelled first is not reported by the cancel-by-event that found it so.
func TestCancelByEventListsOnlyWhatItCancelled(t *testing.T) {
	t.Parallel()
	e := setup(t)
	body := `{"channel":"email","scheduled_for":"` + at(time.Hour) + `","contact_id":"` + contactID + `",
		"cancel_policy":{"cancel_on":["contact_replied"]},"payload":{"to_email":"sarah@example.com","subject":"Hi","html_body":"<p>Hi</p>"}}`
	first := e.mustDo("POST", "/v1/scheduled-communications", "all", body, 201).row(t)["id"].(string)
	second := e.mustDo("POST", "/v1/scheduled-communications", "all", body, 201).row(t)["id"].(string)
	e.mustDo("POST", "/v1/scheduled-communications/"+first+"/cancel", "all", "", 200)
	r := e.mustDo("POST", "/v1/scheduled-communications/cancel-by-event", "all", `{"event":"contact_replied","contact_id":"`+contactID+`"}`, 200)
	var res struct {
		Cancelled []string `json:"cancelled"`
	}
	if err := json.Unmarshal(r.Data, &res); err != nil || len(res.Cancelled) != 1 || res.Cancelled[0] != second {
		t.Fatalf("cancelled %v, want only %s (%s was cancelled before, by the API)", res.Cancelled, second, first)
	}
	if got := e.mustDo("GET", "/v1/scheduled-communications/"+first, "read", "", 200).row(t)["cancel_reason"]; got != "api" {
		t.Fatalf("the first row's cancel_reason %v, want api", got)
	}
	if got := e.mustDo("GET", "/v1/scheduled-communications/"+second, "read", "", 200).row(t)["cancel_reason"]; got != "event:contact_replied" {
		t.Fatalf("the second row's cancel_reason %v", got)
	}
}

// TestPatchThatChangesNothing writes nothing, records nothing, charges nothing.
func TestPatchThatChangesNothing(t *testing.T) {
	t.Parallel()
	e := setup(t)
	created := e.mustDo("POST", "/v1/scheduled-communications", "all", emailBody(at(time.Hour)), 201)
	id := created.row(t)["id"].(string)
	before := created.Meta["credits_remaining"]
	path := "/v1/scheduled-communications/" + id
	for _, body := range []string{`{}`, `{"timezone":"Australia/Sydney"}`} {
		r := e.mustDo("PATCH", path, "all", body, 200)
		if r.Meta["credits_remaining"] != before {
			t.Errorf("PATCH %s: credits %v → %v", body, before, r.Meta["credits_remaining"])
		}
	}
	if evs := e.mustDo("GET", path+"/events", "read", "", 200).events(t); len(evs) != 1 {
		t.Errorf("history after no-op PATCHes: %d events, want only created", len(evs))
	}
	r := e.mustDo("PATCH", path, "all", `{"payload":{"subject":"New"}}`, 200)
	if r.Meta["credits_remaining"] == before {
		t.Errorf("a real edit was free")
	}
}
