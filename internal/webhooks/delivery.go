package webhooks

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// DeliveryState is where a delivery (one message to one endpoint) stands.
type DeliveryState string

// The delivery states, as GET …/deliveries shows them.
const (
	// DeliveryPending: not yet delivered, with an attempt due at
	// NextAttemptAt.
	DeliveryPending DeliveryState = "pending"
	// DeliverySucceeded: an attempt got a 2xx. Terminal.
	DeliverySucceeded DeliveryState = "succeeded"
	// DeliveryFailed: every attempt of the schedule failed, or the
	// endpoint answered 410 Gone or was disabled. Terminal until a manual
	// retry makes it pending again.
	DeliveryFailed DeliveryState = "failed"
)

// Valid reports whether s is one of the delivery states.
func (s DeliveryState) Valid() bool {
	switch s {
	case DeliveryPending, DeliverySucceeded, DeliveryFailed:
		return true
	}
	return false
}

// Delivery is one message — one event of a company for one of its
// endpoints — with what its attempts did. It is created by the fan-out
// (DeliveryStore.FanOut) and then changed only by compare-and-swap
// (DeliveryStore.UpdateDelivery).
type Delivery struct {
	// ID is the message's webhook-id header: DeliveryID(EndpointID,
	// EventID), the same on every retry and on every replay of the fan-out,
	// so that a receiver de-duplicates by it.
	ID         string
	CompanyID  string
	EndpointID string
	// EventID is the id of the comms.Event the message carries.
	EventID   string
	EventType comms.EventType
	// CommunicationID is the row the event belongs to.
	CommunicationID string
	// Payload is the exact body sent, built once at fan-out and never
	// changed (every attempt signs and sends these bytes). Stores return it
	// byte for byte.
	Payload json.RawMessage
	State   DeliveryState
	// Attempts are the attempts made, oldest first. Stores keep the last
	// MaxStoredAttempts of them (KeepAttempts).
	Attempts []Attempt
	// NextAttemptAt is when the next attempt is due; zero unless State is
	// pending (and then never zero).
	NextAttemptAt time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
	// Version is the compare-and-swap counter: 1 when fanned out, +1 on
	// every UpdateDelivery.
	Version int64
}

// deliveryNamespace derives delivery ids (a UUID of its own, so that a
// delivery id never equals an event id).
var deliveryNamespace = uuid.MustParse("8d6f3c52-1b7e-4f0a-9c3d-5e2a7b4c9f10")

// DeliveryIDPrefix starts every delivery id (Svix's message ids start "msg_").
const DeliveryIDPrefix = "msg_"

// DeliveryID is the id of the message of event eventID to endpoint
// endpointID: "msg_" + a UUID (version 5) of both. Every retry, and every
// replay of the fan-out, names the message the same way. It contains no
// '.' and no line break, as a webhook-id must not (Sign).
func DeliveryID(endpointID, eventID string) string {
	return DeliveryIDPrefix + uuid.NewSHA1(deliveryNamespace, []byte(endpointID+"\x00"+eventID)).String()
}

// MaxStoredAttempts is how many attempts a stored delivery keeps: the last
// 20. The retry schedule makes 8 (len(RetrySchedule)+1); the rest leaves
// room for manual retries, while bounding the item (a DynamoDB item holds
// at most 400 KB, payload included).
const MaxStoredAttempts = 20

// KeepAttempts returns the last MaxStoredAttempts of as, what a store
// keeps (the same slice when it is short enough).
func KeepAttempts(as []Attempt) []Attempt {
	if len(as) <= MaxStoredAttempts {
		return as
	}
	return as[len(as)-MaxStoredAttempts:]
}

// MaxFanOut bounds the deliveries of one FanOut call: a DynamoDB
// transaction holds at most 100 items, and one of them is the company's
// fan-out cursor. The SQLite store has the same bound, so that a caller
// sized for one store fits the other.
const MaxFanOut = 99

// ErrInvalidDelivery is returned (wrapped, with the reason) for a delivery a
// store refuses to write: a missing key, an unknown state, a pending one
// without NextAttemptAt or a settled one with it, or a FanOut of more than
// MaxFanOut deliveries or of another company's delivery. Nothing is
// written.
var ErrInvalidDelivery = errors.New("webhooks: invalid delivery")

// Check returns ErrInvalidDelivery (wrapped, saying why) when d cannot be
// stored; stores call it before writing.
func (d Delivery) Check() error {
	var why []string
	for _, f := range []struct{ name, v string }{{"ID", d.ID}, {"CompanyID", d.CompanyID}, {"EndpointID", d.EndpointID}} {
		if f.v == "" {
			why = append(why, f.name+" is empty")
		}
	}
	if !d.State.Valid() {
		why = append(why, fmt.Sprintf("state %q is not a delivery state", d.State))
	}
	switch {
	case d.State == DeliveryPending && d.NextAttemptAt.IsZero():
		why = append(why, "a pending delivery needs NextAttemptAt")
	case d.State != DeliveryPending && !d.NextAttemptAt.IsZero():
		why = append(why, "only a pending delivery has a NextAttemptAt")
	}
	if len(why) > 0 {
		return fmt.Errorf("%w %q: %s", ErrInvalidDelivery, d.ID, strings.Join(why, "; "))
	}
	return nil
}

