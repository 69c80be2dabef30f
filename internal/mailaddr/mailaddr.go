// Package mailaddr decides which e-mail addresses Dispatcher accepts: the
// addresses Amazon SES can send to and from. It is the one rule used when a
// row is created (to_email, cc, from_email, the company's
// default_from_email), by the SES sender when it builds the message, and by
// the dev sinks, so that nothing is accepted at create and refused at send,
// and dev mode never "delivers" what SES would refuse.
//
// The rule:
//   - a bare addr-spec (RFC 5322 §3.4.1, as net/mail parses it) whose local
//     part is a dot-atom: no display name, no comments, no angle brackets,
//     no quoted local part, nothing around it;
//   - the local part in 7-bit ASCII, at most 64 octets (RFC 5321 §4.5.3.1.1):
//     SES does not support SMTPUTF8 local parts ("Amazon SES … email
//     address … must be 7-bit ASCII", SES v2 API, Destination);
//   - the domain converted with IDNA's lookup profile (UTS #46 / RFC 5891
//     §5, golang.org/x/net/idna.Lookup, which also applies the STD3 rules:
//     letters, digits and hyphens only, so an underscore is refused), then
//     held to DNS's lengths (RFC 1035 §2.3.4: labels 1–63 octets, the name
//     at most 253) and required to have at least two labels;
//   - the whole ASCII address at most 254 octets (RFC 5321 §4.5.3.1.3 with
//     its angle brackets).
//
// user@bücher.de is accepted and sent as user@xn--bcher-kva.de.
package mailaddr

import (
	"fmt"
	"net/mail"
	"strings"

	"golang.org/x/net/idna"
)

// Error says why an address is refused.
type Error struct {
	Address string
	Reason  string
}

// Error names the address and the reason.
func (e *Error) Error() string { return fmt.Sprintf("%q: %s", e.Address, e.Reason) }

// ASCII checks addr against the rule and returns the address SES is given:
// the local part as written, the domain in its ASCII (Punycode, lower-case)
// form. Errors are *Error.
func ASCII(addr string) (string, error) {
	refuse := func(format string, args ...any) (string, error) {
		return "", &Error{Address: addr, Reason: fmt.Sprintf(format, args...)}
	}
	switch at := strings.Count(addr, "@"); {
	case addr == "":
		return refuse("is empty")
	case strings.TrimSpace(addr) != addr:
		return refuse("has white space around it")
	case at == 0:
		return refuse("has no @")
	case strings.HasSuffix(addr, "@"):
		return refuse("has nothing after @")
	}
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Name != "" || a.Address != addr {
		return refuse("is not one bare address: write only local@domain, without a name, quotes, comments or a list")
	}
	at := strings.LastIndexByte(addr, '@')
	local, domain := addr[:at], addr[at+1:]
	if len(local) > 64 {
		return refuse("the part before @ is longer than 64 characters")
	}
	for i := 0; i < len(local); i++ {
		if c := local[i]; c < 0x21 || c > 0x7e {
			return refuse("the part before @ must be ASCII: Amazon SES cannot send to or from other characters there")
		}
	}
	ascii, reason := domainASCII(domain)
	if reason != "" {
		return refuse("%s", reason)
	}
	out := local + "@" + ascii
	if len(out) > 254 {
		return refuse("the address is longer than 254 characters")
	}
	return out, nil
}

// Domain checks a domain name against the rule's domain part and returns
// its ASCII form (Punycode, lower-case): bücher.de → xn--bcher-kva.de.
// Errors are *Error.
func Domain(domain string) (string, error) {
	if domain == "" {
		return "", &Error{Address: domain, Reason: "is empty"}
	}
	if strings.TrimSpace(domain) != domain {
		return "", &Error{Address: domain, Reason: "has white space around it"}
	}
	ascii, reason := domainASCII(domain)
	if reason != "" {
		return "", &Error{Address: domain, Reason: reason}
	}
	return ascii, nil
}

// DomainOf returns the ASCII form of an accepted address's domain, "" for
// an address ASCII refuses.
func DomainOf(addr string) string {
	a, err := ASCII(addr)
	if err != nil {
		return ""
	}
	return a[strings.LastIndexByte(a, '@')+1:]
}

// domainASCII is the domain part of the rule: the ASCII form, or why the
// domain is refused.
func domainASCII(domain string) (string, string) {
	ascii, err := idna.Lookup.ToASCII(domain)
	if err != nil {
		return "", fmt.Sprintf("the domain %q is not a valid domain name", domain)
	}
	labels := strings.Split(ascii, ".")
	if len(labels) < 2 {
		return "", fmt.Sprintf("the domain %q needs at least two labels, such as example.com", domain)
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 {
			return "", fmt.Sprintf("the domain %q has a label that is empty or longer than 63 characters", domain)
		}
	}
	if len(ascii) > 253 {
		return "", "the domain is longer than 253 characters"
	}
	return ascii, ""
}

// Valid reports whether ASCII accepts addr.
func Valid(addr string) bool {
	_, err := ASCII(addr)
	return err == nil
}
