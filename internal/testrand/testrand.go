// Package testrand makes the test data of Dispatcher's tests: ids, tokens,
// names and phone numbers that are random enough to keep tests apart (on a
// shared emulator, across runs) yet reproducible, and never invalid.
//
// Every value derives from one seed per test binary: $DISPATCHER_TEST_SEED
// when set, otherwise one drawn at random when the binary starts. Each test
// gets its own stream, seeded from that seed and the test's name, so its
// data does not depend on which tests ran before it or alongside it, and
// New logs the seed: a failure shows the seed that replays it
// (DISPATCHER_TEST_SEED=<seed> go test -run <test> …; a test that counts
// what a shared emulator recorded needs the emulator reset first).
//
// Tests must not derive data from the clock or from unseeded randomness
// (time.Now().UnixNano(), crypto/rand, uuid.New): such data is neither
// reproducible nor, for constrained values like phone numbers, always
// valid.
package testrand

import (
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// SeedEnv names the environment variable that fixes the seed.
const SeedEnv = "DISPATCHER_TEST_SEED"

var (
	seedOnce sync.Once
	seed     uint64
	seedErr  error
)

// Seed is the seed of this test binary: $DISPATCHER_TEST_SEED, or a random
// one drawn on first use. It panics if DISPATCHER_TEST_SEED is set and is
// not an unsigned integer.
func Seed() uint64 {
	seedOnce.Do(func() {
		if v := os.Getenv(SeedEnv); v != "" {
			seed, seedErr = strconv.ParseUint(v, 10, 64)
			return
		}
		seed = rand.Uint64()
	})
	if seedErr != nil {
		panic(fmt.Sprintf("testrand: %s=%q is not an unsigned integer", SeedEnv, os.Getenv(SeedEnv)))
	}
	return seed
}

// Rand is one test's stream of test data. It is not safe for concurrent
// use; a test's parallel subtests each call New.
type Rand struct {
	*rand.Rand
}

// New returns t's stream, seeded from Seed and t.Name(), and logs the seed.
func New(t testing.TB) *Rand {
	t.Helper()
	s := Seed()
	h := fnv.New64a()
	_, _ = h.Write([]byte(t.Name()))
	t.Logf("testrand: seed %d (%s=%d replays this test's data)", s, SeedEnv, s)
	return &Rand{rand.New(rand.NewPCG(s, h.Sum64()))}
}

// Hex returns n random lowercase hex digits.
func (r *Rand) Hex(n int) string {
	b := make([]byte, (n+1)/2)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return hex.EncodeToString(b)[:n]
}

// Token returns what comms.NewToken makes: 24 hex digits.
func (r *Rand) Token() string { return r.Hex(24) }

// UUID returns a random version-4 UUID in canonical form.
func (r *Rand) UUID() string { return r.uuid(4) }

// UUIDv7 returns a UUID shaped like version 7. Its time bits are random
// too: a test's ids never depend on the clock.
func (r *Rand) UUIDv7() string { return r.uuid(7) }

func (r *Rand) uuid(version byte) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	b[6] = b[6]&0x0f | version<<4
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

var (
	numbersMu sync.Mutex
	numbers   = map[string]bool{}
)

// PhoneNumber returns a mobile number of region (ISO 3166 code, e.g. "AU",
// "GB") in E.164 that libphonenumber (github.com/nyaruka/phonenumbers, what
// the API validates with) accepts as valid, and that no other test of this
// binary has been given. It keeps the first digits of the region's example
// mobile number, draws the rest, and draws again until the number is valid.
// It panics for a region without mobile numbers.
func (r *Rand) PhoneNumber(region string) string {
	ex := phonenumbers.GetExampleNumberForType(region, phonenumbers.MOBILE)
	if ex == nil {
		panic("testrand.PhoneNumber: no mobile numbers in region " + region)
	}
	nsn := phonenumbers.GetNationalSignificantNumber(ex)
	for range 10000 {
		b := []byte(nsn)
		for i := 2; i < len(b); i++ {
			b[i] = '0' + byte(r.IntN(10))
		}
		s := "+" + strconv.Itoa(int(ex.GetCountryCode())) + string(b)
		if !ValidMobile(s) {
			continue
		}
		numbersMu.Lock()
		taken := numbers[s]
		numbers[s] = true
		numbersMu.Unlock()
		if !taken {
			return s
		}
	}
	panic("testrand.PhoneNumber: no valid number found for region " + region)
}

// ValidMobile reports whether s is a valid mobile number in E.164 for
// libphonenumber: it parses, is valid, is a mobile (or fixed-or-mobile)
// number, and formats back to s.
func ValidMobile(s string) bool {
	n, err := phonenumbers.Parse(s, "")
	if err != nil || !phonenumbers.IsValidNumber(n) || phonenumbers.Format(n, phonenumbers.E164) != s {
		return false
	}
	t := phonenumbers.GetNumberType(n)
	return t == phonenumbers.MOBILE || t == phonenumbers.FIXED_LINE_OR_MOBILE
}
