// Package dispatch delivers due rows: it takes one fire at a time, checks it
// is still current, applies the cancel policy, business hours and quiet hours, claims
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

	"github.com/dispatcherhq/dispatcher/internal/backoff"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/mailaddr"
)

// Config tunes the dispatcher. Zero fields take the defaults of docs/design.md §3.
type Config struct {
	// EmailLease, SMSLease and VoiceLease are how long a claim of a row of
	// that channel lasts (from the claim to the row's lease_until) before
	// the sweeper, SweepGrace later, may settle it and try again. They are
	// sized to the provider call they cover: an SES or SNS send takes well
	// under a second (default DefaultEmailLease, DefaultSMSLease: 30 s); a
	// call placement through the voice provider longer (DefaultVoiceLease:
	// 2 minutes). Issue 15; docs/design.md §3.
	EmailLease, SMSLease, VoiceLease time.Duration
	// Lease, when set, is the lease of every channel whose own lease is
	// zero. After WithDefaults it is the longest of the three (by then any
	// claim has expired).
	Lease time.Duration
	// BackoffBase and BackoffCap bound the delay before a transient retry.
	BackoffBase time.Duration
	BackoffCap  time.Duration
	// SendTimeout caps one provider call (default 30 s). A call is given at
	// most a quarter of its channel's lease (LeaseFor), so that its result
	// is recorded before the lease runs out.
	SendTimeout time.Duration
	// Early is how far ahead of next_attempt_at a fire is still acted on;
	// an earlier fire is re-armed for the remaining time.
	Early time.Duration
	// SweepGrace is how overdue a pending row must be before the sweeper
	// fires it itself (its own timer fire is presumed lost).
	SweepGrace time.Duration
	// SweepBatch is how many rows one sweep looks at.
	SweepBatch int
	// SweepEnqueues makes the sweep hand every row it fires again (a lost
	// fire, a lease released for the next attempt) to the timer instead of
	// sending it itself. On AWS the timer is the dispatch queue (and
	// Scheduler), so the sweeper's sends go through the dispatch
	// function like every other, bounded by its maximum concurrency
	// (the stack prop DispatchMaxConcurrency), and the sweeper function
	// never calls a provider for them. False (the embedded mode, one
	// process): the sweep sends at once.
	SweepEnqueues bool
	// DefaultFrom is the sender address when neither the payload nor the
	// company settings give one.
	DefaultFrom string
	// OutcomeTimeout is how long a placed call waits for its outcome
	// before the sweeper declares it no_answer.
	OutcomeTimeout time.Duration
	// SettleWait is how long after an email or SMS lease expires with no
	// recorded result the sweeper waits for the provider's own record of
	// the attempt (SES's SEND event, an SNS delivery-status report) before
	// sending again. With a complete ledger (AttemptLedger.Complete) it is
	// not waited. Default 5 minutes.
	SettleWait time.Duration
	// InfraRetry is how soon a fire is tried again after a failure of our
	// own — a store write or read that failed, a sender that could not even
	// reach the provider (ErrNotSent) — with equal jitter (half to all of
	// it). Such failures use up no attempt. Default 2 seconds.
	InfraRetry time.Duration
	// AnalysisGrace is how long after a call's end-of-call report
	// (call_ended) the cadence's decision waits for the provider's
	// analysis (call_analyzed: in_voicemail…) before deciding from the
	// end-of-call report alone. Default 2 minutes.
	AnalysisGrace time.Duration
}

// Default leases of a claim, per channel (Config.EmailLease, SMSLease,
// VoiceLease; the flags --lease-email, --lease-sms, --lease-voice of
// dispatcher serve and DISPATCHER_LEASE_* on AWS).
const (
	DefaultEmailLease = 30 * time.Second
	DefaultSMSLease   = 30 * time.Second
	DefaultVoiceLease = 2 * time.Minute
)

// WithDefaults returns c with its zero fields set to the defaults.
func (c Config) WithDefaults() Config { return c.withDefaults() }

