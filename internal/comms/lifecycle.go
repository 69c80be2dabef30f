package comms

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
)

// This file owns the lifecycle of a row (docs/design.md, "Lifecycle"). Every
// state change is one of the named transitions below, in the style of River's
// JobSetState*: each takes the row as read and returns a Change — the next row
// and the events it emits — which a store writes in one atomic,
// compare-and-swap write. Nothing else assigns Status.
//
//	pending    ─Claim→ processing ─RecordSent→ sent (email, SMS)
//	                              ─RecordCallPlaced→ processing ─RecordOutcome→ sent (voice)
//	                              ─RecordTransientFailure→ pending (retry) | failed (last attempt)
//	                              ─RecordPermanentFailure→ failed
//	                              ─ReleaseExpiredLease→ pending (email, SMS) | failed
//	pending    ─Defer→ pending,  ─Reschedule→ pending,  ─Cancel→ cancelled,  ─Expire→ cancelled,
//	           ─RecordPermanentFailure→ failed (unsendable before any attempt)
//
// The token rule: every transition issues a new fire token. A fire carries the
// token the row had when the fire was armed, and the dispatcher drops a fire
// whose token is not the row's, so whatever timer was armed before a change is
// harmless after it; a transition that leaves the row waiting (Defer,
// Reschedule, a retry) is followed by arming the new token.

// EventType names what happened to a row: one vocabulary for the API, the
// logs and the status webhooks.
type EventType string

// The event types. Data shapes are the *Data types below.
const (
	// EventCreated: accepted by POST, or a follow-up created by a cadence (CreatedData).
	EventCreated EventType = "created"
	// EventRescheduled: a PATCH changed the row while pending (RescheduledData).
	EventRescheduled EventType = "rescheduled"
	// EventDeferred: outside business hours or quiet hours at fire time; waits for the next allowed instant (DeferredData).
	EventDeferred EventType = "deferred"
	// EventAttemptStarted: claimed for attempt n (AttemptData).
	EventAttemptStarted EventType = "attempt_started"
	// EventSent: the provider accepted the message or placed the call (SentData).
	EventSent EventType = "sent"
	// EventAttemptFailed: an attempt failed (AttemptFailedData).
	EventAttemptFailed EventType = "attempt_failed"
	// EventFailed: the row failed for good (FailedData).
	EventFailed EventType = "failed"
	// EventCancelled: the row was cancelled (CancelledData).
	EventCancelled EventType = "cancelled"
	// EventExpired: the row was due more than cancel_policy.max_delay_minutes
	// ago and is not sent; a cancelled event with reason expired follows (ExpiredData).
	EventExpired EventType = "expired"
	// EventOutcomeRecorded: a voice call's outcome arrived (OutcomeRecordedData).
	EventOutcomeRecorded EventType = "outcome_recorded"
	// EventFollowUpCreated: a cadence created its next attempt (FollowUpCreatedData).
	EventFollowUpCreated EventType = "follow_up_created"
	// EventCallEnded: the provider reported the call's end; the decision
	// waits for its analysis until decide_by (CallEndedData).
	EventCallEnded EventType = "call_ended"
)

// EventTypes lists every event type the API can return, in lifecycle order.
var EventTypes = []EventType{EventCreated, EventRescheduled, EventDeferred, EventAttemptStarted, EventSent,
	EventAttemptFailed, EventFailed, EventCancelled, EventExpired, EventCallEnded, EventOutcomeRecorded, EventFollowUpCreated,
	EventDeliveryDelayed, EventDelivered, EventBounced, EventUndeliverable, EventOptedOut, EventComplained}

// Valid reports whether t is a known event type.
func (t EventType) Valid() bool { return slices.Contains(EventTypes, t) }

// Event is one thing that happened to a row. Sequence numbers a row's events
// 1, 2, 3… with no gaps; an event is written in the same atomic write as the
// state change that emitted it, so a write that loses its compare-and-swap
// leaves no event.
type Event struct {
	// ID is derived from (CommunicationID, Sequence) (EventID), so writing the
	// same event twice can only collide, never duplicate.
	ID              string    `json:"id"`
	CommunicationID string    `json:"communication_id"`
	CompanyID       string    `json:"-"`
	Sequence        int64     `json:"sequence"`
	Type            EventType `json:"type"`
	// At is when it happened, UTC, millisecond precision.
	At time.Time `json:"at"`
	// Data is the JSON of the type's *Data struct.
	Data json.RawMessage `json:"data"`
}

