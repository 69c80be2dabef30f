package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/contract"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
	"github.com/dispatcherhq/dispatcher/internal/webhooks/endpoints"
)

// SetWebhookEndpoints enables the /v1/webhook-endpoints routes (404 until set).
func (a *API) SetWebhookEndpoints(s *endpoints.Service) { a.endpoints = s }

// endpointView is a webhook endpoint as the API shows it: without its
// secrets, of which only the current one's first characters are shown.
type endpointView struct {
	ID             string            `json:"id"`
	URL            string            `json:"url"`
	EventTypes     []comms.EventType `json:"event_types"`
	Description    *string           `json:"description"`
	Disabled       bool              `json:"disabled"`
	DisabledReason *string           `json:"disabled_reason"`
	DisabledAt     *time.Time        `json:"disabled_at"`
	FailingSince   *time.Time        `json:"failing_since"`
	SecretPrefix   string            `json:"secret_prefix"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
}

// createdView is the endpoint as its create answers: with its secret, in
// full (shown again only by GET …/{id}/secret).
type createdView struct {
	endpointView
	Secret string `json:"secret"`
}

// secretsView lists the secrets that sign an endpoint's messages now, the
// current one first.
type secretsView struct {
	EndpointID string       `json:"endpoint_id"`
	Secrets    []secretView `json:"secrets"`
}

type secretView struct {
	Secret    string     `json:"secret"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// secretPrefixLen is how much of a secret's random part an endpoint shows
// (whsec_ + 4 characters: enough to tell secrets apart, 24 bits of 192+).
const secretPrefixLen = len("whsec_") + 4

func endpointOf(e webhooks.Endpoint) endpointView {
	v := endpointView{ID: e.ID, URL: e.URL, EventTypes: nonNil(e.EventTypes), Description: null(e.Description),
		Disabled: e.Disabled, DisabledReason: null(string(e.DisabledReason)), DisabledAt: zeroNull(e.DisabledAt),
		FailingSince: zeroNull(e.FailingSince), CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC()}
	if cur, ok := e.Current(); ok {
		v.SecretPrefix = cur.Value[:min(len(cur.Value), secretPrefixLen)] + "…"
	}
	return v
}

func secretsOf(e webhooks.Endpoint) secretsView {
	v := secretsView{EndpointID: e.ID, Secrets: make([]secretView, len(e.Secrets))}
	for i, s := range e.Secrets {
		v.Secrets[i] = secretView{Secret: s.Value, CreatedAt: s.CreatedAt.UTC(), ExpiresAt: utc(s.ExpiresAt)}
	}
	return v
}

func (a *API) createEndpoint(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	if a.endpoints == nil {
		return errRouteMissing
	}
	body, err := readBody(w, r, jsonTypes...)
	if err != nil {
		return err
	}
	e, err := a.endpoints.Create(r.Context(), p, body)
	if err != nil {
		return err
	}
	cur, _ := e.Current()
	w.Header().Set("Location", "/v1/webhook-endpoints/"+e.ID)
	return ok(w, r, http.StatusCreated, createdView{endpointView: endpointOf(e), Secret: cur.Value}, nil)
}

func (a *API) listEndpoints(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	if a.endpoints == nil {
		return errRouteMissing
	}
	q, err := query(r)
	if err != nil {
		return err
	}
	list, next, err := a.endpoints.List(r.Context(), p, q)
	if err != nil {
		return err
	}
	out := make([]endpointView, len(list))
	for i, e := range list {
		out[i] = endpointOf(e)
	}
	return ok(w, r, http.StatusOK, out, map[string]any{"next_cursor": nullable(next)})
}

func (a *API) getEndpoint(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	if a.endpoints == nil {
		return errRouteMissing
	}
	e, err := a.endpoints.Get(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	return ok(w, r, http.StatusOK, endpointOf(e), nil)
}

func (a *API) patchEndpoint(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	if a.endpoints == nil {
		return errRouteMissing
	}
	body, err := readBody(w, r, "application/json", "application/merge-patch+json")
	if err != nil {
		return err
	}
	e, err := a.endpoints.Patch(r.Context(), p, r.PathValue("id"), body)
	if err != nil {
		return err
	}
	return ok(w, r, http.StatusOK, endpointOf(e), nil)
}

func (a *API) deleteEndpoint(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	if a.endpoints == nil {
		return errRouteMissing
	}
	if err := a.endpoints.Delete(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) getEndpointSecret(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	if a.endpoints == nil {
		return errRouteMissing
	}
	e, err := a.endpoints.Get(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	return ok(w, r, http.StatusOK, secretsOf(e), nil)
}

func (a *API) rotateEndpointSecret(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	if a.endpoints == nil {
		return errRouteMissing
	}
	e, err := a.endpoints.RotateSecret(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	return ok(w, r, http.StatusOK, secretsOf(e), nil)
}

// SetWebhookDeliveries enables the deliveries routes of the webhook
// endpoints (404 until set).
func (a *API) SetWebhookDeliveries(e *webhooks.Engine) { a.deliveries = e }

// deliveryView is a webhook message as GET …/deliveries shows it.
type deliveryView struct {
	ID              string             `json:"id"`
	EndpointID      string             `json:"endpoint_id"`
	EventID         string             `json:"event_id"`
	EventType       comms.EventType    `json:"event_type"`
	CommunicationID string             `json:"communication_id"`
	State           string             `json:"state"`
	Attempts        []webhooks.Attempt `json:"attempts"`
	NextAttemptAt   *time.Time         `json:"next_attempt_at"`
	CreatedAt       time.Time          `json:"created_at"`
	UpdatedAt       time.Time          `json:"updated_at"`
	Payload         json.RawMessage    `json:"payload"`
}

func deliveryOf(d webhooks.Delivery) deliveryView {
	v := deliveryView{ID: d.ID, EndpointID: d.EndpointID, EventID: d.EventID, EventType: d.EventType, CommunicationID: d.CommunicationID,
		State: string(d.State), Attempts: nonNil(d.Attempts), CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(), Payload: orNull(d.Payload)}
	for i := range v.Attempts {
		v.Attempts[i].At = v.Attempts[i].At.UTC()
	}
	if !d.NextAttemptAt.IsZero() {
		at := d.NextAttemptAt.UTC()
		v.NextAttemptAt = &at
	}
	return v
}

func (a *API) listDeliveries(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	if a.deliveries == nil {
		return errRouteMissing
	}
	q, err := query(r)
	if err != nil {
		return err
	}
	dq, err := contract.ParseDeliveryQuery(q)
	if err != nil {
		return err
	}
	ds, next, err := a.deliveries.Deliveries(r.Context(), p.CompanyID, r.PathValue("id"),
		webhooks.DeliveryFilter{State: webhooks.DeliveryState(dq.State), After: dq.Cursor, Limit: dq.Limit})
	if errors.Is(err, comms.ErrBadCursor) {
		return contract.BadCursorError()
	}
	if err != nil {
		return err
	}
	out := make([]deliveryView, len(ds))
	for i, d := range ds {
		out[i] = deliveryOf(d)
	}
	return ok(w, r, http.StatusOK, out, map[string]any{"next_cursor": nullable(next)})
}

func (a *API) retryDelivery(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	if a.deliveries == nil {
		return errRouteMissing
	}
	d, err := a.deliveries.Retry(r.Context(), p.CompanyID, r.PathValue("id"), r.PathValue("delivery_id"))
	if err != nil {
		return err
	}
	return ok(w, r, http.StatusAccepted, deliveryOf(d), nil)
}

// pingView is what a test message did.
type pingView struct {
	WebhookID  string           `json:"webhook_id"`
	EndpointID string           `json:"endpoint_id"`
	Succeeded  bool             `json:"succeeded"`
	Attempt    webhooks.Attempt `json:"attempt"`
}

// pingEndpoint sends a signed "ping" to the endpoint now and answers 200
// with what the receiver did (whether or not it accepted it): the request
// itself succeeded.
func (a *API) pingEndpoint(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	if a.deliveries == nil {
		return errRouteMissing
	}
	id, at, err := a.deliveries.Ping(r.Context(), p.CompanyID, r.PathValue("id"))
	if err != nil {
		return err
	}
	at.At = at.At.UTC()
	return ok(w, r, http.StatusOK, pingView{WebhookID: id, EndpointID: r.PathValue("id"), Succeeded: at.Result == webhooks.Succeeded, Attempt: at}, nil)
}

// zeroNull is t in UTC, or nil (JSON null) for the zero time.
func zeroNull(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
