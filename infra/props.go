package infra

import (
	"errors"
	"fmt"
	"maps"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"

	"github.com/dispatcherhq/dispatcher/internal/config"
	"github.com/dispatcherhq/dispatcher/internal/emf"
	"github.com/dispatcherhq/dispatcher/internal/ratelimit"
)

// The five Lambda functions: each name is the construct id suffix, the
// directory under the asset root that holds its `bootstrap`, and the suffix
// of its physical function name.
const (
	FnAPI      = "api"
	FnDispatch = "dispatch"
	FnSweeper  = "sweeper"
	// FnEvents records delivery feedback: SES events from the events queue
	// and SNS SMS delivery-status logs from CloudWatch Logs.
	FnEvents = "events"
	// FnWebhooks delivers status webhooks: the table's stream arms each
	// company's fan-out, the webhook queue brings fan-outs and attempts.
	FnWebhooks = "webhooks"
)

// FunctionNames lists the functions in a fixed order.
var FunctionNames = []string{FnAPI, FnDispatch, FnSweeper, FnEvents, FnWebhooks}

// ProdStage is the stage name that turns on deletion protection and
// RETAIN removal policies for stateful resources.
const ProdStage = "prod"

// Defaults of the optional stack props.
const (
	DefaultAssetRoot              = "build"
	DefaultVoiceProviderURL       = "https://api.retellai.com"
	DefaultLogLevel               = "info"
	DefaultDispatchMaxConcurrency = 10
	// DefaultWebhookMaxConcurrency bounds the invocations on the webhook
	// queue: receivers that answer slowly hold at most this many.
	DefaultWebhookMaxConcurrency = 20
	DefaultAPIThrottleRate       = 50
	DefaultAPIThrottleBurst      = 100
	// DefaultCompanyRateLimit and DefaultCompanyRateBurst are each
	// company's request limit: half the stage's, so that one tenant cannot
	// take the whole stage (two at full speed still fit).
	DefaultCompanyRateLimit = 25
	DefaultCompanyRateBurst = 50
	// DefaultPermanentFailureRatio is the default threshold of the
	// per-channel permanent-failure alarms: more than 5 % of a channel's
	// delivery attempts in 15 minutes failing for good (bounces, refused
	// numbers) is past the background of bad addresses, and well before
	// SES's own bounce-rate review (10 %).
	DefaultPermanentFailureRatio = 0.05
)

