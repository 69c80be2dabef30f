package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// commColumns are the columns of communications in the order commArgs gives
// their values; version comes last.
var commColumns = []string{
	"company_id", "id", "channel", "status", "scheduled_for", "next_attempt_at", "lease_until",
	"timezone", "respect_business_hours", "payload", "contact_id", "customer_id", "deal_id",
	"related_entity_type", "related_entity_id", "cancel_policy", "attempt_count", "max_attempts",
	"last_error", "source", "cadence", "cadence_root_id", "outcome", "provider_message_id", "token",
	"created_at", "updated_at", "sent_at", "cancelled_at", "cancel_reason", "event_seq",
	"delivery_status", "delivery_at", "delivery_detail", "timezone_source", "timezones", "lease_owner", "version",
}

var (
	selectComm = "SELECT " + strings.Join(commColumns, ", ") + " FROM communications"
	insertComm = "INSERT INTO communications (" + strings.Join(commColumns, ", ") +
		") VALUES (?" + strings.Repeat(", ?", len(commColumns)-1) + ")"
	// updateComm sets every column but the key and bumps version; its
	// arguments are commArgs[2:], company_id, id and the expected version.
	updateComm = "UPDATE communications SET " +
		strings.Join(commColumns[2:len(commColumns)-1], " = ?, ") +
		" = ?, version = version + 1 WHERE company_id = ? AND id = ? AND version = ?"
)

// The statements of the write transactions, prepared once on the writer
// connection by Open.
const (
	idemExpires = `SELECT expires_at FROM idempotency WHERE company_id = ? AND key = ?`
	putIdem     = `INSERT INTO idempotency (company_id, key, request_hash, communication_id, credits_remaining, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (company_id, key) DO UPDATE SET
		  request_hash = excluded.request_hash, communication_id = excluded.communication_id,
		  credits_remaining = excluded.credits_remaining,
		  created_at = excluded.created_at, expires_at = excluded.expires_at`
	debitCompany  = `UPDATE companies SET credits = credits - 1 WHERE id = ? AND credits > 0 RETURNING credits`
	companyExists = `SELECT EXISTS (SELECT 1 FROM companies WHERE id = ?)`
	commExists    = `SELECT EXISTS (SELECT 1 FROM communications WHERE company_id = ? AND id = ?)`
	insertEvent   = `INSERT INTO events (company_id, feed_pos, communication_id, sequence, id, type, at, data)
		VALUES (?1, COALESCE((SELECT MAX(feed_pos) FROM events WHERE company_id = ?1), 0) + 1, ?2, ?3, ?4, ?5, ?6, ?7)`
)

// txStatements are prepared on the writer by Open; see Store.stmt.
var txStatements = []string{idemExpires, putIdem, debitCompany, companyExists, commExists, insertComm, updateComm, insertEvent, putSupp}

// commArgs returns the values of every column but version, in commColumns order.
func commArgs(c comms.Communication) ([]any, error) {
	lastErr, err := jsonText(c.LastError)
	if err != nil {
		return nil, err
	}
	cadence, err := jsonText(c.Cadence)
	if err != nil {
		return nil, err
	}
	outcome, err := jsonText(c.Outcome)
	if err != nil {
		return nil, err
	}
	var zones sql.NullString
	if len(c.Timezones) > 0 { // none is NULL, as DynamoDB leaves it out
		b, err := json.Marshal(c.Timezones)
		if err != nil {
			return nil, err
		}
		zones = sql.NullString{String: string(b), Valid: true}
	}
	var rootID sql.NullString
	if c.Cadence != nil && c.Cadence.RootID != "" {
		rootID = sql.NullString{String: c.Cadence.RootID, Valid: true}
	}
	return []any{
		c.CompanyID, c.ID, string(c.Channel), string(c.Status), ts(c.ScheduledFor), ts(c.NextAttemptAt), ts(c.LeaseUntil),
		c.Timezone, c.RespectBusinessHours, rawText(c.Payload), c.ContactID, c.CustomerID, c.DealID,
		c.RelatedEntityType, c.RelatedEntityID, rawText(c.CancelPolicy), c.AttemptCount, c.MaxAttempts,
		lastErr, string(c.Source), cadence, rootID, outcome, c.ProviderMessageID, c.Token,
		ts(c.CreatedAt), ts(c.UpdatedAt), tsPtr(c.SentAt), tsPtr(c.CancelledAt), string(c.CancelReason), c.EventSeq,
		string(c.Delivery.Status), ts(c.Delivery.At), c.Delivery.Detail, string(c.TimezoneSource), zones, c.LeaseOwner,
	}, nil
}

