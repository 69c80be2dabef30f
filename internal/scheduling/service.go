// Package scheduling is the use cases behind the API: create, read, list,
// edit and cancel scheduled communications, cancel them by event, read their
// events, and manage a company's settings and sender resources. It reads
// requests with internal/contract, changes rows only through the domain's
// lifecycle (internal/comms) and persists through the comms ports.
package scheduling

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/contract"
)

// Service is the scheduling use cases behind the API: create, read, list,
// edit and cancel rows, and manage settings and sender resources.
//
// The static scopes of each operation (dispatcher:read or dispatcher:write)
// are checked by its caller, the route table of internal/httpapi; the
// service checks only what depends on the data: the channel's scope on a
// create (from the body) and on a PATCH (from the stored row).
type Service struct {
	store      comms.Store
	timer      comms.Timer
	identities IdentityVerifier
	reserved   []string // WithReservedDomains
	log        *slog.Logger
	now        func() time.Time
	newID      func() string
}

// IdentityVerifier tells whether the deployment may send email from a
// domain: on AWS, whether it is a verified SES identity of the account
// (internal/channel/ses); in the embedded mode every domain is. domain is
// in ASCII form (lower-case, Punycode). An error means the answer is
// unknown (the provider did not answer), not that the domain is refused.
type IdentityVerifier interface {
	VerifiedForSending(ctx context.Context, domain string) (bool, error)
}

// WithIdentityVerifier sets what the company's sending_domains are checked
// against when settings are saved. Without it, a settings document that
// declares a sending domain cannot be saved (an internal error: the
// deployment is not wired to verify it).
func WithIdentityVerifier(v IdentityVerifier) Option {
	return func(s *Service) { s.identities = v }
}

// WithReservedDomains names the deployment's own sender domains (the
// domain of the default From address that mail naming no from address is
// sent as): no company may declare one of them, a parent or a subdomain
// as its sending domain, so that no tenant can claim the platform's
// domain and send as anyone at it, nor lock every other tenant out of it.
func WithReservedDomains(domains ...string) Option {
	return func(s *Service) {
		for _, d := range domains {
			if d != "" {
				s.reserved = append(s.reserved, d)
			}
		}
	}
}

// Option configures a Service.
type Option func(*Service)

// Disarmer is a timer that can take back a fire it armed: the AWS timer
// deletes the fire's EventBridge Scheduler schedule. The service disarms a
// row's old fire after a cancel or a reschedule made its token stale, when
// its timer (WithTimer) implements Disarmer; the local timer does not need
// to (a stale fire in its heap costs nothing and is dropped when due).
//
// Disarming is best-effort and never needed for correctness: a stale fire
// that still arrives is dropped by the dispatcher (its token is not the
// row's). armedAt is when the fire was armed (the row's updated_at: the
// lifecycle makes a new token with every change). It reports whether
// something was taken back.
type Disarmer interface {
	Disarm(ctx context.Context, f comms.Fire, armedAt time.Time) (bool, error)
}

// DisarmTimeout bounds the best-effort disarm of a cancel or reschedule,
// so that a slow Scheduler never holds the API's answer for long.
const DisarmTimeout = 3 * time.Second

// WithTimer arms a fire for every row created or rescheduled.
func WithTimer(t comms.Timer) Option { return func(s *Service) { s.timer = t } }

// WithClock replaces time.Now.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithLogger sets where the service reports what it cannot return.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// NewService returns a service over store.
func NewService(store comms.Store, opts ...Option) *Service {
	s := &Service{store: store, now: time.Now, log: slog.New(slog.DiscardHandler),
		newID: func() string { return uuid.Must(uuid.NewV7()).String() }}
	for _, o := range opts {
		o(s)
	}
	return s
}

// arm asks the timer for the row's fire. The row is already stored, so a
// timer that fails loses nothing: the sweeper fires overdue pending rows.
func (s *Service) arm(ctx context.Context, row comms.Communication) {
	if s.timer == nil || row.Status != comms.StatusPending {
		return
	}
	if err := s.timer.Arm(ctx, comms.FireOf(row), row.NextAttemptAt); err != nil {
		s.log.WarnContext(ctx, "arm failed; the sweeper will fire the row", "communication_id", row.ID, "error", err.Error())
	}
}

