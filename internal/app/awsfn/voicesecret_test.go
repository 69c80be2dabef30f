package awsfn_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/dispatcherhq/dispatcher/internal/app/awsfn"
	"github.com/dispatcherhq/dispatcher/internal/awstest"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
)

var base = time.Date(2030, 1, 7, 9, 0, 0, 0, time.UTC)

const company = "acme"

type voiceSecretBundle struct {
	sm     *awstest.FakeSecrets
	now    *time.Time
	secret *awsfn.VoiceSecret
}

func setupVoiceSecret(t *testing.T, value string) voiceSecretBundle {
	t.Helper()
	now := base
	sm := &awstest.FakeSecrets{}
	sm.Set(value, nil)
	return voiceSecretBundle{sm: sm, now: &now, secret: awsfn.NewVoiceSecret(sm, "arn:secret", awsfn.VoiceSecretOptions{
		TTL: 5 * time.Minute, MaxStale: time.Hour, RetryAfter: 5 * time.Second, Now: func() time.Time { return now },
	})}
}

// TestVoiceSecretIsLazyAndCached: nothing is read until asked; a read is
// used for its TTL, then read again (a rotated key is picked up).
func TestVoiceSecretIsLazyAndCached(t *testing.T) {
	t.Parallel()
	b := setupVoiceSecret(t, `{"api_key":"key-1","webhook_signing_secret":"generated"}`)
	ctx := context.Background()
	if n := b.sm.Reads(); n != 0 {
		t.Fatalf("%d reads before anything asked", n)
	}
	for range 3 {
		if k, err := b.secret.Keys(ctx); err != nil || k.APIKey != "key-1" || k.WebhookKey() != "key-1" {
			t.Fatalf("Keys = %+v, %v", k, err)
		}
	}
	if n := b.sm.Reads(); n != 1 {
		t.Errorf("%d reads within the TTL, want 1", n)
	}
	b.sm.Set(`{"api_key":"key-2"}`, nil)
	*b.now = b.now.Add(5 * time.Minute)
	if k, err := b.secret.Keys(ctx); err != nil || k.APIKey != "key-2" {
		t.Errorf("after the TTL: %+v, %v, want the rotated key", k, err)
	}
}

// TestVoiceSecretServesStaleWhileSecretsManagerFails: a failed read keeps
// the last keys for MaxStale past the TTL, asks again only after
// RetryAfter, and fails once the keys are too old.
func TestVoiceSecretServesStaleWhileSecretsManagerFails(t *testing.T) {
	t.Parallel()
	b := setupVoiceSecret(t, `{"api_key":"key-1"}`)
	ctx := context.Background()
	if _, err := b.secret.Keys(ctx); err != nil {
		t.Fatal(err)
	}
	b.sm.Set("", errors.New("ThrottlingException"))
	*b.now = b.now.Add(6 * time.Minute)
	if k, err := b.secret.Keys(ctx); err != nil || k.APIKey != "key-1" {
		t.Fatalf("stale within MaxStale: %+v, %v", k, err)
	}
	if k, err := b.secret.Keys(ctx); err != nil || k.APIKey != "key-1" {
		t.Fatalf("again: %+v, %v", k, err)
	}
	if n := b.sm.Reads(); n != 2 {
		t.Errorf("%d reads, want 2 (a failure is not retried within RetryAfter)", n)
	}
	*b.now = b.now.Add(time.Hour)
	if _, err := b.secret.Keys(ctx); err == nil || !strings.Contains(err.Error(), "ThrottlingException") {
		t.Errorf("past MaxStale: err = %v, want the read's error", err)
	}
	if _, err := b.secret.WebhookKey(ctx); !errors.Is(err, comms.ErrUnavailable) {
		t.Errorf("WebhookKey err = %v, want comms.ErrUnavailable (503: the provider retries)", err)
	}
	b.sm.Set(`{"api_key":"key-2"}`, nil)
	*b.now = b.now.Add(5 * time.Second)
	if k, err := b.secret.Keys(ctx); err != nil || k.APIKey != "key-2" {
		t.Errorf("after Secrets Manager recovers: %+v, %v", k, err)
	}
}

// TestVoiceSecretFirstReadFails: no keys yet, so the error; bad JSON too.
func TestVoiceSecretFirstReadFails(t *testing.T) {
	t.Parallel()
	b := setupVoiceSecret(t, `not json`)
	if _, err := b.secret.Keys(context.Background()); err == nil || !strings.Contains(err.Error(), "api_key") {
		t.Errorf("bad JSON: err = %v", err)
	}
}

