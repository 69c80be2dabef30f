// Package httpapi is the HTTP transport of Dispatcher: routing (net/http),
// authentication, request ids and JSON logs, body limits, the response
// envelope, and the single mapping of errors to statuses. Use cases live in
// scheduling.Service; this package only translates.
package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	_ "embed" // the OpenAPI document
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/contract"
	"github.com/dispatcherhq/dispatcher/internal/ratelimit"
	"github.com/dispatcherhq/dispatcher/internal/scheduling"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
	"github.com/dispatcherhq/dispatcher/internal/webhooks/endpoints"
)

// The document is openapi.json, embedded gzipped (about 35 KB instead of
// 300 KB in every binary that serves the API, which keeps the api Lambda
// function under its size ceiling): edit openapi.json, then run
// `go generate ./internal/httpapi` (TestEmbeddedDocumentIsOpenAPIJSON
// fails until the two agree).
//
//go:generate sh -c "gzip -9 -n -c openapi.json > openapi.json.gz"
//go:embed openapi.json.gz
var openAPIGzip []byte

// openAPIDoc is the document, unzipped once on first use.
var openAPIDoc = sync.OnceValue(func() []byte {
	zr, err := gzip.NewReader(bytes.NewReader(openAPIGzip))
	if err != nil {
		panic("httpapi: the embedded openapi.json.gz does not read: " + err.Error())
	}
	doc, err := io.ReadAll(zr)
	if err != nil {
		panic("httpapi: the embedded openapi.json.gz does not read: " + err.Error())
	}
	return doc
})

// OpenAPI returns the OpenAPI 3.1 document the API serves.
func OpenAPI() []byte { return openAPIDoc() }

// maxBody is the largest request body accepted.
const maxBody = 1 << 20

// Authenticator turns an Authorization header into a principal.
type Authenticator interface {
	Authenticate(ctx context.Context, header string) (comms.Principal, error)
}

// VoiceWebhooks receives call outcomes from voice providers. It returns
// comms.ErrUnauthenticated wrapped in ErrBadSignature for a signature that
// does not verify, comms.ErrNotFound for an unknown provider.
type VoiceWebhooks interface {
	VoiceEvent(ctx context.Context, provider string, body []byte, header http.Header) error
}

// ErrBadSignature marks a webhook whose signature did not verify (401).
var ErrBadSignature = errors.New("invalid webhook signature")

// Route is one operation of the API: what the router serves and what the
// OpenAPI test compares with the document.
type Route struct {
	Method string
	Path   string
	// Public routes need no API key.
	Public bool
	// Scopes the key must hold (all of them, or one of them with AnyOf).
	Scopes []comms.Scope
	AnyOf  bool
	handle func(w http.ResponseWriter, r *http.Request, p comms.Principal) error
}

// API serves the HTTP API.
type API struct {
	svc   *scheduling.Service
	auth  Authenticator
	hooks VoiceWebhooks
	// deliveries serves …/deliveries (SetWebhookDeliveries).
	deliveries *webhooks.Engine
	// endpoints serves /v1/webhook-endpoints (SetWebhookEndpoints).
	endpoints *endpoints.Service
	log       *slog.Logger
	mux       *http.ServeMux
	routes    []Route
	// ready runs /readyz's checks (SetReadiness); nil: always ready.
	ready *readiness
	// limiter limits each company's authenticated requests
	// (SetRateLimiter); nil: no limit.
	limiter RateLimiter
}

// RateLimiter takes cost tokens from a company's bucket
// (ratelimit.Limiter).
type RateLimiter interface {
	Allow(ctx context.Context, company string, cost int) (ratelimit.Decision, error)
}

// SetRateLimiter limits every authenticated request of a company: each
// costs one token of its bucket, and a request with none left is answered
// 429 rate_limited with Retry-After. Every authenticated response carries
// RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers-10).
// The public routes (health, readiness, the OpenAPI document, the voice
// webhooks) are never limited. A limiter error lets the request through
// (logged): the stage's own throttling still bounds the API.
func (a *API) SetRateLimiter(l RateLimiter) { a.limiter = l }

