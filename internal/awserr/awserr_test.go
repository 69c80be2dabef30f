package awserr_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	schtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/dispatcherhq/dispatcher/internal/awserr"
)

// sdkErr wraps apiErr the way an SDK client returns a service error: an
// operation error around an HTTP response error with the given status.
func sdkErr(status int, apiErr error) error {
	return &smithy.OperationError{ServiceID: "Scheduler", OperationName: "CreateSchedule", Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: apiErr},
		RequestID:     "req-1",
	}}
}

// opErr wraps err the way the SDK returns a failure that had no response.
func opErr(err error) error {
	return &smithy.OperationError{ServiceID: "SQS", OperationName: "SendMessage", Err: err}
}

// timerPermanent is what the AWS timer passes: a full schedule quota is not
// fixed by retrying within seconds.
var timerPermanent = map[string]string{"ServiceQuotaExceededException": "quota_exceeded"}

func TestClassify(t *testing.T) {
	t.Parallel()
	invalidParams := &smithy.InvalidParamsError{Context: "SendMessageInput"}
	invalidParams.Add(smithy.NewErrParamRequired("QueueUrl"))
	refused := &url.Error{Op: "Post", URL: "https://sqs.us-east-1.amazonaws.com", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}

	for _, tc := range []struct {
		name      string
		err       error
		permanent map[string]string
		code      string
		transient bool
	}{
		{"nil", nil, nil, "", false},
		// The rule decided once (see the package doc): deadlines and
		// cancellations are transient, however they are wrapped.
		{"DeadlineExceeded bare", context.DeadlineExceeded, nil, awserr.Timeout, true},
		{"DeadlineExceeded in a send", opErr(&smithyhttp.RequestSendError{Err: context.DeadlineExceeded}), nil, awserr.Timeout, true},
		{"DeadlineExceeded wrapped by the caller", fmt.Errorf("scheduler.CreateSchedule: %w", opErr(context.DeadlineExceeded)), nil, awserr.Timeout, true},
		{"Canceled", opErr(&aws.RequestCanceledError{Err: context.Canceled}), nil, awserr.Cancelled, true},
		{"SDK parameter validation", opErr(invalidParams), nil, awserr.InvalidRequest, false},

		{"ThrottlingException code", sdkErr(400, &smithy.GenericAPIError{Code: "ThrottlingException"}), nil, awserr.Throttled, true},
		{"Scheduler ThrottlingException typed, no response", &schtypes.ThrottlingException{}, nil, awserr.Throttled, true},
		{"SQS RequestThrottled", &sqstypes.RequestThrottled{}, nil, awserr.Throttled, true},
		{"SQS KmsThrottled", &sqstypes.KmsThrottled{}, nil, awserr.Throttled, true},
		{"RequestTimeout code", sdkErr(408, &smithy.GenericAPIError{Code: "RequestTimeout"}), nil, awserr.Timeout, true},
		{"Scheduler InternalServerException, no response", &schtypes.InternalServerException{}, nil, awserr.ProviderUnavailable, true},
		{"InternalFailure with a 400", sdkErr(400, &smithy.GenericAPIError{Code: "InternalFailure"}), nil, awserr.ProviderUnavailable, true},
		{"HTTP 503", sdkErr(503, &smithy.GenericAPIError{Code: "SomethingNew"}), nil, awserr.ProviderUnavailable, true},
		{"HTTP 500 without an API error", opErr(&smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 500}}, Err: errors.New("boom")}), nil, awserr.ProviderUnavailable, true},
		{"HTTP 429 unknown code", sdkErr(429, &smithy.GenericAPIError{Code: "SomethingNew"}), nil, awserr.Throttled, true},
		{"network timeout", opErr(&smithyhttp.RequestSendError{Err: &url.Error{Op: "Post", URL: "https://x", Err: &net.DNSError{Err: "i/o timeout", IsTimeout: true}}}), nil, awserr.Timeout, true},
		{"connection refused", opErr(&smithyhttp.RequestSendError{Err: refused}), nil, awserr.Network, true},
		{"retries exhausted keep the last error's class", opErr(&retry.MaxAttemptsError{Attempt: 3, Err: sdkErr(429, &smithy.GenericAPIError{Code: "TooManyRequestsException"})}), nil, awserr.Throttled, true},

		// The caller's permanent codes win over the generic lists:
		// LimitExceededException is a throttle code for the SDK.
		{"permanent code first", sdkErr(400, &smithy.GenericAPIError{Code: "LimitExceededException"}), map[string]string{"LimitExceededException": "limit"}, "limit", false},
		{"Scheduler quota with the timer's codes", sdkErr(402, &schtypes.ServiceQuotaExceededException{}), timerPermanent, "quota_exceeded", false},

		// What Classify cannot tell.
		{"Scheduler quota without them", sdkErr(402, &schtypes.ServiceQuotaExceededException{}), nil, "", false},
		{"Scheduler ValidationException", sdkErr(400, &schtypes.ValidationException{}), timerPermanent, "", false},
		{"SQS QueueDoesNotExist", sdkErr(400, &sqstypes.QueueDoesNotExist{}), nil, "", false},
		{"HTTP 403 access denied", sdkErr(403, &smithy.GenericAPIError{Code: "AccessDeniedException"}), nil, "", false},
		{"HTTP 400 unknown code", sdkErr(400, &smithy.GenericAPIError{Code: "SomethingNew"}), nil, "", false},
		{"plain error", errors.New("something odd"), nil, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, transient := awserr.Classify(tc.err, tc.permanent)
			if code != tc.code || transient != tc.transient {
				t.Errorf("Classify(%v) = (%q, %v), want (%q, %v)", tc.err, code, transient, tc.code, tc.transient)
			}
		})
	}
}

