// Package comms is the domain of Dispatcher: scheduled communications, their
// channels, payloads and lifecycle, companies and their settings and business
// hours, API keys and scopes, sender resources, the error vocabulary
// (sentinels, ValidationError, ScopeError) every adapter translates into, and
// the ports (interfaces) the use cases consume.
//
// It imports no AWS package, no storage driver and no request layer:
// adapters, the request contract (internal/contract) and the use cases
// (internal/scheduling) depend on it, never the other way round.
package comms

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Channel is how a communication reaches its recipient.
type Channel string

// The channels Dispatcher delivers through.
const (
	ChannelEmail Channel = "email"
	ChannelSMS   Channel = "sms"
	ChannelVoice Channel = "voice_call"
)

// Valid reports whether c is one of the known channels.
func (c Channel) Valid() bool {
	return c == ChannelEmail || c == ChannelSMS || c == ChannelVoice
}

// Scope is the API-key scope a create or edit on this channel needs on top
// of dispatcher:write.
func (c Channel) Scope() Scope {
	switch c {
	case ChannelEmail:
		return ScopeEmailSend
	case ChannelSMS:
		return ScopeSMSSend
	case ChannelVoice:
		return ScopeCallsInitiate
	}
	return ""
}

// DefaultMaxAttempts is how many delivery attempts (the first plus transient
// retries) a row of this channel gets: email and SMS 3, voice 2.
func (c Channel) DefaultMaxAttempts() int {
	if c == ChannelVoice {
		return 2
	}
	return 3
}

// Status is where a communication is in its lifecycle.
type Status string

// The lifecycle: pending → processing → sent | failed; pending → cancelled.
const (
	StatusPending    Status = "pending"
	StatusProcessing Status = "processing"
	StatusSent       Status = "sent"
	StatusFailed     Status = "failed"
	StatusCancelled  Status = "cancelled"
)

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusPending, StatusProcessing, StatusSent, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

// Terminal reports whether no further transition can leave s.
func (s Status) Terminal() bool {
	return s == StatusSent || s == StatusFailed || s == StatusCancelled
}

// Source says who created a row: a caller through the API, or the system
// itself as the next attempt of a voice cadence.
type Source string

// The sources of a row.
const (
	SourceAPI     Source = "api"
	SourceCadence Source = "cadence"
)

// Communication is one scheduled email, SMS or voice call: the row that the
// API returns everywhere and that every store persists.
type Communication struct {
	ID                   string          `json:"id"`
	CompanyID            string          `json:"-"`
	Channel              Channel         `json:"channel"`
	Status               Status          `json:"status"`
	ScheduledFor         time.Time       `json:"scheduled_for"`
	NextAttemptAt        time.Time       `json:"next_attempt_at"`
	Timezone             string          `json:"timezone"`
	RespectBusinessHours bool            `json:"respect_business_hours"`
	Payload              json.RawMessage `json:"payload"`
	ContactID            string          `json:"contact_id"`
	CustomerID           string          `json:"customer_id"`
	DealID               string          `json:"deal_id"`
	RelatedEntityType    string          `json:"related_entity_type"`
	RelatedEntityID      string          `json:"related_entity_id"`
	CancelPolicy         json.RawMessage `json:"cancel_policy"`
	AttemptCount         int             `json:"attempt_count"`
	MaxAttempts          int             `json:"max_attempts"`
	LastError            *LastError      `json:"last_error"`
	Source               Source          `json:"source"`
	Cadence              *Cadence        `json:"cadence"`
	Outcome              *Outcome        `json:"outcome"`
	ProviderMessageID    string          `json:"provider_message_id"`
	CreatedAt            time.Time       `json:"created_at"`
	UpdatedAt            time.Time       `json:"updated_at"`
	SentAt               *time.Time      `json:"sent_at"`
	CancelledAt          *time.Time      `json:"cancelled_at"`
	// CancelReason says why a cancelled row was cancelled (see
	// CancelReason's values); empty while not cancelled.
	CancelReason CancelReason `json:"cancel_reason"`
	// TimezoneSource says where Timezones come from (see RecipientZones);
	// empty on rows stored before it was recorded (ZoneSource reads them).
	TimezoneSource TimezoneSource `json:"timezone_source"`
	// Timezones are the zones the recipient may be in, as decided when the
	// row was created or last edited: the request's, the number's (several
	// for an area code spanning zones) or the company's.
	Timezones []string `json:"timezones"`
	// Delivery is what the provider last reported about a sent email or
	// SMS (RecordDelivery); zero before the row is sent and for voice.
	Delivery Delivery `json:"-"`

	// Token identifies the fire the row currently waits for; a fire that
	// carries any other token is stale and is dropped.
	Token string `json:"-"`
	// LeaseUntil is when a processing claim expires (zero when unclaimed).
	LeaseUntil time.Time `json:"-"`
	// LeaseOwner names the process that claimed the row for the attempt
	// in flight (its instance id; set by the dispatcher after Claim, cleared
	// by every transition), so that a process started after a crash can
	// tell its predecessor's claims from its own. Empty when no attempt is
	// in flight or the store does not keep it (DynamoDB).
	LeaseOwner string `json:"-"`
	// Version is bumped by every write; updates compare-and-swap on it.
	Version int64 `json:"-"`
	// EventSeq is the sequence of the row's last event (0 before any):
	// the next event the row records is EventSeq+1.
	EventSeq int64 `json:"-"`
}