// TestVoiceSecretWebhookKey: webhook_api_key, when set, verifies webhooks;
// else api_key (Retell signs with it). webhook_signing_secret is never used.
func TestVoiceSecretWebhookKey(t *testing.T) {
	t.Parallel()
	for value, want := range map[string]string{
		`{"api_key":"calls","webhook_signing_secret":"generated"}`:                           "calls",
		`{"api_key":"calls","webhook_api_key":"hooks","webhook_signing_secret":"generated"}`: "hooks",
		`{"api_key":"","webhook_signing_secret":"generated"}`:                                "",
	} {
		b := setupVoiceSecret(t, value)
		if got, err := b.secret.WebhookKey(context.Background()); err != nil || got != want {
			t.Errorf("%s: WebhookKey = %q, %v, want %q", value, got, err, want)
		}
	}
}

// TestLazyRetell: calls use the key the secret holds now (a rotated key
// at the next call); an empty key is voice_not_configured (permanent), an
// unreadable secret a transient failure with nothing dialled.
func TestLazyRetell(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var auths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"call_id":"call_1","call_status":"registered"}`))
	}))
	t.Cleanup(srv.Close)
	b := setupVoiceSecret(t, `{"api_key":""}`)
	caller := awsfn.NewLazyRetell(b.secret, srv.URL, srv.Client())
	ctx := context.Background()
	call := dispatch.Call{CommunicationID: "c1", CompanyID: company, Attempt: 1, From: "+61412345678", To: "+14155550123", AgentID: "agent_1"}

	_, err := caller.PlaceCall(ctx, call)
	var se *comms.SendError
	if !errors.As(err, &se) || se.Transient || se.Code != "voice_not_configured" {
		t.Fatalf("empty api_key: %v, want permanent voice_not_configured", err)
	}
	b.sm.Set(`{"api_key":"key-1"}`, nil)
	*b.now = b.now.Add(5 * time.Minute)
	if id, err := caller.PlaceCall(ctx, call); err != nil || id != "call_1" {
		t.Fatalf("PlaceCall = %q, %v", id, err)
	}
	b.sm.Set(`{"api_key":"key-2"}`, nil)
	*b.now = b.now.Add(5 * time.Minute)
	if _, err := caller.PlaceCall(ctx, call); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(auths) != 2 || auths[0] != "Bearer key-1" || auths[1] != "Bearer key-2" {
		t.Errorf("Authorization headers %v, want key-1 then the rotated key-2", auths)
	}
	mu.Unlock()

	b.sm.Set("", errors.New("InternalServiceError"))
	*b.now = b.now.Add(3 * time.Hour)
	_, err = caller.PlaceCall(ctx, call)
	if !errors.As(err, &se) || !se.Transient || se.Code != awsfn.CodeVoiceSecretUnavailable {
		t.Fatalf("unreadable secret: %v, want transient %s", err, awsfn.CodeVoiceSecretUnavailable)
	}
	if _, err := caller.LookupCall(ctx, "call_1"); err == nil {
		t.Error("LookupCall with an unreadable secret succeeded")
	}
	mu.Lock()
	if len(auths) != 2 {
		t.Errorf("%d requests to the provider, want none while the secret is unreadable", len(auths)-2)
	}
	mu.Unlock()
}

// TestEmulatorVoiceSecret reads a real secret through the SDK on the
// emulator: created as the stack creates it (empty api_key), then written
// as docs/deploy.md says; the change is picked up after the TTL.
func TestEmulatorVoiceSecret(t *testing.T) {
	t.Parallel()
	cfg := awstest.Config(t)
	sm := secretsmanager.NewFromConfig(cfg)
	ctx := context.Background()
	out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String(awstest.Unique(t, "voice")),
		SecretString: aws.String(`{"api_key":"","webhook_signing_secret":"generated"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = sm.DeleteSecret(context.Background(), &secretsmanager.DeleteSecretInput{SecretId: out.ARN, ForceDeleteWithoutRecovery: aws.Bool(true)})
	})
	now := base
	secret := awsfn.NewVoiceSecret(sm, aws.ToString(out.ARN), awsfn.VoiceSecretOptions{Now: func() time.Time { return now }})
	if k, err := secret.Keys(ctx); err != nil || k.APIKey != "" {
		t.Fatalf("as created: %+v, %v", k, err)
	}
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: out.ARN,
		SecretString: aws.String(`{"api_key":"key_live","webhook_signing_secret":"generated"}`)}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(awsfn.DefaultVoiceSecretTTL)
	if k, err := secret.WebhookKey(ctx); err != nil || k != "key_live" {
		t.Errorf("after put-secret-value and the TTL: %q, %v, want key_live", k, err)
	}
}
