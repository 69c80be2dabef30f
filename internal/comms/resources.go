package comms

import (
	"context"
	"errors"
	"fmt"
)

var settingsShape = shape{
	fields: map[string]field{
		"timezone":           timezoneField,
		"business_hours":     businessHoursField,
		"holidays":           holidaysField,
		"default_from_email": optional(emailField),
		"default_from_name":  text(0, 200, true),
	},
	required: []string{"timezone"},
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
	good := true
	for _, day := range sortedKeys(m) {
		p := join(path, day)
		if _, ok := weekdayIndex[day]; !ok {
			c.add(p, "is not a weekday; use mon, tue, wed, thu, fri, sat, sun")
			good = false
			continue
		}
		list, ok := m[day].([]any)
		if !ok {
			c.add(p, "must be an array of [start, end] pairs such as [[\"09:00\", \"17:00\"]]")
			good = false
			continue
		}
		ivs := [][2]string{}
		for i, x := range list {
			pair, ok := x.([]any)
			if !ok || len(pair) != 2 {
				c.add(index(p, i), "must be a [start, end] pair such as [\"09:00\", \"17:00\"]")
				good = false
				continue
			}
			a, okA := pair[0].(string)
			b, okB := pair[1].(string)
			if !okA || !okB {
				c.add(index(p, i), "must hold two \"HH:MM\" strings")
				good = false
				continue
			}
			ivs = append(ivs, [2]string{a, b})
		}
		out[day] = ivs
	}
	return out, good
}

func holidaysField(c *checker, path string, v any) (any, bool) {
	a, ok := v.([]any)
	if !ok {
		c.add(path, "must be an array of dates YYYY-MM-DD, got %s", typeName(v))
		return nil, false
	}
	out := make([]string, 0, len(a))
	good := true
	for i, x := range a {
		s, ok := x.(string)
		if !ok {
			c.add(index(path, i), "must be a date YYYY-MM-DD, got %s", typeName(x))
			good = false
			continue
		}
		out = append(out, s)
	}
	return out, good
}

// Settings returns the caller's company settings with defaults filled in.
func (s *Service) Settings(ctx context.Context, p Principal) (Settings, error) {
	co, err := s.store.GetCompany(ctx, p.CompanyID)
	if err != nil {
		return Settings{}, fmt.Errorf("store.GetCompany: %w", err)
	}
	return co.Settings.WithDefaults(), nil
}

// PutSettings validates and replaces the caller's settings document.
func (s *Service) PutSettings(ctx context.Context, p Principal, body []byte) (Settings, error) {
	doc, err := DecodeJSON(body)
	if err != nil {
		return Settings{}, err
	}
	var c checker
	m, _ := c.object("", doc, settingsShape)
	set := Settings{}
	set.Timezone, _ = m["timezone"].(string)
	if bh, ok := m["business_hours"].(map[string][][2]string); ok {
		set.BusinessHours = bh
	}
	set.Holidays, _ = m["holidays"].([]string)
	set.DefaultFromEmail, _ = m["default_from_email"].(string)
	set.DefaultFromName, _ = m["default_from_name"].(string)
	if len(c.errs.Fields) == 0 {
		set.calendar(&c)
	}
	if err := c.errs.Err(); err != nil {
		return Settings{}, err
	}
	set = set.WithDefaults()
	if err := s.store.PutSettings(ctx, p.CompanyID, set); err != nil {
		return Settings{}, fmt.Errorf("store.PutSettings: %w", err)
	}
	return set, nil
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
	c.add(path, "must be one of %v", VoiceProviders)
	return nil, false
}

// resourceID checks a caller-chosen resource id from the path.
func resourceID(id string) (string, error) {
	u, ok := UUIDString(id)
	if !ok {
		return "", &ValidationError{Fields: []FieldError{{Field: "id", Message: "must be a UUID"}}}
	}
	return u, nil
}

// PutPhoneNumber creates or replaces a sender phone number.
func (s *Service) PutPhoneNumber(ctx context.Context, p Principal, id string, body []byte) (PhoneNumber, error) {
	id, err := resourceID(id)
	if err != nil {
		return PhoneNumber{}, err
	}
	doc, err := DecodeJSON(body)
	if err != nil {
		return PhoneNumber{}, err
	}
	var c checker
	m, _ := c.object("", doc, phoneShape)
	if err := c.errs.Err(); err != nil {
		return PhoneNumber{}, err
	}
	now := s.clock()
	pn := PhoneNumber{ID: id, CompanyID: p.CompanyID, CreatedAt: now, UpdatedAt: now}
	pn.E164, _ = m["e164"].(string)
	pn.Capabilities, _ = m["capabilities"].([]string)
	pn.Label, _ = m["label"].(string)
	if err := s.store.PutPhoneNumber(ctx, pn); err != nil {
		return PhoneNumber{}, fmt.Errorf("store.PutPhoneNumber: %w", err)
	}
	return s.store.GetPhoneNumber(ctx, p.CompanyID, id)
}

