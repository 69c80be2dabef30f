package infra

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/ratelimit"
)

// These tests exercise prop validation only: they never start jsii.

func dummyAssets(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, fn := range FunctionNames {
		if err := os.MkdirAll(filepath.Join(root, fn), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, fn, "bootstrap"), []byte("x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestResolvedDefaults(t *testing.T) {
	t.Parallel()
	root := dummyAssets(t)
	p, err := (&DispatcherStackProps{Stage: "dev", SenderDomain: "Example.COM", AssetRoot: root}).Resolved()
	if err != nil {
		t.Fatal(err)
	}
	if p.DefaultFromEmail != "no-reply@example.com" || p.VoiceProviderURL != DefaultVoiceProviderURL ||
		p.LogLevel != "info" || p.DispatchMaxConcurrency != DefaultDispatchMaxConcurrency ||
		p.LogRetention != "ONE_MONTH" || p.APIThrottleRate != DefaultAPIThrottleRate || p.IsProd() ||
		p.PermanentFailureRatio != 0.05 || p.MetricsNamespace() != "Dispatcher/dev" || p.RetentionDays != 90 ||
		p.APIThrottleBurst != DefaultAPIThrottleBurst || p.CompanyRateLimit != DefaultCompanyRateLimit || p.CompanyRateBurst != DefaultCompanyRateBurst {
		t.Errorf("defaults: %+v", p)
	}
	prod, err := (&DispatcherStackProps{Stage: "prod", SenderDomain: "example.com", AlarmEmail: "a@example.com", AssetRoot: root}).Resolved()
	if err != nil {
		t.Fatal(err)
	}
	if !prod.IsProd() || prod.LogRetention != "ONE_YEAR" {
		t.Errorf("prod defaults: %+v", prod)
	}
}

func TestResolvedRejects(t *testing.T) {
	t.Parallel()
	root := dummyAssets(t)
	ok := DispatcherStackProps{Stage: "dev", SenderDomain: "example.com", AssetRoot: root}
	for name, c := range map[string]struct {
		mut  func(*DispatcherStackProps)
		want string
	}{
		"stage upper":        {func(p *DispatcherStackProps) { p.Stage = "Dev" }, "Stage"},
		"stage long":         {func(p *DispatcherStackProps) { p.Stage = strings.Repeat("a", 17) }, "Stage"},
		"no domain":          {func(p *DispatcherStackProps) { p.SenderDomain = "" }, "SenderDomain is required"},
		"bad domain":         {func(p *DispatcherStackProps) { p.SenderDomain = "not a domain" }, "not a domain name"},
		"from outside":       {func(p *DispatcherStackProps) { p.DefaultFromEmail = "x@other.com" }, "not in SenderDomain"},
		"from with name":     {func(p *DispatcherStackProps) { p.DefaultFromEmail = "X <x@example.com>" }, "bare e-mail"},
		"alarm email":        {func(p *DispatcherStackProps) { p.AlarmEmail = "nope" }, "AlarmEmail"},
		"prod without alarm": {func(p *DispatcherStackProps) { p.Stage = "prod" }, "AlarmEmail is required"},
		"config set":         {func(p *DispatcherStackProps) { p.SESConfigurationSet = "a b" }, "SESConfigurationSet"},
		"voice http":         {func(p *DispatcherStackProps) { p.VoiceProviderURL = "http://x.example.com" }, "https"},
		"concurrency":        {func(p *DispatcherStackProps) { p.DispatchMaxConcurrency = 1 }, "DispatchMaxConcurrency"},
		"log level":          {func(p *DispatcherStackProps) { p.LogLevel = "trace" }, "LogLevel"},
		"throttle":           {func(p *DispatcherStackProps) { p.APIThrottleBurst = -1 }, "APIThrottle"},
		"company rate":       {func(p *DispatcherStackProps) { p.CompanyRateLimit = -1 }, "CompanyRateLimit/CompanyRateBurst: rate -1"},
		"company burst":      {func(p *DispatcherStackProps) { p.CompanyRateBurst = -3 }, "CompanyRateLimit/CompanyRateBurst: burst -3"},
		"company over stage": {func(p *DispatcherStackProps) { p.CompanyRateLimit = 60 }, "above the stage's APIThrottleRate 50"},
		"override over stage": {func(p *DispatcherStackProps) {
			p.CompanyRateLimits = map[string]ratelimit.Limit{"big": {Rate: 10, Burst: 500}}
		}, "CompanyRateLimits[big] 10/s burst 500: above"},
		"override bad id": {func(p *DispatcherStackProps) {
			p.CompanyRateLimits = map[string]ratelimit.Limit{"a=b": {Rate: 1, Burst: 1}}
		}, `"a=b" is not a company id`},
		"ratio negative":      {func(p *DispatcherStackProps) { p.PermanentFailureRatio = -0.1 }, "PermanentFailureRatio"},
		"ratio above one":     {func(p *DispatcherStackProps) { p.PermanentFailureRatio = 1.01 }, "PermanentFailureRatio"},
		"ratio a percentage":  {func(p *DispatcherStackProps) { p.PermanentFailureRatio = 5 }, "PermanentFailureRatio"},
		"ratio NaN":           {func(p *DispatcherStackProps) { p.PermanentFailureRatio = math.NaN() }, "PermanentFailureRatio"},
		"assets":              {func(p *DispatcherStackProps) { p.AssetRoot = t.TempDir() }, "no file"},
		"retention negative":  {func(p *DispatcherStackProps) { p.RetentionDays = -1 }, "RetentionDays"},
		"retention too long":  {func(p *DispatcherStackProps) { p.RetentionDays = 3651 }, "RetentionDays"},
		"webhook concurrency": {func(p *DispatcherStackProps) { p.WebhookMaxConcurrency = 1001 }, "WebhookMaxConcurrency"},
		"reserved unknown fn": {func(p *DispatcherStackProps) { p.ReservedConcurrency = map[string]int{"worker": 5} }, `"worker" is not a function`},
		"reserved zero":       {func(p *DispatcherStackProps) { p.ReservedConcurrency = map[string]int{FnAPI: 0} }, "ReservedConcurrency[api] 0"},
		"reserved dispatch":   {func(p *DispatcherStackProps) { p.ReservedConcurrency = map[string]int{FnDispatch: 5} }, "at least DispatchMaxConcurrency"},
		"reserved webhooks":   {func(p *DispatcherStackProps) { p.ReservedConcurrency = map[string]int{FnWebhooks: 5} }, "at least WebhookMaxConcurrency"},
		"domain without cert": {func(p *DispatcherStackProps) { p.DomainName = "api.example.com" }, "give both or neither"},
		"cert without domain": {func(p *DispatcherStackProps) {
			p.CertificateArn = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
		}, "give both or neither"},
		"bad custom domain": {func(p *DispatcherStackProps) {
			p.DomainName, p.CertificateArn = "not a domain", "arn:aws:acm:us-east-1:123456789012:certificate/abc"
		}, "DomainName"},
		"bad certificate": {func(p *DispatcherStackProps) {
			p.DomainName, p.CertificateArn = "api.example.com", "arn:aws:iam::123456789012:server-certificate/x"
		}, "CertificateArn"},
	} {
		p := ok
		c.mut(&p)
		_, err := p.Resolved()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, c.want)
		}
	}
	var nilProps *DispatcherStackProps
	if _, err := nilProps.Resolved(); err == nil {
		t.Error("nil props accepted")
	}
	// Every problem is reported at once.
	_, err := (&DispatcherStackProps{Stage: "X", AssetRoot: t.TempDir()}).Resolved()
	if err == nil || !strings.Contains(err.Error(), "Stage") || !strings.Contains(err.Error(), "SenderDomain") || !strings.Contains(err.Error(), "bootstrap") {
		t.Errorf("err = %v, want every problem", err)
	}
}