// MaxEventSequence is the highest sequence a row's event can have (stores
// keep it in 10 digits; a row has a few dozen events at most).
const MaxEventSequence = 9_999_999_999

// eventNamespace derives event ids.
var eventNamespace = uuid.MustParse("3f2b8c1e-7d4a-4c6b-9e8f-1a2b3c4d5e6f")

// EventID is the id of event seq of row communicationID: a UUID (version 5)
// of both, so every store and every retry names an event the same way.
func EventID(communicationID string, seq int64) string {
	return uuid.NewSHA1(eventNamespace, fmt.Appendf(nil, "%s#%d", communicationID, seq)).String()
}

// CancelReason says why a row was cancelled.
type CancelReason string

// The cancel reasons; CancelOnEvent makes the event:<name> ones.
const (
	// CancelAPI: POST /v1/scheduled-communications/{id}/cancel.
	CancelAPI CancelReason = "api"
	// CancelExpired: more than cancel_policy.max_delay_minutes late at fire time.
	CancelExpired CancelReason = "expired"
	// CancelCadence: an earlier attempt of its voice cadence was cancelled.
	CancelCadence CancelReason = "cadence_cancelled"
)

// CancelOnEvent is the reason of a cancel by POST …/cancel-by-event: "event:<name>".
func CancelOnEvent(name string) CancelReason { return CancelReason("event:" + name) }

// DeferReason says why a due row was not sent yet.
type DeferReason string

// The defer reasons.
const (
	// DeferBusinessHours: respect_business_hours and the callee's window is closed.
	DeferBusinessHours DeferReason = "business_hours"
	// DeferQuietHours: the channel's quiet hours (settings.quiet_hours) are
	// closed in a zone the recipient may be in.
	DeferQuietHours DeferReason = "quiet_hours"
)

// The data of each event type, as the API and the webhooks show it.
type (
	// CreatedData is the data of created.
	CreatedData struct {
		Source        Source    `json:"source"`
		ScheduledFor  time.Time `json:"scheduled_for"`
		NextAttemptAt time.Time `json:"next_attempt_at"`
	}
	// RescheduledData is the data of rescheduled: what the PATCH changed
	// (create-body field names) and the row's times after it.
	RescheduledData struct {
		Changed       []string  `json:"changed"`
		ScheduledFor  time.Time `json:"scheduled_for"`
		NextAttemptAt time.Time `json:"next_attempt_at"`
	}
	// DeferredData is the data of deferred.
	DeferredData struct {
		Reason        DeferReason `json:"reason"`
		NextAttemptAt time.Time   `json:"next_attempt_at"`
	}
	// AttemptData is the data of attempt_started.
	AttemptData struct {
		Attempt int `json:"attempt"`
	}
	// SentData is the data of sent: the provider's message id (SES, SNS) or call id (voice).
	SentData struct {
		Attempt           int    `json:"attempt"`
		ProviderMessageID string `json:"provider_message_id"`
		// SettledLate is true when the dispatcher lost track of the attempt
		// (it stopped, or its write failed, after the send) and the
		// provider's own record of it settled the row later.
		SettledLate bool `json:"settled_late"`
	}
	// AttemptFailedData is the data of attempt_failed. RetryAt is set when
	// the row will be tried again, null when this was its last attempt.
	AttemptFailedData struct {
		Attempt   int        `json:"attempt"`
		Error     LastError  `json:"error"`
		Permanent bool       `json:"permanent"`
		RetryAt   *time.Time `json:"retry_at"`
		// Counted is false (and present) only when the attempt did not
		// count against max_attempts: nothing reached the provider, because
		// our own infrastructure failed (ReleaseUnsent).
		Counted *bool `json:"counted,omitempty"`
	}
	// FailedData is the data of failed.
	FailedData struct {
		Error LastError `json:"error"`
	}
	// CancelledData is the data of cancelled.
	CancelledData struct {
		Reason CancelReason `json:"reason"`
	}
	// ExpiredData is the data of expired: when the row was due and how late
	// it was at fire time.
	ExpiredData struct {
		DueAt           time.Time `json:"due_at"`
		LateSeconds     float64   `json:"late_seconds"`
		MaxDelayMinutes int       `json:"max_delay_minutes"`
	}
	// OutcomeRecordedData is the data of outcome_recorded: the outcome
	// the cadence acted on and what it was based on.
	OutcomeRecordedData struct {
		Connected         bool         `json:"connected"`
		TalkSeconds       *float64     `json:"talk_seconds"`
		TalkSecondsSource TalkSource   `json:"talk_seconds_source"`
		CallSeconds       *float64     `json:"call_seconds"`
		EndedReason       string       `json:"ended_reason"`
		InVoicemail       *bool        `json:"in_voicemail"`
		Basis             OutcomeBasis `json:"basis"`
		Decision          Decision     `json:"decision"`
	}
	// FollowUpCreatedData is the data of follow_up_created.
	FollowUpCreatedData struct {
		FollowUpID    string    `json:"follow_up_id"`
		Attempt       int       `json:"attempt"`
		NextAttemptAt time.Time `json:"next_attempt_at"`
	}
)

