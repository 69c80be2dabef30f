package comms

import (
	"context"
	"time"
)

// Store is the persistence port. Every adapter (SQLite, DynamoDB) passes the
// conformance suite in internal/store/storetest. Methods return the sentinel
// errors of this package, wrapped with the method's name.
type Store interface {
	CompanyStore
	KeyStore
	ResourceStore
	CommunicationStore
	SuppressionStore
	EntityEventStore
}

// SuppressionStore keeps each company's suppressed recipients. A Change's
// Suppress list is written by UpdateCommunication in the same write as the
// row; these methods serve the API and the dispatcher.
type SuppressionStore interface {
	// PutSuppression adds the suppression of (company, channel,
	// recipient) unless the recipient has an active one, in one
	// conditional write: it creates the record, or replaces a lifted one
	// keeping its Lifts (s.Lifts is ignored), and returns the record as
	// stored and true; or it returns the active one unchanged and false
	// (first reason wins while active). Recipient must already be
	// normalized (NormalizeRecipient). ErrNotFound if there is no such
	// company. Change.Suppress is written the same way (an active
	// suppression is kept as it is).
	PutSuppression(ctx context.Context, s Suppression) (Suppression, bool, error)
	// GetSuppression returns the suppression of the recipient, active or
	// lifted; ErrNotFound if the company never suppressed it.
	GetSuppression(ctx context.Context, companyID string, channel SuppressionChannel, recipient string) (Suppression, error)
	// ListSuppressions returns the company's suppressions matching f,
	// ordered by (channel, recipient), after f.After, at most f.Limit, and
	// whether more exist.
	ListSuppressions(ctx context.Context, companyID string, f SuppressionFilter) ([]Suppression, bool, error)
	// LiftSuppression marks an active suppression lifted by by at at,
	// appends that to its Lifts (s.Lifted(by, at)), and returns it;
	// ErrNotFound if there is no active one.
	LiftSuppression(ctx context.Context, companyID string, channel SuppressionChannel, recipient, by string, at time.Time) (Suppression, error)
}

// CompanyStore keeps companies, their balances and settings.
type CompanyStore interface {
	// CreateCompany stores a new company; ErrAlreadyExists if the id is
	// taken. Its settings may declare no SendingDomains (they are claimed
	// only by PutSettings): such a company is refused, nothing written.
	CreateCompany(ctx context.Context, c Company) error
	// GetCompany returns the company with its settings as stored (apply
	// Settings.WithDefaults to show them); ErrNotFound if absent.
	GetCompany(ctx context.Context, id string) (Company, error)
	// PutSettings replaces the company's settings document and, in the same
	// atomic write, claims its SendingDomains for the company and releases
	// the domains the company claimed before and no longer declares. A
	// sending domain belongs to at most one company, together with its
	// subdomains: a domain that another company has claimed, or whose
	// parent domain or subdomain another company has claimed, is refused
	// with a *SendingDomainTakenError (ErrSendingDomainTaken) naming every
	// such entry, and nothing is written. ErrNotFound if there is no such
	// company. A company may declare a domain and its subdomain at once.
	PutSettings(ctx context.Context, companyID string, s Settings) error
}

// KeyStore keeps API keys by the hash of their secret.
type KeyStore interface {
	// CreateAPIKey stores a key; ErrAlreadyExists if its id or hash is taken.
	CreateAPIKey(ctx context.Context, k APIKey) error
	// APIKeyByHash returns the key (revoked or not) whose secret hashes to hash.
	APIKeyByHash(ctx context.Context, hash string) (APIKey, error)
	// ListAPIKeys returns the company's keys, oldest first.
	ListAPIKeys(ctx context.Context, companyID string) ([]APIKey, error)
	// RevokeAPIKey marks the key revoked at the given time (idempotent).
	RevokeAPIKey(ctx context.Context, companyID, keyID string, at time.Time) error
}

// ResourceStore keeps the sender resources rows point at. Put creates or
// replaces (keeping the first CreatedAt); Get and Delete return ErrNotFound
// for an id the company does not have.
type ResourceStore interface {
	// PutPhoneNumber also claims p.E164 for the company: a number belongs
	// to at most one phone-number resource of one company, and a put of a
	// number held under another id (of this or another company) returns
	// ErrPhoneNumberTaken and writes nothing. Changing a resource's number
	// releases the old one in the same write.
	PutPhoneNumber(ctx context.Context, p PhoneNumber) error
	GetPhoneNumber(ctx context.Context, companyID, id string) (PhoneNumber, error)
	// ListPhoneNumbers returns the company's numbers ordered by id.
	ListPhoneNumbers(ctx context.Context, companyID string) ([]PhoneNumber, error)
	DeletePhoneNumber(ctx context.Context, companyID, id string) error
	PutVoiceAgent(ctx context.Context, a VoiceAgent) error
	GetVoiceAgent(ctx context.Context, companyID, id string) (VoiceAgent, error)
	// ListVoiceAgents returns the company's agents ordered by id.
	ListVoiceAgents(ctx context.Context, companyID string) ([]VoiceAgent, error)
	DeleteVoiceAgent(ctx context.Context, companyID, id string) error
}

