// Package dispatch delivers due rows: it takes one fire at a time, checks it
// is still current, applies the cancel policy and business hours, claims
// the row by compare-and-swap with a lease, resolves the company's sender
// resources, sends through the channel's port, and records the result —
// retrying transient failures with backoff as new fires on the same row.
// The sweeper repairs what a lost fire or a crash leaves behind.
//
// Every state change is a conditional write on the row's version, so any
// number of deliveries of the same fire, sweeps and API cancels can race:
// exactly one claim wins, and a claimed row is never cancelled.
package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// Config tunes the dispatcher. Zero fields take the defaults of DESIGN.md §2.
type Config struct {
	// Lease is how long a claim lasts before the sweeper may take it over.
	Lease time.Duration
	// BackoffBase and BackoffCap bound the delay before a transient retry.
	BackoffBase time.Duration
	BackoffCap  time.Duration
	// SendTimeout bounds one provider call; it must be well under Lease.
	SendTimeout time.Duration
	// Early is how far ahead of next_attempt_at a fire is still acted on;
	// an earlier fire is re-armed for the remaining time.
	Early time.Duration
	// SweepGrace is how overdue a pending row must be before the sweeper
	// fires it itself (its own timer fire is presumed lost).
	SweepGrace time.Duration
	// SweepBatch is how many rows one sweep looks at.
	SweepBatch int
	// DefaultFrom is the sender address when neither the payload nor the
	// company settings give one.
	DefaultFrom string
	// OutcomeTimeout is how long a placed call waits for its outcome
	// before the sweeper declares it no_answer.
	OutcomeTimeout time.Duration
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Lease, 2*time.Minute)
	def(&c.BackoffBase, 30*time.Second)
	def(&c.BackoffCap, 15*time.Minute)
	def(&c.SendTimeout, 30*time.Second)
	def(&c.Early, 50*time.Millisecond)
	def(&c.SweepGrace, time.Minute)
	def(&c.OutcomeTimeout, 30*time.Minute)
	if c.SweepBatch <= 0 {
		c.SweepBatch = 500
	}
	if c.DefaultFrom == "" {
		c.DefaultFrom = "no-reply@dispatcher.local"
	}
	return c
}

// Senders are the channel ports.
type Senders struct {
	Email EmailSender
	SMS   SMSSender
	Voice VoiceCaller
}

// Dispatcher is the dispatch use case.
type Dispatcher struct {
	store   Store
	timer   comms.Timer
	senders Senders
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	jitter  func(n int64) int64
	stats   Stats
}

// Stats counts what the dispatcher did, for logs, metrics and tests.
type Stats struct {
	Dropped, Deferred, Expired, Claimed, Sent, Failed, Retried, LostRecord atomic.Int64
}

// Option configures a Dispatcher.
type Option func(*Dispatcher)

// WithClock replaces time.Now (tests inject a clock).
func WithClock(now func() time.Time) Option { return func(d *Dispatcher) { d.now = now } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(d *Dispatcher) { d.log = l } }

// WithJitter replaces the random source of backoff: it returns a value in [0, n).
func WithJitter(f func(n int64) int64) Option { return func(d *Dispatcher) { d.jitter = f } }

// New returns a dispatcher.
func New(store Store, timer comms.Timer, senders Senders, cfg Config, opts ...Option) *Dispatcher {
	d := &Dispatcher{store: store, timer: timer, senders: senders, cfg: cfg.withDefaults(),
		log: slog.New(slog.DiscardHandler), now: time.Now, jitter: rand.Int64N}
	for _, o := range opts {
		o(d)
	}
	return d
}

// Stats returns the dispatcher's counters.
func (d *Dispatcher) Stats() *Stats { return &d.stats }

func (d *Dispatcher) clock() time.Time { return d.now().UTC().Truncate(time.Millisecond) }

