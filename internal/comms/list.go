package comms

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"sort"
	"strconv"
	"time"
)

// Paging bounds of a listing.
const (
	DefaultListLimit = 50
	MaxListLimit     = 100
)

// EncodeCursor makes the opaque cursor string of a position.
func EncodeCursor(c Cursor) string {
	b, _ := json.Marshal(struct {
		T int64  `json:"t"`
		I string `json:"i"`
	}{c.ScheduledFor.UnixNano(), c.ID})
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a cursor made by EncodeCursor.
func DecodeCursor(s string) (Cursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, false
	}
	var v struct {
		T *int64 `json:"t"`
		I string `json:"i"`
	}
	if json.Unmarshal(b, &v) != nil || v.T == nil {
		return Cursor{}, false
	}
	id, ok := UUIDString(v.I)
	if !ok {
		return Cursor{}, false
	}
	return Cursor{ScheduledFor: time.Unix(0, *v.T).UTC(), ID: id}, true
}

var listParams = map[string]bool{
	"status": true, "channel": true, "contact_id": true, "customer_id": true, "deal_id": true,
	"cadence_root_id": true, "scheduled_after": true, "scheduled_before": true, "limit": true, "cursor": true,
}

// ParseListQuery reads the query string of a listing, reporting every
// offending parameter (unknown ones too, so a typo does not silently list
// everything).
func ParseListQuery(q url.Values) (ListFilter, error) {
	var c checker
	f := ListFilter{Limit: DefaultListLimit}
	c.params(q, listParams)
	if v := q.Get("status"); v != "" {
		if f.Status = Status(v); !f.Status.Valid() {
			c.add("status", "must be one of pending, processing, sent, failed, cancelled")
		}
	}
	if v := q.Get("channel"); v != "" {
		if f.Channel = Channel(v); !f.Channel.Valid() {
			c.add("channel", "must be one of email, sms, voice_call")
		}
	}
	for _, p := range []struct {
		name string
		dst  *string
	}{{"contact_id", &f.ContactID}, {"customer_id", &f.CustomerID}, {"deal_id", &f.DealID}, {"cadence_root_id", &f.CadenceRootID}} {
		if v := q.Get(p.name); v != "" {
			if u, ok := UUIDString(v); ok {
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
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				*p.dst = t.UTC()
			} else {
				c.add(p.name, "must be an RFC 3339 date-time with an offset or Z")
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

// params reports every query parameter that known does not list, and every
// one given more than once, so a typo does not silently widen a listing.
func (c *checker) params(q url.Values, known map[string]bool) {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !known[k] {
			c.add(k, "is not a known query parameter")
		} else if len(q[k]) > 1 {
			c.add(k, "must be given once")
		}
	}
}

// limit reads the limit parameter: 1–MaxListLimit, DefaultListLimit when absent.
func (c *checker) limit(q url.Values) int {
	v := q.Get("limit")
	if v == "" {
		return DefaultListLimit
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxListLimit {
		c.add("limit", "must be an integer from 1 to %d", MaxListLimit)
		return DefaultListLimit
	}
	return n
}
