package comms

// Scope is a permission an API key carries.
type Scope string

// The scopes of an API key.
const (
	ScopeRead          Scope = "dispatcher:read"
	ScopeWrite         Scope = "dispatcher:write"
	ScopeEmailSend     Scope = "email:send"
	ScopeSMSSend       Scope = "sms:send"
	ScopeCallsInitiate Scope = "calls:initiate"
)

// AllScopes lists every scope, in a stable order.
var AllScopes = []Scope{ScopeRead, ScopeWrite, ScopeEmailSend, ScopeSMSSend, ScopeCallsInitiate}

// ParseScope returns the scope named s, or false if there is none.
func ParseScope(s string) (Scope, bool) {
	for _, x := range AllScopes {
		if string(x) == s {
			return x, true
		}
	}
	return "", false
}

// HasScope reports whether scopes contains s.
func HasScope(scopes []Scope, s Scope) bool {
	for _, x := range scopes {
		if x == s {
			return true
		}
	}
	return false
}

// Principal is the authenticated caller: one key of one company.
type Principal struct {
	CompanyID string
	KeyID     string
	Scopes    []Scope
}

// Require returns a *ScopeError unless the caller holds every scope given.
func (p Principal) Require(scopes ...Scope) error {
	for _, s := range scopes {
		if !HasScope(p.Scopes, s) {
			return &ScopeError{Needed: scopes}
		}
	}
	return nil
}

// RequireAny returns a *ScopeError unless the caller holds one of the scopes.
func (p Principal) RequireAny(scopes ...Scope) error {
	for _, s := range scopes {
		if HasScope(p.Scopes, s) {
			return nil
		}
	}
	return &ScopeError{Needed: scopes, AnyOf: true}
}
