package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// TalkThreshold is how long the contact must speak, in total, for a call to
// count as a real conversation: it ends the cadence (comms.TalkThreshold).
const TalkThreshold = comms.TalkThreshold // seconds

// cadenceNamespace derives follow-up ids: one id per root and attempt, so
// creating a follow-up twice (duplicate webhooks, retries) creates one row.
var cadenceNamespace = uuid.MustParse("6f0c7c8e-2b1d-4e5a-9b3c-8d7e6f5a4b3c")

// FollowUpID is the id of attempt n of the cadence rooted at rootID.
func FollowUpID(rootID string, attempt int) string {
	return uuid.NewSHA1(cadenceNamespace, []byte(rootID+"#"+strconv.Itoa(attempt))).String()
}

// OutcomeResult says what RecordOutcome or RecordCallEnded did.
type OutcomeResult struct {
	// Recorded is false when the row already had its outcome (a duplicate
	// or late event): the first outcome stands.
	Recorded bool
	// Waiting is true when call_ended was recorded and the decision waits
	// for the analysis until DecideBy.
	Waiting  bool
	DecideBy time.Time
	// FollowUpID is the next attempt of the cadence, when there is one.
	FollowUpID string
	// CancelledBy names the recorded event that cancelled the follow-up as
	// it was created ("" when it was not).
	CancelledBy string
}

// RecordCallEnded stores a placed call's end-of-call report (Retell's
// call_ended, which has no analysis yet) without deciding: the row stays
// processing with it as its provisional outcome (event call_ended) until
// the analysis arrives (RecordOutcome) or AnalysisGrace passes, when a
// fire of the product's timer decides from it. A report for a row that
// already ended or was decided changes nothing. An unknown row or a call
// id that is not the row's is ErrNotFound.
func (d *Dispatcher) RecordCallEnded(ctx context.Context, companyID, id, callID string, o comms.Outcome) (OutcomeResult, error) {
	for range 5 {
		row, err := d.placedCall(ctx, companyID, id, callID)
		if err != nil {
			return OutcomeResult{}, err
		}
		if row.Status != comms.StatusProcessing || row.Outcome != nil {
			return OutcomeResult{}, nil // decided already, or a duplicate call_ended
		}
		now := d.clock()
		o.Basis = comms.BasisCallEnded
		ch, err := comms.RecordCallEnded(row, o, now.Add(d.cfg.AnalysisGrace), now)
		if err != nil {
			return OutcomeResult{}, fmt.Errorf("dispatch.RecordCallEnded: %w", err)
		}
		stored, _, err := d.store.UpdateCommunication(ctx, ch, false)
		if errors.Is(err, comms.ErrConflict) {
			continue
		}
		if err != nil {
			return OutcomeResult{}, fmt.Errorf("store.UpdateCommunication: %w", err)
		}
		_ = d.arm(ctx, stored) // the decision's fire, at decide_by
		return OutcomeResult{Recorded: true, Waiting: true, DecideBy: stored.LeaseUntil}, nil
	}
	return OutcomeResult{}, fmt.Errorf("dispatch.RecordCallEnded: row %s kept changing: %w", id, comms.ErrConflict)
}

// placedCall reads a voice row and checks callID is its call.
func (d *Dispatcher) placedCall(ctx context.Context, companyID, id, callID string) (comms.Communication, error) {
	row, err := d.store.GetCommunication(ctx, companyID, id)
	if err != nil {
		return row, fmt.Errorf("store.GetCommunication: %w", err)
	}
	if row.Channel != comms.ChannelVoice || callID == "" || row.ProviderMessageID != callID {
		return row, fmt.Errorf("dispatch.placedCall: call %q is not row %s's current call: %w", callID, id, comms.ErrNotFound)
	}
	return row, nil
}

// decideFromCallEnded decides a call whose analysis did not come by its
// decide_by, from its end-of-call report (the fire of the timer, or the
// sweeper when that fire was lost).
func (d *Dispatcher) decideFromCallEnded(ctx context.Context, row comms.Communication) error {
	if d.clock().Add(d.cfg.Early).Before(row.LeaseUntil) {
		return d.arm(ctx, row) // early: wait the rest
	}
	res, err := d.RecordOutcome(ctx, row.CompanyID, row.ID, row.ProviderMessageID, *row.Outcome)
	if errors.Is(err, comms.ErrNotFound) {
		return nil
	}
	if res.Recorded {
		d.log.InfoContext(ctx, "voice outcome decided without analysis", "communication_id", row.ID,
			"decision", string(comms.Decide(*row.Outcome).Decision), "follow_up_id", res.FollowUpID)
	}
	return err
}

