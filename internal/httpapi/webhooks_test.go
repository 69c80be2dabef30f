package httpapi_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var secretRE = regexp.MustCompile(`^whsec_[A-Za-z0-9+/]{43}=$`)

// endpoint decodes the data of a response as a webhook endpoint.
func endpoint(t *testing.T, r *resp) map[string]any {
	t.Helper()
	return r.row(t)
}

type secrets struct {
	EndpointID string `json:"endpoint_id"`
	Secrets    []struct {
		Secret    string  `json:"secret"`
		CreatedAt string  `json:"created_at"`
		ExpiresAt *string `json:"expires_at"`
	} `json:"secrets"`
}

func secretsOf(t *testing.T, r *resp) secrets {
	t.Helper()
	var s secrets
	if err := json.Unmarshal(r.Data, &s); err != nil {
		t.Fatalf("secrets: %v: %s", err, r.Body)
	}
	return s
}

func TestWebhookEndpointLifecycle(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := e.mustDo("POST", "/v1/webhook-endpoints", "write",
		`{"url":"https://crm.example.com/hooks","event_types":["sent","failed"],"description":"CRM timeline"}`, 201)
	created := endpoint(t, r)
	id := created["id"].(string)
	secret, _ := created["secret"].(string)
	if !secretRE.MatchString(secret) {
		t.Fatalf("the create shows secret %q, want whsec_ + base64 of 32 bytes", secret)
	}
	if r.Header.Get("Location") != "/v1/webhook-endpoints/"+id {
		t.Errorf("Location = %q", r.Header.Get("Location"))
	}
	if created["url"] != "https://crm.example.com/hooks" || created["description"] != "CRM timeline" ||
		created["disabled"] != false || created["disabled_reason"] != nil || created["secret_prefix"] != secret[:10]+"…" {
		t.Errorf("created = %s", r.Data)
	}

	// Reads show no secret, to read-only keys and to writers alike.
	for _, key := range []string{"read", "write"} {
		got := e.mustDo("GET", "/v1/webhook-endpoints/"+id, key, "", 200)
		if strings.Contains(string(got.Body), secret) || strings.Contains(string(got.Body), `"secret"`) {
			t.Errorf("GET as %s shows the secret: %s", key, got.Body)
		}
		list := e.mustDo("GET", "/v1/webhook-endpoints", key, "", 200)
		if strings.Contains(string(list.Body), secret) || !strings.Contains(string(list.Body), id) {
			t.Errorf("list as %s: %s", key, list.Body)
		}
	}
	s := secretsOf(t, e.mustDo("GET", "/v1/webhook-endpoints/"+id+"/secret", "write", "", 200))
	if s.EndpointID != id || len(s.Secrets) != 1 || s.Secrets[0].Secret != secret || s.Secrets[0].ExpiresAt != nil {
		t.Errorf("secret route = %+v", s)
	}

	// PATCH: disable, then enable with a new filter and URL.
	p := endpoint(t, e.mustDo("PATCH", "/v1/webhook-endpoints/"+id, "write", `{"disabled":true}`, 200))
	if p["disabled"] != true || p["disabled_reason"] != "manual" {
		t.Errorf("disabled: %v", p)
	}
	p = endpoint(t, e.mustDo("PATCH", "/v1/webhook-endpoints/"+id, "write",
		`{"disabled":false,"event_types":null,"description":null,"url":"https://crm.example.com/v2"}`, 200))
	if p["disabled"] != false || p["disabled_reason"] != nil || len(p["event_types"].([]any)) != 0 ||
		p["description"] != nil || p["url"] != "https://crm.example.com/v2" {
		t.Errorf("re-enabled: %v", p)
	}

	// DELETE, then it is gone.
	r = e.mustDo("DELETE", "/v1/webhook-endpoints/"+id, "write", "", 204)
	if len(r.Body) != 0 {
		t.Errorf("204 with a body: %s", r.Body)
	}
	e.mustDo("GET", "/v1/webhook-endpoints/"+id, "read", "", 404)
	e.mustDo("DELETE", "/v1/webhook-endpoints/"+id, "write", "", 404)
}

