package contract

import (
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

var suppressionShape = shape{
	fields: map[string]field{
		"channel":   suppressionChannelField,
		"recipient": text(1, 320, true),
		"detail":    optional(text(0, 500, true)),
	},
	required: []string{"channel", "recipient"},
}

func suppressionChannelField(c *checker, path string, v any) (any, bool) {
	s, ok := v.(string)
	if !ok || !comms.SuppressionChannel(s).Valid() {
		c.add(path, "must be email or sms")
		return nil, false
	}
	return s, true
}

// ParseSuppression reads a PUT /v1/suppressions body {channel, recipient,
// detail}: the recipient must be an e-mail address SES can send to (email)
// or an E.164 number (sms). The result's Recipient is normalized
// (comms.NormalizeRecipient).
func ParseSuppression(body []byte) (comms.Suppression, error) {
	doc, err := DecodeJSON(body)
	if err != nil {
		return comms.Suppression{}, err
	}
	var c checker
	m, _ := c.object("", doc, suppressionShape)
	var s comms.Suppression
	ch, _ := m["channel"].(string)
	s.Channel = comms.SuppressionChannel(ch)
	s.Detail, _ = m["detail"].(string)
	if r, ok := m["recipient"].(string); ok && s.Channel != "" {
		s.Recipient = checkRecipient(&c, "recipient", s.Channel, r)
	}
	if err := c.errs.Err(); err != nil {
		return comms.Suppression{}, err
	}
	return s, nil
}

// checkRecipient checks a recipient of a channel and returns it normalized
// ("" when invalid, with the problem reported at path).
func checkRecipient(c *checker, path string, ch comms.SuppressionChannel, r string) string {
	if ch == comms.SuppressSMS {
		if _, ok := e164Field(c, path, r); !ok {
			return ""
		}
	} else if _, ok := emailField(c, path, r); !ok {
		return ""
	}
	return comms.NormalizeRecipient(ch, r)
}

// SuppressionKey checks the {channel} and {recipient} of a
// /v1/suppressions/{channel}/{recipient} path and returns them normalized.
func SuppressionKey(channel, recipient string) (comms.SuppressionChannel, string, error) {
	var c checker
	ch := comms.SuppressionChannel(channel)
	if !ch.Valid() {
		c.add("channel", "must be email or sms")
		return "", "", c.errs.Err()
	}
	r := checkRecipient(&c, "recipient", ch, recipient)
	return ch, r, c.errs.Err()
}

var suppressionParams = map[string]bool{"channel": true, "recipient": true, "include_lifted": true, "limit": true, "cursor": true}

// ParseSuppressionQuery reads GET /v1/suppressions's query: channel,
// recipient (needs channel), include_lifted (true|false), limit, cursor.
func ParseSuppressionQuery(q url.Values) (comms.SuppressionFilter, error) {
	var c checker
	c.params(q, suppressionParams)
	f := comms.SuppressionFilter{Limit: c.limit(q)}
	if v := q.Get("channel"); v != "" {
		if f.Channel = comms.SuppressionChannel(v); !f.Channel.Valid() {
			c.add("channel", "must be email or sms")
		}
	}
	if v := q.Get("recipient"); v != "" {
		if !f.Channel.Valid() {
			if q.Get("channel") == "" {
				c.add("recipient", "needs channel (email or sms) to say what kind of recipient it is")
			}
		} else {
			f.Recipient = checkRecipient(&c, "recipient", f.Channel, v)
		}
	}
	switch q.Get("include_lifted") {
	case "", "false":
	case "true":
		f.IncludeLifted = true
	default:
		c.add("include_lifted", "must be true or false")
	}
	if v := q.Get("cursor"); v != "" {
		after, filters, ok := decodeSuppressionCursor(v)
		switch {
		case !ok:
			c.add("cursor", badCursor)
		case c.errs.Err() == nil && filters != suppressionFilters(f):
			// A cursor pages the listing it came from: with other filters
			// it would skip or repeat suppressions of this one.
			c.add("cursor", "was returned for a listing with other filters (channel, recipient, include_lifted); repeat the query that returned it, or drop cursor to start this one")
		default:
			f.After = after
		}
	}
	return f, c.errs.Err()
}

// suppressionFilters is the part of a cursor that ties it to the listing's
// filters: channel, recipient and include_lifted.
func suppressionFilters(f comms.SuppressionFilter) string {
	return fmt.Sprintf("%s\x01%s\x01%t", f.Channel, f.Recipient, f.IncludeLifted)
}

// SuppressionCursor is the opaque cursor (base64url, URL-safe as it is) of
// a listing's last suppression under filters f: the store's position
// "<channel>:<recipient>", then f's filters (a cursor used with other
// filters is refused), then a checksum of both.
func SuppressionCursor(s comms.Suppression, f comms.SuppressionFilter) string {
	pos := string(s.Channel) + ":" + s.Recipient + "\x00" + suppressionFilters(f)
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%s\x00%08x", pos, checksum(pos)))
}

// checksum makes a truncated or edited cursor fail to decode instead of
// naming another valid position (FNV-1a, 32 bits: against accidents, not
// forgery — a forged position only pages from there in the caller's own
// suppressions).
func checksum(pos string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(pos))
	return h.Sum32()
}

// decodeSuppressionCursor reads a cursor made by SuppressionCursor into
// the store's position and the filters it was made for.
func decodeSuppressionCursor(v string) (string, string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || !utf8.Valid(b) {
		return "", "", false
	}
	i := strings.LastIndexByte(string(b), 0)
	if i < 0 {
		return "", "", false
	}
	body, sum := string(b[:i]), string(b[i+1:])
	if sum != fmt.Sprintf("%08x", checksum(body)) {
		return "", "", false
	}
	pos, filters, ok := strings.Cut(body, "\x00")
	if !ok {
		return "", "", false
	}
	ch, r, ok := strings.Cut(pos, ":")
	if !ok || !comms.SuppressionChannel(ch).Valid() || r == "" || r != comms.NormalizeRecipient(comms.SuppressionChannel(ch), r) {
		return "", "", false
	}
	// Only a recipient a suppression can have (a store key is bounded).
	valid := Email
	if comms.SuppressionChannel(ch) == comms.SuppressSMS {
		valid = E164
	}
	return pos, filters, valid(r)
}
