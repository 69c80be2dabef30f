// Package config names every environment variable the Lambda functions and
// `dispatcher serve --backend aws` read, and parses them once into a typed
// struct. The CDK stack (package infra) sets the same constants, and the
// template tests assert them, so the two cannot drift.
package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/ratelimit"
)

// Environment variable names: the contract between infra and the functions.
const (
	EnvTableName          = "DISPATCHER_TABLE_NAME"
	EnvQueueURL           = "DISPATCHER_QUEUE_URL"
	EnvScheduleGroup      = "DISPATCHER_SCHEDULE_GROUP"
	EnvSchedulerRoleARN   = "DISPATCHER_SCHEDULER_ROLE_ARN"
	EnvDispatchTargetARN  = "DISPATCHER_DISPATCH_FUNCTION_ARN"
	EnvSchedulerDLQARN    = "DISPATCHER_SCHEDULER_DLQ_ARN"
	EnvSESConfigSet       = "DISPATCHER_SES_CONFIGURATION_SET"
	EnvDefaultFromEmail   = "DISPATCHER_DEFAULT_FROM_EMAIL"
	EnvVoiceProviderURL   = "DISPATCHER_VOICE_PROVIDER_URL"
	EnvVoiceSecretARN     = "DISPATCHER_VOICE_SECRET_ARN"
	EnvLogLevel           = "DISPATCHER_LOG_LEVEL"
	EnvSchedulerLeadAhead = "DISPATCHER_SCHEDULER_LEAD"
	// EnvMetricsNamespace is the CloudWatch namespace of the metrics the
	// functions log (internal/emf); empty means "Dispatcher". The stack
	// sets one per stage, so two stages in one account keep their alarms
	// apart.
	EnvMetricsNamespace = "DISPATCHER_METRICS_NAMESPACE"
	// EnvWebhookQueueURL is the SQS queue of status-webhook fires (a
	// delivery's next attempt, a company's fan-out), consumed by the
	// webhooks function: apart from the dispatch queue, so that slow
	// receivers never hold up the dispatch of communications.
	EnvWebhookQueueURL = "DISPATCHER_WEBHOOK_QUEUE_URL"
	// EnvRetentionDays is how many days a finished row (and its events)
	// is kept after it became terminal before DynamoDB TTL deletes it:
	// a whole number from MinRetentionDays to MaxRetentionDays; unset
	// means DefaultRetentionDays.
	EnvRetentionDays = "DISPATCHER_RETENTION_DAYS"
	// EnvCompanyRateLimit and EnvCompanyRateBurst are each company's API
	// request limit (the api function's): requests per second (a decimal)
	// and burst (whole requests), a token bucket in the table
	// (internal/ratelimit). Unset: no limit. EnvCompanyRateOverrides gives
	// some companies their own: "company_id=rate/burst,…" (empty: none).
	EnvCompanyRateLimit     = "DISPATCHER_COMPANY_RATE_LIMIT"
	EnvCompanyRateBurst     = "DISPATCHER_COMPANY_RATE_BURST"
	EnvCompanyRateOverrides = "DISPATCHER_COMPANY_RATE_OVERRIDES"
	// EnvLeaseEmail, EnvLeaseSMS and EnvLeaseVoice are the leases of a
	// claim of each channel (dispatch.Config.EmailLease…; Go durations,
	// MinLease to MaxLease); unset means the dispatcher's defaults (30 s,
	// 30 s, 2 m), the same as dispatcher serve's --lease-email,
	// --lease-sms and --lease-voice.
	EnvLeaseEmail = "DISPATCHER_LEASE_EMAIL"
	EnvLeaseSMS   = "DISPATCHER_LEASE_SMS"
	EnvLeaseVoice = "DISPATCHER_LEASE_VOICE"
	// EnvSweepGrace is how overdue a fire or an expired lease must be
	// before the sweeper repairs it (dispatch.Config.SweepGrace; a Go
	// duration, MinLease to MaxLease); unset means 1 minute, as serve's
	// --sweep-grace.
	EnvSweepGrace = "DISPATCHER_SWEEP_GRACE"
)

// Bounds of EnvLeaseEmail, EnvLeaseSMS, EnvLeaseVoice and EnvSweepGrace.
const (
	MinLease = time.Second
	MaxLease = time.Hour
)

// Bounds and default of EnvRetentionDays (the stack prop RetentionDays
// has the same).
const (
	DefaultRetentionDays = 90
	MinRetentionDays     = 1
	MaxRetentionDays     = 3650
)

// AWS is the configuration of the AWS-backed functions.
type AWS struct {
	TableName        string
	QueueURL         string
	ScheduleGroup    string
	SchedulerRoleARN string
	// DispatchTargetARN is what a schedule invokes: the dispatch function.
	DispatchTargetARN string
	SchedulerDLQARN   string
	SESConfigSet      string
	DefaultFromEmail  string
	VoiceProviderURL  string
	VoiceSecretARN    string
	LogLevel          string
	// SchedulerLead is how far ahead of a row's time its schedule fires
	// (its fire is then re-armed on SQS for the rest): default 2 minutes.
	SchedulerLead time.Duration
	// MetricsNamespace is the CloudWatch namespace of the logged metrics
	// ("" means the default of internal/emf).
	MetricsNamespace string
	// WebhookQueueURL is the queue of webhook fires ("" when the function
	// arms none).
	WebhookQueueURL string
	// Retention is how long a terminal row is kept after its last write
	// (EnvRetentionDays; default DefaultRetentionDays days).
	Retention time.Duration
	// RateLimit is each company's API request limit (EnvCompanyRateLimit,
	// EnvCompanyRateBurst, EnvCompanyRateOverrides); the zero Policy
	// limits nothing.
	RateLimit ratelimit.Policy
	// EmailLease, SMSLease, VoiceLease and SweepGrace are the dispatcher's
	// (EnvLeaseEmail…, EnvSweepGrace); zero means its default.
	EmailLease, SMSLease, VoiceLease, SweepGrace time.Duration
}

