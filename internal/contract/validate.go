package contract

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/mailaddr"
	"github.com/dispatcherhq/dispatcher/internal/rfc3339"
)

// Bounds of the create contract.
const (
	MaxPastSkew        = 60 * time.Second
	MaxAhead           = 365 * 24 * time.Hour
	MaxSMSChars        = 1600
	MaxCancelPolicy    = 4 << 10
	MaxFollowUpHours   = comms.MaxFollowUpHours
	MaxCadenceAttempts = 10
	// MaxHTMLBytes bounds an email's HTML so that a row fits in one
	// DynamoDB item (400 KB) with room for the rest of the row.
	MaxHTMLBytes = 256 << 10
)

// CreateRequest is a validated create body: what a new row is built from.
type CreateRequest struct {
	Channel              comms.Channel
	ScheduledFor         time.Time
	Timezone             string
	RespectBusinessHours bool
	// Payload is the accepted payload as canonical JSON.
	Payload           json.RawMessage
	ContactID         string
	CustomerID        string
	DealID            string
	RelatedEntityType string
	RelatedEntityID   string
	CancelPolicy      json.RawMessage
	// Refs are the sender resources the payload names, to be resolved
	// within the company before anything is stored.
	Refs []ResourceRef
	// FollowUps is the voice cadence, if any.
	FollowUps *comms.FollowUps
}

// ResourceKind is the kind of sender resource a payload field points at.
type ResourceKind string

// The kinds of sender resources.
const (
	ResourcePhoneNumber ResourceKind = "phone_number"
	ResourceVoiceAgent  ResourceKind = "voice_agent"
	// ResourceSendingDomain is the domain of a from_email: it must be one
	// of the company's settings.sending_domains (or a subdomain of one).
	ResourceSendingDomain ResourceKind = "sending_domain"
)

// ResourceRef is one field of a payload that names a sender resource.
type ResourceRef struct {
	Field string
	Kind  ResourceKind
	// ID is the resource's id; for a sending domain, the address as sent
	// (its domain is compared in ASCII form).
	ID string
	// Capability the phone number must have ("sms"), if any.
	Capability string
}

