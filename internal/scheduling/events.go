package scheduling

import (
	"context"
	"errors"
	"fmt"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/contract"
)

// EventPage is one page of events and where the next page starts.
type EventPage struct {
	Events []comms.Event
	// Cursor is the position after the last event of the page: pass it as
	// cursor to read on. For a row's history it is "" on the last page; for
	// the company feed it is always set once any event was read, so a
	// reader can poll from it for events that happen later.
	Cursor string
	// More is true when more events exist now after Cursor.
	More bool
}

// History returns a page of one row's events, oldest first: the row's
// timeline. A row of another company is comms.ErrNotFound.
func (s *Service) History(ctx context.Context, p comms.Principal, id string, q contract.EventQuery) (EventPage, error) {
	row, err := s.get(ctx, p.CompanyID, id)
	if err != nil {
		return EventPage{}, err
	}
	evs, more, err := s.store.ListEvents(ctx, p.CompanyID, row.ID, q.AfterSeq, q.Filter.Limit)
	if err != nil {
		return EventPage{}, fmt.Errorf("store.ListEvents: %w", err)
	}
	page := EventPage{Events: evs, More: more}
	if more && len(evs) > 0 {
		page.Cursor = contract.EncodeHistoryCursor(evs[len(evs)-1].Sequence)
	}
	return page, nil
}

// Feed returns a page of the company's events across all its rows, in the
// store's feed order (see comms.CommunicationStore.ListCompanyEvents): a CRM
// that follows the cursors sees every event once.
func (s *Service) Feed(ctx context.Context, p comms.Principal, q contract.EventQuery) (EventPage, error) {
	f := q.Filter
	f.Now = s.clock()
	evs, next, more, err := s.store.ListCompanyEvents(ctx, p.CompanyID, f)
	if err != nil {
		if errors.Is(err, comms.ErrBadCursor) {
			return EventPage{}, contract.BadCursorError()
		}
		return EventPage{}, fmt.Errorf("store.ListCompanyEvents: %w", err)
	}
	page := EventPage{Events: evs, More: more}
	if next != "" {
		page.Cursor = contract.EncodeFeedCursor(next)
	}
	return page, nil
}