func TestWebhookSecretRotation(t *testing.T) {
	t.Parallel()
	e := setup(t)
	created := endpoint(t, e.mustDo("POST", "/v1/webhook-endpoints", "write", `{"url":"https://crm.example.com/hooks"}`, 201))
	id, old := created["id"].(string), created["secret"].(string)

	e.clock.Advance(time.Hour)
	rotated := secretsOf(t, e.mustDo("POST", "/v1/webhook-endpoints/"+id+"/rotate-secret", "write", "", 200))
	if len(rotated.Secrets) != 2 {
		t.Fatalf("after rotation: %+v, want the new and the old secret", rotated)
	}
	fresh := rotated.Secrets[0].Secret
	until := testNow.Add(time.Hour + 24*time.Hour).Format(time.RFC3339)
	if !secretRE.MatchString(fresh) || fresh == old || rotated.Secrets[0].ExpiresAt != nil ||
		rotated.Secrets[1].Secret != old || rotated.Secrets[1].ExpiresAt == nil || *rotated.Secrets[1].ExpiresAt != until {
		t.Errorf("after rotation: %+v; want the new secret current and the old until %s", rotated, until)
	}
	got := endpoint(t, e.mustDo("GET", "/v1/webhook-endpoints/"+id, "read", "", 200))
	if got["secret_prefix"] != fresh[:10]+"…" {
		t.Errorf("secret_prefix %v, want the new secret's", got["secret_prefix"])
	}

	// Both sign for 24 hours, then the new one alone.
	e.clock.Advance(24*time.Hour - time.Second)
	if s := secretsOf(t, e.mustDo("GET", "/v1/webhook-endpoints/"+id+"/secret", "write", "", 200)); len(s.Secrets) != 2 {
		t.Errorf("a second before the 24 hours end: %d secrets, want 2", len(s.Secrets))
	}
	e.clock.Advance(time.Second)
	s := secretsOf(t, e.mustDo("GET", "/v1/webhook-endpoints/"+id+"/secret", "write", "", 200))
	if len(s.Secrets) != 1 || s.Secrets[0].Secret != fresh {
		t.Errorf("after 24 hours: %+v, want the new secret alone", s)
	}
}

func TestWebhookEndpointRefusals(t *testing.T) {
	t.Parallel()
	e := setup(t)
	for _, tc := range []struct {
		name, body, field, says string
	}{
		{"http", `{"url":"http://crm.example.com/hooks"}`, "url", "https"},
		{"relative", `{"url":"/hooks"}`, "url", "absolute"},
		{"credentials", `{"url":"https://user:pw@crm.example.com/"}`, "url", "password"},
		{"no url", `{"description":"x"}`, "url", "required"},
		{"unknown event type", `{"url":"https://crm.example.com/","event_types":["sent","opened"]}`, "event_types[1]", "not an event type"},
		{"event types not a list", `{"url":"https://crm.example.com/","event_types":"*"}`, "event_types", "array"},
		{"unknown field", `{"url":"https://crm.example.com/","secret":"whsec_mine"}`, "secret", "not a known field"},
		{"long description", `{"url":"https://crm.example.com/","description":"` + strings.Repeat("é", 501) + `"}`, "description", "at most 500"},
	} {
		r := e.mustDo("POST", "/v1/webhook-endpoints", "write", tc.body, 422)
		if r.Error.Code != "validation_failed" || !slices.Contains(r.fields(), tc.field) || !strings.Contains(string(r.Body), tc.says) {
			t.Errorf("%s: %s; want %s refused, saying %q", tc.name, r.Body, tc.field, tc.says)
		}
	}
	id := endpoint(t, e.mustDo("POST", "/v1/webhook-endpoints", "write", `{"url":"https://crm.example.com/"}`, 201))["id"].(string)
	for body, field := range map[string]string{
		`{"url":"ftp://crm.example.com/"}`: "url",
		`{"url":null}`:                     "url",
		`{"disabled":"yes"}`:               "disabled",
		`{"event_types":["nope"]}`:         "event_types[0]",
		`{"id":"x"}`:                       "id",
	} {
		r := e.mustDo("PATCH", "/v1/webhook-endpoints/"+id, "write", body, 422)
		if !slices.Contains(r.fields(), field) {
			t.Errorf("PATCH %s: %s; want %s refused", body, r.Body, field)
		}
	}
	e.mustDo("POST", "/v1/webhook-endpoints", "write", `{"url":`, 400)
	e.mustDo("GET", "/v1/webhook-endpoints?cursor=abc", "read", "", 422)
	e.mustDo("GET", "/v1/webhook-endpoints?limit=101", "read", "", 422)
	e.mustDo("GET", "/v1/webhook-endpoints/not-a-uuid", "read", "", 404)
}

