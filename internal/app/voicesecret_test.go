package app_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/app/awsfn"
	"github.com/dispatcherhq/dispatcher/internal/awstest"
	"github.com/dispatcherhq/dispatcher/internal/channel/retell"
	"github.com/dispatcherhq/dispatcher/internal/config"
)

// TestNewAWSVoiceWebhooksReadTheSecretLazily: the AWS wiring with
// WithVoiceSecret reads nothing when built; a webhook while Secrets
// Manager fails is a 503 (the provider retries); once it answers, a
// delivery signed with api_key is verified.
func TestNewAWSVoiceWebhooksReadTheSecretLazily(t *testing.T) {
	t.Parallel()
	now := base
	sm := &awstest.FakeSecrets{}
	secret := awsfn.NewVoiceSecret(sm, "arn:secret", awsfn.VoiceSecretOptions{Now: func() time.Time { return now }})
	sm.Set("", errors.New("InternalServiceError"))
	a := app.NewAWS(config.AWS{TableName: "t", QueueURL: "http://127.0.0.1:1/q", ScheduleGroup: "g"},
		app.NewClients(aws.Config{Region: "us-east-1"}), nil, app.WithAWSClock(func() time.Time { return now }),
		app.WithVoiceSecret(secret, "https://voice.invalid"))
	if n := sm.Reads(); n != 0 {
		t.Fatalf("%d secret reads while wiring, want none", n)
	}
	body := []byte(`{"event":"call_started","call":{"call_id":"call_9"}}`)
	post := func(key string) int {
		req := httptest.NewRequest("POST", "/v1/webhooks/voice/retell", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(retell.SignatureHeader, retell.Sign(body, key, now))
		rec := httptest.NewRecorder()
		a.API.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := post("key-1"); code != http.StatusServiceUnavailable {
		t.Errorf("webhook while the secret is unreadable: %d, want 503", code)
	}
	sm.Set(`{"api_key":"key-1","webhook_signing_secret":"generated"}`, nil)
	now = now.Add(time.Minute)
	if code := post("generated"); code != http.StatusUnauthorized {
		t.Errorf("signed with the generated webhook_signing_secret: %d, want 401", code)
	}
	if code := post("key-1"); code != http.StatusOK {
		t.Errorf("signed with api_key: %d, want 200", code)
	}
}