// Change is what a transition returns and a store writes atomically: Row
// replaces the stored row if the stored version is still Row.Version (the
// version it was read at), Events are inserted with it, and Insert — a row
// the transition creates, such as a cadence follow-up — is created in the
// same write with its own events. If the compare-and-swap loses, nothing of
// it is written.
type Change struct {
	Row Communication
	// Before is the row the transition was made from, as its caller read
	// or stored it (nil for a create and for a change not made by a
	// transition). A store may write only the columns of Row that differ
	// from it: under the compare-and-swap on its version, the stored row
	// is Before (the SQLite store does; docs/design.md §15).
	Before *Communication
	Events []Event
	Insert *Change
	// Suppress are suppressions the change makes (a hard bounce, a
	// complaint, an opt-out), put in the same write (replacing a lifted
	// one of the same company, channel and recipient).
	Suppress []Suppression
}

// Transition names a lifecycle transition (in errors and tests).
type Transition string

// The transitions.
const (
	TransitionCreate                 Transition = "create"
	TransitionReschedule             Transition = "reschedule"
	TransitionCancel                 Transition = "cancel"
	TransitionExpire                 Transition = "expire"
	TransitionDefer                  Transition = "defer"
	TransitionClaim                  Transition = "claim"
	TransitionRecordSent             Transition = "record_sent"
	TransitionRecordCallPlaced       Transition = "record_call_placed"
	TransitionRecordTransientFailure Transition = "record_transient_failure"
	TransitionRecordPermanentFailure Transition = "record_permanent_failure"
	TransitionReleaseExpiredLease    Transition = "release_expired_lease"
	TransitionReleaseUnsent          Transition = "release_unsent"
	TransitionRecordOutcome          Transition = "record_outcome"
	TransitionRecordCallEnded        Transition = "record_call_ended"
)

// TransitionError is a transition asked of a row in a status it does not
// leave from. It matches ErrInvalidTransition, and ErrNotPending when the
// transition acts on pending rows only (edits and cancels: a 409 not_pending).
type TransitionError struct {
	Transition Transition
	Status     Status
	// From lists the statuses the transition accepts.
	From []Status
}

// Error says what could not be done and why.
func (e *TransitionError) Error() string {
	if e.pendingOnly() {
		verb := string(e.Transition)
		switch e.Transition {
		case TransitionReschedule:
			verb = "edit"
		case TransitionCancel:
			verb = "cancel"
		}
		return fmt.Sprintf("cannot %s: the communication is %s; only pending communications can be changed", verb, e.Status)
	}
	return fmt.Sprintf("cannot %s: the communication is %s, not %v", e.Transition, e.Status, e.From)
}

func (e *TransitionError) pendingOnly() bool {
	return len(e.From) == 1 && e.From[0] == StatusPending
}