// disarm takes back the fire of old, a row a cancel or a reschedule has
// just replaced (its token is stale), when the timer can (Disarmer). A
// failure is logged, never returned: the stale fire, if it comes, is
// dropped by the dispatcher.
func (s *Service) disarm(ctx context.Context, old comms.Communication) {
	d, ok := s.timer.(Disarmer)
	if !ok || old.Status != comms.StatusPending || old.Token == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, DisarmTimeout)
	defer cancel()
	deleted, err := d.Disarm(ctx, comms.FireOf(old), old.UpdatedAt)
	if err != nil {
		s.log.WarnContext(ctx, "disarming the stale fire failed; it will fire and be dropped", "communication_id", old.ID, "error", err.Error())
		return
	}
	if deleted {
		s.log.DebugContext(ctx, "stale fire disarmed", "communication_id", old.ID)
	}
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// Created is the result of a create.
type Created struct {
	Row              comms.Communication
	CreditsRemaining int64
	// Replayed is true when an Idempotency-Key matched an earlier create.
	Replayed bool
	// Warnings are what the caller should know about the accepted row
	// (meta.warnings): its recipient is suppressed.
	Warnings []Warning
}

// Create validates a create body and stores the new row, debiting one
// credit. With an idempotency key it replays the first create made with the
// same key and body within 24 hours.
func (s *Service) Create(ctx context.Context, p comms.Principal, body []byte, idemKey string) (Created, error) {
	doc, err := contract.DecodeJSON(body)
	if err != nil {
		return Created{}, err
	}
	if ch, ok := contract.ChannelOf(doc); ok {
		if err := p.Require(comms.ScopeWrite, ch.Scope()); err != nil {
			return Created{}, err
		}
	}
	if err := contract.CheckIdempotencyKey(idemKey); err != nil {
		return Created{}, err
	}
	hash := contract.HashDoc(doc)
	if idemKey != "" {
		if c, ok, err := s.replay(ctx, p.CompanyID, idemKey, hash); ok || err != nil {
			if err == nil {
				c.Warnings = s.Warnings(ctx, c.Row)
			}
			return c, err
		}
	}
	now := s.clock()
	req, err := contract.ValidateCreate(doc, now, contract.ValidateOptions{})
	if err != nil {
		return Created{}, s.withRefProblems(ctx, p.CompanyID, req.Refs, err)
	}
	row := comms.Communication{
		ID:          s.newID(),
		CompanyID:   p.CompanyID,
		MaxAttempts: req.Channel.DefaultMaxAttempts(),
		Source:      comms.SourceAPI,
	}
	if err := s.apply(ctx, &row, req); err != nil {
		return Created{}, err
	}
	ch := comms.Create(row, now)
	var idem *comms.Idempotency
	if idemKey != "" {
		idem = &comms.Idempotency{CompanyID: p.CompanyID, Key: idemKey, RequestHash: hash, CommunicationID: row.ID,
			CreatedAt: now, ExpiresAt: now.Add(comms.IdempotencyTTL)}
	}
	credits, err := s.store.CreateCommunication(ctx, ch, idem)
	if errors.Is(err, comms.ErrIdempotencyKeyExists) {
		// A concurrent request with the same key won the race: answer as it did.
		if c, ok, err := s.replay(ctx, p.CompanyID, idemKey, hash); ok || err != nil {
			if err == nil {
				c.Warnings = s.Warnings(ctx, c.Row)
			}
			return c, err
		}
	}
	if err != nil {
		return Created{}, fmt.Errorf("store.CreateCommunication: %w", err)
	}
	row = ch.Row
	row.Version = 1
	s.arm(ctx, row)
	return Created{Row: row, CreditsRemaining: credits, Warnings: s.Warnings(ctx, row)}, nil
}

// replay answers a create whose key was seen before: the same body gets the
// first response's row and balance; another body is comms.ErrIdempotencyKeyReused.
func (s *Service) replay(ctx context.Context, companyID, key, hash string) (Created, bool, error) {
	rec, err := s.store.GetIdempotency(ctx, companyID, key, s.clock())
	if errors.Is(err, comms.ErrNotFound) {
		return Created{}, false, nil
	}
	if err != nil {
		return Created{}, false, fmt.Errorf("store.GetIdempotency: %w", err)
	}
	if rec.RequestHash != hash {
		return Created{}, false, comms.ErrIdempotencyKeyReused
	}
	row, err := s.store.GetCommunication(ctx, companyID, rec.CommunicationID)
	if err != nil {
		return Created{}, false, fmt.Errorf("store.GetCommunication: %w", err)
	}
	return Created{Row: row, CreditsRemaining: rec.CreditsRemaining, Replayed: true}, true, nil
}