// New returns the API over svc, authenticating with auth and logging to log.
func New(svc *scheduling.Service, auth Authenticator, log *slog.Logger) *API {
	a := &API{svc: svc, auth: auth, log: log, mux: http.NewServeMux()}
	read := []comms.Scope{comms.ScopeRead, comms.ScopeWrite}
	write := []comms.Scope{comms.ScopeWrite}
	a.routes = []Route{
		{Method: "GET", Path: "/healthz", Public: true, handle: a.health},
		{Method: "GET", Path: "/readyz", Public: true, handle: a.readyz},
		{Method: "GET", Path: "/v1/openapi.json", Public: true, handle: a.openapi},
		{Method: "POST", Path: "/v1/scheduled-communications", Scopes: write, handle: a.create},
		{Method: "GET", Path: "/v1/scheduled-communications", Scopes: read, AnyOf: true, handle: a.list},
		{Method: "GET", Path: "/v1/scheduled-communications/{id}", Scopes: read, AnyOf: true, handle: a.get},
		{Method: "PATCH", Path: "/v1/scheduled-communications/{id}", Scopes: write, handle: a.patch},
		{Method: "POST", Path: "/v1/scheduled-communications/{id}/cancel", Scopes: write, handle: a.cancel},
		{Method: "POST", Path: "/v1/scheduled-communications/cancel-by-event", Scopes: write, handle: a.cancelByEvent},
		{Method: "GET", Path: "/v1/scheduled-communications/{id}/events", Scopes: read, AnyOf: true, handle: a.history},
		{Method: "GET", Path: "/v1/events", Scopes: read, AnyOf: true, handle: a.feed},
		{Method: "GET", Path: "/v1/settings", Scopes: read, AnyOf: true, handle: a.getSettings},
		{Method: "PUT", Path: "/v1/settings", Scopes: write, handle: a.putSettings},
		{Method: "GET", Path: "/v1/phone-numbers", Scopes: read, AnyOf: true, handle: a.listPhoneNumbers},
		{Method: "GET", Path: "/v1/phone-numbers/{id}", Scopes: read, AnyOf: true, handle: a.getPhoneNumber},
		{Method: "PUT", Path: "/v1/phone-numbers/{id}", Scopes: write, handle: a.putPhoneNumber},
		{Method: "DELETE", Path: "/v1/phone-numbers/{id}", Scopes: write, handle: a.deletePhoneNumber},
		{Method: "GET", Path: "/v1/voice-agents", Scopes: read, AnyOf: true, handle: a.listVoiceAgents},
		{Method: "GET", Path: "/v1/voice-agents/{id}", Scopes: read, AnyOf: true, handle: a.getVoiceAgent},
		{Method: "PUT", Path: "/v1/voice-agents/{id}", Scopes: write, handle: a.putVoiceAgent},
		{Method: "DELETE", Path: "/v1/voice-agents/{id}", Scopes: write, handle: a.deleteVoiceAgent},
		{Method: "GET", Path: "/v1/suppressions", Scopes: read, AnyOf: true, handle: a.listSuppressions},
		{Method: "PUT", Path: "/v1/suppressions", Scopes: write, handle: a.putSuppression},
		{Method: "GET", Path: "/v1/suppressions/{channel}/{recipient}", Scopes: read, AnyOf: true, handle: a.getSuppression},
		{Method: "DELETE", Path: "/v1/suppressions/{channel}/{recipient}", Scopes: write, handle: a.deleteSuppression},
		{Method: "POST", Path: "/v1/webhook-endpoints", Scopes: write, handle: a.createEndpoint},
		{Method: "GET", Path: "/v1/webhook-endpoints", Scopes: read, AnyOf: true, handle: a.listEndpoints},
		{Method: "GET", Path: "/v1/webhook-endpoints/{id}", Scopes: read, AnyOf: true, handle: a.getEndpoint},
		{Method: "PATCH", Path: "/v1/webhook-endpoints/{id}", Scopes: write, handle: a.patchEndpoint},
		{Method: "DELETE", Path: "/v1/webhook-endpoints/{id}", Scopes: write, handle: a.deleteEndpoint},
		// The signing secrets are for keys that may change the endpoint:
		// a read-only key cannot forge the company's webhooks.
		{Method: "GET", Path: "/v1/webhook-endpoints/{id}/secret", Scopes: write, handle: a.getEndpointSecret},
		{Method: "POST", Path: "/v1/webhook-endpoints/{id}/rotate-secret", Scopes: write, handle: a.rotateEndpointSecret},
		{Method: "GET", Path: "/v1/webhook-endpoints/{id}/deliveries", Scopes: read, AnyOf: true, handle: a.listDeliveries},
		{Method: "POST", Path: "/v1/webhook-endpoints/{id}/deliveries/{delivery_id}/retry", Scopes: write, handle: a.retryDelivery},
		{Method: "POST", Path: "/v1/webhook-endpoints/{id}/test", Scopes: write, handle: a.pingEndpoint},
		{Method: "POST", Path: "/v1/webhooks/voice/{provider}", Public: true, handle: a.voiceWebhook},
	}
	for _, rt := range a.routes {
		a.mux.Handle(rt.Method+" "+rt.Path, a.wrap(rt))
	}
	return a
}