// Is makes errors.Is(err, ErrInvalidTransition) hold, and
// errors.Is(err, ErrNotPending) for pending-only transitions.
func (e *TransitionError) Is(target error) bool {
	return target == ErrInvalidTransition || (target == ErrNotPending && e.pendingOnly())
}

// begin starts transition t of row at now: it checks the row's status is
// one of from, and applies what every transition does (updated_at, the
// token rule). It returns the time the transition happens at: now, or the
// row's last change when that is later (another process's clock ran
// ahead), so that a row's events never go back in time.
func begin(row Communication, t Transition, now time.Time, from ...Status) (Change, time.Time, error) {
	if !slices.Contains(from, row.Status) {
		return Change{}, now, &TransitionError{Transition: t, Status: row.Status, From: from}
	}
	before := row
	if now.Before(row.UpdatedAt) {
		now = row.UpdatedAt
	}
	row.UpdatedAt = now
	row.Token = NewToken()
	row.LeaseOwner = "" // the claimer sets it again after Claim
	return Change{Row: row, Before: &before}, now, nil
}

// emit appends an event of the row at now, numbering it after the row's last.
func (ch *Change) emit(t EventType, now time.Time, data any) {
	b, err := json.Marshal(data)
	if err != nil { // the *Data types always marshal
		panic(fmt.Sprintf("comms: event data of %s: %v", t, err))
	}
	ch.Row.EventSeq++
	ch.Events = append(ch.Events, Event{
		ID: EventID(ch.Row.ID, ch.Row.EventSeq), CommunicationID: ch.Row.ID, CompanyID: ch.Row.CompanyID,
		Sequence: ch.Row.EventSeq, Type: t, At: now, Data: b,
	})
}

// Create is the first change of a new row (status pending, version 0 until
// stored): it emits created. Callers fill in every field of the row but
// the lifecycle ones, which Create sets.
func Create(row Communication, now time.Time) Change {
	row.Status = StatusPending
	row.Version, row.EventSeq = 0, 0
	row.CreatedAt, row.UpdatedAt = now, now
	row.Token = NewToken()
	ch := Change{Row: row}
	ch.emit(EventCreated, now, CreatedData{Source: row.Source, ScheduledFor: row.ScheduledFor.UTC(), NextAttemptAt: row.NextAttemptAt.UTC()})
	return ch
}

// Reschedule stores an edit of a pending row: next is the row as edited;
// its lifecycle fields (status, version, event sequence, last change) are
// taken from row, the row as read. It emits rescheduled.
func Reschedule(row, next Communication, now time.Time) (Change, error) {
	next.Status, next.Version, next.EventSeq, next.UpdatedAt = row.Status, row.Version, row.EventSeq, row.UpdatedAt
	ch, now, err := begin(next, TransitionReschedule, now, StatusPending)
	if err != nil {
		return Change{}, err
	}
	ch.Before = &row // the edit starts from the stored row, not from next
	ch.emit(EventRescheduled, now, RescheduledData{Changed: ChangedFields(row, next),
		ScheduledFor: next.ScheduledFor.UTC(), NextAttemptAt: next.NextAttemptAt.UTC()})
	return ch, nil
}

// ChangedFields lists what differs between two versions of a row among
// what an edit can change, by the create body's field names, in a fixed
// order: scheduled_for, timezone, respect_business_hours, payload,
// cancel_policy, contact_id, customer_id, deal_id, related_entity_type,
// related_entity_id. An empty list means the edit changes nothing.
func ChangedFields(a, b Communication) []string {
	changed := []string{}
	add := func(name string, differs bool) {
		if differs {
			changed = append(changed, name)
		}
	}
	add("scheduled_for", !a.ScheduledFor.Equal(b.ScheduledFor))
	add("timezone", a.Timezone != b.Timezone)
	add("respect_business_hours", a.RespectBusinessHours != b.RespectBusinessHours)
	add("payload", !bytes.Equal(a.Payload, b.Payload))
	add("cancel_policy", !bytes.Equal(a.CancelPolicy, b.CancelPolicy))
	add("contact_id", a.ContactID != b.ContactID)
	add("customer_id", a.CustomerID != b.CustomerID)
	add("deal_id", a.DealID != b.DealID)
	add("related_entity_type", a.RelatedEntityType != b.RelatedEntityType)
	add("related_entity_id", a.RelatedEntityID != b.RelatedEntityID)
	return changed
}

