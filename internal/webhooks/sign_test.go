package webhooks

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"
)

// Every signature here is checked by the maintained Svix Go verifier, never by this package's
// own code: a bug shared by Sign and a home-made checker would otherwise pass.

// svixVector is the published example of the Svix documentation, also the vector of the Svix
// libraries' own tests (go/webhook_test.go TestWebhookSign in svix-webhooks v1.44.0).
var svixVector = struct {
	secret, id string
	at         time.Time
	body       []byte
	signature  string
}{
	secret:    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	id:        "msg_p5jXN8AQM9LWM0D4loKWxJek",
	at:        time.Unix(1614265330, 0),
	body:      []byte(`{"test": 2432232314}`),
	signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
}

func httpHeader(h Headers) http.Header {
	hd := http.Header{}
	hd.Set(HeaderID, h.ID)
	hd.Set(HeaderTimestamp, h.Timestamp)
	hd.Set(HeaderSignature, h.Signature)
	return hd
}

func verifier(t *testing.T, secret string) *svix.Webhook {
	t.Helper()
	wh, err := svix.NewWebhook(secret)
	if err != nil {
		t.Fatalf("svix.NewWebhook(%q): %v", secret, err)
	}
	return wh
}

func mustSecret(t *testing.T) string {
	t.Helper()
	s, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignPublishedVector(t *testing.T) {
	v := svixVector
	h, err := Sign([]string{v.secret}, v.id, v.at, v.body)
	if err != nil {
		t.Fatal(err)
	}
	want := Headers{ID: v.id, Timestamp: "1614265330", Signature: v.signature}
	if h != want {
		t.Fatalf("Sign = %+v, want %+v", h, want)
	}
	// The vector is from 2021: outside Verify's 5-minute tolerance, so the signature alone.
	if err := verifier(t, v.secret).VerifyIgnoringTimestamp(v.body, httpHeader(h)); err != nil {
		t.Fatalf("svix rejects the published vector as signed: %v", err)
	}
	// Sub-second precision does not change the signed timestamp.
	h2, err := Sign([]string{v.secret}, v.id, v.at.Add(999*time.Millisecond), v.body)
	if err != nil || h2 != want {
		t.Fatalf("Sign with fractional seconds = %+v, %v; want %+v", h2, err, want)
	}
}

func TestSignVerifiesWithSvix(t *testing.T) {
	secret := mustSecret(t)
	now := time.Now()
	bodies := map[string][]byte{
		"json":              []byte(`{"type":"sent","timestamp":"2026-12-01T02:39:05.000Z","data":{"event":{"sequence":3}}}`),
		"empty":             {},
		"dots and newlines": []byte("a.b.c\n\r\n.{\"x\": \"é\"}"),
		"binary":            {0, 1, 2, 0xff, '.', 0xfe},
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			h, err := Sign([]string{secret}, "0b6b3c1e-2f8e-5d0a-9c57-6f1f3c2a9d10", now, body)
			if err != nil {
				t.Fatal(err)
			}
			if h.Timestamp != strconv.FormatInt(now.Unix(), 10) {
				t.Errorf("timestamp %q, want %d", h.Timestamp, now.Unix())
			}
			if err := verifier(t, secret).Verify(body, httpHeader(h)); err != nil {
				t.Fatalf("svix Verify: %v", err)
			}
		})
	}
}

func TestSignRotation(t *testing.T) {
	old, cur := mustSecret(t), mustSecret(t)
	body := []byte(`{"type":"created"}`)
	now := time.Now()
	h, err := Sign([]string{old, cur}, "msg_rotation", now, body)
	if err != nil {
		t.Fatal(err)
	}
	sigs := strings.Split(h.Signature, " ")
	if len(sigs) != 2 {
		t.Fatalf("signature header %q: want two space-delimited signatures", h.Signature)
	}
	for i, s := range []string{old, cur} {
		// Either secret alone verifies the two-signature header, as a receiver mid-rotation holds.
		if err := verifier(t, s).Verify(body, httpHeader(h)); err != nil {
			t.Errorf("secret %d alone does not verify the rotation header: %v", i, err)
		}
		// The order is the order given: signature i is secret i's, and only secret i's.
		one := h
		one.Signature = sigs[i]
		if err := verifier(t, s).Verify(body, httpHeader(one)); err != nil {
			t.Errorf("signature %d is not secret %d's: %v", i, i, err)
		}
		one.Signature = sigs[1-i]
		if err := verifier(t, s).Verify(body, httpHeader(one)); err == nil {
			t.Errorf("signature %d verifies with secret %d too", 1-i, i)
		}
	}
	// A third secret verifies neither.
	if err := verifier(t, mustSecret(t)).Verify(body, httpHeader(h)); err == nil {
		t.Error("a secret that did not sign verifies the rotation header")
	}
	// Each signature equals what signing with that secret alone gives.
	for i, s := range []string{old, cur} {
		h1, err := Sign([]string{s}, "msg_rotation", now, body)
		if err != nil || h1.Signature != sigs[i] {
			t.Errorf("Sign(secret %d alone) = %q, %v; want %q", i, h1.Signature, err, sigs[i])
		}
	}
}