// SetVoiceWebhooks enables POST /v1/webhooks/voice/{provider} (404 until set).
func (a *API) SetVoiceWebhooks(h VoiceWebhooks) { a.hooks = h }

// Routes lists every operation the API serves.
func (a *API) Routes() []Route { return append([]Route(nil), a.routes...) }

type ctxKey int

const requestIDKey ctxKey = 0

var goodRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// ServeHTTP assigns the request id, logs the request, recovers panics and
// answers unknown paths and methods with the JSON error envelope.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := r.Header.Get("X-Request-Id")
	if !goodRequestID.MatchString(id) {
		id = newRequestID()
	}
	w.Header().Set("X-Request-Id", id)
	// comms.WithRequestID: the fires this request arms carry the id, so
	// the functions that handle them log it too.
	r = r.WithContext(comms.WithRequestID(context.WithValue(r.Context(), requestIDKey, id), id))
	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			a.log.ErrorContext(r.Context(), "panic", "request_id", id, "panic", v)
			if rec.status == 0 {
				a.writeError(rec, r, errors.New("panic"))
			}
		}
		a.log.InfoContext(r.Context(), "request", "request_id", id, "method", r.Method, "path", r.URL.Path,
			"status", rec.status, "duration_ms", float64(time.Since(start).Microseconds())/1000, "company_id", rec.company)
	}()
	if size := headerBytes(r.Header); size > MaxHeaderBytes {
		a.writeError(rec, r, errHeaderTooLarge)
		return
	}
	// ServeMux would answer an unclean path (//, /./, /../, a trailing
	// /.) with a redirect in text/html; no operation lives there, so it
	// is a 404 in the envelope like any other unknown path.
	if r.URL.Path != cleanPath(r.URL.Path) {
		a.writeError(rec, r, errRouteMissing)
		return
	}
	if _, pattern := a.mux.Handler(r); pattern == "" || a.shadowed(r, pattern) {
		a.writeError(rec, r, a.unrouted(r))
		return
	}
	a.mux.ServeHTTP(rec, r)
}

// MaxHeaderBytes bounds the request's header fields (names, values and
// their separators), answered with 431 in the envelope. net/http refuses
// headers beyond its own http.Server.MaxHeaderBytes (1 MiB by default)
// itself, in plain text, before any handler runs; this smaller bound is
// what a client meets in practice. 32 KiB is more than any client of this
// API sends (a bearer key, a request id, an idempotency key) and about what
// load balancers in front of it accept.
const MaxHeaderBytes = 32 << 10

