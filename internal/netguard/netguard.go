// Package netguard keeps outbound webhook requests (issue 12) from reaching anything but the
// public internet: server-side request forgery protection, as the Standard Webhooks
// specification's "Server side request forgery (SSRF)" section asks of a webhook sender.
//
// It checks twice. CheckURL, at registration, refuses a URL whose host is, or resolves to, a
// forbidden address (see CheckAddr for the rule: the non-global ranges of the RFC 6890
// special-purpose registries — RFC 1918 private, RFC 4193 unique local, RFC 6598 shared CGNAT,
// loopback, link-local, multicast, … — and the cloud metadata addresses). Dialer and Transport,
// at every connection, re-check the address actually connected to, after resolution, so a name
// that resolves to a public address at registration and to 169.254.169.254 later (DNS rebinding)
// still cannot reach it.
package netguard

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// MaxURLLength is the longest URL CheckURL accepts, in bytes.
const MaxURLLength = 2048

// Resolver resolves a host name; *net.Resolver (net.DefaultResolver) is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Options is the rule in force.
type Options struct {
	// AllowLoopbackHTTP is the embedded mode (`make dev`): loopback addresses (127.0.0.0/8,
	// ::1) are allowed, and a URL whose host is loopback may use http, so a local receiver works.
	// Every other forbidden range stays forbidden. Off (AWS): https only, loopback refused.
	// The dialer cannot tell http from https, so in this mode a name checked as loopback that
	// later resolves to a public address would be reached over http: a plaintext request to the
	// public internet, never to a forbidden address.
	AllowLoopbackHTTP bool
	// Resolver resolves host names in CheckURL; nil means net.DefaultResolver.
	Resolver Resolver
}

// Errors: every error of this package is an *Error matching one of these.
var (
	// ErrInvalidURL: the URL is not an absolute https (or, embedded, loopback http) URL
	// of acceptable form.
	ErrInvalidURL = errors.New("netguard: invalid URL")
	// ErrForbiddenAddress: the host is, or resolves to, or a connection was about to reach, an
	// address the rule forbids.
	ErrForbiddenAddress = errors.New("netguard: forbidden address")
	// ErrResolve: the host name did not resolve (or resolved to nothing).
	ErrResolve = errors.New("netguard: host does not resolve")
)

// Error says why a URL or address is refused. Reason is a sentence fit to show the API client
// as the problem with the field `url` (a 422).
type Error struct {
	Reason string
	// Addr is the refused address, when an address is the reason.
	Addr netip.Addr
	kind error
}

func (e *Error) Error() string { return e.Reason }

// Unwrap returns ErrInvalidURL, ErrForbiddenAddress or ErrResolve.
func (e *Error) Unwrap() error { return e.kind }

func invalid(format string, args ...any) error {
	return &Error{Reason: fmt.Sprintf(format, args...), kind: ErrInvalidURL}
}

// CheckURL parses raw and returns it if Dispatcher may deliver webhooks to it under o:
//
//   - absolute, at most MaxURLLength bytes, with a host, no user name or password, and a port,
//     if any, in 1–65535;
//   - scheme https; http only with o.AllowLoopbackHTTP and a host that is loopback (every
//     address of it);
//   - a literal IP host is a canonical dotted quad (203.0.113.7) or a bracketed IPv6 address
//     without a zone. Anything else whose last label is numeric — 2130706433, 0x7f000001,
//     0177.0.0.1, 127.1, 127.0.0.1. — is refused: such forms mean an IPv4 address to URL parsers
//     (WHATWG's "ends in a number") and to inet_aton-style resolvers, but not the same one to all
//     of them, so only the canonical form is judged and passed on;
//   - a name is ASCII DNS syntax (IDNs in their xn-- form), resolved with o.Resolver, and EVERY
//     address it resolves to must be allowed (CheckAddr), so a name with one private address
//     among public ones is refused too;
//   - the address rule is CheckAddr's.
//
// The error is an *Error: ErrInvalidURL, ErrForbiddenAddress or ErrResolve.
func CheckURL(ctx context.Context, raw string, o Options) (*url.URL, error) {
	if len(raw) > MaxURLLength {
		return nil, invalid("must be at most %d characters", MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, invalid("is not a valid URL")
	}
	if !u.IsAbs() || u.Opaque != "" || u.Host == "" {
		return nil, invalid("must be an absolute URL such as https://example.com/webhooks")
	}
	if u.User != nil {
		return nil, invalid("must not contain a user name or password")
	}
	var errHTTP error // http where it is not allowed: reported after a forbidden literal address
	switch u.Scheme {
	case "https":
	case "http":
		if !o.AllowLoopbackHTTP {
			errHTTP = invalid("must use https")
		}
	default:
		return nil, invalid("must use https, not %s", u.Scheme)
	}
	if strings.HasSuffix(u.Host, ":") {
		return nil, invalid("has an empty port")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 || p[0] == '0' {
			return nil, invalid("has an invalid port %q", p)
		}
	}
	literal, name, err := parseHost(u)
	if err != nil {
		return nil, err
	}
	addrs := []netip.Addr{literal}
	if name != "" {
		if errHTTP != nil { // no lookup for a URL refused anyway
			return nil, errHTTP
		}
		if addrs, err = resolve(ctx, name, o); err != nil {
			return nil, err
		}
	}
	for _, a := range addrs {
		if reason := forbidden(a, o.AllowLoopbackHTTP); reason != "" {
			msg := fmt.Sprintf("host %s is %s", a, reason)
			if name != "" {
				msg = fmt.Sprintf("host %s resolves to %s, %s", name, a, reason)
			}
			return nil, &Error{Reason: msg, Addr: a, kind: ErrForbiddenAddress}
		}
	}
	if errHTTP != nil {
		return nil, errHTTP
	}
	if u.Scheme == "http" {
		for _, a := range addrs {
			if !isLoopback(a) {
				return nil, invalid("must use https: http is allowed only for a loopback host")
			}
		}
	}
	return u, nil
}

// parseHost returns the URL's host as a literal address, or as a name to resolve.
func parseHost(u *url.URL) (netip.Addr, string, error) {
	host := u.Hostname()
	if host == "" {
		return netip.Addr{}, "", invalid("must have a host")
	}
	if strings.HasPrefix(u.Host, "[") {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() {
			return netip.Addr{}, "", invalid("host %s is not a valid bracketed IPv6 address", u.Host)
		}
		return a, "", nil // a zone is refused by the address rule
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if !a.Is4() || a.String() != host {
			return netip.Addr{}, "", invalid("host %s is not a canonical IPv4 address or a bracketed IPv6 address", host)
		}
		return a, "", nil
	}
	if err := checkName(host); err != nil {
		return netip.Addr{}, "", err
	}
	return netip.Addr{}, host, nil
}

// resolve looks name up with o.Resolver (net.DefaultResolver if nil).
func resolve(ctx context.Context, name string, o Options) ([]netip.Addr, error) {
	r := o.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", strings.ToLower(name))
	if err != nil {
		// The resolver's own text names the DNS server it asked: not for
		// the caller of an API.
		why := "the lookup failed"
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			why = "no such host"
		} else if errors.As(err, &de) && de.IsTimeout {
			why = "the lookup timed out"
		}
		return nil, &Error{Reason: fmt.Sprintf("host %s does not resolve (%s)", name, why), kind: ErrResolve}
	}
	if len(addrs) == 0 {
		return nil, &Error{Reason: fmt.Sprintf("host %s resolves to no address", name), kind: ErrResolve}
	}
	return addrs, nil
}