// LeaseFor is the lease of a claim of a row of channel ch (after
// WithDefaults; an unknown channel gets the longest, Lease).
func (c Config) LeaseFor(ch comms.Channel) time.Duration {
	switch ch {
	case comms.ChannelEmail:
		return c.EmailLease
	case comms.ChannelSMS:
		return c.SMSLease
	case comms.ChannelVoice:
		return c.VoiceLease
	}
	return c.Lease
}

// sendTimeout is how long a provider call of channel ch may take: a
// quarter of its lease, at most SendTimeout.
func (c Config) sendTimeout(ch comms.Channel) time.Duration {
	return min(c.SendTimeout, c.LeaseFor(ch)/4)
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	for _, l := range []struct {
		d   *time.Duration
		def time.Duration
	}{{&c.EmailLease, DefaultEmailLease}, {&c.SMSLease, DefaultSMSLease}, {&c.VoiceLease, DefaultVoiceLease}} {
		def(l.d, c.Lease)
		def(l.d, l.def)
	}
	c.Lease = max(c.EmailLease, c.SMSLease, c.VoiceLease)
	def(&c.BackoffBase, 30*time.Second)
	def(&c.BackoffCap, 15*time.Minute)
	def(&c.SendTimeout, 30*time.Second)
	def(&c.Early, 50*time.Millisecond)
	def(&c.SweepGrace, time.Minute)
	def(&c.OutcomeTimeout, 30*time.Minute)
	def(&c.SettleWait, 5*time.Minute)
	def(&c.AnalysisGrace, 2*time.Minute)
	def(&c.InfraRetry, 2*time.Second)
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
	jitter  func() float64
	ledger  AttemptLedger
	calls   CallLookup
	// instance names this process on the leases it takes (WithInstance).
	instance string
	// batch and completer are the batched hot path (WithBatch, batch.go).
	batch     BatchStore
	completer *completer
	stats     Stats
}

// Stats counts what the dispatcher did, for logs, metrics and tests.
type Stats struct {
	Dropped, Deferred, Expired, Claimed, Sent, Failed, Retried, LostRecord, Suppressed, Settled atomic.Int64
	// Unsent counts attempts given back because nothing reached the
	// provider (ErrNotSent).
	Unsent atomic.Int64
}

// Option configures a Dispatcher.
type Option func(*Dispatcher)

// WithClock replaces time.Now (tests inject a clock).
func WithClock(now func() time.Time) Option { return func(d *Dispatcher) { d.now = now } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(d *Dispatcher) { d.log = l } }

// WithJitter replaces the random draw of backoff: a value in [0, 1] (see
// backoff.Policy.Delay; 1 gives the whole step).
func WithJitter(f func() float64) Option { return func(d *Dispatcher) { d.jitter = f } }

// WithLedger sets the provider's record asked before an uncertain attempt
// is sent again (see AttemptLedger).
func WithLedger(l AttemptLedger) Option { return func(d *Dispatcher) { d.ledger = l } }

// WithInstance names this process on the leases it takes
// (comms.Communication.LeaseOwner), so that SettleOrphans in a later
// process can tell them from its own. Give every process its own id.
func WithInstance(id string) Option { return func(d *Dispatcher) { d.instance = id } }

// WithCallLookup sets the voice provider's record of calls, asked before a
// placed call with no outcome is declared unanswered.
func WithCallLookup(l CallLookup) Option { return func(d *Dispatcher) { d.calls = l } }

// New returns a dispatcher.
func New(store Store, timer comms.Timer, senders Senders, cfg Config, opts ...Option) *Dispatcher {
	d := &Dispatcher{store: store, timer: timer, senders: senders, cfg: cfg.withDefaults(),
		log: slog.New(slog.DiscardHandler), now: time.Now, jitter: rand.Float64}
	for _, o := range opts {
		o(d)
	}
	return d
}

// Stats returns the dispatcher's counters.
func (d *Dispatcher) Stats() *Stats { return &d.stats }

