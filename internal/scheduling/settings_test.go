package scheduling_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	"github.com/dispatcherhq/dispatcher/internal/channel/ses"
	"github.com/dispatcherhq/dispatcher/internal/clock"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/scheduling"
	"github.com/dispatcherhq/dispatcher/internal/store/sqlite"
)

// sesIdentities is a hand-written SES GetEmailIdentity: the domains in
// verified are verified, others unknown; err answers every call when set.
type sesIdentities struct {
	mu       sync.Mutex
	verified map[string]bool
	err      error
	calls    int
}

func (f *sesIdentities) GetEmailIdentity(_ context.Context, in *sesv2.GetEmailIdentityInput, _ ...func(*sesv2.Options)) (*sesv2.GetEmailIdentityOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	if !f.verified[aws.ToString(in.EmailIdentity)] {
		return nil, &types.NotFoundException{Message: in.EmailIdentity}
	}
	return &sesv2.GetEmailIdentityOutput{VerifiedForSendingStatus: true}, nil
}

func (f *sesIdentities) n() int { f.mu.Lock(); defer f.mu.Unlock(); return f.calls }

// TestPutSettingsVerifiesDomainsThroughTheCache: saving settings asks the
// SES identity check about each domain; two saves within the cache's TTL
// cost one SES call; an unverified domain is a validation error naming it;
// an SES failure is comms.ErrUnavailable and saves nothing.
func TestPutSettingsVerifiesDomainsThroughTheCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.CreateCompany(ctx, comms.Company{ID: "acme", Credits: 10, Settings: comms.DefaultSettings(), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	api := &sesIdentities{verified: map[string]bool{"example.com": true}}
	svc := scheduling.NewService(store, scheduling.WithClock(clk.Now),
		scheduling.WithIdentityVerifier(ses.NewIdentities(api, ses.IdentityOptions{TTL: 10 * time.Minute, Now: clk.Now})))
	p := comms.Principal{CompanyID: "acme"}
	body := []byte(`{"timezone":"UTC","sending_domains":["example.com"],"default_from_email":"team@mail.example.com"}`)

	for range 2 {
		if _, err := svc.PutSettings(ctx, p, body); err != nil {
			t.Fatal(err)
		}
	}
	if api.n() != 1 {
		t.Errorf("two saves within the TTL made %d SES calls, want 1", api.n())
	}
	clk.Advance(10 * time.Minute)
	if _, err := svc.PutSettings(ctx, p, body); err != nil || api.n() != 2 {
		t.Errorf("a save after the TTL: %v, %d SES calls in all, want 2", err, api.n())
	}

	_, err = svc.PutSettings(ctx, p, []byte(`{"timezone":"UTC","sending_domains":["example.com","example.org"]}`))
	var ve *comms.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != "sending_domains[1]" ||
		ve.Fields[0].Message != "domain example.org is not a verified SES identity in this account; verify it (docs/deploy.md)" {
		t.Errorf("unverified domain: %v", err)
	}

	api.mu.Lock()
	api.err = errors.New("ServiceUnavailable")
	api.mu.Unlock()
	_, err = svc.PutSettings(ctx, p, []byte(`{"timezone":"UTC","sending_domains":["example.net"]}`))
	if !errors.Is(err, comms.ErrUnavailable) {
		t.Errorf("SES failing: %v, want ErrUnavailable", err)
	}
	s, err := svc.Settings(ctx, p)
	if err != nil || len(s.SendingDomains) != 1 || s.SendingDomains[0] != "example.com" || s.DefaultFromEmail != "team@mail.example.com" {
		t.Errorf("settings after refused saves = %+v, %v", s, err)
	}
}

// TestPutSettingsWithoutVerifier: a service wired without an identity check
// refuses to save sending domains instead of accepting them unchecked.
func TestPutSettingsWithoutVerifier(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.CreateCompany(ctx, comms.Company{ID: "acme", Credits: 10, Settings: comms.DefaultSettings(), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	svc := scheduling.NewService(store)
	p := comms.Principal{CompanyID: "acme"}
	if _, err := svc.PutSettings(ctx, p, []byte(`{"timezone":"UTC","sending_domains":["example.com"]}`)); err == nil {
		t.Error("sending domains saved without an identity check")
	}
	if _, err := svc.PutSettings(ctx, p, []byte(`{"timezone":"UTC"}`)); err != nil {
		t.Errorf("settings without sending domains: %v", err)
	}
}
