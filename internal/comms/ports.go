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
}

// CompanyStore keeps companies, their balances and settings.
type CompanyStore interface {
	// CreateCompany stores a new company; ErrAlreadyExists if the id is taken.
	CreateCompany(ctx context.Context, c Company) error
	// GetCompany returns the company with its settings as stored (apply
	// Settings.WithDefaults to show them); ErrNotFound if absent.
	GetCompany(ctx context.Context, id string) (Company, error)
	// PutSettings replaces the company's settings document.
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
	// CreateCommunication stores c (Version 1), debits one credit from its
	// company and, when idem is non-nil, records the idempotency key — all in
	// one transaction. It returns the balance after the debit.
	// Errors: ErrInsufficientCredits (nothing written), ErrAlreadyExists (id
	// taken), ErrIdempotencyKeyExists (a live record holds idem.Key; nothing
	// written), ErrNotFound (no such company).
	// An idempotency record whose ExpiresAt has passed (by idem.CreatedAt) is
	// replaced. idem.CreditsRemaining is set by the store.
	CreateCommunication(ctx context.Context, c Communication, idem *Idempotency) (creditsRemaining int64, err error)
	// InsertCommunication stores a row the system creates itself (a cadence
	// follow-up) at version 1, without a debit. ErrAlreadyExists if the id
	// is taken (so a deterministic id makes the create idempotent),
	// ErrNotFound if the company does not exist.
	InsertCommunication(ctx context.Context, c Communication) error
	// GetCommunication returns a row of the company; ErrNotFound if absent
	// or owned by another company.
	GetCommunication(ctx context.Context, companyID, id string) (Communication, error)
	// ListCommunications returns rows of the company matching f, ordered by
	// (scheduled_for, id) ascending, after f.After, at most f.Limit of them,
	// and whether more exist.
	ListCommunications(ctx context.Context, companyID string, f ListFilter) (rows []Communication, more bool, err error)
	// UpdateCommunication replaces the row if its stored version equals
	// c.Version, storing it as c.Version+1 (ErrConflict otherwise, ErrNotFound
	// if absent). With debit, one credit is taken from the company in the same
	// transaction (ErrInsufficientCredits writes nothing). It returns the row
	// as stored and, with debit, the balance after it (without a debit the
	// balance is not read and 0 is returned: the dispatcher's writes stay
	// one call each).
	UpdateCommunication(ctx context.Context, c Communication, debit bool) (stored Communication, creditsRemaining int64, err error)
	// GetIdempotency returns the live record for key; ErrNotFound if there is
	// none or it expired before now.
	GetIdempotency(ctx context.Context, companyID, key string, now time.Time) (Idempotency, error)
	// DueCommunications returns up to limit non-terminal rows of any company
	// whose next_attempt_at (pending) or lease_until (processing) is before t,
	// earliest first: what a sweeper must look at.
	DueCommunications(ctx context.Context, t time.Time, limit int) ([]Communication, error)
}

// ListFilter narrows a listing. Empty fields do not filter.
type ListFilter struct {
	Status     Status
	Channel    Channel
	ContactID  string
	CustomerID string
	DealID     string
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

// Cursor is a position in the (scheduled_for, id) order of a listing.
type Cursor struct {
	ScheduledFor time.Time
	ID           string
}
