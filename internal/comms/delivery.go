package comms

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/mailaddr"
)

// This file is what happens after the hand-off (docs/design.md, "Delivery
// feedback"): the provider's later reports on an email or SMS — SES event
// publishing (SEND, DELIVERY, BOUNCE, COMPLAINT, REJECT, DELIVERY_DELAY,
// RENDERING_FAILURE; https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html)
// and SNS SMS delivery-status logs (SUCCESS, FAILURE) — recorded on the row
// as its delivery_status through the RecordDelivery transition, and the
// per-company suppressions they create.

// DeliveryStatus is what the provider last reported about a sent email or
// SMS. status stays "sent" (handed off); delivery_status says what became of
// it. Empty until the row is sent, and always empty for voice calls.
type DeliveryStatus string

// The delivery statuses, from SES event types and SNS SMS delivery status.
const (
	// DeliveryAccepted: the provider accepted the message (SendEmail or
	// Publish succeeded, or SES's SEND event).
	DeliveryAccepted DeliveryStatus = "accepted"
	// DeliveryDelayed: SES DELIVERY_DELAY — the receiving server has not taken it yet.
	DeliveryDelayed DeliveryStatus = "delayed"
	// DeliveryDelivered: SES DELIVERY, or SNS SMS SUCCESS.
	DeliveryDelivered DeliveryStatus = "delivered"
	// DeliveryBounced: SES BOUNCE (Permanent or Transient: detail says which).
	DeliveryBounced DeliveryStatus = "bounced"
	// DeliveryUndeliverable: SES REJECT or RENDERING_FAILURE, or SNS SMS FAILURE
	// for any reason but an opt-out.
	DeliveryUndeliverable DeliveryStatus = "undeliverable"
	// DeliveryOptedOut: SNS SMS FAILURE because the number opted out (texted STOP).
	DeliveryOptedOut DeliveryStatus = "opted_out"
	// DeliveryComplained: SES COMPLAINT — the recipient marked it as spam.
	DeliveryComplained DeliveryStatus = "complained"
)

// DeliveryStatuses lists every delivery status, in rank order.
var DeliveryStatuses = []DeliveryStatus{DeliveryAccepted, DeliveryDelayed, DeliveryDelivered,
	DeliveryBounced, DeliveryUndeliverable, DeliveryOptedOut, DeliveryComplained}

// Valid reports whether s is a known delivery status.
func (s DeliveryStatus) Valid() bool { return s.rank() > 0 }

// rank orders delivery statuses so that reports arriving out of order (SES
// and SNS deliver at least once, in any order) never move a row backwards:
// a report is recorded only when it ranks above the row's current status.
// Accepted < delayed < delivered < the final failures < complained (a
// complaint arrives after a delivery and is the strongest signal).
func (s DeliveryStatus) rank() int {
	switch s {
	case DeliveryAccepted:
		return 1
	case DeliveryDelayed:
		return 2
	case DeliveryDelivered:
		return 3
	case DeliveryBounced, DeliveryUndeliverable, DeliveryOptedOut:
		return 4
	case DeliveryComplained:
		return 5
	}
	return 0
}

// event is the event type a row emits on reaching s ("" for accepted,
// which the sent event already says).
func (s DeliveryStatus) event() EventType {
	switch s {
	case DeliveryDelayed:
		return EventDeliveryDelayed
	case DeliveryDelivered:
		return EventDelivered
	case DeliveryBounced:
		return EventBounced
	case DeliveryUndeliverable:
		return EventUndeliverable
	case DeliveryOptedOut:
		return EventOptedOut
	case DeliveryComplained:
		return EventComplained
	}
	return ""
}

// The delivery event types (data: DeliveryData).
const (
	// EventDelivered: the recipient's server (SES) or handset carrier (SMS) took it.
	EventDelivered EventType = "delivered"
	// EventBounced: SES reported a bounce.
	EventBounced EventType = "bounced"
	// EventComplained: the recipient reported the email as spam.
	EventComplained EventType = "complained"
	// EventDeliveryDelayed: SES could not deliver it yet and keeps trying.
	EventDeliveryDelayed EventType = "delivery_delayed"
	// EventUndeliverable: the provider rejected or could not deliver it.
	EventUndeliverable EventType = "undeliverable"
	// EventOptedOut: the SMS recipient opted out of messages from the sender.
	EventOptedOut EventType = "opted_out"
)

