// Package awserr is the one classifier of what every AWS API error shares,
// whatever the service: expired or cancelled contexts, the SDK's own
// parameter validation, error codes outside a service's model (throttling,
// internal errors, request timeouts), HTTP statuses and network failures.
//
// Its callers add what only they know. The SES and SNS senders classify
// their service's typed errors first and fall back to Fallback, which
// turns an error nobody recognised into a transient provider_error (a
// send is retried a bounded number of times by the dispatcher). The AWS
// timer (internal/timer/aws) retries within one Arm call only what
// Classify reports transient, and returns anything else at once (the
// sweeper fires the row from the store later).
//
// # Deadlines and cancellations are transient
//
// An error wrapping context.DeadlineExceeded is transient (timeout), and so
// is one wrapping context.Canceled (cancelled). Neither says anything about
// the request itself: it was slow, or its caller gave up, not wrong — it
// may not even have reached AWS. A later attempt with a fresh context may
// well succeed, and calling it permanent would fail a message for good
// because a network was slow. The deadline is also not always the
// caller's: the SDK and the HTTP client run attempts under their own
// timeouts, and such an attempt is worth retrying while the caller still
// has time.
//
// Whether to retry now is therefore not the classifier's business but the
// retry loop's: a loop must stop when its own context is done, whatever the
// class of the last error (the timer checks ctx.Err() before every
// attempt and every sleep).
package awserr

import (
	"context"
	"errors"
	"net"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// The failure codes Classify returns (as they appear in a row's last_error).
const (
	Throttled           = "throttled"
	Timeout             = "timeout"
	ProviderUnavailable = "provider_unavailable"
	Network             = "network_error"
	Cancelled           = "cancelled"
	InvalidRequest      = "invalid_request"
	ProviderError       = "provider_error"
)

// transientCodes are error codes worth retrying beyond the SDK's own lists
// (retry.DefaultThrottleErrorCodes, retry.DefaultRetryableErrorCodes):
// services name their throttling and internal errors in many ways, and an
// emulator may send them with a status the SDK would not retry.
var transientCodes = map[string]string{
	"KmsThrottled":                  Throttled, // SQS
	"KMSThrottlingException":        Throttled, // SNS
	"InternalServerException":       ProviderUnavailable,
	"InternalServerError":           ProviderUnavailable,
	"InternalFailure":               ProviderUnavailable,
	"InternalError":                 ProviderUnavailable,
	"InternalErrorException":        ProviderUnavailable,
	"InternalServiceErrorException": ProviderUnavailable,
	"ServiceUnavailable":            ProviderUnavailable,
	"ServiceUnavailableException":   ProviderUnavailable,
}

// Classify returns the failure code of err and whether a later attempt may
// succeed. permanent maps error codes the caller knows no retry can fix
// (e.g. "AccessDeniedException", or Scheduler's
// "ServiceQuotaExceededException") to the code to report; it is consulted
// before the generic transient codes, since the caller knows its service
// better than any list. The rules, in order:
//
//	context.DeadlineExceeded                 transient timeout (see the package doc)
//	context.Canceled                         transient cancelled (see the package doc)
//	SDK parameter validation                 permanent invalid_request (nothing was sent)
//	a code in permanent                      permanent, that code
//	SDK throttle codes, KMS throttling       transient throttled
//	SDK retryable codes (RequestTimeout…)    transient timeout
//	internal-error and unavailable codes     transient provider_unavailable
//	HTTP 5xx                                 transient provider_unavailable
//	HTTP 429                                 transient throttled
//	network timeout                          transient timeout
//	connection and other network errors      transient network_error
//	anything else the SDK's retryer retries  transient provider_error
//
// Anything else returns ("", false): Classify cannot tell, and the caller
// decides (see Fallback for the senders' rule).
func Classify(err error, permanent map[string]string) (code string, transient bool) {
	if err == nil {
		return "", false
	}
	var invalidParams *smithy.InvalidParamsError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return Timeout, true
	case errors.Is(err, context.Canceled):
		return Cancelled, true
	case errors.As(err, &invalidParams):
		return InvalidRequest, false
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		c := apiErr.ErrorCode()
		if code, ok := permanent[c]; ok {
			return code, false
		}
		if _, ok := retry.DefaultThrottleErrorCodes[c]; ok {
			return Throttled, true
		}
		if _, ok := retry.DefaultRetryableErrorCodes[c]; ok {
			return Timeout, true
		}
		if code, ok := transientCodes[c]; ok {
			return code, true
		}
	}
	switch s := HTTPStatus(err); {
	case s >= 500:
		return ProviderUnavailable, true
	case s == 429:
		return Throttled, true
	}
	var (
		connErr interface{ ConnectionError() bool }
		netErr  net.Error
	)
	switch {
	case errors.As(err, &netErr) && netErr.Timeout():
		return Timeout, true
	case errors.As(err, &connErr) && connErr.ConnectionError(), errors.As(err, &netErr):
		return Network, true
	case retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary:
		// Whatever else the SDK's own retryer would retry.
		return ProviderError, true
	}
	return "", false
}

// Fallback classifies, for a sender, an error its own typed errors did not:
// Classify, and anything Classify cannot tell is transient provider_error
// — retries are bounded by max_attempts, while failing a message for an
// error nobody understood would drop it for good.
func Fallback(err error, permanent map[string]string) *comms.SendError {
	msg := err.Error()
	code, transient := Classify(err, permanent)
	switch {
	case code == "":
		return comms.Transient(ProviderError, "%s", msg)
	case transient:
		return comms.Transient(code, "%s", msg)
	}
	return comms.Permanent(code, "%s", msg)
}

// HTTPStatus is the HTTP status of the response that carried err, 0 when
// err came with no response. SDK clients return *awshttp.ResponseError,
// which embeds (and unwraps past) *smithyhttp.ResponseError, so both are
// looked for.
func HTTPStatus(err error) int {
	var awsErr *awshttp.ResponseError
	if errors.As(err, &awsErr) && awsErr.ResponseError != nil && awsErr.Response != nil && awsErr.Response.Response != nil {
		return awsErr.Response.StatusCode
	}
	var smithyErr *smithyhttp.ResponseError
	if errors.As(err, &smithyErr) && smithyErr.Response != nil && smithyErr.Response.Response != nil {
		return smithyErr.Response.StatusCode
	}
	return 0
}
