package netguard

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// These tests open no connection except to loopback listeners they start themselves: literal
// forbidden addresses are refused before any dial or lookup, names are answered by a stub
// resolver, and the Control hook is called directly with the addresses a rebinding would give.

// stubResolver answers from a table; a name missing from it is an error. It counts lookups.
type stubResolver struct {
	mu      sync.Mutex
	answers map[string][]string
	calls   []string
}

func (r *stubResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, host)
	if network != "ip" {
		return nil, errors.New("stub: unexpected network " + network)
	}
	ans, ok := r.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	out := make([]netip.Addr, len(ans))
	for i, a := range ans {
		out[i] = netip.MustParseAddr(a)
	}
	return out, nil
}

// noLookup fails the test if anything is resolved: literals must be judged as they are.
type noLookup struct{ t *testing.T }

func (r noLookup) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.t.Errorf("unexpected lookup of %q", host)
	return nil, errors.New("no lookups in this test")
}

var (
	aws = Options{}                        // AWS mode: https only, loopback refused
	dev = Options{AllowLoopbackHTTP: true} // embedded mode
)

func TestCheckAddrTable(t *testing.T) {
	tests := []struct {
		addr    string
		aws     bool // allowed on AWS
		dev     bool // allowed embedded
		because string
	}{
		// Public: allowed everywhere.
		{"93.184.215.14", true, true, ""},
		{"8.8.8.8", true, true, ""},
		{"1.1.1.1", true, true, ""},
		{"2606:4700:4700::1111", true, true, ""},
		{"2a00:1450:4001:80b::200e", true, true, ""},
		{"::ffff:8.8.8.8", true, true, ""},
		{"64:ff9b::808:808", true, true, ""},                     // NAT64 of 8.8.8.8
		{"2002:808:808::1", true, true, ""},                      // 6to4 of 8.8.8.8
		{"2001:0:4136:e378:8000:63bf:f7f7:f7f7", true, true, ""}, // Teredo: server 65.54.227.120, client 8.8.8.8
		{"172.15.255.255", true, true, ""},                       // just outside 172.16/12
		{"172.32.0.0", true, true, ""},
		{"100.63.255.255", true, true, ""}, // just outside 100.64/10
		{"100.128.0.0", true, true, ""},
		{"198.17.255.255", true, true, ""},
		{"198.20.0.0", true, true, ""},
		{"11.0.0.1", true, true, ""},
		{"223.255.255.255", true, true, ""},

		// Loopback: the embedded mode only.
		{"127.0.0.1", false, true, "loopback"},
		{"127.255.255.254", false, true, "loopback"},
		{"::1", false, true, "loopback"},
		{"::ffff:127.0.0.1", false, true, "loopback"},
		// …but never tunnelled.
		{"2002:7f00:1::", false, false, "6to4"},
		{"64:ff9b::7f00:1", false, false, "NAT64"},

		// RFC 1918, RFC 4193.
		{"10.0.0.1", false, false, "private"},
		{"10.255.255.255", false, false, "private"},
		{"172.16.0.1", false, false, "private"},
		{"172.31.255.255", false, false, "private"},
		{"192.168.1.1", false, false, "private"},
		{"fc00::1", false, false, "unique local"},
		{"fd12:3456:789a::1", false, false, "unique local"},
		// Link-local and metadata.
		{"169.254.0.1", false, false, "link-local"},
		{"169.254.170.2", false, false, "link-local"}, // ECS task metadata
		{"169.254.169.254", false, false, "metadata"},
		{"fd00:ec2::254", false, false, "metadata"},
		{"168.63.129.16", false, false, "metadata"},
		{"100.100.100.200", false, false, "metadata"},
		{"fe80::1", false, false, "link-local"},
		{"febf::1", false, false, "link-local"},
		{"fec0::1", false, false, "site-local"},
		// Unspecified, "this network".
		{"0.0.0.0", false, false, "unspecified"},
		{"0.1.2.3", false, false, "unspecified"},
		{"::", false, false, "unspecified"},
		// CGNAT, benchmarking, documentation, protocol assignments, reserved, broadcast.
		{"100.64.0.1", false, false, "carrier-grade NAT"},
		{"100.127.255.255", false, false, "carrier-grade NAT"},
		{"198.18.0.1", false, false, "benchmarking"},
		{"198.19.255.255", false, false, "benchmarking"},
		{"192.0.0.8", false, false, "IETF protocol"},
		{"192.0.0.192", false, false, "IETF protocol"}, // Oracle Cloud metadata
		{"192.0.2.1", false, false, "documentation"},
		{"198.51.100.7", false, false, "documentation"},
		{"203.0.113.9", false, false, "documentation"},
		{"192.88.99.1", false, false, "6to4 relay"},
		{"240.0.0.1", false, false, "reserved"},
		{"255.255.255.255", false, false, "broadcast"},
		{"2001:db8::1", false, false, "documentation"},
		{"3fff::1", false, false, "documentation"},
		{"100::1", false, false, "discard"},
		{"2001:2::1", false, false, "IETF protocol"},
		{"5f00::1", false, false, "segment routing"},
		{"4000::1", false, false, "outside global unicast"},
		{"::1.2.3.4", false, false, "IPv4-compatible"},
		{"64:ff9b:1::808:808", false, false, "local-use NAT64"},
		// Multicast.
		{"224.0.0.1", false, false, "multicast"},
		{"239.255.255.250", false, false, "multicast"},
		{"ff02::1", false, false, "multicast"},
		{"ff0e::1", false, false, "multicast"},
		// IPv4-mapped, -translated and tunnelled forms of forbidden addresses.
		{"::ffff:10.0.0.1", false, false, "IPv4-mapped form of 10.0.0.1, a private"},
		{"::ffff:169.254.169.254", false, false, "metadata"},
		{"::ffff:0.0.0.0", false, false, "unspecified"},
		{"::ffff:0:a9fe:a9fe", false, false, "IPv4-translated"},
		{"64:ff9b::a9fe:a9fe", false, false, "NAT64 address (RFC 6052) carrying 169.254.169.254"},
		{"64:ff9b::c0a8:101", false, false, "private"},
		{"2002:a00:1::", false, false, "6to4 address (RFC 3056) carrying 10.0.0.1"},
		{"2002:a9fe:a9fe::1", false, false, "metadata"},
		{"2001:0:4136:e378:8000:63bf:f5ff:fffe", false, false, "client 10.0.0.1"}, // Teredo, client 10.0.0.1
		{"2001:0:a00:1:8000:63bf:f7f7:f7f7", false, false, "server 10.0.0.1"},     // Teredo, server 10.0.0.1
		// Zoned.
		{"fe80::1%eth0", false, false, "zoned"},
		{"2606:4700:4700::1111%eth0", false, false, "zoned"},
	}
	for _, tt := range tests {
		addr := netip.MustParseAddr(tt.addr)
		for _, m := range []struct {
			name    string
			o       Options
			allowed bool
		}{{"aws", aws, tt.aws}, {"dev", dev, tt.dev}} {
			err := CheckAddr(addr, m.o)
			if m.allowed {
				if err != nil {
					t.Errorf("%s: CheckAddr(%s) = %v, want allowed", m.name, tt.addr, err)
				}
				continue
			}
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrForbiddenAddress) {
				t.Errorf("%s: CheckAddr(%s) = %v, want an *Error matching ErrForbiddenAddress", m.name, tt.addr, err)
				continue
			}
			if !strings.Contains(e.Reason, tt.because) || e.Addr != addr {
				t.Errorf("%s: CheckAddr(%s) = %q (addr %v), want the reason to say %q", m.name, tt.addr, e.Reason, e.Addr, tt.because)
			}
		}
	}
}

