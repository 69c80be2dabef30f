package retell

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
)

// DefaultBaseURL is Retell's production API.
const DefaultBaseURL = "https://api.retellai.com"

// CreatePhoneCallPath is the endpoint that places an outbound call.
const CreatePhoneCallPath = "/v2/create-phone-call"

// DefaultHTTPTimeout bounds a request when New is given no *http.Client.
const DefaultHTTPTimeout = 30 * time.Second

// maxResponseBytes bounds how much of Retell's answer is read.
const maxResponseBytes = 1 << 20

// The metadata keys under which our ids travel with the call and come back
// in every webhook.
const (
	MetaCommunicationID = "dispatcher_communication_id"
	MetaCompanyID       = "dispatcher_company_id"
	MetaAttempt         = "dispatcher_attempt"
)

// Failure codes of PlaceCall, as they appear in a row's last_error.
const (
	// Permanent: the same request cannot succeed.
	CodeInvalidRequest      = "invalid_request"      // 400, or a call we cannot even encode or send
	CodeUnauthorized        = "unauthorized"         // 401: API key missing or invalid
	CodePaymentRequired     = "payment_required"     // 402: trial ended, no payment method
	CodeForbidden           = "forbidden"            // 403
	CodeNotFound            = "not_found"            // 404
	CodeUnprocessable       = "unprocessable"        // 422: e.g. an agent or number not found under the key
	CodeRejected            = "rejected"             // any other 4xx
	CodeUnsupportedProvider = "unsupported_provider" // Call.Provider names another provider
	CodeOutcomeUnknown      = "outcome_unknown"      // 2xx without a readable call_id: the call may exist

	// Transient: a later attempt may succeed.
	CodeThrottled           = "throttled"            // 429
	CodeProviderUnavailable = "provider_unavailable" // 5xx, 408, or Retell unreachable before the request was sent
	CodeTimeout             = "timeout"              // deadline, or no answer after the request was sent: outcome unknown
	CodeCancelled           = "cancelled"            // the caller cancelled before the request was sent
	CodeProviderError       = "provider_error"       // an answer we do not understand (1xx, 3xx)
)

// Client places calls through Retell's HTTP API. It is safe for concurrent
// use.
type Client struct {
	baseURL string
	apiKey  string
	http    *http.Client
}

var _ dispatch.VoiceCaller = (*Client)(nil)

// New returns a Client for the API at baseURL (DefaultBaseURL when empty; a
// custom base serves tests and dev fakes) authenticating with apiKey. A nil
// httpClient gets a client with DefaultHTTPTimeout; the context given to
// PlaceCall bounds each call too.
func New(baseURL, apiKey string, httpClient *http.Client) *Client {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	return &Client{baseURL: strings.TrimRight(baseURL, "/"), apiKey: apiKey, http: httpClient}
}

// createPhoneCallRequest is the body of POST /v2/create-phone-call.
type createPhoneCallRequest struct {
	FromNumber                string            `json:"from_number"`
	ToNumber                  string            `json:"to_number"`
	OverrideAgentID           string            `json:"override_agent_id,omitempty"`
	Metadata                  map[string]any    `json:"metadata"`
	RetellLLMDynamicVariables map[string]string `json:"retell_llm_dynamic_variables,omitempty"`
	IdempotencyKey            string            `json:"idempotency_key,omitempty"`
}

// createPhoneCallResponse is the part of the 201 answer we read.
type createPhoneCallResponse struct {
	CallID     string `json:"call_id"`
	CallStatus string `json:"call_status"`
}

// idempotencyChars is the pattern Retell accepts for idempotency_key.
var idempotencyChars = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// IdempotencyKey is the idempotency_key PlaceCall sends for c: one per row
// and per (from, to, agent), so every attempt of an unchanged row reuses it
// and an edited row gets a new one. It is "" (none sent) when the
// communication id is empty or has characters Retell does not accept.
func IdempotencyKey(c dispatch.Call) string {
	if c.CommunicationID == "" || !idempotencyChars.MatchString(c.CommunicationID) {
		return ""
	}
	sum := sha256.Sum256([]byte(c.From + "\x00" + c.To + "\x00" + c.AgentID))
	key := "dispatcher-" + c.CommunicationID + "-" + hex.EncodeToString(sum[:6])
	if len(key) > 255 {
		return ""
	}
	return key
}

// requestOf builds the create-phone-call body of c.
func requestOf(c dispatch.Call) createPhoneCallRequest {
	meta := make(map[string]any, len(c.Metadata)+3)
	for k, v := range c.Metadata {
		meta[k] = v
	}
	meta[MetaCommunicationID] = c.CommunicationID
	meta[MetaCompanyID] = c.CompanyID
	meta[MetaAttempt] = strconv.Itoa(c.Attempt)
	return createPhoneCallRequest{
		FromNumber:                c.From,
		ToNumber:                  c.To,
		OverrideAgentID:           c.AgentID,
		Metadata:                  meta,
		RetellLLMDynamicVariables: c.DynamicVariables,
		IdempotencyKey:            IdempotencyKey(c),
	}
}

