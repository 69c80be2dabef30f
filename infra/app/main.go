// Command app is the CDK app: `npx cdk synth` / `npx cdk deploy` run it
// (see cdk.json). Every stack prop comes from CDK context (`-c key=value`,
// or the "context" of cdk.json), documented in docs/deploy.md.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/dispatcherhq/dispatcher/infra"
	"github.com/dispatcherhq/dispatcher/internal/ratelimit"
)

func main() {
	err := realMain()
	jsii.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "infra/app:", err)
		os.Exit(1)
	}
}

func realMain() error {
	app := awscdk.NewApp(nil)
	ctx := func(key string) string {
		v := app.Node().TryGetContext(jsii.String(key))
		if v == nil {
			return ""
		}
		return strings.TrimSpace(fmt.Sprint(v))
	}
	stage := ctx("stage")
	if stage == "" {
		stage = "dev"
	}
	for _, key := range zeroMeansDefault {
		if err := notZero(key, ctx(key)); err != nil {
			return err
		}
	}
	maxConc := 0
	if v := ctx("dispatchMaxConcurrency"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("context dispatchMaxConcurrency %q: %w", v, err)
		}
		maxConc = n
	}
	var failureRatio float64
	if v := ctx("permanentFailureRatio"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("context permanentFailureRatio %q: %w", v, err)
		}
		failureRatio = r
	}
	sesAccountSuppression := false
	if v := ctx("sesAccountSuppression"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("context sesAccountSuppression %q: want true or false", v)
		}
		sesAccountSuppression = b
	}
	trackOpensAndClicks := false
	if v := ctx("trackOpensAndClicks"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("context trackOpensAndClicks %q: want true or false", v)
		}
		trackOpensAndClicks = b
	}
	webhookConc := 0
	if v := ctx("webhookMaxConcurrency"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("context webhookMaxConcurrency %q: %w", v, err)
		}
		webhookConc = n
	}
	retentionDays := 0
	if v := ctx("retentionDays"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("context retentionDays %q: %w", v, err)
		}
		retentionDays = n
	}
	var limits [4]float64 // apiThrottleRate, apiThrottleBurst, companyRateLimit, companyRateBurst
	for i, key := range []string{"apiThrottleRate", "apiThrottleBurst", "companyRateLimit", "companyRateBurst"} {
		if v := ctx(key); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || (i%2 == 1 && f != float64(int(f))) {
				return fmt.Errorf("context %s %q: want a number (a burst: a whole number)", key, v)
			}
			limits[i] = f
		}
	}
	// companyRateLimits: company_id=rate/burst,… (each company's own limit).
	overrides, err := ratelimit.ParsePolicy("companyRateLimit", "1", "companyRateBurst", "1", "context companyRateLimits", ctx("companyRateLimits"))
	if err != nil {
		return err
	}
	listingIndexAll := false
	if v := ctx("listingIndexAll"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("context listingIndexAll %q: want true or false", v)
		}
		listingIndexAll = b
	}
	reserved, err := parseReserved(ctx("reservedConcurrency"))
	if err != nil {
		return err
	}
	if ctx("nag") != "" {
		return fmt.Errorf("context nag is no longer read: cdk-nag runs on every synth; suppress a finding in infra/nag.go, with its reason")
	}
	var env *awscdk.Environment
	if acct, region := os.Getenv("CDK_DEFAULT_ACCOUNT"), os.Getenv("CDK_DEFAULT_REGION"); acct != "" && region != "" {
		env = &awscdk.Environment{Account: jsii.String(acct), Region: jsii.String(region)}
	}
	if _, err := infra.NewDispatcherStack(app, "Dispatcher-"+stage, &infra.DispatcherStackProps{
		StackProps:             awscdk.StackProps{Env: env},
		Stage:                  stage,
		AlarmEmail:             ctx("alarmEmail"),
		SenderDomain:           ctx("senderDomain"),
		DefaultFromEmail:       ctx("defaultFromEmail"),
		SESConfigurationSet:    ctx("sesConfigurationSet"),
		VoiceProviderURL:       ctx("voiceProviderUrl"),
		AssetRoot:              ctx("assetRoot"),
		DispatchMaxConcurrency: maxConc,
		LogLevel:               ctx("logLevel"),
		PermanentFailureRatio:  failureRatio,
		TrackOpensAndClicks:    trackOpensAndClicks,
		SESAccountSuppression:  sesAccountSuppression,
		WebhookMaxConcurrency:  webhookConc,
		ReservedConcurrency:    reserved,
		DomainName:             ctx("domainName"),
		CertificateArn:         ctx("certificateArn"),
		RetentionDays:          retentionDays,
		APIThrottleRate:        limits[0],
		APIThrottleBurst:       limits[1],
		CompanyRateLimit:       limits[2],
		CompanyRateBurst:       int(limits[3]),
		CompanyRateLimits:      overrides.Companies,
		ListingIndexAll:        listingIndexAll,
	}); err != nil {
		return err
	}
	// Always: a deployment never skips cdk-nag.
	infra.AddNagChecks(app)
	app.Synth(nil)
	return nil
}

// zeroMeansDefault lists the numeric context keys whose stack prop takes 0
// as "not set" and uses its default instead (infra.DispatcherStackProps).
var zeroMeansDefault = []string{"dispatchMaxConcurrency", "webhookMaxConcurrency", "retentionDays", "permanentFailureRatio",
	"apiThrottleRate", "apiThrottleBurst", "companyRateLimit", "companyRateBurst"}

// notZero refuses a context value of 0 for key: the prop would take it for
// "not set" and deploy the default (e.g. -c companyRateLimit=0 would limit
// each company to 25 requests/s, not turn the limit off), so it is an error
// rather than a silent surprise. Anything else, "" included, is left to the
// parsing and validation that follow.
func notZero(key, v string) error {
	if f, err := strconv.ParseFloat(v, 64); err == nil && f == 0 {
		return fmt.Errorf("context %s %q: 0 is not a value for it (the stack would use its default instead); leave the key out for the default, or see docs/deploy.md for its range", key, v)
	}
	return nil
}

// parseReserved reads the reservedConcurrency context: comma-separated
// function=count pairs, e.g. "dispatch=50,api=100". Empty: none.
func parseReserved(v string) (map[string]int, error) {
	if v == "" {
		return nil, nil
	}
	out := map[string]int{}
	for _, pair := range strings.Split(v, ",") {
		fn, n, ok := strings.Cut(strings.TrimSpace(pair), "=")
		count, err := strconv.Atoi(strings.TrimSpace(n))
		if !ok || err != nil {
			return nil, fmt.Errorf("context reservedConcurrency %q: want function=count pairs separated by commas, e.g. dispatch=50,api=100", v)
		}
		out[strings.TrimSpace(fn)] = count
	}
	return out, nil
}
