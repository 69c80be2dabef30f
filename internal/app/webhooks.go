package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net"
	"net/url"
	"strings"

	"github.com/dispatcherhq/dispatcher/internal/webhooks"
)

// PLACEHOLDERS until the merge with the other half of issue 12 (see each):
// parseWebhookURLForNow is replaced by internal/netguard's checker, and
// newWebhookSecretForNow by webhooks.NewSecret (internal/webhooks/sign.go).

// ParseWebhookURLForNow is the URL check of webhook endpoints FOR NOW: it
// only parses the URL — absolute, https (or, with loopbackHTTP, the
// embedded mode's http to a loopback host), a host, no user:password —
// and does NOT refuse private, link-local or cloud-metadata addresses, nor
// resolve names. internal/netguard replaces it at merge, before any
// delivery exists; until then nothing connects to a registered URL.
func ParseWebhookURLForNow(loopbackHTTP bool) webhooks.URLChecker {
	return func(_ context.Context, raw string) (*url.URL, error) {
		u, err := url.Parse(raw)
		if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
			return nil, errors.New("must be an absolute URL such as https://crm.example.com/webhooks/dispatcher")
		}
		if u.User != nil {
			return nil, errors.New("must not carry a user name or password; authenticate the messages by their signature")
		}
		if u.Fragment != "" {
			return nil, errors.New("must not have a fragment (#…): it is never sent")
		}
		host := u.Hostname()
		switch u.Scheme {
		case "https":
		case "http":
			if !loopbackHTTP {
				return nil, errors.New("must use https")
			}
			if !loopback(host) {
				return nil, errors.New("must use https; http is allowed only to a loopback host (localhost, 127.0.0.1, ::1) in the embedded mode")
			}
		default:
			return nil, errors.New("must use https")
		}
		return u, nil
	}
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newWebhookSecretForNow is a signing secret FOR NOW: "whsec_" + base64 of
// 32 random bytes. webhooks.NewSecret replaces it at merge.
func newWebhookSecretForNow() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b[:]), nil
}
