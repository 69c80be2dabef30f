package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// putSupp adds a suppression unless the recipient has an active one: it
// creates the record, or replaces a lifted one (keeping its lifts), and
// returns the stored record; no row when an active one is kept as it is
// (the conflict update's WHERE). UpdateCommunication runs it in the row's
// transaction for a Change's Suppress, PutSuppression on its own.
const putSupp = `INSERT INTO suppressions (company_id, channel, recipient, reason, detail, communication_id,
		created_at, created_by, lifted_at, lifted_by)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (company_id, channel, recipient) DO UPDATE SET
	  reason = excluded.reason, detail = excluded.detail, communication_id = excluded.communication_id,
	  created_at = excluded.created_at, created_by = excluded.created_by,
	  lifted_at = excluded.lifted_at, lifted_by = excluded.lifted_by
	WHERE suppressions.lifted_at IS NOT NULL
	RETURNING ` + suppColumns

// suppColumns are read by scanSupp; lifts (JSON of []comms.SuppressionLift)
// is written only by LiftSuppression, so a put keeps it.
const suppColumns = `company_id, channel, recipient, reason, detail, communication_id, created_at, created_by, lifted_at, lifted_by, lifts`

// putSuppression adds x inside tx unless the recipient has an active
// suppression, and returns the stored record and true, or the active one
// and false.
func (s *Store) putSuppression(ctx context.Context, tx *sql.Tx, x comms.Suppression) (comms.Suppression, bool, error) {
	got, err := scanSupp(s.stmt(ctx, tx, putSupp).QueryRowContext(ctx, x.CompanyID, string(x.Channel), x.Recipient, string(x.Reason),
		x.Detail, x.CommunicationID, ts(x.CreatedAt), x.CreatedBy, tsPtr(x.LiftedAt), x.LiftedBy))
	if !errors.Is(err, sql.ErrNoRows) {
		return got, err == nil, err
	}
	cur, err := scanSupp(tx.QueryRowContext(ctx, `SELECT `+suppColumns+` FROM suppressions
		WHERE company_id = ? AND channel = ? AND recipient = ?`, x.CompanyID, string(x.Channel), x.Recipient))
	return cur, false, err
}

func scanSupp(row scanner) (comms.Suppression, error) {
	var (
		x       comms.Suppression
		created int64
		lifted  sql.NullInt64
		lifts   string
	)
	if err := row.Scan(&x.CompanyID, &x.Channel, &x.Recipient, &x.Reason, &x.Detail, &x.CommunicationID,
		&created, &x.CreatedBy, &lifted, &x.LiftedBy, &lifts); err != nil {
		return comms.Suppression{}, err
	}
	x.CreatedAt, x.LiftedAt = fromTS(created), fromTSPtr(lifted)
	if err := json.Unmarshal([]byte(lifts), &x.Lifts); err != nil {
		return comms.Suppression{}, fmt.Errorf("suppression lifts: %w", err)
	}
	if len(x.Lifts) == 0 {
		x.Lifts = nil
	}
	return x, nil
}

// PutSuppression adds the suppression of (company, channel, recipient)
// unless it has an active one, in one transaction (the INSERT's conflict
// update is conditional on the record being lifted): the stored record and
// true, or the active one unchanged and false; ErrNotFound if there is no
// such company.
func (s *Store) PutSuppression(ctx context.Context, x comms.Suppression) (comms.Suppression, bool, error) {
	var (
		got     comms.Suppression
		created bool
	)
	err := inTx(ctx, s.w, func(tx *sql.Tx) (err error) {
		got, created, err = s.putSuppression(ctx, tx, x)
		return err
	})
	if err != nil {
		return comms.Suppression{}, false, wrap("PutSuppression", err)
	}
	return got, created, nil
}

// GetSuppression returns the suppression of the recipient, active or lifted.
func (s *Store) GetSuppression(ctx context.Context, companyID string, channel comms.SuppressionChannel, recipient string) (comms.Suppression, error) {
	st, err := s.reader(ctx, `SELECT `+suppColumns+` FROM suppressions WHERE company_id = ? AND channel = ? AND recipient = ?`)
	if err != nil {
		return comms.Suppression{}, wrap("GetSuppression", err)
	}
	x, err := scanSupp(st.QueryRowContext(ctx, companyID, string(channel), recipient))
	if err != nil {
		return comms.Suppression{}, wrap("GetSuppression", err)
	}
	return x, nil
}

