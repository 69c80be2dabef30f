package devsink

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
)

// Report is one provider document the dev senders emit after a send, in
// the shape the real provider publishes it, so that the embedded mode
// records it through the same parsers and recorder as the AWS events
// function (package feedback).
type Report struct {
	// Kind says which parser reads Body.
	Kind ReportKind
	// Body is an SES event (as SES event publishing writes it) or an SNS
	// SMS delivery-status log line.
	Body []byte
}

// ReportKind names the shape of a Report's body.
type ReportKind string

// The report kinds.
const (
	ReportSESEvent       ReportKind = "ses_event"
	ReportSMSDeliveryLog ReportKind = "sms_delivery_log"
)

// The SMS destination numbers with a scripted outcome. The first two are
// the Australian destination simulator numbers of AWS End User Messaging
// SMS (https://docs.aws.amazon.com/sms-voice/latest/userguide/test-phone-numbers.html);
// SNS itself has no opt-out simulator, so a number ending in 8888 plays a
// phone that texted STOP. Every other number is delivered.
const (
	SMSSimulatorSuccess = "+61455944038"
	SMSSimulatorFailure = "+61455944039"
	OptedOutSMSSuffix   = "8888"
)

// ProviderResponseOptedOut is the SNS delivery-status provider response of
// a number that opted out.
const ProviderResponseOptedOut = "Phone is currently opted out"

// EmailReports returns what SES event publishing would report after
// accepting m as messageID at t, following the mailbox simulator
// (https://docs.aws.amazon.com/ses/latest/dg/send-an-email-from-console.html#send-email-simulator):
// Send, then Delivery for success@, ooto@ and ordinary addresses; Delivery
// then Complaint for complaint@; a permanent Bounce for bounce@ and (subtype
// OnAccountSuppressionList) for suppressionlist@.
func EmailReports(m dispatch.Email, messageID string, t time.Time) []Report {
	mail := map[string]any{
		"timestamp": t.UTC().Format(time.RFC3339Nano), "messageId": messageID, "source": m.From,
		"destination": append([]string{m.To}, m.CC...),
		"tags": map[string][]string{"communication_id": {m.CommunicationID}, "company_id": {m.CompanyID},
			"attempt": {strconv.Itoa(m.Attempt)}, "ses:configuration-set": {"dev"}},
	}
	at := func(d time.Duration) string { return t.Add(d).UTC().Format(time.RFC3339Nano) }
	ev := func(eventType, key string, body map[string]any) Report {
		doc := map[string]any{"eventType": eventType, "mail": mail}
		if key != "" {
			doc[key] = body
		}
		b, _ := json.Marshal(doc) // maps of strings and numbers always marshal
		return Report{Kind: ReportSESEvent, Body: b}
	}
	send := ev("Send", "send", map[string]any{})
	// The reports' own times are a moment after the send: before the
	// embedded mode records them (reportDelay), as with SES.
	delivery := ev("Delivery", "delivery", map[string]any{"timestamp": at(100 * time.Millisecond), "processingTimeMillis": 100,
		"recipients": []string{m.To}, "smtpResponse": "250 2.6.0 Message received", "reportingMTA": "dev.dispatcher.local"})
	bounce := func(subType, status, diag string) Report {
		return ev("Bounce", "bounce", map[string]any{"bounceType": "Permanent", "bounceSubType": subType,
			"bouncedRecipients": []map[string]string{{"emailAddress": m.To, "action": "failed", "status": status, "diagnosticCode": diag}},
			"timestamp":         at(100 * time.Millisecond), "feedbackId": uuid.NewString(), "reportingMTA": "dsn; dev.dispatcher.local"})
	}
	switch simulatorMailbox(m.To) {
	case SimulatorBounce:
		return []Report{send, bounce("General", "5.1.1", "smtp; 550 5.1.1 user unknown")}
	case SimulatorSuppressed:
		return []Report{send, bounce("OnAccountSuppressionList", "5.1.1", "Amazon SES did not send the message to this address because it is on the suppression list for your account.")}
	case SimulatorComplaint:
		return []Report{send, delivery, ev("Complaint", "complaint", map[string]any{
			"complainedRecipients": []map[string]string{{"emailAddress": m.To}}, "timestamp": at(200 * time.Millisecond),
			"feedbackId": uuid.NewString(), "complaintFeedbackType": "abuse", "userAgent": "dev"})}
	}
	return []Report{send, delivery}
}

// simulatorMailbox returns the mailbox-simulator address to stands for
// ("" when it is not one): case-insensitive, with any +label dropped.
func simulatorMailbox(to string) string {
	addr := strings.ToLower(strings.TrimSpace(to))
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || domain != SimulatorDomain {
		return ""
	}
	base, _, _ := strings.Cut(local, "+")
	return base + "@" + domain
}