// DeliveryReport is one provider report about one attempt of a row, as
// package feedback parses it from an SES event or an SNS SMS delivery-status
// log line.
type DeliveryReport struct {
	// Status is what the report means for the row (accepted for SES SEND).
	Status DeliveryStatus
	// Attempt is the attempt the message was sent by (SES tag "attempt"),
	// 0 when the provider's record does not say (SNS SMS logs).
	Attempt int
	// ProviderMessageID is the SES or SNS message id.
	ProviderMessageID string
	// At is when the provider says it happened.
	At time.Time
	// AcceptedAt is when the provider accepted the message (SNS SMS logs:
	// notification.timestamp, the time of the Publish); zero when the
	// report does not say. An SMS report no row claims is kept with it as
	// an SMSReceipt.
	AcceptedAt time.Time
	// Detail is a short human-readable explanation: "Permanent/General",
	// "Transient/MailboxFull", the SMS provider response.
	Detail string
	// Recipients are the addresses or numbers the report is about (a bounce
	// names the bounced ones).
	Recipients []string
	// Suppress is set when the report means the recipients must not be
	// written to again by this company: a permanent bounce, a complaint, an
	// SMS opt-out.
	Suppress SuppressionReason
	// Prior are the company's suppression records (active or lifted, with
	// their lifts) of the report's recipients, by normalized recipient, as
	// the recorder read them when Suppress is set: a cc's report already
	// recorded from this row is not recorded again (a redelivery after the
	// company lifted the suppression must not restore it).
	Prior map[string]Suppression
}

// SMSReceipt is an SNS SMS delivery-status report whose message id no row
// carried when it arrived: the provider's record of an SMS sent by an
// attempt whose result was never written (the dispatcher stopped, or could
// not write, between Publish returning and recording it). SNS logs name no
// row and no attempt, only the message id, the number and when SNS accepted
// the Publish, so the sweeper matches an uncertain SMS attempt to the
// receipts of its number accepted during its lease (feedback.SMSLedger).
type SMSReceipt struct {
	// Destination is the E.164 number the message went to.
	Destination string
	// ProviderMessageID is the SNS message id.
	ProviderMessageID string
	// AcceptedAt is when SNS accepted the Publish (notification.timestamp).
	AcceptedAt time.Time
	// Status and Detail are what the report said (delivered, undeliverable,
	// opted_out; the provider response).
	Status DeliveryStatus
	Detail string
	// At is the report's own time (DeliveryReport.At).
	At time.Time
}

// Report is the delivery report the receipt was made from, as
// RecordDelivery takes it (suppressing the number for an opt-out).
func (r SMSReceipt) Report() DeliveryReport {
	rep := DeliveryReport{Status: r.Status, ProviderMessageID: r.ProviderMessageID, At: r.At, AcceptedAt: r.AcceptedAt,
		Detail: r.Detail, Recipients: []string{r.Destination}}
	if r.Status == DeliveryOptedOut {
		rep.Suppress = SuppressOptOut
	}
	return rep
}

// Delivery is the delivery part of a row.
type Delivery struct {
	Status DeliveryStatus
	// At is when the provider says the status was reached.
	At time.Time
	// Detail explains the status briefly (bounce type/subtype, SMS provider response).
	Detail string
}

// DeliveryData is the data of every delivery event type.
type DeliveryData struct {
	Status            DeliveryStatus `json:"delivery_status"`
	ProviderMessageID string         `json:"provider_message_id"`
	// ProviderAt is the provider's own time of the report.
	ProviderAt time.Time `json:"provider_at"`
	Detail     string    `json:"detail"`
	Recipients []string  `json:"recipients"`
	// Suppressed is true when the report is a suppressing one (permanent
	// bounce, complaint, opt-out): its recipients are suppressed for the
	// company — by this report, or already (an active suppression is kept
	// as it is).
	Suppressed bool `json:"suppressed"`
}

// ErrNothingToRecord: a provider report that changes nothing on the row — a
// duplicate, a report ranked below what the row already shows, or a report
// about a message the row no longer stands for. Receivers acknowledge it.
var ErrNothingToRecord = errors.New("nothing to record")

// TransitionRecordDelivery names RecordDelivery.
const TransitionRecordDelivery Transition = "record_delivery"