// Cancel cancels a pending row for reason. It emits cancelled.
func Cancel(row Communication, reason CancelReason, now time.Time) (Change, error) {
	ch, now, err := begin(row, TransitionCancel, now, StatusPending)
	if err != nil {
		return Change{}, err
	}
	ch.cancel(reason, now)
	return ch, nil
}

func (ch *Change) cancel(reason CancelReason, now time.Time) {
	ch.Row.Status = StatusCancelled
	ch.Row.CancelledAt = &now
	ch.Row.CancelReason = reason
	ch.emit(EventCancelled, now, CancelledData{Reason: reason})
}

// Expire cancels a pending row that came due at dueAt and is now more than
// its cancel_policy.max_delay_minutes late. It emits expired, then
// cancelled with reason expired.
func Expire(row Communication, dueAt time.Time, maxDelayMinutes int, now time.Time) (Change, error) {
	ch, now, err := begin(row, TransitionExpire, now, StatusPending)
	if err != nil {
		return Change{}, err
	}
	late := now.Sub(dueAt)
	ch.Row.LastError = &LastError{Code: "expired",
		Message: fmt.Sprintf("not sent: %s late, more than cancel_policy.max_delay_minutes (%d)", late.Round(time.Second), maxDelayMinutes)}
	ch.emit(EventExpired, now, ExpiredData{DueAt: dueAt.UTC(), LateSeconds: late.Seconds(), MaxDelayMinutes: maxDelayMinutes})
	ch.cancel(CancelExpired, now)
	return ch, nil
}

// Defer moves a due pending row to next (the next instant its business
// hours and quiet hours allow), for reason. It emits deferred.
func Defer(row Communication, reason DeferReason, next, now time.Time) (Change, error) {
	ch, now, err := begin(row, TransitionDefer, now, StatusPending)
	if err != nil {
		return Change{}, err
	}
	ch.Row.NextAttemptAt = next
	ch.emit(EventDeferred, now, DeferredData{Reason: reason, NextAttemptAt: next.UTC()})
	return ch, nil
}

// Claim takes a pending row for its next attempt, leased until leaseUntil:
// processing, attempt_count+1. It emits attempt_started.
func Claim(row Communication, leaseUntil, now time.Time) (Change, error) {
	ch, now, err := begin(row, TransitionClaim, now, StatusPending)
	if err != nil {
		return Change{}, err
	}
	ch.Row.Status = StatusProcessing
	ch.Row.AttemptCount++
	ch.Row.LeaseUntil = leaseUntil
	ch.emit(EventAttemptStarted, now, AttemptData{Attempt: ch.Row.AttemptCount})
	return ch, nil
}

// RecordSent records that the provider accepted an email or SMS: sent. It
// emits sent.
func RecordSent(row Communication, providerMessageID string, now time.Time) (Change, error) {
	ch, now, err := begin(row, TransitionRecordSent, now, StatusProcessing)
	if err != nil {
		return Change{}, err
	}
	ch.Row.Status = StatusSent
	ch.sent(providerMessageID, now)
	ch.Row.Delivery = Delivery{Status: DeliveryAccepted, At: now}
	return ch, nil
}

func (ch *Change) sent(providerMessageID string, now time.Time) {
	ch.Row.LeaseUntil = time.Time{}
	ch.Row.ProviderMessageID = providerMessageID
	ch.Row.SentAt = &now
	ch.Row.LastError = nil
	ch.emit(EventSent, now, SentData{Attempt: ch.Row.AttemptCount, ProviderMessageID: providerMessageID})
}

// RecordCallPlaced records that the voice provider placed a call (callID):
// the row stays processing until its outcome arrives, or outcomeBy passes
// and the sweeper declares no_answer. It emits sent.
func RecordCallPlaced(row Communication, callID string, outcomeBy, now time.Time) (Change, error) {
	ch, now, err := begin(row, TransitionRecordCallPlaced, now, StatusProcessing)
	if err != nil {
		return Change{}, err
	}
	if row.Channel != ChannelVoice || row.ProviderMessageID != "" {
		return Change{}, &TransitionError{Transition: TransitionRecordCallPlaced, Status: row.Status, From: []Status{StatusProcessing}}
	}
	ch.sent(callID, now)
	ch.Row.LeaseUntil = outcomeBy
	return ch, nil
}

