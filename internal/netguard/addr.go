package netguard

import (
	"fmt"
	"net/netip"
)

// rule is one refused range and the reason given for it (see CheckAddr).
type rule struct {
	prefix netip.Prefix
	reason string
}

const (
	reasonLoopback = "a loopback address (RFC 6890)"
	reasonPrivate  = "a private address (RFC 1918)"
	reasonMetadata = "a cloud metadata service address"
)

func rules(pairs ...string) []rule {
	rs := make([]rule, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		rs = append(rs, rule{netip.MustParsePrefix(pairs[i]), pairs[i+1]})
	}
	return rs
}

// First match wins: the specific ranges come before those containing them.
var v4Rules = rules(
	"169.254.169.254/32", reasonMetadata+" (AWS, GCP, Azure, OpenStack IMDS)",
	"168.63.129.16/32", reasonMetadata+" (Azure WireServer)",
	"100.100.100.200/32", reasonMetadata+" (Alibaba Cloud)",
	"0.0.0.0/8", `an unspecified ("this network") address (RFC 6890)`,
	"10.0.0.0/8", reasonPrivate,
	"100.64.0.0/10", "a shared carrier-grade NAT address (RFC 6598)",
	"127.0.0.0/8", reasonLoopback,
	"169.254.0.0/16", "a link-local address (RFC 3927)",
	"172.16.0.0/12", reasonPrivate,
	"192.0.0.0/24", "an IETF protocol assignment (RFC 6890)",
	"192.0.2.0/24", "a documentation address (RFC 5737)",
	"192.88.99.0/24", "the deprecated 6to4 relay anycast prefix (RFC 7526)",
	"192.168.0.0/16", reasonPrivate,
	"198.18.0.0/15", "a benchmarking address (RFC 2544)",
	"198.51.100.0/24", "a documentation address (RFC 5737)",
	"203.0.113.0/24", "a documentation address (RFC 5737)",
	"224.0.0.0/4", "a multicast address (RFC 5771)",
	"255.255.255.255/32", "the limited broadcast address (RFC 919)",
	"240.0.0.0/4", "a reserved address (RFC 1112)",
)

var v6Rules = rules(
	"fd00:ec2::254/128", reasonMetadata+" (AWS IMDS over IPv6)",
	"::1/128", reasonLoopback,
	"::/128", "the unspecified address (RFC 4291)",
	"::/96", "a deprecated IPv4-compatible address (RFC 4291)",
	"64:ff9b:1::/48", "a local-use NAT64 address (RFC 8215)",
	"100::/64", "a discard-only address (RFC 6666)",
	"2001::/23", "an IETF protocol assignment (RFC 6890)",
	"2001:db8::/32", "a documentation address (RFC 3849)",
	"3fff::/20", "a documentation address (RFC 9637)",
	"5f00::/16", "a segment routing (SRv6) SID (RFC 9602)",
	"fc00::/7", "a unique local (private) address (RFC 4193)",
	"fe80::/10", "a link-local address (RFC 4291)",
	"fec0::/10", "a deprecated site-local address (RFC 3879)",
	"ff00::/8", "a multicast address (RFC 4291)",
)

var (
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
	translated6    = netip.MustParsePrefix("::ffff:0:0:0/96")
	nat64          = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour      = netip.MustParsePrefix("2002::/16")
	teredo         = netip.MustParsePrefix("2001::/32")
)

