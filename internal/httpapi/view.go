package httpapi

import (
	"encoding/json"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/rowview"
)

// rowView is a row as the API shows it (internal/rowview, shared with
// the status webhooks).
type rowView = rowview.Row

func view(c comms.Communication) rowView { return rowview.Of(c) }

func eventViews(evs []comms.Event) []rowview.Event { return rowview.Events(evs) }

// rfc3339Milli is RFC 3339 in UTC with exactly three fractional digits.
const rfc3339Milli = rowview.RFC3339Milli

// WebhookPayload is the body of the status webhook of an event
// (rowview.WebhookPayload, which the webhooks function calls without
// linking the API).
func WebhookPayload(ev comms.Event, row comms.Communication) ([]byte, error) {
	return rowview.WebhookPayload(ev, row)
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
