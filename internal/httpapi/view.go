package httpapi

import (
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

// The view helpers are rowview's (one definition for the API and the
// status webhooks).
var (
	null   = rowview.Null
	orNull = rowview.OrNull
	utc    = rowview.UTC
)
