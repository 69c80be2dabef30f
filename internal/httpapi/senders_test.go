package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/auth"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/httpapi"
	"github.com/dispatcherhq/dispatcher/internal/scheduling"
	"github.com/dispatcherhq/dispatcher/internal/store/sqlite"
)

// companyState reads a company's stored settings and balance.
func (e *env) companyState(id string) (comms.Settings, int64) {
	e.t.Helper()
	co, err := e.store.GetCompany(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return co.Settings.WithDefaults(), co.Credits
}

// freshCompany creates a company with its own key. The seeded companies
// give up their sending domains (example.com, example.org) first, so that
// the fresh one may declare them: a domain belongs to one company.
func (e *env) freshCompany(id string) {
	e.t.Helper()
	for _, seeded := range []string{"all", "other"} {
		e.mustDo("PUT", "/v1/settings", seeded, `{"timezone":"UTC"}`, 200)
	}
	e.company(id, 10)
	e.keys[id] = e.key(id, "dispatcher:read,dispatcher:write,email:send")
}

// withFrom is an email create body sending from addr.
func withFrom(addr string) string {
	return `{"channel":"email","scheduled_for":"` + at(time.Hour) + `","payload":{"to_email":"sarah@example.com","from_email":"` + addr + `","subject":"Hi","html_body":"<p>Hi</p>"}}`
}

func withoutFrom() string {
	return `{"channel":"email","scheduled_for":"` + at(time.Hour) + `","payload":{"to_email":"sarah@example.com","subject":"Hi","html_body":"<p>Hi</p>"}}`
}

// TestSendingDomainsInSettings: the list is returned (empty by default),
// stored in ASCII form, and its entries are checked one by one.
func TestSendingDomainsInSettings(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.freshCompany("fresh")
	var s comms.Settings
	_ = json.Unmarshal(e.mustDo("GET", "/v1/settings", "fresh", "", 200).Data, &s)
	if s.SendingDomains == nil || len(s.SendingDomains) != 0 {
		t.Errorf("default sending_domains = %#v, want []", s.SendingDomains)
	}
	if !strings.Contains(string(e.mustDo("GET", "/v1/settings", "fresh", "", 200).Data), `"sending_domains":[]`) {
		t.Error("GET settings does not show sending_domains: []")
	}

	// IDNA: stored and returned in ASCII, lower-case.
	r := e.mustDo("PUT", "/v1/settings", "fresh", `{"timezone":"UTC","sending_domains":["Example.COM","bücher.de","mail.example.org"]}`, 200)
	_ = json.Unmarshal(r.Data, &s)
	if want := []string{"example.com", "xn--bcher-kva.de", "mail.example.org"}; !slices.Equal(s.SendingDomains, want) {
		t.Errorf("sending_domains = %v, want %v", s.SendingDomains, want)
	}
	if got, _ := e.companyState("fresh"); !slices.Equal(got.SendingDomains, s.SendingDomains) {
		t.Errorf("stored %v, returned %v", got.SendingDomains, s.SendingDomains)
	}

	for _, tc := range []struct {
		body   string
		fields []string
	}{
		{`{"timezone":"UTC","sending_domains":["bücher.de","XN--BCHER-KVA.de"]}`, []string{"sending_domains[1]"}}, // a repeat once converted
		{`{"timezone":"UTC","sending_domains":["example.com","exa_mple.com","a@example.com","localhost","example.com.",""]}`,
			[]string{"sending_domains[1]", "sending_domains[2]", "sending_domains[3]", "sending_domains[4]", "sending_domains[5]"}},
		{`{"timezone":"UTC","sending_domains":[1]}`, []string{"sending_domains[0]"}},
		{`{"timezone":"UTC","sending_domains":"example.com"}`, []string{"sending_domains"}},
		{`{"timezone":"UTC","sending_domains":[` + strings.Repeat(`"a.example",`, comms.MaxSendingDomains) + `"b.example"]}`, []string{"sending_domains"}},
	} {
		r := e.do("PUT", "/v1/settings", "fresh", tc.body)
		if r.Status != 422 || !slices.Equal(r.fields(), tc.fields) {
			t.Errorf("%.80s: %d %s, want 422 naming %v", tc.body, r.Status, r.Body, tc.fields)
		}
	}
	if got, _ := e.companyState("fresh"); !slices.Equal(got.SendingDomains, s.SendingDomains) {
		t.Errorf("a refused PUT changed the settings: %v", got.SendingDomains)
	}
	// MaxSendingDomains distinct domains are fine.
	var hundred []string
	for i := range comms.MaxSendingDomains {
		hundred = append(hundred, `"d`+strings.Repeat("x", i%5)+string(rune('a'+i/26%26))+string(rune('a'+i%26))+`.example"`)
	}
	e.mustDo("PUT", "/v1/settings", "fresh", `{"timezone":"UTC","sending_domains":[`+strings.Join(hundred, ",")+`]}`, 200)
}

// TestDefaultFromEmailNeedsASendingDomain: default_from_email must be at
// a declared domain or a subdomain of one; a PUT that drops the domain it
// uses is refused on default_from_email.
func TestDefaultFromEmailNeedsASendingDomain(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.freshCompany("fresh")
	put := func(domains, from string) *resp {
		return e.do("PUT", "/v1/settings", "fresh", `{"timezone":"UTC","sending_domains":`+domains+`,"default_from_email":"`+from+`"}`)
	}
	for _, tc := range []struct {
		domains, from string
		ok            bool
		says          string
	}{
		{`[]`, "team@example.com", false, "domain example.com is not one of the company's sending_domains (settings.sending_domains): none is declared"},
		{`["example.org"]`, "team@example.com", false, "domain example.com is not one of the company's sending_domains (settings.sending_domains), nor a subdomain of one"},
		{`["mail.example.com"]`, "team@example.com", false, "not one of"}, // a parent of a declared domain is not covered
		{`["example.com"]`, "team@notexample.com", false, "not one of"},   // a suffix is not a subdomain
		{`["example.com"]`, "team@example.com", true, ""},
		{`["example.com"]`, "team@mail.example.com", true, ""}, // a subdomain of a declared domain
		{`["bücher.de"]`, "team@BÜCHER.de", true, ""},          // compared in ASCII form
		{`["xn--bcher-kva.de"]`, "team@bücher.de", true, ""},
	} {
		r := put(tc.domains, tc.from)
		switch {
		case tc.ok && r.Status != 200:
			t.Errorf("%s with %s: %d %s, want 200", tc.from, tc.domains, r.Status, r.Body)
		case !tc.ok && (r.Status != 422 || !slices.Equal(r.fields(), []string{"default_from_email"}) || !strings.Contains(r.Error.Details[0].Message, tc.says)):
			t.Errorf("%s with %s: %d %s, want 422 on default_from_email saying %q", tc.from, tc.domains, r.Status, r.Body, tc.says)
		}
	}
	// Removing the domain the default sender uses is refused, and the
	// stored settings stay as they were.
	e.mustDo("PUT", "/v1/settings", "fresh", `{"timezone":"UTC","sending_domains":["example.com","example.org"],"default_from_email":"team@example.com"}`, 200)
	r := e.do("PUT", "/v1/settings", "fresh", `{"timezone":"UTC","sending_domains":["example.org"],"default_from_email":"team@example.com"}`)
	if r.Status != 422 || !slices.Equal(r.fields(), []string{"default_from_email"}) {
		t.Errorf("dropping the default sender's domain: %d %s", r.Status, r.Body)
	}
	if s, _ := e.companyState("fresh"); !slices.Equal(s.SendingDomains, []string{"example.com", "example.org"}) || s.DefaultFromEmail != "team@example.com" {
		t.Errorf("a refused PUT changed the settings: %+v", s)
	}
	// A bad domain is reported on its own, not again on default_from_email.
	r = put(`["exa_mple.com"]`, "team@example.com")
	if r.Status != 422 || !slices.Equal(r.fields(), []string{"sending_domains[0]"}) {
		t.Errorf("bad domain and a default sender: %d %s", r.Status, r.Body)
	}
}

// TestFromEmailNeedsASendingDomain: a create or PATCH sending from a domain
// the company has not declared is a 422 on payload.from_email that stores
// nothing and costs nothing; rows without from_email are unaffected.
func TestFromEmailNeedsASendingDomain(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.freshCompany("fresh")
	rows := func() int {
		var list []json.RawMessage
		_ = json.Unmarshal(e.mustDo("GET", "/v1/scheduled-communications", "fresh", "", 200).Data, &list)
		return len(list)
	}
	refused := func(body, says string) {
		t.Helper()
		_, before := e.companyState("fresh")
		n := rows()
		r := e.do("POST", "/v1/scheduled-communications", "fresh", body)
		if r.Status != 422 || !slices.Equal(r.fields(), []string{"payload.from_email"}) || !strings.Contains(r.Error.Details[0].Message, says) {
			t.Errorf("create: %d %s, want 422 on payload.from_email saying %q", r.Status, r.Body, says)
		}
		if _, after := e.companyState("fresh"); after != before || rows() != n {
			t.Errorf("a refused create stored a row or took a credit: %d → %d credits, %d → %d rows", before, after, n, rows())
		}
	}

	// No domain declared: a from_email is refused, and says to declare it.
	refused(withFrom("alex@example.com"), "domain example.com is not one of the company's sending_domains (settings.sending_domains): none is declared; declare a domain of the company's own in settings.sending_domains first, or leave from_email out to send from the deployment's default address")
	// Without from_email the row uses default_from_email or the deployment's sender: accepted.
	e.mustDo("POST", "/v1/scheduled-communications", "fresh", withoutFrom(), 201)

	e.mustDo("PUT", "/v1/settings", "fresh", `{"timezone":"UTC","sending_domains":["example.com","bücher.de"]}`, 200)
	refused(withFrom("alex@example.org"), "domain example.org is not one of the company's sending_domains (settings.sending_domains)")
	refused(withFrom("alex@notexample.com"), "domain notexample.com is not one of")
	for _, from := range []string{"alex@example.com", "alex@mail.example.com", "alex@EXAMPLE.com", "alex@bücher.de", "alex@xn--bcher-kva.de"} {
		if r := e.do("POST", "/v1/scheduled-communications", "fresh", withFrom(from)); r.Status != 201 {
			t.Errorf("from %s: %d %s", from, r.Status, r.Body)
		}
	}

	// PATCH: the merged row is checked like a create.
	id, _ := e.mustDo("POST", "/v1/scheduled-communications", "fresh", withFrom("alex@example.com"), 201).row(t)["id"].(string)
	before := e.mustDo("GET", "/v1/scheduled-communications/"+id, "fresh", "", 200).Data
	_, credits := e.companyState("fresh")
	r := e.do("PATCH", "/v1/scheduled-communications/"+id, "fresh", `{"payload":{"from_email":"alex@example.org"}}`)
	if r.Status != 422 || !slices.Equal(r.fields(), []string{"payload.from_email"}) || !strings.Contains(r.Error.Details[0].Message, "domain example.org is not one of the company's sending_domains") {
		t.Errorf("patch to an undeclared domain: %d %s", r.Status, r.Body)
	}
	if after := e.mustDo("GET", "/v1/scheduled-communications/"+id, "fresh", "", 200).Data; string(after) != string(before) {
		t.Errorf("a refused PATCH changed the row:\n%s\n%s", before, after)
	}
	if _, c := e.companyState("fresh"); c != credits {
		t.Errorf("a refused PATCH took a credit: %d → %d", credits, c)
	}
	e.mustDo("PATCH", "/v1/scheduled-communications/"+id, "fresh", `{"payload":{"from_email":"sales@mail.example.com"}}`, 200)
	// Removing the from_email is always allowed.
	e.mustDo("PATCH", "/v1/scheduled-communications/"+id, "fresh", `{"payload":{"from_email":null}}`, 200)
}

// TestSendingDomainsVerified: every declared domain must be one the
// deployment may send from (on AWS a verified SES identity); an unverified
// one is a 422 naming it, a verifier that cannot answer a 503, and neither
// saves anything.
func TestSendingDomainsVerified(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.freshCompany("fresh")
	e.mustDo("PUT", "/v1/settings", "fresh", `{"timezone":"UTC","sending_domains":["example.com"]}`, 200)

	e.ids.set([]string{"example.net", "xn--bcher-kva.de"}, nil)
	r := e.do("PUT", "/v1/settings", "fresh", `{"timezone":"UTC","sending_domains":["example.com","example.net","bücher.de"]}`)
	if r.Status != 422 || !slices.Equal(r.fields(), []string{"sending_domains[1]", "sending_domains[2]"}) {
		t.Fatalf("unverified domains: %d %s", r.Status, r.Body)
	}
	if got, want := r.Error.Details[0].Message, "domain example.net is not a verified SES identity in this account; verify it (docs/deploy.md)"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	if s, _ := e.companyState("fresh"); !slices.Equal(s.SendingDomains, []string{"example.com"}) {
		t.Errorf("a refused PUT changed the settings: %v", s.SendingDomains)
	}

	e.ids.set(nil, errors.New("sesv2.GetEmailIdentity: ServiceUnavailable"))
	r = e.do("PUT", "/v1/settings", "fresh", `{"timezone":"UTC","sending_domains":["example.com","example.org"]}`)
	if r.Status != 503 || r.Error.Code != "provider_unavailable" || r.Header.Get("Retry-After") == "" || strings.Contains(string(r.Body), "sesv2") {
		t.Errorf("SES unavailable: %d %v %s", r.Status, r.Header, r.Body)
	}
	if s, _ := e.companyState("fresh"); !slices.Equal(s.SendingDomains, []string{"example.com"}) {
		t.Errorf("a PUT answered 503 changed the settings: %v", s.SendingDomains)
	}
	// A document without sending domains needs no verifier.
	e.mustDo("PUT", "/v1/settings", "fresh", `{"timezone":"Europe/London"}`, 200)
	e.ids.set(nil, nil)
}

// takenStore is a hand-written store whose PutPhoneNumber refuses one
// number as registered elsewhere, as the stores do for a number held by
// another resource (of this or another company).
type takenStore struct {
	*sqlite.Store
	taken string
}

func (s takenStore) PutPhoneNumber(ctx context.Context, pn comms.PhoneNumber) error {
	if pn.E164 == s.taken {
		return comms.ErrPhoneNumberTaken
	}
	return s.Store.PutPhoneNumber(ctx, pn)
}

// TestPhoneNumberTaken: a number registered under another resource is a
// 409 phone_number_taken that does not say who holds it.
func TestPhoneNumberTaken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc := scheduling.NewService(takenStore{Store: store, taken: "+61412345679"}, scheduling.WithClock(func() time.Time { return testNow }))
	e := &env{t: t, api: httpapi.New(svc, auth.NewAuthenticator(store), discard()), store: store, keys: map[string]string{}, validate: true}
	e.company("acme", 10)
	e.keys["all"] = e.key("acme", "dispatcher:read,dispatcher:write")
	r := e.do("PUT", "/v1/phone-numbers/"+phoneID, "all", `{"e164":"+61412345679","capabilities":["sms"]}`)
	if r.Status != 409 || r.Error.Code != "phone_number_taken" || !slices.Equal(r.fields(), []string{"e164"}) {
		t.Fatalf("taken number: %d %s, want 409 phone_number_taken naming e164", r.Status, r.Body)
	}
	for _, leak := range []string{"acme", "company", phoneID} {
		if strings.Contains(r.Error.Message, leak) {
			t.Errorf("the message reveals %q: %s", leak, r.Error.Message)
		}
	}
	e.mustDo("GET", "/v1/phone-numbers/"+phoneID, "all", "", 404)
	e.mustDo("PUT", "/v1/phone-numbers/"+phoneID, "all", `{"e164":"+61412345678","capabilities":["sms"]}`, 200)
}

