package contract

import (
	"net/url"
)

var deliveryParams = map[string]bool{"state": true, "limit": true, "cursor": true}

// DeliveryQuery is a checked GET /v1/webhook-endpoints/{id}/deliveries query.
type DeliveryQuery struct {
	// State is "", pending, succeeded or failed.
	State string
	// Cursor is the opaque meta.next_cursor of an earlier page ("" from the start).
	Cursor string
	Limit  int
}

// ParseDeliveryQuery reads a deliveries listing's query: state, limit
// (1–100, default 50), cursor; unknown, repeated or empty parameters are
// refused like every listing's.
func ParseDeliveryQuery(q url.Values) (DeliveryQuery, error) {
	var c checker
	c.params(q, deliveryParams)
	d := DeliveryQuery{Limit: c.limit(q), Cursor: q.Get("cursor"), State: q.Get("state")}
	switch d.State {
	case "", "pending", "succeeded", "failed":
	default:
		c.add("state", "must be one of pending, succeeded, failed")
	}
	return d, c.errs.Err()
}