// apply copies a validated request onto a row: resolves its sender
// resources within the company, decides where the recipient is
// (comms.RecipientZones) and computes next_attempt_at from the company's
// business hours and quiet hours (comms.NextAllowed). The lifecycle
// (Create, Reschedule) does the rest.
func (s *Service) apply(ctx context.Context, row *comms.Communication, req contract.CreateRequest) error {
	// The company's settings are read once, by the first step that needs
	// them.
	var settings *comms.Settings
	company := func() (comms.Settings, error) {
		if settings == nil {
			co, err := s.store.GetCompany(ctx, row.CompanyID)
			if err != nil {
				return comms.Settings{}, fmt.Errorf("store.GetCompany: %w", err)
			}
			set := co.Settings.WithDefaults()
			settings = &set
		}
		return *settings, nil
	}
	if err := s.checkRefs(ctx, row.CompanyID, req.Refs, company); err != nil {
		return err
	}
	// Quiet hours apply to every row of their channel, so the settings are
	// always needed here.
	set, err := company()
	if err != nil {
		return err
	}
	row.Channel = req.Channel
	row.Timezone = req.Timezone
	row.RespectBusinessHours = req.RespectBusinessHours
	row.TimezoneSource, row.Timezones = comms.RecipientZones(req.Channel, req.Timezone, comms.ToNumberOf(req.Channel, req.Payload), set)
	allowed := comms.NextAllowed(req.ScheduledFor, *row, set)
	if allowed.Never {
		return neverAllowed(*row, set, allowed.Reason)
	}
	next := allowed.At
	row.ScheduledFor = req.ScheduledFor
	row.NextAttemptAt = next
	row.Payload = req.Payload
	row.ContactID, row.CustomerID, row.DealID = req.ContactID, req.CustomerID, req.DealID
	row.RelatedEntityType, row.RelatedEntityID = req.RelatedEntityType, req.RelatedEntityID
	row.CancelPolicy = req.CancelPolicy
	row.Cadence = nil
	if req.FollowUps != nil {
		row.Cadence = &comms.Cadence{RootID: row.ID, Attempt: 1, MaxAttempts: req.FollowUps.MaxAttempts}
	}
	return nil
}

// neverAllowed is the 422 of a row that no instant allows, naming the field
// the caller can change: respect_business_hours when the business hours
// never open, payload.to_number when its zones never share an instant of
// the quiet hours (a timezone in the request places the recipient), else
// respect_business_hours (business hours and quiet hours never overlap).
func neverAllowed(row comms.Communication, set comms.Settings, reason comms.DeferReason) error {
	multiZone := row.ZoneSource() == comms.TimezoneFromPhoneNumber && len(row.Timezones) > 1
	if reason == comms.DeferBusinessHours && multiZone && businessHoursOpen(set, row.ScheduledFor) {
		// They open, only never in all the number's zones at once.
		return &comms.ValidationError{Fields: []comms.FieldError{{Field: "payload.to_number",
			Message: "the company's business hours are never open at the same time in every zone the recipient may be in (" +
				strings.Join(row.Timezones, ", ") + "); give the recipient's timezone in the request"}}}
	}
	if reason == comms.DeferBusinessHours {
		return &comms.ValidationError{Fields: []comms.FieldError{{Field: "respect_business_hours",
			Message: "the company's business hours never open; change them in /v1/settings or send without respecting them"}}}
	}
	field, hint := "respect_business_hours", "; change them in /v1/settings or send without respecting business hours"
	if row.ZoneSource() == comms.TimezoneFromPhoneNumber && len(row.Timezones) > 1 {
		field, hint = "payload.to_number", "; give the recipient's timezone in the request"
	}
	return &comms.ValidationError{Fields: []comms.FieldError{{Field: field, Message: comms.NeverAllowedMessage(row, set, reason) + hint}}}
}

// businessHoursOpen reports whether the company's business hours open at
// all (in one zone) after t.
func businessHoursOpen(set comms.Settings, t time.Time) bool {
	cal, err := set.Calendar()
	if err != nil {
		return false
	}
	_, ok := cal.NextOpen(t, time.UTC)
	return ok
}

// withRefProblems adds to a contract's validation error the problems of
// the sender resources the request names (checkRefs: a from_email outside
// the company's sending domains, a missing phone number or voice agent), so
// that a request is answered with every problem at once. A store failure
// while resolving them leaves err as it is (it is still the answer).
func (s *Service) withRefProblems(ctx context.Context, companyID string, refs []contract.ResourceRef, err error) error {
	var ve *comms.ValidationError
	if len(refs) == 0 || !errors.As(err, &ve) {
		return err
	}
	company := func() (comms.Settings, error) {
		co, err := s.store.GetCompany(ctx, companyID)
		if err != nil {
			return comms.Settings{}, fmt.Errorf("store.GetCompany: %w", err)
		}
		return co.Settings.WithDefaults(), nil
	}
	var more *comms.ValidationError
	if !errors.As(s.checkRefs(ctx, companyID, refs, company), &more) {
		return err
	}
	return &comms.ValidationError{Fields: append(slices.Clone(ve.Fields), more.Fields...)}
}