// suppCursor splits a ListSuppressions cursor "<channel>:<recipient>";
// false if s is not one.
func suppCursor(s string) (comms.SuppressionChannel, string, bool) {
	ch, rcpt, ok := strings.Cut(s, ":")
	c := comms.SuppressionChannel(ch)
	return c, rcpt, ok && c.Valid() && rcpt != ""
}

// ListSuppressions returns the company's suppressions matching f in
// (channel, recipient) order — the table's key order.
func (s *Store) ListSuppressions(ctx context.Context, companyID string, f comms.SuppressionFilter) ([]comms.Suppression, bool, error) {
	const op = "ListSuppressions"
	var q strings.Builder
	q.WriteString(`SELECT ` + suppColumns + ` FROM suppressions WHERE company_id = ?`)
	args := []any{companyID}
	if f.Channel != "" {
		q.WriteString(" AND channel = ?")
		args = append(args, string(f.Channel))
	}
	if f.Recipient != "" {
		q.WriteString(" AND recipient = ?")
		args = append(args, f.Recipient)
	}
	if !f.IncludeLifted {
		q.WriteString(" AND lifted_at IS NULL")
	}
	if f.After != "" {
		ch, rcpt, ok := suppCursor(f.After)
		if !ok {
			return nil, false, wrap(op, comms.ErrBadCursor)
		}
		q.WriteString(" AND (channel, recipient) > (?, ?)")
		args = append(args, string(ch), rcpt)
	}
	limit := f.Limit
	if limit < 1 || limit > maxLimit {
		limit = maxLimit
	}
	q.WriteString(" ORDER BY channel, recipient LIMIT ?")
	args = append(args, limit+1)
	rows, err := s.r.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, false, wrap(op, err)
	}
	xs, err := collect(rows, scanSupp)
	if err != nil {
		return nil, false, wrap(op, err)
	}
	if xs == nil {
		xs = []comms.Suppression{}
	}
	if len(xs) > limit {
		return xs[:limit], true, nil
	}
	return xs, false, nil
}

// LiftSuppression marks the active suppression of the recipient lifted and
// returns it; ErrNotFound if there is no active one.
func (s *Store) LiftSuppression(ctx context.Context, companyID string, channel comms.SuppressionChannel, recipient, by string, at time.Time) (comms.Suppression, error) {
	var x comms.Suppression
	err := inTx(ctx, s.w, func(tx *sql.Tx) error {
		cur, err := scanSupp(tx.QueryRowContext(ctx, `SELECT `+suppColumns+` FROM suppressions
			WHERE company_id = ? AND channel = ? AND recipient = ? AND lifted_at IS NULL`, companyID, string(channel), recipient))
		if err != nil {
			return err
		}
		lifts, err := json.Marshal(append(cur.Lifts, cur.Lifted(by, at)))
		if err != nil {
			return err
		}
		x, err = scanSupp(tx.QueryRowContext(ctx, `UPDATE suppressions SET lifted_at = ?, lifted_by = ?, lifts = ?
			WHERE company_id = ? AND channel = ? AND recipient = ?
			RETURNING `+suppColumns, ts(at), by, string(lifts), companyID, string(channel), recipient))
		return err
	})
	if err != nil {
		return comms.Suppression{}, wrap("LiftSuppression", err)
	}
	return x, nil
}

// CommunicationByProviderMessageID returns the row whose provider_message_id
// is id, of any company (index communications_by_provider_message_id).
// Providers never reuse a message id; should two rows hold one anyway, the
// first by (company_id, id) is returned.
func (s *Store) CommunicationByProviderMessageID(ctx context.Context, id string) (comms.Communication, error) {
	const op = "CommunicationByProviderMessageID"
	if id == "" {
		return comms.Communication{}, wrap(op, comms.ErrNotFound)
	}
	c, err := scanComm(s.r.QueryRowContext(ctx, selectComm+` WHERE provider_message_id = ? AND provider_message_id <> ''
		ORDER BY company_id, id LIMIT 1`, id))
	if err != nil {
		return comms.Communication{}, wrap(op, err)
	}
	return c, nil
}

// phoneTaken reports whether err is a UNIQUE constraint refusing a write:
// in PutPhoneNumber's upsert (whose key conflict is the upsert's own) that
// is the index phone_numbers_by_e164, a number another resource holds.
func phoneTaken(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}