// EarlierAttemptError is the ErrNothingToRecord of a report about a message
// the row no longer stands for: a message sent by an earlier attempt of
// the row (its attempt tag is below the row's attempt count, or its message
// id is not the row's). When the row has since been sent by a later
// attempt, the provider's record proves the recipient got two copies;
// receivers log it (package feedback: a WARN naming both attempts).
type EarlierAttemptError struct {
	// Attempt and ProviderMessageID are the report's (Attempt 0 when the
	// report does not say).
	Attempt           int
	ProviderMessageID string
	// RowAttempt and RowProviderMessageID are the row's.
	RowAttempt           int
	RowProviderMessageID string
	// Duplicate is true when the row is sent by another message: the
	// recipient got both.
	Duplicate bool
}

func (e *EarlierAttemptError) Error() string {
	return fmt.Sprintf("%s: a report about message %s (attempt %d), the row's is %q (attempt %d)",
		ErrNothingToRecord, e.ProviderMessageID, e.Attempt, e.RowProviderMessageID, e.RowAttempt)
}

// Is makes an EarlierAttemptError an ErrNothingToRecord.
func (e *EarlierAttemptError) Is(target error) bool { return target == ErrNothingToRecord }

// EarlierAttempt returns the EarlierAttemptError of r on row when r is
// about a message of an earlier attempt, nil when it is about the row's
// current one.
func EarlierAttempt(row Communication, r DeliveryReport) *EarlierAttemptError {
	other := r.ProviderMessageID != "" && row.ProviderMessageID != "" && r.ProviderMessageID != row.ProviderMessageID
	same := r.ProviderMessageID != "" && r.ProviderMessageID == row.ProviderMessageID
	older := r.Attempt > 0 && r.Attempt < row.AttemptCount && !same
	if !other && !older {
		return nil
	}
	return &EarlierAttemptError{Attempt: r.Attempt, ProviderMessageID: r.ProviderMessageID, RowAttempt: row.AttemptCount,
		RowProviderMessageID: row.ProviderMessageID, Duplicate: row.Status == StatusSent && other}
}

// ReportRecipients returns the suppression channel of an email or SMS row
// and the normalized recipients (NormalizeRecipient) r is about, among
// those the row was sent to: the ones it names, or — when it names none —
// the row's own recipient (To, or the number). SES publishes one event per
// message, and a COMPLAINT's complainedRecipients may be empty (many
// mailbox providers redact the complainant from the feedback report; SES
// "Complaint object": https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html#event-publishing-retrieving-sns-contents-complaint-object),
// so a report naming no one is about the message's To. primary says
// whether the row's own recipient is among them.
func ReportRecipients(row Communication, r DeliveryReport) (channel SuppressionChannel, recipients []string, primary bool) {
	channel, own, known := row.recipients()
	if len(r.Recipients) == 0 {
		return channel, []string{own}, true
	}
	seen := map[string]bool{}
	for _, rcpt := range r.Recipients {
		n := NormalizeRecipient(channel, rcpt)
		if !known[n] || seen[n] {
			continue // not an address this row was sent to: a provider's rewrite, or forged
		}
		seen[n] = true
		recipients = append(recipients, n)
		primary = primary || n == own
	}
	return channel, recipients, primary
}

