package feedback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// SMSReceipts keeps the SNS SMS delivery reports no row claimed when they
// arrived (comms.SMSReceipt): the Recorder puts them, SMSLedger finds them.
type SMSReceipts interface {
	// PutSMSReceipt stores a receipt; putting the same (destination,
	// accepted-at, message id) again replaces it.
	PutSMSReceipt(ctx context.Context, r comms.SMSReceipt) error
	// FindSMSReceipts returns the receipts of destination accepted in
	// [from, to], ordered by AcceptedAt, then message id.
	FindSMSReceipts(ctx context.Context, destination string, from, to time.Time) ([]comms.SMSReceipt, error)
}

// LedgerStore is what SMSLedger needs of the store.
type LedgerStore interface {
	SMSReceipts
	CommunicationByProviderMessageID(ctx context.Context, providerMessageID string) (comms.Communication, error)
}

// ReceiptSlack widens the window an uncertain SMS attempt's receipts are
// looked for in, on both sides: SNS's clock and the dispatcher's differ.
const ReceiptSlack = 2 * time.Second

// SMSLedger is the AWS deployment's dispatch.AttemptLedger. An email
// attempt is never found here: SES's SEND event, tagged with the row and
// attempt, settles it through the Recorder by itself. An SMS attempt is
// found among the unclaimed SMS receipts of its number: SNS logs name only
// the message id, the number and when SNS accepted the Publish, and the
// message id of an attempt whose result was never written is unknown to
// Dispatcher. So the receipt is matched by number and time: the earliest
// receipt of the row's to_number accepted during the attempt's lease
// ([claim − ReceiptSlack, lease_until + ReceiptSlack], claim =
// lease_until − lease) whose message id is not already some row's
// provider_message_id. Settling the row writes that id (and, on DynamoDB,
// its PMID# map item), which claims the receipt, so a second uncertain SMS
// to the same number takes the next one.
//
// It is not complete: a receipt may still be on its way (SNS writes its
// logs some seconds after the delivery), so the sweeper waits
// Config.SettleWait for one before resending.
type SMSLedger struct {
	store LedgerStore
	lease time.Duration
	rec   *Recorder
	log   *slog.Logger

	mu    sync.Mutex
	found map[string]comms.SMSReceipt // by message id, until AttemptSettled
}

// NewSMSLedger returns the ledger over store; lease is the dispatcher's
// lease of an SMS claim (Config.SMSLease), rec, when not nil, records a settled row's receipt on it
// (its delivery status) after the sweeper settled it.
func NewSMSLedger(store LedgerStore, lease time.Duration, rec *Recorder, log *slog.Logger) *SMSLedger {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SMSLedger{store: store, lease: lease, rec: rec, log: log}
}

// Complete is false: a receipt may arrive late.
func (l *SMSLedger) Complete() bool { return false }

// FindAttempt returns the message id of the receipt that records the row's
// current SMS attempt (see SMSLedger); never found for an email or voice row.
func (l *SMSLedger) FindAttempt(ctx context.Context, row comms.Communication) (string, bool, error) {
	r, found, err := l.find(ctx, row)
	if found {
		l.remember(r)
	}
	return r.ProviderMessageID, found, err
}

func (l *SMSLedger) find(ctx context.Context, row comms.Communication) (comms.SMSReceipt, bool, error) {
	if row.Channel != comms.ChannelSMS || row.LeaseUntil.IsZero() {
		return comms.SMSReceipt{}, false, nil
	}
	to, err := toNumber(row)
	if err != nil || to == "" {
		return comms.SMSReceipt{}, false, err
	}
	claimed := row.LeaseUntil.Add(-l.lease)
	rs, err := l.store.FindSMSReceipts(ctx, to, claimed.Add(-ReceiptSlack), row.LeaseUntil.Add(ReceiptSlack))
	if err != nil {
		return comms.SMSReceipt{}, false, fmt.Errorf("store.FindSMSReceipts: %w", err)
	}
	for _, r := range rs {
		_, err := l.store.CommunicationByProviderMessageID(ctx, r.ProviderMessageID)
		switch {
		case errors.Is(err, comms.ErrNotFound):
			return r, true, nil
		case err != nil:
			return comms.SMSReceipt{}, false, fmt.Errorf("store.CommunicationByProviderMessageID: %w", err)
		}
		// Another row's message: claimed.
	}
	return comms.SMSReceipt{}, false, nil
}

// AttemptSettled records on a row the sweeper just settled from a receipt
// what the receipt reported (delivered, undeliverable, opted out), through
// the Recorder as if the report had arrived now. A failure is logged: the
// row is settled either way.
func (l *SMSLedger) AttemptSettled(ctx context.Context, row comms.Communication) {
	l.mu.Lock()
	r, ok := l.found[row.ProviderMessageID]
	delete(l.found, row.ProviderMessageID)
	l.mu.Unlock()
	if !ok || l.rec == nil {
		return
	}
	if _, err := l.rec.Record(ctx, Target{ProviderMessageID: r.ProviderMessageID}, r.Report()); err != nil {
		l.log.WarnContext(ctx, "settled row's SMS receipt not recorded", "communication_id", row.ID, "error", err.Error())
	}
}

// remember keeps a found receipt until the sweeper settles its row
// (AttemptSettled); a few thousand at most, as a settle that lost its race
// never comes back for its receipt.
func (l *SMSLedger) remember(r comms.SMSReceipt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.found == nil || len(l.found) >= 4096 {
		l.found = map[string]comms.SMSReceipt{}
	}
	l.found[r.ProviderMessageID] = r
}

func toNumber(row comms.Communication) (string, error) {
	var p comms.SMSPayload
	if err := json.Unmarshal(row.Payload, &p); err != nil {
		return "", fmt.Errorf("SMS payload of %s: %w", row.ID, err)
	}
	return strings.TrimSpace(p.ToNumber), nil
}
