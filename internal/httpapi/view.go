package httpapi

import (
	"encoding/json"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// rowView is a row as the API shows it: empty strings become null, times
// are UTC.
type rowView struct {
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
}

func view(c comms.Communication) rowView {
	return rowView{
		ID: c.ID, Channel: c.Channel, Status: c.Status,
		ScheduledFor: c.ScheduledFor.UTC(), NextAttemptAt: c.NextAttemptAt.UTC(),
		Timezone: null(c.Timezone), RespectBusinessHours: c.RespectBusinessHours,
		Payload:   orNull(c.Payload),
		ContactID: null(c.ContactID), CustomerID: null(c.CustomerID), DealID: null(c.DealID),
		RelatedEntityType: null(c.RelatedEntityType), RelatedEntityID: null(c.RelatedEntityID),
		CancelPolicy: orNull(c.CancelPolicy),
		AttemptCount: c.AttemptCount, MaxAttempts: c.MaxAttempts, LastError: c.LastError,
		Source: c.Source, Cadence: c.Cadence, Outcome: c.Outcome,
		ProviderMessageID: null(c.ProviderMessageID),
		CreatedAt:         c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC(),
		SentAt: utc(c.SentAt), CancelledAt: utc(c.CancelledAt),
	}
}

func null(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func orNull(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