func TestWebhookEndpointsAreTheCompanys(t *testing.T) {
	t.Parallel()
	e := setup(t)
	id := endpoint(t, e.mustDo("POST", "/v1/webhook-endpoints", "all", `{"url":"https://crm.example.com/"}`, 201))["id"].(string)
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/v1/webhook-endpoints/" + id, ""},
		{"PATCH", "/v1/webhook-endpoints/" + id, `{"disabled":true}`},
		{"GET", "/v1/webhook-endpoints/" + id + "/secret", ""},
		{"POST", "/v1/webhook-endpoints/" + id + "/rotate-secret", ""},
		{"DELETE", "/v1/webhook-endpoints/" + id, ""},
	} {
		if r := e.do(tc.method, tc.path, "other", tc.body); r.Status != 404 || r.Error.Code != "not_found" {
			t.Errorf("%s %s as another company: %d %s", tc.method, tc.path, r.Status, r.Body)
		}
	}
	if r := e.mustDo("GET", "/v1/webhook-endpoints", "other", "", 200); string(r.Data) != "[]" {
		t.Errorf("another company lists %s", r.Data)
	}
	e.mustDo("GET", "/v1/webhook-endpoints/"+id, "read", "", 200) // still there
}

func TestWebhookEndpointScopes(t *testing.T) {
	t.Parallel()
	e := setup(t)
	id := endpoint(t, e.mustDo("POST", "/v1/webhook-endpoints", "write", `{"url":"https://crm.example.com/"}`, 201))["id"].(string)
	for _, tc := range []struct {
		key, method, path, body string
		want                    int
	}{
		{"read", "POST", "/v1/webhook-endpoints", `{"url":"https://crm.example.com/"}`, 403},
		{"read", "GET", "/v1/webhook-endpoints", "", 200},
		{"read", "GET", "/v1/webhook-endpoints/" + id, "", 200},
		{"read", "PATCH", "/v1/webhook-endpoints/" + id, `{"disabled":true}`, 403},
		// A read-only key does not get the signing secrets.
		{"read", "GET", "/v1/webhook-endpoints/" + id + "/secret", "", 403},
		{"read", "POST", "/v1/webhook-endpoints/" + id + "/rotate-secret", "", 403},
		{"read", "DELETE", "/v1/webhook-endpoints/" + id, "", 403},
		{"emailonly", "GET", "/v1/webhook-endpoints/" + id + "/secret", "", 200},
		{"sendnowrite", "GET", "/v1/webhook-endpoints/" + id + "/secret", "", 403},
		{"write", "GET", "/v1/webhook-endpoints", "", 200},
	} {
		r := e.do(tc.method, tc.path, tc.key, tc.body)
		if r.Status != tc.want {
			t.Errorf("%s %s as %s: %d, want %d: %s", tc.method, tc.path, tc.key, r.Status, tc.want, r.Body)
		}
		if tc.want == 403 && (r.Error.Code != "insufficient_scope" || !strings.Contains(r.Error.Message, "dispatcher:write")) {
			t.Errorf("403 body = %s", r.Body)
		}
	}
}

func TestWebhookEndpointLimitAndPaging(t *testing.T) {
	t.Parallel()
	e := setup(t)
	var ids []string
	for i := range 20 {
		r := e.mustDo("POST", "/v1/webhook-endpoints", "write", fmt.Sprintf(`{"url":"https://crm.example.com/%d"}`, i), 201)
		ids = append(ids, endpoint(t, r)["id"].(string))
	}
	r := e.mustDo("POST", "/v1/webhook-endpoints", "write", `{"url":"https://crm.example.com/21"}`, 409)
	if r.Error.Code != "too_many_webhook_endpoints" {
		t.Errorf("21st endpoint: %s", r.Body)
	}
	slices.Sort(ids)
	var got []string
	cursor := ""
	for range 5 {
		path := "/v1/webhook-endpoints?limit=8"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		page := e.mustDo("GET", path, "read", "", 200)
		var list []map[string]any
		if err := json.Unmarshal(page.Data, &list); err != nil {
			t.Fatal(err)
		}
		for _, ep := range list {
			got = append(got, ep["id"].(string))
		}
		next, _ := page.Meta["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if !slices.Equal(got, ids) {
		t.Errorf("paged ids\n%v\nwant\n%v", got, ids)
	}
	// Deleting one makes room again.
	e.mustDo("DELETE", "/v1/webhook-endpoints/"+ids[0], "write", "", 204)
	e.mustDo("POST", "/v1/webhook-endpoints", "write", `{"url":"https://crm.example.com/21"}`, 201)
}
