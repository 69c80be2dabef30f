// Package auth issues API keys and turns a bearer token into the principal
// it stands for. Keys are 32 random bytes behind a readable prefix; only
// their SHA-256 is ever stored, so a leaked database leaks no usable key.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/google/uuid"
)

// KeyPrefix starts every secret key, so scanners and people recognise it.
const KeyPrefix = "dk_live_"

// secretBytes is the entropy of a key: 256 bits.
const secretBytes = 32

// Hash returns the lowercase hex SHA-256 of a secret key: what is stored.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// NewKey makes a new key of a company with the given scopes. It returns the
// secret (shown once, never stored) and the record to store.
func NewKey(companyID string, scopes []comms.Scope, now time.Time) (secret string, key comms.APIKey, err error) {
	if companyID == "" {
		return "", comms.APIKey{}, errors.New("auth.NewKey: a company id is required")
	}
	if len(scopes) == 0 {
		return "", comms.APIKey{}, errors.New("auth.NewKey: at least one scope is required")
	}
	var b [secretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", comms.APIKey{}, fmt.Errorf("rand.Read: %w", err)
	}
	secret = KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, comms.APIKey{
		ID:        uuid.NewString(),
		CompanyID: companyID,
		Hash:      Hash(secret),
		Prefix:    secret[:len(KeyPrefix)+6],
		Scopes:    scopes,
		CreatedAt: now.UTC(),
	}, nil
}

// ParseScopes reads a comma-separated scope list, rejecting unknown names.
func ParseScopes(list string) ([]comms.Scope, error) {
	var out []comms.Scope
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		sc, ok := comms.ParseScope(s)
		if !ok {
			return nil, fmt.Errorf("unknown scope %q (known: %v)", s, comms.AllScopes)
		}
		if !comms.HasScope(out, sc) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no scopes given")
	}
	return out, nil
}

// KeyFinder finds a key by the hash of its secret.
type KeyFinder interface {
	APIKeyByHash(ctx context.Context, hash string) (comms.APIKey, error)
}

// CacheTTL is how long a resolved key is remembered in process. It saves a
// store read on nearly every request (on Lambda, a DynamoDB call); the price
// is that revoking a key takes up to this long to reach warm processes.
const CacheTTL = 60 * time.Second

// cacheMax bounds the cache; when full it is emptied (keys are few).
const cacheMax = 10000

// Authenticator resolves bearer tokens.
type Authenticator struct {
	keys KeyFinder
	ttl  time.Duration
	now  func() time.Time

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	key     comms.APIKey
	expires time.Time
}

// NewAuthenticator returns an authenticator over keys that remembers
// resolved keys for CacheTTL.
func NewAuthenticator(keys KeyFinder) *Authenticator {
	return NewCachingAuthenticator(keys, CacheTTL, time.Now)
}

// NewCachingAuthenticator is NewAuthenticator with its cache lifetime (0
// disables the cache) and clock.
func NewCachingAuthenticator(keys KeyFinder, ttl time.Duration, now func() time.Time) *Authenticator {
	return &Authenticator{keys: keys, ttl: ttl, now: now, cache: map[string]cached{}}
}

func (a *Authenticator) lookup(ctx context.Context, hash string) (comms.APIKey, error) {
	now := a.now()
	a.mu.Lock()
	c, ok := a.cache[hash]
	a.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.key, nil
	}
	k, err := a.keys.APIKeyByHash(ctx, hash)
	if err != nil || a.ttl <= 0 {
		return k, err
	}
	a.mu.Lock()
	if len(a.cache) >= cacheMax {
		clear(a.cache)
	}
	a.cache[hash] = cached{key: k, expires: now.Add(a.ttl)}
	a.mu.Unlock()
	return k, nil
}

// Authenticate returns the principal of an Authorization header value
// ("Bearer dk_live_…"). A missing, malformed, unknown or revoked key is
// comms.ErrUnauthenticated.
func (a *Authenticator) Authenticate(ctx context.Context, header string) (comms.Principal, error) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return comms.Principal{}, fmt.Errorf("auth.Authenticate: no bearer token: %w", comms.ErrUnauthenticated)
	}
	token = strings.TrimSpace(token)
	if !strings.HasPrefix(token, KeyPrefix) || len(token) > 128 {
		return comms.Principal{}, fmt.Errorf("auth.Authenticate: not a Dispatcher key: %w", comms.ErrUnauthenticated)
	}
	k, err := a.lookup(ctx, Hash(token))
	if errors.Is(err, comms.ErrNotFound) {
		return comms.Principal{}, fmt.Errorf("auth.Authenticate: unknown key: %w", comms.ErrUnauthenticated)
	}
	if err != nil {
		return comms.Principal{}, fmt.Errorf("store.APIKeyByHash: %w", err)
	}
	if k.RevokedAt != nil {
		return comms.Principal{}, fmt.Errorf("auth.Authenticate: revoked key: %w", comms.ErrUnauthenticated)
	}
	return comms.Principal{CompanyID: k.CompanyID, KeyID: k.ID, Scopes: k.Scopes}, nil
}