func TestCheckURLLiterals(t *testing.T) {
	tests := []struct {
		url     string
		aws     bool // allowed on AWS
		dev     bool // allowed embedded
		kind    error
		because string
	}{
		{"https://93.184.215.14/hook", true, true, nil, ""},
		{"https://93.184.215.14:8443/hook?x=1", true, true, nil, ""},
		{"https://[2606:4700:4700::1111]/hook", true, true, nil, ""},
		{"https://[2606:4700:4700::1111]:443/", true, true, nil, ""},
		{"https://[::ffff:8.8.8.8]/", true, true, nil, ""},
		{"http://93.184.215.14/hook", false, false, ErrInvalidURL, "https"},

		// Loopback: embedded only, http or https. On AWS the address is the reason given (a
		// forbidden literal is reported before the scheme).
		{"http://127.0.0.1:9999/hook", false, true, ErrForbiddenAddress, "loopback"},
		{"https://127.0.0.1:9999/hook", false, true, ErrForbiddenAddress, "loopback"},
		{"http://[::1]:9999/hook", false, true, ErrForbiddenAddress, "loopback"},
		{"https://[::1]/hook", false, true, ErrForbiddenAddress, "loopback"},
		{"http://[::ffff:127.0.0.1]/", false, true, ErrForbiddenAddress, "loopback"},

		// The examples: 422 without a connection attempt.
		{"http://10.0.0.1/hook", false, false, ErrForbiddenAddress, "private address (RFC 1918)"},
		{"http://169.254.169.254/", false, false, ErrForbiddenAddress, "metadata"},
		{"https://10.0.0.1/hook", false, false, ErrForbiddenAddress, "private"},
		{"https://169.254.169.254/latest/meta-data/", false, false, ErrForbiddenAddress, "metadata"},
		{"https://[fd00:ec2::254]/", false, false, ErrForbiddenAddress, "metadata"},
		{"https://172.16.5.4/", false, false, ErrForbiddenAddress, "private"},
		{"https://192.168.0.1/", false, false, ErrForbiddenAddress, "private"},
		{"https://100.64.1.1/", false, false, ErrForbiddenAddress, "RFC 6598"},
		{"https://198.18.0.1/", false, false, ErrForbiddenAddress, "benchmarking"},
		{"https://0.0.0.0/", false, false, ErrForbiddenAddress, "unspecified"},
		{"https://[::]/", false, false, ErrForbiddenAddress, "unspecified"},
		{"https://224.0.0.251/", false, false, ErrForbiddenAddress, "multicast"},
		{"https://255.255.255.255/", false, false, ErrForbiddenAddress, "broadcast"},
		{"https://[fe80::1]/", false, false, ErrForbiddenAddress, "link-local"},
		{"https://[fe80::1%25eth0]/", false, false, ErrForbiddenAddress, "zoned"},
		{"https://[fc00::1]/", false, false, ErrForbiddenAddress, "RFC 4193"},
		{"https://[::ffff:10.0.0.1]/", false, false, ErrForbiddenAddress, "IPv4-mapped"},
		{"https://[::ffff:a9fe:a9fe]/", false, false, ErrForbiddenAddress, "metadata"},
		{"https://[64:ff9b::a00:1]/", false, false, ErrForbiddenAddress, "NAT64"},
		{"https://[2002:c0a8:101::]/", false, false, ErrForbiddenAddress, "6to4"},

		// Non-canonical IPv4 forms: refused as they are, never resolved.
		{"https://2130706433/", false, false, ErrInvalidURL, "canonical"},
		{"https://0x7f000001/", false, false, ErrInvalidURL, "canonical"},
		{"https://0X7F.0.0.1/", false, false, ErrInvalidURL, "canonical"},
		{"https://0177.0.0.1/", false, false, ErrInvalidURL, "canonical"},
		{"https://017700000001/", false, false, ErrInvalidURL, "canonical"},
		{"https://127.1/", false, false, ErrInvalidURL, "canonical"},
		{"https://127.0.1/", false, false, ErrInvalidURL, "canonical"},
		{"https://10.1/", false, false, ErrInvalidURL, "canonical"},
		{"https://169.254.43518/", false, false, ErrInvalidURL, "canonical"},
		{"https://010.0.0.1/", false, false, ErrInvalidURL, "canonical"},
		{"https://93.184.215.014/", false, false, ErrInvalidURL, "canonical"},
		{"https://127.0.0.1./", false, false, ErrInvalidURL, "canonical"},
		{"https://8.8.8.8./", false, false, ErrInvalidURL, "canonical"},
		{"https://1.2.3.4.5/", false, false, ErrInvalidURL, "canonical"},
		{"https://0x/", false, false, ErrInvalidURL, "canonical"},
		{"https://example.0x1f/", false, false, ErrInvalidURL, "canonical"},
		{"https://example.123/", false, false, ErrInvalidURL, "canonical"},

		// Form.
		{"", false, false, ErrInvalidURL, "absolute"},
		{"/relative/hook", false, false, ErrInvalidURL, "absolute"},
		{"example.com/hook", false, false, ErrInvalidURL, "absolute"},
		{"//example.com/hook", false, false, ErrInvalidURL, "absolute"},
		{"https:example.com", false, false, ErrInvalidURL, "absolute"},
		{"https:///hook", false, false, ErrInvalidURL, "absolute"},
		{"ftp://93.184.215.14/", false, false, ErrInvalidURL, "https"},
		{"file:///etc/passwd", false, false, ErrInvalidURL, "absolute"},
		{"gopher://127.0.0.1:6379/_INFO", false, false, ErrInvalidURL, "https"},
		{"https://user:pass@93.184.215.14/", false, false, ErrInvalidURL, "user name"},
		{"https://user@93.184.215.14/", false, false, ErrInvalidURL, "user name"},
		{"http://user@127.0.0.1/", false, false, ErrInvalidURL, "user name"},
		{"https://93.184.215.14:/", false, false, ErrInvalidURL, "empty port"},
		{"https://93.184.215.14:0/", false, false, ErrInvalidURL, "port"},
		{"https://93.184.215.14:65536/", false, false, ErrInvalidURL, "port"},
		{"https://93.184.215.14:0443/", false, false, ErrInvalidURL, "port"},
		{"https://[1.2.3.4]/", false, false, ErrInvalidURL, "not a valid URL"},
		{"https://::1/", false, false, ErrInvalidURL, "not a valid URL"},
		{"https://exa mple.com/", false, false, ErrInvalidURL, "not a valid URL"},
		{"https://%31%30.0.0.1/", false, false, ErrInvalidURL, "not a valid URL"},
		{"https://bücher.example/", false, false, ErrInvalidURL, "xn--"},
		{"https://-bad.example/", false, false, ErrInvalidURL, "host name"},
		{"https://bad..example/", false, false, ErrInvalidURL, "host name"},
		{"https://" + strings.Repeat("a", 64) + ".example/", false, false, ErrInvalidURL, "host name"},
		{"https://93.184.215.14/" + strings.Repeat("a", MaxURLLength), false, false, ErrInvalidURL, "2048"},
	}
	for _, tt := range tests {
		for _, m := range []struct {
			name    string
			o       Options
			allowed bool
		}{{"aws", aws, tt.aws}, {"dev", dev, tt.dev}} {
			m.o.Resolver = noLookup{t}
			u, err := CheckURL(context.Background(), tt.url, m.o)
			if m.allowed {
				if err != nil || u == nil {
					t.Errorf("%s: CheckURL(%q) = %v, want allowed", m.name, tt.url, err)
				} else if u.String() != tt.url {
					t.Errorf("%s: CheckURL(%q) returned %q", m.name, tt.url, u)
				}
				continue
			}
			var e *Error
			if !errors.As(err, &e) || u != nil {
				t.Errorf("%s: CheckURL(%q) = %v, %v; want an *Error", m.name, tt.url, u, err)
				continue
			}
			if !errors.Is(err, tt.kind) || !strings.Contains(e.Reason, tt.because) {
				t.Errorf("%s: CheckURL(%q) = %q (%v), want %v saying %q", m.name, tt.url, e.Reason, errors.Unwrap(err), tt.kind, tt.because)
			}
		}
	}
}