// Needs says which groups of settings a function requires.
type Needs struct {
	Table, Queue, Scheduler bool
	// WebhookQueue: the function arms webhook fires (EnvWebhookQueueURL).
	WebhookQueue bool
}

// LoadAWS reads the AWS configuration from getenv (os.Getenv), applying
// defaults and reporting every missing required variable at once.
func LoadAWS(getenv func(string) string, need Needs) (AWS, error) {
	c := AWS{
		TableName:         getenv(EnvTableName),
		QueueURL:          getenv(EnvQueueURL),
		ScheduleGroup:     getenv(EnvScheduleGroup),
		SchedulerRoleARN:  getenv(EnvSchedulerRoleARN),
		DispatchTargetARN: getenv(EnvDispatchTargetARN),
		SchedulerDLQARN:   getenv(EnvSchedulerDLQARN),
		SESConfigSet:      getenv(EnvSESConfigSet),
		DefaultFromEmail:  getenv(EnvDefaultFromEmail),
		VoiceProviderURL:  getenv(EnvVoiceProviderURL),
		VoiceSecretARN:    getenv(EnvVoiceSecretARN),
		LogLevel:          strings.ToLower(getenv(EnvLogLevel)),
		SchedulerLead:     2 * time.Minute,
		MetricsNamespace:  getenv(EnvMetricsNamespace),
		WebhookQueueURL:   getenv(EnvWebhookQueueURL),
		Retention:         DefaultRetentionDays * 24 * time.Hour,
	}
	var missing []string
	req := func(on bool, name, v string) {
		if on && v == "" {
			missing = append(missing, name)
		}
	}
	req(need.Table, EnvTableName, c.TableName)
	req(need.Queue, EnvQueueURL, c.QueueURL)
	req(need.Scheduler, EnvScheduleGroup, c.ScheduleGroup)
	req(need.Scheduler, EnvSchedulerRoleARN, c.SchedulerRoleARN)
	req(need.Scheduler, EnvDispatchTargetARN, c.DispatchTargetARN)
	req(need.Scheduler, EnvSchedulerDLQARN, c.SchedulerDLQARN)
	req(need.WebhookQueue, EnvWebhookQueueURL, c.WebhookQueueURL)
	if len(missing) > 0 {
		return AWS{}, fmt.Errorf("config.LoadAWS: missing %s", strings.Join(missing, ", "))
	}
	if v := getenv(EnvSchedulerLeadAhead); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > 10*time.Minute {
			return AWS{}, errors.New("config.LoadAWS: " + EnvSchedulerLeadAhead + " must be a duration from 0 to 10m")
		}
		c.SchedulerLead = d
	}
	if v := getenv(EnvRetentionDays); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < MinRetentionDays || n > MaxRetentionDays {
			return AWS{}, fmt.Errorf("config.LoadAWS: %s must be a whole number of days from %d to %d", EnvRetentionDays, MinRetentionDays, MaxRetentionDays)
		}
		c.Retention = time.Duration(n) * 24 * time.Hour
	}
	rl, err := ratelimit.ParsePolicy(EnvCompanyRateLimit, getenv(EnvCompanyRateLimit), EnvCompanyRateBurst, getenv(EnvCompanyRateBurst),
		EnvCompanyRateOverrides, getenv(EnvCompanyRateOverrides))
	if err != nil {
		return AWS{}, fmt.Errorf("config.LoadAWS: %w", err)
	}
	c.RateLimit = rl
	for _, d := range []struct {
		name string
		to   *time.Duration
	}{{EnvLeaseEmail, &c.EmailLease}, {EnvLeaseSMS, &c.SMSLease}, {EnvLeaseVoice, &c.VoiceLease}, {EnvSweepGrace, &c.SweepGrace}} {
		v := getenv(d.name)
		if v == "" {
			continue
		}
		n, err := time.ParseDuration(v)
		if err != nil || n < MinLease || n > MaxLease {
			return AWS{}, fmt.Errorf("config.LoadAWS: %s must be a duration from %v to %v (such as 30s), not %q", d.name, MinLease, MaxLease, v)
		}
		*d.to = n
	}
	switch c.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		return AWS{}, fmt.Errorf("config.LoadAWS: %s must be debug, info, warn or error", EnvLogLevel)
	}
	if ns := c.MetricsNamespace; len(ns) > 255 || strings.HasPrefix(ns, ":") {
		return AWS{}, fmt.Errorf("config.LoadAWS: %s must be a CloudWatch namespace (at most 255 characters, not starting with ':')", EnvMetricsNamespace)
	}
	return c, nil
}