// CheckAddr reports whether addr may be connected to under o: nil, or an *Error matching
// ErrForbiddenAddress that says why not. CheckURL and the Control hook apply the same rule.
//
// An address is allowed when it is an ordinary public unicast address. The refused ranges are those of the
// IANA special-purpose address registries that RFC 6890 set up (and later RFCs extended) which
// are not globally reachable, plus the cloud metadata addresses. Loopback alone is allowed in the
// embedded mode (Options.AllowLoopbackHTTP). IPv6 is further held to global unicast 2000::/3
// (RFC 4291 §2.4): whatever else IANA has not allocated is refused too.
//
// Forms that carry an IPv4 address inside an IPv6 one are judged by the IPv4 address they
// carry: IPv4-mapped ::ffff:0:0/96 (RFC 4291 §2.5.5.2), IPv4-translated ::ffff:0:0:0/96
// (RFC 2765), the NAT64 well-known prefix 64:ff9b::/96 (RFC 6052), 6to4 2002::/16 (RFC 3056)
// and Teredo 2001::/32 (RFC 4380, server and de-obfuscated client). A loopback address is
// allowed only as itself or IPv4-mapped (which a dual-stack socket connects to as IPv4), never
// wrapped in a tunnel form.
//
// Refused, each with the reason the error gives: RFC 1918 private (10/8, 172.16/12, 192.168/16); RFC 4193
// unique local (fc00::/7); RFC 6598 shared CGNAT (100.64/10); loopback (127/8, ::1); link-local
// (169.254/16, RFC 3927; fe80::/10); "this network" and unspecified (0/8, ::); multicast
// (224/4, ff00::/8); 240/4 and the limited broadcast 255.255.255.255; RFC 2544 benchmarking
// (198.18/15); documentation (RFC 5737, RFC 3849, RFC 9637); IETF protocol assignments
// (192.0.0/24, 2001::/23); the deprecated 6to4 relay anycast, site-local and IPv4-compatible
// ranges; discard-only 100::/64; local-use NAT64 64:ff9b:1::/48; SRv6 5f00::/16; zoned IPv6; and
// the metadata services at 169.254.169.254, fd00:ec2::254, 168.63.129.16 and 100.100.100.200.
func CheckAddr(addr netip.Addr, o Options) error {
	if reason := forbidden(addr, o.AllowLoopbackHTTP); reason != "" {
		return &Error{Reason: fmt.Sprintf("%s is %s", addr, reason), Addr: addr, kind: ErrForbiddenAddress}
	}
	return nil
}

// forbidden returns why addr is refused, or "" when it is allowed.
func forbidden(addr netip.Addr, allowLoopback bool) string {
	if !addr.IsValid() {
		return "not an IP address"
	}
	if addr.Zone() != "" {
		return "a scoped (zoned) IPv6 address"
	}
	if addr.Is4In6() { // ::ffff:a.b.c.d is a.b.c.d to a dual-stack socket
		if r := forbidden(addr.Unmap(), allowLoopback); r != "" {
			return "an IPv4-mapped form of " + addr.Unmap().String() + ", " + r
		}
		return ""
	}
	if addr.Is4() {
		for _, r := range v4Rules {
			if r.prefix.Contains(addr) {
				if r.reason == reasonLoopback && allowLoopback {
					return ""
				}
				return r.reason
			}
		}
		return ""
	}
	b := addr.As16()
	embedded := func(name string, v4 netip.Addr) string {
		// A tunnelled loopback is not the local host: never allowed.
		if r := forbidden(v4, false); r != "" {
			return fmt.Sprintf("%s %s, %s", name, v4, r)
		}
		return ""
	}
	switch {
	case translated6.Contains(addr):
		return embedded("an IPv4-translated address (RFC 2765) carrying", netip.AddrFrom4([4]byte(b[12:16])))
	case nat64.Contains(addr):
		return embedded("a NAT64 address (RFC 6052) carrying", netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFour.Contains(addr):
		return embedded("a 6to4 address (RFC 3056) carrying", netip.AddrFrom4([4]byte(b[2:6])))
	case teredo.Contains(addr):
		if r := embedded("a Teredo address (RFC 4380) with server", netip.AddrFrom4([4]byte(b[4:8]))); r != "" {
			return r
		}
		client := [4]byte{b[12] ^ 0xff, b[13] ^ 0xff, b[14] ^ 0xff, b[15] ^ 0xff}
		return embedded("a Teredo address (RFC 4380) with client", netip.AddrFrom4(client))
	}
	for _, r := range v6Rules {
		if r.prefix.Contains(addr) {
			if r.reason == reasonLoopback && allowLoopback {
				return ""
			}
			return r.reason
		}
	}
	if !globalUnicast6.Contains(addr) {
		return "a reserved IPv6 address (outside global unicast 2000::/3, RFC 4291)"
	}
	return ""
}

// isLoopback is 127.0.0.0/8, ::1 or the IPv4-mapped form of 127.0.0.0/8.
func isLoopback(addr netip.Addr) bool {
	return addr.Zone() == "" && addr.Unmap().IsLoopback()
}