// CheckFanOut returns ErrInvalidDelivery (wrapped, saying why) for a
// FanOut call no store may write: an empty new cursor, more than MaxFanOut
// deliveries, one of another company or one Check refuses. Stores call it
// before writing.
func CheckFanOut(companyID, to string, ds []Delivery) error {
	if to == "" {
		return fmt.Errorf("%w: the new fan-out cursor is empty", ErrInvalidDelivery)
	}
	if len(ds) > MaxFanOut {
		return fmt.Errorf("%w: %d deliveries in one fan-out, at most %d", ErrInvalidDelivery, len(ds), MaxFanOut)
	}
	for _, d := range ds {
		if d.CompanyID != companyID {
			return fmt.Errorf("%w %q: of company %q in a fan-out of %q", ErrInvalidDelivery, d.ID, d.CompanyID, companyID)
		}
		if err := d.Check(); err != nil {
			return err
		}
	}
	return nil
}

// DeliveryFilter narrows ListDeliveries. Empty fields do not filter.
type DeliveryFilter struct {
	State DeliveryState
	// After is DeliveryCursor of the last delivery of the previous page:
	// the listing continues after it. Opaque to callers.
	After string
	// Limit is 1–100 (anything else reads as 100).
	Limit int
}

// DeliveryStore keeps deliveries and each company's fan-out cursor. Both
// stores (SQLite, DynamoDB) implement it and pass its conformance suite
// (internal/store/storetest). Methods return comms's sentinel errors,
// wrapped with the method's name.
type DeliveryStore interface {
	// FanOut writes, in one atomic write, every delivery of ds that does
	// not exist yet (by company, endpoint and id: an existing one is left
	// untouched, so a replayed fan-out duplicates nothing; each new one is
	// stored at version 1) and moves the company's fan-out cursor from
	// from to to — the opaque feed cursors of comms ListCompanyEvents,
	// from being "" when the company has none yet. comms.ErrConflict when
	// the stored cursor is not from; ErrInvalidDelivery for more than
	// MaxFanOut deliveries, one of another company or one Check refuses;
	// in each case nothing is written. to must not be "". Deliveries given
	// twice are written once (the first). On DynamoDB the transaction also
	// holds at most 4 MB: payloads averaging more than ~40 KB need smaller
	// calls.
	FanOut(ctx context.Context, companyID, from, to string, ds []Delivery) error
	// FanOutCursor returns the company's fan-out cursor, "" when it has
	// none yet.
	FanOutCursor(ctx context.Context, companyID string) (string, error)
	// GetDelivery returns one delivery of the company's endpoint;
	// comms.ErrNotFound if absent (or another company's).
	GetDelivery(ctx context.Context, companyID, endpointID, id string) (Delivery, error)
	// ListDeliveries returns the endpoint's deliveries matching f, newest
	// first (by CreatedAt, then id, both descending), after the position
	// f.After (DeliveryCursor of the last delivery of the previous page), at
	// most f.Limit, and whether more exist. comms.ErrBadCursor for an After
	// DeliveryCursor did not make.
	ListDeliveries(ctx context.Context, companyID, endpointID string, f DeliveryFilter) (ds []Delivery, more bool, err error)
	// UpdateDelivery replaces the delivery's State, Attempts (keeping the
	// last MaxStoredAttempts), NextAttemptAt and UpdatedAt if its stored
	// version is d.Version, storing it as d.Version+1, and returns it as
	// stored; the other fields are as fanned out and never change.
	// comms.ErrConflict if the version moved on, comms.ErrNotFound if there
	// is no such delivery, ErrInvalidDelivery if Check refuses d.
	UpdateDelivery(ctx context.Context, d Delivery) (Delivery, error)
	// DueDeliveries returns up to limit pending deliveries of any company
	// whose NextAttemptAt is at or before t, earliest first (ties by
	// company, endpoint and id): what a restart re-arms and a sweeper
	// repairs.
	DueDeliveries(ctx context.Context, t time.Time, limit int) ([]Delivery, error)
}

// DeliveryCursor is the position of d in the (CreatedAt, ID) order of
// ListDeliveries, as DeliveryFilter.After takes it: opaque to callers (the
// base64url of the time in nanoseconds and the id), the same in every
// store.
func DeliveryCursor(d Delivery) string {
	return base64.RawURLEncoding.EncodeToString([]byte(d.CreatedAt.UTC().Format(time.RFC3339Nano) + "|" + d.ID))
}

// ParseDeliveryCursor returns the position DeliveryCursor encoded;
// comms.ErrBadCursor (wrapped) if s is not one.
func ParseDeliveryCursor(s string) (createdAt time.Time, id string, err error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("%w: %v", comms.ErrBadCursor, err)
	}
	at, id, ok := strings.Cut(string(b), "|")
	if !ok || id == "" {
		return time.Time{}, "", fmt.Errorf("%w: not a delivery cursor", comms.ErrBadCursor)
	}
	createdAt, err = time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("%w: %v", comms.ErrBadCursor, err)
	}
	return createdAt.UTC(), id, nil
}

// newPingID is the webhook-id of a test message: "msg_" + a random UUID
// (version 4), never the id of a stored delivery.
func newPingID() (string, error) {
	u, err := uuid.NewRandom()
	if err != nil {
		return "", fmt.Errorf("uuid.NewRandom: %w", err)
	}
	return DeliveryIDPrefix + u.String(), nil
}