// CommunicationStore keeps the rows.
type CommunicationStore interface {
	// CreateCommunication stores ch.Row (a Create change: version 1) with
	// its events, debits one credit from its company and, when idem is
	// non-nil, records the idempotency key — all in one transaction. It
	// returns the balance after the debit.
	// Errors: ErrInsufficientCredits (nothing written), ErrAlreadyExists (id
	// taken), ErrIdempotencyKeyExists (a live record holds idem.Key; nothing
	// written), ErrNotFound (no such company).
	// An idempotency record whose ExpiresAt has passed (by idem.CreatedAt) is
	// replaced. idem.CreditsRemaining is set by the store.
	CreateCommunication(ctx context.Context, ch Change, idem *Idempotency) (creditsRemaining int64, err error)
	// GetCommunication returns a row of the company; ErrNotFound if absent
	// or owned by another company.
	GetCommunication(ctx context.Context, companyID, id string) (Communication, error)
	// ListCommunications returns rows of the company matching f, ordered by
	// (scheduled_for, id) ascending, after f.After, at most f.Limit of them,
	// and whether more exist.
	ListCommunications(ctx context.Context, companyID string, f ListFilter) (rows []Communication, more bool, err error)
	// UpdateCommunication writes a transition's Change in one atomic write:
	// it replaces the row if its stored version equals ch.Row.Version,
	// storing it as ch.Row.Version+1, inserts ch.Events, and creates
	// ch.Insert (a row the transition creates, at version 1, with its events;
	// no debit). ErrConflict if the version moved on, ErrNotFound if the row
	// is absent, ErrAlreadyExists if ch.Insert's id is taken: in each case
	// nothing is written. With debit, one credit is taken from the company in
	// the same write (ErrInsufficientCredits writes nothing). It returns the
	// row as stored and, with debit, the balance after it (without a debit
	// the balance is not read and 0 is returned: the dispatcher's writes stay
	// one call each).
	UpdateCommunication(ctx context.Context, ch Change, debit bool) (stored Communication, creditsRemaining int64, err error)
	// ListEvents returns the events of one row of the company with a
	// sequence above afterSeq, oldest first, at most limit (1–100) of them,
	// and whether more exist. A row of another company has no events.
	ListEvents(ctx context.Context, companyID, communicationID string, afterSeq int64, limit int) (events []Event, more bool, err error)
	// ListCompanyEvents returns the company's events across its rows in the
	// store's feed order, after the position f.After (a cursor an earlier
	// call returned; ErrBadCursor if it is not one), at most f.Limit, the
	// cursor of the last event returned (f.After when none was) and whether
	// more exist now. The feed order never places an event before a cursor
	// already handed out, so a reader that follows the cursors sees every
	// event once.
	ListCompanyEvents(ctx context.Context, companyID string, f EventFilter) (events []Event, next string, more bool, err error)
	// CommunicationByProviderMessageID returns the row that was sent as
	// the provider's message id (SNS SMS delivery-status logs name only the
	// message); ErrNotFound if none. It reads across companies: callers
	// act only on the row it returns, within that row's company.
	CommunicationByProviderMessageID(ctx context.Context, providerMessageID string) (Communication, error)
	// GetIdempotency returns the live record for key; ErrNotFound if there is
	// none or it expired before now.
	GetIdempotency(ctx context.Context, companyID, key string, now time.Time) (Idempotency, error)
	// DueCommunications returns up to limit non-terminal rows of any company
	// whose next_attempt_at (pending) or lease_until (processing) is before t,
	// earliest first: what a sweeper must look at.
	DueCommunications(ctx context.Context, t time.Time, limit int) ([]Communication, error)
}

// Paging bounds of a listing.
const (
	DefaultListLimit = 50
	MaxListLimit     = 100
)

// ListFilter narrows a listing. Empty fields do not filter.
type ListFilter struct {
	Status  Status
	Channel Channel
	// DeliveryStatus keeps sent rows whose delivery_status is this one.
	DeliveryStatus DeliveryStatus
	ContactID      string
	CustomerID     string
	DealID         string
	// CadenceRootID lists the rows of one voice cadence.
	CadenceRootID string
	// ScheduledAfter is inclusive, ScheduledBefore exclusive.
	ScheduledAfter  time.Time
	ScheduledBefore time.Time
	// After is the position of the last row of the previous page.
	After *Cursor
	// Limit is 1–100.
	Limit int
}

// EventFilter narrows the company's event feed. Empty fields do not filter.
type EventFilter struct {
	// Types keeps events of these types only.
	Types []EventType
	// CreatedAfter keeps events at or after this time.
	CreatedAfter time.Time
	// After is the store's cursor of the last event already read.
	After string
	// Limit is 1–100.
	Limit int
	// Now is the caller's clock. A store whose feed is ordered by event time
	// (DynamoDB) returns only events older than Now minus its settle window,
	// so that an event written a moment late can never land before a cursor
	// already handed out.
	Now time.Time
}

// Cursor is a position in the (scheduled_for, id) order of a listing.
type Cursor struct {
	ScheduledFor time.Time
	ID           string
}
