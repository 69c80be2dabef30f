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
// count as a real conversation: it ends the cadence.
const TalkThreshold = 10.0 // seconds

// cadenceNamespace derives follow-up ids: one id per root and attempt, so
// creating a follow-up twice (duplicate webhooks, retries) creates one row.
var cadenceNamespace = uuid.MustParse("6f0c7c8e-2b1d-4e5a-9b3c-8d7e6f5a4b3c")

// FollowUpID is the id of attempt n of the cadence rooted at rootID.
func FollowUpID(rootID string, attempt int) string {
	return uuid.NewSHA1(cadenceNamespace, []byte(rootID+"#"+strconv.Itoa(attempt))).String()
}

// OutcomeResult says what RecordOutcome did.
type OutcomeResult struct {
	// Recorded is false when the row already had its outcome (a duplicate
	// or late event): the first outcome stands.
	Recorded bool
	// FollowUpID is the next attempt of the cadence, when there is one.
	FollowUpID string
}

// RecordOutcome stores what the provider reported about a placed call and
// takes the cadence's next step in the same write: a real conversation (the
// contact spoke at least TalkThreshold seconds) ends it; otherwise, while
// attempts remain, a new pending row is created at the call's start plus
// the configured delay (comms.RecordOutcome emits outcome_recorded and
// follow_up_created, and the follow-up's created). It is idempotent: the
// first outcome stands, and the follow-up has a deterministic id, so
// duplicate and out-of-order events change nothing twice. An unknown row or
// a call id that is not the row's is ErrNotFound.
func (d *Dispatcher) RecordOutcome(ctx context.Context, companyID, id, callID string, o comms.Outcome) (OutcomeResult, error) {
	for range 5 {
		row, err := d.store.GetCommunication(ctx, companyID, id)
		if err != nil {
			return OutcomeResult{}, fmt.Errorf("store.GetCommunication: %w", err)
		}
		if row.Channel != comms.ChannelVoice || callID == "" || row.ProviderMessageID != callID {
			return OutcomeResult{}, fmt.Errorf("dispatch.RecordOutcome: call %q is not row %s's current call: %w", callID, id, comms.ErrNotFound)
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
		now := d.clock()
		next := row
		next.Outcome = &o
		var followUp *comms.Communication
		if continues(next) {
			if followUp, err = d.nextAttempt(ctx, next); err != nil {
				return OutcomeResult{}, err
			}
		}
		ch, err := comms.RecordOutcome(row, o, followUp, now)
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
		res := OutcomeResult{Recorded: true}
		if ch.Insert != nil {
			res.FollowUpID = ch.Insert.Row.ID
			d.log.InfoContext(ctx, "follow-up created", "communication_id", row.ID, "follow_up_id", res.FollowUpID,
				"attempt", ch.Insert.Row.Cadence.Attempt, "next_attempt_at", ch.Insert.Row.NextAttemptAt)
			_ = d.arm(ctx, ch.Insert.Row)
		}
		return res, nil
	}
	return OutcomeResult{}, fmt.Errorf("dispatch.RecordOutcome: row %s kept changing: %w", id, comms.ErrConflict)
}

// continues reports whether a call with this outcome leads to another
// attempt of its cadence: no real conversation, and attempts left.
func continues(row comms.Communication) bool {
	return row.Cadence != nil && row.Outcome != nil && row.Outcome.TalkSeconds < TalkThreshold &&
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
