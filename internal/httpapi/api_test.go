package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/embedded"
)

func TestSeedExamplesAreAccepted(t *testing.T) {
	t.Parallel()
	e := setup(t)
	for _, tc := range []struct {
		name, body, channel string
		maxAttempts         int
	}{
		{"email", emailBody(at(24 * time.Hour)), "email", 3},
		{"sms", smsBody(at(time.Hour)), "sms", 3},
		{"voice_call", voiceBody(at(48 * time.Hour)), "voice_call", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.mustDo("POST", "/v1/scheduled-communications", "all", tc.body, 201)
			row := r.row(t)
			if loc := r.Header.Get("Location"); loc != "/v1/scheduled-communications/"+row["id"].(string) {
				t.Errorf("Location = %q", loc)
			}
			if row["channel"] != tc.channel || row["status"] != "pending" || row["source"] != "api" ||
				row["attempt_count"].(float64) != 0 || int(row["max_attempts"].(float64)) != tc.maxAttempts {
				t.Errorf("row = %s", r.Data)
			}
			if _, ok := r.Meta["credits_remaining"].(float64); !ok {
				t.Errorf("meta.credits_remaining missing: %v", r.Meta)
			}
			got := e.mustDo("GET", "/v1/scheduled-communications/"+row["id"].(string), "read", "", 200)
			if string(got.Data) != string(r.Data) {
				t.Errorf("GET differs from the create response\nGET    %s\nPOST   %s", got.Data, r.Data)
			}
		})
	}
}

func TestVoiceRowShowsCadenceAndBusinessHours(t *testing.T) {
	t.Parallel()
	e := setup(t)
	// Saturday 15:00 UTC is the morning in New York, but the weekend is closed:
	// the next window opens Monday 09:00 New York time.
	sat := nextSaturday()
	ny, _ := time.LoadLocation("America/New_York")
	monday := time.Date(sat.Year(), sat.Month(), sat.Day()+2, 9, 0, 0, 0, ny).UTC()
	r := e.mustDo("POST", "/v1/scheduled-communications", "all", voiceBody(sat.Add(15*time.Hour).Format(time.RFC3339)), 201)
	row := r.row(t)
	if row["scheduled_for"] != sat.Add(15*time.Hour).Format(time.RFC3339) || row["next_attempt_at"] != monday.Format(time.RFC3339) {
		t.Errorf("scheduled_for %v, next_attempt_at %v; want %v", row["scheduled_for"], row["next_attempt_at"], monday)
	}
	cad := row["cadence"].(map[string]any)
	if cad["root_id"] != row["id"] || cad["attempt"].(float64) != 1 || cad["max_attempts"].(float64) != 3 {
		t.Errorf("cadence = %v", cad)
	}
	if row["timezone"] != "America/New_York" {
		t.Errorf("timezone = %v", row["timezone"])
	}
}

func TestDevCompanyFirstCreateLeaves49999(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := embedded.OpenStore(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	key, created, err := app.EnsureDevCompany(ctx, store, dir)
	if err != nil || !created || !strings.HasPrefix(key, "dk_live_") {
		t.Fatalf("EnsureDevCompany = %q, %v, %v", key, created, err)
	}
	again, created, err := app.EnsureDevCompany(ctx, store, dir)
	if err != nil || created || again != key {
		t.Fatalf("second start = %q, %v, %v; want the same key, not created", again, created, err)
	}
	e := &env{t: t, api: app.Handler(store, discard()), store: store, keys: map[string]string{"dev": key}, validate: true}
	e.mustDo("PUT", "/v1/settings", "dev", `{"timezone":"UTC","sending_domains":["example.com"]}`, 200) // free
	r := e.mustDo("POST", "/v1/scheduled-communications", "dev", emailBody(at(time.Hour)), 201)
	if r.Meta["credits_remaining"] != float64(49999) {
		t.Errorf("credits_remaining = %v, want 49999", r.Meta["credits_remaining"])
	}
	// The key is written to <data>/dev-api-key, readable by its owner only.
	path := filepath.Join(dir, app.DevKeyFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the dev key file: %v", err)
	}
	if string(b) != key {
		t.Errorf("%s holds %q, want the dev key %q", path, b, key)
	}
	if fi, err := os.Stat(path); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want 0600: it holds a secret", path, fi.Mode().Perm())
	}
}

