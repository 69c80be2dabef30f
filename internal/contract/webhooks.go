package contract

import (
	"net/url"
	"slices"
	"strings"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// Bounds of a webhook endpoint's fields (webhooks.MaxURL and
// webhooks.MaxDescription say the same; contract does not import the
// package whose requests it reads).
const (
	webhookURLMax         = 2048
	webhookDescriptionMax = 500
)

// WebhookEndpointInput is a POST /v1/webhook-endpoints body. The URL is
// checked only as text here; whether it may be called is the use case's
// URL check.
type WebhookEndpointInput struct {
	URL string
	// EventTypes is nil for every type.
	EventTypes  []comms.EventType
	Description string
}

// WebhookEndpointPatch is a PATCH /v1/webhook-endpoints/{id} body, a JSON
// Merge Patch: a nil member was not given. An event_types of null or []
// sets EventTypes to an empty, non-nil list (every type); a description of
// null clears it.
type WebhookEndpointPatch struct {
	URL         *string
	EventTypes  []comms.EventType
	SetTypes    bool
	Description *string
	Disabled    *bool
}

func webhookShape(url field) shape {
	return shape{
		fields: map[string]field{
			"url":         url,
			"event_types": eventTypesField,
			"description": text(0, webhookDescriptionMax, false),
		},
	}
}

func webhookURLField(c *checker, path string, v any) (any, bool) {
	s, ok := text(1, webhookURLMax, true)(c, path, v)
	if !ok {
		return nil, false
	}
	if strings.TrimSpace(s.(string)) != s {
		c.add(path, "must not start or end with white space")
		return nil, false
	}
	return s, true
}

func eventTypesField(c *checker, path string, v any) (any, bool) {
	a, ok := v.([]any)
	if !ok {
		c.add(path, "must be an array of event types (leave it out, or send [], for every type), got %s", typeName(v))
		return nil, false
	}
	out := make([]comms.EventType, 0, len(a))
	good := true
	for i, x := range a {
		s, ok := x.(string)
		t := comms.EventType(s)
		switch {
		case !ok:
			c.add(index(path, i), "must be an event type string, got %s", typeName(x))
			good = false
		case !t.Valid():
			c.add(index(path, i), "is not an event type; use one of %s", eventTypeList())
			good = false
		case slices.Contains(out, t):
			c.add(index(path, i), "repeats %q", s)
			good = false
		default:
			out = append(out, t)
		}
	}
	return out, good
}

// ParseWebhookEndpoint reads a POST /v1/webhook-endpoints body {url,
// event_types, description}: url is required, event_types known event
// types without repeats (absent or [] for every type), description at most
// 500 characters.
func ParseWebhookEndpoint(body []byte) (WebhookEndpointInput, error) {
	doc, err := DecodeJSON(body)
	if err != nil {
		return WebhookEndpointInput{}, err
	}
	var c checker
	s := webhookShape(webhookURLField)
	s.required = []string{"url"}
	m, _ := c.object("", doc, s)
	var in WebhookEndpointInput
	in.URL, _ = m["url"].(string)
	if ts, ok := m["event_types"].([]comms.EventType); ok && len(ts) > 0 {
		in.EventTypes = ts
	}
	in.Description, _ = m["description"].(string)
	if err := c.errs.Err(); err != nil {
		return WebhookEndpointInput{}, err
	}
	return in, nil
}

// ParseWebhookEndpointPatch reads a PATCH body: url, event_types,
// description and disabled, each optional; null clears event_types (every
// type) and description, and may not be given for url or disabled.
func ParseWebhookEndpointPatch(body []byte) (WebhookEndpointPatch, error) {
	patch, err := DecodePatch(body)
	if err != nil {
		return WebhookEndpointPatch{}, err
	}
	var c checker
	s := webhookShape(webhookURLField)
	s.fields["disabled"] = boolField
	m, _ := c.object("", patch, s)
	var p WebhookEndpointPatch
	for _, k := range []string{"url", "disabled"} {
		if v, given := patch[k]; given && v == nil {
			c.add(k, "cannot be null")
		}
	}
	if u, ok := m["url"].(string); ok {
		p.URL = &u
	}
	if v, given := patch["event_types"]; given {
		p.SetTypes = true
		p.EventTypes = []comms.EventType{}
		if ts, ok := m["event_types"].([]comms.EventType); ok {
			p.EventTypes = ts
		} else if v != nil {
			p.SetTypes = false
		}
	}
	if v, given := patch["description"]; given {
		d, _ := m["description"].(string)
		if v == nil || m["description"] != nil {
			p.Description = &d
		}
	}
	if b, ok := m["disabled"].(bool); ok {
		p.Disabled = &b
	}
	if err := c.errs.Err(); err != nil {
		return WebhookEndpointPatch{}, err
	}
	return p, nil
}

var webhookEndpointParams = map[string]bool{"limit": true, "cursor": true}

// ParseWebhookEndpointQuery reads GET /v1/webhook-endpoints's query: limit
// (1–100, default 50) and cursor (the id of the last endpoint of the
// previous page, as meta.next_cursor gave it).
func ParseWebhookEndpointQuery(q url.Values) (after string, limit int, err error) {
	var c checker
	c.params(q, webhookEndpointParams)
	limit = c.limit(q)
	if v := q.Get("cursor"); v != "" {
		if id, ok := comms.UUIDString(v); ok && id == v {
			after = id
		} else {
			c.add("cursor", badCursor)
		}
	}
	return after, limit, c.errs.Err()
}
