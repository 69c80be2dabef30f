package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
)

// Transport errors the handlers raise before the service sees a request.
var (
	errTooLarge     = errors.New("payload too large")
	errMediaType    = errors.New("unsupported media type")
	errRouteMissing = errors.New("route not found")
	// errHeaderTooLarge: the header fields exceed MaxHeaderBytes.
	errHeaderTooLarge = errors.New("request header fields too large")
)

// apiError is the body of every error response.
type apiError struct {
	Code    string             `json:"code"`
	Message string             `json:"message"`
	Details []comms.FieldError `json:"details"`
}

// classify maps an error to its HTTP status and error body. It is the one
// place that knows how domain errors become statuses.
func classify(err error) (int, apiError) {
	var (
		ve *comms.ValidationError
		se *comms.ScopeError
		te *comms.TransitionError
		me *methodError
		dt *comms.SendingDomainTakenError
		rl *rateLimitedError
	)
	e := func(status int, code, msg string) (int, apiError) {
		return status, apiError{Code: code, Message: msg, Details: []comms.FieldError{}}
	}
	switch {
	case errors.As(err, &ve):
		details := make([]comms.FieldError, len(ve.Fields))
		for i, f := range ve.Fields {
			details[i] = comms.FieldError{Field: f.Field, Message: clientText(f.Message, "is not valid")}
		}
		return http.StatusUnprocessableEntity, apiError{Code: "validation_failed",
			Message: fmt.Sprintf("The request has %d invalid field(s); see details.", len(ve.Fields)), Details: details}
	case errors.Is(err, comms.ErrInvalidJSON):
		msg := "The body is not valid JSON."
		if why := after(err.Error(), comms.ErrInvalidJSON.Error()+": "); why != err.Error() {
			msg = "The body is not valid JSON: " + clientText(why, "it cannot be read") + "."
		}
		return e(http.StatusBadRequest, "invalid_json", msg)
	case errors.Is(err, errHeaderTooLarge):
		return e(http.StatusRequestHeaderFieldsTooLarge, "header_too_large", fmt.Sprintf("The request's header fields are larger than %d bytes.", MaxHeaderBytes))
	case errors.Is(err, ErrBadSignature):
		return e(http.StatusUnauthorized, "invalid_signature", "The webhook signature does not verify (wrong secret, altered body, or a timestamp outside the tolerance); nothing was changed.")
	case errors.As(err, &rl):
		return e(http.StatusTooManyRequests, "rate_limited", "This company has made more requests than its rate limit allows; nothing was done. Retry after Retry-After seconds; RateLimit-Policy and RateLimit describe the limit and what is left.")
	case errors.Is(err, comms.ErrUnauthenticated):
		return e(http.StatusUnauthorized, "unauthorized", "Send a valid, unrevoked API key as 'Authorization: Bearer dk_live_…'.")
	case errors.As(err, &se):
		return e(http.StatusForbidden, "insufficient_scope", "This API key lacks a scope: "+after(se.Error(), "insufficient scope: ")+".")
	case errors.Is(err, comms.ErrInsufficientCredits):
		return e(http.StatusPaymentRequired, "insufficient_credits", "The company has no credits left; nothing was written. Reading and cancelling stay free.")
	case errors.Is(err, comms.ErrNotFound), errors.Is(err, errRouteMissing):
		return e(http.StatusNotFound, "not_found", "No such resource.")
	case errors.As(err, &me):
		return e(http.StatusMethodNotAllowed, "method_not_allowed", "This path does not accept that method; it accepts "+me.allow+".")
	case errors.As(err, &te) && errors.Is(err, comms.ErrNotPending):
		return e(http.StatusConflict, "not_pending", strings.ToUpper(te.Error()[:1])+te.Error()[1:]+".")
	case errors.Is(err, comms.ErrIdempotencyKeyReused):
		return http.StatusUnprocessableEntity, apiError{Code: "idempotency_key_reused",
			Message: "This Idempotency-Key was used with a different body in the last 24 hours; use a new key for a new request.",
			Details: []comms.FieldError{{Field: "Idempotency-Key", Message: "was used with a different body"}}}
	case errors.Is(err, comms.ErrPhoneNumberTaken):
		// Which resource, and which company, holds the number is not said.
		return http.StatusConflict, apiError{Code: "phone_number_taken",
			Message: "This E.164 number is already registered as another phone-number resource; a number can be registered once. Nothing was changed.",
			Details: []comms.FieldError{{Field: "e164", Message: "is already registered"}}}
	case errors.As(err, &dt):
		// Which company holds the domain, and through which domain, is not said.
		return http.StatusConflict, apiError{Code: "sending_domain_taken",
			Message: "A sending domain belongs to one company, with its subdomains, and another company already declares one of these domains, a parent domain or a subdomain of it; see details. Nothing was changed.",
			Details: dt.Fields()}
	case errors.Is(err, webhooks.ErrTooManyEndpoints):
		return e(http.StatusConflict, "too_many_webhook_endpoints", fmt.Sprintf("The company has %d webhook endpoints, the most allowed; delete one (or filter several event types into one) first. Nothing was created.", webhooks.MaxEndpoints))
	case errors.Is(err, webhooks.ErrEndpointBusy):
		return e(http.StatusTooManyRequests, "endpoint_busy", fmt.Sprintf("The endpoint already has %d messages in flight (it answers slowly or not at all); a test message would add a connection. Retry after Retry-After seconds.", webhooks.PerEndpoint))
	case errors.Is(err, webhooks.ErrEndpointDisabled):
		return e(http.StatusConflict, "endpoint_disabled", "The webhook endpoint is disabled; enable it (PATCH with \"disabled\": false) before retrying its messages. Nothing was changed.")
	case errors.Is(err, comms.ErrStoreUnavailable):
		return e(http.StatusServiceUnavailable, "store_unavailable", "Dispatcher cannot store anything right now (its disk is full or failing); nothing was changed. Retry the request after Retry-After seconds (a create with the same Idempotency-Key).")
	case errors.Is(err, comms.ErrUnavailable):
		return e(http.StatusServiceUnavailable, "provider_unavailable", "A provider this request depends on (Amazon SES, asked whether a sending domain is verified) did not answer; nothing was changed. Retry the request.")
	case errors.Is(err, comms.ErrConflict), errors.Is(err, comms.ErrIdempotencyKeyExists), errors.Is(err, comms.ErrAlreadyExists):
		return e(http.StatusConflict, "conflict", "The resource changed while the request ran; retry it.")
	case errors.Is(err, errTooLarge):
		return e(http.StatusRequestEntityTooLarge, "payload_too_large", fmt.Sprintf("The body is larger than %d bytes.", maxBody))
	case errors.Is(err, errMediaType):
		return e(http.StatusUnsupportedMediaType, "unsupported_media_type", "Send the body as uncompressed UTF-8 JSON with 'Content-Type: application/json' (no other charset, no Content-Encoding).")
	}
	return e(http.StatusInternalServerError, "internal_error", "Something went wrong on our side; it has been logged. Retry the request (a create with the same Idempotency-Key).")
}

// methodError is a request for a path that exists with another method.
type methodError struct{ allow string }

func (e *methodError) Error() string { return "method not allowed; allow " + e.allow }

// goInternals are fragments of the texts Go's own packages put in errors
// (encoding/json, strconv, time, net/mail) and of this module's package
// prefixes. A client never reads them: they say nothing about its request
// in its terms, and they describe our internals.
var goInternals = regexp.MustCompile(`json: |Go struct|Go value|cannot unmarshal|strconv\.|parsing time|mail: |\b(bizhours|comms|contract|scheduling|retell|httpapi|store|sqlite|dynamo)[.:] ?`)

// clientText is s, unless it carries Go internals (a message built from a
// library's error somewhere upstream), then fallback.
func clientText(s, fallback string) string {
	if goInternals.MatchString(s) {
		return fallback
	}
	return s
}

func after(s, prefix string) string {
	if i := strings.Index(s, prefix); i >= 0 {
		return s[i+len(prefix):]
	}
	return s
}
