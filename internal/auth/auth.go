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

// Authenticator resolves bearer tokens.
type Authenticator struct {
	keys KeyFinder
}

// NewAuthenticator returns an authenticator over keys.
func NewAuthenticator(keys KeyFinder) *Authenticator { return &Authenticator{keys: keys} }

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
	k, err := a.keys.APIKeyByHash(ctx, Hash(token))
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
