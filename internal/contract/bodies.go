package contract

import (
	"errors"
	"slices"
	"strings"

	"golang.org/x/net/publicsuffix"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/mailaddr"
)

var settingsShape = shape{
	fields: map[string]field{
		"timezone":           timezoneField,
		"business_hours":     businessHoursField,
		"holidays":           holidaysField,
		"sending_domains":    sendingDomainsField,
		"default_from_email": optional(emailField),
		"default_from_name":  text(0, 200, true),
		"quiet_hours":        quietHoursField,
		// timezone_from_phone_number: place an SMS or call recipient by
		// their number when the request gives no timezone.
		"timezone_from_phone_number": boolField,
	},
	required: []string{"timezone"},
}

// clockWindowShape is one channel's quiet hours: {"start": "08:00", "end": "21:00"}.
var clockWindowShape = shape{
	fields: map[string]field{
		"start": clockField,
		"end":   clockField,
	},
	required: []string{"start", "end"},
}

// clockField takes a string; comms.Settings.Validate checks it is a
// wall-clock time, naming the same path.
func clockField(c *checker, path string, v any) (any, bool) {
	s, ok := v.(string)
	if !ok {
		c.add(path, "must be a wall-clock time \"HH:MM\", got %s", typeName(v))
		return nil, false
	}
	return s, true
}

// quietHoursField reads settings.quiet_hours: an object keyed by channel
// (voice_call, sms, email), each a window {"start", "end"} or null (no
// limit for that channel).
func quietHoursField(c *checker, path string, v any) (any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		c.add(path, "must be an object keyed by channel (voice_call, sms, email), got %s", typeName(v))
		return nil, false
	}
	var q comms.QuietHours
	for _, k := range sortedKeys(m) {
		p := join(path, k)
		ch := comms.Channel(k)
		if !slices.Contains(comms.QuietHoursChannels, ch) {
			c.add(p, "is not a channel with quiet hours; use voice_call, sms or email")
			continue
		}
		if m[k] == nil {
			continue
		}
		before := len(c.errs.Fields)
		w, _ := c.object(p, m[k], clockWindowShape)
		if len(c.errs.Fields) > before {
			continue // reported; the other channels are still checked
		}
		start, _ := w["start"].(string)
		end, _ := w["end"].(string)
		win := &comms.ClockWindow{Start: start, End: end}
		switch ch {
		case comms.ChannelVoice:
			q.VoiceCall = win
		case comms.ChannelSMS:
			q.SMS = win
		case comms.ChannelEmail:
			q.Email = win
		}
	}
	// What the shape check refused is reported and left out; the rest
	// goes to the domain's check, so every problem is reported at once.
	return q, true
}

// optional lets the empty string stand for "unset" before f checks a value.
func optional(f field) field {
	return func(c *checker, path string, v any) (any, bool) {
		if s, ok := v.(string); ok && s == "" {
			return "", true
		}
		return f(c, path, v)
	}
}

func businessHoursField(c *checker, path string, v any) (any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		c.add(path, "must be an object keyed by mon … sun, got %s", typeName(v))
		return nil, false
	}
	out := map[string][][2]string{}
	for _, day := range sortedKeys(m) {
		p := join(path, day)
		if !slices.Contains(comms.Weekdays, day) {
			c.add(p, "is not a weekday; use mon, tue, wed, thu, fri, sat, sun")
			continue
		}
		list, ok := m[day].([]any)
		if !ok {
			c.add(p, "must be an array of [start, end] pairs such as [[\"09:00\", \"17:00\"]]")
			continue
		}
		// Malformed entries keep their place (as "" pairs, which the
		// domain check skips once reported here), so that every later
		// interval is still named by its own index.
		ivs := make([][2]string, 0, len(list))
		for i, x := range list {
			pair, ok := x.([]any)
			if !ok || len(pair) != 2 {
				c.add(index(p, i), "must be a [start, end] pair such as [\"09:00\", \"17:00\"]")
				ivs = append(ivs, [2]string{})
				continue
			}
			a, okA := pair[0].(string)
			b, okB := pair[1].(string)
			if !okA || !okB {
				c.add(index(p, i), "must hold two \"HH:MM\" strings")
			}
			ivs = append(ivs, [2]string{a, b})
		}
		out[day] = ivs
	}
	// What the shape check refused is reported; the rest still goes to
	// the calendar check so that every problem is reported at once.
	return out, true
}