// Handle acts on one fire. It returns an error only when the store failed
// and the fire should be delivered again; everything else — stale fires,
// lost races, send failures — is settled here.
func (d *Dispatcher) Handle(ctx context.Context, f comms.Fire) error {
	if !f.DueAt.IsZero() && d.clock().Add(d.cfg.Early).Before(f.DueAt) {
		// Early by its own account: wait the rest without a store read. A
		// stale fire is re-armed once more and dropped when it comes due.
		if err := d.timer.Arm(ctx, f, f.DueAt); err != nil {
			return fmt.Errorf("timer.Arm: %w", err)
		}
		return nil
	}
	row, err := d.store.GetCommunication(ctx, f.CompanyID, f.CommunicationID)
	if errors.Is(err, comms.ErrNotFound) {
		return d.drop(ctx, f, "unknown row")
	}
	if err != nil {
		return fmt.Errorf("store.GetCommunication: %w", err)
	}
	if row.Status != comms.StatusPending {
		return d.drop(ctx, f, "row is "+string(row.Status))
	}
	if row.Token != f.Token {
		return d.drop(ctx, f, "stale token")
	}
	now := d.clock()
	if now.Add(d.cfg.Early).Before(row.NextAttemptAt) {
		// Early (a Scheduler fire set ahead, or a clock skew): wait the rest.
		return d.arm(ctx, row)
	}
	// The company's settings are read only when this row needs them
	// (business hours, or an email without its own from address).
	var settings *comms.Settings
	settingsOf := func() (comms.Settings, error) {
		if settings == nil {
			co, err := d.store.GetCompany(ctx, row.CompanyID)
			if err != nil {
				return comms.Settings{}, fmt.Errorf("store.GetCompany: %w", err)
			}
			s := co.Settings.WithDefaults()
			settings = &s
		}
		return *settings, nil
	}

	if max := row.Policy().MaxDelayMinutes; max > 0 {
		due := row.ScheduledFor
		if row.RespectBusinessHours {
			set, err := settingsOf()
			if err != nil {
				return err
			}
			due, _ = comms.NextAttemptAt(row.ScheduledFor, true, row.Timezone, set)
		}
		if late := now.Sub(due); late > time.Duration(max)*time.Minute {
			d.stats.Expired.Add(1)
			return d.finish(ctx, row, func(r *comms.Communication) {
				r.Status = comms.StatusCancelled
				r.CancelledAt = &now
				r.LastError = &comms.LastError{Code: "expired",
					Message: fmt.Sprintf("not sent: %s late, more than cancel_policy.max_delay_minutes (%d)", late.Round(time.Second), max)}
			})
		}
	}

	if row.RespectBusinessHours {
		set, err := settingsOf()
		if err != nil {
			return err
		}
		next, ok := comms.NextAttemptAt(now, true, row.Timezone, set)
		if !ok {
			return d.finish(ctx, row, func(r *comms.Communication) {
				r.Status = comms.StatusFailed
				r.LastError = &comms.LastError{Code: "business_hours_closed", Message: "the company's business hours never open"}
			})
		}
		if next.After(now) {
			d.stats.Deferred.Add(1)
			row.NextAttemptAt = next
			row.Token = comms.NewToken()
			row.UpdatedAt = now
			stored, _, err := d.store.UpdateCommunication(ctx, row, false)
			if errors.Is(err, comms.ErrConflict) {
				return d.drop(ctx, f, "lost the race to defer")
			}
			if err != nil {
				return fmt.Errorf("store.UpdateCommunication: %w", err)
			}
			return d.arm(ctx, stored)
		}
	}

	claim := row
	claim.Status = comms.StatusProcessing
	claim.AttemptCount++
	claim.LeaseUntil = now.Add(d.cfg.Lease)
	claim.UpdatedAt = now
	claimed, _, err := d.store.UpdateCommunication(ctx, claim, false)
	if errors.Is(err, comms.ErrConflict) {
		return d.drop(ctx, f, "lost the race to claim")
	}
	if err != nil {
		return fmt.Errorf("store.UpdateCommunication: %w", err)
	}
	d.stats.Claimed.Add(1)

	sendCtx, cancel := context.WithTimeout(ctx, d.cfg.SendTimeout)
	providerID, sendErr := d.send(sendCtx, claimed, settingsOf)
	cancel()
	return d.record(ctx, claimed, providerID, sendErr)
}

func (d *Dispatcher) drop(ctx context.Context, f comms.Fire, why string) error {
	d.stats.Dropped.Add(1)
	d.log.DebugContext(ctx, "fire dropped", "communication_id", f.CommunicationID, "reason", why)
	return nil
}

// arm asks the timer for the row's current fire. A failure is logged, not
// returned: the row is stored, and the sweeper fires overdue pending rows.
func (d *Dispatcher) arm(ctx context.Context, row comms.Communication) error {
	if err := d.timer.Arm(ctx, comms.FireOf(row), row.NextAttemptAt); err != nil {
		d.log.WarnContext(ctx, "arm failed; the sweeper will fire the row", "communication_id", row.ID, "error", err.Error())
	}
	return nil
}

