package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/auth"
	"github.com/dispatcherhq/dispatcher/internal/clock"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/httpapi"
	"github.com/dispatcherhq/dispatcher/internal/scheduling"
	"github.com/dispatcherhq/dispatcher/internal/store/sqlite"
	"github.com/dispatcherhq/dispatcher/internal/webhooks/endpoints"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
)

// Fixed resource ids the tests' bodies point at.
const (
	phoneID   = "6b1f3c2a-8d4e-4a5b-9c6d-7e8f9a0b1c2d"
	agentID   = "0c9d8e7f-6a5b-4c3d-8e1f-2a3b4c5d6e7f"
	contactID = "1d2e3f4a-5b6c-4d7e-8f9a-0b1c2d3e4f5a"
	dealID    = "2e3f4a5b-6c7d-4e8f-9a0b-1c2d3e4f5a6b"
)

var (
	oaOnce sync.Once
	oaVal  validator.Validator
	oaErr  error
)

// openAPIValidator builds one validator of the served document for all tests.
func openAPIValidator(t testing.TB) validator.Validator {
	t.Helper()
	oaOnce.Do(func() {
		doc, err := libopenapi.NewDocument(httpapi.OpenAPI())
		if err != nil {
			oaErr = err
			return
		}
		v, errs := validator.NewValidator(doc)
		if len(errs) > 0 {
			oaErr = fmt.Errorf("build validator: %v", errs)
			return
		}
		oaVal = v
	})
	if oaErr != nil {
		t.Fatalf("OpenAPI document: %v", oaErr)
	}
	return oaVal
}

// env is one isolated API over a fresh SQLite file, with a company "acme"
// holding a key per scope set and the sender resources the bodies use.
type env struct {
	t     testing.TB
	api   *httpapi.API
	store *sqlite.Store
	keys  map[string]string
	// validate checks every response against the OpenAPI document.
	validate bool
	// ids answers whether a sending domain is verified (all are, unless
	// the test says otherwise).
	ids *identities
	// clock is the webhook endpoints' clock (secret rotation), at testNow
	// until a test advances it.
	clock *clock.Fake
}

// identities is a hand-written scheduling.IdentityVerifier: every domain is
// verified except those in unverified; err, when set, answers every call.
type identities struct {
	mu         sync.Mutex
	unverified map[string]bool
	err        error
	asked      []string
}

func (f *identities) VerifiedForSending(_ context.Context, domain string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, domain)
	if f.err != nil {
		return false, f.err
	}
	return !f.unverified[domain], nil
}

func (f *identities) set(unverified []string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unverified = map[string]bool{}
	for _, d := range unverified {
		f.unverified[d] = true
	}
	f.err = err
}

func setup(t testing.TB) *env { t.Helper(); return setupCredits(t, 1000) }

// setupCredits is setup with acme holding the given balance.
func setupCredits(t testing.TB, credits int64) *env {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ids := &identities{unverified: map[string]bool{}}
	svc := scheduling.NewService(store, scheduling.WithClock(func() time.Time { return testNow }), scheduling.WithIdentityVerifier(ids))
	e := &env{t: t, api: httpapi.New(svc, auth.NewAuthenticator(store), discard()), store: store, keys: map[string]string{}, validate: true, ids: ids,
		clock: clock.NewFake(testNow)}
	hooks, err := endpoints.NewService(endpoints.Options{Store: store, Secrets: newSecret,
		URLs: app.WebhookURLs(false, publicResolver{}), Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.api.SetWebhookEndpoints(hooks)
	e.company("acme", credits)
	e.company("other", 1000)
	all := "dispatcher:read,dispatcher:write,email:send,sms:send,calls:initiate"
	for name, scopes := range map[string]string{
		"all":         all,
		"other":       all,
		"read":        "dispatcher:read",
		"write":       "dispatcher:write",
		"emailonly":   "dispatcher:write,email:send",
		"smsonly":     "dispatcher:write,sms:send",
		"voiceonly":   "dispatcher:write,calls:initiate",
		"sendnowrite": "email:send,sms:send,calls:initiate,dispatcher:read",
	} {
		company := "acme"
		if name == "other" {
			company = "other"
		}
		e.keys[name] = e.key(company, scopes)
	}
	// The bodies send from alex@example.com, acme's domain; other's send
	// from example.org (otherEmailBody): a domain belongs to one company.
	e.mustDo("PUT", "/v1/settings", "all", `{"timezone":"UTC","sending_domains":["example.com"]}`, 200)
	e.mustDo("PUT", "/v1/settings", "other", `{"timezone":"UTC","sending_domains":["example.org"]}`, 200)
	e.mustDo("PUT", "/v1/phone-numbers/"+phoneID, "all", `{"e164":"+61412345678","capabilities":["sms","voice"],"label":"Sydney sales"}`, 200)
	e.mustDo("PUT", "/v1/voice-agents/"+agentID, "all", `{"provider":"retell","agent_id":"agent_123","phone_number_id":"`+phoneID+`","label":"SDR"}`, 200)
	return e
}

// newSecret makes a signing secret as the product does: whsec_ + base64
// of 32 random bytes.
func newSecret() (string, error) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "whsec_" + base64.StdEncoding.EncodeToString(b[:]), nil
}

func discard() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

func (e *env) company(id string, credits int64) {
	e.t.Helper()
	if err := app.CreateCompany(context.Background(), e.store, id, credits, "UTC"); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) key(company, scopes string) string {
	e.t.Helper()
	var list []comms.Scope
	for _, s := range strings.Split(scopes, ",") {
		sc, ok := comms.ParseScope(s)
		if !ok {
			e.t.Fatalf("scope %q", s)
		}
		list = append(list, sc)
	}
	k, err := app.CreateKey(context.Background(), e.store, company, list)
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

// resp is a finished response with its decoded envelope.
type resp struct {
	Status int
	Header http.Header
	Body   []byte
	Data   json.RawMessage
	Meta   map[string]any
	Error  struct {
		Code    string             `json:"code"`
		Message string             `json:"message"`
		Details []comms.FieldError `json:"details"`
	}
}

// row decodes the data of a response as a row.
func (r *resp) row(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Data, &m); err != nil {
		t.Fatalf("data is not an object: %s", r.Body)
	}
	return m
}

func (r *resp) fields() []string {
	out := make([]string, len(r.Error.Details))
	for i, d := range r.Error.Details {
		out[i] = d.Field
	}
	return out
}

type header struct{ k, v string }

// do sends a request as the named key ("" sends none) and, unless disabled,
// validates the response against the OpenAPI document.
func (e *env) do(method, path, key, body string, hs ...header) *resp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		secret, ok := e.keys[key]
		if !ok {
			secret = key
		}
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	for _, h := range hs {
		req.Header.Set(h.k, h.v)
	}
	rec := httptest.NewRecorder()
	e.api.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	r := &resp{Status: res.StatusCode, Header: res.Header, Body: b}
	if res.Header.Get("X-Request-Id") == "" {
		e.t.Errorf("%s %s: no X-Request-Id header", method, path)
	}
	if len(b) > 0 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		var env struct {
			Data  json.RawMessage `json:"data"`
			Meta  map[string]any  `json:"meta"`
			Error json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(b, &env); err != nil {
			e.t.Fatalf("%s %s: response is not JSON: %s", method, path, b)
		}
		r.Data, r.Meta = env.Data, env.Meta
		if len(env.Error) > 0 {
			_ = json.Unmarshal(env.Error, &r.Error)
			if r.Meta["request_id"] != res.Header.Get("X-Request-Id") {
				e.t.Errorf("%s %s: meta.request_id %v != header %q", method, path, r.Meta["request_id"], res.Header.Get("X-Request-Id"))
			}
		}
	}
	if e.validate && !strings.HasPrefix(path, "/v1/openapi.json") {
		e.checkOpenAPI(req, res, b)
	}
	return r
}