// RecordOutcome decides a placed call from what the provider reported
// (o.Basis says which report: the analysis, the end-of-call report after
// the grace period, the provider's record, or nothing) and takes the
// cadence's next step in the same write: a real conversation or an
// undialable number ends it (comms.Decide); otherwise, while attempts
// remain, a new pending row is created at the call's start plus the
// configured delay — or created cancelled (event:<name>) when an event its
// cancel_policy lists was recorded since the cadence began.
// comms.RecordOutcome emits outcome_recorded and follow_up_created. An
// analysis that follows call_ended is merged with it (comms.Merge). It is
// idempotent: the first decision stands, and the follow-up has a
// deterministic id, so duplicate and out-of-order events change nothing
// twice. An unknown row or a call id that is not the row's is ErrNotFound.
func (d *Dispatcher) RecordOutcome(ctx context.Context, companyID, id, callID string, o comms.Outcome) (OutcomeResult, error) {
	for range 5 {
		row, err := d.placedCall(ctx, companyID, id, callID)
		if err != nil {
			return OutcomeResult{}, err
		}
		if row.Status != comms.StatusProcessing {
			// A duplicate or late event (the first outcome stands), or the
			// row failed or was cancelled meanwhile: nothing follows.
			res := OutcomeResult{}
			if row.Status == comms.StatusSent && continues(row) {
				res.FollowUpID = FollowUpID(row.Cadence.RootID, row.Cadence.Attempt+1)
			}
			return res, nil
		}
		final := o
		if row.AwaitingAnalysis() && o.Basis != comms.BasisCallEnded {
			final = comms.Merge(*row.Outcome, o)
		}
		final = comms.Decide(final)
		now := d.clock()
		next := row
		next.Outcome = &final
		var (
			followUp *comms.Communication
			cancel   comms.CancelReason
			by       string
		)
		if continues(next) {
			if followUp, err = d.nextAttempt(ctx, next); err != nil {
				return OutcomeResult{}, err
			}
			if followUp != nil {
				ev, found, err := comms.CancellingEvent(ctx, d.store, *followUp, d.cadenceStart(ctx, row))
				if err != nil {
					return OutcomeResult{}, fmt.Errorf("comms.CancellingEvent: %w", err)
				}
				if found {
					cancel, by = comms.CancelOnEvent(ev.Name), ev.Name
				}
			}
		}
		ch, err := comms.RecordOutcome(row, final, followUp, cancel, now)
		if err != nil {
			return OutcomeResult{}, fmt.Errorf("dispatch.RecordOutcome: %w", err)
		}
		_, _, err = d.store.UpdateCommunication(ctx, ch, false)
		if errors.Is(err, comms.ErrConflict) {
			continue
		}
		if err != nil {
			return OutcomeResult{}, fmt.Errorf("store.UpdateCommunication: %w", err)
		}
		res := OutcomeResult{Recorded: true, CancelledBy: by}
		if ch.Insert != nil {
			res.FollowUpID = ch.Insert.Row.ID
			d.log.InfoContext(ctx, "follow-up created", "communication_id", row.ID, "follow_up_id", res.FollowUpID,
				"attempt", ch.Insert.Row.Cadence.Attempt, "next_attempt_at", ch.Insert.Row.NextAttemptAt,
				"status", string(ch.Insert.Row.Status), "cancel_reason", string(ch.Insert.Row.CancelReason))
			if ch.Insert.Row.Status == comms.StatusPending {
				_ = d.arm(ctx, ch.Insert.Row)
			}
		}
		return res, nil
	}
	return OutcomeResult{}, fmt.Errorf("dispatch.RecordOutcome: row %s kept changing: %w", id, comms.ErrConflict)
}

// cadenceStart is when the row's cadence began: its root's creation (the
// row's own when it is the root, has no cadence, or the root is gone).
// Events recorded since then cancel the cadence's later rows.
func (d *Dispatcher) cadenceStart(ctx context.Context, row comms.Communication) time.Time {
	if row.Cadence == nil || row.Cadence.RootID == row.ID {
		return row.CreatedAt
	}
	root, err := d.store.GetCommunication(ctx, row.CompanyID, row.Cadence.RootID)
	if err != nil {
		return row.CreatedAt
	}
	return root.CreatedAt
}