func holidaysField(c *checker, path string, v any) (any, bool) {
	a, ok := v.([]any)
	if !ok {
		c.add(path, "must be an array of dates YYYY-MM-DD, got %s", typeName(v))
		return nil, false
	}
	if len(a) > comms.MaxHolidays {
		c.add(path, "must list at most %d dates, got %d", comms.MaxHolidays, len(a))
		return nil, false
	}
	// Non-strings keep their place as "" (see businessHoursField).
	out := make([]string, len(a))
	for i, x := range a {
		s, ok := x.(string)
		if !ok {
			c.add(index(path, i), "must be a date YYYY-MM-DD, got %s", typeName(x))
		}
		out[i] = s
	}
	return out, true
}

// sendingDomainsField reads the domains a company sends from: at most
// comms.MaxSendingDomains domain names, each returned in its ASCII form
// (lower-case, IDNA → Punycode, as mailaddr converts an address's domain)
// and distinct once converted.
func sendingDomainsField(c *checker, path string, v any) (any, bool) {
	a, ok := v.([]any)
	if !ok {
		c.add(path, "must be an array of domain names such as \"example.com\", got %s", typeName(v))
		return nil, false
	}
	if len(a) > comms.MaxSendingDomains {
		c.add(path, "must list at most %d domains, got %d (the domains are claimed for the company in one atomic write, which bounds how many); declare a parent domain to cover its subdomains", comms.MaxSendingDomains, len(a))
		return nil, false
	}
	out := make([]string, 0, len(a))
	first := map[string]int{}
	good := true
	for i, x := range a {
		p := index(path, i)
		s, ok := x.(string)
		if !ok {
			c.add(p, "must be a domain name such as \"example.com\", got %s", typeName(x))
			good = false
			continue
		}
		d, err := mailaddr.Domain(s)
		if err != nil {
			var me *mailaddr.Error
			reason := "is not a valid domain name"
			if errors.As(err, &me) {
				reason = me.Reason
			}
			c.add(p, "must be a domain name such as \"example.com\" (no @, no trailing dot); %q: %s", s, reason)
			good = false
			continue
		}
		if suffix, icann := publicsuffix.PublicSuffix(d); suffix == d && (icann || strings.Contains(d, ".")) {
			// co.uk, com.au, github.io: nobody sends from the suffix itself,
			// and declaring it would claim every domain under it.
			c.add(p, "must be a domain registered under a public suffix, not the suffix %q itself (Public Suffix List)", d)
			good = false
			continue
		}
		if j, seen := first[d]; seen {
			c.add(p, "repeats %s (%s)", d, index(path, j))
			good = false
			continue
		}
		first[d] = i
		out = append(out, d)
	}
	return out, good
}

