package retell

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
)

// testCall is the call the PlaceCall tests place.
func testCall() dispatch.Call {
	return dispatch.Call{
		CommunicationID:  "6f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
		CompanyID:        "c0a8012e-7d3b-4f61-9a52-3e1b8c4d2f70",
		Attempt:          2,
		Provider:         "retell",
		AgentID:          "agent_3f9b2c7e1d4a8b6c5e0f2a9d",
		From:             "+14155550132",
		To:               "+12135550187",
		DynamicVariables: map[string]string{"customer_name": "Jordan Lee"},
		// dispatcher_attempt here is overwritten by ours.
		Metadata: map[string]any{"crm_deal_id": "D-1042", "simulate": "conversation", "priority": 3, "dispatcher_attempt": "99"},
	}
}

// wantBody is the exact body testCall must produce: metadata keys sorted
// (encoding/json sorts maps), our ids as strings, the idempotency key
// "dispatcher-<id>-" + the first 12 hex digits of
// sha256("+14155550132\x00+12135550187\x00agent_3f9b2c7e1d4a8b6c5e0f2a9d").
const wantBody = `{"from_number":"+14155550132","to_number":"+12135550187",` +
	`"override_agent_id":"agent_3f9b2c7e1d4a8b6c5e0f2a9d",` +
	`"metadata":{"crm_deal_id":"D-1042","dispatcher_attempt":"2",` +
	`"dispatcher_communication_id":"6f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",` +
	`"dispatcher_company_id":"c0a8012e-7d3b-4f61-9a52-3e1b8c4d2f70","priority":3,"simulate":"conversation"},` +
	`"retell_llm_dynamic_variables":{"customer_name":"Jordan Lee"},` +
	`"idempotency_key":"dispatcher-6f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0-81e1d1550c80"}`

// createdBody is a 201 answer modelled on Retell's documented example.
const createdBody = `{"call_type":"phone_call","from_number":"+14155550132","to_number":"+12135550187",` +
	`"direction":"outbound","call_id":"call_5e2b8d41c7a0f3962e18b4d7a9c3",` +
	`"agent_id":"agent_3f9b2c7e1d4a8b6c5e0f2a9d","agent_version":4,"call_status":"registered",` +
	`"metadata":{},"retell_llm_dynamic_variables":{"customer_name":"Jordan Lee"}}`

type captured struct {
	method, path, body string
	header             http.Header
}

func TestPlaceCallRequest(t *testing.T) {
	t.Parallel()
	var (
		mu  sync.Mutex
		got captured
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = captured{method: r.Method, path: r.URL.Path, body: string(b), header: r.Header.Clone()}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, createdBody)
	}))
	t.Cleanup(srv.Close)

	id, err := New(srv.URL+"/", "key_3a9f2c71e8d54b06a1c4f7e2d9b8", srv.Client()).PlaceCall(context.Background(), testCall())
	if err != nil {
		t.Fatalf("PlaceCall: %v", err)
	}
	if id != "call_5e2b8d41c7a0f3962e18b4d7a9c3" {
		t.Errorf("call id = %q", id)
	}
	mu.Lock()
	defer mu.Unlock()
	if got.method != http.MethodPost || got.path != "/v2/create-phone-call" {
		t.Errorf("request = %s %s, want POST /v2/create-phone-call", got.method, got.path)
	}
	for name, want := range map[string]string{
		"Authorization": "Bearer key_3a9f2c71e8d54b06a1c4f7e2d9b8",
		"Content-Type":  "application/json",
		"Accept":        "application/json",
	} {
		if v := got.header.Get(name); v != want {
			t.Errorf("header %s = %q, want %q", name, v, want)
		}
	}
	if got.body != wantBody {
		t.Errorf("body\n got %s\nwant %s", got.body, wantBody)
	}
}

