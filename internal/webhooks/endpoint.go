// Package webhooks is status webhooks to the CRM (issue 12): the endpoints
// each company registers, with their signing secrets, and the use cases
// that manage them. Delivery, signing (sign.go) and the URL guard
// (internal/netguard) are separate parts; this package declares what it
// needs from them as small ports (SecretMaker, URLChecker).
package webhooks

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// DisabledReason says why an endpoint receives nothing.
type DisabledReason string

// The reasons an endpoint is disabled ("" while it is enabled).
const (
	// DisabledManual: the company disabled it (PATCH disabled: true).
	DisabledManual DisabledReason = "manual"
	// DisabledFailing: deliveries failed continuously for days.
	DisabledFailing DisabledReason = "failing"
	// DisabledGone: the receiver answered 410 Gone.
	DisabledGone DisabledReason = "gone"
)

// Limits of a company's endpoints.
const (
	// MaxEndpoints is how many endpoints a company may register.
	MaxEndpoints = 20
	// MaxDescription is the longest description, in characters.
	MaxDescription = 500
	// MaxURL is the longest URL, in bytes.
	MaxURL = 2048
	// RotationOverlap is how long the previous secret keeps signing after
	// a rotation (Standard Webhooks: several signatures in one header).
	RotationOverlap = 24 * time.Hour
	// FailingFor is how long an endpoint may fail every attempt before it
	// is disabled (reason DisabledFailing): five days, as Svix does
	// (docs.svix.com/retries, "Disabling failing endpoints").
	FailingFor = 5 * 24 * time.Hour
	// MaxSecrets bounds the secrets of an endpoint: the current one and the
	// newest previous ones still within their overlap. Rotating again and
	// again within a day drops the oldest previous secret first.
	MaxSecrets = 3
)

// Endpoint is a URL a company registered to receive its events.
type Endpoint struct {
	// ID is a UUID, like every other resource id of the API.
	ID        string
	CompanyID string
	URL       string
	// EventTypes filters what is delivered; empty means every type.
	EventTypes     []comms.EventType
	Description    string
	Disabled       bool
	DisabledReason DisabledReason
	// DisabledAt is when it was disabled (zero while enabled).
	DisabledAt time.Time
	// FailingSince is the time of the first failed attempt of the current
	// run of failures (zero once an attempt succeeds): an endpoint failing
	// for FailingFor is disabled with DisabledFailing.
	FailingSince time.Time
	// Secrets sign every message: the current one first, then previous
	// ones until their ExpiresAt (see Rotated).
	Secrets   []Secret
	CreatedAt time.Time
	UpdatedAt time.Time
	// Version counts the endpoint's writes: 1 once created. A write names
	// the version it read (0 for a create), so that a PATCH and a rotation
	// racing each other cannot undo one another (a lost rotation would
	// leave the caller a secret that signs nothing).
	Version int64
}

// Secret is a signing secret, "whsec_" + base64 of random bytes.
type Secret struct {
	Value     string
	CreatedAt time.Time
	// ExpiresAt is nil for the current secret; a previous one signs until
	// then.
	ExpiresAt *time.Time
}

// Wants reports whether the endpoint's filter lets events of type t through.
func (e Endpoint) Wants(t comms.EventType) bool {
	return len(e.EventTypes) == 0 || slices.Contains(e.EventTypes, t)
}

// Live returns e without the secrets that expired at or before now.
func (e Endpoint) Live(now time.Time) Endpoint {
	out := make([]Secret, 0, len(e.Secrets))
	for _, s := range e.Secrets {
		if s.ExpiresAt == nil || now.Before(*s.ExpiresAt) {
			out = append(out, s)
		}
	}
	e.Secrets = out
	return e
}

// Current returns the secret that new messages are signed with first (the
// first one without an expiry, else the first one); false when e has none.
func (e Endpoint) Current() (Secret, bool) {
	for _, s := range e.Secrets {
		if s.ExpiresAt == nil {
			return s, true
		}
	}
	if len(e.Secrets) > 0 {
		return e.Secrets[0], true
	}
	return Secret{}, false
}

// Rotated returns e with value as its current secret, created at now: the
// secrets that were current expire at now + RotationOverlap, expired ones
// are dropped, and at most MaxSecrets are kept (the newest).
func (e Endpoint) Rotated(value string, now time.Time) Endpoint {
	e = e.Live(now)
	until := now.Add(RotationOverlap)
	secrets := []Secret{{Value: value, CreatedAt: now}}
	for _, s := range e.Secrets {
		if s.ExpiresAt == nil {
			s.ExpiresAt = &until
		}
		secrets = append(secrets, s)
	}
	if len(secrets) > MaxSecrets {
		secrets = secrets[:MaxSecrets]
	}
	e.Secrets = secrets
	return e
}

// ErrTooManyEndpoints refuses a create beyond MaxEndpoints.
var ErrTooManyEndpoints = errors.New("webhooks: the company has the most endpoints allowed")

// EndpointStore keeps the endpoints, per company. The SQLite and DynamoDB
// stores implement it and pass internal/store/storetest's suite. Methods
// return comms sentinels, wrapped with the method's name.
type EndpointStore interface {
	// PutWebhookEndpoint creates (e.Version 0) or replaces (e.Version the
	// version read) the endpoint (company, id) with every field as given,
	// storing it as version e.Version+1. Errors, nothing written:
	// ErrAlreadyExists (a create of a taken id), ErrConflict (the stored
	// version is another), ErrNotFound (a replace of an absent endpoint,
	// or no such company).
	PutWebhookEndpoint(ctx context.Context, e Endpoint) error
	// GetWebhookEndpoint returns an endpoint of the company; ErrNotFound
	// if absent or another company's.
	GetWebhookEndpoint(ctx context.Context, companyID, id string) (Endpoint, error)
	// ListWebhookEndpoints returns the company's endpoints ordered by id,
	// those after the id after ("" from the start), at most limit (1–100;
	// outside that, 100) of them, and whether more exist.
	ListWebhookEndpoints(ctx context.Context, companyID, after string, limit int) ([]Endpoint, bool, error)
	// DeleteWebhookEndpoint deletes an endpoint of the company; ErrNotFound
	// if absent or another company's.
	DeleteWebhookEndpoint(ctx context.Context, companyID, id string) error
}

// SecretMaker returns a new signing secret, "whsec_" + base64 of at least
// 24 random bytes (webhooks.NewSecret, sign.go).
type SecretMaker func() (string, error)

// URLChecker decides whether an endpoint URL may be registered: it returns
// the parsed URL, or an error whose text says, to the API's caller, why the
// URL is refused (it becomes the 422's message for the field url). The
// product's is internal/netguard's; it may resolve the host.
type URLChecker func(ctx context.Context, raw string) (*url.URL, error)
