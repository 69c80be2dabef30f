package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// SweepResult says what one sweep did.
type SweepResult struct {
	// Refired pending rows whose fire was overdue (presumed lost).
	Refired int
	// Released email/SMS rows whose lease expired, sent again: as the next
	// attempt, or uncounted when a complete ledger shows the attempt was
	// never sent (given back).
	Released int
	// Unknown voice rows whose lease expired: failed as outcome_unknown.
	Unknown int
	// NoOutcome voice calls placed whose outcome never arrived and that
	// the provider does not know as ended: no_answer.
	NoOutcome int
	// Looked voice calls placed whose outcome never arrived by webhook and
	// that the provider's record (get-call) settled.
	Looked int
	// Decided voice calls whose analysis never came, decided from their
	// end-of-call report.
	Decided int
	// Exhausted rows whose lease expired on their last attempt.
	Exhausted int
	// Settled email/SMS rows whose lease expired and whose attempt the
	// provider's record shows as sent: recorded as sent, not resent.
	Settled int
	// Waiting email/SMS rows whose lease expired less than SettleWait ago
	// with no provider record yet: left for a later sweep.
	Waiting int
}

// Sweep repairs what lost fires and crashes leave behind: pending rows more
// than SweepGrace overdue are fired now; processing rows whose lease
// expired (SweepGrace ago) are released through the lifecycle's
// ReleaseExpiredLease (email, SMS: settled from the provider's record of
// the attempt when it shows the send, else the next attempt; voice:
// outcome_unknown, as nobody is called twice for one attempt); a placed
// call whose outcome never came within OutcomeTimeout is settled from the
// provider's record of it (CallLookup: Retell's get-call), and declared
// no_answer only when the provider does not know it as ended (and its
// cadence goes on); a call whose analysis never came is decided from its
// end-of-call report. Each repair logs one "sweep repair" line. Run it every minute.
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
			d.logRepair(ctx, row, "refired")
			if err := d.refire(ctx, row); err != nil {
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

// refire hands on the fire of a pending row the sweep repaired: armed on
// the timer for the row's next_attempt_at when Config.SweepEnqueues (the
// dispatch queue on AWS: the send then runs in the dispatch function,
// under its concurrency limit), else handled here and now.
func (d *Dispatcher) refire(ctx context.Context, row comms.Communication) error {
	if !d.cfg.SweepEnqueues {
		return d.Handle(ctx, comms.FireOf(row))
	}
	if err := d.timer.Arm(ctx, comms.FireOf(row), row.NextAttemptAt); err != nil {
		// The row stays pending and overdue: the next sweep arms it again.
		return fmt.Errorf("timer.Arm: %w", err)
	}
	return nil
}

// logRepair writes the one line of a sweep repair: message "sweep repair"
// with communication_id, company_id, channel, attempt and action.
func (d *Dispatcher) logRepair(ctx context.Context, row comms.Communication, action string) {
	d.log.LogAttrs(ctx, slog.LevelInfo, "sweep repair",
		slog.String("communication_id", row.ID), slog.String("company_id", row.CompanyID),
		slog.String("channel", string(row.Channel)), slog.Int("attempt", row.AttemptCount), slog.String("action", action))
}

func (d *Dispatcher) expireLease(ctx context.Context, row comms.Communication, res *SweepResult) error {
	if row.AwaitingAnalysis() {
		// The call ended and its decide_by passed (its fire was lost):
		// decide from the end-of-call report.
		res.Decided++
		d.logRepair(ctx, row, "decided_without_analysis")
		return d.decideFromCallEnded(ctx, row)
	}
	if row.Channel == comms.ChannelVoice && row.ProviderMessageID != "" {
		return d.settleCall(ctx, row, res)
	}
	if row.Channel != comms.ChannelVoice {
		settled, err := d.settleUncertain(ctx, row, res)
		if settled || err != nil {
			return err
		}
		if d.ledger != nil && d.ledger.Complete() {
			// The provider's complete record (the dev outbox) has no line
			// of the attempt: it never reached the provider — our own
			// failure, such as a full disk — and is not counted.
			return d.giveBackUnsent(ctx, row, res, "given_back", fmt.Sprintf(
				"attempt %d never reached the provider before its lease expired; not counted as an attempt", row.AttemptCount))
		}
	}
	stored, written, err := d.write(ctx, "release the lease")(comms.ReleaseExpiredLease(row, d.clock()))
	if !written {
		return err // the attempt finished after all, or another sweeper won
	}
	switch {
	case row.Channel == comms.ChannelVoice:
		res.Unknown++
		d.logRepair(ctx, stored, "outcome_unknown")
	case stored.Status == comms.StatusPending:
		res.Released++
		d.logRepair(ctx, stored, "released")
		return d.refire(ctx, stored)
	default:
		res.Exhausted++
		d.logRepair(ctx, stored, "exhausted")
	}
	d.stats.Failed.Add(1)
	return nil
}

// settleUncertain handles an email or SMS attempt whose lease expired with
// no recorded result: the send may or may not have happened, and neither
// SES nor SNS takes an idempotency key, so it is settled from the
// provider's own record before anything is sent again. With a ledger the
// record is asked: found, the row is recorded as sent (settled late).
// Without one, the sweeper waits SettleWait past the lease for the
// provider's report (SES SEND, through package feedback) to settle it.
// settled is true when the row needs nothing more from this sweep.
func (d *Dispatcher) settleUncertain(ctx context.Context, row comms.Communication, res *SweepResult) (settled bool, err error) {
	if d.ledger != nil {
		id, found, err := d.ledger.FindAttempt(ctx, row)
		if err != nil {
			return true, fmt.Errorf("ledger.FindAttempt: %w", err)
		}
		if found {
			stored, written, err := d.write(ctx, "settle the attempt")(comms.SettleAttempt(row, id, d.clock()))
			if written {
				res.Settled++
				d.stats.Settled.Add(1)
				d.logRepair(ctx, row, "settled")
				if n, ok := d.ledger.(SettledNotifier); ok {
					n.AttemptSettled(ctx, stored)
				}
			}
			return true, err
		}
		if d.ledger.Complete() {
			return false, nil
		}
	}
	if d.clock().Before(row.LeaseUntil.Add(d.cfg.SettleWait)) {
		res.Waiting++
		return true, nil
	}
	return false, nil
}

// SettleOrphans settles, at once, every attempt a previous process of this
// deployment left in flight: processing rows whose lease names another
// instance (LeaseOwner), whatever their lease's expiry. Call it at start-up,
// before this process claims anything, and only where no other process can
// be dispatching from the same store (the embedded mode holds a lock on its
// data directory): the lease's owner is then known to be gone, and waiting
// for its lease and the sweeper's grace (minutes) would only delay the row.
// Each is settled as the sweeper settles an expired lease — from the
// provider's record when it shows the send — except that, with a complete
// ledger (the dev outbox), an attempt it does not show was provably never
// sent: it is given back uncounted (comms.ReleaseUnsent) and sent now. A
// voice call in flight is never redialled (outcome_unknown), as in the sweep.
func (d *Dispatcher) SettleOrphans(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	var rows []comms.Communication
	var err error
	if pr, ok := d.store.(ProcessingReader); ok {
		rows, err = pr.ProcessingCommunications(ctx, 1<<30)
	} else {
		rows, err = d.store.DueCommunications(ctx, d.clock().AddDate(10, 0, 0), 1<<30)
	}
	if err != nil {
		return res, fmt.Errorf("store: listing processing rows: %w", err)
	}
	var errs []error
	for _, row := range rows {
		if row.Status != comms.StatusProcessing || row.LeaseOwner == "" || row.LeaseOwner == d.instance {
			continue
		}
		if row.Channel != comms.ChannelVoice && d.ledger != nil && d.ledger.Complete() {
			settled, err := d.settleUncertain(ctx, row, &res)
			if err == nil && !settled {
				err = d.giveBackUnsent(ctx, row, &res, "orphan_given_back", fmt.Sprintf(
					"the process that claimed attempt %d stopped before sending it; not counted as an attempt", row.AttemptCount))
			}
			if err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if err := d.expireLease(ctx, row, &res); err != nil {
			errs = append(errs, err)
		}
	}
	return res, errors.Join(errs...)
}

// giveBackUnsent gives an attempt the provider's complete record shows
// was never sent back uncounted (comms.ReleaseUnsent, not_sent with
// message) and sends it now; res.Released counts it, and its repair is
// logged with action.
func (d *Dispatcher) giveBackUnsent(ctx context.Context, row comms.Communication, res *SweepResult, action, message string) error {
	e := comms.LastError{Code: "not_sent", Message: message}
	stored, written, err := d.write(ctx, "give back an attempt never sent")(comms.ReleaseUnsent(row, e, d.clock(), d.clock()))
	if !written {
		return err
	}
	res.Released++
	d.stats.Unsent.Add(1)
	d.logRepair(ctx, stored, action)
	return d.Handle(ctx, comms.FireOf(stored))
}

// Rearm arms the fire of every pending row, so a restart loses nothing, for
// a timer that holds every fire. (The embedded timer does not need it: it
// reads the rows due within its horizon from the store itself.) It returns
// how many it armed.
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

// settleCall settles a placed call whose outcome never came by webhook
// (OutcomeTimeout passed): the provider's record of the call is asked
// first. Ended there → its outcome (basis provider_lookup). Unknown to the
// provider, or no lookup configured → no_answer (basis no_report). Still
// ongoing, or the provider not answering → left for later sweeps until
// another OutcomeTimeout has passed, then no_answer.
func (d *Dispatcher) settleCall(ctx context.Context, row comms.Communication, res *SweepResult) error {
	o, action := comms.Outcome{Connected: false, EndedReason: "no_answer", Basis: comms.BasisNoReport}, "no_answer"
	if d.calls != nil {
		rec, err := d.calls.LookupCall(ctx, row.ProviderMessageID)
		giveUp := !d.clock().Before(row.LeaseUntil.Add(d.cfg.OutcomeTimeout))
		switch {
		case err != nil && !giveUp:
			d.log.WarnContext(ctx, "voice call lookup failed; retried at the next sweep", "communication_id", row.ID,
				"call_id", row.ProviderMessageID, "error", err.Error())
			res.Waiting++
			return nil
		case err == nil && rec.Found && rec.Ended:
			o, action = rec.Outcome, "settled_by_provider"
			o.Basis = comms.BasisProviderLookup
		case err == nil && rec.Found && !giveUp:
			res.Waiting++ // still ringing or talking
			return nil
		}
	}
	out, err := d.RecordOutcome(ctx, row.CompanyID, row.ID, row.ProviderMessageID, o)
	if out.Recorded {
		if action == "no_answer" {
			res.NoOutcome++
		} else {
			res.Looked++
		}
		d.logRepair(ctx, row, action)
	}
	if errors.Is(err, comms.ErrNotFound) {
		return nil
	}
	return err
}
