// Package feedback records what providers report after the hand-off — SES
// events and SNS SMS delivery-status logs — on the rows they are about,
// through the lifecycle's RecordDelivery transition (docs/design.md,
// "Delivery feedback"). The AWS events function (functions/events) and the
// embedded mode's dev senders feed it the same provider-shaped documents,
// parsed by ParseSESEvent and ParseSMSDeliveryLog.
//
// Providers deliver reports at least once and in any order. Recording is
// idempotent and order-tolerant by construction: RecordDelivery moves a
// row's delivery status only forward, and records a suppressing report
// (permanent bounce, complaint, opt-out) whatever the rank unless this
// row's report already suppressed its recipients (the suppression records
// the recorder reads say so), so a duplicate or a late lower-ranked report
// is acknowledged and changes nothing.
package feedback

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// Store is what the recorder needs of the store.
type Store interface {
	GetCommunication(ctx context.Context, companyID, id string) (comms.Communication, error)
	CommunicationByProviderMessageID(ctx context.Context, providerMessageID string) (comms.Communication, error)
	UpdateCommunication(ctx context.Context, ch comms.Change, debit bool) (comms.Communication, int64, error)
	GetSuppression(ctx context.Context, companyID string, channel comms.SuppressionChannel, recipient string) (comms.Suppression, error)
}

// MsgDeliveryReport is the message of the log line of each recorded report
// (package emf turns it into the DeliveryReports metric on AWS), with the
// attributes communication_id, company_id, channel, delivery_status,
// settled_late and suppressed.
const MsgDeliveryReport = "delivery report recorded"

// Recorder records provider reports on rows.
type Recorder struct {
	store    Store
	log      *slog.Logger
	now      func() time.Time
	receipts SMSReceipts
	batch    BatchStore // RecordBatch's reads and writes; nil: one by one
}

// Option configures a Recorder.
type Option func(*Recorder)

// WithSMSReceipts keeps every SMS report whose message id no row carries
// as an unclaimed receipt (comms.SMSReceipt), for SMSLedger (AWS: SNS logs
// are the only record of an SMS whose send was never recorded).
func WithSMSReceipts(r SMSReceipts) Option { return func(rc *Recorder) { rc.receipts = r } }

// New returns a Recorder; now defaults to time.Now, log to a discarding logger.
func New(store Store, log *slog.Logger, now func() time.Time, opts ...Option) *Recorder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	rc := &Recorder{store: store, log: log, now: now}
	for _, o := range opts {
		o(rc)
	}
	return rc
}

// Outcome says what recording one report did.
type Outcome string

// The outcomes of Record.
const (
	// Recorded: the row changed (and its event was written).
	Recorded Outcome = "recorded"
	// Ignored: a duplicate, a report ranked below the row's status, a
	// non-suppressing report of an earlier attempt's message (logged as a
	// duplicate send when a later attempt sent the row), or a row in a
	// status reports do not change.
	Ignored Outcome = "ignored"
	// Unknown: no such row in that company (a foreign or forged tag, or a
	// message Dispatcher did not send).
	Unknown Outcome = "unknown"
	// Unclaimed: an SMS report whose message id no row carries, kept as an
	// SMS receipt (WithSMSReceipts) for the sweeper to match to an
	// attempt whose send was never recorded.
	Unclaimed Outcome = "unclaimed"
)

// maxRaces bounds how many times Record re-reads a row another writer
// changed under it.
const maxRaces = 8

// Target names the row a report is about: by company and id (SES message
// tags), or by the provider's message id alone (SNS SMS logs).
type Target struct {
	CompanyID         string
	CommunicationID   string
	ProviderMessageID string
}

// Record records r on the row t names. Only a store failure is an error
// (the caller redelivers the report); a report that finds no row, or
// changes nothing, is settled as Unknown or Ignored.
func (rc *Recorder) Record(ctx context.Context, t Target, r comms.DeliveryReport) (Outcome, error) {
	for range maxRaces {
		row, err := rc.find(ctx, t)
		if errors.Is(err, comms.ErrNotFound) && rc.keepsReceipt(t, r) {
			return rc.putReceipt(ctx, r)
		}
		if errors.Is(err, comms.ErrNotFound) {
			rc.log.WarnContext(ctx, "delivery report for no known row", "company_id", t.CompanyID,
				"communication_id", t.CommunicationID, "provider_message_id", t.ProviderMessageID, "delivery_status", string(r.Status))
			return Unknown, nil
		}
		if err != nil {
			return "", err
		}
		ch, err := rc.decide(ctx, row, &r)
		if err != nil {
			return "", err
		}
		if ch == nil {
			return Ignored, nil
		}
		_, _, err = rc.store.UpdateCommunication(ctx, *ch, false)
		if errors.Is(err, comms.ErrConflict) {
			continue // another report or the dispatcher wrote first: read again
		}
		if err != nil {
			return "", fmt.Errorf("store.UpdateCommunication: %w", err)
		}
		rc.recorded(ctx, row, r, *ch)
		return Recorded, nil
	}
	return "", fmt.Errorf("feedback.Record: row %s kept changing: %w", t.CommunicationID, comms.ErrConflict)
}