// scanComm reads the columns of selectComm.
func scanComm(row scanner) (comms.Communication, error) {
	var (
		c                                          comms.Communication
		sched, next, lease, created, updated       int64
		deliveryAt                                 int64
		payload, policy, lastErr, cadence, outcome sql.NullString
		zones                                      sql.NullString
		rootID                                     sql.NullString // a copy of cadence's
		sent, cancelled                            sql.NullInt64
	)
	err := row.Scan(
		&c.CompanyID, &c.ID, &c.Channel, &c.Status, &sched, &next, &lease,
		&c.Timezone, &c.RespectBusinessHours, &payload, &c.ContactID, &c.CustomerID, &c.DealID,
		&c.RelatedEntityType, &c.RelatedEntityID, &policy, &c.AttemptCount, &c.MaxAttempts,
		&lastErr, &c.Source, &cadence, &rootID, &outcome, &c.ProviderMessageID, &c.Token,
		&created, &updated, &sent, &cancelled, &c.CancelReason, &c.EventSeq,
		&c.Delivery.Status, &deliveryAt, &c.Delivery.Detail, &c.TimezoneSource, &zones, &c.LeaseOwner, &c.Version)
	if err != nil {
		return comms.Communication{}, err
	}
	c.ScheduledFor, c.NextAttemptAt, c.LeaseUntil = fromTS(sched), fromTS(next), fromTS(lease)
	c.CreatedAt, c.UpdatedAt = fromTS(created), fromTS(updated)
	c.SentAt, c.CancelledAt = fromTSPtr(sent), fromTSPtr(cancelled)
	c.Delivery.At = fromTS(deliveryAt)
	if payload.Valid {
		c.Payload = json.RawMessage(payload.String)
	}
	if policy.Valid {
		c.CancelPolicy = json.RawMessage(policy.String)
	}
	if err := fromJSONText(lastErr, &c.LastError); err != nil {
		return comms.Communication{}, err
	}
	if err := fromJSONText(cadence, &c.Cadence); err != nil {
		return comms.Communication{}, err
	}
	if err := fromJSONText(outcome, &c.Outcome); err != nil {
		return comms.Communication{}, err
	}
	if zones.Valid {
		if err := json.Unmarshal([]byte(zones.String), &c.Timezones); err != nil {
			return comms.Communication{}, err
		}
	}
	return c, nil
}

// asStored returns c as it reads back once stored at version.
func asStored(c comms.Communication, version int64) comms.Communication {
	c.ScheduledFor, c.NextAttemptAt, c.LeaseUntil = c.ScheduledFor.UTC(), c.NextAttemptAt.UTC(), c.LeaseUntil.UTC()
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	c.Delivery.At = c.Delivery.At.UTC()
	if c.SentAt != nil {
		t := c.SentAt.UTC()
		c.SentAt = &t
	}
	if c.CancelledAt != nil {
		t := c.CancelledAt.UTC()
		c.CancelledAt = &t
	}
	if len(c.Payload) == 0 {
		c.Payload = nil
	}
	if len(c.CancelPolicy) == 0 {
		c.CancelPolicy = nil
	}
	c.Version = version
	return c
}