// checkRefs resolves each sender resource a payload names within the
// company, reporting every missing one under its field: phone numbers and
// voice agents in the store, a from_email's domain in the company's
// settings.sending_domains.
func (s *Service) checkRefs(ctx context.Context, companyID string, refs []contract.ResourceRef, company func() (comms.Settings, error)) error {
	var problems comms.ValidationError
	for _, r := range refs {
		switch r.Kind {
		case contract.ResourceSendingDomain:
			set, err := company()
			if err != nil {
				return err
			}
			if msg := contract.NotSendingDomain(r.ID, set.SendingDomains); msg != "" {
				problems.Add(r.Field, "%s", msg)
			}
		case contract.ResourcePhoneNumber:
			pn, err := s.store.GetPhoneNumber(ctx, companyID, r.ID)
			if errors.Is(err, comms.ErrNotFound) {
				problems.Add(r.Field, "names no phone number of this company; create it with PUT /v1/phone-numbers/%s", r.ID)
			} else if err != nil {
				return fmt.Errorf("store.GetPhoneNumber: %w", err)
			} else if r.Capability != "" && !pn.HasCapability(r.Capability) {
				problems.Add(r.Field, "names a phone number without the %s capability", r.Capability)
			}
		case contract.ResourceVoiceAgent:
			_, err := s.store.GetVoiceAgent(ctx, companyID, r.ID)
			if errors.Is(err, comms.ErrNotFound) {
				problems.Add(r.Field, "names no voice agent of this company; create it with PUT /v1/voice-agents/%s", r.ID)
			} else if err != nil {
				return fmt.Errorf("store.GetVoiceAgent: %w", err)
			}
		}
	}
	return problems.Err()
}

// Get returns one row of the caller's company.
func (s *Service) Get(ctx context.Context, p comms.Principal, id string) (comms.Communication, error) {
	return s.get(ctx, p.CompanyID, id)
}

func (s *Service) get(ctx context.Context, companyID, id string) (comms.Communication, error) {
	id, ok := comms.UUIDString(id)
	if !ok {
		return comms.Communication{}, fmt.Errorf("scheduling.Get: malformed id: %w", comms.ErrNotFound)
	}
	row, err := s.store.GetCommunication(ctx, companyID, id)
	if err != nil {
		return comms.Communication{}, fmt.Errorf("store.GetCommunication: %w", err)
	}
	return row, nil
}

// List returns a page of the caller's rows and the cursor of the next page
// ("" on the last page).
func (s *Service) List(ctx context.Context, p comms.Principal, f comms.ListFilter) ([]comms.Communication, string, error) {
	rows, more, err := s.store.ListCommunications(ctx, p.CompanyID, f)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListCommunications: %w", err)
	}
	next := ""
	if more && len(rows) > 0 {
		last := rows[len(rows)-1]
		next = contract.EncodeCursor(comms.Cursor{ScheduledFor: last.ScheduledFor, ID: last.ID})
	}
	return rows, next, nil
}

// casAttempts bounds how often an edit retries after losing a race.
const casAttempts = 5

