// Package rowview is how a row and its events are shown outside: the
// bodies of the HTTP API (internal/httpapi) and of the status webhooks (the
// webhooks function, which does not link the API). One shape, one place.
package rowview

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// Row is a row as the API shows it: empty strings become null, times
// are UTC.
type Row struct {
	ID                   string           `json:"id"`
	Channel              comms.Channel    `json:"channel"`
	Status               comms.Status     `json:"status"`
	ScheduledFor         time.Time        `json:"scheduled_for"`
	NextAttemptAt        time.Time        `json:"next_attempt_at"`
	Timezone             *string          `json:"timezone"`
	RespectBusinessHours bool             `json:"respect_business_hours"`
	Payload              json.RawMessage  `json:"payload"`
	ContactID            *string          `json:"contact_id"`
	CustomerID           *string          `json:"customer_id"`
	DealID               *string          `json:"deal_id"`
	RelatedEntityType    *string          `json:"related_entity_type"`
	RelatedEntityID      *string          `json:"related_entity_id"`
	CancelPolicy         json.RawMessage  `json:"cancel_policy"`
	AttemptCount         int              `json:"attempt_count"`
	MaxAttempts          int              `json:"max_attempts"`
	LastError            *comms.LastError `json:"last_error"`
	Source               comms.Source     `json:"source"`
	Cadence              *comms.Cadence   `json:"cadence"`
	Outcome              *comms.Outcome   `json:"outcome"`
	ProviderMessageID    *string          `json:"provider_message_id"`
	CreatedAt            time.Time        `json:"created_at"`
	UpdatedAt            time.Time        `json:"updated_at"`
	SentAt               *time.Time       `json:"sent_at"`
	CancelledAt          *time.Time       `json:"cancelled_at"`
	CancelReason         *string          `json:"cancel_reason"`
	DeliveryStatus       *string          `json:"delivery_status"`
	DeliveryStatusAt     *time.Time       `json:"delivery_status_at"`
	DeliveryDetail       *string          `json:"delivery_detail"`

	// Where the recipient is: the source of the zones and the zones
	// business hours and quiet hours are read in.
	TimezoneSource comms.TimezoneSource `json:"timezone_source"`
	Timezones      []string             `json:"timezones"`
}

// Of is row c as the API shows it.
func Of(c comms.Communication) Row {
	v := Row{
		ID: c.ID, Channel: c.Channel, Status: c.Status,
		ScheduledFor: c.ScheduledFor.UTC(), NextAttemptAt: c.NextAttemptAt.UTC(),
		Timezone: Null(c.Timezone), RespectBusinessHours: c.RespectBusinessHours,
		Payload:   OrNull(c.Payload),
		ContactID: Null(c.ContactID), CustomerID: Null(c.CustomerID), DealID: Null(c.DealID),
		RelatedEntityType: Null(c.RelatedEntityType), RelatedEntityID: Null(c.RelatedEntityID),
		CancelPolicy: OrNull(c.CancelPolicy),
		AttemptCount: c.AttemptCount, MaxAttempts: c.MaxAttempts, LastError: c.LastError,
		Source: c.Source, Cadence: c.Cadence, Outcome: c.Outcome,
		ProviderMessageID: Null(c.ProviderMessageID),
		CreatedAt:         c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC(),
		SentAt: UTC(c.SentAt), CancelledAt: UTC(c.CancelledAt), CancelReason: Null(string(c.CancelReason)),
		DeliveryStatus: Null(string(c.Delivery.Status)), DeliveryDetail: Null(c.Delivery.Detail),
	}
	v.TimezoneSource, v.Timezones = c.ZoneSource(), c.Timezones
	if c.Delivery.Status != "" && !c.Delivery.At.IsZero() {
		at := c.Delivery.At.UTC()
		v.DeliveryStatusAt = &at
	}
	return v
}

// Null is s, or JSON null for "".
func Null(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// OrNull is b, or JSON null when b is empty.
func OrNull(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}

// UTC is *t in UTC, or nil.
func UTC(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// Event is an event as the API (and the status webhooks) show it: at
// is UTC RFC 3339 with milliseconds.
type Event struct {
	ID              string          `json:"id"`
	CommunicationID string          `json:"communication_id"`
	Sequence        int64           `json:"sequence"`
	Type            comms.EventType `json:"type"`
	At              string          `json:"at"`
	Data            json.RawMessage `json:"data"`
}

// RFC3339Milli is RFC 3339 in UTC with exactly three fractional digits.
const RFC3339Milli = "2006-01-02T15:04:05.000Z07:00"

// Events are evs as the API shows them.
func Events(evs []comms.Event) []Event {
	out := make([]Event, len(evs))
	for i, e := range evs {
		out[i] = Event{ID: e.ID, CommunicationID: e.CommunicationID, Sequence: e.Sequence, Type: e.Type,
			At: e.At.UTC().Format(RFC3339Milli), Data: OrNull(e.Data)}
	}
	return out
}

// WebhookPayload is the body of the status webhook of an event (issue 12):
// {"type": <event type>, "timestamp": <event time, RFC 3339 UTC with
// milliseconds>, "data": {"event": <the event as GET …/events shows it>,
// "communication": <the row as GET returns it>}}.
func WebhookPayload(ev comms.Event, row comms.Communication) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // as the API writes it: html_body stays readable
	err := enc.Encode(map[string]any{
		"type":      ev.Type,
		"timestamp": ev.At.UTC().Format(RFC3339Milli),
		"data":      map[string]any{"event": Events([]comms.Event{ev})[0], "communication": Of(row)},
	})
	return bytes.TrimRight(b.Bytes(), "\n"), err
}