// CreateCommunication stores ch.Row at version 1 with its events, debits
// one credit from its company and records idem (when non-nil), in one
// transaction — shared with the creates of other goroutines waiting at the
// same moment (group commit, groupcommit.go): each runs in its own
// SAVEPOINT, so each gets its own result, and the one COMMIT (one fsync
// with synchronous=FULL) makes them durable together before any returns.
func (s *Store) CreateCommunication(ctx context.Context, ch comms.Change, idem *comms.Idempotency) (int64, error) {
	args, err := commArgs(ch.Row)
	if err != nil {
		return 0, wrap("CreateCommunication", err)
	}
	r := &createReq{ctx: ctx, ch: ch, args: args, idem: idem, wake: make(chan bool, 1)}
	s.creates.submit(r, s.commitCreates)
	if r.err != nil {
		return 0, wrap("CreateCommunication", r.err)
	}
	if idem != nil {
		idem.CreditsRemaining = r.credits
	}
	return r.credits, nil
}

// create runs one create's statements inside tx: the idempotency check, the
// debit, the row, its events and the idempotency record.
func (s *Store) create(ctx context.Context, tx *sql.Tx, r *createReq) (int64, error) {
	c, idem := r.ch.Row, r.idem
	if idem != nil {
		var expires int64
		err := s.stmt(ctx, tx, idemExpires).QueryRowContext(ctx, c.CompanyID, idem.Key).Scan(&expires)
		switch {
		case err == nil && expires > ts(idem.CreatedAt):
			return 0, comms.ErrIdempotencyKeyExists
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return 0, err
		}
	}
	credits, err := s.debit(ctx, tx, c.CompanyID)
	if err != nil {
		return 0, err
	}
	if _, err := s.stmt(ctx, tx, insertComm).ExecContext(ctx, append(r.args, int64(1))...); err != nil {
		return 0, err
	}
	if err := s.insertEvents(ctx, tx, r.ch.Events); err != nil {
		return 0, err
	}
	if idem == nil {
		return credits, nil
	}
	_, err = s.stmt(ctx, tx, putIdem).ExecContext(ctx,
		c.CompanyID, idem.Key, idem.RequestHash, c.ID, credits, ts(idem.CreatedAt), ts(idem.ExpiresAt))
	return credits, err
}

// insert stores a row the system creates itself (ch.Row at version 1, with
// its events) inside tx, without a debit.
func (s *Store) insert(ctx context.Context, tx *sql.Tx, ch comms.Change) error {
	args, err := commArgs(ch.Row)
	if err != nil {
		return err
	}
	var exists bool
	if err := s.stmt(ctx, tx, companyExists).QueryRowContext(ctx, ch.Row.CompanyID).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return comms.ErrNotFound
	}
	if _, err := s.stmt(ctx, tx, insertComm).ExecContext(ctx, append(args, int64(1))...); err != nil {
		return err
	}
	return s.insertEvents(ctx, tx, ch.Events)
}

// insertEvents inserts events inside tx, each at the next feed_pos of its
// company: write transactions run one at a time, so positions follow commit
// order.
func (s *Store) insertEvents(ctx context.Context, tx *sql.Tx, evs []comms.Event) error {
	for _, e := range evs {
		if _, err := s.stmt(ctx, tx, insertEvent).ExecContext(ctx,
			e.CompanyID, e.CommunicationID, e.Sequence, e.ID, string(e.Type), ts(e.At), string(e.Data)); err != nil {
			return fmt.Errorf("event %d of %s: %w", e.Sequence, e.CommunicationID, err)
		}
	}
	return nil
}

// debit takes one credit from the company and returns what is left:
// ErrInsufficientCredits at 0, ErrNotFound if there is no such company.
func (s *Store) debit(ctx context.Context, tx *sql.Tx, companyID string) (int64, error) {
	var credits int64
	err := s.stmt(ctx, tx, debitCompany).QueryRowContext(ctx, companyID).Scan(&credits)
	if !errors.Is(err, sql.ErrNoRows) {
		return credits, err
	}
	var exists bool
	if err := s.stmt(ctx, tx, companyExists).QueryRowContext(ctx, companyID).Scan(&exists); err != nil {
		return 0, err
	}
	if exists {
		return 0, comms.ErrInsufficientCredits
	}
	return 0, comms.ErrNotFound
}

