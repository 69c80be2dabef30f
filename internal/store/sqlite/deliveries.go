package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
)

var _ webhooks.DeliveryStore = (*Store)(nil)

// migrationWebhookDeliveries creates the tables of status-webhook
// deliveries (docs/design.md §4.1). It is self-contained — no other
// migration refers to it — so it can take whatever place the list gives it.
//
//   - webhook_deliveries, keyed (company_id, endpoint_id, id): one message
//     of one event to one endpoint, its payload as sent (TEXT, byte for
//     byte), its attempts (JSON, the last webhooks.MaxStoredAttempts) and
//     its state; listed newest first through
//     webhook_deliveries_by_created, and swept through the partial index
//     webhook_deliveries_due on next_attempt_at of pending ones.
//   - webhook_fanout_cursors, keyed company_id: the company's event-feed
//     cursor up to which its events have been fanned out.
const migrationWebhookDeliveries = `
CREATE TABLE webhook_deliveries (
	company_id       TEXT    NOT NULL,
	endpoint_id      TEXT    NOT NULL,
	id               TEXT    NOT NULL,
	event_id         TEXT    NOT NULL,
	event_type       TEXT    NOT NULL,
	communication_id TEXT    NOT NULL,
	payload          TEXT,
	state            TEXT    NOT NULL,
	attempts         TEXT    NOT NULL,
	next_attempt_at  INTEGER NOT NULL,
	created_at       INTEGER NOT NULL,
	updated_at       INTEGER NOT NULL,
	version          INTEGER NOT NULL,
	PRIMARY KEY (company_id, endpoint_id, id)
) STRICT;
CREATE INDEX webhook_deliveries_by_created ON webhook_deliveries (company_id, endpoint_id, created_at, id);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, company_id, endpoint_id, id)
	WHERE state = 'pending';

CREATE TABLE webhook_fanout_cursors (
	company_id TEXT NOT NULL PRIMARY KEY,
	cursor     TEXT NOT NULL
) STRICT;
`

const deliveryColumns = `company_id, endpoint_id, id, event_id, event_type, communication_id, payload, state,
	attempts, next_attempt_at, created_at, updated_at, version`

func scanDelivery(row scanner) (webhooks.Delivery, error) {
	var (
		d                      webhooks.Delivery
		payload                sql.NullString
		attempts               string
		next, created, updated int64
	)
	if err := row.Scan(&d.CompanyID, &d.EndpointID, &d.ID, &d.EventID, &d.EventType, &d.CommunicationID, &payload,
		&d.State, &attempts, &next, &created, &updated, &d.Version); err != nil {
		return webhooks.Delivery{}, err
	}
	if payload.Valid {
		d.Payload = json.RawMessage(payload.String)
	}
	if err := json.Unmarshal([]byte(attempts), &d.Attempts); err != nil {
		return webhooks.Delivery{}, fmt.Errorf("delivery %s attempts: %w", d.ID, err)
	}
	if len(d.Attempts) == 0 {
		d.Attempts = nil
	}
	d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = fromTS(next), fromTS(created), fromTS(updated)
	return d, nil
}

// attemptsJSON encodes the attempts a delivery keeps, times in UTC.
func attemptsJSON(as []webhooks.Attempt) (string, error) {
	kept := webhooks.KeepAttempts(as)
	out := make([]webhooks.Attempt, len(kept))
	for i, a := range kept {
		a.At = a.At.UTC()
		out[i] = a
	}
	b, err := json.Marshal(out)
	return string(b), err
}

// nullText stores JSON as given, NULL when empty.
func nullText(m json.RawMessage) sql.NullString {
	if len(m) == 0 {
		return sql.NullString{}
	}
	return sql.NullString{String: string(m), Valid: true}
}

