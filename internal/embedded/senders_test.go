package embedded_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/clock"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
)

// TestAnySendingDomainInDevMode: make dev verifies no domain with SES, so
// any domain may be declared; an email from it is delivered from that
// address, and one from an undeclared domain is refused at create.
func TestAnySendingDomainInDevMode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clk := clock.NewFake(base)
	n := startNode(t, dir, dispatch.Config{}, clk)
	defer n.stop()
	do := func(method, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+n.key)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		n.l.API.ServeHTTP(rec, req)
		return rec
	}
	if rec := do("PUT", "/v1/settings", `{"timezone":"UTC","sending_domains":["never-verified.example","bücher.de"],"default_from_email":"team@never-verified.example"}`); rec.Code != 200 {
		t.Fatalf("PUT settings: %d %s", rec.Code, rec.Body)
	}
	email := func(from string) string {
		return `{"channel":"email","scheduled_for":"` + base.Format(time.RFC3339) + `","payload":{"to_email":"sarah@example.com","from_email":"` + from + `","subject":"Hi","html_body":"<p>Hi</p>"}}`
	}
	if rec := do("POST", "/v1/scheduled-communications", email("alex@example.org")); rec.Code != 422 || !strings.Contains(rec.Body.String(), `"field":"payload.from_email"`) {
		t.Errorf("undeclared domain: %d %s", rec.Code, rec.Body)
	}
	id := n.create(t, email("alex@sales.bücher.de"))
	n.waitRow(t, id, "sent", func(r comms.Communication) bool { return r.Status == comms.StatusSent })
	lines := outbox(t, dir)[id]
	if len(lines) != 1 || !strings.HasPrefix(lines[0].From, "alex@sales.") {
		t.Errorf("outbox = %+v, want one delivery from alex@sales.bücher.de", lines)
	}
}

// TestTheDeploymentsOwnDomainIsReserved: the domain of the default From
// address (mail that names no from_email is sent from it) cannot be
// declared by a company, nor can a parent or a subdomain of it: a tenant
// would otherwise send as anyone at the platform's domain and lock every
// other tenant out of it. The refusal is a 422 naming the field.
func TestTheDeploymentsOwnDomainIsReserved(t *testing.T) {
	t.Parallel()
	c, _, _ := startProduct(t)
	for _, domains := range []string{`["dispatcher.local"]`, `["example.com","Mail.Dispatcher.Local"]`} {
		res := c.do("PUT", "/v1/settings", `{"timezone":"UTC","sending_domains":`+domains+`}`, 422)
		details := res["error"].(map[string]any)["details"].([]any)
		want := "sending_domains[0]"
		if strings.HasPrefix(domains, `["example.com"`) {
			want = "sending_domains[1]"
		}
		if len(details) != 1 || details[0].(map[string]any)["field"] != want {
			t.Fatalf("%s: details %v, want one naming %s", domains, details, want)
		}
	}
	c.do("PUT", "/v1/settings", `{"timezone":"UTC","sending_domains":["example.com"]}`, 200)
}
