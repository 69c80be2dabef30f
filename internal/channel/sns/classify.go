package sns

import (
	"errors"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/dispatcherhq/dispatcher/internal/awserr"
	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// Failure codes of the SNS sender, as they appear in a row's last_error.
const (
	// Permanent: retrying the same message cannot help.
	CodeInvalidAddress           = "invalid_address"            // the destination number is not valid to publish to
	CodeInvalidOriginationNumber = "invalid_origination_number" // the From number is missing, malformed or refused
	CodeInvalidParameter         = "invalid_parameter"          // any other InvalidParameter / ParameterValueInvalid / ValidationException
	CodeOptedOut                 = "opted_out"                  // OptedOutException
	CodeAccessDenied             = "access_denied"              // AuthorizationErrorException, InvalidSecurityException, AccessDenied codes
	CodeEndpointDisabled         = "endpoint_disabled"          // EndpointDisabledException, PlatformApplicationDisabledException
	CodeNotFound                 = "not_found"                  // NotFoundException
	CodeKMS                      = "kms_error"                  // KMS key refused, disabled, missing or not opted in
	CodeInvalidRequest           = awserr.InvalidRequest        // the SDK's own parameter validation failed; nothing was sent

	// Transient: a later attempt may succeed.
	CodeThrottled           = awserr.Throttled           // ThrottledException, KMSThrottlingException, throttling codes, HTTP 429
	CodeProviderUnavailable = awserr.ProviderUnavailable // InternalErrorException, HTTP 5xx
	CodeTimeout             = awserr.Timeout             // context deadline, request timeouts
	CodeCancelled           = awserr.Cancelled           // the caller's context was cancelled
	CodeNetwork             = awserr.Network             // the request did not reach SNS or the answer did not come back
	CodeProviderError       = awserr.ProviderError       // anything else (unknown errors are retried)
)

// permanentCodes are API error codes outside the typed errors of the sns
// model that no retry can fix.
var permanentCodes = map[string]string{
	"AccessDenied":                CodeAccessDenied,
	"AccessDeniedException":       CodeAccessDenied,
	"ValidationError":             CodeInvalidParameter,
	"InvalidParameterValue":       CodeInvalidParameter,
	"InvalidParameterCombination": CodeInvalidParameter,
	"MissingParameter":            CodeInvalidParameter,
}

// Classify turns an error of sns.Publish into a *comms.SendError (nil for
// nil; a *comms.SendError is returned as is). The typed errors of the sns
// model decide first:
//
//	InvalidParameterException, InvalidParameterValueException,
//	ValidationException                    permanent invalid_address /
//	                                       invalid_origination_number /
//	                                       invalid_parameter (see below)
//	OptedOutException                      permanent opted_out
//	AuthorizationErrorException,
//	InvalidSecurityException               permanent access_denied
//	EndpointDisabledException,
//	PlatformApplicationDisabledException   permanent endpoint_disabled
//	NotFoundException                      permanent not_found
//	KMSAccessDenied/Disabled/InvalidState/
//	NotFound/OptInRequired                 permanent kms_error
//	ThrottledException,
//	KMSThrottlingException                 transient throttled
//	InternalErrorException                 transient provider_unavailable
//
// SNS reports every bad parameter as InvalidParameter and names it only in
// the message ("Invalid parameter: PhoneNumber Reason: … is not valid to
// publish to"), so a message naming the origination number gives
// invalid_origination_number, one naming the phone number
// invalid_address, any other invalid_parameter.
//
// A publish to a number that opted out is accepted by SNS and dropped
// later (it shows in the delivery-status logs only); OptedOutException
// belongs to the SMS-sandbox operations, and is mapped in case Publish
// ever returns it.
//
// Then, for any other error: a cancelled or expired context is transient
// (cancelled, timeout); the SDK's parameter validation is permanent
// (invalid_request); API error codes the SDK treats as throttling
// (retry.DefaultThrottleErrorCodes) are transient throttled, RequestTimeout
// codes transient timeout; access-denied and validation codes are
// permanent; an HTTP status of 5xx is transient provider_unavailable and
// 429 transient throttled; connection and network errors are transient
// (network_error, or timeout when the network said so). Anything unknown is
// transient provider_error: retries are bounded by max_attempts, while
// failing a message for an error nobody understood would drop it for good.
func Classify(err error) *comms.SendError {
	if err == nil {
		return nil
	}
	var se *comms.SendError
	if errors.As(err, &se) {
		return se
	}
	msg := err.Error()
	perm := func(code string) *comms.SendError { return comms.Permanent(code, "%s", msg) }
	trans := func(code string) *comms.SendError { return comms.Transient(code, "%s", msg) }

	var (
		invalidParam     *types.InvalidParameterException
		invalidValue     *types.InvalidParameterValueException
		validation       *types.ValidationException
		optedOut         *types.OptedOutException
		authorization    *types.AuthorizationErrorException
		security         *types.InvalidSecurityException
		endpointDisabled *types.EndpointDisabledException
		appDisabled      *types.PlatformApplicationDisabledException
		notFound         *types.NotFoundException
		kmsAccessDenied  *types.KMSAccessDeniedException
		kmsDisabled      *types.KMSDisabledException
		kmsInvalidState  *types.KMSInvalidStateException
		kmsNotFound      *types.KMSNotFoundException
		kmsOptInRequired *types.KMSOptInRequired
		throttled        *types.ThrottledException
		kmsThrottled     *types.KMSThrottlingException
		internal         *types.InternalErrorException
	)
	switch {
	case errors.As(err, &invalidParam):
		return perm(parameterCode(invalidParam.ErrorMessage()))
	case errors.As(err, &invalidValue):
		return perm(parameterCode(invalidValue.ErrorMessage()))
	case errors.As(err, &validation):
		return perm(parameterCode(validation.ErrorMessage()))
	case errors.As(err, &optedOut):
		return perm(CodeOptedOut)
	case errors.As(err, &authorization), errors.As(err, &security):
		return perm(CodeAccessDenied)
	case errors.As(err, &endpointDisabled), errors.As(err, &appDisabled):
		return perm(CodeEndpointDisabled)
	case errors.As(err, &notFound):
		return perm(CodeNotFound)
	case errors.As(err, &kmsAccessDenied), errors.As(err, &kmsDisabled), errors.As(err, &kmsInvalidState),
		errors.As(err, &kmsNotFound), errors.As(err, &kmsOptInRequired):
		return perm(CodeKMS)
	case errors.As(err, &throttled), errors.As(err, &kmsThrottled):
		return trans(CodeThrottled)
	case errors.As(err, &internal):
		return trans(CodeProviderUnavailable)
	}
	return awserr.Fallback(err, permanentCodes)
}

// parameterCode tells which parameter an InvalidParameter message blames.
func parameterCode(msg string) string {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "originationnumber"), strings.Contains(m, "origination number"):
		return CodeInvalidOriginationNumber
	case strings.Contains(m, "phonenumber"), strings.Contains(m, "phone number"):
		return CodeInvalidAddress
	}
	return CodeInvalidParameter
}
