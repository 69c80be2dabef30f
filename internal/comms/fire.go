package comms

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Fire is one firing of a row's timer. It carries ids and the token only,
// never the payload: a fire whose token is no longer the row's is stale and
// is dropped, so cancel and reschedule never depend on deleting a timer.
type Fire struct {
	// Kind says whose fire it is: "" for a row's (the dispatcher's), or
	// another part's (webhooks.FireKind: a webhook delivery's next attempt),
	// which then names its own object with the fields below.
	Kind            string `json:"kind,omitempty"`
	CompanyID       string `json:"company_id"`
	CommunicationID string `json:"communication_id"`
	Token           string `json:"token"`
	// DueAt is when the row was due when the fire was armed. A fire that
	// arrives well before it (the Scheduler stage of the AWS timer fires
	// early on purpose) is re-armed for the rest without reading the row.
	DueAt time.Time `json:"due_at,omitzero"`
	// RequestID is the id of the API request whose work armed this fire
	// (the X-Request-Id the API answered, or the id of the invocation that
	// armed a retry while handling a fire that carried one): the functions
	// put it on every log line of the fire's handling (docs/design.md,
	// "Following one communication"). Empty when nothing armed it in a
	// request (the sweeper's refires). It is never part of a fire's
	// identity: ScheduleName and the token ignore it.
	RequestID string `json:"request_id,omitempty"`
}

type requestIDKey struct{}

// WithRequestID returns ctx carrying id as the request id of the work
// done under it ("" returns ctx).
func WithRequestID(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID is the request id ctx carries (WithRequestID), "" if none.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// FireOf is the fire a row currently waits for.
func FireOf(c Communication) Fire {
	return Fire{CompanyID: c.CompanyID, CommunicationID: c.ID, Token: c.Token, DueAt: c.NextAttemptAt.UTC()}
}

// NewToken returns a fresh random fire token.
func NewToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Timer arms fires: at (or very soon after) at, the fire is delivered to
// the dispatcher. Arming the same fire twice may deliver it twice; the
// dispatcher makes that harmless.
type Timer interface {
	Arm(ctx context.Context, f Fire, at time.Time) error
}

// SendError is a delivery failure, classified by the sender that saw it.
type SendError struct {
	// Code is short and stable (throttled, invalid_address, unknown_resource…).
	Code    string
	Message string
	// Transient failures are retried with backoff; permanent ones fail the row.
	Transient bool
}

// Error says what failed.
func (e *SendError) Error() string {
	kind := "permanent"
	if e.Transient {
		kind = "transient"
	}
	return fmt.Sprintf("%s send failure %s: %s", kind, e.Code, e.Message)
}

// Transient returns a retryable send failure.
func Transient(code, format string, args ...any) *SendError {
	return &SendError{Code: code, Message: fmt.Sprintf(format, args...), Transient: true}
}

// Permanent returns a send failure that retrying cannot fix.
func Permanent(code, format string, args ...any) *SendError {
	return &SendError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CancelPolicy is the part of a row's cancel_policy Dispatcher acts on.
type CancelPolicy struct {
	MaxDelayMinutes int      `json:"max_delay_minutes"`
	CancelOn        []string `json:"cancel_on"`
}

// Policy decodes the row's cancel policy (zero when it has none).
func (c Communication) Policy() CancelPolicy {
	var p CancelPolicy
	if len(c.CancelPolicy) > 0 {
		_ = json.Unmarshal(c.CancelPolicy, &p)
	}
	return p
}

// CancelsOn reports whether the row's policy lists event.
func (p CancelPolicy) CancelsOn(event string) bool {
	for _, e := range p.CancelOn {
		if e == event {
			return true
		}
	}
	return false
}
