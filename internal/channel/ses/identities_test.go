package ses_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/dispatcherhq/dispatcher/internal/scheduling"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	"github.com/dispatcherhq/dispatcher/internal/awstest"
	"github.com/dispatcherhq/dispatcher/internal/channel/ses"
	"github.com/dispatcherhq/dispatcher/internal/clock"
)

// fakeIdentities is a hand-written ses.IdentityAPI: verified lists the
// identities SES reports verified, known those it knows unverified; any
// other is NotFoundException. err, when set, answers every call.
type fakeIdentities struct {
	mu       sync.Mutex
	verified map[string]bool
	err      error
	asked    []string
}

func (f *fakeIdentities) GetEmailIdentity(_ context.Context, in *sesv2.GetEmailIdentityInput, _ ...func(*sesv2.Options)) (*sesv2.GetEmailIdentityOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := aws.ToString(in.EmailIdentity)
	f.asked = append(f.asked, name)
	if f.err != nil {
		return nil, f.err
	}
	v, ok := f.verified[name]
	if !ok {
		return nil, &types.NotFoundException{Message: aws.String(name)}
	}
	return &sesv2.GetEmailIdentityOutput{IdentityType: types.IdentityTypeDomain, VerifiedForSendingStatus: v}, nil
}

func (f *fakeIdentities) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.asked)
}

func (f *fakeIdentities) set(name string, verified bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.verified[name] = verified
}

func TestIdentitiesVerified(t *testing.T) {
	t.Parallel()
	api := &fakeIdentities{verified: map[string]bool{"example.com": true, "pending.example.org": false, "xn--bcher-kva.de": true}}
	v := ses.NewIdentities(api, ses.IdentityOptions{})
	ctx := context.Background()
	for domain, want := range map[string]bool{
		"example.com":         true,  // a verified domain identity
		"mail.example.com":    true,  // a subdomain of one: SES lets its owner send from it
		"a.b.example.com":     true,  // any depth
		"pending.example.org": false, // known, not (yet) verified
		"example.org":         false, // unknown to SES: NotFoundException
		"notexample.com":      false, // a suffix that is not a parent domain
		"xn--bcher-kva.de":    true,  // an IDN, asked in its ASCII form
	} {
		got, err := v.VerifiedForSending(ctx, domain)
		if err != nil || got != want {
			t.Errorf("%s: %v, %v; want %v", domain, got, err, want)
		}
	}
	// Parents are asked nearest first and never beyond two labels.
	api2 := &fakeIdentities{verified: map[string]bool{}}
	if ok, err := ses.NewIdentities(api2, ses.IdentityOptions{}).VerifiedForSending(ctx, "a.b.example.co.uk"); ok || err != nil {
		t.Fatalf("unknown: %v, %v", ok, err)
	}
	if got, want := api2.calls(), []string{"a.b.example.co.uk", "b.example.co.uk", "example.co.uk", "co.uk"}; !slices.Equal(got, want) {
		t.Errorf("asked %v, want %v", got, want)
	}
}

// TestIdentitiesCache: a positive answer is believed for the TTL (two
// settings saves within it cost one SES call), then asked again; a
// negative answer is never cached, so a domain verified a moment later is
// accepted at once; an error is returned, never cached as an answer.
func TestIdentitiesCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	api := &fakeIdentities{verified: map[string]bool{"example.com": true}}
	v := ses.NewIdentities(api, ses.IdentityOptions{TTL: 10 * time.Minute, Now: clk.Now})

	for range 2 {
		if ok, err := v.VerifiedForSending(ctx, "example.com"); !ok || err != nil {
			t.Fatalf("example.com: %v, %v", ok, err)
		}
	}
	if n := len(api.calls()); n != 1 {
		t.Errorf("two checks within the TTL made %d SES calls, want 1", n)
	}
	clk.Advance(10*time.Minute - time.Second)
	_, _ = v.VerifiedForSending(ctx, "example.com")
	if n := len(api.calls()); n != 1 {
		t.Errorf("a check just inside the TTL made %d SES calls in all, want 1", n)
	}
	clk.Advance(time.Second)
	_, _ = v.VerifiedForSending(ctx, "example.com")
	if n := len(api.calls()); n != 2 {
		t.Errorf("a check at the TTL made %d SES calls in all, want 2", n)
	}

	// Negative: not cached.
	if ok, _ := v.VerifiedForSending(ctx, "new.org"); ok {
		t.Fatal("new.org verified before it exists")
	}
	api.set("new.org", true)
	if ok, err := v.VerifiedForSending(ctx, "new.org"); !ok || err != nil {
		t.Errorf("new.org after verification: %v, %v; the negative answer was cached", ok, err)
	}

	// An error is returned as an error, and the next call asks again.
	failing := &fakeIdentities{verified: map[string]bool{"example.com": true}, err: errors.New("throttled")}
	fv := ses.NewIdentities(failing, ses.IdentityOptions{Now: clk.Now})
	if ok, err := fv.VerifiedForSending(ctx, "example.com"); ok || err == nil {
		t.Errorf("SES failing: %v, %v; want an error", ok, err)
	}
	failing.mu.Lock()
	failing.err = nil
	failing.mu.Unlock()
	if ok, err := fv.VerifiedForSending(ctx, "example.com"); !ok || err != nil {
		t.Errorf("after SES recovers: %v, %v", ok, err)
	}
}

