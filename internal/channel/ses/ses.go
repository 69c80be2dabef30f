// Package ses is the email sender of the AWS backend: a dispatch.EmailSender
// over the Amazon SES v2 SendEmail operation.
//
// Each email goes out as SES "Simple" content: the subject, the HTML body
// and a plain-text alternative generated from it by [PlainText], all in
// UTF-8. Recipients and the sender carry their display names, encoded by
// net/mail (RFC 5322 quoting, RFC 2047 encoded words for non-ASCII names);
// internationalised domains are converted to Punycode as SES requires. The
// message carries the headers X-Dispatcher-Communication-Id and
// X-Dispatcher-Attempt, and the SES message tags communication_id,
// company_id and attempt (decimal), so that SES events (bounces,
// complaints, deliveries) of a configuration set can be traced back to the
// row and to the attempt that sent them (package feedback reads them).
//
// Failures are *comms.SendError values; [Classify] documents which SES
// errors are permanent and which are retried.
package ses

import (
	"context"
	"fmt"
	"net/mail"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/mailaddr"
)

// API is the one SES v2 operation the sender uses; *sesv2.Client has it.
type API interface {
	SendEmail(ctx context.Context, params *sesv2.SendEmailInput, optFns ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error)
}

var _ API = (*sesv2.Client)(nil)

// Options configure a Sender.
type Options struct {
	// ConfigurationSet names the SES configuration set every email is sent
	// with (event publishing, tracking, dedicated IPs). Empty: none, or the
	// identity's default.
	ConfigurationSet string
}

// Sender sends email through SES v2. It is safe for concurrent use.
type Sender struct {
	client API
	opts   Options
}

var _ dispatch.EmailSender = (*Sender)(nil)

// New returns a Sender calling client, which is built once per process
// (typically sesv2.NewFromConfig(cfg)).
func New(client API, opts Options) *Sender {
	return &Sender{client: client, opts: opts}
}

// Names of the headers and message tags set on every email.
const (
	HeaderCommunicationID = "X-Dispatcher-Communication-Id"
	HeaderAttempt         = "X-Dispatcher-Attempt"
	TagCommunicationID    = "communication_id"
	TagCompanyID          = "company_id"
	TagAttempt            = "attempt"
)

const charset = "UTF-8"

// SendEmail sends m and returns the SES message id. An address that does
// not parse fails permanently (invalid_address) without calling SES; SES
// errors are classified by Classify.
func (s *Sender) SendEmail(ctx context.Context, m dispatch.Email) (string, error) {
	in, err := s.input(m)
	if err != nil {
		return "", err
	}
	out, err := s.client.SendEmail(ctx, in)
	if err != nil {
		return "", Classify(fmt.Errorf("sesv2.SendEmail: %w", err))
	}
	return aws.ToString(out.MessageId), nil
}

// input builds the SendEmail request of m.
func (s *Sender) input(m dispatch.Email) (*sesv2.SendEmailInput, error) {
	from, err := formatAddress(m.From, m.FromName)
	if err != nil {
		return nil, comms.Permanent(CodeInvalidAddress, "from address %q: %v", m.From, err)
	}
	to, err := formatAddress(m.To, m.ToName)
	if err != nil {
		return nil, comms.Permanent(CodeInvalidAddress, "to address %q: %v", m.To, err)
	}
	var cc []string
	for _, a := range m.CC {
		f, err := formatAddress(a, "")
		if err != nil {
			return nil, comms.Permanent(CodeInvalidAddress, "cc address %q: %v", a, err)
		}
		cc = append(cc, f)
	}

	body := &types.Body{Html: &types.Content{Data: aws.String(m.HTMLBody), Charset: aws.String(charset)}}
	if text := PlainText(m.HTMLBody); text != "" {
		body.Text = &types.Content{Data: aws.String(text), Charset: aws.String(charset)}
	}
	msg := &types.Message{
		Subject: &types.Content{Data: aws.String(m.Subject), Charset: aws.String(charset)},
		Body:    body,
	}
	if isHeaderValue(m.CommunicationID) {
		msg.Headers = append(msg.Headers, types.MessageHeader{Name: aws.String(HeaderCommunicationID), Value: aws.String(m.CommunicationID)})
	}
	if m.Attempt > 0 {
		msg.Headers = append(msg.Headers, types.MessageHeader{Name: aws.String(HeaderAttempt), Value: aws.String(strconv.Itoa(m.Attempt))})
	}

	in := &sesv2.SendEmailInput{
		FromEmailAddress: aws.String(from),
		Destination:      &types.Destination{ToAddresses: []string{to}, CcAddresses: cc},
		Content:          &types.EmailContent{Simple: msg},
	}
	if s.opts.ConfigurationSet != "" {
		in.ConfigurationSetName = aws.String(s.opts.ConfigurationSet)
	}
	attempt := ""
	if m.Attempt > 0 {
		attempt = strconv.Itoa(m.Attempt)
	}
	for _, t := range []struct{ name, value string }{
		{TagCommunicationID, m.CommunicationID},
		{TagCompanyID, m.CompanyID},
		{TagAttempt, attempt},
	} {
		if v := tagValue(t.value); v != "" {
			in.EmailTags = append(in.EmailTags, types.MessageTag{Name: aws.String(t.name), Value: aws.String(v)})
		}
	}
	return in, nil
}

// formatAddress returns addr with name as an RFC 5322 mailbox ("Name"
// <addr>, or addr alone without a name), the address as package mailaddr
// gives it to SES (the rule create-time validation applies: domain in
// Punycode). addr may itself be a mailbox with a name, used when name is
// empty.
func formatAddress(addr, name string) (string, error) {
	if strings.TrimSpace(addr) == "" {
		return "", fmt.Errorf("empty address")
	}
	a, err := mail.ParseAddress(addr)
	if err != nil {
		return "", fmt.Errorf("mail.ParseAddress: %w", err)
	}
	if name = strings.TrimSpace(name); name != "" {
		a.Name = name
	}
	if a.Address, err = mailaddr.ASCII(a.Address); err != nil {
		return "", fmt.Errorf("mailaddr.ASCII: %w", err)
	}
	s := a.String()
	if a.Name == "" {
		// String gives "<addr>" without a name; SES takes the bare address.
		s = strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">")
	}
	return s, nil
}

// tagValue makes v a valid SES tag value: at most 256 of [A-Za-z0-9_-],
// other characters replaced by '_'.
func tagValue(v string) string {
	b := []byte(v)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b[:min(len(b), 256)])
}

// isHeaderValue reports whether v is a non-empty header value SES takes:
// printable ASCII, at most 995 characters.
func isHeaderValue(v string) bool {
	if v == "" || len(v) > 995 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}