// PlaceCall asks Retell to dial c.To from c.From with agent c.AgentID and
// returns Retell's call_id. Failures are *comms.SendError values:
//
//	400                                  permanent invalid_request
//	401                                  permanent unauthorized
//	402                                  permanent payment_required
//	403                                  permanent forbidden
//	404                                  permanent not_found
//	422                                  permanent unprocessable
//	other 4xx                            permanent rejected
//	2xx without a readable call_id       permanent outcome_unknown
//	429                                  transient throttled (Retry-After quoted)
//	5xx, 408                             transient provider_unavailable
//	deadline or client timeout           transient timeout
//	connection lost after the request
//	was written (or cancelled then)      transient timeout
//	Retell unreachable (nothing sent)    transient provider_unavailable
//	cancelled before anything was sent   transient cancelled
//	1xx, 3xx                             transient provider_error
//
// The message of an HTTP failure carries Retell's own "message". "timeout"
// means the call may have been placed: the dispatcher does not redial it.
func (c *Client) PlaceCall(ctx context.Context, call dispatch.Call) (string, error) {
	if p := strings.ToLower(strings.TrimSpace(call.Provider)); p != "" && p != "retell" {
		return "", comms.Permanent(CodeUnsupportedProvider, "the Retell caller cannot place a call for provider %q", call.Provider)
	}
	if call.From == "" || call.To == "" {
		return "", comms.Permanent(CodeInvalidRequest, "a call needs both a from and a to number")
	}
	body, err := json.Marshal(requestOf(call))
	if err != nil {
		return "", comms.Permanent(CodeInvalidRequest, "encoding the create-phone-call request: %v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+CreatePhoneCallPath, bytes.NewReader(body))
	if err != nil {
		return "", comms.Permanent(CodeInvalidRequest, "building the create-phone-call request: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")

	// Whether the whole request went out decides, on a transport error,
	// between "nothing reached Retell" and "the call may exist".
	var wrote atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				wrote.Store(true)
			}
		},
	}))

	resp, err := c.http.Do(req)
	if err != nil {
		return "", transportError(err, wrote.Load())
	}
	defer resp.Body.Close()
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if readErr != nil {
			return "", comms.Permanent(CodeOutcomeUnknown, "Retell answered %d but the answer could not be read (%v); the call may have been placed", resp.StatusCode, readErr)
		}
		var out createPhoneCallResponse
		if err := json.Unmarshal(data, &out); err != nil || out.CallID == "" {
			return "", comms.Permanent(CodeOutcomeUnknown, "Retell answered %d without a call_id (%s); the call may have been placed", resp.StatusCode, excerpt(data))
		}
		return out.CallID, nil
	}
	return "", statusError(resp, data)
}

// transportError classifies a failure of the HTTP exchange itself.
func transportError(err error, wrote bool) *comms.SendError {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return comms.Transient(CodeTimeout, "Retell did not answer in time; the call may have been placed: %v", err)
	case wrote:
		return comms.Transient(CodeTimeout, "the request reached Retell but no answer came back; the call may have been placed: %v", err)
	case errors.Is(err, context.Canceled):
		return comms.Transient(CodeCancelled, "cancelled before the request was sent: %v", err)
	}
	return comms.Transient(CodeProviderUnavailable, "Retell could not be reached: %v", err)
}

// statusError classifies a non-2xx answer.
func statusError(resp *http.Response, body []byte) *comms.SendError {
	status := resp.StatusCode
	msg := providerMessage(body)
	switch {
	case status == http.StatusBadRequest:
		return comms.Permanent(CodeInvalidRequest, "Retell answered 400: %s", msg)
	case status == http.StatusUnauthorized:
		return comms.Permanent(CodeUnauthorized, "Retell answered 401: %s", msg)
	case status == http.StatusPaymentRequired:
		return comms.Permanent(CodePaymentRequired, "Retell answered 402: %s", msg)
	case status == http.StatusForbidden:
		return comms.Permanent(CodeForbidden, "Retell answered 403: %s", msg)
	case status == http.StatusNotFound:
		return comms.Permanent(CodeNotFound, "Retell answered 404: %s", msg)
	case status == http.StatusUnprocessableEntity:
		return comms.Permanent(CodeUnprocessable, "Retell answered 422: %s", msg)
	case status == http.StatusTooManyRequests:
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			return comms.Transient(CodeThrottled, "Retell answered 429 (Retry-After %s): %s", ra, msg)
		}
		return comms.Transient(CodeThrottled, "Retell answered 429: %s", msg)
	case status == http.StatusRequestTimeout || status >= 500:
		return comms.Transient(CodeProviderUnavailable, "Retell answered %d: %s", status, msg)
	case status >= 400 && status < 500:
		return comms.Permanent(CodeRejected, "Retell answered %d: %s", status, msg)
	}
	return comms.Transient(CodeProviderError, "Retell answered an unexpected %d: %s", status, msg)
}

// providerMessage is Retell's error message ({"status": "error", "message":
// "..."}), or an excerpt of whatever else the body holds.
func providerMessage(body []byte) string {
	var e struct {
		Message      string `json:"message"`
		ErrorMessage string `json:"error_message"`
		Error        string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil {
		for _, m := range []string{e.Message, e.ErrorMessage, e.Error} {
			if m = strings.TrimSpace(m); m != "" {
				return clip(m)
			}
		}
	}
	return excerpt(body)
}

// excerpt is a short, printable view of a body for an error message.
func excerpt(body []byte) string {
	s := strings.TrimSpace(string(body))
	if s == "" {
		return "(empty body)"
	}
	if !utf8.ValidString(s) {
		return fmt.Sprintf("(%d bytes of non-text body)", len(body))
	}
	return clip(s)
}

// clip shortens s to at most 300 bytes on a rune boundary.
func clip(s string) string {
	const limit = 300
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
