package auth_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/auth"
	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// issuedAt is when the test keys are issued: a fixed time, so no test's
// data depends on the clock.
var issuedAt = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// keys is a hand-written fake of the one store method auth needs.
type keys map[string]comms.APIKey

func (k keys) APIKeyByHash(_ context.Context, hash string) (comms.APIKey, error) {
	if key, ok := k[hash]; ok {
		return key, nil
	}
	return comms.APIKey{}, comms.ErrNotFound
}

func TestNewKey(t *testing.T) {
	t.Parallel()
	secret, key, err := auth.NewKey("acme", []comms.Scope{comms.ScopeRead}, issuedAt)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(secret, auth.KeyPrefix))
	if !strings.HasPrefix(secret, "dk_live_") || err != nil || len(raw) < 32 {
		t.Errorf("secret %q: %d random bytes (%v)", secret, len(raw), err)
	}
	if key.Hash != auth.Hash(secret) || strings.Contains(key.Hash, secret) || len(key.Hash) != 64 {
		t.Errorf("stored hash %q", key.Hash)
	}
	if !strings.HasPrefix(secret, key.Prefix) || len(key.Prefix) >= len(secret)/2 {
		t.Errorf("prefix %q reveals too much or is not the secret's", key.Prefix)
	}
	other, _, _ := auth.NewKey("acme", []comms.Scope{comms.ScopeRead}, issuedAt)
	if other == secret {
		t.Error("two keys are equal")
	}
	if _, _, err := auth.NewKey("acme", nil, issuedAt); err == nil {
		t.Error("a key without scopes was issued")
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	secret, key, _ := auth.NewKey("acme", []comms.Scope{comms.ScopeRead, comms.ScopeWrite}, issuedAt)
	revokedSecret, revoked, _ := auth.NewKey("acme", []comms.Scope{comms.ScopeRead}, issuedAt)
	now := issuedAt
	revoked.RevokedAt = &now
	a := auth.NewAuthenticator(keys{key.Hash: key, revoked.Hash: revoked})

	p, err := a.Authenticate(context.Background(), "Bearer "+secret)
	if err != nil || p.CompanyID != "acme" || p.KeyID != key.ID || len(p.Scopes) != 2 {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	if _, err := a.Authenticate(context.Background(), "bearer "+secret); err != nil {
		t.Errorf("scheme is case-insensitive: %v", err)
	}
	for _, h := range []string{"", "Bearer", "Basic " + secret, "Bearer " + revokedSecret, "Bearer dk_live_nope", "Bearer " + secret[:len(secret)-1], secret} {
		if _, err := a.Authenticate(context.Background(), h); !errors.Is(err, comms.ErrUnauthenticated) {
			t.Errorf("Authenticate(%q) = %v, want ErrUnauthenticated", h, err)
		}
	}
}

func TestParseScopes(t *testing.T) {
	t.Parallel()
	got, err := auth.ParseScopes("dispatcher:read, email:send,dispatcher:read")
	if err != nil || len(got) != 2 || got[0] != comms.ScopeRead || got[1] != comms.ScopeEmailSend {
		t.Errorf("ParseScopes = %v, %v", got, err)
	}
	for _, bad := range []string{"", ",", "email:send,admin"} {
		if _, err := auth.ParseScopes(bad); err == nil {
			t.Errorf("ParseScopes(%q) accepted", bad)
		}
	}
}

// countingKeys counts store lookups.
type countingKeys struct {
	keys
	n int
}

func (c *countingKeys) APIKeyByHash(ctx context.Context, hash string) (comms.APIKey, error) {
	c.n++
	return c.keys.APIKeyByHash(ctx, hash)
}

func TestCacheSavesLookupsAndExpires(t *testing.T) {
	t.Parallel()
	secret, key, _ := auth.NewKey("acme", []comms.Scope{comms.ScopeRead}, issuedAt)
	store := &countingKeys{keys: keys{key.Hash: key}}
	now := issuedAt
	a := auth.NewCachingAuthenticator(store, time.Minute, func() time.Time { return now })
	for range 5 {
		if _, err := a.Authenticate(context.Background(), "Bearer "+secret); err != nil {
			t.Fatal(err)
		}
	}
	if store.n != 1 {
		t.Errorf("5 requests read the store %d times, want 1", store.n)
	}
	// A revocation is seen once the cached entry expires.
	revoked := key
	revoked.RevokedAt = &now
	store.keys[key.Hash] = revoked
	now = now.Add(time.Minute + time.Second)
	if _, err := a.Authenticate(context.Background(), "Bearer "+secret); !errors.Is(err, comms.ErrUnauthenticated) {
		t.Errorf("after the TTL a revoked key still works: %v", err)
	}
	// Unknown keys are never cached as valid.
	if _, err := a.Authenticate(context.Background(), "Bearer dk_live_unknown"); !errors.Is(err, comms.ErrUnauthenticated) {
		t.Errorf("unknown key: %v", err)
	}
}
