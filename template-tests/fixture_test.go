// Package templatetests asserts the CloudFormation template that package
// infra synthesizes: resource counts and properties, the environment
// contract between infra and the functions, IAM least privilege (with
// every wildcard exception listed in one place), and cdk-nag AwsSolutions
// with zero errors. The stacks are synthesized once per test binary (jsii
// starts a Node.js process; a synth takes seconds) and shared by the tests.
package templatetests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"
	"github.com/aws/jsii-runtime-go"

	"github.com/dispatcherhq/dispatcher/infra"
	"github.com/dispatcherhq/dispatcher/internal/ratelimit"
)

// The stage names of the two synthesized stacks.
const (
	devStage  = "test"
	prodStage = infra.ProdStage
)

// The props of the two stacks (AssetRoot is filled in by TestMain).
var (
	devProps = infra.DispatcherStackProps{
		Stage:        devStage,
		SenderDomain: "example.com",
		AlarmEmail:   "ops@example.com",
	}
	prodProps = infra.DispatcherStackProps{
		Stage:                  prodStage,
		SenderDomain:           "mail.example.org",
		DefaultFromEmail:       "team@mail.example.org",
		AlarmEmail:             "oncall@example.org",
		SESConfigurationSet:    "existing-set",
		VoiceProviderURL:       "https://voice.example.net/v2",
		DispatchMaxConcurrency: 25,
		LogLevel:               "warn",
		PermanentFailureRatio:  0.1,
		TrackOpensAndClicks:    true,
		WebhookMaxConcurrency:  15,
		RetentionDays:          400,
		ReservedConcurrency:    map[string]int{"api": 100, "dispatch": 40, "sweeper": 1},
		DomainName:             "api.example.org",
		CertificateArn:         "arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
		APIThrottleRate:        200,
		APIThrottleBurst:       400,
		CompanyRateLimit:       40,
		CompanyRateBurst:       80,
		CompanyRateLimits:      map[string]ratelimit.Limit{"tiny": {Rate: 0.5, Burst: 2}, "big-co": {Rate: 150, Burst: 300}},
	}
)

// fixture is one synthesized stack.
type fixture struct {
	stack    *infra.DispatcherStack
	template assertions.Template
	// tpl is the template decoded into Go values, for assertions that
	// walk it.
	tpl template
	// nagErrors and nagWarnings are the cdk-nag AwsSolutions findings.
	nagErrors, nagWarnings []string
	// errors and warnings are every error and warning annotation (cdk-nag,
	// the CDK itself, its CloudFormation validation of deprecated runtimes).
	errors, warnings []string
}

var (
	assetRoot string
	once      sync.Once
	dev, prod *fixture
	setupErr  error
)