// RecordDelivery records a provider report on an email or SMS row.
//
//   - On a sent row, a report about the row's message is recorded when its
//     status ranks above the row's (see DeliveryStatus.rank): delivery_status,
//     its time and detail change, and the status's event is emitted.
//   - A suppressing report (r.Suppress: permanent bounce, complaint, SMS
//     opt-out) is recorded whatever the rank — a Permanent bounce after a
//     Transient one, a complaint about an earlier attempt's copy — unless
//     this row's report already suppressed each recipient for that reason
//     (r.Prior, active or lifted: a redelivery after a lift must not
//     restore it). It emits its event, moves the row only forward (or
//     replaces a same-rank status, a definite answer after a soft one), and
//     suppresses each recipient that has no active suppression — an
//     active one is kept as it is (first reason wins while active; the
//     stores' write is conditional on that too).
//   - On a row not yet recorded as sent (processing, or pending after a
//     failed-looking attempt) whose attempt count is r.Attempt, the report
//     is the provider's proof that attempt r.Attempt went out: the row is
//     settled as sent first (a sent event with settled_late), so it is never
//     sent again.
//   - A report about an earlier attempt's message (EarlierAttemptError)
//     never moves the row; only a suppressing one records (its event names
//     that message).
//
// Anything else returns ErrNothingToRecord (a no-op, not an error to retry).
func RecordDelivery(row Communication, r DeliveryReport, now time.Time) (Change, error) {
	if row.Channel != ChannelEmail && row.Channel != ChannelSMS || !r.Status.Valid() {
		return Change{}, fmt.Errorf("%w: %s report on a %s row", ErrNothingToRecord, r.Status, row.Channel)
	}
	ch, now, err := begin(row, TransitionRecordDelivery, now, StatusSent, StatusProcessing, StatusPending)
	if err != nil {
		return Change{}, err
	}
	old := EarlierAttempt(row, r)
	switch {
	case old != nil:
		if r.Suppress == "" {
			return Change{}, old
		}
	case row.Status != StatusSent:
		if r.Attempt <= 0 || r.Attempt != row.AttemptCount || row.SentAt != nil {
			return Change{}, fmt.Errorf("%w: a report of attempt %d on a %s row at attempt %d", ErrNothingToRecord, r.Attempt, row.Status, row.AttemptCount)
		}
		ch.Row.Status = StatusSent
		ch.Row.LastError = nil
		ch.settledLate(r.ProviderMessageID, r.At, now)
	case r.Status == DeliveryAccepted:
		// The sent event already says the provider accepted it.
		return Change{}, fmt.Errorf("%w: accepted, and the row is already sent", ErrNothingToRecord)
	}
	// The report is about the row's own recipient (To, or the number) when
	// it names it or names no one; a report only about a cc address records
	// its event (and suppresses the address) without moving the row.
	channel, recipients, aboutPrimary := ReportRecipients(row, r)
	if len(recipients) == 0 {
		return Change{}, fmt.Errorf("%w: a report about %v, none of them this row's recipients", ErrNothingToRecord, r.Recipients)
	}
	// fresh: the recipients this row's report has not suppressed yet for
	// this reason (no rank says it for a cc, nor for a same-rank report).
	var fresh []string
	// redelivered: this row already records exactly this report (its
	// delivery status and detail), so a suppression it would add was
	// decided when it first came — even if none was written then because
	// another one was active, which a lift since must not bring back.
	redelivered := old == nil && aboutPrimary && row.Delivery.Status == r.Status && row.Delivery.Detail == r.Detail
	if r.Suppress != "" && !redelivered {
		for _, rcpt := range recipients {
			if !r.Prior[rcpt].from(row.ID, r.Suppress) {
				fresh = append(fresh, rcpt)
			}
		}
	}
	// toWrite: the fresh ones with no active suppression (an active one,
	// manual or another row's, is kept as it is).
	var toWrite []string
	for _, rcpt := range fresh {
		if p, ok := r.Prior[rcpt]; !ok || p.Recipient == "" || !p.Active() {
			toWrite = append(toWrite, rcpt)
		}
	}
	// A suppressing report of the same rank replaces the row's status
	// when it says something else (a Permanent bounce after a Transient
	// one, an opt-out after a failure); a redelivery says the same.
	cur := ch.Row.Delivery
	rank, curRank := r.Status.rank(), cur.Status.rank()
	moves := old == nil && aboutPrimary && (rank > curRank ||
		r.Suppress != "" && rank == curRank && (r.Status != cur.Status || r.Detail != cur.Detail))
	// A cc-only report is news while this row's report has not suppressed
	// the cc yet (no rank on the row says it).
	ccNews := !aboutPrimary && len(fresh) > 0
	if !moves && len(toWrite) == 0 && !ccNews {
		if old != nil {
			return Change{}, old
		}
		if ch.Row.Status != row.Status { // settled late: that alone is worth writing
			return ch, nil
		}
		return Change{}, fmt.Errorf("%w: %s after %s", ErrNothingToRecord, r.Status, row.Delivery.Status)
	}
	if len(fresh) > 0 {
		recipients = fresh
	}
	at := r.At.UTC().Truncate(time.Millisecond) // like every time the lifecycle records
	if at.IsZero() {
		at = now
	}
	if moves {
		ch.Row.Delivery = Delivery{Status: r.Status, At: at, Detail: r.Detail}
	}
	msg := ch.Row.ProviderMessageID
	if old != nil && r.ProviderMessageID != "" {
		msg = r.ProviderMessageID // the earlier attempt's message the report is about
	}
	data := DeliveryData{Status: r.Status, ProviderMessageID: msg, ProviderAt: at,
		Detail: r.Detail, Recipients: recipients}
	if r.Suppress != "" {
		for _, rcpt := range toWrite {
			ch.Suppress = append(ch.Suppress, Suppression{CompanyID: row.CompanyID, Channel: channel,
				Recipient: rcpt, Reason: r.Suppress, Detail: r.Detail,
				CommunicationID: row.ID, CreatedAt: now, CreatedBy: SuppressedBySystem})
		}
		data.Suppressed = true // newly, or already (kept)
	}
	ch.emit(r.Status.event(), now, data)
	return ch, nil
}

