package ses_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/dispatcherhq/dispatcher/internal/channel/ses"
	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// sdkErr wraps apiErr the way the SDK client returns a service error: an
// operation error around an HTTP response error with the given status.
func sdkErr(status int, apiErr error) error {
	return &smithy.OperationError{
		ServiceID:     "SESv2",
		OperationName: "SendEmail",
		Err: &awshttp.ResponseError{
			ResponseError: &smithyhttp.ResponseError{
				Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
				Err:      apiErr,
			},
			RequestID: "req-1",
		},
	}
}

// opErr wraps err the way the SDK returns a failure that had no response.
func opErr(err error) error {
	return &smithy.OperationError{ServiceID: "SESv2", OperationName: "SendEmail", Err: err}
}

func TestClassify(t *testing.T) {
	t.Parallel()

	invalidParams := &smithy.InvalidParamsError{Context: "SendEmailInput"}
	invalidParams.Add(smithy.NewErrParamRequired("Content"))

	const permanent, transient = false, true
	for _, tc := range []struct {
		name      string
		err       error
		code      string
		transient bool
	}{
		{"MessageRejected", sdkErr(400, &types.MessageRejected{Message: aws.String("Email address is not verified.")}), "message_rejected", permanent},
		{"MailFromNotVerified", sdkErr(400, &types.MailFromDomainNotVerifiedException{Message: aws.String("mail from")}), "mail_from_not_verified", permanent},
		{"AccountSuspended", sdkErr(400, &types.AccountSuspendedException{Message: aws.String("suspended")}), "account_suspended", permanent},
		{"BadRequest", sdkErr(400, &types.BadRequestException{Message: aws.String("Illegal address")}), "bad_request", permanent},
		{"NotFound", sdkErr(404, &types.NotFoundException{Message: aws.String("configuration set does not exist")}), "not_found", permanent},
		{"SendingPaused", sdkErr(400, &types.SendingPausedException{Message: aws.String("paused")}), "sending_paused", transient},
		{"TooManyRequests", sdkErr(429, &types.TooManyRequestsException{Message: aws.String("slow down")}), "throttled", transient},
		{"LimitExceeded", sdkErr(400, &types.LimitExceededException{Message: aws.String("Maximum sending rate exceeded.")}), "limit_exceeded", transient},
		{"InternalServiceError", sdkErr(500, &types.InternalServiceErrorException{Message: aws.String("oops")}), "provider_unavailable", transient},
		{"ThrottlingCode", sdkErr(400, &smithy.GenericAPIError{Code: "Throttling", Message: "Rate exceeded"}), "throttled", transient},
		{"ThrottlingExceptionCode", sdkErr(400, &smithy.GenericAPIError{Code: "ThrottlingException"}), "throttled", transient},
		{"RequestTimeoutCode", sdkErr(408, &smithy.GenericAPIError{Code: "RequestTimeout"}), "timeout", transient},
		{"AccessDenied", sdkErr(403, &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform ses:SendEmail"}), "access_denied", permanent},
		{"InvalidParameterValue", sdkErr(400, &smithy.GenericAPIError{Code: "InvalidParameterValue", Message: "Missing domain"}), "bad_request", permanent},
		{"HTTP503", sdkErr(503, &smithy.GenericAPIError{Code: "ServiceUnavailable"}), "provider_unavailable", transient},
		{"HTTP502NoAPIError", opErr(&smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 502}}, Err: errors.New("bad gateway")}), "provider_unavailable", transient},
		{"HTTP429UnknownCode", sdkErr(429, &smithy.GenericAPIError{Code: "SomethingNew"}), "throttled", transient},
		{"Unknown4xx", sdkErr(400, &smithy.GenericAPIError{Code: "SomethingNew"}), "provider_error", transient},
		{"DeadlineExceeded", opErr(&smithyhttp.RequestSendError{Err: context.DeadlineExceeded}), "timeout", transient},
		{"Canceled", opErr(&aws.RequestCanceledError{Err: context.Canceled}), "cancelled", transient},
		{"ConnectionRefused", opErr(&smithyhttp.RequestSendError{Err: &url.Error{Op: "Post", URL: "https://email.us-east-1.amazonaws.com", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}}), "network_error", transient},
		{"NetworkTimeout", opErr(&smithyhttp.RequestSendError{Err: &url.Error{Op: "Post", URL: "https://x", Err: &net.DNSError{Err: "i/o timeout", IsTimeout: true}}}), "timeout", transient},
		{"RetriesExhausted", opErr(&retry.MaxAttemptsError{Attempt: 3, Err: sdkErr(429, &types.TooManyRequestsException{})}), "throttled", transient},
		{"SDKValidation", opErr(invalidParams), "invalid_request", permanent},
		{"Unknown", errors.New("something odd"), "provider_error", transient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			se := ses.Classify(fmt.Errorf("sesv2.SendEmail: %w", tc.err))
			if se == nil {
				t.Fatal("Classify = nil")
			}
			if se.Code != tc.code || se.Transient != tc.transient {
				t.Errorf("Classify(%v) = {%s transient=%v}, want {%s transient=%v}", tc.err, se.Code, se.Transient, tc.code, tc.transient)
			}
			if !strings.HasPrefix(se.Message, "sesv2.SendEmail: ") {
				t.Errorf("message %q does not name the callee", se.Message)
			}
		})
	}

	t.Run("Nil", func(t *testing.T) {
		t.Parallel()
		if se := ses.Classify(nil); se != nil {
			t.Errorf("Classify(nil) = %v", se)
		}
	})
	t.Run("SendErrorKept", func(t *testing.T) {
		t.Parallel()
		in := comms.Permanent("invalid_address", "x")
		if se := ses.Classify(fmt.Errorf("wrapped: %w", in)); se != in {
			t.Errorf("Classify(SendError) = %v, want it unchanged", se)
		}
	})
}