// RecordTransientFailure records an attempt that failed for a passing
// reason: back to pending at retryAt while attempts remain (attempt_failed
// with retry_at), else failed (attempt_failed, then failed).
func RecordTransientFailure(row Communication, e LastError, retryAt, now time.Time) (Change, error) {
	ch, now, err := begin(row, TransitionRecordTransientFailure, now, StatusProcessing)
	if err != nil {
		return Change{}, err
	}
	ch.retryOrFail(e, retryAt, now)
	return ch, nil
}

func (ch *Change) retryOrFail(e LastError, retryAt, now time.Time) {
	ch.Row.LeaseUntil = time.Time{}
	if ch.Row.AttemptCount < ch.Row.MaxAttempts {
		ch.Row.Status = StatusPending
		ch.Row.NextAttemptAt = retryAt
		ch.Row.LastError = &e
		at := retryAt.UTC()
		ch.emit(EventAttemptFailed, now, AttemptFailedData{Attempt: ch.Row.AttemptCount, Error: e, RetryAt: &at})
		return
	}
	ch.emit(EventAttemptFailed, now, AttemptFailedData{Attempt: ch.Row.AttemptCount, Error: e})
	final := LastError{Code: e.Code, Message: fmt.Sprintf("%s (gave up after %d attempts)", e.Message, ch.Row.AttemptCount)}
	ch.fail(final, now)
}

func (ch *Change) fail(e LastError, now time.Time) {
	ch.Row.Status = StatusFailed
	ch.Row.LeaseUntil = time.Time{}
	ch.Row.LastError = &e
	ch.emit(EventFailed, now, FailedData{Error: e})
}

// RecordPermanentFailure fails a row for good: an attempt that retrying
// cannot fix (processing: attempt_failed, then failed), or a pending row
// that cannot be sent at all (failed only).
func RecordPermanentFailure(row Communication, e LastError, now time.Time) (Change, error) {
	ch, now, err := begin(row, TransitionRecordPermanentFailure, now, StatusProcessing, StatusPending)
	if err != nil {
		return Change{}, err
	}
	if row.Status == StatusProcessing {
		ch.emit(EventAttemptFailed, now, AttemptFailedData{Attempt: row.AttemptCount, Error: e, Permanent: true})
	}
	ch.fail(e, now)
	return ch, nil
}

// ReleaseExpiredLease settles a processing row whose lease ran out (the
// dispatcher stopped mid-attempt) and whose attempt no provider record
// shows as sent (else SettleAttempt). An email or SMS is retried at now as
// the next attempt while attempts remain (else failed), code lease_expired. A
// voice call that was being placed may have been placed, and nobody is
// called twice for one attempt: it fails as outcome_unknown. (A voice call
// known to be placed is settled by RecordOutcome instead.)
func ReleaseExpiredLease(row Communication, now time.Time) (Change, error) {
	ch, now, err := begin(row, TransitionReleaseExpiredLease, now, StatusProcessing)
	if err != nil {
		return Change{}, err
	}
	if row.Channel == ChannelVoice {
		e := LastError{Code: "outcome_unknown",
			Message: fmt.Sprintf("the dispatcher stopped during attempt %d; the call may have been placed, so it is not redialled", row.AttemptCount)}
		ch.emit(EventAttemptFailed, now, AttemptFailedData{Attempt: row.AttemptCount, Error: e, Permanent: true})
		ch.fail(e, now)
		return ch, nil
	}
	ch.retryOrFail(LastError{Code: "lease_expired",
		Message: fmt.Sprintf("attempt %d did not finish within its lease, and no record of the provider shows it was sent", row.AttemptCount)}, now, now)
	return ch, nil
}