// PhoneNumber returns one sender phone number.
func (s *Service) PhoneNumber(ctx context.Context, p Principal, id string) (PhoneNumber, error) {
	u, ok := UUIDString(id)
	if !ok {
		return PhoneNumber{}, fmt.Errorf("comms.PhoneNumber: malformed id: %w", ErrNotFound)
	}
	return s.store.GetPhoneNumber(ctx, p.CompanyID, u)
}

// PhoneNumbers lists the company's sender phone numbers.
func (s *Service) PhoneNumbers(ctx context.Context, p Principal) ([]PhoneNumber, error) {
	return s.store.ListPhoneNumbers(ctx, p.CompanyID)
}

// DeletePhoneNumber removes a sender phone number. Rows that still name it
// fail with unknown_resource when they are dispatched.
func (s *Service) DeletePhoneNumber(ctx context.Context, p Principal, id string) error {
	u, ok := UUIDString(id)
	if !ok {
		return fmt.Errorf("comms.DeletePhoneNumber: malformed id: %w", ErrNotFound)
	}
	return s.store.DeletePhoneNumber(ctx, p.CompanyID, u)
}

// PutVoiceAgent creates or replaces an outbound voice-agent configuration;
// its phone number must be one of the company's with the voice capability.
func (s *Service) PutVoiceAgent(ctx context.Context, p Principal, id string, body []byte) (VoiceAgent, error) {
	id, err := resourceID(id)
	if err != nil {
		return VoiceAgent{}, err
	}
	doc, err := DecodeJSON(body)
	if err != nil {
		return VoiceAgent{}, err
	}
	var c checker
	m, _ := c.object("", doc, agentShape)
	if pid, ok := m["phone_number_id"].(string); ok {
		pn, err := s.store.GetPhoneNumber(ctx, p.CompanyID, pid)
		switch {
		case errors.Is(err, ErrNotFound):
			c.add("phone_number_id", "names no phone number of this company")
		case err != nil:
			return VoiceAgent{}, fmt.Errorf("store.GetPhoneNumber: %w", err)
		case !pn.HasCapability("voice"):
			c.add("phone_number_id", "names a phone number without the voice capability")
		}
	}
	if err := c.errs.Err(); err != nil {
		return VoiceAgent{}, err
	}
	now := s.clock()
	a := VoiceAgent{ID: id, CompanyID: p.CompanyID, CreatedAt: now, UpdatedAt: now}
	a.Provider, _ = m["provider"].(string)
	a.AgentID, _ = m["agent_id"].(string)
	a.PhoneNumberID, _ = m["phone_number_id"].(string)
	a.Label, _ = m["label"].(string)
	if err := s.store.PutVoiceAgent(ctx, a); err != nil {
		return VoiceAgent{}, fmt.Errorf("store.PutVoiceAgent: %w", err)
	}
	return s.store.GetVoiceAgent(ctx, p.CompanyID, id)
}

// VoiceAgent returns one voice-agent configuration.
func (s *Service) VoiceAgent(ctx context.Context, p Principal, id string) (VoiceAgent, error) {
	u, ok := UUIDString(id)
	if !ok {
		return VoiceAgent{}, fmt.Errorf("comms.VoiceAgent: malformed id: %w", ErrNotFound)
	}
	return s.store.GetVoiceAgent(ctx, p.CompanyID, u)
}

// VoiceAgents lists the company's voice-agent configurations.
func (s *Service) VoiceAgents(ctx context.Context, p Principal) ([]VoiceAgent, error) {
	return s.store.ListVoiceAgents(ctx, p.CompanyID)
}

// DeleteVoiceAgent removes a voice-agent configuration. Rows that still
// name it fail with unknown_resource when they are dispatched.
func (s *Service) DeleteVoiceAgent(ctx context.Context, p Principal, id string) error {
	u, ok := UUIDString(id)
	if !ok {
		return fmt.Errorf("comms.DeleteVoiceAgent: malformed id: %w", ErrNotFound)
	}
	return s.store.DeleteVoiceAgent(ctx, p.CompanyID, u)
}