// SMSReports returns the SNS SMS delivery-status log line for m, sent as
// messageID at t (https://docs.aws.amazon.com/sns/latest/dg/sms_stats_cloudwatch.html):
// FAILURE for the failure simulator number and for a number that opted out
// (ending in OptedOutSMSSuffix), SUCCESS otherwise.
func SMSReports(m dispatch.SMS, messageID string, t time.Time) []Report {
	status, response := "SUCCESS", "Message has been accepted by phone carrier"
	switch to := strings.TrimSpace(m.To); {
	case to == SMSSimulatorFailure:
		status, response = "FAILURE", "Unknown error attempting to reach phone"
	case strings.HasSuffix(to, OptedOutSMSSuffix):
		status, response = "FAILURE", ProviderResponseOptedOut
	}
	doc := map[string]any{
		"notification": map[string]string{"messageId": messageID, "timestamp": t.UTC().Format("2006-01-02 15:04:05.000")},
		"delivery": map[string]any{"destination": m.To, "providerResponse": response, "smsType": "Transactional",
			"priceInUSD": 0.00645, "numberOfMessageParts": 1, "dwellTimeMs": 599, "dwellTimeMsUntilDeviceAck": 1344},
		"status": status,
	}
	b, _ := json.Marshal(doc)
	return []Report{{Kind: ReportSMSDeliveryLog, Body: b}}
}

// FindAttempt answers from the outbox, the dev senders' own record of what
// they sent: the provider message id of the line that sent the row's
// current attempt, if any (dispatch.AttemptLedger). It looks the attempt up
// in an index of the outbox's sent lines, built on first use by reading the
// file once and extended on each later call by the lines appended since
// (by this process or another writing the same file), so that a sweep of
// many uncertain rows reads the file once, not once per row.
func (o *Outbox) FindAttempt(ctx context.Context, row comms.Communication) (string, bool, error) {
	return o.findAttempt(ctx, row.ID, row.AttemptCount)
}

// Complete is true: a line is appended before a send returns, so an attempt
// with no line was not sent.
func (o *Outbox) Complete() bool { return true }

// attemptKey names one attempt of one row.
type attemptKey struct {
	id      string
	attempt int
}

// attemptIndex is the outbox's sent lines by attempt, as far as the file
// has been read (offset: the end of its last complete line read).
type attemptIndex struct {
	mu     sync.Mutex
	offset int64
	sent   map[attemptKey]string
}

func (o *Outbox) findAttempt(ctx context.Context, communicationID string, attempt int) (string, bool, error) {
	o.mu.Lock()
	closed := o.f == nil
	o.mu.Unlock()
	if closed {
		return "", false, fmt.Errorf("devsink: find attempt: %w", os.ErrClosed)
	}
	ix := &o.index
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if err := ix.extend(ctx, o.path); err != nil {
		return "", false, fmt.Errorf("devsink: find attempt: %w", err)
	}
	id, ok := ix.sent[attemptKey{communicationID, attempt}]
	return id, ok, nil
}

// extend reads the complete lines appended to the file at path since the
// last call (all of it the first time, or when the file is now shorter
// than what was read: it was replaced) into the index. A line still being
// written (no newline yet) is left for the next call.
func (ix *attemptIndex) extend(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if ix.sent == nil || st.Size() < ix.offset {
		ix.sent, ix.offset = map[attemptKey]string{}, 0
	}
	if st.Size() == ix.offset {
		return nil
	}
	if _, err := f.Seek(ix.offset, io.SeekStart); err != nil {
		return err
	}
	r := bufio.NewReader(f)
	for {
		raw, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return nil // raw, if any, is a line not complete yet
		}
		if err != nil {
			return err
		}
		ix.offset += int64(len(raw))
		if bytes.Contains(raw, []byte(`"result":"`+ResultSent+`"`)) {
			var l Line
			if json.Unmarshal(raw, &l) == nil && l.Result == ResultSent {
				ix.sent[attemptKey{l.CommunicationID, l.Attempt}] = l.ProviderMessageID
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

var _ dispatch.AttemptLedger = (*Outbox)(nil)

// Reports returns what the provider reports about a line's send, as
// EmailReports and SMSReports return them at the send: nothing for a line
// that was not sent, a voice call (its outcome comes by webhook), or a
// line written before lines named their company. A restart replays them
// for the tail of the outbox (reports are recorded at least once, as SES
// and SNS deliver theirs; a report already recorded records nothing new).
func (l Line) Reports() []Report {
	if l.Result != "sent" || l.CompanyID == "" {
		return nil
	}
	switch l.Channel {
	case ChannelEmail:
		return EmailReports(dispatch.Email{CommunicationID: l.CommunicationID, CompanyID: l.CompanyID, Attempt: l.Attempt,
			From: l.From, To: l.To, CC: l.CC, Subject: l.Subject}, l.ProviderMessageID, l.At)
	case ChannelSMS:
		return SMSReports(dispatch.SMS{CommunicationID: l.CommunicationID, CompanyID: l.CompanyID, Attempt: l.Attempt,
			From: l.From, To: l.To, Body: l.Body}, l.ProviderMessageID, l.At)
	}
	return nil
}