func TestCheckURLAtMaxLength(t *testing.T) {
	base := "https://93.184.215.14/"
	raw := base + strings.Repeat("a", MaxURLLength-len(base))
	if _, err := CheckURL(context.Background(), raw, Options{Resolver: noLookup{t}}); err != nil {
		t.Fatalf("a %d-byte URL: %v", len(raw), err)
	}
	if _, err := CheckURL(context.Background(), raw+"a", Options{Resolver: noLookup{t}}); !errors.Is(err, ErrInvalidURL) {
		t.Fatalf("a %d-byte URL: %v, want ErrInvalidURL", len(raw)+1, err)
	}
}

func TestCheckURLNames(t *testing.T) {
	r := &stubResolver{answers: map[string][]string{
		"hooks.example.com":        {"93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"},
		"crm.example.":             {"8.8.8.8"},
		"xn--bcher-kva.example":    {"1.1.1.1"},
		"one-bad.example.com":      {"93.184.215.14", "10.1.2.3", "8.8.4.4"}, // one private among public
		"last-bad.example.com":     {"93.184.215.14", "fd00:ec2::254"},
		"internal.example.com":     {"192.168.10.5"},
		"metadata.google.internal": {"169.254.169.254"},
		"mapped.example.com":       {"::ffff:10.0.0.1"},
		"localhost":                {"127.0.0.1", "::1"},
		"mixed-local.example":      {"127.0.0.1", "93.184.215.14"},
		"empty.example.com":        {},
		"under_score.example.com":  {"93.184.215.14"},
	}}
	tests := []struct {
		url     string
		aws     bool
		dev     bool
		kind    error
		because string
	}{
		{"https://hooks.example.com/dispatcher", true, true, nil, ""},
		{"https://HOOKS.example.com:8443/x", true, true, nil, ""},
		{"https://crm.example./", true, true, nil, ""},
		{"https://xn--bcher-kva.example/", true, true, nil, ""},
		{"https://under_score.example.com/", true, true, nil, ""},
		{"http://hooks.example.com/", false, false, ErrInvalidURL, "https"},
		{"https://one-bad.example.com/", false, false, ErrForbiddenAddress, "host one-bad.example.com resolves to 10.1.2.3, a private address (RFC 1918)"},
		{"https://last-bad.example.com/", false, false, ErrForbiddenAddress, "metadata"},
		{"https://internal.example.com/", false, false, ErrForbiddenAddress, "private"},
		{"https://metadata.google.internal/computeMetadata/v1/", false, false, ErrForbiddenAddress, "metadata"},
		{"https://mapped.example.com/", false, false, ErrForbiddenAddress, "IPv4-mapped"},
		{"http://localhost:9999/hook", false, true, ErrInvalidURL, "https"},
		{"https://localhost/hook", false, true, ErrForbiddenAddress, "loopback"},
		// Embedded: https to a name with loopback and public addresses is fine, http is not.
		{"https://mixed-local.example/", false, true, ErrForbiddenAddress, "loopback"},
		{"http://mixed-local.example/", false, false, ErrInvalidURL, "https"},
		{"https://nxdomain.example.com/", false, false, ErrResolve, "does not resolve"},
		{"https://empty.example.com/", false, false, ErrResolve, "no address"},
	}
	for _, tt := range tests {
		for _, m := range []struct {
			name    string
			o       Options
			allowed bool
		}{{"aws", aws, tt.aws}, {"dev", dev, tt.dev}} {
			m.o.Resolver = r
			u, err := CheckURL(context.Background(), tt.url, m.o)
			if m.allowed {
				if err != nil || u == nil {
					t.Errorf("%s: CheckURL(%q) = %v, want allowed", m.name, tt.url, err)
				}
				continue
			}
			var e *Error
			if !errors.As(err, &e) || u != nil {
				t.Errorf("%s: CheckURL(%q) = %v, %v; want an *Error", m.name, tt.url, u, err)
				continue
			}
			if !errors.Is(err, tt.kind) || !strings.Contains(e.Reason, tt.because) {
				t.Errorf("%s: CheckURL(%q) = %q (%v), want %v saying %q", m.name, tt.url, e.Reason, errors.Unwrap(err), tt.kind, tt.because)
			}
		}
	}
	// http on AWS is refused before any lookup.
	r.calls = nil
	if _, err := CheckURL(context.Background(), "http://hooks.example.com/", Options{Resolver: r}); !errors.Is(err, ErrInvalidURL) || len(r.calls) != 0 {
		t.Errorf("http on AWS: %v after lookups %q; want ErrInvalidURL and no lookup", err, r.calls)
	}
}

