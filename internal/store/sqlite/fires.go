package sqlite

import (
	"context"
	"math"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
)

// rangeTS encodes [from, to) for a due query: a zero from is no lower
// bound, and times beyond what ts encodes are clamped.
func rangeTS(from, to time.Time) (lo, hi int64) {
	lo, hi = math.MinInt64, math.MaxInt64
	if !from.IsZero() {
		if n, ok := tsInRange(from); ok {
			lo = n
		} else if from.After(maxTS) {
			lo = math.MaxInt64
		}
	}
	if n, ok := tsInRange(to); ok {
		hi = n
	} else if to.Before(minTS) {
		hi = math.MinInt64
	}
	return lo, hi
}

// PendingFires returns the fires of the pending rows whose next_attempt_at
// is in [from, to) (a zero from: everything before to), of any company,
// earliest first, by the partial index communications_due_pending — and
// of the processing rows whose lease_until is in it (communications_due_
// processing), due then: a voice call awaiting its analysis is decided by
// a fire of its own token at decide_by (its lease's end), which must come
// even when it was armed beyond the timer's horizon; the fire of any other
// processing row is dropped by the dispatcher (the sweeper settles it).
// Each is comms.FireOf of its row, its DueAt the instant it is due. It reads
// only the columns a fire names: it is what the in-process timer loads, a
// slice of time at a time.
func (s *Store) PendingFires(ctx context.Context, from, to time.Time) ([]comms.Fire, error) {
	lo, hi := rangeTS(from, to)
	rows, err := s.r.QueryContext(ctx, `SELECT company_id, id, token, next_attempt_at AS at FROM communications
		WHERE status = 'pending' AND next_attempt_at >= ?1 AND next_attempt_at < ?2
		UNION ALL
		SELECT company_id, id, token, lease_until AS at FROM communications
		WHERE status = 'processing' AND lease_until >= ?1 AND lease_until < ?2
		ORDER BY at, company_id, id`, lo, hi)
	if err != nil {
		return nil, wrap("PendingFires", err)
	}
	fs, err := collect(rows, func(r scanner) (comms.Fire, error) {
		var f comms.Fire
		var at int64
		err := r.Scan(&f.CompanyID, &f.CommunicationID, &f.Token, &at)
		f.DueAt = fromTS(at)
		return f, err
	})
	return fs, wrap("PendingFires", err)
}

// PendingDeliveryFires returns the fires (webhooks.DeliveryFire) of the
// pending webhook deliveries whose next_attempt_at is in [from, to) (a zero
// from: everything before to), earliest first, by the partial index
// webhook_deliveries_due.
func (s *Store) PendingDeliveryFires(ctx context.Context, from, to time.Time) ([]comms.Fire, error) {
	lo, hi := rangeTS(from, to)
	rows, err := s.r.QueryContext(ctx, `SELECT company_id, endpoint_id, id, next_attempt_at FROM webhook_deliveries
		WHERE state = 'pending' AND next_attempt_at >= ? AND next_attempt_at < ?
		ORDER BY next_attempt_at, company_id, endpoint_id, id`, lo, hi)
	if err != nil {
		return nil, wrap("PendingDeliveryFires", err)
	}
	fs, err := collect(rows, func(r scanner) (comms.Fire, error) {
		var d webhooks.Delivery
		var at int64
		err := r.Scan(&d.CompanyID, &d.EndpointID, &d.ID, &at)
		d.NextAttemptAt = fromTS(at)
		return webhooks.DeliveryFire(d), err
	})
	return fs, wrap("PendingDeliveryFires", err)
}

// ProcessingCommunications returns up to limit processing rows of any
// company, earliest lease_until first, by the partial index
// communications_due_processing (dispatch.ProcessingReader): what start-up
// reads to settle a previous process's attempts, without the pending rows.
func (s *Store) ProcessingCommunications(ctx context.Context, limit int) ([]comms.Communication, error) {
	if limit < 1 {
		return nil, nil
	}
	rows, err := s.r.QueryContext(ctx, "SELECT "+strings.Join(commColumns, ", ")+" FROM communications"+
		" WHERE status = 'processing' ORDER BY lease_until, company_id, id LIMIT ?", limit)
	if err != nil {
		return nil, wrap("ProcessingCommunications", err)
	}
	cs, err := collect(rows, scanComm)
	return cs, wrap("ProcessingCommunications", err)
}