// ReleaseUnsent gives back a claimed attempt that never reached the
// provider because our own infrastructure failed first (the dev sink could
// not write its outbox, a full disk): the row is pending again at retryAt
// and the attempt is not counted (attempt_count goes back to what it was
// before the claim), so an outage of ours never uses up a row's attempts.
// It emits attempt_failed with retry_at and counted false.
func ReleaseUnsent(row Communication, e LastError, retryAt, now time.Time) (Change, error) {
	ch, now, err := begin(row, TransitionReleaseUnsent, now, StatusProcessing)
	if err != nil {
		return Change{}, err
	}
	ch.Row.Status = StatusPending
	ch.Row.LeaseUntil = time.Time{}
	ch.Row.NextAttemptAt = retryAt
	ch.Row.LastError = &e
	ch.Row.AttemptCount = max(row.AttemptCount-1, 0)
	at, counted := retryAt.UTC(), false
	ch.emit(EventAttemptFailed, now, AttemptFailedData{Attempt: row.AttemptCount, Error: e, RetryAt: &at, Counted: &counted})
	return ch, nil
}

// RecordCallEnded records a placed call's end-of-call report o (basis
// call_ended) while the decision waits for the provider's analysis: the row
// stays processing, with o as its provisional outcome, until decideBy (its
// lease and next_attempt_at, when a fire of the new token decides from o).
// It emits call_ended. A row that already has an outcome cannot take it.
func RecordCallEnded(row Communication, o Outcome, decideBy, now time.Time) (Change, error) {
	ch, now, err := begin(row, TransitionRecordCallEnded, now, StatusProcessing)
	if err != nil {
		return Change{}, err
	}
	if row.Channel != ChannelVoice || row.ProviderMessageID == "" || row.Outcome != nil {
		return Change{}, &TransitionError{Transition: TransitionRecordCallEnded, Status: row.Status, From: []Status{StatusProcessing}}
	}
	o = Decide(o)
	o.Basis = BasisCallEnded
	ch.Row.Outcome = &o
	ch.Row.LeaseUntil = decideBy
	ch.Row.NextAttemptAt = decideBy
	ch.emit(EventCallEnded, now, CallEndedData{Connected: o.Connected, TalkSeconds: o.TalkSeconds, TalkSecondsSource: o.TalkSecondsSource,
		CallSeconds: o.CallSeconds, EndedReason: o.EndedReason, DecideBy: decideBy.UTC()})
	return ch, nil
}

// RecordOutcome records a placed call's outcome (decided by Decide): sent,
// with the outcome. It emits outcome_recorded; with followUp (the
// cadence's next attempt, built by the caller) it also emits
// follow_up_created and creates the follow-up in the same write — already
// cancelled for cancelFollowUp when that is set (an event its
// cancel_policy lists came before it existed: created, then cancelled).
func RecordOutcome(row Communication, o Outcome, followUp *Communication, cancelFollowUp CancelReason, now time.Time) (Change, error) {
	ch, now, err := begin(row, TransitionRecordOutcome, now, StatusProcessing)
	if err != nil {
		return Change{}, err
	}
	if row.Channel != ChannelVoice || row.ProviderMessageID == "" {
		return Change{}, &TransitionError{Transition: TransitionRecordOutcome, Status: row.Status, From: []Status{StatusProcessing}}
	}
	o = Decide(o)
	ch.Row.Status = StatusSent
	ch.Row.Outcome = &o
	ch.Row.LeaseUntil = time.Time{}
	ch.emit(EventOutcomeRecorded, now, OutcomeRecordedData{Connected: o.Connected, TalkSeconds: o.TalkSeconds,
		TalkSecondsSource: o.TalkSecondsSource, CallSeconds: o.CallSeconds, EndedReason: o.EndedReason, InVoicemail: o.InVoicemail,
		Basis: o.Basis, Decision: o.Decision})
	if followUp != nil {
		ins := Create(*followUp, now)
		if cancelFollowUp != "" {
			ins.cancel(cancelFollowUp, now)
		}
		ch.Insert = &ins
		attempt := 0
		if ins.Row.Cadence != nil {
			attempt = ins.Row.Cadence.Attempt
		}
		ch.emit(EventFollowUpCreated, now, FollowUpCreatedData{FollowUpID: ins.Row.ID, Attempt: attempt, NextAttemptAt: ins.Row.NextAttemptAt.UTC()})
	}
	return ch, nil
}