func (d *Dispatcher) clock() time.Time { return d.now().UTC().Truncate(time.Millisecond) }

// Handle acts on one fire, in named steps: drop a stale fire, re-arm an
// early one, expire a row too late to send, defer a row outside business
// hours or quiet hours, claim it, resolve its senders and send, record the result. It
// returns an error only when the store failed and the fire should be
// delivered again; everything else — stale fires, lost races, send
// failures — is settled here.
func (d *Dispatcher) Handle(ctx context.Context, f comms.Fire) error {
	if d.earlyByItsOwnAccount(f) {
		// Wait the rest without a store read. A stale fire is re-armed once
		// more and dropped when it comes due.
		if err := d.timer.Arm(ctx, f, f.DueAt); err != nil {
			return fmt.Errorf("timer.Arm: %w", err)
		}
		return nil
	}
	row, current, err := d.current(ctx, f)
	if !current || err != nil {
		return err
	}
	now := d.clock()
	set := d.settings(ctx, row.CompanyID)
	if done, err := d.screen(ctx, row, set, now); done {
		return err
	}
	claimed, won, err := d.claim(ctx, row, now)
	if !won || err != nil {
		return err
	}
	return d.deliver(ctx, claimed, set)
}

// screen runs the steps between a current fire and its claim: re-arm an
// early one, expire a row too late to send, cancel it on a recorded event,
// hold it outside business or quiet hours, refuse a suppressed recipient.
// done is true when the fire is settled by one of them (err: the store
// failed); false when the row is to be claimed now.
func (d *Dispatcher) screen(ctx context.Context, row comms.Communication, set func() (comms.Settings, error), now time.Time) (done bool, err error) {
	if now.Add(d.cfg.Early).Before(row.NextAttemptAt) {
		// Early (a Scheduler fire set ahead, or a clock skew): wait the rest.
		return true, d.arm(ctx, row)
	}
	for _, step := range []func() (bool, error){
		func() (bool, error) { return d.expire(ctx, row, set, now) },
		func() (bool, error) { return d.cancelOnRecordedEvent(ctx, row, now) },
		func() (bool, error) { return d.hold(ctx, row, set, now) },
		func() (bool, error) { return d.refuseSuppressed(ctx, row, now) },
	} {
		if done, err := step(); done {
			return true, err
		}
	}
	return false, nil
}

// deliver sends a claimed row's attempt and records its result.
func (d *Dispatcher) deliver(ctx context.Context, claimed comms.Communication, set func() (comms.Settings, error)) error {
	sendTimeout := d.cfg.sendTimeout(claimed.Channel)
	if d.clock().Add(sendTimeout).After(claimed.LeaseUntil) {
		// The claim's write waited so long (a busy store) that a send now
		// could outlive the lease, and a sweep could send the attempt again
		// while it runs. Send nothing: the sweeper settles the row when the
		// lease expires (no provider record: the next attempt).
		d.log.WarnContext(ctx, "claimed too late to send within the lease; left to the sweeper", "communication_id", claimed.ID,
			"lease_until", claimed.LeaseUntil)
		return nil
	}
	start := time.Now()
	sendCtx, cancel := context.WithTimeout(ctx, sendTimeout)
	providerID, sendErr := d.send(sendCtx, claimed, set)
	cancel()
	return d.record(ctx, claimed, providerID, sendErr, time.Since(start))
}

// earlyByItsOwnAccount reports whether a fire arrived well before the time
// it was armed for (the Scheduler stage of the AWS timer fires early on purpose).
func (d *Dispatcher) earlyByItsOwnAccount(f comms.Fire) bool {
	return !f.DueAt.IsZero() && d.clock().Add(d.cfg.Early).Before(f.DueAt)
}