// LastError is the reason the last attempt did not succeed.
type LastError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Cadence places a voice row in its multi-attempt cadence.
type Cadence struct {
	RootID      string `json:"root_id"`
	Attempt     int    `json:"attempt"`
	MaxAttempts int    `json:"max_attempts"`
}

// Outcome is what the voice provider reported about a call, and what
// Dispatcher decided from it (outcome.go).
type Outcome struct {
	// Connected: a person answered (not a machine, not unanswered).
	Connected bool `json:"connected"`
	// TalkSeconds is how long the contact spoke, from the transcript; nil
	// when it is unknown (a connected call without transcript).
	TalkSeconds *float64 `json:"talk_seconds"`
	// TalkSecondsSource is what the decision about a conversation rests on.
	TalkSecondsSource TalkSource `json:"talk_seconds_source,omitempty"`
	// CallSeconds is the call's length (start to end), nil when unknown.
	CallSeconds *float64 `json:"call_seconds,omitempty"`
	// EndedReason is the provider's disconnection reason, verbatim.
	EndedReason string `json:"ended_reason"`
	// InVoicemail is the provider's post-call analysis (nil before it).
	InVoicemail *bool `json:"in_voicemail,omitempty"`
	// Undialable: the provider's reason says retrying this number cannot
	// help (an invalid destination…); the cadence stops.
	Undialable bool `json:"undialable,omitempty"`
	// Basis says which report the outcome comes from (OutcomeBasis).
	Basis OutcomeBasis `json:"basis,omitempty"`
	// Decision is what the cadence does after this call (Decide).
	Decision Decision `json:"decision,omitempty"`
}

// ValidCompanyID reports whether id can name a new company: 1–64 ASCII
// letters, digits, '-' or '_'. The id travels as the SES message tag
// company_id, whose values allow only those characters (and '.', '@',
// which are left out to keep ids plain); an id outside the rule would come
// back altered in SES events and its delivery feedback would find no row.
func ValidCompanyID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Company is a tenant: it owns keys, rows, sender resources and a balance.
type Company struct {
	ID        string
	Credits   int64
	Settings  Settings
	CreatedAt time.Time
}

// APIKey is a bearer key of one company. Only the SHA-256 of the secret is
// ever stored.
type APIKey struct {
	ID        string
	CompanyID string
	// Hash is the lowercase hex SHA-256 of the full secret key.
	Hash string
	// Prefix is the first characters of the key, kept to recognise it in
	// listings without revealing it.
	Prefix    string
	Scopes    []Scope
	CreatedAt time.Time
	RevokedAt *time.Time
}

// PhoneNumber is a sender number of a company, referenced by SMS rows and by
// voice agents.
type PhoneNumber struct {
	ID           string    `json:"id"`
	CompanyID    string    `json:"-"`
	E164         string    `json:"e164"`
	Capabilities []string  `json:"capabilities"`
	Label        string    `json:"label"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// HasCapability reports whether the number can be used for c ("sms" or "voice").
func (p PhoneNumber) HasCapability(c string) bool {
	for _, x := range p.Capabilities {
		if x == c {
			return true
		}
	}
	return false
}

// VoiceAgent is an outbound voice-AI configuration of a company: the
// provider, its agent and the number it calls from.
type VoiceAgent struct {
	ID            string    `json:"id"`
	CompanyID     string    `json:"-"`
	Provider      string    `json:"provider"`
	AgentID       string    `json:"agent_id"`
	PhoneNumberID string    `json:"phone_number_id"`
	Label         string    `json:"label"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Idempotency remembers the first create made with an Idempotency-Key, so a
// retry with the same key and body returns the same row and costs nothing.
type Idempotency struct {
	CompanyID string
	Key       string
	// RequestHash is the SHA-256 (hex) of the canonical request body.
	RequestHash     string
	CommunicationID string
	// CreditsRemaining is the balance the first response reported; the
	// store fills it in when it records the create.
	CreditsRemaining int64
	CreatedAt        time.Time
	// ExpiresAt is when the key may be used again for a new request.
	ExpiresAt time.Time
}

// IdempotencyTTL is how long an Idempotency-Key is remembered.
const IdempotencyTTL = 24 * time.Hour

// MaxFollowUpHours bounds a voice follow-up's delay after the attempt
// before it (follow_ups.delay_hours in the create contract,
// internal/contract; docs/design.md). It is here, in the domain, so that
// the stores' retention can rely on it without linking the contract's
// validator.
const MaxFollowUpHours = 720

// UUIDString reports whether s is a UUID in its canonical 36-character form
// and returns it lowercased.
func UUIDString(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return "", false
	}
	return u.String(), true
}