func headerBytes(h http.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4 // ": " and CRLF
		}
	}
	return n
}

// cleanPath is the path ServeMux would redirect to: rooted, with no empty,
// . or .. segments, keeping a trailing slash.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// unrouted tells a path that exists with other methods (405) from an
// unknown path (404).
func (a *API) unrouted(r *http.Request) error {
	// Allow lists the methods of the most specific route that matches the
	// path: /scheduled-communications/cancel-by-event is a route of its own
	// (POST), not an {id} of the GET and PATCH routes.
	var allow []string
	fewest := -1
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		probe := r.Clone(r.Context())
		probe.Method = m
		_, p := a.mux.Handler(probe)
		if p == "" {
			continue
		}
		switch wild := strings.Count(p, "{"); {
		case fewest < 0 || wild < fewest:
			fewest, allow = wild, []string{m}
		case wild == fewest:
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		return errRouteMissing
	}
	return &methodError{allow: strings.Join(allow, ", ")}
}

// shadowed reports whether the request matched pattern only through a
// wildcard while a more specific route of the same path exists for other
// methods: PATCH /v1/scheduled-communications/cancel-by-event is a 405 of
// the cancel-by-event route (POST), not a PATCH of a row with that id.
func (a *API) shadowed(r *http.Request, pattern string) bool {
	if !strings.Contains(pattern, "{") {
		return false
	}
	err := a.unrouted(r)
	var me *methodError
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet // net/http serves HEAD with the GET route
	}
	return errors.As(err, &me) && !slices.Contains(strings.Split(me.allow, ", "), method)
}

// wrap authenticates and authorizes a route, then runs it; any error it
// returns becomes the error envelope.
func (a *API) wrap(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p comms.Principal
		if !rt.Public {
			var err error
			p, err = a.auth.Authenticate(r.Context(), r.Header.Get("Authorization"))
			if err == nil {
				if rec, ok := w.(*statusRecorder); ok {
					rec.company = p.CompanyID
				}
				err = a.limit(w, r, p.CompanyID)
			}
			if err == nil {
				if rt.AnyOf {
					err = p.RequireAny(rt.Scopes...)
				} else {
					err = p.Require(rt.Scopes...)
				}
			}
			if err != nil {
				a.writeError(w, r, err)
				return
			}
		}
		if err := rt.handle(w, r, p); err != nil {
			a.writeError(w, r, err)
		}
	})
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := classify(err)
	if status >= 500 {
		a.log.ErrorContext(r.Context(), "request failed", "request_id", requestID(r), "error", err.Error())
	}
	var me *methodError
	if errors.As(err, &me) {
		w.Header().Set("Allow", me.allow)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dispatcher"`)
	}
	var rl *rateLimitedError
	switch {
	case errors.As(err, &rl):
		w.Header().Set("Retry-After", strconv.FormatInt(ceilSeconds(rl.retryAfter, 1), 10))
	case status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "5")
	}
	writeJSON(w, status, map[string]any{"error": body, "meta": map[string]any{"request_id": requestID(r)}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// ok writes the success envelope; extra adds keys to meta.
func ok(w http.ResponseWriter, r *http.Request, status int, data any, extra map[string]any) error {
	meta := map[string]any{"request_id": requestID(r)}
	for k, v := range extra {
		meta[k] = v
	}
	writeJSON(w, status, map[string]any{"data": data, "meta": meta})
	return nil
}

func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey).(string)
	return id
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}