// current loads the fire's row and reports whether the fire is still the
// row's: an unknown row, a row no longer pending or another token make it
// stale, and it is dropped.
func (d *Dispatcher) current(ctx context.Context, f comms.Fire) (comms.Communication, bool, error) {
	row, err := d.store.GetCommunication(ctx, f.CompanyID, f.CommunicationID)
	return d.check(ctx, f, row, err)
}

// check is current on a row already read (err: the read's).
func (d *Dispatcher) check(ctx context.Context, f comms.Fire, row comms.Communication, err error) (comms.Communication, bool, error) {
	switch {
	case errors.Is(err, comms.ErrNotFound):
		return row, false, d.drop(ctx, f.CommunicationID, "unknown row")
	case err != nil:
		return row, false, fmt.Errorf("store.GetCommunication: %w", err)
	case row.Status == comms.StatusProcessing && row.Token == f.Token && row.AwaitingAnalysis():
		// The fire of a call's decide_by: the analysis did not come.
		return row, false, d.decideFromCallEnded(ctx, row)
	case row.Status != comms.StatusPending:
		return row, false, d.drop(ctx, f.CommunicationID, "row is "+string(row.Status))
	case row.Token != f.Token:
		return row, false, d.drop(ctx, f.CommunicationID, "stale token")
	}
	return row, true, nil
}

// settings returns a function reading the company's settings (defaults
// applied) once, when a step first needs them: business and quiet hours, or an email
// without its own from address.
func (d *Dispatcher) settings(ctx context.Context, companyID string) func() (comms.Settings, error) {
	var cached *comms.Settings
	return func() (comms.Settings, error) {
		if cached == nil {
			co, err := d.store.GetCompany(ctx, companyID)
			if err != nil {
				return comms.Settings{}, fmt.Errorf("store.GetCompany: %w", err)
			}
			s := co.Settings.WithDefaults()
			cached = &s
		}
		return *cached, nil
	}
}

// expire cancels a row more than its cancel_policy.max_delay_minutes late
// (counted from when it was due, business hours and quiet hours applied).
// done is true when the fire is settled.
func (d *Dispatcher) expire(ctx context.Context, row comms.Communication, settings func() (comms.Settings, error), now time.Time) (done bool, err error) {
	maxDelay := row.Policy().MaxDelayMinutes
	if maxDelay <= 0 {
		return false, nil
	}
	set, err := settings()
	if err != nil {
		return true, err
	}
	due := row.ScheduledFor
	if a := comms.NextAllowed(row.ScheduledFor, row, set); !a.Never {
		due = a.At
	}
	if now.Sub(due) <= time.Duration(maxDelay)*time.Minute {
		return false, nil
	}
	d.stats.Expired.Add(1)
	_, _, err = d.write(ctx, "expire")(comms.Expire(row, due, maxDelay, now))
	return true, err
}

// hold defers a row that may not be sent now — outside its business hours
// (when it respects them) or its channel's quiet hours, in any zone its
// recipient may be in — to the next instant allowed in all of them
// (comms.NextAllowed), or fails it when none ever comes. done is true when
// the fire is settled.
func (d *Dispatcher) hold(ctx context.Context, row comms.Communication, settings func() (comms.Settings, error), now time.Time) (done bool, err error) {
	set, err := settings()
	if err != nil {
		return true, err
	}
	a := comms.NextAllowed(now, row, set)
	if a.Never {
		code := "business_hours_closed"
		if a.Reason == comms.DeferQuietHours {
			code = "quiet_hours_closed"
		}
		_, _, err := d.write(ctx, "fail")(comms.RecordPermanentFailure(row,
			comms.LastError{Code: code, Message: comms.NeverAllowedMessage(row, set, a.Reason)}, now))
		return true, err
	}
	if !a.At.After(now) {
		return false, nil
	}
	d.stats.Deferred.Add(1)
	stored, written, err := d.write(ctx, "defer")(comms.Defer(row, a.Reason, a.At, now))
	if !written {
		return true, err
	}
	return true, d.arm(ctx, stored)
}

