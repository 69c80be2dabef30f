// Package awserr classifies what every AWS API error shares, whatever the
// service: error codes outside a service's model, HTTP statuses and
// network failures. The SES and SNS senders classify their typed errors
// first and fall back to it.
package awserr

import (
	"errors"
	"net"

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
)

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