func TestPlaceCallOptionalFields(t *testing.T) {
	t.Parallel()
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"call_id":"call_x","call_status":"registered"}`)
	}))
	t.Cleanup(srv.Close)
	c := dispatch.Call{CommunicationID: "not a valid key!", CompanyID: "co", Attempt: 1, From: "+14155550132", To: "+12135550187"}
	if _, err := New(srv.URL, "k", srv.Client()).PlaceCall(context.Background(), c); err != nil {
		t.Fatalf("PlaceCall: %v", err)
	}
	// No agent override, no dynamic variables, no idempotency key (the id
	// has characters Retell refuses); metadata always carries our ids.
	want := `{"from_number":"+14155550132","to_number":"+12135550187","metadata":{"dispatcher_attempt":"1",` +
		`"dispatcher_communication_id":"not a valid key!","dispatcher_company_id":"co"}}`
	if body != want {
		t.Errorf("body\n got %s\nwant %s", body, want)
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	base := testCall()
	key := IdempotencyKey(base)
	retry := base
	retry.Attempt = 3
	retry.Metadata = nil
	if IdempotencyKey(retry) != key {
		t.Error("a retry of the same row must reuse the key")
	}
	for name, edit := range map[string]func(*dispatch.Call){
		"to":    func(c *dispatch.Call) { c.To = "+12135550188" },
		"from":  func(c *dispatch.Call) { c.From = "+14155550133" },
		"agent": func(c *dispatch.Call) { c.AgentID = "agent_other" },
		"row":   func(c *dispatch.Call) { c.CommunicationID = "7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d" },
	} {
		c := base
		edit(&c)
		if IdempotencyKey(c) == key {
			t.Errorf("changing %s must change the key", name)
		}
	}
	if IdempotencyKey(dispatch.Call{}) != "" {
		t.Error("no communication id: no key")
	}
}

func TestPlaceCallStatusClassification(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status     int
		body       string
		header     map[string]string
		transient  bool
		code       string
		msgContain string
	}{
		{400, `{"status":"error","message":"Invalid request format, please check API reference."}`, nil, false, CodeInvalidRequest, "Invalid request format"},
		{401, `{"status":"error","message":"API key is missing or invalid."}`, nil, false, CodeUnauthorized, "API key is missing"},
		{402, `{"status":"error","message":"Trial has ended, please add payment method."}`, nil, false, CodePaymentRequired, "Trial has ended"},
		{403, `{"status":"error","message":"Forbidden"}`, nil, false, CodeForbidden, "Forbidden"},
		{404, `{"status":"error","message":"The requested resource was not found."}`, nil, false, CodeNotFound, "not found"},
		{409, `{"status":"error","message":"Resource update conflict."}`, nil, false, CodeRejected, "409"},
		{422, `{"status":"error","message":"Cannot find requested asset under given api key."}`, nil, false, CodeUnprocessable, "Cannot find requested asset"},
		{429, `{"status":"error","message":"Account rate limited, please throttle your requests."}`, map[string]string{"Retry-After": "7"}, true, CodeThrottled, "Retry-After 7"},
		{500, `{"status":"error","message":"An unexpected server error occurred."}`, nil, true, CodeProviderUnavailable, "unexpected server error"},
		{502, `<html>Bad Gateway</html>`, nil, true, CodeProviderUnavailable, "Bad Gateway"},
		{503, ``, nil, true, CodeProviderUnavailable, "empty body"},
		{408, `timeout`, nil, true, CodeProviderUnavailable, "408"},
		{201, `{"call_status":"registered"}`, nil, false, CodeOutcomeUnknown, "without a call_id"},
		{200, `not json`, nil, false, CodeOutcomeUnknown, "may have been placed"},
		{304, ``, nil, true, CodeProviderError, "304"},
	}
	for _, tc := range cases {
		t.Run(http.StatusText(tc.status)+"_"+tc.code, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			id, err := New(srv.URL, "k", srv.Client()).PlaceCall(context.Background(), testCall())
			se := sendError(t, err)
			if id != "" || se.Transient != tc.transient || se.Code != tc.code || !strings.Contains(se.Message, tc.msgContain) {
				t.Errorf("status %d: id %q, %+v; want transient=%v code=%s message containing %q", tc.status, id, se, tc.transient, tc.code, tc.msgContain)
			}
		})
	}
}

func TestPlaceCallTransportFailures(t *testing.T) {
	t.Parallel()

	t.Run("deadline on a slow server is a timeout", func(t *testing.T) {
		t.Parallel()
		srv := slowServer(t)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := New(srv.URL, "k", srv.Client()).PlaceCall(ctx, testCall())
		if se := sendError(t, err); !se.Transient || se.Code != CodeTimeout {
			t.Errorf("got %+v, want transient timeout", se)
		}
	})

	t.Run("client timeout is a timeout", func(t *testing.T) {
		t.Parallel()
		srv := slowServer(t)
		hc := srv.Client()
		hc.Timeout = 100 * time.Millisecond
		_, err := New(srv.URL, "k", hc).PlaceCall(context.Background(), testCall())
		if se := sendError(t, err); !se.Transient || se.Code != CodeTimeout {
			t.Errorf("got %+v, want transient timeout", se)
		}
	})

	t.Run("connection dropped after the request is outcome unknown", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}))
		t.Cleanup(srv.Close)
		_, err := New(srv.URL, "k", srv.Client()).PlaceCall(context.Background(), testCall())
		if se := sendError(t, err); !se.Transient || se.Code != CodeTimeout || !strings.Contains(se.Message, "may have been placed") {
			t.Errorf("got %+v, want transient timeout (outcome unknown)", se)
		}
	})

	t.Run("unreachable before anything was sent", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there any more: connection refused
		_, err = New("http://"+addr, "k", &http.Client{}).PlaceCall(context.Background(), testCall())
		if se := sendError(t, err); !se.Transient || se.Code != CodeProviderUnavailable {
			t.Errorf("got %+v, want transient provider_unavailable", se)
		}
	})

	t.Run("cancelled before sending", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := New("http://127.0.0.1:1", "k", &http.Client{}).PlaceCall(ctx, testCall())
		if se := sendError(t, err); !se.Transient || se.Code != CodeCancelled {
			t.Errorf("got %+v, want transient cancelled", se)
		}
	})
}

func TestPlaceCallRejectsBeforeSending(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("nothing should be sent, got %s %s", r.Method, r.URL)
	}))
	t.Cleanup(srv.Close)
	cl := New(srv.URL, "k", srv.Client())
	cases := []struct {
		name string
		edit func(*dispatch.Call)
		code string
	}{
		{"other provider", func(c *dispatch.Call) { c.Provider = "vapi" }, CodeUnsupportedProvider},
		{"no to", func(c *dispatch.Call) { c.To = "" }, CodeInvalidRequest},
		{"no from", func(c *dispatch.Call) { c.From = "" }, CodeInvalidRequest},
		{"unencodable metadata", func(c *dispatch.Call) { c.Metadata = map[string]any{"f": func() {}} }, CodeInvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := testCall()
			tc.edit(&c)
			_, err := cl.PlaceCall(context.Background(), c)
			if se := sendError(t, err); se.Transient || se.Code != tc.code {
				t.Errorf("got %+v, want permanent %s", se, tc.code)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	t.Parallel()
	c := New("", "k", nil)
	if c.baseURL != DefaultBaseURL || c.http == nil || c.http.Timeout != DefaultHTTPTimeout {
		t.Errorf("New defaults: base %q, client %+v", c.baseURL, c.http)
	}
}

func TestPlaceCallBoundedRead(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"status":"error","message":"`+strings.Repeat("x", 3<<20)+`"}`)
	}))
	t.Cleanup(srv.Close)
	_, err := New(srv.URL, "k", srv.Client()).PlaceCall(context.Background(), testCall())
	se := sendError(t, err)
	if se.Code != CodeInvalidRequest || len(se.Message) > 1000 {
		t.Errorf("got code %s and a %d-byte message; want invalid_request, short", se.Code, len(se.Message))
	}
}

// slowServer answers nothing until the client gives up or the test ends.
func slowServer(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body) // lets the server notice the client hanging up
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first
	return srv
}

// sendError asserts err is a *comms.SendError and returns it.
func sendError(t *testing.T, err error) *comms.SendError {
	t.Helper()
	var se *comms.SendError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *comms.SendError", err, err)
	}
	return se
}
