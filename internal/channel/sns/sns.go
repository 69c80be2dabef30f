// Package sns is the SMS sender of the AWS backend: a dispatch.SMSSender
// over the Amazon SNS Publish operation, sending straight to a phone number
// (no topic).
//
// Every text goes out as a transactional SMS (attribute
// AWS.SNS.SMS.SMSType = Transactional, the type AWS routes for reliability
// rather than cost) from the company's own number (attribute
// AWS.MM.SMS.OriginationNumber = the E.164 of the phone-number resource),
// optionally with an alphanumeric sender ID (AWS.SNS.SMS.SenderID) where
// the destination country supports one.
//
// SNS accepts a publish to a number that opted out (replied STOP) and drops
// it afterwards; that outcome shows only in SNS delivery-status logs, not
// here. Failures are *comms.SendError values; [Classify] documents which
// SNS errors are permanent and which are retried.
package sns

import (
	"context"
	"fmt"
	"regexp"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
)

// API is the one SNS operation the sender uses; *sns.Client has it.
type API interface {
	Publish(ctx context.Context, params *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

var _ API = (*sns.Client)(nil)

// Options configure a Sender.
type Options struct {
	// SenderID, when set, is sent as AWS.SNS.SMS.SenderID: the
	// alphanumeric sender (up to 11 characters) shown by handsets in the
	// countries that support one. Empty: none.
	SenderID string
}

// Sender sends text messages through SNS. It is safe for concurrent use.
type Sender struct {
	client API
	opts   Options
}

var _ dispatch.SMSSender = (*Sender)(nil)

// New returns a Sender calling client, which is built once per process
// (typically sns.NewFromConfig(cfg)).
func New(client API, opts Options) *Sender {
	return &Sender{client: client, opts: opts}
}

// The SMS message attributes the sender sets.
const (
	AttrOriginationNumber = "AWS.MM.SMS.OriginationNumber"
	AttrSMSType           = "AWS.SNS.SMS.SMSType"
	AttrSenderID          = "AWS.SNS.SMS.SenderID"

	// SMSTypeTransactional is the AttrSMSType of every message: these are
	// messages a customer scheduled for one recipient, not marketing.
	SMSTypeTransactional = "Transactional"
)

// e164 is the E.164 form SNS requires: +, country code, at most 15 digits.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)

// SendSMS publishes m.Body to the phone number m.To from the origination
// number m.From and returns the SNS message id. A To or From that is not
// E.164 (an empty From included: SNS would then pick any number of the
// AWS account, which all companies share) fails permanently
// (invalid_address, invalid_origination_number) without calling SNS; SNS
// errors are classified by Classify.
func (s *Sender) SendSMS(ctx context.Context, m dispatch.SMS) (string, error) {
	in, err := s.input(m)
	if err != nil {
		return "", err
	}
	out, err := s.client.Publish(ctx, in)
	if err != nil {
		return "", Classify(fmt.Errorf("sns.Publish: %w", err))
	}
	return aws.ToString(out.MessageId), nil
}

// input builds the Publish request of m.
func (s *Sender) input(m dispatch.SMS) (*sns.PublishInput, error) {
	if !e164.MatchString(m.To) {
		return nil, comms.Permanent(CodeInvalidAddress, "to number %q is not E.164", m.To)
	}
	// Without an origination number SNS would pick any number of the AWS
	// account, which is shared by all companies: never send that way.
	if !e164.MatchString(m.From) {
		return nil, comms.Permanent(CodeInvalidOriginationNumber, "origination number %q is not E.164", m.From)
	}
	attrs := map[string]types.MessageAttributeValue{
		AttrOriginationNumber: stringAttr(m.From),
		AttrSMSType:           stringAttr(SMSTypeTransactional),
	}
	if s.opts.SenderID != "" {
		attrs[AttrSenderID] = stringAttr(s.opts.SenderID)
	}
	return &sns.PublishInput{
		PhoneNumber:       aws.String(m.To),
		Message:           aws.String(m.Body),
		MessageAttributes: attrs,
	}, nil
}

func stringAttr(v string) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
}