// recipients returns the suppression channel of an email or SMS row, its
// primary recipient (To, or the number) and every recipient it was sent to
// (cc included), normalized (NormalizeRecipient).
func (c Communication) recipients() (SuppressionChannel, string, map[string]bool) {
	switch c.Channel {
	case ChannelEmail:
		var p EmailPayload
		_ = json.Unmarshal(c.Payload, &p) // a stored payload decodes; if not, it names no one
		primary := NormalizeRecipient(SuppressEmail, p.ToEmail)
		all := map[string]bool{primary: true}
		for _, a := range p.CC {
			all[NormalizeRecipient(SuppressEmail, a)] = true
		}
		return SuppressEmail, primary, all
	default:
		var p SMSPayload
		_ = json.Unmarshal(c.Payload, &p)
		primary := NormalizeRecipient(SuppressSMS, p.ToNumber)
		return SuppressSMS, primary, map[string]bool{primary: true}
	}
}

// settledLate records a send proven by the provider's own record after the
// dispatcher lost track of it (it stopped, or its write failed, between the
// send and recording it).
func (ch *Change) settledLate(providerMessageID string, providerAt, now time.Time) {
	ch.Row.LeaseUntil = time.Time{}
	ch.Row.ProviderMessageID = providerMessageID
	ch.Row.SentAt = &now
	ch.Row.LastError = nil
	ch.Row.Delivery = Delivery{Status: DeliveryAccepted, At: now}
	ch.emit(EventSent, now, SentData{Attempt: ch.Row.AttemptCount, ProviderMessageID: providerMessageID, SettledLate: true})
}

// TransitionSettleAttempt names SettleAttempt.
const TransitionSettleAttempt Transition = "settle_attempt"

// SettleAttempt records, for an email or SMS row whose lease expired with
// no recorded result, that the provider's own record shows the attempt went
// out (message providerMessageID): sent, settled late. The sweeper calls it
// before any resend; ReleaseExpiredLease is for when no such record exists.
func SettleAttempt(row Communication, providerMessageID string, now time.Time) (Change, error) {
	ch, now, err := begin(row, TransitionSettleAttempt, now, StatusProcessing)
	if err != nil {
		return Change{}, err
	}
	if row.Channel != ChannelEmail && row.Channel != ChannelSMS {
		return Change{}, &TransitionError{Transition: TransitionSettleAttempt, Status: row.Status, From: []Status{StatusProcessing}}
	}
	ch.Row.Status = StatusSent
	ch.settledLate(providerMessageID, now, now)
	return ch, nil
}

// SuppressionChannel is what a suppression blocks: email to an address, or
// SMS to a number (an SMS opt-out does not block voice calls).
type SuppressionChannel string

// The suppression channels.
const (
	SuppressEmail SuppressionChannel = "email"
	SuppressSMS   SuppressionChannel = "sms"
)

// Valid reports whether c is a known suppression channel.
func (c SuppressionChannel) Valid() bool { return c == SuppressEmail || c == SuppressSMS }

// SuppressionReason says why a recipient is suppressed.
type SuppressionReason string

// The suppression reasons.
const (
	// SuppressBounce: SES reported a permanent (hard) bounce.
	SuppressBounce SuppressionReason = "bounce"
	// SuppressComplaint: the recipient marked an email as spam.
	SuppressComplaint SuppressionReason = "complaint"
	// SuppressOptOut: the SMS recipient opted out (texted STOP).
	SuppressOptOut SuppressionReason = "opt_out"
	// SuppressManual: added by the company through PUT /v1/suppressions.
	SuppressManual SuppressionReason = "manual"
)