var eventName = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,63}$`)

var emailShape = shape{
	fields: map[string]field{
		"to_email":       emailField,
		"subject":        text(1, 998, true),
		"html_body":      maxBytes(MaxHTMLBytes, text(1, MaxHTMLBytes, false)),
		"from_email":     emailField,
		"sender_user_id": uuidField,
		"mode":           text(1, 64, true),
		"contact_id":     uuidField,
		"deal_id":        uuidField,
		"customer_id":    uuidField,
		"cc":             emailList(MaxCC),
		"to_name":        text(1, 200, true),
	},
	required: []string{"to_email", "subject", "html_body"},
}

var smsShape = shape{
	fields: map[string]field{
		"phone_number_id": uuidField,
		"to_number":       e164Field,
		"message_body":    text(1, MaxSMSChars, false),
	},
	required: []string{"phone_number_id", "to_number", "message_body"},
}

var followUpsShape = shape{
	fields: map[string]field{
		"max_attempts":                   integer(1, MaxCadenceAttempts),
		"follow_up_delays":               delays,
		"voice_agent_outbound_config_id": uuidField,
		"to_number":                      e164Field,
		"respect_business_hours":         boolField,
		"dynamic_variables":              stringMap(100),
		"contact_id":                     uuidField,
		"customer_id":                    uuidField,
		"deal_id":                        uuidField,
	},
	required: []string{"max_attempts", "follow_up_delays", "voice_agent_outbound_config_id", "to_number"},
}

var voiceShape = shape{
	fields: map[string]field{
		"voice_agent_outbound_config_id": uuidField,
		"to_number":                      e164Field,
		"dynamic_variables":              stringMap(100),
		"metadata":                       anyObject,
		"follow_ups":                     followUpsField,
	},
	required: []string{"voice_agent_outbound_config_id", "to_number"},
}

func followUpsField(c *checker, path string, v any) (any, bool) {
	m, ok := c.object(path, v, followUpsShape)
	if !ok {
		return nil, false
	}
	n, okN := m["max_attempts"].(json.Number)
	d, okD := m["follow_up_delays"].([]any)
	if okN && okD {
		want, _ := strconv.Atoi(string(n))
		if len(d) != want-1 {
			c.add(join(path, "follow_up_delays"), "must have max_attempts - 1 = %d entries, has %d", want-1, len(d))
			return nil, false
		}
	}
	return m, true
}

func delays(c *checker, path string, v any) (any, bool) {
	a, ok := v.([]any)
	if !ok {
		c.add(path, "must be an array of hours, got %s", typeName(v))
		return nil, false
	}
	good := true
	for i, x := range a {
		n, ok := x.(json.Number)
		if !ok {
			c.add(index(path, i), "must be a number of hours, got %s", typeName(x))
			good = false
			continue
		}
		f, err := n.Float64()
		if err != nil || f <= 0 || f > MaxFollowUpHours {
			c.add(index(path, i), "must be more than 0 and at most %d hours", MaxFollowUpHours)
			good = false
		}
	}
	return a, good
}

// maxBytes rejects a string longer than n bytes (UTF-8), then applies f.
func maxBytes(n int, f field) field {
	return func(c *checker, path string, v any) (any, bool) {
		if s, ok := v.(string); ok && len(s) > n {
			c.add(path, "must be at most %d bytes, got %d", n, len(s))
			return nil, false
		}
		return f(c, path, v)
	}
}

// MaxCC is the most cc addresses an email takes: SES sends one message to
// at most 50 recipients (To, Cc and Bcc together; Amazon SES quotas), and
// to_email is one of them.
const MaxCC = 49

// emailList checks an array of addresses: each by the mailaddr rule, at
// most max, none repeated — compared as SES sees them (the domain in
// Punycode and lower case), so A@x.com and a@X.COM are one recipient only
// when their local parts match.
func emailList(max int) field {
	return func(c *checker, path string, v any) (any, bool) {
		a, ok := v.([]any)
		if !ok {
			c.add(path, "must be an array of e-mail addresses, got %s", typeName(v))
			return nil, false
		}
		if len(a) > max {
			c.add(path, "must have at most %d addresses", max)
			return nil, false
		}
		good := true
		seen := map[string]bool{}
		for i, x := range a {
			s, _ := x.(string)
			if _, ok := emailField(c, index(path, i), x); !ok {
				good = false
				continue
			}
			ascii, _ := mailaddr.ASCII(s)
			if seen[ascii] {
				c.add(index(path, i), "repeats %s", s)
				good = false
			}
			seen[ascii] = true
		}
		return a, good
	}
}

func cancelPolicyField(c *checker, path string, v any) (any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		c.add(path, "must be an object, got %s", typeName(v))
		return nil, false
	}
	good := true
	if raw, _ := json.Marshal(m); len(raw) > MaxCancelPolicy {
		c.add(path, "must be at most %d bytes of JSON, got %d", MaxCancelPolicy, len(raw))
		good = false
	}
	for _, k := range []string{"max_delay_minutes", "cancel_on"} {
		if x, ok := m[k]; ok && x == nil {
			delete(m, k) // null is absent, as everywhere in a request
		}
	}
	if x, ok := m["max_delay_minutes"]; ok {
		if n, ok := integer(1, 525600)(c, join(path, "max_delay_minutes"), x); ok {
			m["max_delay_minutes"] = n
		} else {
			good = false
		}
	}
	if x, ok := m["cancel_on"]; ok {
		a, isArr := x.([]any)
		switch {
		case !isArr:
			c.add(join(path, "cancel_on"), "must be an array of event names, got %s", typeName(x))
			good = false
		case len(a) == 0 || len(a) > 20:
			c.add(join(path, "cancel_on"), "must list 1 to 20 event names")
			good = false
		default:
			seen := map[string]bool{}
			for i, e := range a {
				s, isStr := e.(string)
				if !isStr || !eventName.MatchString(s) || seen[s] {
					c.add(index(join(path, "cancel_on"), i), "must be a distinct event name matching %s", eventName)
					good = false
				}
				seen[s] = true
			}
		}
	}
	return m, good
}

func scheduledFor(c *checker, path string, v any) (any, bool) {
	s, ok := v.(string)
	if !ok {
		c.add(path, "must be an RFC 3339 date-time string, got %s", typeName(v))
		return nil, false
	}
	t, err := rfc3339.ParseDateTime(s)
	if err != nil {
		c.add(path, "must be an RFC 3339 date-time with an offset or Z, such as 2026-12-01T09:00:00+11:00 (%s)", reason(err))
		return nil, false
	}
	return t, true
}

var topShape = shape{
	fields: map[string]field{
		"channel":                channelField,
		"scheduled_for":          scheduledFor,
		"payload":                anyObject,
		"timezone":               timezoneField,
		"respect_business_hours": boolField,
		"contact_id":             uuidField,
		"customer_id":            uuidField,
		"deal_id":                uuidField,
		"related_entity_id":      uuidField,
		"related_entity_type":    text(1, 64, true),
		"cancel_policy":          cancelPolicyField,
	},
	required: []string{"channel", "scheduled_for", "payload"},
}

func channelField(c *checker, path string, v any) (any, bool) {
	s, _ := v.(string)
	if ch := comms.Channel(s); ch.Valid() {
		return ch, true
	}
	c.add(path, "must be one of email, sms, voice_call")
	return nil, false
}

// ChannelOf returns the channel a decoded create body names, if it names a
// valid one (used to check the channel's scope before anything else).
func ChannelOf(doc any) (comms.Channel, bool) {
	m, _ := doc.(map[string]any)
	s, _ := m["channel"].(string)
	return comms.Channel(s), comms.Channel(s).Valid()
}

// ValidateOptions tunes ValidateCreate.
type ValidateOptions struct {
	// SkipWindow leaves scheduled_for's 60-s-past / 365-day bounds unchecked
	// (a PATCH that does not move the time of a row already held).
	SkipWindow bool
}

// ValidateCreate checks a decoded create body against the contract and
// returns the request, or a *comms.ValidationError naming every offending
// field. With the error, the request returned still carries the Refs of
// the fields that passed (from_email, phone_number_id, voice agents), so
// that the caller resolves them too and reports every problem at once.
func ValidateCreate(doc any, now time.Time, opts ValidateOptions) (CreateRequest, error) {
	var c checker
	top, ok := c.object("", doc, topShape)
	if !ok {
		return CreateRequest{}, c.errs.Err()
	}
	var req CreateRequest
	if t, ok := top["scheduled_for"].(time.Time); ok {
		req.ScheduledFor = t.UTC().Truncate(time.Millisecond)
		if !opts.SkipWindow {
			switch {
			case t.Before(now.Add(-MaxPastSkew)):
				c.add("scheduled_for", "must not be more than 60 seconds in the past")
			case t.After(now.Add(MaxAhead)):
				c.add("scheduled_for", "must be at most 365 days ahead")
			}
		}
	}
	req.Channel, _ = top["channel"].(comms.Channel)
	req.Timezone, _ = top["timezone"].(string)
	req.RespectBusinessHours, _ = top["respect_business_hours"].(bool)
	req.ContactID, _ = top["contact_id"].(string)
	req.CustomerID, _ = top["customer_id"].(string)
	req.DealID, _ = top["deal_id"].(string)
	req.RelatedEntityID, _ = top["related_entity_id"].(string)
	req.RelatedEntityType, _ = top["related_entity_type"].(string)
	if cp, ok := top["cancel_policy"]; ok {
		req.CancelPolicy = mustJSON(cp)
	}
	if p, ok := top["payload"].(map[string]any); ok && req.Channel != "" {
		c.payload(&req, p)
	}
	if err := c.errs.Err(); err != nil {
		return CreateRequest{Refs: req.Refs}, err
	}
	return req, nil
}

// payload validates the channel's payload and fills the request's payload,
// resource references and follow-ups.
// MaxStoredPayload bounds a payload as it is stored (canonical JSON, with
// its escapes: a '"' in html_body takes two bytes): a row must fit one
// DynamoDB item (400 KB) with everything else it holds.
const MaxStoredPayload = 320 << 10

func (c *checker) payload(req *CreateRequest, p map[string]any) {
	n := len(c.errs.Fields)
	defer func() {
		if len(req.Payload) > MaxStoredPayload {
			c.add("payload", "is %d bytes once stored as JSON (escapes included); at most %d", len(req.Payload), MaxStoredPayload)
		}
	}()
	switch req.Channel {
	case comms.ChannelEmail:
		out, _ := c.object("payload", p, emailShape)
		req.Payload = mustJSON(out)
		var e comms.EmailPayload
		_ = json.Unmarshal(req.Payload, &e)
		if to, err := mailaddr.ASCII(e.ToEmail); err == nil {
			for i, a := range e.CC {
				if cc, _ := mailaddr.ASCII(a); cc == to {
					c.add(index("payload.cc", i), "repeats to_email %s: SES would send it twice", a)
				}
			}
		}
		if _, ok := out["from_email"].(string); ok {
			req.Refs = append(req.Refs, ResourceRef{Field: "payload.from_email", Kind: ResourceSendingDomain, ID: e.FromEmail})
		}
		req.ContactID = firstOf(req.ContactID, e.ContactID)
		req.CustomerID = firstOf(req.CustomerID, e.CustomerID)
		req.DealID = firstOf(req.DealID, e.DealID)
	case comms.ChannelSMS:
		out, _ := c.object("payload", p, smsShape)
		req.Payload = mustJSON(out)
		if id, ok := out["phone_number_id"].(string); ok {
			req.Refs = append(req.Refs, ResourceRef{Field: "payload.phone_number_id", Kind: ResourcePhoneNumber, ID: id, Capability: "sms"})
		}
	case comms.ChannelVoice:
		out, _ := c.object("payload", p, voiceShape)
		req.Payload = mustJSON(out)
		if id, ok := out["voice_agent_outbound_config_id"].(string); ok {
			req.Refs = append(req.Refs, ResourceRef{Field: "payload.voice_agent_outbound_config_id", Kind: ResourceVoiceAgent, ID: id})
		}
		if f, ok := out["follow_ups"].(map[string]any); ok {
			if id, ok := f["voice_agent_outbound_config_id"].(string); ok {
				req.Refs = append(req.Refs, ResourceRef{Field: "payload.follow_ups.voice_agent_outbound_config_id", Kind: ResourceVoiceAgent, ID: id})
			}
		}
		if len(c.errs.Fields) == n {
			var v comms.VoicePayload
			if err := json.Unmarshal(req.Payload, &v); err != nil {
				c.add("payload", "is not a voice-call payload this API can read")
			}
			req.FollowUps = v.FollowUps
		}
	}
}

// MaxIdempotencyKey is the longest Idempotency-Key accepted.
const MaxIdempotencyKey = 255

// CheckIdempotencyKey checks an Idempotency-Key header: at most
// MaxIdempotencyKey printable ASCII characters ("" is no key).
func CheckIdempotencyKey(k string) error {
	if len(k) > MaxIdempotencyKey {
		return &comms.ValidationError{Fields: []comms.FieldError{{Field: "Idempotency-Key", Message: fmt.Sprintf("must be at most %d characters", MaxIdempotencyKey)}}}
	}
	for _, r := range k {
		if r < 0x20 || r > 0x7e {
			return &comms.ValidationError{Fields: []comms.FieldError{{Field: "Idempotency-Key", Message: "must be printable ASCII"}}}
		}
	}
	return nil
}

// HashDoc is the SHA-256 (hex) of a decoded body re-encoded canonically (sorted
// keys, no white space), so formatting does not make two bodies differ.
func HashDoc(doc any) string {
	sum := sha256.Sum256(mustJSON(doc))
	return hex.EncodeToString(sum[:])
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// mustJSON marshals a value built from decoded JSON (which cannot fail),
// leaving <, > and & as they are: payloads carry HTML.
func mustJSON(v any) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("contract: marshal decoded JSON: %v", err))
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// reason is what an rfc3339 error says is wrong, without the quoted input.
func reason(err error) string {
	var re *rfc3339.Error
	if errors.As(err, &re) {
		return re.Reason
	}
	return err.Error()
}
