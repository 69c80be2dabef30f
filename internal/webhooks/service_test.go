package webhooks_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/store/sqlite"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
	"github.com/dispatcherhq/dispatcher/internal/webhooks/endpoints"
)

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

type fixture struct {
	svc   *endpoints.Service
	store *sqlite.Store
	mu    sync.Mutex
	now   time.Time
	n     int
	p     comms.Principal
}

func (f *fixture) clock() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	for _, co := range []string{"acme", "other"} {
		if err := store.CreateCompany(ctx, comms.Company{ID: co, Settings: comms.DefaultSettings(), CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{store: store, now: t0, p: comms.Principal{CompanyID: "acme", KeyID: "k1"}}
	f.svc, err = endpoints.NewService(endpoints.Options{
		Store: store,
		Secrets: func() (string, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.n++
			return fmt.Sprintf("whsec_secret%02d", f.n), nil
		},
		URLs: func(_ context.Context, raw string) (*url.URL, error) {
			if strings.Contains(raw, "10.0.0.1") {
				return nil, errors.New("must not point at a private address (10.0.0.1)")
			}
			return url.Parse(raw)
		},
		Clock: f.clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestNewServiceNamesMissingPorts(t *testing.T) {
	t.Parallel()
	_, err := endpoints.NewService(endpoints.Options{})
	for _, name := range []string{"Store", "Secrets", "URLs"} {
		if err == nil || !strings.Contains(err.Error(), "Options."+name) {
			t.Errorf("error %v does not name Options.%s", err, name)
		}
	}
}

func TestCreateGetPatchDelete(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	e, err := f.svc.Create(ctx, f.p, []byte(`{"url":"https://crm.example.com/hooks","event_types":["sent","failed"],"description":"timeline"}`))
	if err != nil {
		t.Fatal(err)
	}
	if e.Version != 1 || len(e.Secrets) != 1 || e.Secrets[0].Value != "whsec_secret01" || e.Secrets[0].ExpiresAt != nil ||
		!e.CreatedAt.Equal(t0) || e.CompanyID != "acme" || !e.Wants(comms.EventSent) || e.Wants(comms.EventCreated) {
		t.Fatalf("created %+v", e)
	}
	got, err := f.svc.Get(ctx, f.p, e.ID)
	if err != nil || got.URL != "https://crm.example.com/hooks" || got.Description != "timeline" {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if _, err := f.svc.Get(ctx, comms.Principal{CompanyID: "other"}, e.ID); !errors.Is(err, comms.ErrNotFound) {
		t.Errorf("another company's Get: %v, want not found", err)
	}
	if _, err := f.svc.Get(ctx, f.p, "not-a-uuid"); !errors.Is(err, comms.ErrNotFound) {
		t.Errorf("Get of a malformed id: %v, want not found", err)
	}

	f.advance(time.Minute)
	e, err = f.svc.Patch(ctx, f.p, e.ID, []byte(`{"disabled":true,"event_types":null,"description":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if !e.Disabled || e.DisabledReason != webhooks.DisabledManual || e.EventTypes != nil || e.Description != "" ||
		!e.UpdatedAt.Equal(t0.Add(time.Minute)) || !e.Wants(comms.EventCreated) {
		t.Fatalf("patched %+v", e)
	}
	e, err = f.svc.Patch(ctx, f.p, e.ID, []byte(`{"disabled":false,"url":"https://crm.example.com/v2"}`))
	if err != nil || e.Disabled || e.DisabledReason != "" || e.URL != "https://crm.example.com/v2" {
		t.Fatalf("re-enabled %+v, %v", e, err)
	}
	var ve *comms.ValidationError
	if _, err := f.svc.Patch(ctx, f.p, e.ID, []byte(`{"url":"http://10.0.0.1/hook"}`)); !errors.As(err, &ve) ||
		ve.Fields[0].Field != "url" || !strings.Contains(ve.Fields[0].Message, "private") {
		t.Errorf("patch to a refused URL: %v", err)
	}
	if err := f.svc.Delete(ctx, f.p, e.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Delete(ctx, f.p, e.ID); !errors.Is(err, comms.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}

func TestCreateRefusals(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	for body, field := range map[string]string{
		`{"url":"http://10.0.0.1/hook"}`:                                                   "url",
		`{"url":"https://a.example.com","event_types":["sent","x"]}`:                       "event_types[1]",
		`{"url":"https://a.example.com","event_types":["sent","sent"]}`:                    "event_types[1]",
		`{"url":"https://a.example.com","colour":"red"}`:                                   "colour",
		`{"event_types":[]}`:                                                               "url",
		`{"url":"https://a.example.com","description":"` + strings.Repeat("x", 501) + `"}`: "description",
	} {
		_, err := f.svc.Create(ctx, f.p, []byte(body))
		var ve *comms.ValidationError
		if !errors.As(err, &ve) || ve.Fields[0].Field != field {
			t.Errorf("%s: %v, want a validation error of %s", body, err, field)
		}
	}
	for i := range webhooks.MaxEndpoints {
		if _, err := f.svc.Create(ctx, f.p, fmt.Appendf(nil, `{"url":"https://a.example.com/%d"}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.svc.Create(ctx, f.p, []byte(`{"url":"https://a.example.com/one-more"}`)); !errors.Is(err, webhooks.ErrTooManyEndpoints) {
		t.Errorf("endpoint %d: %v, want ErrTooManyEndpoints", webhooks.MaxEndpoints+1, err)
	}
	// The limit is per company.
	if _, err := f.svc.Create(ctx, comms.Principal{CompanyID: "other"}, []byte(`{"url":"https://a.example.com/"}`)); err != nil {
		t.Errorf("other company: %v", err)
	}
}

func TestRotateSecret(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	e, err := f.svc.Create(ctx, f.p, []byte(`{"url":"https://crm.example.com/hooks"}`))
	if err != nil {
		t.Fatal(err)
	}
	f.advance(time.Hour)
	e, err = f.svc.RotateSecret(ctx, f.p, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	until := t0.Add(time.Hour + webhooks.RotationOverlap)
	if len(e.Secrets) != 2 || e.Secrets[0].Value != "whsec_secret02" || e.Secrets[0].ExpiresAt != nil ||
		e.Secrets[1].Value != "whsec_secret01" || !e.Secrets[1].ExpiresAt.Equal(until) {
		t.Fatalf("after rotation: %+v", e.Secrets)
	}
	if cur, _ := e.Current(); cur.Value != "whsec_secret02" {
		t.Errorf("current = %s", cur.Value)
	}
	f.advance(webhooks.RotationOverlap - time.Millisecond)
	if got, _ := f.svc.Get(ctx, f.p, e.ID); len(got.Secrets) != 2 {
		t.Errorf("a moment before the overlap ends: %d secrets, want 2", len(got.Secrets))
	}
	f.advance(time.Millisecond)
	got, _ := f.svc.Get(ctx, f.p, e.ID)
	if len(got.Secrets) != 1 || got.Secrets[0].Value != "whsec_secret02" {
		t.Errorf("when the overlap ends: %+v, want the new secret alone", got.Secrets)
	}
	// Rotating again and again keeps at most MaxSecrets, the newest.
	for range 4 {
		if e, err = f.svc.RotateSecret(ctx, f.p, e.ID); err != nil {
			t.Fatal(err)
		}
	}
	if len(e.Secrets) != webhooks.MaxSecrets || e.Secrets[0].Value != "whsec_secret06" || e.Secrets[2].Value != "whsec_secret04" {
		t.Errorf("after four more rotations: %+v", e.Secrets)
	}
	stored, _ := f.store.GetWebhookEndpoint(ctx, "acme", e.ID)
	if len(stored.Secrets) != webhooks.MaxSecrets || stored.Version != e.Version {
		t.Errorf("stored %d secrets at version %d; service says version %d", len(stored.Secrets), stored.Version, e.Version)
	}
}

// A PATCH written from a read made before a rotation must not undo it: the
// caller holds the rotated secret, which has to sign.
func TestStalePatchDoesNotUndoRotation(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	e, err := f.svc.Create(ctx, f.p, []byte(`{"url":"https://crm.example.com/hooks"}`))
	if err != nil {
		t.Fatal(err)
	}
	stale, _ := f.store.GetWebhookEndpoint(ctx, "acme", e.ID)
	if _, err := f.svc.RotateSecret(ctx, f.p, e.ID); err != nil {
		t.Fatal(err)
	}
	stale.Description = "stale"
	if err := f.store.PutWebhookEndpoint(ctx, stale); !errors.Is(err, comms.ErrConflict) {
		t.Fatalf("stale write: %v, want ErrConflict", err)
	}
}
