package dispatch

import (
	"context"
	"errors"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// Store is what the dispatcher needs of the store.
type Store interface {
	GetCommunication(ctx context.Context, companyID, id string) (comms.Communication, error)
	UpdateCommunication(ctx context.Context, ch comms.Change, debit bool) (comms.Communication, int64, error)
	GetCompany(ctx context.Context, id string) (comms.Company, error)
	GetPhoneNumber(ctx context.Context, companyID, id string) (comms.PhoneNumber, error)
	GetVoiceAgent(ctx context.Context, companyID, id string) (comms.VoiceAgent, error)
	DueCommunications(ctx context.Context, t time.Time, limit int) ([]comms.Communication, error)
	GetSuppression(ctx context.Context, companyID string, channel comms.SuppressionChannel, recipient string) (comms.Suppression, error)
	comms.EntityEventReader
}

// ProcessingReader is a store that lists its processing rows alone (the
// embedded store, by its partial index on lease_until). SettleOrphans uses
// it when the store has it, so that start-up does not read every pending
// row into memory.
type ProcessingReader interface {
	// ProcessingCommunications returns up to limit processing rows of any
	// company, earliest lease_until first.
	ProcessingCommunications(ctx context.Context, limit int) ([]comms.Communication, error)
}

// CallLookup is the voice provider's own record of a placed call (Retell's
// get-call), asked when no outcome came by webhook before the call is
// declared unanswered.
type CallLookup interface {
	LookupCall(ctx context.Context, callID string) (CallRecord, error)
}

// CallRecord is what the provider knows of a call.
type CallRecord struct {
	// Found is false when the provider has no such call.
	Found bool
	// Ended is true once the call is over; Outcome is then its outcome.
	Ended   bool
	Outcome comms.Outcome
}

// AttemptLedger is a provider's own record of what it sent, asked before an
// email or SMS attempt whose result was never recorded is sent again (the
// dispatcher stopped, or could not write, between the send and recording
// it). The embedded mode's dev senders answer from their outbox (complete:
// a line is written before the send returns). On AWS, SES's SEND event
// (tagged with the row and attempt) settles an email through package
// feedback by itself, and SMS are found among the SNS delivery-status
// reports no row claimed; there the sweeper waits Config.SettleWait for
// the record before resending.
type AttemptLedger interface {
	// FindAttempt returns the provider message id of the row's current
	// attempt (row.AttemptCount, claimed at row.LeaseUntil minus the lease)
	// and whether the provider has a record of sending it.
	FindAttempt(ctx context.Context, row comms.Communication) (providerMessageID string, found bool, err error)
	// Complete reports whether a miss proves the attempt was not sent, so
	// that the row can be sent again without waiting for a late record.
	Complete() bool
}

// SettledNotifier is implemented by a ledger that wants to hear of a row
// the sweeper settled from its record (the AWS SMS ledger then records the
// delivery status the provider's report carried).
type SettledNotifier interface {
	AttemptSettled(ctx context.Context, row comms.Communication)
}

// Email is one email to send.
type Email struct {
	CommunicationID string
	CompanyID       string
	Attempt         int
	From            string
	FromName        string
	To              string
	ToName          string
	CC              []string
	Subject         string
	HTMLBody        string
}

// SMS is one text message to send.
type SMS struct {
	CommunicationID string
	CompanyID       string
	Attempt         int
	// From is the E.164 origination number of the company's phone number.
	From string
	To   string
	Body string
}

// Call is one outbound AI voice call to place.
type Call struct {
	CommunicationID string
	CompanyID       string
	Attempt         int
	// Provider and AgentID name the voice-AI agent that talks.
	Provider string
	AgentID  string
	// From is the E.164 number the call comes from.
	From             string
	To               string
	DynamicVariables map[string]string
	Metadata         map[string]any
}

// ErrNotSent marks a sender's error that happened before anything reached
// the provider, in our own infrastructure (the dev sink could not write its
// outbox: a full disk). Such a failure is not a delivery attempt: the
// dispatcher gives the attempt back (comms.ReleaseUnsent) and tries again
// after Config.InfraRetry, whatever attempts the row has left. A sender
// wraps it (fmt.Errorf("…: %w", ErrNotSent)) only when it is sure nothing
// was sent.
var ErrNotSent = errors.New("not sent: our own infrastructure failed before the provider was reached")

// EmailSender sends email. A failure is a *comms.SendError saying whether
// a retry can help; any other error is taken as transient.
type EmailSender interface {
	SendEmail(ctx context.Context, m Email) (providerMessageID string, err error)
}

// SMSSender sends text messages, classifying failures like EmailSender.
type SMSSender interface {
	SendSMS(ctx context.Context, m SMS) (providerMessageID string, err error)
}

// VoiceCaller places calls, classifying failures like EmailSender. The
// returned id is the provider's call id.
type VoiceCaller interface {
	PlaceCall(ctx context.Context, c Call) (providerCallID string, err error)
}
