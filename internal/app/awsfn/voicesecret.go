package awsfn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/dispatcherhq/dispatcher/internal/channel/retell"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
)

// JSON keys of the voice provider's secret (docs/deploy.md, step 4). The
// stack creates the secret with an empty api_key and a generated
// webhook_signing_secret; only the first two keys are read.
const (
	// VoiceSecretAPIKey is the provider's API key: it places calls, and
	// Retell signs its webhooks with it (its HMAC key is the account's
	// API key that carries the webhook badge).
	VoiceSecretAPIKey = "api_key"
	// VoiceSecretWebhookAPIKey, when set, is the key webhooks are verified
	// with instead of api_key: Retell's webhook-badged API key, for an
	// operator who places calls with another of the account's keys.
	VoiceSecretWebhookAPIKey = "webhook_api_key"
)

// VoiceKeys are the voice provider's keys as read from its secret.
type VoiceKeys struct {
	// APIKey places calls; empty means voice is not configured.
	APIKey string `json:"api_key"`
	// WebhookAPIKey, when set, verifies webhooks instead of APIKey.
	WebhookAPIKey string `json:"webhook_api_key"`
}

// WebhookKey is the key voice webhooks are verified with: WebhookAPIKey,
// else APIKey (Retell signs with the API key).
func (k VoiceKeys) WebhookKey() string {
	if k.WebhookAPIKey != "" {
		return k.WebhookAPIKey
	}
	return k.APIKey
}

// SecretsAPI is the part of the Secrets Manager client the cache uses.
type SecretsAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Defaults of VoiceSecretOptions.
const (
	// DefaultVoiceSecretTTL is how long a read secret is used before it is
	// read again: a rotated key is picked up within it.
	DefaultVoiceSecretTTL = 5 * time.Minute
	// DefaultVoiceSecretMaxStale is how long past its TTL the last secret
	// read is still used while Secrets Manager fails to answer.
	DefaultVoiceSecretMaxStale = time.Hour
	// DefaultVoiceSecretRetryAfter is how long a failed read is remembered
	// (and returned) before Secrets Manager is asked again, so a brown-out
	// is not answered with a read per call.
	DefaultVoiceSecretRetryAfter = 5 * time.Second
)

// VoiceSecretOptions tune a VoiceSecret (zero fields: the defaults).
type VoiceSecretOptions struct {
	TTL, MaxStale, RetryAfter time.Duration
	Now                       func() time.Time
}

// VoiceSecret reads the voice provider's secret from Secrets Manager when
// it is first needed — not at cold start, so a Secrets Manager hiccup
// fails only what needs the key (a call, a voice webhook), never a
// function's initialisation — and keeps it for a TTL, so a rotated key is
// picked up without a redeploy. While Secrets Manager fails, the last
// value read is used for up to MaxStale past its TTL. It is safe for
// concurrent use; one read at a time.
type VoiceSecret struct {
	sm   SecretsAPI
	arn  string
	opts VoiceSecretOptions

	mu       sync.Mutex
	keys     VoiceKeys
	readAt   time.Time // zero: never read
	err      error
	failedAt time.Time
}

// NewVoiceSecret returns a cache of the secret arn.
func NewVoiceSecret(sm SecretsAPI, arn string, opts VoiceSecretOptions) *VoiceSecret {
	if opts.TTL <= 0 {
		opts.TTL = DefaultVoiceSecretTTL
	}
	if opts.MaxStale <= 0 {
		opts.MaxStale = DefaultVoiceSecretMaxStale
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = DefaultVoiceSecretRetryAfter
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &VoiceSecret{sm: sm, arn: arn, opts: opts}
}

// Keys returns the secret's keys: the cached ones while fresh, else a new
// read; on a failed read, the last keys read while they are at most
// MaxStale past their TTL, else the error.
func (v *VoiceSecret) Keys(ctx context.Context) (VoiceKeys, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.opts.Now()
	read := !v.readAt.IsZero()
	if read && now.Sub(v.readAt) < v.opts.TTL {
		return v.keys, nil
	}
	if v.err == nil || now.Sub(v.failedAt) >= v.opts.RetryAfter {
		keys, err := v.read(ctx)
		if err == nil {
			v.keys, v.readAt, v.err = keys, now, nil
			return keys, nil
		}
		v.err, v.failedAt = err, now
	}
	if read && now.Sub(v.readAt) < v.opts.TTL+v.opts.MaxStale {
		return v.keys, nil
	}
	return VoiceKeys{}, v.err
}

func (v *VoiceSecret) read(ctx context.Context) (VoiceKeys, error) {
	out, err := v.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(v.arn)})
	if err != nil {
		return VoiceKeys{}, fmt.Errorf("secretsmanager.GetSecretValue: %w", err)
	}
	var keys VoiceKeys
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &keys); err != nil {
		return VoiceKeys{}, fmt.Errorf("voice secret %s is not JSON with %s: %w", v.arn, VoiceSecretAPIKey, err)
	}
	return keys, nil
}