// refuseSuppressed fails a row whose recipient the company has suppressed
// (a hard bounce, a complaint, an SMS opt-out, or by hand): no provider
// call and no attempt, code recipient_suppressed. done is true when the
// fire is settled.
func (d *Dispatcher) refuseSuppressed(ctx context.Context, row comms.Communication, now time.Time) (done bool, err error) {
	channel, to, err := recipientOf(row)
	if err != nil || channel == "" {
		return false, nil // a payload that does not decode fails at send, as before
	}
	s, err := d.store.GetSuppression(ctx, row.CompanyID, channel, comms.NormalizeRecipient(channel, to))
	if errors.Is(err, comms.ErrNotFound) || err == nil && !s.Active() {
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("store.GetSuppression: %w", err)
	}
	d.stats.Suppressed.Add(1)
	msg := fmt.Sprintf("%s is suppressed for this company (%s", s.Recipient, s.Reason)
	if s.CommunicationID != "" {
		msg += " reported for communication " + s.CommunicationID
	}
	msg += " at " + s.CreatedAt.UTC().Format(time.RFC3339) + "); lift it with DELETE /v1/suppressions/" + string(s.Channel) + "/" + s.Recipient + " to send to it again"
	_, written, err := d.write(ctx, "refuse a suppressed recipient")(comms.RecordPermanentFailure(row,
		comms.LastError{Code: CodeRecipientSuppressed, Message: msg}, now))
	if written {
		d.log.LogAttrs(ctx, slog.LevelWarn, MsgDeliveryAttempt,
			slog.String("communication_id", row.ID), slog.String("company_id", row.CompanyID),
			slog.String("channel", string(row.Channel)), slog.Int("attempt", row.AttemptCount),
			slog.String("result", ResultSuppressed), slog.String("error_code", CodeRecipientSuppressed),
			slog.Float64("duration_ms", 0))
	}
	return true, err
}

// CodeRecipientSuppressed is the last_error code of a row not sent because
// its recipient is suppressed.
const CodeRecipientSuppressed = "recipient_suppressed"

// recipientOf returns the suppression channel and recipient of an email or
// SMS row ("" for voice, which suppressions do not block).
func recipientOf(row comms.Communication) (comms.SuppressionChannel, string, error) {
	switch row.Channel {
	case comms.ChannelEmail:
		var p comms.EmailPayload
		if err := json.Unmarshal(row.Payload, &p); err != nil {
			return "", "", err
		}
		return comms.SuppressEmail, p.ToEmail, nil
	case comms.ChannelSMS:
		var p comms.SMSPayload
		if err := json.Unmarshal(row.Payload, &p); err != nil {
			return "", "", err
		}
		return comms.SuppressSMS, p.ToNumber, nil
	}
	return "", "", nil
}

// claim takes the row for its next attempt with a lease; won is false when
// another delivery of the fire, a sweep or a cancel got there first.
func (d *Dispatcher) claim(ctx context.Context, row comms.Communication, now time.Time) (comms.Communication, bool, error) {
	ch, err := comms.Claim(row, now.Add(d.cfg.LeaseFor(row.Channel)), now)
	ch.Row.LeaseOwner = d.instance
	claimed, written, err := d.write(ctx, "claim")(ch, err)
	if !written {
		return claimed, false, err
	}
	d.stats.Claimed.Add(1)
	return claimed, true, nil
}

// write returns a function that stores a transition's change and reports
// whether it was written. A change the row no longer allows, or a write
// that lost its compare-and-swap, means another actor moved the row on:
// the step is dropped (not written, nil error). Only a store failure is an
// error.
func (d *Dispatcher) write(ctx context.Context, step string) func(comms.Change, error) (comms.Communication, bool, error) {
	return func(ch comms.Change, err error) (comms.Communication, bool, error) {
		if errors.Is(err, comms.ErrInvalidTransition) {
			return comms.Communication{}, false, d.drop(ctx, ch.Row.ID, step+": "+err.Error())
		}
		if err != nil {
			return comms.Communication{}, false, err
		}
		stored, _, err := d.store.UpdateCommunication(ctx, ch, false)
		if errors.Is(err, comms.ErrConflict) {
			return comms.Communication{}, false, d.drop(ctx, ch.Row.ID, "lost the race to "+step)
		}
		if err != nil {
			return comms.Communication{}, false, fmt.Errorf("store.UpdateCommunication: %w", err)
		}
		return stored, true, nil
	}
}