// GetCommunication returns a row of the company; ErrNotFound if absent.
func (s *Store) GetCommunication(ctx context.Context, companyID, id string) (comms.Communication, error) {
	c, err := scanComm(s.r.QueryRowContext(ctx, selectComm+` WHERE company_id = ? AND id = ?`, companyID, id))
	if err != nil {
		return comms.Communication{}, wrap("GetCommunication", err)
	}
	return c, nil
}

// maxLimit caps ListFilter.Limit; a Limit below 1 also means maxLimit.
const maxLimit = 100

// ListCommunications returns rows of the company matching f, ordered by
// (scheduled_for, id), after f.After, at most f.Limit of them, and whether
// more exist.
func (s *Store) ListCommunications(ctx context.Context, companyID string, f comms.ListFilter) ([]comms.Communication, bool, error) {
	var q strings.Builder
	q.WriteString(selectComm + ` WHERE company_id = ?`)
	args := []any{companyID}
	eq := func(col, v string) {
		if v != "" {
			q.WriteString(" AND " + col + " = ?")
			args = append(args, v)
		}
	}
	eq("status", string(f.Status))
	eq("channel", string(f.Channel))
	eq("contact_id", f.ContactID)
	eq("customer_id", f.CustomerID)
	eq("deal_id", f.DealID)
	eq("cadence_root_id", f.CadenceRootID)
	if f.DeliveryStatus != "" {
		// A delivery status is what became of a sent row.
		q.WriteString(" AND status = 'sent' AND delivery_status = ?")
		args = append(args, string(f.DeliveryStatus))
	}
	// Bounds outside what the store keeps times for (tsInRange) bound
	// nothing, or exclude everything.
	if !f.ScheduledAfter.IsZero() {
		if after, ok := tsInRange(f.ScheduledAfter); ok {
			q.WriteString(" AND scheduled_for >= ?")
			args = append(args, after)
		} else if f.ScheduledAfter.After(maxTS) {
			return []comms.Communication{}, false, nil
		}
	}
	if !f.ScheduledBefore.IsZero() {
		if before, ok := tsInRange(f.ScheduledBefore); ok {
			q.WriteString(" AND scheduled_for < ?")
			args = append(args, before)
		} else if f.ScheduledBefore.Before(minTS) {
			return []comms.Communication{}, false, nil
		}
	}
	if f.After != nil {
		q.WriteString(" AND (scheduled_for, id) > (?, ?)")
		args = append(args, ts(f.After.ScheduledFor), f.After.ID)
	}
	limit := f.Limit
	if limit < 1 || limit > maxLimit {
		limit = maxLimit
	}
	q.WriteString(" ORDER BY scheduled_for, id LIMIT ?")
	args = append(args, limit+1)

	rows, err := s.r.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, false, wrap("ListCommunications", err)
	}
	cs, err := collect(rows, scanComm)
	if err != nil {
		return nil, false, wrap("ListCommunications", err)
	}
	if len(cs) > limit {
		return cs[:limit], true, nil
	}
	return cs, false, nil
}