// TestSendingDomainTaken: a sending domain belongs to one company with its
// subdomains. Another company declaring it, a parent or a subdomain of it
// gets a 409 sending_domain_taken naming sending_domains[i] (and not the
// company that holds it), and nothing is saved; removing it releases it.
func TestSendingDomainTaken(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.freshCompany("dev2")
	e.freshCompany("acme2")
	e.mustDo("PUT", "/v1/settings", "dev2", `{"timezone":"UTC","sending_domains":["example.com"],"default_from_email":"team@example.com"}`, 200)
	e.mustDo("PUT", "/v1/settings", "acme2", `{"timezone":"Europe/Paris","sending_domains":["acme.example.org"]}`, 200)
	for _, tc := range []struct {
		domains string
		fields  []string
	}{
		{`["example.com"]`, []string{"sending_domains[0]"}},
		{`["acme.example.org","mail.example.com"]`, []string{"sending_domains[1]"}},
		{`["www.example.com","Example.COM","example.org"]`, []string{"sending_domains[0]", "sending_domains[1]"}},
	} {
		r := e.do("PUT", "/v1/settings", "acme2", `{"timezone":"UTC","sending_domains":`+tc.domains+`}`)
		if r.Status != 409 || r.Error.Code != "sending_domain_taken" || !slices.Equal(r.fields(), tc.fields) {
			t.Errorf("%s: %d %s, want 409 sending_domain_taken naming %v", tc.domains, r.Status, r.Body, tc.fields)
			continue
		}
		if strings.Contains(string(r.Body), "dev2") {
			t.Errorf("the refusal names the company holding the domain: %s", r.Body)
		}
	}
	if s, _ := e.companyState("acme2"); s.Timezone != "Europe/Paris" || !slices.Equal(s.SendingDomains, []string{"acme.example.org"}) {
		t.Errorf("a refused PUT changed the settings: %+v", s)
	}
	// acme cannot send as example.com.
	if r := e.do("POST", "/v1/scheduled-communications", "acme2", withFrom("alex@example.com")); r.Status != 422 {
		t.Errorf("acme sending from example.com: %d %s, want 422", r.Status, r.Body)
	}
	// dev2 drops it: acme may now declare a subdomain of it.
	e.mustDo("PUT", "/v1/settings", "dev2", `{"timezone":"UTC","sending_domains":["example.net"]}`, 200)
	e.mustDo("PUT", "/v1/settings", "acme2", `{"timezone":"UTC","sending_domains":["mail.example.com"]}`, 200)
	if r := e.do("PUT", "/v1/settings", "dev2", `{"timezone":"UTC","sending_domains":["example.com"]}`); r.Status != 409 {
		t.Errorf("dev2 re-declaring the parent of acme's domain: %d %s, want 409", r.Status, r.Body)
	}
}
