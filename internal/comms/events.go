package comms

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// EventQuery is a parsed query string of an event listing.
type EventQuery struct {
	// AfterSeq is the row history's position (GET …/{id}/events).
	AfterSeq int64
	// Filter is the company feed's filter (GET /v1/events); its Now is set
	// by the service.
	Filter EventFilter
}

var (
	historyParams = map[string]bool{"limit": true, "cursor": true}
	feedParams    = map[string]bool{"limit": true, "cursor": true, "type": true, "created_after": true}
)

// ParseHistoryQuery reads the query string of GET
// /v1/scheduled-communications/{id}/events: limit and cursor.
func ParseHistoryQuery(q url.Values) (EventQuery, error) {
	var c checker
	c.params(q, historyParams)
	eq := EventQuery{Filter: EventFilter{Limit: c.limit(q)}}
	if v := q.Get("cursor"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		seq, perr := strconv.ParseInt(strings.TrimPrefix(string(b), "seq:"), 10, 64)
		if err != nil || perr != nil || !strings.HasPrefix(string(b), "seq:") || seq < 0 {
			c.add("cursor", badCursor)
		}
		eq.AfterSeq = seq
	}
	return eq, c.errs.Err()
}

// ParseFeedQuery reads the query string of GET /v1/events: limit, cursor,
// type (one type, or several separated by commas) and created_after (RFC
// 3339, inclusive).
func ParseFeedQuery(q url.Values) (EventQuery, error) {
	var c checker
	c.params(q, feedParams)
	eq := EventQuery{Filter: EventFilter{Limit: c.limit(q)}}
	if v := q.Get("type"); v != "" {
		for _, t := range strings.Split(v, ",") {
			if et := EventType(t); et.Valid() {
				eq.Filter.Types = append(eq.Filter.Types, et)
			} else {
				c.add("type", "must be event types separated by commas, each one of %s", eventTypeList())
				break
			}
		}
	}
	if v := q.Get("created_after"); v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			eq.Filter.CreatedAfter = t.UTC()
		} else {
			c.add("created_after", "must be an RFC 3339 date-time with an offset or Z")
		}
	}
	if v := q.Get("cursor"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || len(b) == 0 {
			c.add("cursor", badCursor)
		}
		eq.Filter.After = string(b)
	}
	return eq, c.errs.Err()
}

func eventTypeList() string {
	s := make([]string, len(EventTypes))
	for i, t := range EventTypes {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

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
		page.Cursor = base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "seq:%d", evs[len(evs)-1].Sequence))
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
			return EventPage{}, &ValidationError{Fields: []FieldError{{Field: "cursor", Message: badCursor}}}
		}
		return EventPage{}, fmt.Errorf("store.ListCompanyEvents: %w", err)
	}
	page := EventPage{Events: evs, More: more}
	if next != "" {
		page.Cursor = base64.RawURLEncoding.EncodeToString([]byte(next))
	}
	return page, nil
}
