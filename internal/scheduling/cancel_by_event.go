package scheduling

import (
	"context"
	"errors"
	"fmt"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/contract"
)

// CancelledByEvent is the result of CancelByEvent.
type CancelledByEvent struct {
	Event string `json:"event"`
	// Cancelled lists the ids of the rows this call cancelled, in schedule order.
	Cancelled []string `json:"cancelled"`
	// Recorded is the event as kept for later steps: a row that is busy
	// now (a call in progress) or does not exist yet (a cadence's next
	// attempt) and whose cancel_policy lists it is cancelled when it is
	// created or due, if its cadence began before the event.
	Recorded comms.EntityEvent `json:"recorded"`
}

// CancelByEvent records the event about the entity the body names
// (exactly one of contact_id, deal_id, customer_id), then cancels every
// pending row of the caller's company linked to it whose
// cancel_policy.cancel_on lists the event. Rows already claimed are left
// alone now; the recorded event cancels them, or their cadence's later
// attempts, at their next step (docs/design.md §12). It costs nothing.
func (s *Service) CancelByEvent(ctx context.Context, p comms.Principal, body []byte) (CancelledByEvent, error) {
	req, err := contract.ParseCancelByEvent(body)
	if err != nil {
		return CancelledByEvent{}, err
	}
	event := req.Event
	rec := comms.EntityEvent{ID: s.newID(), CompanyID: p.CompanyID, Name: event, At: s.clock()}
	switch {
	case req.ContactID != "":
		rec.EntityType, rec.EntityID = comms.EntityContact, req.ContactID
	case req.CustomerID != "":
		rec.EntityType, rec.EntityID = comms.EntityCustomer, req.CustomerID
	default:
		rec.EntityType, rec.EntityID = comms.EntityDeal, req.DealID
	}
	// Recorded first: a row claimed while the pending ones are cancelled
	// below still finds it at its next step.
	if err := s.store.PutEntityEvent(ctx, rec); err != nil {
		return CancelledByEvent{}, fmt.Errorf("store.PutEntityEvent: %w", err)
	}
	f := comms.ListFilter{Status: comms.StatusPending, Limit: comms.MaxListLimit, ContactID: req.ContactID, CustomerID: req.CustomerID, DealID: req.DealID}
	out := CancelledByEvent{Event: event, Cancelled: []string{}, Recorded: rec}
	for {
		rows, more, err := s.store.ListCommunications(ctx, p.CompanyID, f)
		if err != nil {
			return out, fmt.Errorf("store.ListCommunications: %w", err)
		}
		for _, row := range rows {
			if !row.Policy().CancelsOn(event) {
				continue
			}
			_, cancelled, err := s.cancel(ctx, p.CompanyID, row.ID, comms.CancelOnEvent(event))
			switch {
			case err == nil && cancelled:
				out.Cancelled = append(out.Cancelled, row.ID)
			case err == nil:
				// cancelled meanwhile by another call, which lists it
			case errors.Is(err, comms.ErrNotPending):
				// claimed meanwhile: it is being sent, as a cancel would find too
			default:
				return out, err
			}
		}
		if !more || len(rows) == 0 {
			return out, nil
		}
		last := rows[len(rows)-1]
		f.After = &comms.Cursor{ScheduledFor: last.ScheduledFor, ID: last.ID}
	}
}
