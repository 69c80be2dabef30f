// Package webhooks holds the building blocks of status webhooks (issue 12): signing per the
// Standard Webhooks specification,
// https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
// (version 1.0.0; "the spec" below), symmetric scheme only.
package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names, from the spec's "Webhook headers" section: every header is prefixed with
// `webhook-` and named exactly so.
const (
	// HeaderID is the message's unique identifier, the same on every retry of that message, which
	// receivers use as an idempotency key.
	HeaderID = "webhook-id"
	// HeaderTimestamp is the attempt's time as integer Unix seconds.
	HeaderTimestamp = "webhook-timestamp"
	// HeaderSignature is a space-delimited list of `v1,<base64 HMAC-SHA256>` signatures.
	HeaderSignature = "webhook-signature"
)

// SecretPrefix marks a symmetric signing secret (the spec's "Secret serialization": base64,
// prefixed with `whsec_` for easy identification).
const SecretPrefix = "whsec_"

// Key sizes the spec allows for a symmetric secret: "Random. At least 24 bytes (192 bits,
// 512 maximum)" — read as 512 bits, so 24 to 64 bytes. NewSecret makes 32.
const (
	minKeyBytes = 24
	maxKeyBytes = 64
	newKeyBytes = 32
)

// signatureVersion identifies the symmetric HMAC-SHA256 scheme (the spec's "Signature
// identifier" `v1`; `v1a` would be ed25519, which this package does not produce).
const signatureVersion = "v1"

// ErrMalformedSecret is returned (wrapped, with the reason) for a secret that is not `whsec_`
// followed by the padded standard base64 of 24 to 64 bytes.
var ErrMalformedSecret = errors.New("webhooks: malformed signing secret")

// ErrMalformedID is returned for an empty message id, or one containing a full stop (the spec
// says the id must not be allowed to include any `.`, a delimiter of the signed content) or a
// line break (it is sent as a header value).
var ErrMalformedID = errors.New("webhooks: malformed message id")

// NewSecret returns a new signing secret: "whsec_" + the padded standard base64 of 32 bytes
// from crypto/rand (the spec asks for at least 24 random bytes).
func NewSecret() (string, error) {
	key := make([]byte, newKeyBytes)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("webhooks: new secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(key), nil
}

// ParseSecret returns the HMAC key of a `whsec_` secret, or an error matching
// ErrMalformedSecret. The base64 must be the standard, padded alphabet (the one the Svix and
// Standard Webhooks libraries decode) and strict: no whitespace, no stray bits.
func ParseSecret(secret string) ([]byte, error) {
	enc, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: missing the %q prefix", ErrMalformedSecret, SecretPrefix)
	}
	if strings.ContainsAny(enc, "\r\n") { // StdEncoding.DecodeString skips newlines
		return nil, fmt.Errorf("%w: not standard base64", ErrMalformedSecret)
	}
	key, err := base64.StdEncoding.Strict().DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: not standard base64", ErrMalformedSecret)
	}
	if len(key) < minKeyBytes || len(key) > maxKeyBytes {
		return nil, fmt.Errorf("%w: key is %d bytes, want %d to %d", ErrMalformedSecret, len(key), minKeyBytes, maxKeyBytes)
	}
	return key, nil
}

// Headers are the three Standard Webhooks headers of one attempt, to be set with the HeaderID,
// HeaderTimestamp and HeaderSignature names.
type Headers struct {
	ID, Timestamp, Signature string
}

// Sign signs one attempt of message msgID, made at at, carrying body, with each secret in turn
// (the spec's "Signature scheme"): the signed content is `msgID + "." + unix seconds + "." +
// body`, the MAC HMAC-SHA256 keyed with the decoded secret, and each signature `v1,<standard
// base64 of the MAC>`. Several secrets — the old and the new during a rotation — give several
// signatures, space-delimited, in the order given, as the spec's "Webhook headers" section
// allows for zero-downtime rotation; a receiver holding either secret verifies.
//
// It fails, signing nothing, when there is no secret, a secret is malformed (ErrMalformedSecret)
// or the id is empty or contains a `.` or a line break (ErrMalformedID). body is signed byte for byte: the caller
// must send exactly these bytes.
func Sign(secrets []string, msgID string, at time.Time, body []byte) (Headers, error) {
	if len(secrets) == 0 {
		return Headers{}, fmt.Errorf("%w: no secret", ErrMalformedSecret)
	}
	if msgID == "" || strings.ContainsAny(msgID, ".\r\n") {
		return Headers{}, fmt.Errorf("%w: %q", ErrMalformedID, msgID)
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	sigs := make([]string, 0, len(secrets))
	for i, s := range secrets {
		key, err := ParseSecret(s)
		if err != nil {
			return Headers{}, fmt.Errorf("secret %d: %w", i, err)
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(msgID))
		mac.Write([]byte{'.'})
		mac.Write([]byte(ts))
		mac.Write([]byte{'.'})
		mac.Write(body)
		sigs = append(sigs, signatureVersion+","+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return Headers{ID: msgID, Timestamp: ts, Signature: strings.Join(sigs, " ")}, nil
}