// checkName holds a host name to DNS syntax (RFC 1123 §2.1; "_" tolerated as DNS has it) and
// refuses a name whose last label is a number (see CheckURL).
func checkName(host string) error {
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			return invalid("host %q is not ASCII: use its IDNA (xn--) form", host)
		}
	}
	name := strings.TrimSuffix(host, ".")
	if len(name) == 0 || len(name) > 253 {
		return invalid("host %q is not a valid host name", host)
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return invalid("host %q is not a valid host name", host)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return invalid("host %q is not a valid host name", host)
			}
		}
	}
	if numeric(labels[len(labels)-1]) {
		return invalid("host %s is not a canonical IPv4 address (write it as four decimal numbers, a.b.c.d) or a host name", host)
	}
	return nil
}

// numeric is WHATWG URL's "ends in a number" test for one label: all decimal digits, or 0x/0X
// and hex digits (also octal, a decimal-digit string with a leading zero).
func numeric(label string) bool {
	if len(label) >= 2 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X') {
		for i := 2; i < len(label); i++ {
			c := label[i]
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(label); i++ {
		if label[i] < '0' || label[i] > '9' {
			return false
		}
	}
	return true
}

// Control is the net.Dialer Control hook of Dialer: it runs after resolution, just before each
// connect, with the address being connected to, and refuses (an *Error matching
// ErrForbiddenAddress) a forbidden one and any network but TCP. The RawConn is not used.
func Control(o Options) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		switch network {
		case "tcp", "tcp4", "tcp6":
		default:
			return &Error{Reason: fmt.Sprintf("connection refused: network %s is not allowed", network), kind: ErrForbiddenAddress}
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return &Error{Reason: fmt.Sprintf("connection refused: %q is not an IP address and port", address), kind: ErrForbiddenAddress}
		}
		if reason := forbidden(ap.Addr(), o.AllowLoopbackHTTP); reason != "" {
			return &Error{Reason: fmt.Sprintf("connection to %s refused: it is %s", ap.Addr(), reason), Addr: ap.Addr(), kind: ErrForbiddenAddress}
		}
		return nil
	}
}

// Dialer returns a dialer whose Control hook (see Control) re-checks every address actually
// connected to, whatever the name resolved to when the URL was checked: the defence against DNS
// rebinding. Connect timeout 10 s.
func Dialer(o Options) *net.Dialer {
	return &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		Control:   Control(o),
	}
}

// Transport returns an HTTP transport for webhook deliveries that dials through Dialer(o) and
// never through a proxy (HTTP_PROXY and the like are ignored: a proxy would connect on our behalf,
// out of reach of the Control hook). Timeouts: 10 s to connect, 10 s for the TLS handshake, 15 s
// for the response headers once the request is written (Standard Webhooks recommends 15–30 s);
// the caller bounds the whole attempt with its context or http.Client.Timeout. Responses are not
// followed here; a caller using http.Client should also refuse redirects (CheckRedirect returning
// http.ErrUseLastResponse), as the spec advises — each redirect's connection would still pass
// the Control hook.
func Transport(o Options) *http.Transport {
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            Dialer(o).DialContext,
		ForceAttemptHTTP2:      true,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  15 * time.Second,
		ExpectContinueTimeout:  1 * time.Second,
		IdleConnTimeout:        90 * time.Second,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    4,
		MaxResponseHeaderBytes: 64 << 10,
	}
}
