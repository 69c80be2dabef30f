package testrand_test

import (
	"regexp"
	"testing"

	"github.com/dispatcherhq/dispatcher/internal/testrand"
)

var (
	uuid4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	uuid7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	token = regexp.MustCompile(`^[0-9a-f]{24}$`)
)

func TestShapes(t *testing.T) {
	t.Parallel()
	r := testrand.New(t)
	for range 1000 {
		if u := r.UUID(); !uuid4.MatchString(u) {
			t.Fatalf("UUID() = %q", u)
		}
		if u := r.UUIDv7(); !uuid7.MatchString(u) {
			t.Fatalf("UUIDv7() = %q", u)
		}
		if tok := r.Token(); !token.MatchString(tok) {
			t.Fatalf("Token() = %q", tok)
		}
		if h := r.Hex(7); len(h) != 7 {
			t.Fatalf("Hex(7) = %q", h)
		}
	}
}

// TestPhoneNumbersAreValidAndUnique: every number is one libphonenumber
// accepts, whatever the seed, and none is handed out twice.
func TestPhoneNumbersAreValidAndUnique(t *testing.T) {
	t.Parallel()
	r := testrand.New(t)
	seen := map[string]bool{}
	for _, region := range []string{"AU", "GB", "US", "DE"} {
		for range 500 {
			n := r.PhoneNumber(region)
			if !testrand.ValidMobile(n) {
				t.Fatalf("PhoneNumber(%s) = %s, not a valid mobile number", region, n)
			}
			if seen[n] {
				t.Fatalf("PhoneNumber(%s) gave %s twice", region, n)
			}
			seen[n] = true
		}
	}
	// +61495402743 is one the e2e tests once built from the clock (+6149 and
	// seven digits of UnixNano): about one in six of those was invalid.
	for _, bad := range []string{"+61495402743", "+15550001234", "61412345678", "+614123456789"} {
		if testrand.ValidMobile(bad) {
			t.Errorf("ValidMobile(%s) = true", bad)
		}
	}
}

// TestStreamsAreReproducible: the same seed and test name give the same data.
func TestStreamsAreReproducible(t *testing.T) {
	t.Parallel()
	a, b := testrand.New(t), testrand.New(t)
	for range 100 {
		if x, y := a.UUID(), b.UUID(); x != y {
			t.Fatalf("two streams of one test differ: %s, %s", x, y)
		}
	}
}