// Patch applies a JSON Merge Patch (RFC 7396) of the create body to a
// pending row, validates the result as a create and stores it, debiting
// one credit.
func (s *Service) Patch(ctx context.Context, p comms.Principal, id string, body []byte) (comms.Communication, int64, error) {
	patch, err := contract.DecodePatch(body)
	if err != nil {
		return comms.Communication{}, 0, err
	}
	for range casAttempts {
		row, err := s.get(ctx, p.CompanyID, id)
		if err != nil {
			return comms.Communication{}, 0, err
		}
		if err := p.Require(comms.ScopeWrite, row.Channel.Scope()); err != nil {
			return comms.Communication{}, 0, err
		}
		if row.Status != comms.StatusPending {
			_, err := comms.Reschedule(row, row, s.clock())
			return comms.Communication{}, 0, err
		}
		now := s.clock()
		req, err := contract.ValidatePatch(row, patch, now)
		if err != nil {
			return comms.Communication{}, 0, s.withRefProblems(ctx, p.CompanyID, req.Refs, err)
		}
		next := row
		if err := s.apply(ctx, &next, req); err != nil {
			return comms.Communication{}, 0, err
		}
		if row.Cadence != nil && row.Source == comms.SourceCadence {
			next.Cadence = row.Cadence // a follow-up keeps its place in the cadence
		}
		changed := comms.ChangedFields(row, next)
		if !slices.ContainsFunc(changed, func(f string) bool {
			return f == "scheduled_for" || f == "timezone" || f == "respect_business_hours"
		}) && (row.TimezoneSource == "" || slices.Equal(row.Timezones, next.Timezones)) {
			// An edit that does not move the row (nor its recipient to other
			// zones) keeps when it acts next: a retry its backoff, a
			// deferred row its window.
			next.NextAttemptAt = row.NextAttemptAt
		}
		if len(changed) == 0 {
			// Nothing changes: nothing is written, recorded or charged.
			co, err := s.store.GetCompany(ctx, p.CompanyID)
			if err != nil {
				return comms.Communication{}, 0, fmt.Errorf("store.GetCompany: %w", err)
			}
			return row, co.Credits, nil
		}
		ch, err := comms.Reschedule(row, next, now)
		if err != nil {
			return comms.Communication{}, 0, err
		}
		stored, credits, err := s.store.UpdateCommunication(ctx, ch, true)
		if errors.Is(err, comms.ErrConflict) {
			continue
		}
		if err != nil {
			return comms.Communication{}, 0, fmt.Errorf("store.UpdateCommunication: %w", err)
		}
		s.arm(ctx, stored)
		s.disarm(ctx, row)
		return stored, credits, nil
	}
	return comms.Communication{}, 0, fmt.Errorf("scheduling.Patch: gave up after %d lost races: %w", casAttempts, comms.ErrConflict)
}

// Cancel cancels a pending row (reason api). Cancelling a cancelled row
// returns it unchanged; any other status is a *comms.TransitionError
// matching comms.ErrNotPending. It costs nothing. Cancelling a voice row
// also cancels the later attempts of its cadence.
func (s *Service) Cancel(ctx context.Context, p comms.Principal, id string) (comms.Communication, error) {
	id, ok := comms.UUIDString(id)
	if !ok {
		return comms.Communication{}, fmt.Errorf("scheduling.Cancel: malformed id: %w", comms.ErrNotFound)
	}
	row, _, err := s.cancel(ctx, p.CompanyID, id, comms.CancelAPI)
	return row, err
}

// cancel cancels one pending row of the company for reason, then the later
// pending attempts of its cadence (reason cadence_cancelled).
//
// It reports whether this call cancelled the row: false when it was
// already cancelled (by anyone), which is not an error.
func (s *Service) cancel(ctx context.Context, companyID, id string, reason comms.CancelReason) (comms.Communication, bool, error) {
	for range casAttempts {
		row, err := s.store.GetCommunication(ctx, companyID, id)
		if err != nil {
			return comms.Communication{}, false, fmt.Errorf("store.GetCommunication: %w", err)
		}
		if row.Status == comms.StatusCancelled {
			return row, false, nil
		}
		ch, err := comms.Cancel(row, reason, s.clock())
		if err != nil {
			return comms.Communication{}, false, err
		}
		stored, _, err := s.store.UpdateCommunication(ctx, ch, false)
		if errors.Is(err, comms.ErrConflict) {
			continue
		}
		if err != nil {
			return comms.Communication{}, false, fmt.Errorf("store.UpdateCommunication: %w", err)
		}
		s.disarm(ctx, row)
		if err := s.cancelRestOfCadence(ctx, stored); err != nil {
			s.log.WarnContext(ctx, "cancelling the rest of the cadence failed", "communication_id", stored.ID, "error", err.Error())
		}
		return stored, true, nil
	}
	return comms.Communication{}, false, fmt.Errorf("scheduling.Cancel: gave up after %d lost races: %w", casAttempts, comms.ErrConflict)
}

// cancelRestOfCadence cancels the pending later attempts of a cancelled
// row's voice cadence, so cancelling the root or any follow-up stops it.
func (s *Service) cancelRestOfCadence(ctx context.Context, row comms.Communication) error {
	if row.Cadence == nil {
		return nil
	}
	rows, _, err := s.store.ListCommunications(ctx, row.CompanyID, comms.ListFilter{CadenceRootID: row.Cadence.RootID, Status: comms.StatusPending, Limit: comms.MaxListLimit})
	if err != nil {
		return fmt.Errorf("store.ListCommunications: %w", err)
	}
	for _, r := range rows {
		if r.Cadence != nil && r.Cadence.Attempt > row.Cadence.Attempt {
			if _, _, err := s.cancel(ctx, r.CompanyID, r.ID, comms.CancelCadence); err != nil && !errors.Is(err, comms.ErrNotPending) {
				return err
			}
		}
	}
	return nil
}