func TestMain(m *testing.M) {
	// jsii prints a banner about the Node.js version on start; silence it
	// from outside (JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20): the
	// jsii client takes its environment when the packages initialize,
	// before TestMain runs.
	dir, err := os.MkdirTemp("", "dispatcher-assets-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	assetRoot = dir
	code := m.Run()
	os.RemoveAll(dir)
	jsii.Close()
	os.Exit(code)
}

// writeDummyAssets writes a stand-in bootstrap for every function: the
// tests never need the real binaries.
func writeDummyAssets(root string) error {
	for _, fn := range infra.FunctionNames {
		if err := os.MkdirAll(filepath.Join(root, fn), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(root, fn, "bootstrap"), []byte("#!/bin/sh\n# dummy "+fn+"\n"), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// stacks synthesizes both stacks, once, in one app with cdk-nag.
func stacks(t *testing.T) (*fixture, *fixture) {
	t.Helper()
	once.Do(func() { setupErr = synth() })
	if setupErr != nil {
		t.Fatalf("synthesizing the stacks: %v", setupErr)
	}
	return dev, prod
}

func synth() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	if err := writeDummyAssets(assetRoot); err != nil {
		return err
	}
	flags, err := featureFlags(filepath.Join("..", "cdk.json"))
	if err != nil {
		return err
	}
	build := func(app awscdk.App, props infra.DispatcherStackProps) (*infra.DispatcherStack, error) {
		props.AssetRoot = assetRoot
		return infra.NewDispatcherStack(app, "Dispatcher-"+props.Stage, &props)
	}
	// The templates under test come from an app with exactly cdk.json's
	// feature flags and no cdk-nag, so that a nag finding (which fails the
	// synthesis) does not hide what the other tests would say.
	app := awscdk.NewApp(&awscdk.AppProps{Context: &flags})
	dev, prod = &fixture{}, &fixture{}
	for _, c := range []struct {
		f     *fixture
		props infra.DispatcherStackProps
	}{{dev, devProps}, {prod, prodProps}} {
		if c.f.stack, err = build(app, c.props); err != nil {
			return err
		}
	}
	for _, f := range []*fixture{dev, prod} {
		f.template = assertions.Template_FromStack(f.stack.Stack, nil)
		b, err := json.Marshal(f.template.ToJSON())
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &f.tpl); err != nil {
			return err
		}
	}
	return nagFindings(flags, build)
}

// nagFindings synthesizes the same stacks in a second app with cdk-nag and
// records every error and warning annotation. That app reports annotations
// as annotations (not as a failed validation report, which throws on the
// first error), so each finding is listed.
func nagFindings(flags map[string]any, build func(awscdk.App, infra.DispatcherStackProps) (*infra.DispatcherStack, error)) error {
	ctx := map[string]any{}
	for k, v := range flags {
		ctx[k] = v
	}
	ctx["@aws-cdk/core:annotationsInValidationReport"] = false
	app := awscdk.NewApp(&awscdk.AppProps{Context: &ctx})
	stacks := map[*fixture]*infra.DispatcherStack{}
	for f, props := range map[*fixture]infra.DispatcherStackProps{dev: devProps, prod: prodProps} {
		s, err := build(app, props)
		if err != nil {
			return err
		}
		stacks[f] = s
	}
	infra.AddNagChecks(app)
	for f, s := range stacks {
		ann := assertions.Annotations_FromStack(s.Stack)
		nag := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-"))
		f.nagErrors = messages(ann.FindError(jsii.String("*"), nag))
		f.nagWarnings = messages(ann.FindWarning(jsii.String("*"), nag))
		f.errors = messages(ann.FindError(jsii.String("*"), assertions.Match_AnyValue()))
		f.warnings = messages(ann.FindWarning(jsii.String("*"), assertions.Match_AnyValue()))
	}
	return nil
}

// featureFlags reads the CDK feature flags ("@aws-cdk/…" context keys) of
// cdk.json, so the tests synthesize what `cdk synth` does.
func featureFlags(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cdk struct {
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(b, &cdk); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	flags := map[string]any{}
	for k, v := range cdk.Context {
		if strings.HasPrefix(k, "@") {
			flags[k] = v
		}
	}
	if len(flags) == 0 {
		return nil, fmt.Errorf("%s: no feature flags in its context", path)
	}
	return flags, nil
}

func messages(ms *[]*cxapi.SynthesisMessage) []string {
	var out []string
	for _, m := range *ms {
		out = append(out, fmt.Sprintf("%s: %v", *m.Id, m.Entry.Data))
	}
	return out
}

// must runs an assertions call, turning the JavaScript exception jsii
// raises as a panic into a test failure.
func must(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		if r := recover(); r != nil {
			t.Errorf("%s: %v", what, r)
		}
	}()
	f()
}

// template is the decoded CloudFormation template.
type template struct {
	Resources map[string]resource `json:"Resources"`
	Outputs   map[string]struct {
		Value any `json:"Value"`
	} `json:"Outputs"`
}

type resource struct {
	Type                string         `json:"Type"`
	Properties          map[string]any `json:"Properties"`
	Metadata            map[string]any `json:"Metadata"`
	DeletionPolicy      string         `json:"DeletionPolicy"`
	UpdateReplacePolicy string         `json:"UpdateReplacePolicy"`
	DependsOn           any            `json:"DependsOn"`
}

// ofType returns the logical ids of the resources of a type, sorted.
func (tp template) ofType(typ string) []string {
	var ids []string
	for id, r := range tp.Resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// only returns the logical id of the one resource of typ matching pred.
func (tp template) only(t *testing.T, typ string, pred func(id string, r resource) bool) string {
	t.Helper()
	var found []string
	for _, id := range tp.ofType(typ) {
		if pred == nil || pred(id, tp.Resources[id]) {
			found = append(found, id)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s matching, found %v", typ, found)
	}
	return found[0]
}

// prop walks a resource's properties by path.
func (r resource) prop(path ...string) any {
	var v any = r.Properties
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func ref(id string) map[string]any { return map[string]any{"Ref": id} }

func getAtt(id, attr string) map[string]any {
	return map[string]any{"Fn::GetAtt": []any{id, attr}}
}

// render turns an intrinsic into a readable string: {"Ref": "X"} → ${X},
// GetAtt → ${X.Arn}, Fn::Join concatenated. It lets tests compare ARNs
// built with Fn::Join and find wildcards inside them.
func render(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		if r, ok := x["Ref"].(string); ok {
			return "${" + r + "}"
		}
		if ga, ok := x["Fn::GetAtt"].([]any); ok && len(ga) == 2 {
			return fmt.Sprintf("${%v.%v}", ga[0], ga[1])
		}
		if j, ok := x["Fn::Join"].([]any); ok && len(j) == 2 {
			sep, _ := j[0].(string)
			parts, _ := j[1].([]any)
			ss := make([]string, len(parts))
			for i, p := range parts {
				ss[i] = render(p)
			}
			return strings.Join(ss, sep)
		}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// list normalizes a string-or-list IAM field.
func list(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

func strs(v any) []string {
	var out []string
	for _, x := range list(v) {
		out = append(out, render(x))
	}
	sort.Strings(out)
	return out
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func pretty(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
