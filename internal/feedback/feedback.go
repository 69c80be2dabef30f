// Package feedback records what providers report after the hand-off — SES
// events and SNS SMS delivery-status logs — on the rows they are about,
// through the lifecycle's RecordDelivery transition (docs/design.md,
// "Delivery feedback"). The AWS events function (functions/events) and the
// embedded mode's dev senders feed it the same provider-shaped documents,
// parsed by ParseSESEvent and ParseSMSDeliveryLog.
//
// Providers deliver reports at least once and in any order. Recording is
// idempotent and order-tolerant by construction: RecordDelivery records a
// report only when it moves the row forward, so a duplicate or a late
// lower-ranked report is acknowledged and changes nothing.
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
}

// MsgDeliveryReport is the message of the log line of each recorded report
// (package emf turns it into the DeliveryReports metric on AWS), with the
// attributes communication_id, company_id, channel, delivery_status,
// settled_late and suppressed.
const MsgDeliveryReport = "delivery report recorded"

// Recorder records provider reports on rows.
type Recorder struct {
	store Store
	log   *slog.Logger
	now   func() time.Time
}

// New returns a Recorder; now defaults to time.Now, log to a discarding logger.
func New(store Store, log *slog.Logger, now func() time.Time) *Recorder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &Recorder{store: store, log: log, now: now}
}

// Outcome says what recording one report did.
type Outcome string

// The outcomes of Record.
const (
	// Recorded: the row changed (and its event was written).
	Recorded Outcome = "recorded"
	// Ignored: a duplicate, a report ranked below the row's status, a
	// report of another message, or a row in a status reports do not change.
	Ignored Outcome = "ignored"
	// Unknown: no such row in that company (a foreign or forged tag, or a
	// message Dispatcher did not send).
	Unknown Outcome = "unknown"
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
		if errors.Is(err, comms.ErrNotFound) {
			rc.log.WarnContext(ctx, "delivery report for no known row", "company_id", t.CompanyID,
				"communication_id", t.CommunicationID, "provider_message_id", t.ProviderMessageID, "delivery_status", string(r.Status))
			return Unknown, nil
		}
		if err != nil {
			return "", err
		}
		ch, err := comms.RecordDelivery(row, r, rc.now().UTC().Truncate(time.Millisecond))
		if errors.Is(err, comms.ErrNothingToRecord) || errors.Is(err, comms.ErrInvalidTransition) {
			rc.log.DebugContext(ctx, "delivery report ignored", "communication_id", row.ID, "reason", err.Error())
			return Ignored, nil
		}
		if err != nil {
			return "", fmt.Errorf("comms.RecordDelivery: %w", err)
		}
		_, _, err = rc.store.UpdateCommunication(ctx, ch, false)
		if errors.Is(err, comms.ErrConflict) {
			continue // another report or the dispatcher wrote first: read again
		}
		if err != nil {
			return "", fmt.Errorf("store.UpdateCommunication: %w", err)
		}
		rc.log.InfoContext(ctx, MsgDeliveryReport, "communication_id", row.ID, "company_id", row.CompanyID,
			"channel", string(row.Channel), "delivery_status", string(r.Status), "settled_late", row.Status != comms.StatusSent,
			"suppressed", len(ch.Suppress))
		return Recorded, nil
	}
	return "", fmt.Errorf("feedback.Record: row %s kept changing: %w", t.CommunicationID, comms.ErrConflict)
}

// maxProviderMessageID bounds a provider message id worth looking up (SES
// and SNS ids are ~60 characters; a store key cannot hold an unbounded one).
const maxProviderMessageID = 256

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