func TestScopes(t *testing.T) {
	t.Parallel()
	e := setup(t)
	id := e.mustDo("POST", "/v1/scheduled-communications", "all", emailBody(at(time.Hour)), 201).row(t)["id"].(string)
	cases := []struct {
		key, method, path, body string
		want                    int
	}{
		{"emailonly", "POST", "/v1/scheduled-communications", emailBody(at(time.Hour)), 201},
		{"emailonly", "POST", "/v1/scheduled-communications", smsBody(at(time.Hour)), 403},
		{"emailonly", "POST", "/v1/scheduled-communications", voiceBody(at(time.Hour)), 403},
		{"smsonly", "POST", "/v1/scheduled-communications", smsBody(at(time.Hour)), 201},
		{"smsonly", "POST", "/v1/scheduled-communications", emailBody(at(time.Hour)), 403},
		{"voiceonly", "POST", "/v1/scheduled-communications", voiceBody(at(time.Hour)), 201},
		{"voiceonly", "POST", "/v1/scheduled-communications", smsBody(at(time.Hour)), 403},
		{"write", "POST", "/v1/scheduled-communications", emailBody(at(time.Hour)), 403},
		{"sendnowrite", "POST", "/v1/scheduled-communications", emailBody(at(time.Hour)), 403},
		{"read", "POST", "/v1/scheduled-communications", emailBody(at(time.Hour)), 403},
		{"read", "GET", "/v1/scheduled-communications", "", 200},
		{"read", "GET", "/v1/scheduled-communications/" + id, "", 200},
		{"write", "GET", "/v1/scheduled-communications/" + id, "", 200},
		{"write", "GET", "/v1/settings", "", 200},
		{"read", "PUT", "/v1/settings", `{"timezone":"UTC"}`, 403},
		{"read", "PATCH", "/v1/scheduled-communications/" + id, `{"scheduled_for":"` + at(2*time.Hour) + `"}`, 403},
		{"smsonly", "PATCH", "/v1/scheduled-communications/" + id, `{"scheduled_for":"` + at(2*time.Hour) + `"}`, 403},
		{"emailonly", "PATCH", "/v1/scheduled-communications/" + id, `{"scheduled_for":"` + at(2*time.Hour) + `"}`, 200},
		{"read", "POST", "/v1/scheduled-communications/" + id + "/cancel", "", 403},
		{"read", "PUT", "/v1/phone-numbers/" + phoneID, `{"e164":"+61412345678","capabilities":["sms"]}`, 403},
		{"read", "DELETE", "/v1/voice-agents/" + agentID, "", 403},
		{"read", "GET", "/v1/voice-agents", "", 200},
		{"write", "POST", "/v1/scheduled-communications/" + id + "/cancel", "", 200},
	}
	for _, tc := range cases {
		r := e.do(tc.method, tc.path, tc.key, tc.body)
		if r.Status != tc.want {
			t.Errorf("%s %s %s as %q: status %d, want %d: %s", tc.method, tc.path, tc.body[:min(len(tc.body), 30)], tc.key, r.Status, tc.want, r.Body)
			continue
		}
		if tc.want == 403 && (r.Error.Code != "insufficient_scope" || !strings.Contains(r.Error.Message, ":")) {
			t.Errorf("403 body = %s", r.Body)
		}
	}
	// The 403 names the scope that was missing.
	r := e.do("POST", "/v1/scheduled-communications", "emailonly", smsBody(at(time.Hour)))
	if !strings.Contains(r.Error.Message, "sms:send") {
		t.Errorf("403 message does not name sms:send: %s", r.Error.Message)
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	e := setup(t)
	revoked := e.key("acme", "dispatcher:read")
	keys, _ := e.store.ListAPIKeys(context.Background(), "acme")
	for _, k := range keys {
		if strings.HasPrefix(revoked, k.Prefix) {
			if err := e.store.RevokeAPIKey(context.Background(), "acme", k.ID, testNow); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, key := range map[string]string{
		"missing": "", "unknown": "dk_live_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "revoked": revoked, "not ours": "sk_test_123",
	} {
		r := e.do("GET", "/v1/scheduled-communications", key, "")
		if r.Status != 401 || r.Error.Code != "unauthorized" || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s key: %d %s (WWW-Authenticate %q)", name, r.Status, r.Body, r.Header.Get("WWW-Authenticate"))
		}
	}
	// Public routes need no key.
	e.mustDo("GET", "/healthz", "", "", 200)
	doc := e.mustDo("GET", "/v1/openapi.json", "", "", 200)
	var m map[string]any
	if err := json.Unmarshal(doc.Body, &m); err != nil || m["openapi"] != "3.1.0" {
		t.Errorf("openapi.json: %v %v", err, m["openapi"])
	}
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	e := setup(t)
	id := e.mustDo("POST", "/v1/scheduled-communications", "all", emailBody(at(time.Hour)), 201).row(t)["id"].(string)
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/v1/scheduled-communications/" + id, ""},
		{"PATCH", "/v1/scheduled-communications/" + id, `{"scheduled_for":"` + at(2*time.Hour) + `"}`},
		{"POST", "/v1/scheduled-communications/" + id + "/cancel", ""},
		{"GET", "/v1/phone-numbers/" + phoneID, ""},
		{"GET", "/v1/voice-agents/" + agentID, ""},
		{"DELETE", "/v1/phone-numbers/" + phoneID, ""},
	} {
		if r := e.do(tc.method, tc.path, "other", tc.body); r.Status != 404 || r.Error.Code != "not_found" {
			t.Errorf("%s %s as another company: %d %s, want 404", tc.method, tc.path, r.Status, r.Body)
		}
	}
	if r := e.mustDo("GET", "/v1/scheduled-communications", "other", "", 200); string(r.Data) != "[]" {
		t.Errorf("another company lists %s", r.Data)
	}
	// Another company's sender resources cannot be named.
	r := e.do("POST", "/v1/scheduled-communications", "other", smsBody(at(time.Hour)))
	if r.Status != 422 || !slices.Equal(r.fields(), []string{"payload.phone_number_id"}) {
		t.Errorf("sms naming acme's number as other: %d %s", r.Status, r.Body)
	}
	// Still there for its owner.
	e.mustDo("GET", "/v1/scheduled-communications/"+id, "all", "", 200)
	e.mustDo("GET", "/v1/phone-numbers/"+phoneID, "all", "", 200)
}

func TestUnknownResourcesAreNamed(t *testing.T) {
	t.Parallel()
	e := setup(t)
	missing := "7f7f7f7f-7f7f-4f7f-8f7f-7f7f7f7f7f7f"
	body := strings.ReplaceAll(voiceBody(at(time.Hour)), agentID, missing)
	r := e.do("POST", "/v1/scheduled-communications", "all", body)
	want := []string{"payload.voice_agent_outbound_config_id", "payload.follow_ups.voice_agent_outbound_config_id"}
	if r.Status != 422 || !slices.Equal(r.fields(), want) {
		t.Errorf("unknown agent: %d %s", r.Status, r.Body)
	}
	// A number without the sms capability cannot send SMS.
	voiceOnly := "5a5a5a5a-5a5a-4a5a-8a5a-5a5a5a5a5a5a"
	e.mustDo("PUT", "/v1/phone-numbers/"+voiceOnly, "all", `{"e164":"+61412000111","capabilities":["voice"]}`, 200)
	r = e.do("POST", "/v1/scheduled-communications", "all", strings.ReplaceAll(smsBody(at(time.Hour)), phoneID, voiceOnly))
	if r.Status != 422 || !slices.Equal(r.fields(), []string{"payload.phone_number_id"}) {
		t.Errorf("number without sms: %d %s", r.Status, r.Body)
	}
	assertCount(t, e, "all", "", 0)
}

func assertCount(t *testing.T, e *env, key, query string, want int) []map[string]any {
	t.Helper()
	r := e.mustDo("GET", "/v1/scheduled-communications?limit=100"+query, key, "", 200)
	var rows []map[string]any
	if err := json.Unmarshal(r.Data, &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != want {
		t.Errorf("listed %d rows%s, want %d", len(rows), query, want)
	}
	return rows
}

func TestCreditsRunOut(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.company("tiny", 2)
	e.keys["tiny"] = e.key("tiny", "dispatcher:read,dispatcher:write,email:send")
	// acme gives up example.com (a domain belongs to one company) for tiny.
	e.mustDo("PUT", "/v1/settings", "all", `{"timezone":"UTC"}`, 200)
	e.mustDo("PUT", "/v1/settings", "tiny", `{"timezone":"UTC","sending_domains":["example.com"]}`, 200) // free
	first := e.mustDo("POST", "/v1/scheduled-communications", "tiny", emailBody(at(time.Hour)), 201)
	if first.Meta["credits_remaining"] != float64(1) {
		t.Errorf("credits after first = %v", first.Meta["credits_remaining"])
	}
	second := e.mustDo("POST", "/v1/scheduled-communications", "tiny", emailBody(at(time.Hour)), 201)
	if second.Meta["credits_remaining"] != float64(0) {
		t.Errorf("credits after second = %v", second.Meta["credits_remaining"])
	}
	r := e.do("POST", "/v1/scheduled-communications", "tiny", emailBody(at(time.Hour)))
	if r.Status != 402 || r.Error.Code != "insufficient_credits" {
		t.Fatalf("third create: %d %s", r.Status, r.Body)
	}
	assertCount(t, e, "tiny", "", 2)
	id := second.row(t)["id"].(string)
	// Editing costs a credit too...
	if r := e.do("PATCH", "/v1/scheduled-communications/"+id, "tiny", `{"scheduled_for":"`+at(3*time.Hour)+`"}`); r.Status != 402 {
		t.Errorf("patch at 0 credits: %d %s", r.Status, r.Body)
	}
	if got := e.mustDo("GET", "/v1/scheduled-communications/"+id, "tiny", "", 200); string(got.Data) != string(second.Data) {
		t.Errorf("a refused patch changed the row:\n%s\n%s", got.Data, second.Data)
	}
	// ...but cancelling is always free.
	c := e.mustDo("POST", "/v1/scheduled-communications/"+id+"/cancel", "tiny", "", 200)
	if c.row(t)["status"] != "cancelled" {
		t.Errorf("cancel at 0 credits: %s", c.Data)
	}
	// Invalid requests cost nothing and store nothing.
	e.company("three", 3)
	e.keys["three"] = e.key("three", "dispatcher:read,dispatcher:write,email:send")
	e.mustDo("POST", "/v1/scheduled-communications", "three", `{"channel":"email"}`, 422)
	// A from_email at an undeclared domain is refused the same way.
	if r := e.mustDo("POST", "/v1/scheduled-communications", "three", emailBody(at(time.Hour)), 422); !slices.Equal(r.fields(), []string{"payload.from_email"}) {
		t.Errorf("undeclared from domain: %s", r.Body)
	}
	e.mustDo("PUT", "/v1/settings", "tiny", `{"timezone":"UTC"}`, 200) // releases example.com
	e.mustDo("PUT", "/v1/settings", "three", `{"timezone":"UTC","sending_domains":["example.com"]}`, 200)
	if r := e.mustDo("POST", "/v1/scheduled-communications", "three", emailBody(at(time.Hour)), 201); r.Meta["credits_remaining"] != float64(2) {
		t.Errorf("a rejected request was charged: credits %v", r.Meta["credits_remaining"])
	}
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	e := setup(t)
	body := emailBody(at(time.Hour))
	key := header{"Idempotency-Key", "order-42-followup"}
	first := e.mustDo("POST", "/v1/scheduled-communications", "all", body, 201, key)
	// Same key, same body re-formatted: the first response, nothing new.
	var doc map[string]any
	_ = json.Unmarshal([]byte(body), &doc)
	reformatted, _ := json.MarshalIndent(doc, "", "  ")
	again := e.mustDo("POST", "/v1/scheduled-communications", "all", string(reformatted), 201, key)
	if again.row(t)["id"] != first.row(t)["id"] || again.Meta["credits_remaining"] != first.Meta["credits_remaining"] {
		t.Errorf("replay differs: %s / %v vs %s / %v", again.Data, again.Meta, first.Data, first.Meta)
	}
	if again.Header.Get("Idempotent-Replayed") != "true" || first.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("Idempotent-Replayed: first %q, replay %q", first.Header.Get("Idempotent-Replayed"), again.Header.Get("Idempotent-Replayed"))
	}
	assertCount(t, e, "all", "", 1)
	co, _ := e.store.GetCompany(context.Background(), "acme")
	if co.Credits != 999 {
		t.Errorf("credits = %d after a create and its replay, want 999", co.Credits)
	}
	// Same key, different body.
	r := e.do("POST", "/v1/scheduled-communications", "all", emailBody(at(2*time.Hour)), key)
	if r.Status != 422 || r.Error.Code != "idempotency_key_reused" {
		t.Errorf("different body: %d %s", r.Status, r.Body)
	}
	// The same key is independent per company.
	e.mustDo("POST", "/v1/scheduled-communications", "other", otherEmailBody(at(time.Hour)), 201, key)
	// A key that is too long is named.
	r = e.do("POST", "/v1/scheduled-communications", "all", body, header{"Idempotency-Key", strings.Repeat("k", 256)})
	if r.Status != 422 || !slices.Equal(r.fields(), []string{"Idempotency-Key"}) {
		t.Errorf("long key: %d %s", r.Status, r.Body)
	}
}

func TestIdempotencyUnderConcurrency(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.validate = false // the validator is not safe for concurrent use
	body := smsBody(at(time.Hour))
	var wg sync.WaitGroup
	ids := make([]string, 16)
	for i := range ids {
		wg.Go(func() {
			r := e.do("POST", "/v1/scheduled-communications", "all", body, header{"Idempotency-Key", "race"})
			if r.Status == 201 {
				var m map[string]any
				_ = json.Unmarshal(r.Data, &m)
				ids[i], _ = m["id"].(string)
			} else {
				ids[i] = fmt.Sprintf("status %d: %s", r.Status, r.Body)
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent replays answered differently: %q vs %q", id, ids[0])
		}
	}
	assertCount(t, e, "all", "", 1)
	if co, _ := e.store.GetCompany(context.Background(), "acme"); co.Credits != 999 {
		t.Errorf("credits = %d, want 999", co.Credits)
	}
}

func TestPatch(t *testing.T) {
	t.Parallel()
	e := setup(t)
	created := e.mustDo("POST", "/v1/scheduled-communications", "all", emailBody(at(time.Hour)), 201).row(t)
	id := created["id"].(string)
	path := "/v1/scheduled-communications/" + id

	when := testNow.Add(5 * time.Hour)
	r := e.mustDo("PATCH", path, "all", `{"scheduled_for":"`+when.Format(time.RFC3339)+`","payload":{"subject":"New subject","cc":null},"deal_id":null}`, 200)
	row := r.row(t)
	payload := row["payload"].(map[string]any)
	if row["scheduled_for"] != when.Format(time.RFC3339) || row["next_attempt_at"] != when.Format(time.RFC3339) {
		t.Errorf("rescheduled row: %v / %v", row["scheduled_for"], row["next_attempt_at"])
	}
	if payload["subject"] != "New subject" || payload["to_email"] != "sarah@example.com" || payload["cc"] != nil {
		t.Errorf("merged payload = %v", payload)
	}
	if row["deal_id"] != nil || row["contact_id"] != contactID || row["id"] != id || row["created_at"] != created["created_at"] {
		t.Errorf("patched row = %s", r.Data)
	}
	if r.Meta["credits_remaining"] != float64(998) {
		t.Errorf("patch debit: credits %v, want 998", r.Meta["credits_remaining"])
	}
	// Validation applies to the merged result, naming every field.
	r = e.do("PATCH", path, "all", `{"channel":"sms"}`)
	if r.Status != 422 || !slices.Equal(r.fields(), []string{"channel"}) {
		t.Errorf("channel change: %d %s", r.Status, r.Body)
	}
	r = e.do("PATCH", path, "all", `{"payload":{"to_email":"nope","subject":null},"timezone":"Moon/Base"}`)
	if r.Status != 422 || !slices.Equal(sorted(r.fields()), []string{"payload.subject", "payload.to_email", "timezone"}) {
		t.Errorf("invalid patch: %d %s", r.Status, r.Body)
	}
	r = e.do("PATCH", path, "all", `{"scheduled_for":"2020-01-01T00:00:00Z"}`)
	if r.Status != 422 || !slices.Equal(r.fields(), []string{"scheduled_for"}) {
		t.Errorf("patch into the past: %d %s", r.Status, r.Body)
	}
	r = e.do("PATCH", path, "all", `[1]`)
	if r.Status != 422 {
		t.Errorf("non-object patch: %d %s", r.Status, r.Body)
	}
	// Business hours apply on patch too: Saturday → Monday 09:00 UTC (company default).
	sat := nextSaturday()
	r = e.mustDo("PATCH", path, "all", `{"scheduled_for":"`+sat.Add(12*time.Hour).Format(time.RFC3339)+`","respect_business_hours":true,"timezone":null}`, 200)
	if row := r.row(t); row["next_attempt_at"] != sat.Add(57*time.Hour).Format(time.RFC3339) || row["timezone"] != nil {
		t.Errorf("held patch: next_attempt_at %v timezone %v", row["next_attempt_at"], row["timezone"])
	}
	// merge-patch media type is accepted too.
	req := e.do("PATCH", path, "all", `{"related_entity_type":"deal"}`, header{"Content-Type", "application/merge-patch+json"})
	if req.Status != 200 {
		t.Errorf("merge-patch+json: %d %s", req.Status, req.Body)
	}
}

// nextSaturday is 00:00 UTC of a Saturday at least two days ahead.
func nextSaturday() time.Time {
	d := testNow.Truncate(24*time.Hour).AddDate(0, 0, 2)
	for d.Weekday() != time.Saturday {
		d = d.AddDate(0, 0, 1)
	}
	return d
}

func sorted(s []string) []string { slices.Sort(s); return s }

func TestStateRules(t *testing.T) {
	t.Parallel()
	e := setup(t)
	id := e.mustDo("POST", "/v1/scheduled-communications", "all", smsBody(at(time.Hour)), 201).row(t)["id"].(string)
	path := "/v1/scheduled-communications/" + id
	c := e.mustDo("POST", path+"/cancel", "all", "", 200).row(t)
	if c["status"] != "cancelled" || c["cancelled_at"] == nil {
		t.Errorf("cancelled row: %v", c)
	}
	// Cancelling again returns the same row; editing is refused.
	again := e.mustDo("POST", path+"/cancel", "all", "", 200).row(t)
	if again["cancelled_at"] != c["cancelled_at"] {
		t.Errorf("second cancel changed cancelled_at: %v vs %v", again["cancelled_at"], c["cancelled_at"])
	}
	if r := e.do("PATCH", path, "all", `{"scheduled_for":"`+at(2*time.Hour)+`"}`); r.Status != 409 || r.Error.Code != "not_pending" {
		t.Errorf("patch cancelled: %d %s", r.Status, r.Body)
	}
	// A claimed (processing) or finished row can be neither edited nor cancelled.
	for _, st := range []comms.Status{comms.StatusProcessing, comms.StatusSent, comms.StatusFailed} {
		id := e.mustDo("POST", "/v1/scheduled-communications", "all", smsBody(at(time.Hour)), 201).row(t)["id"].(string)
		row, err := e.store.GetCommunication(context.Background(), "acme", id)
		if err != nil {
			t.Fatal(err)
		}
		row.Status = st
		if _, _, err := e.store.UpdateCommunication(context.Background(), comms.Change{Row: row}, false); err != nil {
			t.Fatal(err)
		}
		path := "/v1/scheduled-communications/" + id
		if r := e.do("POST", path+"/cancel", "all", ""); r.Status != 409 || r.Error.Code != "not_pending" || !strings.Contains(r.Error.Message, string(st)) {
			t.Errorf("cancel %s: %d %s", st, r.Status, r.Body)
		}
		if r := e.do("PATCH", path, "all", `{"payload":{"message_body":"x"}}`); r.Status != 409 {
			t.Errorf("patch %s: %d %s", st, r.Status, r.Body)
		}
	}
	if r := e.do("GET", "/v1/scheduled-communications/not-a-uuid", "all", ""); r.Status != 404 {
		t.Errorf("malformed id: %d", r.Status)
	}
	if r := e.do("POST", "/v1/scheduled-communications/7f7f7f7f-7f7f-4f7f-8f7f-7f7f7f7f7f7f/cancel", "all", ""); r.Status != 404 {
		t.Errorf("unknown id cancel: %d", r.Status)
	}
}

func TestListFiltersAndPaging(t *testing.T) {
	t.Parallel()
	e := setup(t)
	base := testNow.Add(time.Hour)
	other := "4c4c4c4c-4c4c-4c4c-8c4c-4c4c4c4c4c4c"
	var ids []string
	for i := range 12 {
		body := emailBody(base.Add(time.Duration(i) * time.Minute).Format(time.RFC3339))
		switch i % 3 {
		case 1:
			body = smsBody(base.Add(time.Duration(i) * time.Minute).Format(time.RFC3339))
		case 2:
			body = strings.ReplaceAll(body, contactID, other)
		}
		ids = append(ids, e.mustDo("POST", "/v1/scheduled-communications", "all", body, 201).row(t)["id"].(string))
	}
	e.mustDo("POST", "/v1/scheduled-communications/"+ids[0]+"/cancel", "all", "", 200)

	assertCount(t, e, "read", "", 12)
	assertCount(t, e, "read", "&channel=sms", 4)
	assertCount(t, e, "read", "&channel=email&contact_id="+other, 4)
	assertCount(t, e, "read", "&status=cancelled", 1)
	assertCount(t, e, "read", "&status=pending&channel=email", 7)
	assertCount(t, e, "read", "&deal_id="+dealID, 8)
	assertCount(t, e, "read", "&customer_id="+other, 0)
	assertCount(t, e, "read", "&scheduled_after="+base.Add(10*time.Minute).Format(time.RFC3339), 2)
	assertCount(t, e, "read", "&scheduled_before="+base.Add(10*time.Minute).Format(time.RFC3339), 10)
	rows := assertCount(t, e, "read", "&scheduled_after="+base.Add(3*time.Minute).Format(time.RFC3339)+"&scheduled_before="+base.Add(5*time.Minute).Format(time.RFC3339), 2)
	if len(rows) == 2 && (rows[0]["id"] != ids[3] || rows[1]["id"] != ids[4]) {
		t.Errorf("window listed %v, %v", rows[0]["id"], rows[1]["id"])
	}

	// Paging in fives visits every row once, in scheduled order.
	var seen []string
	cursor := ""
	for page := 0; ; page++ {
		q := "/v1/scheduled-communications?limit=5"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		r := e.mustDo("GET", q, "read", "", 200)
		var rows []map[string]any
		_ = json.Unmarshal(r.Data, &rows)
		for _, row := range rows {
			seen = append(seen, row["id"].(string))
		}
		next, _ := r.Meta["next_cursor"].(string)
		if next == "" {
			if page != 2 || len(rows) != 2 {
				t.Errorf("last page %d had %d rows", page, len(rows))
			}
			break
		}
		cursor = next
	}
	if !slices.Equal(seen, ids) {
		t.Errorf("paging order\n got %v\nwant %v", seen, ids)
	}

	// Bad parameters are named, all at once.
	r := e.do("GET", "/v1/scheduled-communications?limit=0&status=done&channel=fax&contact_id=x&scheduled_after=yesterday&cursor=%21&stauts=pending", "read", "")
	want := []string{"channel", "contact_id", "cursor", "limit", "scheduled_after", "status", "stauts"}
	if r.Status != 422 || !slices.Equal(sorted(r.fields()), want) {
		t.Errorf("bad query: %d %s", r.Status, r.Body)
	}
	if r := e.do("GET", "/v1/scheduled-communications?limit=101", "read", ""); r.Status != 422 {
		t.Errorf("limit 101: %d", r.Status)
	}
}

func TestTransportErrors(t *testing.T) {
	t.Parallel()
	e := setup(t)
	// 400: unparseable JSON.
	r := e.do("POST", "/v1/scheduled-communications", "all", `{"channel": "email",`)
	if r.Status != 400 || r.Error.Code != "invalid_json" {
		t.Errorf("broken JSON: %d %s", r.Status, r.Body)
	}
	// 415: not JSON.
	r = e.do("POST", "/v1/scheduled-communications", "all", emailBody(at(time.Hour)), header{"Content-Type", "text/plain"})
	if r.Status != 415 || r.Error.Code != "unsupported_media_type" {
		t.Errorf("text/plain: %d %s", r.Status, r.Body)
	}
	r = e.do("POST", "/v1/scheduled-communications", "all", emailBody(at(time.Hour)), header{"Content-Type", ""})
	if r.Status != 415 {
		t.Errorf("no content type: %d %s", r.Status, r.Body)
	}
	r = e.do("POST", "/v1/scheduled-communications", "all", emailBody(at(time.Hour)), header{"Content-Type", "application/json; charset=utf-8"})
	if r.Status != 201 {
		t.Errorf("json with charset: %d %s", r.Status, r.Body)
	}
	// 413: over 1 MiB.
	big := `{"channel":"email","scheduled_for":"` + at(time.Hour) + `","payload":{"to_email":"a@example.com","subject":"s","html_body":"` + strings.Repeat("x", 1<<20) + `"}}`
	r = e.do("POST", "/v1/scheduled-communications", "all", big)
	if r.Status != 413 || r.Error.Code != "payload_too_large" {
		t.Errorf("big body: %d %s", r.Status, truncate(r.Body))
	}
	// 404 and 405 in the envelope (neither is an operation of the document).
	e.validate = false
	r = e.do("GET", "/v1/nothing-here", "all", "")
	if r.Status != 404 || r.Error.Code != "not_found" {
		t.Errorf("unknown path: %d %s", r.Status, r.Body)
	}
	r = e.do("DELETE", "/v1/scheduled-communications", "all", "")
	if r.Status != 405 || r.Error.Code != "method_not_allowed" || r.Header.Get("Allow") != "GET, POST" {
		t.Errorf("wrong method: %d %s allow %q", r.Status, r.Body, r.Header.Get("Allow"))
	}
	e.validate = true
	// A request id sent by the caller is echoed.
	r = e.do("GET", "/healthz", "", "", header{"X-Request-Id", "trace-123"})
	if r.Header.Get("X-Request-Id") != "trace-123" {
		t.Errorf("X-Request-Id = %q", r.Header.Get("X-Request-Id"))
	}
	assertCount(t, e, "all", "", 1)
}

func TestSettings(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := e.mustDo("GET", "/v1/settings", "read", "", 200)
	var s comms.Settings
	_ = json.Unmarshal(r.Data, &s)
	if s.Timezone != "UTC" || len(s.BusinessHours["mon"]) != 1 || s.BusinessHours["mon"][0] != [2]string{"09:00", "17:00"} || len(s.BusinessHours["sat"]) != 0 {
		t.Errorf("default settings = %s", r.Data)
	}
	put := `{"timezone":"Australia/Sydney","business_hours":{"mon":[["13:00","17:00"],["08:00","12:00"]],"tue":[["09:00","24:00"]],"sat":[]},"holidays":["2026-12-25","2027-01-26"],"sending_domains":["example.com"],"default_from_email":"team@example.com","default_from_name":"Example Team"}`
	r = e.mustDo("PUT", "/v1/settings", "all", put, 200)
	got := e.mustDo("GET", "/v1/settings", "read", "", 200)
	if string(got.Data) != string(r.Data) {
		t.Errorf("GET after PUT differs:\n%s\n%s", got.Data, r.Data)
	}
	_ = json.Unmarshal(got.Data, &s)
	if s.Timezone != "Australia/Sydney" || len(s.BusinessHours["wed"]) != 0 || len(s.BusinessHours["mon"]) != 2 || s.DefaultFromName != "Example Team" {
		t.Errorf("stored settings = %s", got.Data)
	}
	// Rows now use the Sydney hours: Saturday 10:00 in Sydney → Monday 08:00 in Sydney.
	sat := nextSaturday()
	syd, _ := time.LoadLocation("Australia/Sydney")
	from := time.Date(sat.Year(), sat.Month(), sat.Day(), 10, 0, 0, 0, syd).UTC()
	want0 := time.Date(sat.Year(), sat.Month(), sat.Day()+2, 8, 0, 0, 0, syd).UTC()
	row := e.mustDo("POST", "/v1/scheduled-communications", "all",
		strings.Replace(smsBody(from.Format(time.RFC3339)), `"channel":"sms"`, `"channel":"sms","respect_business_hours":true`, 1), 201).row(t)
	if row["next_attempt_at"] != want0.Format(time.RFC3339) {
		t.Errorf("next_attempt_at under Sydney hours = %v, want %v", row["next_attempt_at"], want0)
	}
	bad := `{"timezone":"Local","business_hours":{"mon":[["09:00","08:00"]],"tue":[["09:00","12:00"],["11:00","13:00"]],"funday":[],"wed":[["9am","5pm"]]},"holidays":["2026-13-01"],"default_from_email":"x","extra":1}`
	r = e.do("PUT", "/v1/settings", "all", bad)
	// Every problem at once: the shape's and the calendar's.
	want := []string{"business_hours.funday", "business_hours.mon[0]", "business_hours.tue[1]", "business_hours.wed[0][0]",
		"default_from_email", "extra", "holidays[0]", "timezone"}
	if r.Status != 422 || !slices.Equal(sorted(r.fields()), want) {
		t.Errorf("bad settings: %d %s", r.Status, r.Body)
	}
	r = e.do("PUT", "/v1/settings", "all", `{"timezone":"UTC","business_hours":{"mon":[["09:00","08:00"]],"tue":[["09:00","12:00"],["11:00","13:00"]],"wed":[["9am","5pm"]]},"holidays":["2026-13-01"]}`)
	want = []string{"business_hours.mon[0]", "business_hours.tue[1]", "business_hours.wed[0][0]", "holidays[0]"}
	if r.Status != 422 || !slices.Equal(sorted(r.fields()), want) {
		t.Errorf("bad intervals: %d %s", r.Status, r.Body)
	}
	r = e.do("PUT", "/v1/settings", "all", `{"timezone":"UTC","business_hours":{"tue":[["09:00","12:00"],["11:00","13:00"]]}}`)
	if r.Status != 422 || !slices.Equal(r.fields(), []string{"business_hours.tue[1]"}) ||
		r.Error.Details[0].Message != "09:00–12:00 overlaps 11:00–13:00 (business_hours.tue[0] and [1])" {
		t.Errorf("overlap: %d %s", r.Status, r.Body)
	}
	// Nothing of the refused documents was stored.
	if again := e.mustDo("GET", "/v1/settings", "read", "", 200); string(again.Data) != string(got.Data) {
		t.Errorf("a refused PUT changed the settings: %s", again.Data)
	}
}

func TestSenderResources(t *testing.T) {
	t.Parallel()
	e := setup(t)
	id := "8b8b8b8b-8b8b-4b8b-8b8b-8b8b8b8b8b8b"
	first := e.mustDo("PUT", "/v1/phone-numbers/"+id, "all", `{"e164":"+14155550100","capabilities":["sms"],"label":"SF"}`, 200).row(t)
	second := e.mustDo("PUT", "/v1/phone-numbers/"+id, "all", `{"e164":"+14155550101","capabilities":["sms","voice"]}`, 200).row(t)
	if second["created_at"] != first["created_at"] || second["e164"] != "+14155550101" || second["label"] != "" {
		t.Errorf("replace: %v", second)
	}
	list := e.mustDo("GET", "/v1/phone-numbers", "read", "", 200)
	var nums []map[string]any
	_ = json.Unmarshal(list.Data, &nums)
	if len(nums) != 2 {
		t.Errorf("listed %d numbers", len(nums))
	}
	r := e.do("PUT", "/v1/phone-numbers/"+id, "all", `{"e164":"0412","capabilities":["fax"],"label":5}`)
	if r.Status != 422 || !slices.Equal(sorted(r.fields()), []string{"capabilities[0]", "e164", "label"}) {
		t.Errorf("bad number: %d %s", r.Status, r.Body)
	}
	if r := e.do("PUT", "/v1/phone-numbers/pn-1", "all", `{"e164":"+14155550100","capabilities":["sms"]}`); r.Status != 422 || !slices.Equal(r.fields(), []string{"id"}) {
		t.Errorf("bad id: %d %s", r.Status, r.Body)
	}
	smsOnly := "9c9c9c9c-9c9c-4c9c-8c9c-9c9c9c9c9c9c"
	e.mustDo("PUT", "/v1/phone-numbers/"+smsOnly, "all", `{"e164":"+14155550102","capabilities":["sms"]}`, 200)
	r = e.do("PUT", "/v1/voice-agents/"+agentID, "all", `{"provider":"vapi","agent_id":"","phone_number_id":"`+smsOnly+`"}`)
	if r.Status != 422 || !slices.Equal(sorted(r.fields()), []string{"agent_id", "phone_number_id", "provider"}) {
		t.Errorf("bad agent: %d %s", r.Status, r.Body)
	}
	// Deleting a resource that rows use is allowed.
	e.mustDo("POST", "/v1/scheduled-communications", "all", voiceBody(at(time.Hour)), 201)
	if r := e.do("DELETE", "/v1/voice-agents/"+agentID, "all", ""); r.Status != http.StatusNoContent {
		t.Errorf("delete agent: %d %s", r.Status, r.Body)
	}
	if r := e.do("GET", "/v1/voice-agents/"+agentID, "all", ""); r.Status != 404 {
		t.Errorf("deleted agent: %d", r.Status)
	}
	if r := e.do("DELETE", "/v1/voice-agents/"+agentID, "all", ""); r.Status != 404 {
		t.Errorf("delete twice: %d", r.Status)
	}
}

func TestCancelByEvent(t *testing.T) {
	t.Parallel()
	e := setup(t)
	other := "4c4c4c4c-4c4c-4c4c-8c4c-4c4c4c4c4c4c"
	policy := `"cancel_policy":{"cancel_on":["contact_replied","deal_lost"]},`
	withPolicy := func(b string) string { return strings.Replace(b, `"channel"`, policy+`"channel"`, 1) }
	listening := []string{
		e.mustDo("POST", "/v1/scheduled-communications", "all", withPolicy(smsBody(at(time.Hour))), 201).row(t)["id"].(string),
		e.mustDo("POST", "/v1/scheduled-communications", "all", withPolicy(smsBody(at(2*time.Hour))), 201).row(t)["id"].(string),
	}
	deaf := e.mustDo("POST", "/v1/scheduled-communications", "all", smsBody(at(time.Hour)), 201).row(t)["id"].(string)
	otherContact := e.mustDo("POST", "/v1/scheduled-communications", "all", withPolicy(strings.ReplaceAll(smsBody(at(time.Hour)), contactID, other)), 201).row(t)["id"].(string)
	otherEvent := e.mustDo("POST", "/v1/scheduled-communications", "all",
		strings.Replace(smsBody(at(time.Hour)), `"channel"`, `"cancel_policy":{"cancel_on":["meeting_booked"]},"channel"`, 1), 201).row(t)["id"].(string)
	// emailBody has its own cancel_policy listening for contact_replied (a
	// second one would be a duplicate key).
	foreign := e.mustDo("POST", "/v1/scheduled-communications", "other", otherEmailBody(at(time.Hour)), 201).row(t)["id"].(string)

	r := e.mustDo("POST", "/v1/scheduled-communications/cancel-by-event", "all", `{"event":"contact_replied","contact_id":"`+contactID+`"}`, 200)
	var res struct {
		Event     string   `json:"event"`
		Cancelled []string `json:"cancelled"`
	}
	_ = json.Unmarshal(r.Data, &res)
	if res.Event != "contact_replied" || !slices.Equal(res.Cancelled, listening) {
		t.Errorf("cancelled %v, want %v", res.Cancelled, listening)
	}
	for id, want := range map[string]string{listening[0]: "cancelled", listening[1]: "cancelled", deaf: "pending", otherContact: "pending", otherEvent: "pending"} {
		if got := e.mustDo("GET", "/v1/scheduled-communications/"+id, "all", "", 200).row(t)["status"]; got != want {
			t.Errorf("row %s is %v, want %s", id, got, want)
		}
	}
	if got := e.mustDo("GET", "/v1/scheduled-communications/"+foreign, "other", "", 200).row(t)["status"]; got != "pending" {
		t.Errorf("another company's row was cancelled")
	}
	// Again: nothing left to cancel.
	r = e.mustDo("POST", "/v1/scheduled-communications/cancel-by-event", "all", `{"event":"contact_replied","contact_id":"`+contactID+`"}`, 200)
	var again struct {
		Event     string
		Cancelled []string
		Recorded  struct {
			Event    string
			EntityID string `json:"entity_id"`
			Kept     bool   `json:"kept_for_later_steps"`
		}
	}
	if err := json.Unmarshal(r.Data, &again); err != nil || again.Event != "contact_replied" || again.Cancelled == nil ||
		len(again.Cancelled) != 0 || again.Recorded.Event != "contact_replied" || again.Recorded.EntityID != contactID || !again.Recorded.Kept {
		t.Errorf("second call: %s (%v): want nothing cancelled and the event kept", r.Data, err)
	}
	// Exactly one entity, a valid event name.
	for body, fields := range map[string][]string{
		`{"event":"contact_replied"}`: {"body"},
		`{"event":"contact_replied","contact_id":"` + contactID + `","deal_id":"` + dealID + `"}`: {"body"},
		`{"event":"Bad Event!","deal_id":"` + dealID + `"}`:                                       {"event"},
		`{"contact_id":"x"}`: {"contact_id", "event"},
	} {
		e.validate = false // these bodies break the request schema on purpose
		r := e.do("POST", "/v1/scheduled-communications/cancel-by-event", "all", body)
		e.validate = true
		if r.Status != 422 || !slices.Equal(sorted(r.fields()), fields) {
			t.Errorf("%s: %d %s", body, r.Status, r.Body)
		}
	}
	if r := e.do("POST", "/v1/scheduled-communications/cancel-by-event", "read", `{"event":"x","deal_id":"`+dealID+`"}`); r.Status != 403 {
		t.Errorf("read key: %d", r.Status)
	}
}