// decide is Record's rule for one report on row as read: the change to
// write, or nil when the report changes nothing (a duplicate, a lower
// rank, a row in a status reports do not change: logged, Ignored). For a
// suppressing report it first reads the company's suppressions of its
// recipients into r.Prior. Only a store failure is an error.
func (rc *Recorder) decide(ctx context.Context, row comms.Communication, r *comms.DeliveryReport) (*comms.Change, error) {
	if r.Suppress != "" {
		var err error
		if r.Prior, err = rc.prior(ctx, row, *r); err != nil {
			return nil, err
		}
	}
	ch, err := comms.RecordDelivery(row, *r, rc.now().UTC().Truncate(time.Millisecond))
	var old *comms.EarlierAttemptError
	if errors.As(err, &old) && old.Duplicate {
		rc.duplicate(ctx, row, old)
	}
	if errors.Is(err, comms.ErrNothingToRecord) || errors.Is(err, comms.ErrInvalidTransition) {
		rc.log.DebugContext(ctx, "delivery report ignored", "communication_id", row.ID, "reason", err.Error())
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("comms.RecordDelivery: %w", err)
	}
	return &ch, nil
}

// recorded logs a report whose change ch, decided on row, was written.
func (rc *Recorder) recorded(ctx context.Context, row comms.Communication, r comms.DeliveryReport, ch comms.Change) {
	if old := comms.EarlierAttempt(row, r); old != nil && old.Duplicate {
		rc.duplicate(ctx, row, old)
	}
	rc.log.InfoContext(ctx, MsgDeliveryReport, "communication_id", row.ID, "company_id", row.CompanyID,
		"channel", string(row.Channel), "delivery_status", string(r.Status), "settled_late", row.Status != comms.StatusSent,
		"suppressed", len(ch.Suppress))
}

// maxProviderMessageID bounds a provider message id worth looking up (SES
// and SNS ids are ~60 characters; a store key cannot hold an unbounded one).
const maxProviderMessageID = 256

// MsgDuplicateSend is the WARN message of a provider report proving that
// an earlier attempt of a row went out although a later attempt sent it
// again: the recipient got two copies (docs/design.md, "Never twice").
// Attributes: communication_id, company_id, attempt and
// provider_message_id (the earlier one's), row_attempt and
// row_provider_message_id (the row's).
const MsgDuplicateSend = "duplicate send: the provider reports an earlier attempt's message of a row a later attempt sent again"

func (rc *Recorder) duplicate(ctx context.Context, row comms.Communication, e *comms.EarlierAttemptError) {
	rc.log.WarnContext(ctx, MsgDuplicateSend, "communication_id", row.ID, "company_id", row.CompanyID,
		"attempt", e.Attempt, "provider_message_id", e.ProviderMessageID,
		"row_attempt", e.RowAttempt, "row_provider_message_id", e.RowProviderMessageID)
}

// prior reads the company's suppression records of the recipients a
// suppressing report is about (comms.ReportRecipients; see
// comms.DeliveryReport.Prior).
func (rc *Recorder) prior(ctx context.Context, row comms.Communication, r comms.DeliveryReport) (map[string]comms.Suppression, error) {
	channel, recipients, _ := comms.ReportRecipients(row, r)
	out := map[string]comms.Suppression{}
	for _, n := range recipients {
		s, err := rc.store.GetSuppression(ctx, row.CompanyID, channel, n)
		if errors.Is(err, comms.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("store.GetSuppression: %w", err)
		}
		out[n] = s
	}
	return out, nil
}

func (rc *Recorder) find(ctx context.Context, t Target) (comms.Communication, error) {
	if t.CompanyID != "" || t.CommunicationID != "" {
		// Tags Dispatcher set: anything else (a forged or foreign tag) names no row.
		if _, ok := comms.UUIDString(t.CommunicationID); !ok || !comms.ValidCompanyID(t.CompanyID) {
			return comms.Communication{}, comms.ErrNotFound
		}
		row, err := rc.store.GetCommunication(ctx, t.CompanyID, t.CommunicationID)
		if err != nil {
			return row, fmt.Errorf("store.GetCommunication: %w", err)
		}
		return row, nil
	}
	if t.ProviderMessageID == "" || len(t.ProviderMessageID) > maxProviderMessageID {
		return comms.Communication{}, comms.ErrNotFound
	}
	row, err := rc.store.CommunicationByProviderMessageID(ctx, t.ProviderMessageID)
	if err != nil {
		return row, fmt.Errorf("store.CommunicationByProviderMessageID: %w", err)
	}
	return row, nil
}

// keepsReceipt reports whether a report that found no row is kept as an SMS
// receipt: an SMS report (named by message id alone) of a known number,
// with the time SNS accepted the message.
func (rc *Recorder) keepsReceipt(t Target, r comms.DeliveryReport) bool {
	return rc.receipts != nil && t.CommunicationID == "" && t.ProviderMessageID != "" &&
		len(r.Recipients) == 1 && r.Recipients[0] != "" && !r.AcceptedAt.IsZero()
}

func (rc *Recorder) putReceipt(ctx context.Context, r comms.DeliveryReport) (Outcome, error) {
	rec := comms.SMSReceipt{Destination: r.Recipients[0], ProviderMessageID: r.ProviderMessageID,
		AcceptedAt: r.AcceptedAt.UTC(), Status: r.Status, Detail: r.Detail, At: r.At.UTC()}
	if err := rc.receipts.PutSMSReceipt(ctx, rec); err != nil {
		return "", fmt.Errorf("store.PutSMSReceipt: %w", err)
	}
	rc.log.InfoContext(ctx, "SMS delivery report for no row; kept as an unclaimed receipt",
		"provider_message_id", rec.ProviderMessageID, "accepted_at", rec.AcceptedAt, "delivery_status", string(rec.Status))
	return Unclaimed, nil
}