func TestSignTamperedFails(t *testing.T) {
	secret := mustSecret(t)
	body := []byte(`{"type":"sent","data":{"amount":1}}`)
	now := time.Now()
	h, err := Sign([]string{secret}, "msg_tamper", now, body)
	if err != nil {
		t.Fatal(err)
	}
	wh := verifier(t, secret)
	if err := wh.Verify(body, httpHeader(h)); err != nil {
		t.Fatalf("untampered: %v", err)
	}
	tampered := func(f func(h *Headers, b *[]byte)) (Headers, []byte) {
		h2, b2 := h, append([]byte(nil), body...)
		f(&h2, &b2)
		return h2, b2
	}
	cases := map[string]func(h *Headers, b *[]byte){
		"body byte":          func(_ *Headers, b *[]byte) { (*b)[len(*b)-3] = '2' },
		"body appended":      func(_ *Headers, b *[]byte) { *b = append(*b, ' ') },
		"body truncated":     func(_ *Headers, b *[]byte) { *b = (*b)[:len(*b)-1] },
		"timestamp +1s":      func(h *Headers, _ *[]byte) { h.Timestamp = strconv.FormatInt(now.Unix()+1, 10) },
		"timestamp -1s":      func(h *Headers, _ *[]byte) { h.Timestamp = strconv.FormatInt(now.Unix()-1, 10) },
		"id":                 func(h *Headers, _ *[]byte) { h.ID = "msg_tampeR" },
		"id moved into body": func(h *Headers, b *[]byte) { h.ID = "msg"; *b = append([]byte("_tamper."), *b...) },
		"signature version":  func(h *Headers, _ *[]byte) { h.Signature = "v1a" + h.Signature[2:] },
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			h2, b2 := tampered(f)
			if err := wh.Verify(b2, httpHeader(h2)); err == nil {
				t.Fatalf("svix verifies a message with a tampered %s", name)
			}
		})
	}
}

func TestSignRefusesMalformed(t *testing.T) {
	good := mustSecret(t)
	key16 := SecretPrefix + base64.StdEncoding.EncodeToString(make([]byte, 16))
	key23 := SecretPrefix + base64.StdEncoding.EncodeToString(make([]byte, 23))
	key65 := SecretPrefix + base64.StdEncoding.EncodeToString(make([]byte, 65))
	raw := base64.StdEncoding.EncodeToString(make([]byte, 32))
	secrets := map[string]string{
		"empty":                "",
		"prefix only":          SecretPrefix,
		"no prefix":            raw,
		"other prefix":         "whsk_" + raw,
		"upper-case prefix":    "WHSEC_" + raw,
		"not base64":           SecretPrefix + "!!!!not-base64!!!!",
		"unpadded":             strings.TrimRight(SecretPrefix+base64.StdEncoding.EncodeToString(make([]byte, 31)), "="),
		"url alphabet":         SecretPrefix + base64.URLEncoding.EncodeToString([]byte(strings.Repeat("\xfb\xff", 16))),
		"embedded newline":     SecretPrefix + raw[:10] + "\n" + raw[10:],
		"trailing space":       good + " ",
		"16-byte key":          key16,
		"23-byte key":          key23,
		"65-byte key":          key65,
		"stray bits (!strict)": SecretPrefix + raw[:len(raw)-2] + "B=",
	}
	for name, s := range secrets {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseSecret(s); !errors.Is(err, ErrMalformedSecret) {
				t.Errorf("ParseSecret(%q) = %v, want ErrMalformedSecret", s, err)
			}
			// Alone, or after a good one: nothing is signed.
			for _, list := range [][]string{{s}, {good, s}} {
				h, err := Sign(list, "msg_1", time.Now(), []byte("{}"))
				if !errors.Is(err, ErrMalformedSecret) || h != (Headers{}) {
					t.Errorf("Sign(%q) = %+v, %v; want ErrMalformedSecret and no headers", list, h, err)
				}
			}
		})
	}
	if _, err := Sign(nil, "msg_1", time.Now(), nil); !errors.Is(err, ErrMalformedSecret) {
		t.Errorf("Sign with no secret = %v, want ErrMalformedSecret", err)
	}
	for _, id := range []string{"", "msg.1", ".", "msg\n1"} {
		if _, err := Sign([]string{good}, id, time.Now(), nil); !errors.Is(err, ErrMalformedID) {
			t.Errorf("Sign(id %q) = %v, want ErrMalformedID", id, err)
		}
	}
	// The boundaries the spec allows are accepted.
	for _, n := range []int{24, 64} {
		s := SecretPrefix + base64.StdEncoding.EncodeToString(make([]byte, n))
		h, err := Sign([]string{s}, "msg_1", time.Now(), []byte("{}"))
		if err != nil {
			t.Fatalf("%d-byte key: %v", n, err)
		}
		if err := verifier(t, s).Verify([]byte("{}"), httpHeader(h)); err != nil {
			t.Errorf("%d-byte key: svix Verify: %v", n, err)
		}
	}
}

func TestNewSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 64 {
		s := mustSecret(t)
		enc, ok := strings.CutPrefix(s, SecretPrefix)
		if !ok {
			t.Fatalf("%q lacks the %q prefix", s, SecretPrefix)
		}
		key, err := base64.StdEncoding.Strict().DecodeString(enc)
		if err != nil || len(key) != 32 {
			t.Fatalf("%q: %d bytes, %v; want 32 bytes of padded standard base64", s, len(key), err)
		}
		if seen[s] {
			t.Fatalf("NewSecret repeated %q", s)
		}
		seen[s] = true
		if _, err := ParseSecret(s); err != nil {
			t.Fatalf("ParseSecret(NewSecret()) = %v", err)
		}
		verifier(t, s) // Svix reads it too
	}
}