// finish applies a terminal change to a pending row by CAS.
func (d *Dispatcher) finish(ctx context.Context, row comms.Communication, change func(*comms.Communication)) error {
	change(&row)
	row.UpdatedAt = d.clock()
	row.Token = comms.NewToken()
	if _, _, err := d.store.UpdateCommunication(ctx, row, false); err != nil && !errors.Is(err, comms.ErrConflict) {
		return fmt.Errorf("store.UpdateCommunication: %w", err)
	}
	return nil
}

// record stores the result of an attempt on the claimed row.
func (d *Dispatcher) record(ctx context.Context, row comms.Communication, providerID string, sendErr error) error {
	now := d.clock()
	next := row
	next.LeaseUntil = time.Time{}
	next.UpdatedAt = now
	se := classify(sendErr)
	if se != nil && se.Transient && se.Code == "timeout" && row.Channel == comms.ChannelVoice {
		// The call may have been placed: never dial again for this attempt.
		se = comms.Permanent("outcome_unknown", "the provider did not answer in time; the call may have been placed, so it is not redialled")
	}
	switch {
	case se == nil && row.Channel == comms.ChannelVoice:
		// The call is placed; it stays processing until its outcome arrives
		// (webhook), or OutcomeTimeout passes and the sweeper declares no_answer.
		next.ProviderMessageID = providerID
		next.SentAt = &now
		next.LastError = nil
		next.LeaseUntil = now.Add(d.cfg.OutcomeTimeout)
	case se == nil:
		next.Status = comms.StatusSent
		next.ProviderMessageID = providerID
		next.SentAt = &now
		next.LastError = nil
	case !se.Transient:
		next.Status = comms.StatusFailed
		next.LastError = &comms.LastError{Code: se.Code, Message: se.Message}
	case row.AttemptCount < row.MaxAttempts:
		next.Status = comms.StatusPending
		next.NextAttemptAt = now.Add(d.backoff(row.AttemptCount))
		next.Token = comms.NewToken()
		next.LastError = &comms.LastError{Code: se.Code, Message: se.Message}
	default:
		next.Status = comms.StatusFailed
		next.LastError = &comms.LastError{Code: se.Code,
			Message: fmt.Sprintf("%s (gave up after %d attempts)", se.Message, row.AttemptCount)}
	}
	stored, err := d.storeResult(ctx, next)
	if errors.Is(err, comms.ErrConflict) {
		// The lease ran out and the sweeper took the row over while we sent.
		d.stats.LostRecord.Add(1)
		d.log.ErrorContext(ctx, "attempt result lost: the lease expired during the send", "communication_id", row.ID,
			"attempt", row.AttemptCount, "send_error", fmt.Sprint(sendErr))
		return nil
	}
	if err != nil {
		return fmt.Errorf("store.UpdateCommunication: %w", err)
	}
	switch stored.Status {
	case comms.StatusSent, comms.StatusProcessing:
		d.stats.Sent.Add(1)
	case comms.StatusFailed:
		d.stats.Failed.Add(1)
	case comms.StatusPending:
		d.stats.Retried.Add(1)
		return d.arm(ctx, stored)
	}
	return nil
}

