package ses

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"
)

// IdentityAPI is the one SES v2 operation the identity check uses;
// *sesv2.Client has it.
type IdentityAPI interface {
	GetEmailIdentity(ctx context.Context, params *sesv2.GetEmailIdentityInput, optFns ...func(*sesv2.Options)) (*sesv2.GetEmailIdentityOutput, error)
}

var _ IdentityAPI = (*sesv2.Client)(nil)

// DefaultIdentityTTL is how long a domain found verified is believed
// without asking SES again. A domain found unverified is not remembered,
// so a company that has just verified it can save its settings at once.
const DefaultIdentityTTL = 10 * time.Minute

// IdentityOptions configure Identities.
type IdentityOptions struct {
	// TTL of a positive answer; zero: DefaultIdentityTTL.
	TTL time.Duration
	// Now is the clock of the cache; nil: time.Now.
	Now func() time.Time
}

// Identities answers whether the account may send from a domain: whether
// the domain, or a parent domain of it, is a verified SES identity
// (GetEmailIdentity's VerifiedForSendingStatus). SES lets the owner of a
// verified domain identity send from any of its subdomains, so declaring
// mail.example.com is accepted when example.com is verified. An identity
// SES does not know (NotFoundException) is not verified; any other error
// is returned, meaning "unknown".
//
// Positive answers are cached for the TTL, per domain asked; negative
// answers and errors are not. It is safe for concurrent use.
type Identities struct {
	client IdentityAPI
	ttl    time.Duration
	now    func() time.Time

	mu       sync.Mutex
	verified map[string]time.Time // domain → when the answer expires
}

// NewIdentities returns the identity check over client, built once per
// process (typically the sesv2.Client the sender uses).
func NewIdentities(client IdentityAPI, opts IdentityOptions) *Identities {
	if opts.TTL <= 0 {
		opts.TTL = DefaultIdentityTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Identities{client: client, ttl: opts.TTL, now: opts.Now, verified: map[string]time.Time{}}
}

// VerifiedForSending reports whether the account may send from domain
// (ASCII, lower-case), asking SES about the domain and then each parent
// domain of at least two labels until one is verified.
func (v *Identities) VerifiedForSending(ctx context.Context, domain string) (bool, error) {
	if v.cached(domain) {
		return true, nil
	}
	for _, name := range withParents(domain) {
		ok, err := v.lookup(ctx, name)
		if err != nil {
			return false, err
		}
		if ok {
			v.remember(domain)
			return true, nil
		}
	}
	return false, nil
}

func (v *Identities) cached(domain string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	exp, ok := v.verified[domain]
	if ok && v.now().Before(exp) {
		return true
	}
	if ok {
		delete(v.verified, domain)
	}
	return false
}

func (v *Identities) remember(domain string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.verified[domain] = v.now().Add(v.ttl)
}

// lookup asks SES about one identity.
func (v *Identities) lookup(ctx context.Context, name string) (bool, error) {
	out, err := v.client.GetEmailIdentity(ctx, &sesv2.GetEmailIdentityInput{EmailIdentity: aws.String(name)})
	var nf *types.NotFoundException
	if errors.As(err, &nf) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sesv2.GetEmailIdentity %s: %w", name, err)
	}
	// VerifiedForSendingStatus is SES's answer; an identity whose
	// VerificationStatus is SUCCESS is verified too (the emulator, moto,
	// reports only that one).
	return out.VerifiedForSendingStatus || out.VerificationStatus == types.VerificationStatusSuccess, nil
}

// withParents lists domain and its parent domains of two labels or more:
// a.b.example.com, b.example.com, example.com.
func withParents(domain string) []string {
	out := []string{domain}
	for d := domain; ; {
		i := strings.IndexByte(d, '.')
		if i < 0 || !strings.Contains(d[i+1:], ".") {
			return out
		}
		d = d[i+1:]
		out = append(out, d)
	}
}