// UpdateCommunication writes ch in one transaction: the row if its stored
// version is ch.Row.Version (as ch.Row.Version+1), its events, ch.Insert,
// and with debit one credit.
func (s *Store) UpdateCommunication(ctx context.Context, ch comms.Change, withDebit bool) (comms.Communication, int64, error) {
	c := ch.Row
	args, err := commArgs(c)
	if err != nil {
		return comms.Communication{}, 0, wrap("UpdateCommunication", err)
	}
	var credits int64
	err = inTx(ctx, s.w, func(tx *sql.Tx) error {
		res, err := s.stmt(ctx, tx, updateComm).ExecContext(ctx, append(args[2:], c.CompanyID, c.ID, c.Version)...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			var exists bool
			err := s.stmt(ctx, tx, commExists).QueryRowContext(ctx, c.CompanyID, c.ID).Scan(&exists)
			switch {
			case err != nil:
				return err
			case exists:
				return comms.ErrConflict
			default:
				return comms.ErrNotFound
			}
		}
		if err := s.insertEvents(ctx, tx, ch.Events); err != nil {
			return err
		}
		for _, x := range ch.Suppress {
			_, added, err := s.putSuppression(ctx, tx, x)
			if err != nil {
				return fmt.Errorf("suppression of %s %s: %w", x.Channel, x.Recipient, err)
			}
			if !added {
				// Suppressed since the caller read it: an active one is
				// kept as it is, and the caller reads again (as on DynamoDB).
				return fmt.Errorf("%w: %s %s has an active suppression", comms.ErrConflict, x.Channel, x.Recipient)
			}
		}
		if ch.Insert != nil {
			if err := s.insert(ctx, tx, *ch.Insert); err != nil {
				return err
			}
		}
		if withDebit {
			credits, err = s.debit(ctx, tx, c.CompanyID)
			return err
		}
		return nil
	})
	if err != nil {
		return comms.Communication{}, 0, wrap("UpdateCommunication", err)
	}
	return asStored(c, c.Version+1), credits, nil
}

// GetIdempotency returns the record for key; ErrNotFound if there is none
// or now is not before its ExpiresAt.
func (s *Store) GetIdempotency(ctx context.Context, companyID, key string, now time.Time) (comms.Idempotency, error) {
	r := comms.Idempotency{CompanyID: companyID, Key: key}
	var created, expires int64
	err := s.r.QueryRowContext(ctx,
		`SELECT request_hash, communication_id, credits_remaining, created_at, expires_at
		 FROM idempotency WHERE company_id = ? AND key = ? AND expires_at > ?`,
		companyID, key, ts(now)).Scan(&r.RequestHash, &r.CommunicationID, &r.CreditsRemaining, &created, &expires)
	if err != nil {
		return comms.Idempotency{}, wrap("GetIdempotency", err)
	}
	r.CreatedAt, r.ExpiresAt = fromTS(created), fromTS(expires)
	return r, nil
}

// dueComm selects the due rows of one status by the time column of that
// status, in the order of its partial index; the arguments are the time and
// the limit.
func dueComm(status comms.Status, col string) string {
	return "SELECT " + strings.Join(commColumns, ", ") + ", " + col + " AS due FROM communications" +
		" WHERE status = '" + string(status) + "' AND " + col + " < ? ORDER BY " + col + ", company_id, id LIMIT ?"
}

var dueComms = "SELECT " + strings.Join(commColumns, ", ") + " FROM (" +
	"SELECT * FROM (" + dueComm(comms.StatusPending, "next_attempt_at") + ") UNION ALL " +
	"SELECT * FROM (" + dueComm(comms.StatusProcessing, "lease_until") + ")" +
	") ORDER BY due, company_id, id LIMIT ?"

// DueCommunications returns up to limit pending rows whose next_attempt_at,
// and processing rows whose lease_until, is before t, of any company,
// earliest first.
func (s *Store) DueCommunications(ctx context.Context, t time.Time, limit int) ([]comms.Communication, error) {
	if limit < 1 {
		return nil, nil
	}
	at := ts(t)
	rows, err := s.r.QueryContext(ctx, dueComms, at, limit, at, limit, limit)
	if err != nil {
		return nil, wrap("DueCommunications", err)
	}
	cs, err := collect(rows, scanComm)
	return cs, wrap("DueCommunications", err)
}

// rawText stores raw JSON as given: NULL when empty.
func rawText(m json.RawMessage) sql.NullString {
	return sql.NullString{String: string(m), Valid: len(m) > 0}
}

// jsonText encodes v (a nil pointer gives NULL).
func jsonText[T any](v *T) (sql.NullString, error) {
	if v == nil {
		return sql.NullString{}, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return sql.NullString{}, err
	}
	return sql.NullString{String: string(b), Valid: true}, nil
}