// ParseSettings reads a PUT /v1/settings body: the document as sent, its
// business hours and holidays checked by comms.Settings.Validate. Every
// problem is reported at once: the shape's and the calendar's, a field the
// shape check already named not named again. Defaults are not filled in.
func ParseSettings(body []byte) (comms.Settings, error) {
	doc, err := DecodeJSON(body)
	if err != nil {
		return comms.Settings{}, err
	}
	var c checker
	m, _ := c.object("", doc, settingsShape)
	set := comms.Settings{}
	set.Timezone, _ = m["timezone"].(string)
	if bh, ok := m["business_hours"].(map[string][][2]string); ok {
		set.BusinessHours = bh
	}
	set.Holidays, _ = m["holidays"].([]string)
	set.SendingDomains, _ = m["sending_domains"].([]string)
	set.DefaultFromEmail, _ = m["default_from_email"].(string)
	set.DefaultFromName, _ = m["default_from_name"].(string)
	set.QuietHours, _ = m["quiet_hours"].(comms.QuietHours)
	set.TimezoneFromPhoneNumber, _ = m["timezone_from_phone_number"].(bool)
	// The default sender must be at one of the declared domains; checked
	// only when both fields were read without a problem of their own.
	if set.DefaultFromEmail != "" && !slices.ContainsFunc(c.errs.Fields, func(f comms.FieldError) bool {
		return strings.HasPrefix(f.Field, "sending_domains") || f.Field == "default_from_email"
	}) {
		if msg := NotSendingDomain(set.DefaultFromEmail, set.SendingDomains); msg != "" {
			c.add("default_from_email", "%s", msg)
		}
	}
	var ve *comms.ValidationError
	if errors.As(set.Validate(), &ve) {
		for _, f := range ve.Fields {
			if !reported(c.errs.Fields, f.Field) {
				c.errs.Fields = append(c.errs.Fields, f)
			}
		}
	}
	if err := c.errs.Err(); err != nil {
		return comms.Settings{}, err
	}
	return set, nil
}

// NotSendingDomain says why addr (an accepted address) may not be sent
// from by a company declaring domains, "" when it may: its domain must be
// one of them or a subdomain of one (comms.CoveringDomain).
func NotSendingDomain(addr string, domains []string) string {
	d := mailaddr.DomainOf(addr)
	if comms.CoveringDomain(d, domains) != "" {
		return ""
	}
	if len(domains) == 0 {
		return "domain " + d + " is not one of the company's sending_domains (settings.sending_domains): none is declared; declare a domain of the company's own in settings.sending_domains first, or leave from_email out to send from the deployment's default address"
	}
	return "domain " + d + " is not one of the company's sending_domains (settings.sending_domains), nor a subdomain of one; declare it in settings.sending_domains first if it is the company's own, or leave from_email out to send from the deployment's default address"
}

// reported tells whether field, or the field it is part of, is in fields.
func reported(fields []comms.FieldError, field string) bool {
	for _, f := range fields {
		if f.Field == field || strings.HasPrefix(field, f.Field+"[") || strings.HasPrefix(field, f.Field+".") {
			return true
		}
	}
	return false
}

var phoneShape = shape{
	fields: map[string]field{
		"e164":         e164Field,
		"capabilities": capabilitiesField,
		"label":        text(0, 200, true),
	},
	required: []string{"e164", "capabilities"},
}

func capabilitiesField(c *checker, path string, v any) (any, bool) {
	a, ok := v.([]any)
	if !ok || len(a) == 0 {
		c.add(path, "must be a non-empty array of \"sms\" and/or \"voice\"")
		return nil, false
	}
	seen := map[string]bool{}
	out := []string{}
	for i, x := range a {
		s, _ := x.(string)
		if (s != "sms" && s != "voice") || seen[s] {
			c.add(index(path, i), "must be \"sms\" or \"voice\", each at most once")
			return nil, false
		}
		seen[s] = true
		out = append(out, s)
	}
	return out, true
}

var agentShape = shape{
	fields: map[string]field{
		"provider":        providerField,
		"agent_id":        text(1, 200, true),
		"phone_number_id": uuidField,
		"label":           text(0, 200, true),
	},
	required: []string{"provider", "agent_id", "phone_number_id"},
}

// VoiceProviders are the voice-AI platforms an agent can belong to.
var VoiceProviders = []string{"retell"}