// storeResult writes an attempt's result. The provider has already acted,
// so a store outage must not turn into a second send after the lease runs
// out: failed writes are retried with backoff for up to half the lease
// before giving up (the sweeper then settles the row).
func (d *Dispatcher) storeResult(ctx context.Context, next comms.Communication) (comms.Communication, error) {
	deadline := time.Now().Add(d.cfg.Lease / 2)
	wait := 50 * time.Millisecond
	for {
		stored, _, err := d.store.UpdateCommunication(ctx, next, false)
		if err == nil || errors.Is(err, comms.ErrConflict) || errors.Is(err, comms.ErrNotFound) || time.Now().Add(wait).After(deadline) {
			return stored, err
		}
		d.log.WarnContext(ctx, "recording the attempt failed; retrying", "communication_id", next.ID, "error", err.Error())
		select {
		case <-ctx.Done():
			return stored, err
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// classify turns a sender's error into a SendError: unclassified errors
// are transient, a deadline is a "timeout".
func classify(err error) *comms.SendError {
	var se *comms.SendError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return se
	case errors.Is(err, context.DeadlineExceeded):
		return comms.Transient("timeout", "the provider did not answer in time: %v", err)
	}
	return comms.Transient("provider_error", "%v", err)
}

// backoff is the delay before the attempt after attempt n (1-based):
// exponential from BackoffBase, capped at BackoffCap, with "equal jitter"
// — a uniform draw from the upper half of the step — so that gaps still
// grow from one attempt to the next while retries of many rows spread out.
func (d *Dispatcher) backoff(n int) time.Duration {
	step := d.cfg.BackoffBase
	for i := 1; i < n && step < d.cfg.BackoffCap; i++ {
		step *= 2
	}
	step = min(step, d.cfg.BackoffCap)
	half := step / 2
	return half + time.Duration(d.jitter(int64(half)+1))
}

// send resolves the company's sender resources and calls the channel's port.
func (d *Dispatcher) send(ctx context.Context, row comms.Communication, settingsOf func() (comms.Settings, error)) (string, error) {
	switch row.Channel {
	case comms.ChannelEmail:
		var p comms.EmailPayload
		if err := json.Unmarshal(row.Payload, &p); err != nil {
			return "", comms.Permanent("invalid_payload", "payload: %v", err)
		}
		from, fromName := p.FromEmail, ""
		if from == "" {
			set, err := settingsOf()
			if err != nil {
				return "", comms.Transient("store_unavailable", "%v", err)
			}
			from, fromName = set.DefaultFromEmail, set.DefaultFromName
		}
		if from == "" {
			from = d.cfg.DefaultFrom
		}
		return d.senders.Email.SendEmail(ctx, Email{CommunicationID: row.ID, CompanyID: row.CompanyID, Attempt: row.AttemptCount,
			From: from, FromName: fromName, To: p.ToEmail, ToName: p.ToName, CC: p.CC, Subject: p.Subject, HTMLBody: p.HTMLBody})
	case comms.ChannelSMS:
		var p comms.SMSPayload
		if err := json.Unmarshal(row.Payload, &p); err != nil {
			return "", comms.Permanent("invalid_payload", "payload: %v", err)
		}
		pn, err := d.store.GetPhoneNumber(ctx, row.CompanyID, p.PhoneNumberID)
		if errors.Is(err, comms.ErrNotFound) {
			return "", comms.Permanent("unknown_resource", "phone number %s no longer exists", p.PhoneNumberID)
		}
		if err != nil {
			return "", comms.Transient("store_unavailable", "store.GetPhoneNumber: %v", err)
		}
		return d.senders.SMS.SendSMS(ctx, SMS{CommunicationID: row.ID, CompanyID: row.CompanyID, Attempt: row.AttemptCount,
			From: pn.E164, To: p.ToNumber, Body: p.MessageBody})
	case comms.ChannelVoice:
		var p comms.VoicePayload
		if err := json.Unmarshal(row.Payload, &p); err != nil {
			return "", comms.Permanent("invalid_payload", "payload: %v", err)
		}
		agent, err := d.store.GetVoiceAgent(ctx, row.CompanyID, p.VoiceAgentOutboundConfigID)
		if errors.Is(err, comms.ErrNotFound) {
			return "", comms.Permanent("unknown_resource", "voice agent %s no longer exists", p.VoiceAgentOutboundConfigID)
		}
		if err != nil {
			return "", comms.Transient("store_unavailable", "store.GetVoiceAgent: %v", err)
		}
		pn, err := d.store.GetPhoneNumber(ctx, row.CompanyID, agent.PhoneNumberID)
		if errors.Is(err, comms.ErrNotFound) {
			return "", comms.Permanent("unknown_resource", "phone number %s of voice agent %s no longer exists", agent.PhoneNumberID, agent.ID)
		}
		if err != nil {
			return "", comms.Transient("store_unavailable", "store.GetPhoneNumber: %v", err)
		}
		return d.senders.Voice.PlaceCall(ctx, Call{CommunicationID: row.ID, CompanyID: row.CompanyID, Attempt: row.AttemptCount,
			Provider: agent.Provider, AgentID: agent.AgentID, From: pn.E164, To: p.ToNumber,
			DynamicVariables: p.DynamicVariables, Metadata: p.Metadata})
	}
	return "", comms.Permanent("unknown_channel", "channel %q", row.Channel)
}
