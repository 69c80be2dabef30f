// Package app wires Dispatcher's parts together. Build is the one wiring:
// given a deployment's adapters (Ports) it builds the store → service →
// timer → dispatcher → API → voice webhooks graph. NewAWS supplies the AWS
// adapters; internal/embedded supplies SQLite, the local timer and the dev
// senders. Mains call one of them once at start and do nothing else.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/auth"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/httpapi"
	"github.com/dispatcherhq/dispatcher/internal/scheduling"
)

// DevKeyFile holds the dev company's API key inside a data directory.
const DevKeyFile = "dev-api-key"

// DevCompany is the company `serve` creates on first start.
const (
	DevCompany        = "dev"
	DevCompanyCredits = 50000
)

// Handler is the HTTP API alone over a store: no timer and no dispatcher,
// so rows are stored and never delivered, and any sending domain may be
// declared (AnyDomain). The API tests use it; processes wire the whole
// product with Build.
func Handler(store comms.Store, log *slog.Logger) *httpapi.API {
	return httpapi.New(scheduling.NewService(store, scheduling.WithLogger(log), scheduling.WithIdentityVerifier(AnyDomain{})),
		auth.NewAuthenticator(store), log)
}

// CreateCompany creates a company with a balance and a default timezone.
func CreateCompany(ctx context.Context, store comms.CompanyStore, id string, credits int64, timezone string) error {
	if id == "" {
		return errors.New("app.CreateCompany: an id is required")
	}
	if !comms.ValidCompanyID(id) {
		return fmt.Errorf("app.CreateCompany: company id %q must be 1–64 letters, digits, '-' or '_' (it travels as an SES message tag, which allows no other characters)", id)
	}
	if credits < 0 {
		return errors.New("app.CreateCompany: credits cannot be negative")
	}
	if timezone == "" {
		timezone = "UTC"
	}
	if _, err := comms.Timezone(timezone); err != nil {
		return fmt.Errorf("app.CreateCompany: %w", err)
	}
	set := comms.DefaultSettings()
	set.Timezone = timezone
	err := store.CreateCompany(ctx, comms.Company{ID: id, Credits: credits, Settings: set, CreatedAt: time.Now().UTC()})
	if errors.Is(err, comms.ErrAlreadyExists) {
		// The store's message (a driver's constraint error) says nothing a
		// person can act on; the sentinel stays for errors.Is.
		return fmt.Errorf("company %q %w", id, comms.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("store.CreateCompany: %w", err)
	}
	return nil
}

// GetCompany returns a company; an absent one is the one-line error
// `company "x" not found`, which still matches comms.ErrNotFound.
func GetCompany(ctx context.Context, store comms.CompanyStore, id string) (comms.Company, error) {
	c, err := store.GetCompany(ctx, id)
	if errors.Is(err, comms.ErrNotFound) {
		return c, fmt.Errorf("company %q %w", id, comms.ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("store.GetCompany %q: %w", id, err)
	}
	return c, nil
}

// CreateKey issues a key of a company and returns its secret.
func CreateKey(ctx context.Context, store comms.Store, companyID string, scopes []comms.Scope) (string, error) {
	secret, _, err := IssueKey(ctx, store, companyID, scopes)
	return secret, err
}

// IssueKey issues a key of a company and returns its secret and the stored
// key (its ID is what revoking takes).
func IssueKey(ctx context.Context, store comms.Store, companyID string, scopes []comms.Scope) (string, comms.APIKey, error) {
	if _, err := GetCompany(ctx, store, companyID); err != nil {
		return "", comms.APIKey{}, err
	}
	secret, key, err := auth.NewKey(companyID, scopes, time.Now())
	if err != nil {
		return "", comms.APIKey{}, err
	}
	if err := store.CreateAPIKey(ctx, key); err != nil {
		return "", comms.APIKey{}, fmt.Errorf("store.CreateAPIKey: %w", err)
	}
	return secret, key, nil
}

// EnsureDevCompany creates, on first start, the company "dev" with 50,000
// credits and a key of every scope, written to <data>/dev-api-key. Later
// starts return the key from that file; created says which happened.
func EnsureDevCompany(ctx context.Context, store comms.Store, dataDir string) (key string, created bool, err error) {
	path := filepath.Join(dataDir, DevKeyFile)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", false, fmt.Errorf("os.MkdirAll: %w", err)
	}
	_, err = store.GetCompany(ctx, DevCompany)
	switch {
	case err == nil:
		b, rerr := os.ReadFile(path)
		if rerr != nil {
			return "", false, nil // the file was removed; the company still works with its keys
		}
		return string(b), false, nil
	case !errors.Is(err, comms.ErrNotFound):
		return "", false, fmt.Errorf("store.GetCompany: %w", err)
	}
	if err := CreateCompany(ctx, store, DevCompany, DevCompanyCredits, "UTC"); err != nil {
		return "", false, err
	}
	key, err = CreateKey(ctx, store, DevCompany, comms.AllScopes)
	if err != nil {
		return "", false, err
	}
	if err := os.WriteFile(path, []byte(key), 0o600); err != nil {
		return "", false, fmt.Errorf("os.WriteFile: %w", err)
	}
	return key, true, nil
}
