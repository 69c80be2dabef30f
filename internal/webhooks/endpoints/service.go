package endpoints

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/google/uuid"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/contract"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
)

// Options are the ports of a Service.
type Options struct {
	// Store keeps the endpoints. Required.
	Store webhooks.EndpointStore
	// Secrets makes signing secrets. Required.
	Secrets webhooks.SecretMaker
	// URLs checks every URL that is registered or patched in. Required.
	URLs webhooks.URLChecker
	// Clock is time.Now unless set.
	Clock func() time.Time
	// NewID makes endpoint ids; a UUID v7 (time-ordered, so the listing
	// by id is about the order of creation) unless set.
	NewID func() string
	// Logger receives what the service reports; default: discard.
	Logger *slog.Logger
}

// Service is the use cases of webhook endpoints: create, read, list, edit,
// delete, read and rotate the signing secret. The static scopes of each
// operation are checked by its caller, the route table of internal/httpapi.
type Service struct {
	store   webhooks.EndpointStore
	secrets webhooks.SecretMaker
	urls    webhooks.URLChecker
	now     func() time.Time
	newID   func() string
	log     *slog.Logger
}

// NewService returns the service over o; an error names a missing port.
func NewService(o Options) (*Service, error) {
	var missing []error
	if o.Store == nil {
		missing = append(missing, errors.New("endpoints.NewService: Options.Store is required"))
	}
	if o.Secrets == nil {
		missing = append(missing, errors.New("endpoints.NewService: Options.Secrets is required"))
	}
	if o.URLs == nil {
		missing = append(missing, errors.New("endpoints.NewService: Options.URLs is required"))
	}
	if err := errors.Join(missing...); err != nil {
		return nil, err
	}
	s := &Service{store: o.Store, secrets: o.Secrets, urls: o.URLs, now: o.Clock, newID: o.NewID, log: o.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.newID == nil {
		s.newID = func() string { return uuid.Must(uuid.NewV7()).String() }
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// checkURL runs the URL check, turning a refusal into a 422 of the field.
func (s *Service) checkURL(ctx context.Context, raw string) (string, error) {
	u, err := s.urls(ctx, raw)
	if err != nil {
		return "", &comms.ValidationError{Fields: []comms.FieldError{{Field: "url", Message: err.Error()}}}
	}
	return u.String(), nil
}

func (s *Service) newSecret(now time.Time) (webhooks.Secret, error) {
	v, err := s.secrets()
	if err != nil {
		return webhooks.Secret{}, fmt.Errorf("webhooks: making a secret: %w", err)
	}
	return webhooks.Secret{Value: v, CreatedAt: now}, nil
}

// Create registers an endpoint from a POST body and returns it with its
// secret. webhooks.ErrTooManyEndpoints when the company has webhooks.MaxEndpoints already:
// counted before the write, so creates racing each other can pass it by
// their number (each is still one endpoint; the bound is a quota, not an
// invariant anything relies on).
func (s *Service) Create(ctx context.Context, p comms.Principal, body []byte) (webhooks.Endpoint, error) {
	in, err := contract.ParseWebhookEndpoint(body)
	if err != nil {
		return webhooks.Endpoint{}, err
	}
	u, err := s.checkURL(ctx, in.URL)
	if err != nil {
		return webhooks.Endpoint{}, err
	}
	have, _, err := s.store.ListWebhookEndpoints(ctx, p.CompanyID, "", webhooks.MaxEndpoints)
	if err != nil {
		return webhooks.Endpoint{}, fmt.Errorf("store.ListWebhookEndpoints: %w", err)
	}
	if len(have) >= webhooks.MaxEndpoints {
		return webhooks.Endpoint{}, webhooks.ErrTooManyEndpoints
	}
	now := s.clock()
	secret, err := s.newSecret(now)
	if err != nil {
		return webhooks.Endpoint{}, err
	}
	e := webhooks.Endpoint{ID: s.newID(), CompanyID: p.CompanyID, URL: u, EventTypes: in.EventTypes, Description: in.Description,
		Secrets: []webhooks.Secret{secret}, CreatedAt: now, UpdatedAt: now}
	if err := s.store.PutWebhookEndpoint(ctx, e); err != nil {
		return webhooks.Endpoint{}, fmt.Errorf("store.PutWebhookEndpoint: %w", err)
	}
	e.Version++
	s.log.InfoContext(ctx, "webhook endpoint created", "company_id", p.CompanyID, "endpoint_id", e.ID, "key_id", p.KeyID)
	return e, nil
}

// Get returns an endpoint of the caller with its live secrets (the caller
// decides what of them to show).
func (s *Service) Get(ctx context.Context, p comms.Principal, id string) (webhooks.Endpoint, error) {
	e, err := s.get(ctx, p, id)
	if err != nil {
		return webhooks.Endpoint{}, err
	}
	return e.Live(s.clock()), nil
}

func (s *Service) get(ctx context.Context, p comms.Principal, id string) (webhooks.Endpoint, error) {
	if _, ok := comms.UUIDString(id); !ok {
		// No endpoint has such an id: a 404, as for any unknown one.
		return webhooks.Endpoint{}, fmt.Errorf("webhook endpoint %q: %w", id, comms.ErrNotFound)
	}
	id, _ = comms.UUIDString(id)
	e, err := s.store.GetWebhookEndpoint(ctx, p.CompanyID, id)
	if err != nil {
		return webhooks.Endpoint{}, fmt.Errorf("store.GetWebhookEndpoint: %w", err)
	}
	return e, nil
}

// List returns a page of the caller's endpoints (ordered by id) and the
// cursor of the next page ("" on the last).
func (s *Service) List(ctx context.Context, p comms.Principal, q url.Values) ([]webhooks.Endpoint, string, error) {
	after, limit, err := contract.ParseWebhookEndpointQuery(q)
	if err != nil {
		return nil, "", err
	}
	list, more, err := s.store.ListWebhookEndpoints(ctx, p.CompanyID, after, limit)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListWebhookEndpoints: %w", err)
	}
	now := s.clock()
	for i := range list {
		list[i] = list[i].Live(now)
	}
	next := ""
	if more && len(list) > 0 {
		next = list[len(list)-1].ID
	}
	return list, next, nil
}

// Patch edits an endpoint: url (checked again), event_types, description,
// disabled. disabled true disables it as manual (an endpoint already
// disabled keeps its reason); false enables it and clears the reason.
func (s *Service) Patch(ctx context.Context, p comms.Principal, id string, body []byte) (webhooks.Endpoint, error) {
	e, err := s.get(ctx, p, id)
	if err != nil {
		return webhooks.Endpoint{}, err
	}
	in, err := contract.ParseWebhookEndpointPatch(body)
	if err != nil {
		return webhooks.Endpoint{}, err
	}
	if in.URL != nil {
		if e.URL, err = s.checkURL(ctx, *in.URL); err != nil {
			return webhooks.Endpoint{}, err
		}
	}
	if in.SetTypes {
		e.EventTypes = nil
		if len(in.EventTypes) > 0 {
			e.EventTypes = in.EventTypes
		}
	}
	if in.Description != nil {
		e.Description = *in.Description
	}
	if in.Disabled != nil {
		switch {
		case !*in.Disabled:
			// Re-enabled: a run of failures starts afresh.
			e.Disabled, e.DisabledReason, e.DisabledAt, e.FailingSince = false, "", time.Time{}, time.Time{}
		case !e.Disabled:
			e.Disabled, e.DisabledReason, e.DisabledAt = true, webhooks.DisabledManual, s.clock()
		}
	}
	now := s.clock()
	e = e.Live(now)
	e.UpdatedAt = now
	if err := s.store.PutWebhookEndpoint(ctx, e); err != nil {
		return webhooks.Endpoint{}, fmt.Errorf("store.PutWebhookEndpoint: %w", err)
	}
	e.Version++
	return e, nil
}

// Delete removes an endpoint of the caller.
func (s *Service) Delete(ctx context.Context, p comms.Principal, id string) error {
	e, err := s.get(ctx, p, id)
	if err != nil {
		return err
	}
	if err := s.store.DeleteWebhookEndpoint(ctx, p.CompanyID, e.ID); err != nil {
		return fmt.Errorf("store.DeleteWebhookEndpoint: %w", err)
	}
	s.log.InfoContext(ctx, "webhook endpoint deleted", "company_id", p.CompanyID, "endpoint_id", e.ID, "key_id", p.KeyID)
	return nil
}

// RotateSecret gives the endpoint a new current secret; the one that was
// current keeps signing for webhooks.RotationOverlap (see webhooks.Endpoint.Rotated). It
// returns the endpoint with its secrets, the new one first.
func (s *Service) RotateSecret(ctx context.Context, p comms.Principal, id string) (webhooks.Endpoint, error) {
	e, err := s.get(ctx, p, id)
	if err != nil {
		return webhooks.Endpoint{}, err
	}
	now := s.clock()
	secret, err := s.newSecret(now)
	if err != nil {
		return webhooks.Endpoint{}, err
	}
	e = e.Rotated(secret.Value, now)
	e.UpdatedAt = now
	if err := s.store.PutWebhookEndpoint(ctx, e); err != nil {
		return webhooks.Endpoint{}, fmt.Errorf("store.PutWebhookEndpoint: %w", err)
	}
	e.Version++
	s.log.InfoContext(ctx, "webhook secret rotated", "company_id", p.CompanyID, "endpoint_id", e.ID, "key_id", p.KeyID)
	return e, nil
}