func TestFallback(t *testing.T) {
	t.Parallel()
	perm := map[string]string{"AccessDeniedException": "access_denied"}
	for _, tc := range []struct {
		name      string
		err       error
		code      string
		transient bool
	}{
		{"unknown is retried", errors.New("something odd"), awserr.ProviderError, true},
		{"unknown 4xx is retried", sdkErr(400, &smithy.GenericAPIError{Code: "SomethingNew"}), awserr.ProviderError, true},
		{"deadline", opErr(context.DeadlineExceeded), awserr.Timeout, true},
		{"cancelled", opErr(context.Canceled), awserr.Cancelled, true},
		{"permanent code", sdkErr(403, &smithy.GenericAPIError{Code: "AccessDeniedException"}), "access_denied", false},
		{"throttled", sdkErr(429, &smithy.GenericAPIError{Code: "Throttling"}), awserr.Throttled, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := fmt.Errorf("sesv2.SendEmail: %w", tc.err)
			se := awserr.Fallback(err, perm)
			if se.Code != tc.code || se.Transient != tc.transient {
				t.Errorf("Fallback(%v) = {%s transient=%v}, want {%s transient=%v}", tc.err, se.Code, se.Transient, tc.code, tc.transient)
			}
			if se.Message != err.Error() {
				t.Errorf("message %q, want the error's %q", se.Message, err.Error())
			}
		})
	}
}

func TestHTTPStatus(t *testing.T) {
	t.Parallel()
	if got := awserr.HTTPStatus(sdkErr(418, errors.New("teapot"))); got != 418 {
		t.Errorf("HTTPStatus(awshttp.ResponseError 418) = %d", got)
	}
	if got := awserr.HTTPStatus(opErr(&smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 502}}})); got != 502 {
		t.Errorf("HTTPStatus(smithyhttp.ResponseError 502) = %d", got)
	}
	if got := awserr.HTTPStatus(errors.New("no response")); got != 0 {
		t.Errorf("HTTPStatus(no response) = %d, want 0", got)
	}
}