// FanOut inserts the deliveries not stored yet and moves the company's
// fan-out cursor, in one transaction (webhooks.DeliveryStore).
func (s *Store) FanOut(ctx context.Context, companyID, from, to string, ds []webhooks.Delivery) error {
	const op = "FanOut"
	if err := webhooks.CheckFanOut(companyID, to, ds); err != nil {
		return wrap(op, err)
	}
	err := inTx(ctx, s.w, func(tx *sql.Tx) error {
		var cur string
		err := tx.QueryRowContext(ctx, `SELECT cursor FROM webhook_fanout_cursors WHERE company_id = ?`, companyID).Scan(&cur)
		if err != nil && err != sql.ErrNoRows {
			return err
		}
		if cur != from {
			return fmt.Errorf("%w: the fan-out cursor is no longer the one read", comms.ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_fanout_cursors (company_id, cursor) VALUES (?, ?)
			ON CONFLICT (company_id) DO UPDATE SET cursor = excluded.cursor`, companyID, to); err != nil {
			return err
		}
		for _, d := range ds {
			attempts, err := attemptsJSON(d.Attempts)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (`+deliveryColumns+`)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
				ON CONFLICT (company_id, endpoint_id, id) DO NOTHING`,
				d.CompanyID, d.EndpointID, d.ID, d.EventID, string(d.EventType), d.CommunicationID, nullText(d.Payload),
				string(d.State), attempts, ts(d.NextAttemptAt), ts(d.CreatedAt), ts(d.UpdatedAt)); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap(op, err)
}

// FanOutCursor returns the company's fan-out cursor, "" when none.
func (s *Store) FanOutCursor(ctx context.Context, companyID string) (string, error) {
	var cur string
	err := s.r.QueryRowContext(ctx, `SELECT cursor FROM webhook_fanout_cursors WHERE company_id = ?`, companyID).Scan(&cur)
	if err == sql.ErrNoRows {
		return "", nil
	}
	return cur, wrap("FanOutCursor", err)
}

// GetDelivery returns one delivery of the company's endpoint.
func (s *Store) GetDelivery(ctx context.Context, companyID, endpointID, id string) (webhooks.Delivery, error) {
	d, err := scanDelivery(s.r.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries
		WHERE company_id = ? AND endpoint_id = ? AND id = ?`, companyID, endpointID, id))
	if err != nil {
		return webhooks.Delivery{}, wrap("GetDelivery", err)
	}
	return d, nil
}

// ListDeliveries returns the endpoint's deliveries newest first, by the
// index webhook_deliveries_by_created read backwards.
func (s *Store) ListDeliveries(ctx context.Context, companyID, endpointID string, f webhooks.DeliveryFilter) ([]webhooks.Delivery, bool, error) {
	const op = "ListDeliveries"
	var q strings.Builder
	q.WriteString(`SELECT ` + deliveryColumns + ` FROM webhook_deliveries WHERE company_id = ? AND endpoint_id = ?`)
	args := []any{companyID, endpointID}
	if f.State != "" {
		q.WriteString(" AND state = ?")
		args = append(args, string(f.State))
	}
	if f.After != "" {
		at, id, err := webhooks.ParseDeliveryCursor(f.After)
		if err != nil {
			return nil, false, wrap(op, err)
		}
		n, ok := tsInRange(at)
		if !ok {
			return nil, false, wrap(op, fmt.Errorf("%w: time out of range", comms.ErrBadCursor))
		}
		q.WriteString(" AND (created_at, id) < (?, ?)")
		args = append(args, n, id)
	}
	limit := f.Limit
	if limit < 1 || limit > maxLimit {
		limit = maxLimit
	}
	q.WriteString(" ORDER BY created_at DESC, id DESC LIMIT ?")
	args = append(args, limit+1)
	rows, err := s.r.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, false, wrap(op, err)
	}
	ds, err := collect(rows, scanDelivery)
	if err != nil {
		return nil, false, wrap(op, err)
	}
	if ds == nil {
		ds = []webhooks.Delivery{}
	}
	if len(ds) > limit {
		return ds[:limit], true, nil
	}
	return ds, false, nil
}

// UpdateDelivery writes the delivery's mutable fields on condition of its
// version.
func (s *Store) UpdateDelivery(ctx context.Context, d webhooks.Delivery) (webhooks.Delivery, error) {
	const op = "UpdateDelivery"
	if err := d.Check(); err != nil {
		return webhooks.Delivery{}, wrap(op, err)
	}
	attempts, err := attemptsJSON(d.Attempts)
	if err != nil {
		return webhooks.Delivery{}, wrap(op, err)
	}
	var out webhooks.Delivery
	err = inTx(ctx, s.w, func(tx *sql.Tx) error {
		var err error
		out, err = scanDelivery(tx.QueryRowContext(ctx, `UPDATE webhook_deliveries
			SET state = ?, attempts = ?, next_attempt_at = ?, updated_at = ?, version = version + 1
			WHERE company_id = ? AND endpoint_id = ? AND id = ? AND version = ?
			RETURNING `+deliveryColumns,
			string(d.State), attempts, ts(d.NextAttemptAt), ts(d.UpdatedAt), d.CompanyID, d.EndpointID, d.ID, d.Version))
		if err != sql.ErrNoRows {
			return err
		}
		var v int64
		if err := tx.QueryRowContext(ctx, `SELECT version FROM webhook_deliveries
			WHERE company_id = ? AND endpoint_id = ? AND id = ?`, d.CompanyID, d.EndpointID, d.ID).Scan(&v); err != nil {
			return err // sql.ErrNoRows: ErrNotFound
		}
		return fmt.Errorf("%w: delivery %s is at version %d, not %d", comms.ErrConflict, d.ID, v, d.Version)
	})
	if err != nil {
		return webhooks.Delivery{}, wrap(op, err)
	}
	return out, nil
}

// DueDeliveries returns pending deliveries due at or before t, by the
// partial index webhook_deliveries_due.
func (s *Store) DueDeliveries(ctx context.Context, t time.Time, limit int) ([]webhooks.Delivery, error) {
	const op = "DueDeliveries"
	if limit < 1 {
		return nil, nil
	}
	n, ok := tsInRange(t)
	if !ok {
		if t.Before(minTS) {
			return nil, nil
		}
		n = ts(maxTS)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries
		WHERE state = 'pending' AND next_attempt_at <= ?
		ORDER BY next_attempt_at, company_id, endpoint_id, id LIMIT ?`, n, limit)
	if err != nil {
		return nil, wrap(op, err)
	}
	ds, err := collect(rows, scanDelivery)
	if err != nil {
		return nil, wrap(op, err)
	}
	return ds, nil
}
