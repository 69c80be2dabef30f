package retell

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader is the header carrying Retell's webhook signature.
const SignatureHeader = "X-Retell-Signature"

// DefaultTolerance is how far a signature's timestamp may be from now,
// either way: five minutes, as in Retell's SDKs.
const DefaultTolerance = 5 * time.Minute

// maxSafeInteger is JavaScript's Number.MAX_SAFE_INTEGER: Retell's SDK
// rejects larger timestamps.
const maxSafeInteger = 1<<53 - 1

// ErrSignature is wrapped by every error of Verify: the webhook is not
// proven to come from Retell and must be rejected (401).
var ErrSignature = errors.New("invalid Retell webhook signature")

// Sign returns the x-retell-signature value Retell would send for body at
// time at: "v=<unix ms>,d=<hex HMAC-SHA256(apiKey, body + unix ms)>".
func Sign(body []byte, apiKey string, at time.Time) string {
	ts := strconv.FormatInt(at.UnixMilli(), 10)
	return "v=" + ts + ",d=" + hex.EncodeToString(signature(body, apiKey, ts))
}

// signature is the HMAC-SHA256, keyed with the API key, of the raw body
// followed by the decimal timestamp.
func signature(body []byte, apiKey, ts string) []byte {
	m := hmac.New(sha256.New, []byte(apiKey))
	m.Write(body)
	m.Write([]byte(ts))
	return m.Sum(nil)
}

// Verify checks the x-retell-signature header of a webhook against its raw
// body, as Retell's SDK verify does: the header must be exactly
// "v=<digits>,d=<64 hex digits>", the timestamp (Unix milliseconds) within
// tolerance of now either way (tolerance ≤ 0 means DefaultTolerance; the
// bound itself is accepted), and the digest equal, compared in constant
// time, to HMAC-SHA256(apiKey, body + decimal timestamp). body must be the
// bytes as received, never re-encoded JSON. Every error wraps ErrSignature.
func Verify(body []byte, header string, apiKey string, now time.Time, tolerance time.Duration) error {
	if apiKey == "" {
		return fmt.Errorf("%w: no API key to verify with", ErrSignature)
	}
	ts, digest, err := parseSignature(header)
	if err != nil {
		return err
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	diff := now.UnixMilli() - ts
	switch {
	case diff > tolerance.Milliseconds():
		return fmt.Errorf("%w: timestamp %s is older than %s", ErrSignature, time.UnixMilli(ts).UTC().Format(time.RFC3339Nano), tolerance)
	case -diff > tolerance.Milliseconds():
		return fmt.Errorf("%w: timestamp %s is more than %s in the future", ErrSignature, time.UnixMilli(ts).UTC().Format(time.RFC3339Nano), tolerance)
	}
	if !hmac.Equal(signature(body, apiKey, strconv.FormatInt(ts, 10)), digest) {
		return fmt.Errorf("%w: digest does not match the body", ErrSignature)
	}
	return nil
}

// parseSignature splits "v=<digits>,d=<hex>" into the timestamp and the
// digest bytes.
func parseSignature(header string) (int64, []byte, error) {
	if header == "" {
		return 0, nil, fmt.Errorf("%w: no %s header", ErrSignature, SignatureHeader)
	}
	v, d, ok := strings.Cut(header, ",")
	if !ok || !strings.HasPrefix(v, "v=") || !strings.HasPrefix(d, "d=") {
		return 0, nil, fmt.Errorf("%w: header is not v=<timestamp>,d=<digest>", ErrSignature)
	}
	digits, hexDigest := v[2:], d[2:]
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, nil, fmt.Errorf("%w: timestamp is not a number of milliseconds", ErrSignature)
	}
	ts, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || ts > maxSafeInteger {
		return 0, nil, fmt.Errorf("%w: timestamp out of range", ErrSignature)
	}
	digest, err := hex.DecodeString(hexDigest)
	if err != nil || len(digest) != sha256.Size {
		return 0, nil, fmt.Errorf("%w: digest is not %d hex digits", ErrSignature, 2*sha256.Size)
	}
	return ts, digest, nil
}
