package comms

import (
	"slices"
	"strings"
)

// Weekdays are the keys of Settings.BusinessHours, Monday first.
var Weekdays = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// Settings is a company's document of defaults: its timezone, weekly
// business hours, holidays, the domains it sends email from and its
// default sender.
type Settings struct {
	// Timezone is the IANA zone used when a row names none.
	Timezone string `json:"timezone"`
	// BusinessHours maps mon…sun to [start, end) intervals in local wall
	// time ("09:00", "17:00"; end may be "24:00"). Every weekday is present.
	BusinessHours map[string][][2]string `json:"business_hours"`
	// Holidays are local dates (YYYY-MM-DD) on which no window opens.
	Holidays []string `json:"holidays"`
	// SendingDomains are the e-mail domains the company sends from, in
	// their ASCII form (lower-case, IDNA → Punycode), distinct, at most
	// MaxSendingDomains. A from_email or default_from_email must be at one
	// of them or at a subdomain of one (see SendsFrom).
	SendingDomains   []string `json:"sending_domains"`
	DefaultFromEmail string   `json:"default_from_email"`
	DefaultFromName  string   `json:"default_from_name"`
	// QuietHours are, per channel, the window of the recipient's local
	// time in which sending is allowed at all (none by default).
	QuietHours QuietHours `json:"quiet_hours"`
	// TimezoneFromPhoneNumber places the recipient of an SMS or call that
	// names no timezone by its number (RecipientZones) before the
	// company's timezone. Off by default.
	TimezoneFromPhoneNumber bool `json:"timezone_from_phone_number"`
}

// MaxSendingDomains is the most sending domains a company declares. It is
// bounded by what one DynamoDB transaction holds (100 items): a settings
// write claims every new domain and releases every dropped one in the same
// transaction as the document, so 40 new + 40 released + the document + the
// claims' version counter = 82.
const MaxSendingDomains = 40

// ReverseDomain writes an ASCII domain with its labels in reverse order
// ("mail.example.com" → "com.example.mail"), the key under which stores
// claim it: a domain's subdomains are then exactly the keys that begin
// with its reversed form and ".".
func ReverseDomain(domain string) string {
	labels := strings.Split(domain, ".")
	slices.Reverse(labels)
	return strings.Join(labels, ".")
}

// ParentDomains returns the proper parents of an ASCII domain, nearest
// first: "a.mail.example.com" → "mail.example.com", "example.com", "com".
func ParentDomains(domain string) []string {
	var out []string
	for i := strings.IndexByte(domain, '.'); i >= 0; i = strings.IndexByte(domain, '.') {
		domain = domain[i+1:]
		out = append(out, domain)
	}
	return out
}

// SendsFrom reports whether domain (ASCII, lower-case, as
// mailaddr.DomainOf returns it) is one of the company's sending domains or
// a subdomain of one: declaring example.com covers mail.example.com, as a
// verified SES domain identity lets its owner send from any subdomain.
func (s Settings) SendsFrom(domain string) bool {
	return CoveringDomain(domain, s.SendingDomains) != ""
}

// CoveringDomain returns the entry of declared that domain is, or is a
// subdomain of ("" when none is).
func CoveringDomain(domain string, declared []string) string {
	if domain == "" {
		return ""
	}
	for _, d := range declared {
		if domain == d || strings.HasSuffix(domain, "."+d) {
			return d
		}
	}
	return ""
}

// DefaultSettings is what a company has before it PUTs its own: UTC,
// Monday to Friday 09:00–17:00, no holidays, no sending domains, no
// default sender, no quiet hours, zones not taken from phone numbers.
func DefaultSettings() Settings {
	bh := make(map[string][][2]string, 7)
	for _, d := range Weekdays {
		bh[d] = [][2]string{}
	}
	for _, d := range Weekdays[:5] {
		bh[d] = [][2]string{{"09:00", "17:00"}}
	}
	return Settings{Timezone: "UTC", BusinessHours: bh, Holidays: []string{}, SendingDomains: []string{}}
}

// WithDefaults fills in what a stored document leaves empty.
func (s Settings) WithDefaults() Settings {
	d := DefaultSettings()
	if s.Timezone == "" {
		s.Timezone = d.Timezone
	}
	if s.BusinessHours == nil {
		s.BusinessHours = d.BusinessHours
	} else {
		bh := make(map[string][][2]string, 7)
		for _, day := range Weekdays {
			iv := s.BusinessHours[day]
			if iv == nil {
				iv = [][2]string{}
			}
			bh[day] = iv
		}
		s.BusinessHours = bh
	}
	if s.Holidays == nil {
		s.Holidays = []string{}
	}
	if s.SendingDomains == nil {
		s.SendingDomains = []string{}
	}
	return s
}
