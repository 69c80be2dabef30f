package ses

import (
	"errors"

	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	"github.com/dispatcherhq/dispatcher/internal/awserr"
	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// Failure codes of the SES sender, as they appear in a row's last_error.
const (
	// Permanent: retrying the same message cannot help.
	CodeMessageRejected     = "message_rejected"       // MessageRejected: SES refused this message (unverified sender, sandbox recipient, virus…)
	CodeMailFromNotVerified = "mail_from_not_verified" // MailFromDomainNotVerifiedException
	CodeAccountSuspended    = "account_suspended"      // AccountSuspendedException
	CodeBadRequest          = "bad_request"            // BadRequestException, and validation errors of unmodelled codes
	CodeNotFound            = "not_found"              // NotFoundException (e.g. an unknown configuration set)
	CodeAccessDenied        = "access_denied"          // AccessDenied / AccessDeniedException: IAM does not allow ses:SendEmail
	CodeInvalidRequest      = awserr.InvalidRequest    // the SDK's own parameter validation failed; nothing was sent
	CodeInvalidAddress      = "invalid_address"        // an address did not parse; nothing was sent

	// Transient: a later attempt may succeed.
	CodeSendingPaused       = "sending_paused"           // SendingPausedException
	CodeThrottled           = awserr.Throttled           // TooManyRequestsException, throttling codes, HTTP 429
	CodeLimitExceeded       = "limit_exceeded"           // LimitExceededException (sending quota or rate)
	CodeProviderUnavailable = awserr.ProviderUnavailable // InternalServiceErrorException, HTTP 5xx
	CodeTimeout             = awserr.Timeout             // context deadline, request timeouts
	CodeCancelled           = awserr.Cancelled           // the caller's context was cancelled
	CodeNetwork             = awserr.Network             // the request did not reach SES or the answer did not come back
	CodeProviderError       = awserr.ProviderError       // anything else (unknown errors are retried)
)

// permanentCodes are API error codes SES (or an emulator) returns outside
// the typed errors of the sesv2 model that no retry can fix.
var permanentCodes = map[string]string{
	"AccessDenied":                CodeAccessDenied,
	"AccessDeniedException":       CodeAccessDenied,
	"ValidationException":         CodeBadRequest,
	"ValidationError":             CodeBadRequest,
	"InvalidParameterValue":       CodeBadRequest, // moto's answer to a malformed address
	"InvalidParameterCombination": CodeBadRequest,
	"MissingParameter":            CodeBadRequest,
	"SerializationException":      CodeBadRequest,
}

// Classify turns an error of sesv2.SendEmail into a *comms.SendError (nil
// for nil; a *comms.SendError is returned as is). The typed errors of the
// sesv2 model decide first:
//
//	MessageRejected                     permanent message_rejected
//	MailFromDomainNotVerifiedException  permanent mail_from_not_verified
//	AccountSuspendedException           permanent account_suspended
//	BadRequestException                 permanent bad_request
//	NotFoundException                   permanent not_found
//	SendingPausedException              transient sending_paused
//	TooManyRequestsException            transient throttled
//	LimitExceededException              transient limit_exceeded
//	InternalServiceErrorException       transient provider_unavailable
//
// SendingPausedException is transient on purpose: the message is fine and
// the pause (of the account or of the configuration set) is an operator's
// switch that can be flipped back; the dispatcher's bounded retries with
// backoff give it that chance, and a row still fails, with this code, once
// its attempts are used up. AccountSuspendedException, by contrast, is
// lifted only after an AWS review that takes days, so it is permanent.
//
// Then, for any other error: a cancelled or expired context is transient
// (cancelled, timeout); the SDK's parameter validation is permanent
// (invalid_request); API error codes the SDK treats as throttling
// (retry.DefaultThrottleErrorCodes) are transient throttled, RequestTimeout
// codes transient timeout; access-denied and validation codes are permanent
// (access_denied, bad_request); an HTTP status of 5xx is transient
// provider_unavailable and 429 transient throttled; connection and network
// errors are transient (network_error, or timeout when the network said
// so). Anything unknown is transient provider_error: retries are bounded
// by max_attempts, while failing a message for an error nobody understood
// would drop it for good.
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
		rejected   *types.MessageRejected
		mailFrom   *types.MailFromDomainNotVerifiedException
		suspended  *types.AccountSuspendedException
		badRequest *types.BadRequestException
		notFound   *types.NotFoundException
		paused     *types.SendingPausedException
		tooMany    *types.TooManyRequestsException
		limit      *types.LimitExceededException
		internal   *types.InternalServiceErrorException
	)
	switch {
	case errors.As(err, &rejected):
		return perm(CodeMessageRejected)
	case errors.As(err, &mailFrom):
		return perm(CodeMailFromNotVerified)
	case errors.As(err, &suspended):
		return perm(CodeAccountSuspended)
	case errors.As(err, &badRequest):
		return perm(CodeBadRequest)
	case errors.As(err, &notFound):
		return perm(CodeNotFound)
	case errors.As(err, &paused):
		return trans(CodeSendingPaused)
	case errors.As(err, &tooMany):
		return trans(CodeThrottled)
	case errors.As(err, &limit):
		return trans(CodeLimitExceeded)
	case errors.As(err, &internal):
		return trans(CodeProviderUnavailable)
	}
	return awserr.Fallback(err, permanentCodes)
}