// checkOpenAPI validates a response (and, for a success, its request)
// against the served OpenAPI document.
func (e *env) checkOpenAPI(req *http.Request, res *http.Response, body []byte) {
	e.t.Helper()
	v := openAPIValidator(e.t)
	res.Body = io.NopCloser(bytes.NewReader(body))
	if ok, errs := v.ValidateHttpResponse(req, res); !ok {
		for _, err := range errs {
			e.t.Errorf("%s %s → %d: response does not match the OpenAPI document: %s\nbody: %s",
				req.Method, req.URL, res.StatusCode, err.Error(), truncate(body))
		}
	}
}

func truncate(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

// mustDo is do that fails the test unless the status is want.
func (e *env) mustDo(method, path, key, body string, want int, hs ...header) *resp {
	e.t.Helper()
	r := e.do(method, path, key, body, hs...)
	if r.Status != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	return r
}

// testNow is the service's clock in these tests: a Wednesday, fixed, so no
// test depends on the day or the hour it runs.
var testNow = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// at formats a time for scheduled_for, d after testNow.
func at(d time.Duration) string { return testNow.Add(d).Format(time.RFC3339) }

// The seed contract's three request examples, with real UUIDs.
func emailBody(when string) string {
	return `{"channel":"email","scheduled_for":"` + when + `","timezone":"Australia/Sydney","respect_business_hours":false,
"contact_id":"` + contactID + `","deal_id":"` + dealID + `",
"payload":{"to_email":"sarah@example.com","to_name":"Sarah Lee","subject":"Following up on our call","html_body":"<p>Hi Sarah, …</p>","from_email":"alex@example.com","cc":["manager@example.com"]},
"cancel_policy":{"max_delay_minutes":120,"cancel_on":["contact_replied"]}}`
}

// otherEmailBody is emailBody sent by the company other, from its own domain.
func otherEmailBody(when string) string {
	return strings.Replace(emailBody(when), "alex@example.com", "alex@example.org", 1)
}

func smsBody(when string) string {
	return `{"channel":"sms","scheduled_for":"` + when + `","contact_id":"` + contactID + `",
"payload":{"phone_number_id":"` + phoneID + `","to_number":"+61498765432","message_body":"Hi Sarah, just checking in about tomorrow."}}`
}

func voiceBody(when string) string {
	return `{"channel":"voice_call","scheduled_for":"` + when + `","timezone":"America/New_York","respect_business_hours":true,
"contact_id":"` + contactID + `","deal_id":"` + dealID + `",
"payload":{"voice_agent_outbound_config_id":"` + agentID + `","to_number":"+14155550123",
"dynamic_variables":{"first_name":"Sarah"},"metadata":{"crm_task":"t-42"},
"follow_ups":{"max_attempts":3,"follow_up_delays":[2,24],"voice_agent_outbound_config_id":"` + agentID + `","to_number":"+14155550123","respect_business_hours":true}}}`
}

// publicResolver answers every name with one public address (TEST-NET is
// refused by netguard; this is example.com's): registration tests never
// touch the network.
type publicResolver struct{}

func (publicResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return []netip.Addr{netip.MustParseAddr("93.184.215.14")}, nil
}