func providerField(c *checker, path string, v any) (any, bool) {
	s, _ := v.(string)
	for _, p := range VoiceProviders {
		if s == p {
			return s, true
		}
	}
	c.add(path, "must be one of %s", strings.Join(VoiceProviders, ", "))
	return nil, false
}

// ResourceID checks a caller-chosen resource id from the path and returns
// it lowercased.
func ResourceID(id string) (string, error) {
	u, ok := comms.UUIDString(id)
	if !ok {
		return "", &comms.ValidationError{Fields: []comms.FieldError{{Field: "id", Message: "must be a UUID"}}}
	}
	return u, nil
}

// ParsePhoneNumber reads a PUT /v1/phone-numbers/{id} body into the
// number's E164, Capabilities and Label.
func ParsePhoneNumber(body []byte) (comms.PhoneNumber, error) {
	doc, err := DecodeJSON(body)
	if err != nil {
		return comms.PhoneNumber{}, err
	}
	var c checker
	m, _ := c.object("", doc, phoneShape)
	if err := c.errs.Err(); err != nil {
		return comms.PhoneNumber{}, err
	}
	var pn comms.PhoneNumber
	pn.E164, _ = m["e164"].(string)
	pn.Capabilities, _ = m["capabilities"].([]string)
	pn.Label, _ = m["label"].(string)
	return pn, nil
}

// ParseVoiceAgent reads a PUT /v1/voice-agents/{id} body into the agent's
// Provider, AgentID, PhoneNumberID and Label, each set only when valid.
// Only a body that is not JSON is an error; problems (never nil) lists the
// offending fields, to which the caller adds what only the store can tell
// (whether the phone number exists) before reporting them all at once.
func ParseVoiceAgent(body []byte) (a comms.VoiceAgent, problems *comms.ValidationError, err error) {
	doc, err := DecodeJSON(body)
	if err != nil {
		return comms.VoiceAgent{}, nil, err
	}
	var c checker
	m, _ := c.object("", doc, agentShape)
	a.Provider, _ = m["provider"].(string)
	a.AgentID, _ = m["agent_id"].(string)
	a.PhoneNumberID, _ = m["phone_number_id"].(string)
	a.Label, _ = m["label"].(string)
	return a, &c.errs, nil
}

var cancelEventShape = shape{
	fields: map[string]field{
		"event":       text(1, 64, true),
		"contact_id":  uuidField,
		"customer_id": uuidField,
		"deal_id":     uuidField,
	},
	required: []string{"event"},
}

// CancelByEventRequest is a checked POST
// /v1/scheduled-communications/cancel-by-event body: the event and the one
// entity it concerns.
type CancelByEventRequest struct {
	Event      string
	ContactID  string
	CustomerID string
	DealID     string
}

// ParseCancelByEvent reads a cancel-by-event body: an event name and
// exactly one of contact_id, deal_id, customer_id.
func ParseCancelByEvent(body []byte) (CancelByEventRequest, error) {
	doc, err := DecodeJSON(body)
	if err != nil {
		return CancelByEventRequest{}, err
	}
	var c checker
	m, _ := c.object("", doc, cancelEventShape)
	var req CancelByEventRequest
	req.Event, _ = m["event"].(string)
	if req.Event != "" && !eventName.MatchString(req.Event) {
		c.add("event", "must be an event name matching %s", eventName)
	}
	req.ContactID, _ = m["contact_id"].(string)
	req.CustomerID, _ = m["customer_id"].(string)
	req.DealID, _ = m["deal_id"].(string)
	if n := countSet(req.ContactID, req.CustomerID, req.DealID); n != 1 && len(c.errs.Fields) == 0 {
		c.add("body", "must name exactly one of contact_id, deal_id, customer_id")
	}
	if err := c.errs.Err(); err != nil {
		return CancelByEventRequest{}, err
	}
	return req, nil
}

func countSet(ss ...string) int {
	n := 0
	for _, s := range ss {
		if s != "" {
			n++
		}
	}
	return n
}