func (d *Dispatcher) drop(ctx context.Context, id, why string) error {
	d.stats.Dropped.Add(1)
	d.log.DebugContext(ctx, "fire dropped", "communication_id", id, "reason", why)
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

// MsgDeliveryAttempt is the message of the one log line of each delivery
// attempt (package emf turns it into the Deliveries metric on AWS).
const MsgDeliveryAttempt = "delivery attempt"

// Results of a delivery attempt, as the attempt log line and the
// Deliveries metric name them.
const (
	ResultSent      = "sent"
	ResultTransient = "transient"
	ResultPermanent = "permanent"
	// ResultSuppressed: the recipient is suppressed; nothing was sent.
	ResultSuppressed = "suppressed"
	// ResultNotSent: our own infrastructure failed before the provider
	// was reached (ErrNotSent); the attempt is given back.
	ResultNotSent = "not_sent"
)

// record stores the result of an attempt on the claimed row and logs the
// attempt line.
func (d *Dispatcher) record(ctx context.Context, row comms.Communication, providerID string, sendErr error, took time.Duration) error {
	if errors.Is(sendErr, ErrNotSent) {
		return d.giveBack(ctx, row, sendErr, took)
	}
	se := classify(sendErr)
	if se != nil && se.Transient && se.Code == "timeout" && row.Channel == comms.ChannelVoice {
		// The call may have been placed: never dial again for this attempt.
		se = comms.Permanent("outcome_unknown", "the provider did not answer in time; the call may have been placed, so it is not redialled")
	}
	result, retryIn := ResultSent, d.backoff(row.AttemptCount)
	if se != nil {
		result = ResultTransient
		if !se.Transient {
			result = ResultPermanent
		}
	}
	// build makes the result's change at the time it is written: a write
	// retried after a store failure records the time it finally happens.
	build := func(now time.Time) (comms.Change, error) {
		switch {
		case se == nil && row.Channel == comms.ChannelVoice:
			// The call is placed; it stays processing until its outcome arrives
			// (webhook), or OutcomeTimeout passes and the sweeper declares no_answer.
			return comms.RecordCallPlaced(row, providerID, now.Add(d.cfg.OutcomeTimeout), now)
		case se == nil:
			return comms.RecordSent(row, providerID, now)
		case !se.Transient:
			return comms.RecordPermanentFailure(row, comms.LastError{Code: se.Code, Message: se.Message}, now)
		}
		return comms.RecordTransientFailure(row, comms.LastError{Code: se.Code, Message: se.Message}, now.Add(retryIn), now)
	}
	d.logAttempt(ctx, row, result, se, took)
	stored, err := d.storeResult(ctx, d.cfg.LeaseFor(row.Channel)/2, build)
	if errors.Is(err, comms.ErrConflict) && se == nil && d.settledByProvider(ctx, row, providerID) {
		// The provider's own report (SES SEND) reached the row first and
		// recorded this very send: nothing is lost.
		d.stats.Sent.Add(1)
		return nil
	}
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

// giveBack records an attempt that never reached the provider because our
// own infrastructure failed (ErrNotSent): the row goes back to pending
// with its attempt count as before the claim (comms.ReleaseUnsent) and is
// tried again after InfraRetry. Should that write fail too (the disk that
// failed the sink is full for the store as well), it is retried until the
// sweeper may take the row over (its lease and the sweep grace): nothing
// reached the provider, so a give-back written late cannot lead to a
// second send, and a full disk that outlasts half the lease (what a result
// write is given) must not leave the row to the sweeper (issue 15: rows out
// within seconds of space freed, no attempt used up).
func (d *Dispatcher) giveBack(ctx context.Context, row comms.Communication, sendErr error, took time.Duration) error {
	e := comms.LastError{Code: "not_sent", Message: fmt.Sprintf("nothing reached the provider; not counted as an attempt: %v", sendErr)}
	d.logAttempt(ctx, row, ResultNotSent, comms.Transient(e.Code, "%s", e.Message), took)
	retryAt := func(now time.Time) time.Time { return now.Add(d.infraRetry()) }
	stored, err := d.storeResult(ctx, d.cfg.LeaseFor(row.Channel)+d.cfg.SweepGrace, func(now time.Time) (comms.Change, error) {
		return comms.ReleaseUnsent(row, e, retryAt(now), now)
	})
	if errors.Is(err, comms.ErrConflict) {
		return d.drop(ctx, row.ID, "lost the race to give the attempt back")
	}
	if err != nil {
		return fmt.Errorf("store.UpdateCommunication: %w", err)
	}
	d.stats.Unsent.Add(1)
	return d.arm(ctx, stored)
}

// infraRetry is InfraRetry with equal jitter, in whole milliseconds.
func (d *Dispatcher) infraRetry() time.Duration {
	return (d.cfg.InfraRetry/2 + time.Duration(d.jitter()*float64(d.cfg.InfraRetry/2))).Truncate(time.Millisecond)
}

// settledByProvider reports whether the row, re-read, is sent as
// providerID: a delivery report settled the attempt before its result was
// written.
func (d *Dispatcher) settledByProvider(ctx context.Context, row comms.Communication, providerID string) bool {
	now, err := d.store.GetCommunication(ctx, row.CompanyID, row.ID)
	return err == nil && providerID != "" && now.ProviderMessageID == providerID && now.SentAt != nil
}

// logAttempt writes the one line of a delivery attempt (docs/design.md §6):
// message MsgDeliveryAttempt and the attributes
// communication_id, company_id, channel, attempt, result, error_code and
// duration_ms. On AWS the same line carries the Deliveries metric (EMF).
func (d *Dispatcher) logAttempt(ctx context.Context, row comms.Communication, result string, se *comms.SendError, took time.Duration) {
	level, code := slog.LevelInfo, ""
	if se != nil {
		level, code = slog.LevelWarn, se.Code
	}
	d.log.LogAttrs(ctx, level, MsgDeliveryAttempt,
		slog.String("communication_id", row.ID), slog.String("company_id", row.CompanyID),
		slog.String("channel", string(row.Channel)), slog.Int("attempt", row.AttemptCount),
		slog.String("result", result), slog.String("error_code", code),
		slog.Float64("duration_ms", float64(took.Microseconds())/1000))
}

// storeResult writes an attempt's result, built afresh for each try. The
// provider has already acted, so a store outage must not turn into a
// second send after the lease runs out: failed writes are retried with
// backoff (50 ms doubling to 2 s) for up to window — half the row's lease
// for a send's result — before giving up (the sweeper then settles the
// row). The deadline and the waits are the wall clock's: they bound real
// retrying, whatever clock the dispatcher is given.
func (d *Dispatcher) storeResult(ctx context.Context, window time.Duration, build func(now time.Time) (comms.Change, error)) (comms.Communication, error) {
	deadline := time.Now().Add(window)
	// A 2 s cap: once the store takes writes again (space freed), the
	// result is written within 2 s (issue 15: rows out within 5 s).
	retry := backoff.Policy{Base: 50 * time.Millisecond, Cap: 2 * time.Second}
	for n := 1; ; n++ {
		ch, err := build(d.clock())
		if err != nil {
			return comms.Communication{}, fmt.Errorf("dispatch.record: %w", err)
		}
		stored, err := d.writeResult(ctx, ch)
		if err == nil || errors.Is(err, comms.ErrConflict) || errors.Is(err, comms.ErrNotFound) || time.Now().Add(retry.Step(n)).After(deadline) {
			return stored, err
		}
		d.log.WarnContext(ctx, "recording the attempt failed; retrying", "communication_id", ch.Row.ID, "error", err.Error())
		if retry.Sleep(ctx, n) != nil {
			return stored, err
		}
	}
}

// unsuppressed returns the cc addresses the company has not suppressed (a
// suppressed cc is left out; a suppressed To fails the row before the
// send, in refuseSuppressed).
func (d *Dispatcher) unsuppressed(ctx context.Context, companyID string, cc []string) ([]string, error) {
	var out []string
	for _, a := range cc {
		s, err := d.store.GetSuppression(ctx, companyID, comms.SuppressEmail, comms.NormalizeRecipient(comms.SuppressEmail, a))
		switch {
		case errors.Is(err, comms.ErrNotFound) || err == nil && !s.Active():
			out = append(out, a)
		case err != nil:
			return nil, fmt.Errorf("store.GetSuppression: %w", err)
		default:
			d.log.InfoContext(ctx, "suppressed cc left out", "company_id", companyID, "reason", string(s.Reason))
		}
	}
	return out, nil
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

// backoff is the delay before the attempt after attempt n (1-based): the
// shared rule of package backoff from BackoffBase, capped at BackoffCap, in
// whole milliseconds like every time the lifecycle records.
func (d *Dispatcher) backoff(n int) time.Duration {
	return backoff.Policy{Base: d.cfg.BackoffBase, Cap: d.cfg.BackoffCap}.Delay(n, d.jitter()).Truncate(time.Millisecond)
}

// send resolves the company's sender resources and calls the channel's port.
func (d *Dispatcher) send(ctx context.Context, row comms.Communication, settingsOf func() (comms.Settings, error)) (string, error) {
	switch row.Channel {
	case comms.ChannelEmail:
		var p comms.EmailPayload
		if err := json.Unmarshal(row.Payload, &p); err != nil {
			return "", comms.Permanent("invalid_payload", "payload: %v", err)
		}
		set, err := settingsOf()
		if err != nil {
			return "", comms.Transient("store_unavailable", "%v", err)
		}
		from, fromName := p.FromEmail, ""
		if from == "" {
			from, fromName = set.DefaultFromEmail, set.DefaultFromName
		} else if !set.SendsFrom(mailaddr.DomainOf(from)) {
			// Checked at create; the company may have removed the domain since.
			return "", comms.Permanent("sender_not_allowed", "from_email %s is no longer at one of the company's sending_domains", from)
		}
		if from == "" {
			from = d.cfg.DefaultFrom
		}
		cc, err := d.unsuppressed(ctx, row.CompanyID, p.CC)
		if err != nil {
			return "", comms.Transient("store_unavailable", "%v", err)
		}
		return d.senders.Email.SendEmail(ctx, Email{CommunicationID: row.ID, CompanyID: row.CompanyID, Attempt: row.AttemptCount,
			From: from, FromName: fromName, To: p.ToEmail, ToName: p.ToName, CC: cc, Subject: p.Subject, HTMLBody: p.HTMLBody})
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
		if !pn.HasCapability("sms") {
			return "", comms.Permanent("unknown_resource", "phone number %s no longer has the sms capability", pn.ID)
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
		if !pn.HasCapability("voice") {
			return "", comms.Permanent("unknown_resource", "phone number %s of voice agent %s no longer has the voice capability", pn.ID, agent.ID)
		}
		return d.senders.Voice.PlaceCall(ctx, Call{CommunicationID: row.ID, CompanyID: row.CompanyID, Attempt: row.AttemptCount,
			Provider: agent.Provider, AgentID: agent.AgentID, From: pn.E164, To: p.ToNumber,
			DynamicVariables: p.DynamicVariables, Metadata: p.Metadata})
	}
	return "", comms.Permanent("unknown_channel", "channel %q", row.Channel)
}
