// Package awserr classifies what every AWS API error shares, whatever the
// service: error codes outside a service's model, HTTP statuses and
// network failures. The SES and SNS senders classify their typed errors
// first and fall back to it.
package awserr

import (
	"context"

	"errors"
	"net"

	"github.com/dispatcherhq/dispatcher/internal/comms"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// The failure codes Common returns (as they appear in a row's last_error).
const (
	Throttled           = "throttled"
	Timeout             = "timeout"
	ProviderUnavailable = "provider_unavailable"
	Network             = "network_error"
	Cancelled           = "cancelled"
	InvalidRequest      = "invalid_request"
	ProviderError       = "provider_error"
)

// Fallback classifies an error a sender's own typed errors did not: a
// cancelled or expired context is transient (cancelled, timeout); the SDK's
// parameter validation is permanent (invalid_request); then Common; and
// anything unknown is transient provider_error — retries are bounded,
// while failing a message for an error nobody understood drops it for good.
func Fallback(err error, permanent map[string]string) *comms.SendError {
	msg := err.Error()
	var invalidParams *smithy.InvalidParamsError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return comms.Transient(Timeout, "%s", msg)
	case errors.Is(err, context.Canceled):
		return comms.Transient(Cancelled, "%s", msg)
	case errors.As(err, &invalidParams):
		return comms.Permanent(InvalidRequest, "%s", msg)
	}
	code, transient := Common(err, permanent)
	switch {
	case code == "":
		return comms.Transient(ProviderError, "%s", msg)
	case transient:
		return comms.Transient(code, "%s", msg)
	}
	return comms.Permanent(code, "%s", msg)
}

// Common classifies what every AWS API shares: error codes outside
// the service model, HTTP statuses and network failures. It returns "" when
// it cannot tell.
func Common(err error, permanent map[string]string) (code string, transient bool) {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		c := apiErr.ErrorCode()
		if _, ok := retry.DefaultThrottleErrorCodes[c]; ok {
			return Throttled, true
		}
		if _, ok := retry.DefaultRetryableErrorCodes[c]; ok {
			return Timeout, true
		}
		if code, ok := permanent[c]; ok {
			return code, false
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
	}
	return "", false
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