func TestControlRefusesForbiddenConnectAddress(t *testing.T) {
	// DNS rebinding: the name answers a public address when the URL is checked…
	r := &stubResolver{answers: map[string][]string{"rebind.example.com": {"93.184.215.14"}}}
	if _, err := CheckURL(context.Background(), "https://rebind.example.com/hook", Options{Resolver: r}); err != nil {
		t.Fatalf("check time: %v", err)
	}
	// …and a forbidden one when the delivery connects. The dialer resolves again itself; the
	// Control hook sees the address it is about to connect to and refuses it.
	for _, tt := range []struct {
		network, address string
		aws, dev         bool
	}{
		{"tcp4", "93.184.215.14:443", true, true},
		{"tcp6", "[2606:4700:4700::1111]:443", true, true},
		{"tcp4", "169.254.169.254:80", false, false},
		{"tcp4", "10.0.0.1:443", false, false},
		{"tcp4", "172.20.1.1:443", false, false},
		{"tcp4", "192.168.1.1:443", false, false},
		{"tcp4", "100.64.0.1:443", false, false},
		{"tcp4", "0.0.0.0:443", false, false},
		{"tcp6", "[fd00:ec2::254]:80", false, false},
		{"tcp6", "[::ffff:169.254.169.254]:80", false, false},
		{"tcp6", "[fe80::1%eth0]:443", false, false},
		{"tcp6", "[64:ff9b::a00:1]:443", false, false},
		{"tcp4", "127.0.0.1:443", false, true},
		{"tcp6", "[::1]:443", false, true},
		{"tcp", "127.0.0.1:443", false, true},
		{"udp4", "93.184.215.14:53", false, false}, // only TCP
		{"tcp4", "not-an-address:443", false, false},
		{"tcp4", "93.184.215.14", false, false},
	} {
		for _, m := range []struct {
			name    string
			o       Options
			allowed bool
		}{{"aws", aws, tt.aws}, {"dev", dev, tt.dev}} {
			err := Dialer(m.o).Control(tt.network, tt.address, nil)
			if m.allowed != (err == nil) {
				t.Errorf("%s: Control(%s, %s) = %v, allowed want %v", m.name, tt.network, tt.address, err, m.allowed)
			}
			if err != nil && !errors.Is(err, ErrForbiddenAddress) {
				t.Errorf("%s: Control(%s, %s) = %v, want ErrForbiddenAddress", m.name, tt.network, tt.address, err)
			}
		}
	}
}