// SuppressedBySystem is Suppression.CreatedBy for suppressions made by a
// provider report.
const SuppressedBySystem = "system"

// Suppression keeps one company from writing to one recipient on one
// channel. It is per company: one company's bounce never blocks another's
// mail. A lifted suppression is kept (with who lifted it and when) and no
// longer blocks.
type Suppression struct {
	CompanyID string             `json:"-"`
	Channel   SuppressionChannel `json:"channel"`
	// Recipient is the address (lowercased, as SES compares them) or the
	// E.164 number.
	Recipient string            `json:"recipient"`
	Reason    SuppressionReason `json:"reason"`
	// Detail explains it (bounce subtype, the company's note).
	Detail string `json:"detail"`
	// CommunicationID is the row whose report made it; empty for manual ones.
	CommunicationID string    `json:"communication_id"`
	CreatedAt       time.Time `json:"created_at"`
	// CreatedBy is "system" or the id of the API key that added it.
	CreatedBy string     `json:"created_by"`
	LiftedAt  *time.Time `json:"lifted_at"`
	// LiftedBy is the id of the API key that lifted it.
	LiftedBy string `json:"lifted_by"`
	// Lifts are the earlier suppressions of this recipient that were lifted,
	// oldest first: a re-suppression replaces the fields above and keeps
	// them. The stores append to it in LiftSuppression and never drop it.
	Lifts []SuppressionLift `json:"lifts"`
}

// SuppressionLift is one lifted suppression of a recipient, as it was when
// lifted.
type SuppressionLift struct {
	Reason          SuppressionReason `json:"reason"`
	Detail          string            `json:"detail"`
	CommunicationID string            `json:"communication_id"`
	CreatedAt       time.Time         `json:"created_at"`
	CreatedBy       string            `json:"created_by"`
	LiftedAt        time.Time         `json:"lifted_at"`
	LiftedBy        string            `json:"lifted_by"`
}

// Lifted returns s's lift record at at, by by.
func (s Suppression) Lifted(by string, at time.Time) SuppressionLift {
	return SuppressionLift{Reason: s.Reason, Detail: s.Detail, CommunicationID: s.CommunicationID,
		CreatedAt: s.CreatedAt, CreatedBy: s.CreatedBy, LiftedAt: at, LiftedBy: by}
}

// from reports whether the suppression, or one of its lifts, was made by a
// report of row id for reason.
func (s Suppression) from(id string, reason SuppressionReason) bool {
	if s.CommunicationID == id && s.Reason == reason && s.Recipient != "" {
		return true
	}
	for _, l := range s.Lifts {
		if l.CommunicationID == id && l.Reason == reason {
			return true
		}
	}
	return false
}

// Active reports whether the suppression blocks sending.
func (s Suppression) Active() bool { return s.LiftedAt == nil }

// NormalizeRecipient is the form a recipient is suppressed and looked up
// in: an email address as SES is given it (package mailaddr: the domain in
// its ASCII form), lowercased (SES's suppression list compares addresses
// without regard to case), so that a bounce SES reports for the Punycode
// address matches the Unicode one a row names; a display name ("Sarah"
// <sarah@example.com>, as SES lists recipients it was given so) is
// dropped; numbers trimmed.
func NormalizeRecipient(c SuppressionChannel, recipient string) string {
	r := strings.TrimSpace(recipient)
	if c == SuppressEmail {
		if a, err := mail.ParseAddress(r); err == nil {
			r = a.Address // SES reports recipients as they were sent: "Name" <address>, <address>
		}
		if a, err := mailaddr.ASCII(r); err == nil {
			r = a
		}
		return strings.ToLower(r)
	}
	return r
}

// SuppressionFilter narrows a listing of suppressions. Empty fields do not filter.
type SuppressionFilter struct {
	Channel   SuppressionChannel
	Recipient string
	// IncludeLifted lists lifted suppressions too.
	IncludeLifted bool
	// After is the cursor ("<channel>:<recipient>") of the last suppression
	// of the previous page.
	After string
	// Limit is 1–100.
	Limit int
}