var (
	stageRe  = regexp.MustCompile(`^[a-z][a-z0-9-]{0,15}$`)
	domainRe = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$`)
	// An ACM certificate's ARN.
	certificateArnRe = regexp.MustCompile(`^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[A-Za-z0-9-]+$`)
	// Company ids a rate-limit override may name (the overrides' text
	// separates with '=', '/' and ',').
	companyIDRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)
	// SES configuration set names: letters, digits, '_' and '-', up to 64.
	configSetRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// DispatcherStackProps configures one deployment (one stage) of the service.
type DispatcherStackProps struct {
	awscdk.StackProps

	// Stage names the deployment: 1–16 lowercase letters, digits or
	// hyphens, starting with a letter. It prefixes the physical names
	// (function names, schedule group). Stage "prod" turns on table
	// deletion protection and RETAIN removal policies. Required.
	Stage string
	// AlarmEmail receives the alarm topic's notifications (an e-mail
	// subscription AWS asks to confirm). Empty: the topic has no
	// subscription. Required when Stage is "prod".
	AlarmEmail string
	// SenderDomain is the deployment's own SES domain identity (verify it
	// in SES before sending): mail naming no From address is sent from it,
	// and no company may declare it as a sending domain. Companies send
	// from the verified identities they declare, so the senders may send
	// as any identity of the account. Required.
	SenderDomain string
	// DefaultFromEmail is the From address when neither the row nor the
	// company settings name one; it must belong to SenderDomain.
	// Default: "no-reply@" + SenderDomain.
	DefaultFromEmail string
	// SESConfigurationSet names an existing SES configuration set that
	// every message is sent through. Empty: the stack creates one
	// (reputation metrics on; the account suppression list as
	// SESAccountSuppression says).
	SESConfigurationSet string
	// VoiceProviderURL is the base URL (https) of the voice-AI provider's
	// API. Default: DefaultVoiceProviderURL.
	VoiceProviderURL string
	// AssetRoot is the directory holding <fn>/bootstrap for every function
	// (built by `make synth`). Default: DefaultAssetRoot ("build").
	AssetRoot string
	// DispatchMaxConcurrency caps how many dispatch invocations the SQS
	// event source runs at once (2–1000): the knob that keeps sends under
	// the SES and SNS rate limits. Default: DefaultDispatchMaxConcurrency.
	DispatchMaxConcurrency int
	// WebhookMaxConcurrency caps how many webhooks invocations the webhook
	// queue's event source runs at once (2–1000). Default:
	// DefaultWebhookMaxConcurrency.
	WebhookMaxConcurrency int
	// ReservedConcurrency reserves concurrent executions of the account
	// for functions, by name (FnAPI, FnDispatch, FnSweeper, FnEvents,
	// FnWebhooks): each number is both a guarantee and that function's
	// maximum, so a burst of due sends (or of API calls) cannot take the
	// whole account's concurrency, nor be starved by another workload. A
	// function not named reserves nothing (the account's unreserved pool).
	// Each value ≥ 1; dispatch's at least DispatchMaxConcurrency and
	// webhooks' at least WebhookMaxConcurrency (their queues' pollers
	// would otherwise be throttled). AWS refuses a reservation that leaves
	// the account fewer than 100 unreserved executions: new accounts with
	// a concurrency quota of 10 cannot reserve any. Default: none.
	ReservedConcurrency map[string]int
	// DomainName and CertificateArn, both or neither, serve the HTTP API on
	// a custom domain: an API Gateway regional domain name with the ACM
	// certificate (in the stack's region, covering DomainName), TLS 1.2,
	// mapped to the API's $default stage; the default execute-api endpoint
	// is then disabled, so the domain is the only way in. Point a DNS
	// record (CNAME, or a Route 53 alias) at the output ApiDomainTarget.
	// Default: none (the execute-api endpoint).
	DomainName     string
	CertificateArn string
	// LogLevel is the functions' application log level (debug, info, warn,
	// error). Default: DefaultLogLevel.
	LogLevel string
	// LogRetention is how long the functions' and the API's logs are kept.
	// Default: one month, one year on stage "prod".
	LogRetention awslogs.RetentionDays
	// APIThrottleRate and APIThrottleBurst are the HTTP API stage's default
	// route throttling (requests per second, burst). Defaults:
	// DefaultAPIThrottleRate and DefaultAPIThrottleBurst.
	APIThrottleRate  float64
	APIThrottleBurst float64
	// CompanyRateLimit and CompanyRateBurst are each company's API request
	// limit, a token bucket in the table shared by every api instance
	// (internal/ratelimit): requests per second and burst. A company over
	// it is answered 429 rate_limited. Neither may exceed the stage's
	// (APIThrottleRate, APIThrottleBurst), which would make it unreachable.
	// Defaults: DefaultCompanyRateLimit and DefaultCompanyRateBurst.
	CompanyRateLimit float64
	CompanyRateBurst int
	// CompanyRateLimits gives some companies, by id, a limit of their own
	// (the same bounds). Default: none.
	CompanyRateLimits map[string]ratelimit.Limit
	// PermanentFailureRatio is the threshold of each channel's alarm on
	// the ratio of permanently failed delivery attempts to all its
	// attempts, over 15 minutes (from the metrics the functions log; see
	// internal/emf): the alarm fires when the ratio is above it. Must be
	// in (0, 1]. Default: DefaultPermanentFailureRatio (0.05).
	PermanentFailureRatio float64
	// TrackOpensAndClicks makes the SES configuration set also publish
	// OPEN and CLICK events to the events function (SES then rewrites
	// links and adds a tracking pixel to every message). Default false:
	// only the delivery outcome events (send, delivery, bounce, complaint,
	// reject, delivery delay, rendering failure).
	TrackOpensAndClicks bool
	// SESAccountSuppression keeps SES's account-level suppression list on
	// the stack's configuration set (bounces and complaints). Default false:
	// the set disables it, so a suppression is per company (Dispatcher's
	// own lists, docs/design.md §8.4) — with the account list on, one
	// company's complaint makes SES drop every other company's mail to that
	// address, and no company can lift it. Ignored with SESConfigurationSet.
	SESAccountSuppression bool
	// RetentionDays is how many days a finished communication (sent,
	// failed or cancelled), with its events, is kept after its last write
	// before DynamoDB TTL deletes it (see internal/store/dynamo,
	// retention.go); the functions get it as config.EnvRetentionDays.
	// From config.MinRetentionDays to config.MaxRetentionDays. Default:
	// config.DefaultRetentionDays (90).
	RetentionDays int
	// ListingIndexAll keeps the by_company index projecting ALL, as stacks
	// deployed before issue 14 have it: CloudFormation cannot change an
	// existing index's projection, so such a stack sets this (context
	// listingIndexAll=true) until it is migrated (docs/design.md §14.9).
	// The code works with either projection (listings read the rows by key
	// from the table); ALL only costs one more index write of the row
	// (about 1 KB: payloads over 1 KiB are in their own item) per
	// transition. Default false: the projection of dynamo.TableInput.
	ListingIndexAll bool
}

// IsProd reports whether the props describe the production stage.
func (p *DispatcherStackProps) IsProd() bool { return p.Stage == ProdStage }

// Resolved returns a copy of the props with every default applied, or an
// error naming every invalid prop.
func (p *DispatcherStackProps) Resolved() (DispatcherStackProps, error) {
	if p == nil {
		return DispatcherStackProps{}, errors.New("infra: DispatcherStackProps are required")
	}
	r := *p
	if r.AssetRoot == "" {
		r.AssetRoot = DefaultAssetRoot
	}
	if r.VoiceProviderURL == "" {
		r.VoiceProviderURL = DefaultVoiceProviderURL
	}
	if r.LogLevel == "" {
		r.LogLevel = DefaultLogLevel
	}
	r.LogLevel = strings.ToLower(r.LogLevel)
	if r.DispatchMaxConcurrency == 0 {
		r.DispatchMaxConcurrency = DefaultDispatchMaxConcurrency
	}
	if r.WebhookMaxConcurrency == 0 {
		r.WebhookMaxConcurrency = DefaultWebhookMaxConcurrency
	}
	if r.APIThrottleRate == 0 {
		r.APIThrottleRate = DefaultAPIThrottleRate
	}
	if r.APIThrottleBurst == 0 {
		r.APIThrottleBurst = DefaultAPIThrottleBurst
	}
	if r.CompanyRateLimit == 0 {
		r.CompanyRateLimit = DefaultCompanyRateLimit
	}
	if r.CompanyRateBurst == 0 {
		r.CompanyRateBurst = DefaultCompanyRateBurst
	}
	if r.PermanentFailureRatio == 0 {
		r.PermanentFailureRatio = DefaultPermanentFailureRatio
	}
	if r.RetentionDays == 0 {
		r.RetentionDays = config.DefaultRetentionDays
	}
	if r.LogRetention == "" {
		r.LogRetention = awslogs.RetentionDays_ONE_MONTH
		if r.IsProd() {
			r.LogRetention = awslogs.RetentionDays_ONE_YEAR
		}
	}
	r.SenderDomain = strings.ToLower(strings.TrimSpace(r.SenderDomain))
	if r.DefaultFromEmail == "" && r.SenderDomain != "" {
		r.DefaultFromEmail = "no-reply@" + r.SenderDomain
	}

	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !stageRe.MatchString(r.Stage) {
		bad("Stage %q: want 1-16 lowercase letters, digits or hyphens, starting with a letter", r.Stage)
	}
	if r.SenderDomain == "" {
		bad("SenderDomain is required (the SES domain identity mail is sent from)")
	} else if !domainRe.MatchString(r.SenderDomain) {
		bad("SenderDomain %q is not a domain name", r.SenderDomain)
	}
	if a, err := mail.ParseAddress(r.DefaultFromEmail); err != nil || a.Address != r.DefaultFromEmail {
		bad("DefaultFromEmail %q is not a bare e-mail address", r.DefaultFromEmail)
	} else if r.SenderDomain != "" && !strings.HasSuffix(strings.ToLower(r.DefaultFromEmail), "@"+r.SenderDomain) {
		bad("DefaultFromEmail %q is not in SenderDomain %q", r.DefaultFromEmail, r.SenderDomain)
	}
	if r.AlarmEmail != "" {
		if a, err := mail.ParseAddress(r.AlarmEmail); err != nil || a.Address != r.AlarmEmail {
			bad("AlarmEmail %q is not a bare e-mail address", r.AlarmEmail)
		}
	} else if r.IsProd() {
		bad("AlarmEmail is required on stage %q", ProdStage)
	}
	if r.SESConfigurationSet != "" && !configSetRe.MatchString(r.SESConfigurationSet) {
		bad("SESConfigurationSet %q: want 1-64 letters, digits, '_' or '-'", r.SESConfigurationSet)
	}
	if u, err := url.Parse(r.VoiceProviderURL); err != nil || u.Scheme != "https" || u.Host == "" {
		bad("VoiceProviderURL %q: want an https URL", r.VoiceProviderURL)
	}
	if r.DispatchMaxConcurrency < 2 || r.DispatchMaxConcurrency > 1000 {
		bad("DispatchMaxConcurrency %d: want 2-1000 (the SQS event source's limits)", r.DispatchMaxConcurrency)
	}
	if r.WebhookMaxConcurrency < 2 || r.WebhookMaxConcurrency > 1000 {
		bad("WebhookMaxConcurrency %d: want 2-1000 (the SQS event source's limits)", r.WebhookMaxConcurrency)
	}
	r.ReservedConcurrency = maps.Clone(r.ReservedConcurrency)
	for _, fn := range slices.Sorted(maps.Keys(r.ReservedConcurrency)) {
		n := r.ReservedConcurrency[fn]
		switch {
		case !slices.Contains(FunctionNames, fn):
			bad("ReservedConcurrency: %q is not a function (want one of %s)", fn, strings.Join(FunctionNames, ", "))
		case n < 1:
			bad("ReservedConcurrency[%s] %d: want at least 1 (leave the function out to reserve nothing)", fn, n)
		case fn == FnDispatch && n < r.DispatchMaxConcurrency:
			bad("ReservedConcurrency[%s] %d: want at least DispatchMaxConcurrency (%d)", fn, n, r.DispatchMaxConcurrency)
		case fn == FnWebhooks && n < r.WebhookMaxConcurrency:
			bad("ReservedConcurrency[%s] %d: want at least WebhookMaxConcurrency (%d)", fn, n, r.WebhookMaxConcurrency)
		}
	}
	r.DomainName = strings.ToLower(strings.TrimSpace(r.DomainName))
	r.CertificateArn = strings.TrimSpace(r.CertificateArn)
	switch {
	case r.DomainName == "" && r.CertificateArn == "":
	case r.DomainName == "" || r.CertificateArn == "":
		bad("DomainName %q and CertificateArn %q: give both or neither", r.DomainName, r.CertificateArn)
	default:
		if !domainRe.MatchString(r.DomainName) {
			bad("DomainName %q is not a domain name", r.DomainName)
		}
		if !certificateArnRe.MatchString(r.CertificateArn) {
			bad("CertificateArn %q: want arn:<partition>:acm:<region>:<account>:certificate/<id>", r.CertificateArn)
		}
	}
	switch r.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("LogLevel %q: want debug, info, warn or error", r.LogLevel)
	}
	if r.APIThrottleRate < 1 || r.APIThrottleBurst < 1 {
		bad("APIThrottleRate %v and APIThrottleBurst %v must be positive", r.APIThrottleRate, r.APIThrottleBurst)
	}
	r.CompanyRateLimits = maps.Clone(r.CompanyRateLimits)
	companyLimit := func(name string, l ratelimit.Limit) {
		if err := l.Valid(); err != nil {
			bad("%s: %v", name, err)
		} else if l.Rate > r.APIThrottleRate || float64(l.Burst) > r.APIThrottleBurst {
			bad("%s %g/s burst %d: above the stage's APIThrottleRate %g / APIThrottleBurst %g, it could never be reached", name, l.Rate, l.Burst, r.APIThrottleRate, r.APIThrottleBurst)
		}
	}
	companyLimit("CompanyRateLimit/CompanyRateBurst", ratelimit.Limit{Rate: r.CompanyRateLimit, Burst: r.CompanyRateBurst})
	for _, id := range slices.Sorted(maps.Keys(r.CompanyRateLimits)) {
		if !companyIDRe.MatchString(id) {
			bad("CompanyRateLimits: %q is not a company id (want letters, digits, '_', '-' or '.')", id)
			continue
		}
		companyLimit("CompanyRateLimits["+id+"]", r.CompanyRateLimits[id])
	}
	if r.RetentionDays < config.MinRetentionDays || r.RetentionDays > config.MaxRetentionDays {
		bad("RetentionDays %d: want %d to %d days", r.RetentionDays, config.MinRetentionDays, config.MaxRetentionDays)
	}
	if !validRatio(r.PermanentFailureRatio) {
		bad("PermanentFailureRatio %v: want a ratio in (0, 1]", r.PermanentFailureRatio)
	}
	for _, fn := range FunctionNames {
		bin := filepath.Join(r.AssetRoot, fn, "bootstrap")
		if st, err := os.Stat(bin); err != nil || !st.Mode().IsRegular() {
			bad("function %s: no file %s (build the functions first: make synth)", fn, bin)
		}
	}
	if len(errs) > 0 {
		return DispatcherStackProps{}, fmt.Errorf("infra: invalid DispatcherStackProps: %w", errors.Join(errs...))
	}
	return r, nil
}

// ResourcePrefix is the prefix of the stack's physical names.
func (p *DispatcherStackProps) ResourcePrefix() string { return "dispatcher-" + p.Stage }

// MetricsNamespace is the CloudWatch namespace of the metrics the stage's
// functions log: "Dispatcher/<stage>", so two stages in one account never
// count each other's deliveries.
func (p *DispatcherStackProps) MetricsNamespace() string { return emf.DefaultNamespace + "/" + p.Stage }

// validRatio reports whether r is in (0, 1] (NaN is not).
func validRatio(r float64) bool { return r > 0 && r <= 1 }
