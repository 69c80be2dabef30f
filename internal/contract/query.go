package contract

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/rfc3339"
)

// EncodeCursor makes the opaque cursor string of a position.
func EncodeCursor(c comms.Cursor) string {
	b, _ := json.Marshal(struct {
		T int64  `json:"t"`
		I string `json:"i"`
	}{c.ScheduledFor.UnixNano(), c.ID})
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a cursor made by EncodeCursor.
func DecodeCursor(s string) (comms.Cursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return comms.Cursor{}, false
	}
	var v struct {
		T *int64 `json:"t"`
		I string `json:"i"`
	}
	if json.Unmarshal(b, &v) != nil || v.T == nil {
		return comms.Cursor{}, false
	}
	id, ok := comms.UUIDString(v.I)
	if !ok {
		return comms.Cursor{}, false
	}
	return comms.Cursor{ScheduledFor: time.Unix(0, *v.T).UTC(), ID: id}, true
}

var listParams = map[string]bool{
	"status": true, "delivery_status": true, "channel": true, "contact_id": true, "customer_id": true, "deal_id": true,
	"cadence_root_id": true, "scheduled_after": true, "scheduled_before": true, "limit": true, "cursor": true,
}

// ParseListQuery reads the query string of a listing, reporting every
// offending parameter (unknown ones too, so a typo does not silently list
// everything).
func ParseListQuery(q url.Values) (comms.ListFilter, error) {
	var c checker
	f := comms.ListFilter{Limit: comms.DefaultListLimit}
	c.params(q, listParams)
	if v := q.Get("status"); v != "" {
		if f.Status = comms.Status(v); !f.Status.Valid() {
			c.add("status", "must be one of pending, processing, sent, failed, cancelled")
		}
	}
	if v := q.Get("channel"); v != "" {
		if f.Channel = comms.Channel(v); !f.Channel.Valid() {
			c.add("channel", "must be one of email, sms, voice_call")
		}
	}
	if v := q.Get("delivery_status"); v != "" {
		if f.DeliveryStatus = comms.DeliveryStatus(v); !f.DeliveryStatus.Valid() {
			c.add("delivery_status", "must be one of accepted, delayed, delivered, bounced, undeliverable, opted_out, complained")
		}
	}
	for _, p := range []struct {
		name string
		dst  *string
	}{{"contact_id", &f.ContactID}, {"customer_id", &f.CustomerID}, {"deal_id", &f.DealID}, {"cadence_root_id", &f.CadenceRootID}} {
		if v := q.Get(p.name); v != "" {
			if u, ok := comms.UUIDString(v); ok {
				*p.dst = u
			} else {
				c.add(p.name, "must be a UUID")
			}
		}
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"scheduled_after", &f.ScheduledAfter}, {"scheduled_before", &f.ScheduledBefore}} {
		if v := q.Get(p.name); v != "" {
			if t, err := rfc3339.ParseDateTime(v); err == nil {
				*p.dst = t
			} else {
				c.add(p.name, "%s (%s)", queryTimeMessage, reason(err))
			}
		}
	}
	f.Limit = c.limit(q)
	if v := q.Get("cursor"); v != "" {
		cur, ok := DecodeCursor(v)
		if !ok {
			c.add("cursor", badCursor)
		} else {
			f.After = &cur
		}
	}
	return f, c.errs.Err()
}

const badCursor = "is not a cursor this API returned; pass meta.next_cursor unchanged"

// BadCursorError reports a cursor parameter that no listing handed out, for
// a cursor only the store can tell is not one (comms.ErrBadCursor).
func BadCursorError() error {
	return &comms.ValidationError{Fields: []comms.FieldError{{Field: "cursor", Message: badCursor}}}
}

// params reports every query parameter that known does not list, every one
// given more than once and every one given empty (`?type=`), so a typo does
// not silently widen a listing.
func (c *checker) params(q url.Values, known map[string]bool) {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case !known[k]:
			c.add(k, "is not a known query parameter")
		case len(q[k]) > 1:
			c.add(k, "must be given once")
		case q[k][0] == "":
			c.add(k, "must not be empty: leave the parameter out to not filter by it")
		}
	}
}

// limit reads the limit parameter: 1–comms.MaxListLimit,
// comms.DefaultListLimit when absent.
func (c *checker) limit(q url.Values) int {
	v := q.Get("limit")
	if v == "" {
		return comms.DefaultListLimit
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > comms.MaxListLimit {
		c.add("limit", "must be an integer from 1 to %d", comms.MaxListLimit)
		return comms.DefaultListLimit
	}
	return n
}

// EventQuery is a parsed query string of an event listing.
type EventQuery struct {
	// AfterSeq is the row history's position (GET …/{id}/events).
	AfterSeq int64
	// Filter is the company feed's filter (GET /v1/events); its Now is set
	// by the use case (scheduling.Service.Feed).
	Filter comms.EventFilter
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
	eq := EventQuery{Filter: comms.EventFilter{Limit: c.limit(q)}}
	if v := q.Get("cursor"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		seq, perr := strconv.ParseInt(strings.TrimPrefix(string(b), "seq:"), 10, 64)
		if err != nil || perr != nil || !strings.HasPrefix(string(b), "seq:") || seq < 0 || seq > comms.MaxEventSequence {
			c.add("cursor", badCursor)
		}
		eq.AfterSeq = seq
	}
	return eq, c.errs.Err()
}

// EncodeHistoryCursor is the cursor of a row's history after the event
// numbered seq; ParseHistoryQuery reads it back.
func EncodeHistoryCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "seq:%d", seq))
}

// ParseFeedQuery reads the query string of GET /v1/events: limit, cursor,
// type (one type, or several separated by commas) and created_after (RFC
// 3339, inclusive).
func ParseFeedQuery(q url.Values) (EventQuery, error) {
	var c checker
	c.params(q, feedParams)
	eq := EventQuery{Filter: comms.EventFilter{Limit: c.limit(q)}}
	if v := q.Get("type"); v != "" {
		for _, t := range strings.Split(v, ",") {
			if et := comms.EventType(t); et.Valid() {
				if !slices.Contains(eq.Filter.Types, et) { // so the list never outgrows EventTypes
					eq.Filter.Types = append(eq.Filter.Types, et)
				}
			} else {
				c.add("type", "must be event types separated by commas, each one of %s", eventTypeList())
				break
			}
		}
	}
	if v := q.Get("created_after"); v != "" {
		if t, err := rfc3339.ParseDateTime(v); err == nil {
			eq.Filter.CreatedAfter = t
		} else {
			c.add("created_after", "%s (%s)", queryTimeMessage, reason(err))
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

// EncodeFeedCursor wraps the store's feed position next as the cursor the
// API hands out; ParseFeedQuery reads it back.
func EncodeFeedCursor(next string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(next))
}

func eventTypeList() string {
	s := make([]string, len(comms.EventTypes))
	for i, t := range comms.EventTypes {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// queryTimeMessage explains a time in a query string, where a '+' that is
// not escaped arrives as a space.
const queryTimeMessage = "must be an RFC 3339 date-time with an offset or Z, such as 2026-12-01T09:00:00Z; in a query string write the + of an offset as %2B"