// TestIdentitiesConcurrent runs checks from many goroutines (go test -race).
func TestIdentitiesConcurrent(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	api := &fakeIdentities{verified: map[string]bool{}}
	for i := range 10 {
		api.verified[fmt.Sprintf("d%d.example", i)] = i%2 == 0
	}
	v := ses.NewIdentities(api, ses.IdentityOptions{TTL: time.Minute, Now: clk.Now})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				d := fmt.Sprintf("d%d.example", (g+i)%10)
				ok, err := v.VerifiedForSending(context.Background(), d)
				if err != nil || ok != ((g+i)%10%2 == 0) {
					t.Errorf("%s: %v, %v", d, ok, err)
				}
				if i%10 == 0 {
					clk.Advance(time.Second)
				}
			}
		}()
	}
	wg.Wait()
}

// TestIdentitiesEmulator asks a real SES v2 client at AWS_ENDPOINT_URL
// (skipped loudly without one; with CI set it fails instead). An identity
// SES does not know is unverified, not an error. For an identity it knows,
// the answer is verified when SES says VerifiedForSendingStatus or
// VerificationStatus SUCCESS: moto 5.2.5 creates identities with
// VerificationStatus SUCCESS but VerifiedForSendingStatus false, so that
// `make dev-aws` can declare the domains it created; AWS sets both once DNS
// verification succeeds.
func TestIdentitiesEmulator(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := sesv2.NewFromConfig(awstest.Config(t))
	v := ses.NewIdentities(client, ses.IdentityOptions{})

	unknown := strings.ToLower(awstest.Unique(t, "unknown")) + ".dispatcher.test"
	if ok, err := v.VerifiedForSending(ctx, unknown); ok || err != nil {
		t.Errorf("unknown domain %s: %v, %v; want unverified without error", unknown, ok, err)
	}

	domain := strings.ToLower(awstest.Unique(t, "verified")) + ".test"
	if _, err := client.CreateEmailIdentity(ctx, &sesv2.CreateEmailIdentityInput{EmailIdentity: aws.String(domain)}); err != nil {
		t.Fatalf("sesv2.CreateEmailIdentity: %v", err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteEmailIdentity(context.Background(), &sesv2.DeleteEmailIdentityInput{EmailIdentity: aws.String(domain)})
	})
	out, err := client.GetEmailIdentity(ctx, &sesv2.GetEmailIdentityInput{EmailIdentity: aws.String(domain)})
	if err != nil {
		t.Fatalf("sesv2.GetEmailIdentity: %v", err)
	}
	t.Logf("emulator: %s VerificationStatus %s, VerifiedForSendingStatus %v", domain, out.VerificationStatus, out.VerifiedForSendingStatus)
	for _, d := range []string{domain, "mail." + domain} {
		ok, err := v.VerifiedForSending(ctx, d)
		want := out.VerifiedForSendingStatus || out.VerificationStatus == types.VerificationStatusSuccess
		if err != nil || ok != want {
			t.Errorf("%s: %v, %v; want %v (the identity's VerifiedForSendingStatus %v, VerificationStatus %s)",
				d, ok, err, want, out.VerifiedForSendingStatus, out.VerificationStatus)
		}
	}
}

// Identities is the AWS deployment's scheduling.IdentityVerifier (asserted
// here, not in the package, so that the senders do not link the service).
var _ scheduling.IdentityVerifier = (*ses.Identities)(nil)