// WebhookKey is the key voice webhooks are verified with (internal/app.VoiceHooks.Key).
// An unreadable secret is comms.ErrUnavailable (503: the provider retries).
func (v *VoiceSecret) WebhookKey(ctx context.Context) (string, error) {
	k, err := v.Keys(ctx)
	if err != nil {
		return "", fmt.Errorf("voice secret: %v: %w", err, comms.ErrUnavailable)
	}
	return k.WebhookKey(), nil
}

// CodeVoiceSecretUnavailable is the transient failure of a call placed while
// the voice secret cannot be read (nothing was dialled: it is retried).
const CodeVoiceSecretUnavailable = "voice_secret_unavailable"

// LazyRetell is the AWS voice caller: a Retell client made with the key the
// secret holds when a call is placed (again when the key changes).
type LazyRetell struct {
	secret  *VoiceSecret
	baseURL string
	http    *http.Client

	mu     sync.Mutex
	key    string
	client *retell.Client
}

var (
	_ dispatch.VoiceCaller = (*LazyRetell)(nil)
	_ dispatch.CallLookup  = (*LazyRetell)(nil)
)

// NewLazyRetell returns a caller of Retell's API at baseURL with the keys
// of secret (httpClient nil: retell.New's default).
func NewLazyRetell(secret *VoiceSecret, baseURL string, httpClient *http.Client) *LazyRetell {
	return &LazyRetell{secret: secret, baseURL: baseURL, http: httpClient}
}

// errNoVoiceKey is a lookup without a key.
var errNoVoiceKey = errors.New("voice provider API key is not set (" + VoiceSecretAPIKey + " of the voice secret)")

func (l *LazyRetell) current(ctx context.Context) (*retell.Client, error) {
	k, err := l.secret.Keys(ctx)
	if err != nil {
		return nil, err
	}
	if k.APIKey == "" {
		return nil, errNoVoiceKey
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.client == nil || l.key != k.APIKey {
		l.client, l.key = retell.New(l.baseURL, k.APIKey, l.http), k.APIKey
	}
	return l.client, nil
}

// PlaceCall places the call with the current key. An unreadable secret is
// a transient failure (nothing was dialled; the row is retried); an empty
// api_key a permanent voice_not_configured, as without a provider.
func (l *LazyRetell) PlaceCall(ctx context.Context, c dispatch.Call) (string, error) {
	client, err := l.current(ctx)
	switch {
	case errors.Is(err, errNoVoiceKey):
		return "", comms.Permanent("voice_not_configured", "no voice provider is configured for this deployment (%v)", err)
	case err != nil:
		return "", comms.Transient(CodeVoiceSecretUnavailable, "the voice provider's key could not be read: %v", err)
	}
	return client.PlaceCall(ctx, c)
}

// LookupCall asks the provider about a call with the current key; an
// unreadable or empty key is an error (the sweeper asks again later).
func (l *LazyRetell) LookupCall(ctx context.Context, callID string) (dispatch.CallRecord, error) {
	client, err := l.current(ctx)
	if err != nil {
		return dispatch.CallRecord{}, fmt.Errorf("retell.LookupCall: %w", err)
	}
	return client.LookupCall(ctx, callID)
}
