package comms

import (
	"context"
	"errors"
	"fmt"
)

// EventPage is one page of events and where the next page starts.
type EventPage struct {
	Events []Event
	// Cursor is the position after the last event of the page: pass it as
	// cursor to read on. For a row's history it is "" on the last page; for
	// the company feed it is always set once any event was read, so a
	// reader can poll from it for events that happen later.
	Cursor string
	// More is true when more events exist now after Cursor.
	More bool
}

// History returns a page of one row's events, oldest first: the row's
// timeline. A row of another company is ErrNotFound.
func (s *Service) History(ctx context.Context, p Principal, id string, q EventQuery) (EventPage, error) {
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
		page.Cursor = EncodeHistoryCursor(evs[len(evs)-1].Sequence)
	}
	return page, nil
}

// Feed returns a page of the company's events across all its rows, in the
// store's feed order (see CommunicationStore.ListCompanyEvents): a CRM
// that follows the cursors sees every event once.
func (s *Service) Feed(ctx context.Context, p Principal, q EventQuery) (EventPage, error) {
	f := q.Filter
	f.Now = s.clock()
	evs, next, more, err := s.store.ListCompanyEvents(ctx, p.CompanyID, f)
	if err != nil {
		if errors.Is(err, ErrBadCursor) {
			return EventPage{}, BadCursorError()
		}
		return EventPage{}, fmt.Errorf("store.ListCompanyEvents: %w", err)
	}
	page := EventPage{Events: evs, More: more}
	if next != "" {
		page.Cursor = EncodeFeedCursor(next)
	}
	return page, nil
}
