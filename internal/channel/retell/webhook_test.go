package retell

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// sdkVector was produced with Retell's own SDK (npm retell-sdk 5.66.1,
// lib/webhook_auth.js): symmetric.sign(sdkBody, sdkKey, 1767225600000).
const (
	sdkBody   = `{"event":"call_ended","call":{"call_id":"call_0123456789abcdef","call_status":"ended"}}`
	sdkKey    = "key_3a9f2c71e8d54b06a1c4f7e2d9b8"
	sdkHeader = "v=1767225600000,d=01a1bf75add6ebdba337d44ad98a46aba458b79d3a97ebafede20e741e5c0cf7"
)

var sdkTime = time.UnixMilli(1767225600000)

func TestSignMatchesRetellSDK(t *testing.T) {
	t.Parallel()
	if got := Sign([]byte(sdkBody), sdkKey, sdkTime); got != sdkHeader {
		t.Errorf("Sign = %s\nwant  %s", got, sdkHeader)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	body := []byte(sdkBody)
	digest := strings.TrimPrefix(sdkHeader, "v=1767225600000,d=")
	cases := []struct {
		name      string
		body      []byte
		header    string
		key       string
		now       time.Time
		tolerance time.Duration
		ok        bool
	}{
		{"SDK vector", body, sdkHeader, sdkKey, sdkTime, 0, true},
		{"round trip", body, Sign(body, sdkKey, sdkTime.Add(-time.Minute)), sdkKey, sdkTime, 0, true},
		{"at the tolerance bound", body, sdkHeader, sdkKey, sdkTime.Add(5 * time.Minute), 0, true},
		{"at the bound, future side", body, sdkHeader, sdkKey, sdkTime.Add(-5 * time.Minute), 0, true},
		{"custom tolerance", body, sdkHeader, sdkKey, sdkTime.Add(20 * time.Minute), 30 * time.Minute, true},
		{"uppercase digest (the SDK accepts it)", body, "v=1767225600000,d=" + strings.ToUpper(digest), sdkKey, sdkTime, 0, true},
		{"leading zeros in the timestamp (the SDK accepts them)", body, "v=0001767225600000,d=" + digest, sdkKey, sdkTime, 0, true},
		{"forged body", []byte(strings.Replace(sdkBody, `"ended"`, `"ongoing"`, 1)), sdkHeader, sdkKey, sdkTime, 0, false},
		{"body re-encoded with spaces", []byte(strings.ReplaceAll(sdkBody, ":", ": ")), sdkHeader, sdkKey, sdkTime, 0, false},
		{"wrong key", body, sdkHeader, "key_someone_else", sdkTime, 0, false},
		{"no key", body, sdkHeader, "", sdkTime, 0, false},
		{"stale timestamp", body, sdkHeader, sdkKey, sdkTime.Add(5*time.Minute + time.Millisecond), 0, false},
		{"future timestamp", body, sdkHeader, sdkKey, sdkTime.Add(-5*time.Minute - time.Millisecond), 0, false},
		{"replayed an hour later", body, sdkHeader, sdkKey, sdkTime.Add(time.Hour), 0, false},
		{"timestamp changed, digest kept", body, "v=1767225601000,d=" + digest, sdkKey, sdkTime, 0, false},
		{"missing header", body, "", sdkKey, sdkTime, 0, false},
		{"no v part", body, "d=" + digest, sdkKey, sdkTime, 0, false},
		{"parts swapped", body, "d=" + digest + ",v=1767225600000", sdkKey, sdkTime, 0, false},
		{"spaces", body, "v=1767225600000, d=" + digest, sdkKey, sdkTime, 0, false},
		{"signed timestamp", body, "v=-1767225600000,d=" + digest, sdkKey, sdkTime, 0, false},
		{"fractional timestamp", body, "v=1767225600000.5,d=" + digest, sdkKey, sdkTime, 0, false},
		{"timestamp beyond a safe integer", body, "v=9007199254740993,d=" + digest, sdkKey, sdkTime, 0, false},
		{"timestamp overflowing int64", body, "v=99999999999999999999999,d=" + digest, sdkKey, sdkTime, 0, false},
		{"short digest", body, "v=1767225600000,d=" + digest[:62], sdkKey, sdkTime, 0, false},
		{"non-hex digest", body, "v=1767225600000,d=" + strings.Repeat("z", 64), sdkKey, sdkTime, 0, false},
		{"extra field", body, sdkHeader + ",x=1", sdkKey, sdkTime, 0, false},
		{"bare digest (old scheme)", body, digest, sdkKey, sdkTime, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := Verify(tc.body, tc.header, tc.key, tc.now, tc.tolerance)
			switch {
			case tc.ok && err != nil:
				t.Errorf("Verify: %v, want nil", err)
			case !tc.ok && !errors.Is(err, ErrSignature):
				t.Errorf("Verify = %v, want an ErrSignature", err)
			}
		})
	}
}

func TestSignVerifyRoundTripOnFixtures(t *testing.T) {
	t.Parallel()
	for _, name := range fixtureNames {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			body := readFixture(t, name)
			at := time.Date(2026, 1, 15, 10, 1, 9, 0, time.UTC)
			h := Sign(body, "key_webhook", at)
			if err := Verify(body, h, "key_webhook", at.Add(3*time.Second), DefaultTolerance); err != nil {
				t.Errorf("Verify(Sign(body)): %v", err)
			}
			flipped := append([]byte(nil), body...)
			flipped[len(flipped)/2] ^= 1
			if err := Verify(flipped, h, "key_webhook", at, DefaultTolerance); !errors.Is(err, ErrSignature) {
				t.Errorf("a flipped bit verified: %v", err)
			}
		})
	}
}