// readBody returns the request body after checking its media type against
// accepted ones and its size against maxBody.
func readBody(w http.ResponseWriter, r *http.Request, accepted ...string) ([]byte, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !contains(accepted, mt) {
		return nil, errMediaType
	}
	// JSON is UTF-8 (RFC 8259 §8.1), and bodies are not compressed: a
	// declared charset or encoding that would be ignored is refused.
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return nil, errMediaType
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return nil, errMediaType
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, errTooLarge
	}
	if err != nil {
		return nil, fmt.Errorf("%w: the body could not be read to its end", comms.ErrInvalidJSON)
	}
	return body, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// statusRecorder remembers the status written, for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status  int
	company string
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

var jsonTypes = []string{"application/json"}

func (a *API) health(w http.ResponseWriter, r *http.Request, _ comms.Principal) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (a *API) openapi(w http.ResponseWriter, r *http.Request, _ comms.Principal) error {
	w.Header().Set("Content-Type", "application/json")
	doc := openAPIDoc()
	w.Header().Set("Content-Length", strconv.Itoa(len(doc)))
	_, _ = w.Write(doc)
	return nil
}

func (a *API) create(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	body, err := readBody(w, r, jsonTypes...)
	if err != nil {
		return err
	}
	c, err := a.svc.Create(r.Context(), p, body, r.Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/scheduled-communications/"+c.Row.ID)
	if c.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	return ok(w, r, http.StatusCreated, view(c.Row), map[string]any{"credits_remaining": c.CreditsRemaining,
		"warnings": nonNil(c.Warnings)})
}

func (a *API) list(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	f, err := contract.ParseListQuery(q)
	if err != nil {
		return err
	}
	rows, next, err := a.svc.List(r.Context(), p, f)
	if err != nil {
		return err
	}
	out := make([]rowView, len(rows))
	for i, c := range rows {
		out[i] = view(c)
	}
	return ok(w, r, http.StatusOK, out, map[string]any{"next_cursor": nullable(next)})
}

func (a *API) get(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	c, err := a.svc.Get(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	return ok(w, r, http.StatusOK, view(c), nil)
}

func (a *API) patch(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	body, err := readBody(w, r, "application/json", "application/merge-patch+json")
	if err != nil {
		return err
	}
	c, credits, err := a.svc.Patch(r.Context(), p, r.PathValue("id"), body)
	if err != nil {
		return err
	}
	return ok(w, r, http.StatusOK, view(c), map[string]any{"credits_remaining": credits,
		"warnings": nonNil(a.svc.Warnings(r.Context(), c))})
}

func (a *API) cancel(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	c, err := a.svc.Cancel(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	return ok(w, r, http.StatusOK, view(c), nil)
}

func (a *API) cancelByEvent(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	body, err := readBody(w, r, jsonTypes...)
	if err != nil {
		return err
	}
	res, err := a.svc.CancelByEvent(r.Context(), p, body)
	if err != nil {
		return err
	}
	return ok(w, r, http.StatusOK, cancelByEventView{Event: res.Event, Cancelled: res.Cancelled, Recorded: recordedEventView{
		ID: res.Recorded.ID, Event: res.Recorded.Name, EntityType: res.Recorded.EntityType, EntityID: res.Recorded.EntityID,
		At: res.Recorded.At.UTC().Format(rfc3339Milli), KeptForLaterSteps: true}}, nil)
}

// cancelByEventView is the answer of cancel-by-event: the rows cancelled
// now, and the event as kept for the rows that come later (§12).
type cancelByEventView struct {
	Event     string            `json:"event"`
	Cancelled []string          `json:"cancelled"`
	Recorded  recordedEventView `json:"recorded"`
}

type recordedEventView struct {
	ID         string           `json:"id"`
	Event      string           `json:"event"`
	EntityType comms.EntityType `json:"entity_type"`
	EntityID   string           `json:"entity_id"`
	At         string           `json:"at"`
	// KeptForLaterSteps says the event stays recorded: a row busy now or
	// created later whose cadence began before it is cancelled by it.
	KeptForLaterSteps bool `json:"kept_for_later_steps"`
}

func (a *API) history(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	raw, err := query(r)
	if err != nil {
		return err
	}
	q, err := contract.ParseHistoryQuery(raw)
	if err != nil {
		return err
	}
	page, err := a.svc.History(r.Context(), p, r.PathValue("id"), q)
	if err != nil {
		return err
	}
	return ok(w, r, http.StatusOK, eventViews(page.Events), map[string]any{"next_cursor": nullable(page.Cursor), "has_more": page.More})
}

func (a *API) feed(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	raw, err := query(r)
	if err != nil {
		return err
	}
	q, err := contract.ParseFeedQuery(raw)
	if err != nil {
		return err
	}
	page, err := a.svc.Feed(r.Context(), p, q)
	if err != nil {
		return err
	}
	return ok(w, r, http.StatusOK, eventViews(page.Events), map[string]any{"next_cursor": nullable(page.Cursor), "has_more": page.More})
}

// query parses the request's query string strictly: a pair net/http's
// r.URL.Query would silently drop (a bad %-escape, a ';') is a 422 naming
// the query string, so a filter is never ignored.
func query(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, &comms.ValidationError{Fields: []comms.FieldError{{Field: "query",
			Message: "has a malformed parameter (a % not followed by two hex digits, or a ';'): escape it as %25 or %3B"}}}
	}
	return q, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (a *API) getSettings(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	s, err := a.svc.Settings(r.Context(), p)
	if err != nil {
		return err
	}
	return ok(w, r, http.StatusOK, s, nil)
}

func (a *API) putSettings(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	body, err := readBody(w, r, jsonTypes...)
	if err != nil {
		return err
	}
	s, err := a.svc.PutSettings(r.Context(), p, body)
	if err != nil {
		return err
	}
	return ok(w, r, http.StatusOK, s, nil)
}

func (a *API) listPhoneNumbers(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	list, err := a.svc.PhoneNumbers(r.Context(), p)
	if err != nil {
		return err
	}
	return ok(w, r, http.StatusOK, nonNil(list), nil)
}

func (a *API) getPhoneNumber(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	pn, err := a.svc.PhoneNumber(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	return ok(w, r, http.StatusOK, pn, nil)
}

func (a *API) putPhoneNumber(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	body, err := readBody(w, r, jsonTypes...)
	if err != nil {
		return err
	}
	pn, err := a.svc.PutPhoneNumber(r.Context(), p, r.PathValue("id"), body)
	if err != nil {
		return err
	}
	return ok(w, r, http.StatusOK, pn, nil)
}

func (a *API) deletePhoneNumber(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	if err := a.svc.DeletePhoneNumber(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listVoiceAgents(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	list, err := a.svc.VoiceAgents(r.Context(), p)
	if err != nil {
		return err
	}
	return ok(w, r, http.StatusOK, nonNil(list), nil)
}

func (a *API) getVoiceAgent(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	va, err := a.svc.VoiceAgent(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	return ok(w, r, http.StatusOK, va, nil)
}

func (a *API) putVoiceAgent(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	body, err := readBody(w, r, jsonTypes...)
	if err != nil {
		return err
	}
	va, err := a.svc.PutVoiceAgent(r.Context(), p, r.PathValue("id"), body)
	if err != nil {
		return err
	}
	return ok(w, r, http.StatusOK, va, nil)
}

func (a *API) deleteVoiceAgent(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	if err := a.svc.DeleteVoiceAgent(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) voiceWebhook(w http.ResponseWriter, r *http.Request, _ comms.Principal) error {
	if a.hooks == nil {
		return errRouteMissing
	}
	body, err := readBody(w, r, jsonTypes...)
	if err != nil {
		return err
	}
	if err := a.hooks.VoiceEvent(r.Context(), r.PathValue("provider"), body, r.Header); err != nil {
		return err
	}
	return ok(w, r, http.StatusOK, map[string]bool{"received": true}, nil)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
