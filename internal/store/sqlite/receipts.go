package sqlite

import (
	"context"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// PutSMSReceipt stores an unclaimed SMS delivery report (table
// sms_receipts, migration 5); the same (destination, accepted_at, message
// id) again replaces it.
func (s *Store) PutSMSReceipt(ctx context.Context, r comms.SMSReceipt) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO sms_receipts (destination, accepted_at, provider_message_id, status, detail, at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (destination, accepted_at, provider_message_id) DO UPDATE SET
		  status = excluded.status, detail = excluded.detail, at = excluded.at`,
		r.Destination, ts(r.AcceptedAt), r.ProviderMessageID, string(r.Status), r.Detail, ts(r.At))
	return wrap("PutSMSReceipt", err)
}

// FindSMSReceipts returns the receipts of destination accepted in [from,
// to], ordered by accepted_at, then message id (the table's key order).
func (s *Store) FindSMSReceipts(ctx context.Context, destination string, from, to time.Time) ([]comms.SMSReceipt, error) {
	const op = "FindSMSReceipts"
	rows, err := s.r.QueryContext(ctx, `SELECT destination, accepted_at, provider_message_id, status, detail, at
		FROM sms_receipts WHERE destination = ? AND accepted_at BETWEEN ? AND ?
		ORDER BY accepted_at, provider_message_id`, destination, ts(from), ts(to))
	if err != nil {
		return nil, wrap(op, err)
	}
	rs, err := collect(rows, func(row scanner) (comms.SMSReceipt, error) {
		var (
			r            comms.SMSReceipt
			accepted, at int64
		)
		if err := row.Scan(&r.Destination, &accepted, &r.ProviderMessageID, &r.Status, &r.Detail, &at); err != nil {
			return comms.SMSReceipt{}, err
		}
		r.AcceptedAt, r.At = fromTS(accepted), fromTS(at)
		return r, nil
	})
	if err != nil {
		return nil, wrap(op, err)
	}
	if rs == nil {
		rs = []comms.SMSReceipt{}
	}
	return rs, nil
}