// fromJSONText decodes what jsonText encoded.
func fromJSONText[T any](s sql.NullString, v **T) error {
	if !s.Valid {
		*v = nil
		return nil
	}
	*v = new(T)
	return json.Unmarshal([]byte(s.String), *v)
}

const selectEvent = `SELECT feed_pos, company_id, communication_id, sequence, id, type, at, data FROM events`

// scanEvent reads the columns of selectEvent.
func scanEvent(row scanner) (eventRow, error) {
	var (
		e  eventRow
		at int64
		d  string
	)
	if err := row.Scan(&e.pos, &e.CompanyID, &e.CommunicationID, &e.Sequence, &e.ID, &e.Type, &at, &d); err != nil {
		return eventRow{}, err
	}
	e.At, e.Data = fromTS(at), json.RawMessage(d)
	return e, nil
}

// eventRow is an event with its feed position.
type eventRow struct {
	comms.Event
	pos int64
}

// ListEvents returns the row's events after afterSeq, oldest first.
func (s *Store) ListEvents(ctx context.Context, companyID, communicationID string, afterSeq int64, limit int) ([]comms.Event, bool, error) {
	if limit < 1 || limit > maxLimit {
		limit = maxLimit
	}
	rows, err := s.r.QueryContext(ctx, selectEvent+` WHERE company_id = ? AND communication_id = ? AND sequence > ?
		ORDER BY sequence LIMIT ?`, companyID, communicationID, afterSeq, limit+1)
	if err != nil {
		return nil, false, wrap("ListEvents", err)
	}
	evs, err := collect(rows, scanEvent)
	if err != nil {
		return nil, false, wrap("ListEvents", err)
	}
	out := make([]comms.Event, 0, min(len(evs), limit))
	for _, e := range evs[:min(len(evs), limit)] {
		out = append(out, e.Event)
	}
	return out, len(evs) > limit, nil
}

// ListCompanyEvents returns the company's events in commit order: feed_pos
// numbers them per company inside write transactions that run one at a
// time, and a reader sees only committed ones, so no event ever appears
// before a position already read. The cursor is the decimal feed_pos of the
// last event returned (per company: it says nothing of other tenants); f.Now
// is not needed.
func (s *Store) ListCompanyEvents(ctx context.Context, companyID string, f comms.EventFilter) ([]comms.Event, string, bool, error) {
	const op = "ListCompanyEvents"
	var after int64
	if f.After != "" {
		n, err := strconv.ParseInt(f.After, 10, 64)
		if err != nil || n < 0 {
			return nil, "", false, wrap(op, comms.ErrBadCursor)
		}
		after = n
	}
	limit := f.Limit
	if limit < 1 || limit > maxLimit {
		limit = maxLimit
	}
	var q strings.Builder
	q.WriteString(selectEvent + ` WHERE company_id = ? AND feed_pos > ?`)
	args := []any{companyID, after}
	if len(f.Types) > 0 {
		q.WriteString(" AND type IN (?" + strings.Repeat(", ?", len(f.Types)-1) + ")")
		for _, t := range f.Types {
			args = append(args, string(t))
		}
	}
	if !f.CreatedAfter.IsZero() {
		if after, ok := tsInRange(f.CreatedAfter); !ok {
			if f.CreatedAfter.After(maxTS) {
				return []comms.Event{}, f.After, false, nil // after anything this store can hold
			}
			// Before anything this store can hold: no bound.
		} else {
			q.WriteString(" AND at >= ?")
			args = append(args, after)
		}
	}
	q.WriteString(" ORDER BY feed_pos LIMIT ?")
	args = append(args, limit+1)
	rows, err := s.r.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, "", false, wrap(op, err)
	}
	evs, err := collect(rows, scanEvent)
	if err != nil {
		return nil, "", false, wrap(op, err)
	}
	more := len(evs) > limit
	evs = evs[:min(len(evs), limit)]
	out := make([]comms.Event, len(evs))
	next := f.After
	for i, e := range evs {
		out[i] = e.Event
		next = strconv.FormatInt(e.pos, 10)
	}
	return out, next, more, nil
}