// cancelOnRecordedEvent cancels a due row when an event its
// cancel_policy.cancel_on lists was recorded about one of its entities
// since its cadence began (an event posted while the row did not exist
// yet, or was busy): cancelled with reason event:<name>, not sent. done is
// true when the fire is settled.
func (d *Dispatcher) cancelOnRecordedEvent(ctx context.Context, row comms.Communication, now time.Time) (done bool, err error) {
	if len(row.Policy().CancelOn) == 0 {
		return false, nil
	}
	ev, found, err := comms.CancellingEvent(ctx, d.store, row, d.cadenceStart(ctx, row))
	if err != nil {
		return true, fmt.Errorf("comms.CancellingEvent: %w", err)
	}
	if !found {
		return false, nil
	}
	_, written, err := d.write(ctx, "cancel on a recorded event")(comms.Cancel(row, comms.CancelOnEvent(ev.Name), now))
	if written {
		d.log.InfoContext(ctx, "cancelled by a recorded event", "communication_id", row.ID, "event", ev.Name,
			"event_id", ev.ID, "event_at", ev.At)
	}
	return true, err
}

// continues reports whether a call with this outcome leads to another
// attempt of its cadence: the decision is retry, and attempts are left.
func continues(row comms.Communication) bool {
	return row.Cadence != nil && row.Outcome != nil && comms.Decide(*row.Outcome).Decision == comms.DecisionRetry &&
		row.Cadence.Attempt < row.Cadence.MaxAttempts && row.SentAt != nil
}

// nextAttempt builds the cadence's next attempt after row's outcome (nil
// when the payload has no follow-ups left).
func (d *Dispatcher) nextAttempt(ctx context.Context, row comms.Communication) (*comms.Communication, error) {
	var p comms.VoicePayload
	if err := json.Unmarshal(row.Payload, &p); err != nil || p.FollowUps == nil {
		return nil, nil
	}
	fu := p.FollowUps
	n := row.Cadence.Attempt
	if n-1 >= len(fu.FollowUpDelays) {
		return nil, nil
	}
	at := row.SentAt.Add(time.Duration(fu.FollowUpDelays[n-1] * float64(time.Hour))).UTC().Truncate(time.Millisecond)
	vars := fu.DynamicVariables
	if vars == nil {
		vars = p.DynamicVariables
	}
	payload, err := json.Marshal(comms.VoicePayload{VoiceAgentOutboundConfigID: fu.VoiceAgentOutboundConfigID, ToNumber: fu.ToNumber,
		DynamicVariables: vars, Metadata: p.Metadata, FollowUps: fu})
	if err != nil {
		return nil, fmt.Errorf("dispatch.nextAttempt: %w", err)
	}
	next := &comms.Communication{
		ID: FollowUpID(row.Cadence.RootID, n+1), CompanyID: row.CompanyID, Channel: comms.ChannelVoice,
		ScheduledFor: at, NextAttemptAt: at, Timezone: row.Timezone, RespectBusinessHours: fu.RespectBusinessHours, Payload: payload,
		ContactID: first(fu.ContactID, row.ContactID), CustomerID: first(fu.CustomerID, row.CustomerID), DealID: first(fu.DealID, row.DealID),
		RelatedEntityType: row.RelatedEntityType, RelatedEntityID: row.RelatedEntityID, CancelPolicy: row.CancelPolicy,
		MaxAttempts: comms.ChannelVoice.DefaultMaxAttempts(), Source: comms.SourceCadence,
		Cadence: &comms.Cadence{RootID: row.Cadence.RootID, Attempt: n + 1, MaxAttempts: row.Cadence.MaxAttempts},
	}
	if err := d.placeFollowUp(ctx, next, fu.ToNumber); err != nil {
		return nil, err
	}
	return next, nil
}

// placeFollowUp decides where a follow-up's recipient is (the root's
// request timezone, else its own to_number's zones when the company takes
// them from numbers, else the company's) and moves its next_attempt_at to
// the first instant its business hours (when asked) and the voice quiet
// hours allow, as a create does.
func (d *Dispatcher) placeFollowUp(ctx context.Context, next *comms.Communication, toNumber string) error {
	co, err := d.store.GetCompany(ctx, next.CompanyID)
	if err != nil {
		return fmt.Errorf("store.GetCompany: %w", err)
	}
	set := co.Settings.WithDefaults()
	next.TimezoneSource, next.Timezones = comms.RecipientZones(next.Channel, next.Timezone, toNumber, set)
	if a := comms.NextAllowed(next.ScheduledFor, *next, set); !a.Never {
		next.NextAttemptAt = a.At
	} // else it is created as due and fails at dispatch, saying why
	return nil
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
