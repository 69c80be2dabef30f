package comms

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Adapters translate infrastructure errors into these (a
// failed conditional write becomes ErrConflict), and the HTTP layer maps them
// to status codes in one place.
var (
	// ErrNotFound: no such row, company, key or resource within the caller's company.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a compare-and-swap lost (the version moved on).
	ErrConflict = errors.New("conflict")
	// ErrAlreadyExists: a create collided with an existing id.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInsufficientCredits: the company's balance cannot pay for the write.
	ErrInsufficientCredits = errors.New("insufficient credits")
	// ErrNotPending: the row has left pending, so it can no longer be edited or cancelled.
	ErrNotPending = errors.New("not pending")
	// ErrInvalidTransition: a lifecycle transition was asked of a row in a
	// status it does not leave from (see TransitionError).
	ErrInvalidTransition = errors.New("invalid transition")
	// ErrBadCursor: a paging cursor that no listing produced.
	ErrBadCursor = errors.New("malformed cursor")
	// ErrIdempotencyKeyExists: the store already holds a live record for this key.
	ErrIdempotencyKeyExists = errors.New("idempotency key exists")
	// ErrIdempotencyKeyReused: the key was first used with a different body.
	ErrIdempotencyKeyReused = errors.New("idempotency key reused with a different request")
	// ErrUnauthenticated: no key, an unknown key or a revoked key.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrPhoneNumberTaken: the E.164 number is registered under another
	// phone-number resource (of this or another company).
	ErrPhoneNumberTaken = errors.New("phone number taken")
	// ErrSendingDomainTaken: a sending domain of a settings document is
	// declared by another company, itself or as a parent or subdomain of
	// it (see SendingDomainTakenError, which says which ones).
	ErrSendingDomainTaken = errors.New("sending domain taken")
	// ErrUnavailable: a provider the request depends on (SES, asked
	// whether a sending domain is verified) did not answer; nothing was
	// changed and the request can be retried.
	ErrUnavailable = errors.New("provider unavailable")
	// ErrStoreUnavailable: the store cannot take writes now (the disk is
	// full, the database read-only or failing); nothing was changed and
	// the request can be retried once it recovers.
	ErrStoreUnavailable = errors.New("store unavailable")
	// ErrInvalidJSON: the body is not parseable JSON.
	ErrInvalidJSON = errors.New("invalid json")
)

// FieldError names one offending field by its JSON path
// (payload.follow_ups.follow_up_delays[1]) and says what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError carries every offending field of a request at once.
type ValidationError struct {
	Fields []FieldError
}

// Error lists the offending fields.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("validation failed: ")
	for i, f := range e.Fields {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Field)
		b.WriteString(": ")
		b.WriteString(f.Message)
	}
	return b.String()
}

// Add records one offending field.
func (e *ValidationError) Add(field, format string, args ...any) {
	e.Fields = append(e.Fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Err returns e when it holds any field error, else nil.
func (e *ValidationError) Err() error {
	if e == nil || len(e.Fields) == 0 {
		return nil
	}
	return e
}

// ScopeError says which scopes a request needed and did not have.
type ScopeError struct {
	// Needed lists the scopes the route requires; AnyOf lists alternatives
	// of which one suffices (dispatcher:read or dispatcher:write).
	Needed []Scope
	AnyOf  bool
}

// Error names the scopes needed.
func (e *ScopeError) Error() string {
	parts := make([]string, len(e.Needed))
	for i, s := range e.Needed {
		parts[i] = string(s)
	}
	if e.AnyOf {
		return "insufficient scope: this request needs one of the scopes " + strings.Join(parts, ", ")
	}
	return "insufficient scope: this request needs the scopes " + strings.Join(parts, ", ")
}

// SendingDomainTakenError says which entries of a settings document's
// SendingDomains another company holds (the domain, a parent domain or a
// subdomain of it). It matches ErrSendingDomainTaken. It never names the
// other company.
type SendingDomainTakenError struct {
	// Indexes are positions in Settings.SendingDomains, ascending, and
	// Domains the domains at them.
	Indexes []int
	Domains []string
}

// Error names the refused domains.
func (e *SendingDomainTakenError) Error() string {
	return "sending domain taken: " + strings.Join(e.Domains, ", ") +
		" (or a parent domain or subdomain) is declared by another company"
}

// Is makes the error match ErrSendingDomainTaken.
func (e *SendingDomainTakenError) Is(target error) bool { return target == ErrSendingDomainTaken }

// Fields names each refused domain by its JSON path in the settings
// document (sending_domains[i]).
func (e *SendingDomainTakenError) Fields() []FieldError {
	out := make([]FieldError, len(e.Indexes))
	for k, i := range e.Indexes {
		out[k] = FieldError{Field: fmt.Sprintf("sending_domains[%d]", i),
			Message: "domain " + e.Domains[k] + " is already a sending domain of another company, itself or through a parent domain or a subdomain of it; " +
				"a sending domain belongs to one company, with its subdomains"}
	}
	return out
}