func TestConstructPropsValidation(t *testing.T) {
	t.Parallel()
	root := dummyAssets(t)
	good := GoFunctionProps{
		FunctionName: "dispatcher-dev-api", AssetDir: filepath.Join(root, FnAPI), MemoryMB: 512,
		Timeout: 10 * time.Second, LogLevel: "info", LogRetention: "ONE_MONTH",
		Environment: map[string]*string{"DISPATCHER_TABLE_NAME": new(string)},
	}
	if err := good.validate(); err != nil {
		t.Fatalf("good props: %v", err)
	}
	for name, mut := range map[string]func(*GoFunctionProps){
		"name":      func(p *GoFunctionProps) { p.FunctionName = "a b" },
		"asset":     func(p *GoFunctionProps) { p.AssetDir = t.TempDir() },
		"memory":    func(p *GoFunctionProps) { p.MemoryMB = 64 },
		"timeout":   func(p *GoFunctionProps) { p.Timeout = 1500 * time.Millisecond },
		"long":      func(p *GoFunctionProps) { p.Timeout = 16 * time.Minute },
		"level":     func(p *GoFunctionProps) { p.LogLevel = "" },
		"retention": func(p *GoFunctionProps) { p.LogRetention = "" },
		"reserved":  func(p *GoFunctionProps) { p.Environment = map[string]*string{"AWS_REGION": new(string)} },
		"nil value": func(p *GoFunctionProps) { p.Environment = map[string]*string{"X": nil} },
	} {
		p := good
		mut(&p)
		if err := p.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Constructs validate before they touch the scope (nil here).
	if _, err := NewDispatchQueue(nil, "Q", &DispatchQueueProps{ConsumerTimeout: 0}); err == nil {
		t.Error("NewDispatchQueue: zero ConsumerTimeout accepted")
	}
	if _, err := NewDispatchQueue(nil, "Q", &DispatchQueueProps{ConsumerTimeout: time.Minute, MaxReceiveCount: 1001}); err == nil {
		t.Error("NewDispatchQueue: MaxReceiveCount 1001 accepted")
	}
	if _, err := NewScheduling(nil, "S", &SchedulingProps{GroupName: "bad name", TargetFunctionArn: new(string)}); err == nil {
		t.Error("NewScheduling: bad group name accepted")
	}
	if _, err := NewScheduling(nil, "S", &SchedulingProps{GroupName: "ok"}); err == nil {
		t.Error("NewScheduling: no target accepted")
	}
	if _, err := NewHTTPAPI(nil, "A", &HTTPAPIProps{}); err == nil {
		t.Error("NewHTTPAPI: no handler accepted")
	}
	if _, err := NewMonitoring(nil, "M", &MonitoringProps{}); err == nil {
		t.Error("NewMonitoring: empty props accepted")
	}
	if _, err := NewMinuteSchedule(nil, "M", &MinuteScheduleProps{}); err == nil {
		t.Error("NewMinuteSchedule: empty props accepted")
	}
	if _, err := NewDataTable(nil, "T", nil); err == nil {
		t.Error("NewDataTable: nil props accepted")
	}
}

func TestEnvContractCoversFunctions(t *testing.T) {
	t.Parallel()
	for _, fn := range FunctionNames {
		if len(FunctionEnv[fn]) == 0 {
			t.Errorf("%s has no environment contract", fn)
		}
		if _, ok := FunctionSizes[fn]; !ok {
			t.Errorf("%s has no size", fn)
		}
		if _, ok := functionAccess[fn]; !ok {
			t.Errorf("%s has no access", fn)
		}
	}
	if VisibilityTimeoutFactor*FunctionSizes[FnDispatch].Timeout > 12*time.Hour {
		t.Error("dispatch timeout too long for the queue's visibility timeout")
	}
}

func TestPermanentFailureRatioBounds(t *testing.T) {
	t.Parallel()
	root := dummyAssets(t)
	for _, r := range []float64{0.0001, 0.05, 0.5, 1} {
		p, err := (&DispatcherStackProps{Stage: "dev", SenderDomain: "example.com", AssetRoot: root, PermanentFailureRatio: r}).Resolved()
		if err != nil || p.PermanentFailureRatio != r {
			t.Errorf("PermanentFailureRatio %v: %v, %v", r, p.PermanentFailureRatio, err)
		}
	}
}

func TestPermanentFailureExpression(t *testing.T) {
	t.Parallel()
	const total = "(FILL(sent, 0) + FILL(transient, 0) + FILL(permanent, 0) + FILL(suppressed, 0) + FILL(other, 0))"
	if got, want := PermanentFailureExpression(), "IF("+total+" > 0, FILL(permanent, 0) / "+total+", 0)"; got != want {
		t.Errorf("PermanentFailureExpression() =\n %s\nwant\n %s", got, want)
	}
	if pascalCase("voice_call") != "VoiceCall" || pascalCase("email") != "Email" {
		t.Errorf("pascalCase: %q %q", pascalCase("voice_call"), pascalCase("email"))
	}
}
