package scheduling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/contract"
)

// Warning is something a caller should know about an accepted request: the
// request succeeded, but the row will not do what it probably expects. It
// is returned in the response's meta.warnings.
type Warning struct {
	Code    string `json:"code"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// WarnRecipientSuppressed is the warning of a row created for a recipient
// the company has suppressed: it is accepted (the suppression may be
// lifted before it is due) and fails as recipient_suppressed if it is not.
const WarnRecipientSuppressed = "recipient_suppressed"

// Warnings returns what the caller should know about an accepted row (a
// create or an edit): each of its recipients — the To, and every cc of an
// email — that the company has suppressed, one warning per recipient
// naming its payload field (payload.to_email, payload.cc[i],
// payload.to_number). A suppressed To fails the row as
// recipient_suppressed when it is due; a suppressed cc is left out of the
// send. A store failure here costs the warning, not the write (it is
// logged).
func (s *Service) Warnings(ctx context.Context, row comms.Communication) []Warning {
	var out []Warning
	for _, r := range recipientsOf(row) {
		sup, err := s.store.GetSuppression(ctx, row.CompanyID, r.channel, comms.NormalizeRecipient(r.channel, r.to))
		if errors.Is(err, comms.ErrNotFound) || err == nil && !sup.Active() {
			continue
		}
		if err != nil {
			s.log.WarnContext(ctx, "suppression check failed; the write is answered without it", "communication_id", row.ID, "error", err.Error())
			return out
		}
		then := "fails as recipient_suppressed when it is due"
		if r.cc {
			then = "is sent without this cc"
		}
		out = append(out, Warning{Code: WarnRecipientSuppressed, Field: r.field,
			Message: fmt.Sprintf("%s is suppressed for this company (%s since %s): the row is accepted, and %s unless the suppression is lifted first (DELETE /v1/suppressions/%s/%s)",
				sup.Recipient, sup.Reason, sup.CreatedAt.UTC().Format("2006-01-02T15:04:05Z"), then, sup.Channel, sup.Recipient)})
	}
	return out
}

// recipient is one address or number a row sends to, with its payload field.
type recipient struct {
	field   string
	channel comms.SuppressionChannel
	to      string
	cc      bool
}

// recipientsOf returns the recipients of an email row (To, then each cc) or
// an SMS row (nothing for voice: calls are not suppressed).
func recipientsOf(row comms.Communication) []recipient {
	switch row.Channel {
	case comms.ChannelEmail:
		var p comms.EmailPayload
		if json.Unmarshal(row.Payload, &p) != nil {
			return nil
		}
		out := []recipient{{field: "payload.to_email", channel: comms.SuppressEmail, to: p.ToEmail}}
		for i, a := range p.CC {
			out = append(out, recipient{field: fmt.Sprintf("payload.cc[%d]", i), channel: comms.SuppressEmail, to: a, cc: true})
		}
		return out
	case comms.ChannelSMS:
		var p comms.SMSPayload
		if json.Unmarshal(row.Payload, &p) == nil {
			return []recipient{{field: "payload.to_number", channel: comms.SuppressSMS, to: p.ToNumber}}
		}
	}
	return nil
}

// Suppressions returns a page of the caller's suppressions, the cursor of
// the next page ("" on the last; it is valid only with f's filters) and
// whether more exist.
func (s *Service) Suppressions(ctx context.Context, p comms.Principal, f comms.SuppressionFilter) ([]comms.Suppression, string, bool, error) {
	list, more, err := s.store.ListSuppressions(ctx, p.CompanyID, f)
	if err != nil {
		return nil, "", false, fmt.Errorf("store.ListSuppressions: %w", err)
	}
	next := ""
	if more && len(list) > 0 {
		next = contract.SuppressionCursor(list[len(list)-1], f)
	}
	return list, next, next != "", nil
}

// Suppression returns one suppression of the caller, active or lifted.
func (s *Service) Suppression(ctx context.Context, p comms.Principal, channel, recipient string) (comms.Suppression, error) {
	ch, r, err := contract.SuppressionKey(channel, recipient)
	if err != nil {
		return comms.Suppression{}, err
	}
	sup, err := s.store.GetSuppression(ctx, p.CompanyID, ch, r)
	if err != nil {
		return comms.Suppression{}, fmt.Errorf("store.GetSuppression: %w", err)
	}
	return sup, nil
}

// PutSuppression adds a suppression by hand (a CRM's own unsubscribe list):
// reason manual, created by the caller's key. It is idempotent and atomic:
// the store adds it only if the recipient has no active suppression (one
// conditional write), so of concurrent PUTs of one recipient exactly one
// creates (created true); the others, and any later PUT while it is
// active, get the active suppression unchanged (created false). The record
// returned is the one stored (its lifts included).
func (s *Service) PutSuppression(ctx context.Context, p comms.Principal, body []byte) (comms.Suppression, bool, error) {
	req, err := contract.ParseSuppression(body)
	if err != nil {
		return comms.Suppression{}, false, err
	}
	sup := comms.Suppression{CompanyID: p.CompanyID, Channel: req.Channel, Recipient: req.Recipient,
		Reason: comms.SuppressManual, Detail: req.Detail, CreatedAt: s.clock(), CreatedBy: p.KeyID}
	got, created, err := s.store.PutSuppression(ctx, sup)
	if err != nil {
		return comms.Suppression{}, false, fmt.Errorf("store.PutSuppression: %w", err)
	}
	return got, created, nil
}

// LiftSuppression lifts the caller's active suppression of a recipient,
// recording the caller's key and the time; the record is kept (listed with
// include_lifted=true). Lifting a suppression that is already lifted
// returns its record unchanged (a DELETE is idempotent, as a cancel of a
// cancelled row is); comms.ErrNotFound when the recipient was never
// suppressed.
func (s *Service) LiftSuppression(ctx context.Context, p comms.Principal, channel, recipient string) (comms.Suppression, error) {
	ch, r, err := contract.SuppressionKey(channel, recipient)
	if err != nil {
		return comms.Suppression{}, err
	}
	for range casAttempts {
		sup, err := s.store.LiftSuppression(ctx, p.CompanyID, ch, r, p.KeyID, s.clock())
		if err == nil {
			s.log.InfoContext(ctx, "suppression lifted", "company_id", p.CompanyID, "channel", string(ch), "key_id", p.KeyID)
			return sup, nil
		}
		if !errors.Is(err, comms.ErrNotFound) {
			return comms.Suppression{}, fmt.Errorf("store.LiftSuppression: %w", err)
		}
		// None active: a lifted record is the answer, unless the recipient
		// was suppressed again in between (then lift that one).
		sup, err = s.store.GetSuppression(ctx, p.CompanyID, ch, r)
		if err != nil {
			return comms.Suppression{}, fmt.Errorf("store.GetSuppression: %w", err)
		}
		if !sup.Active() {
			return sup, nil
		}
	}
	return comms.Suppression{}, fmt.Errorf("scheduling.LiftSuppression: gave up after %d lost races: %w", casAttempts, comms.ErrConflict)
}
