package app

import (
	"context"
	"errors"
	"net"
	"net/url"

	"github.com/dispatcherhq/dispatcher/internal/netguard"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
)

// WebhookURLs is the check of every webhook endpoint URL registered or
// patched in: internal/netguard's rule — https, a public host whose every
// address is public (no loopback, private, link-local, multicast, CGNAT or
// cloud-metadata address, literal or resolved) — and, with loopbackHTTP
// (the embedded mode), also http to a loopback host, so a local receiver
// works. Names are resolved with r (nil: net.DefaultResolver; tests pass a
// stub, never the network); the connection is checked again when it is
// made (netguard.Transport).
func WebhookURLs(loopbackHTTP bool, r netguard.Resolver) webhooks.URLChecker {
	if r == nil {
		r = net.DefaultResolver
	}
	o := netguard.Options{AllowLoopbackHTTP: loopbackHTTP, Resolver: r}
	return func(ctx context.Context, raw string) (*url.URL, error) {
		u, err := netguard.CheckURL(ctx, raw, o)
		var ne *netguard.Error
		if errors.As(err, &ne) {
			return nil, errors.New(ne.Reason)
		}
		return u, err
	}
}
