package sns_test

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
	"github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	chsns "github.com/dispatcherhq/dispatcher/internal/channel/sns"
	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// sdkErr wraps apiErr the way the SDK client returns a service error: an
// operation error around an HTTP response error with the given status.
func sdkErr(status int, apiErr error) error {
	return &smithy.OperationError{
		ServiceID:     "SNS",
		OperationName: "Publish",
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
	return &smithy.OperationError{ServiceID: "SNS", OperationName: "Publish", Err: err}
}

func TestClassify(t *testing.T) {
	t.Parallel()

	invalidParams := &smithy.InvalidParamsError{Context: "PublishInput"}
	invalidParams.Add(smithy.NewErrParamRequired("Message"))

	const permanent, transient = false, true
	for _, tc := range []struct {
		name      string
		err       error
		code      string
		transient bool
	}{
		{"InvalidPhoneNumber", sdkErr(400, &types.InvalidParameterException{Message: aws.String("Invalid parameter: PhoneNumber Reason: +1555 is not valid to publish to")}), "invalid_address", permanent},
		{"InvalidPhoneNumberMoto", sdkErr(400, &types.InvalidParameterException{Message: aws.String("Phone number does not meet the E164 format")}), "invalid_address", permanent},
		{"InvalidOriginationNumber", sdkErr(400, &types.InvalidParameterException{Message: aws.String("Invalid parameter: MessageAttributes Reason: AWS.MM.SMS.OriginationNumber is not a number of this account")}), "invalid_origination_number", permanent},
		{"InvalidParameterOther", sdkErr(400, &types.InvalidParameterException{Message: aws.String("Invalid parameter: Message too long")}), "invalid_parameter", permanent},
		{"ParameterValueInvalid", sdkErr(400, &types.InvalidParameterValueException{Message: aws.String("Invalid parameter: MessageAttributes")}), "invalid_parameter", permanent},
		{"Validation", sdkErr(400, &types.ValidationException{Message: aws.String("bad")}), "invalid_parameter", permanent},
		{"OptedOut", sdkErr(400, &types.OptedOutException{Message: aws.String("opted out")}), "opted_out", permanent},
		{"AuthorizationError", sdkErr(403, &types.AuthorizationErrorException{Message: aws.String("not authorized to perform SNS:Publish")}), "access_denied", permanent},
		{"InvalidSecurity", sdkErr(403, &types.InvalidSecurityException{Message: aws.String("sigv4")}), "access_denied", permanent},
		{"EndpointDisabled", sdkErr(400, &types.EndpointDisabledException{Message: aws.String("Endpoint is disabled")}), "endpoint_disabled", permanent},
		{"PlatformApplicationDisabled", sdkErr(400, &types.PlatformApplicationDisabledException{}), "endpoint_disabled", permanent},
		{"NotFound", sdkErr(404, &types.NotFoundException{Message: aws.String("Topic does not exist")}), "not_found", permanent},
		{"KMSDisabled", sdkErr(400, &types.KMSDisabledException{}), "kms_error", permanent},
		{"KMSAccessDenied", sdkErr(400, &types.KMSAccessDeniedException{}), "kms_error", permanent},
		{"Throttled", sdkErr(429, &types.ThrottledException{Message: aws.String("Rate exceeded")}), "throttled", transient},
		{"KMSThrottling", sdkErr(400, &types.KMSThrottlingException{}), "throttled", transient},
		{"InternalError", sdkErr(500, &types.InternalErrorException{Message: aws.String("oops")}), "provider_unavailable", transient},
		{"ThrottlingCode", sdkErr(400, &smithy.GenericAPIError{Code: "Throttling", Message: "Rate exceeded"}), "throttled", transient},
		{"RequestTimeoutCode", sdkErr(408, &smithy.GenericAPIError{Code: "RequestTimeout"}), "timeout", transient},
		{"AccessDeniedCode", sdkErr(403, &smithy.GenericAPIError{Code: "AccessDenied"}), "access_denied", permanent},
		{"HTTP503", sdkErr(503, &smithy.GenericAPIError{Code: "ServiceUnavailable"}), "provider_unavailable", transient},
		{"HTTP502NoAPIError", opErr(&smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 502}}, Err: errors.New("bad gateway")}), "provider_unavailable", transient},
		{"HTTP429UnknownCode", sdkErr(429, &smithy.GenericAPIError{Code: "SomethingNew"}), "throttled", transient},
		{"Unknown4xx", sdkErr(400, &smithy.GenericAPIError{Code: "SomethingNew"}), "provider_error", transient},
		{"DeadlineExceeded", opErr(&smithyhttp.RequestSendError{Err: context.DeadlineExceeded}), "timeout", transient},
		{"Canceled", opErr(&aws.RequestCanceledError{Err: context.Canceled}), "cancelled", transient},
		{"ConnectionRefused", opErr(&smithyhttp.RequestSendError{Err: &url.Error{Op: "Post", URL: "https://sns.us-east-1.amazonaws.com", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}}), "network_error", transient},
		{"NetworkTimeout", opErr(&smithyhttp.RequestSendError{Err: &url.Error{Op: "Post", URL: "https://x", Err: &net.DNSError{Err: "i/o timeout", IsTimeout: true}}}), "timeout", transient},
		{"RetriesExhausted", opErr(&retry.MaxAttemptsError{Attempt: 3, Err: sdkErr(429, &types.ThrottledException{})}), "throttled", transient},
		{"SDKValidation", opErr(invalidParams), "invalid_request", permanent},
		{"Unknown", errors.New("something odd"), "provider_error", transient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			se := chsns.Classify(fmt.Errorf("sns.Publish: %w", tc.err))
			if se == nil {
				t.Fatal("Classify = nil")
			}
			if se.Code != tc.code || se.Transient != tc.transient {
				t.Errorf("Classify(%v) = {%s transient=%v}, want {%s transient=%v}", tc.err, se.Code, se.Transient, tc.code, tc.transient)
			}
			if !strings.HasPrefix(se.Message, "sns.Publish: ") {
				t.Errorf("message %q does not name the callee", se.Message)
			}
		})
	}

	t.Run("Nil", func(t *testing.T) {
		t.Parallel()
		if se := chsns.Classify(nil); se != nil {
			t.Errorf("Classify(nil) = %v", se)
		}
	})
	t.Run("SendErrorKept", func(t *testing.T) {
		t.Parallel()
		in := comms.Transient("throttled", "x")
		if se := chsns.Classify(fmt.Errorf("wrapped: %w", in)); se != in {
			t.Errorf("Classify(SendError) = %v, want it unchanged", se)
		}
	})
}