// The only connections the tests make: to loopback listeners of their own.
func TestDialerLoopbackListener(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			addr := map[string]string{"tcp4": "127.0.0.1:0", "tcp6": "[::1]:0"}[network]
			ln, err := net.Listen(network, addr)
			if err != nil {
				t.Skipf("no %s loopback: %v", network, err)
			}
			defer ln.Close()
			accepted := make(chan struct{}, 4)
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					accepted <- struct{}{}
					c.Close()
				}
			}()

			_, err = Dialer(Options{}).DialContext(t.Context(), "tcp", ln.Addr().String())
			if !errors.Is(err, ErrForbiddenAddress) || !strings.Contains(err.Error(), "loopback") {
				t.Fatalf("AWS mode dialing %s: %v, want the loopback refused", ln.Addr(), err)
			}
			select {
			case <-accepted:
				t.Fatal("the listener accepted a connection the Control hook refused")
			default:
			}

			c, err := Dialer(Options{AllowLoopbackHTTP: true}).DialContext(t.Context(), "tcp", ln.Addr().String())
			if err != nil {
				t.Fatalf("embedded mode dialing %s: %v", ln.Addr(), err)
			}
			c.Close()
			<-accepted
		})
	}
}

func TestTransportLoopbackServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()

	get := func(o Options) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
		c := &http.Client{Transport: Transport(o)}
		defer c.CloseIdleConnections()
		return c.Do(req)
	}
	if _, err := get(Options{}); !errors.Is(err, ErrForbiddenAddress) {
		t.Fatalf("AWS mode: %v, want ErrForbiddenAddress", err)
	}
	resp, err := get(Options{AllowLoopbackHTTP: true})
	if err != nil {
		t.Fatalf("embedded mode: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("embedded mode: %d %q", resp.StatusCode, body)
	}
	// And the URL itself passes CheckURL embedded, not on AWS.
	if _, err := CheckURL(t.Context(), srv.URL, Options{AllowLoopbackHTTP: true, Resolver: noLookup{t}}); err != nil {
		t.Errorf("CheckURL(%s) embedded: %v", srv.URL, err)
	}
	if _, err := CheckURL(t.Context(), srv.URL, Options{Resolver: noLookup{t}}); err == nil {
		t.Errorf("CheckURL(%s) on AWS: allowed", srv.URL)
	}
	if tr := Transport(Options{}); tr.Proxy != nil || tr.ResponseHeaderTimeout == 0 || tr.TLSHandshakeTimeout == 0 {
		t.Errorf("Transport: proxy %v, timeouts %v %v", tr.Proxy != nil, tr.ResponseHeaderTimeout, tr.TLSHandshakeTimeout)
	}
}
