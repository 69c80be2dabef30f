package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// SweepResult says what one sweep did.
type SweepResult struct {
	// Refired pending rows whose fire was overdue (presumed lost).
	Refired int
	// Released email/SMS rows whose lease expired, retried as the next attempt.
	Released int
	// Unknown voice rows whose lease expired: failed as outcome_unknown.
	Unknown int
	// NoOutcome voice calls placed whose outcome never arrived: no_answer.
	NoOutcome int
	// Exhausted rows whose lease expired on their last attempt.
	Exhausted int
}

// Sweep repairs what lost fires and crashes leave behind: pending rows more
// than SweepGrace overdue are fired now; processing rows whose lease
// expired (SweepGrace ago) become their next attempt (email, SMS) or fail
// as outcome_unknown (voice: the call may have been placed, and nobody is
// called twice for one attempt); a placed call whose outcome never came
// within OutcomeTimeout is declared no_answer (and its cadence goes on).
// Run it every minute.
func (d *Dispatcher) Sweep(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	rows, err := d.store.DueCommunications(ctx, d.clock().Add(-d.cfg.SweepGrace), d.cfg.SweepBatch)
	if err != nil {
		return res, fmt.Errorf("store.DueCommunications: %w", err)
	}
	var errs []error
	for _, row := range rows {
		switch row.Status {
		case comms.StatusPending:
			res.Refired++
			if err := d.Handle(ctx, comms.FireOf(row)); err != nil {
				errs = append(errs, err)
			}
		case comms.StatusProcessing:
			if err := d.expireLease(ctx, row, &res); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return res, errors.Join(errs...)
}

func (d *Dispatcher) expireLease(ctx context.Context, row comms.Communication, res *SweepResult) error {
	if row.Channel == comms.ChannelVoice && row.ProviderMessageID != "" {
		// The call was placed and no outcome came: it was not answered.
		res.NoOutcome++
		_, err := d.RecordOutcome(ctx, row.CompanyID, row.ID, row.ProviderMessageID,
			comms.Outcome{Connected: false, TalkSeconds: 0, EndedReason: "no_answer"})
		if errors.Is(err, comms.ErrNotFound) {
			return nil
		}
		return err
	}
	now := d.clock()
	next := row
	next.LeaseUntil = time.Time{}
	next.UpdatedAt = now
	next.Token = comms.NewToken()
	switch {
	case row.Channel == comms.ChannelVoice:
		res.Unknown++
		next.Status = comms.StatusFailed
		next.LastError = &comms.LastError{Code: "outcome_unknown",
			Message: fmt.Sprintf("the dispatcher stopped during attempt %d; the call may have been placed, so it is not redialled", row.AttemptCount)}
	case row.AttemptCount < row.MaxAttempts:
		res.Released++
		next.Status = comms.StatusPending
		next.NextAttemptAt = now
		next.LastError = &comms.LastError{Code: "lease_expired",
			Message: fmt.Sprintf("attempt %d did not finish within its lease; retrying", row.AttemptCount)}
	default:
		res.Exhausted++
		next.Status = comms.StatusFailed
		next.LastError = &comms.LastError{Code: "lease_expired",
			Message: fmt.Sprintf("the last attempt (%d) did not finish within its lease", row.AttemptCount)}
	}
	stored, _, err := d.store.UpdateCommunication(ctx, next, false)
	if errors.Is(err, comms.ErrConflict) {
		return nil // the attempt finished after all, or another sweeper won
	}
	if err != nil {
		return fmt.Errorf("store.UpdateCommunication: %w", err)
	}
	if stored.Status == comms.StatusPending {
		return d.Handle(ctx, comms.FireOf(stored))
	}
	d.stats.Failed.Add(1)
	return nil
}

// Rearm arms the fire of every pending row: what the in-process timer does
// at start, so a restart loses nothing. It returns how many it armed.
func (d *Dispatcher) Rearm(ctx context.Context) (int, error) {
	rows, err := d.store.DueCommunications(ctx, d.clock().AddDate(10, 0, 0), 1<<30)
	if err != nil {
		return 0, fmt.Errorf("store.DueCommunications: %w", err)
	}
	n := 0
	for _, row := range rows {
		if row.Status == comms.StatusPending {
			_ = d.arm(ctx, row)
			n++
		}
	}
	return n, nil
}
