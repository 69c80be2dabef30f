package templatetests

import (
	"strings"
	"testing"

	"github.com/aws/jsii-runtime-go"

	"github.com/dispatcherhq/dispatcher/infra"
)

// Issue 14's operations: tracing, concurrency, the API's custom domain,
// item deletion for the API only. (The per-stage sweep schedule group is
// asserted in TestScheduler and TestFunctionPolicies, the schedule
// deletion permission in TestFunctionPolicies.)

// TestTracingActive: every function traces with X-Ray (its role may write
// traces: TestFunctionPolicies).
func TestTracingActive(t *testing.T) {
	dev, prod := stacks(t)
	for name, f := range map[string]*fixture{devStage: dev, prodStage: prod} {
		for _, fn := range infra.FunctionNames {
			id := infra.FunctionLogicalID(fn)
			if got := f.tpl.Resources[id].prop("TracingConfig"); !jsonEqual(got, map[string]any{"Mode": "Active"}) {
				t.Errorf("%s: %s TracingConfig = %s, want Active", name, id, render(got))
			}
		}
	}
}

// TestReservedConcurrency: the prop reserves exactly what it names; the
// dev fixture reserves nothing.
func TestReservedConcurrency(t *testing.T) {
	dev, prod := stacks(t)
	for name, f := range map[string]*fixture{devStage: dev, prodStage: prod} {
		for _, fn := range infra.FunctionNames {
			id := infra.FunctionLogicalID(fn)
			got := f.tpl.Resources[id].prop("ReservedConcurrentExecutions")
			want, reserved := f.stack.Props.ReservedConcurrency[fn]
			switch {
			case !reserved && got != nil:
				t.Errorf("%s: %s reserves %v, want nothing", name, id, got)
			case reserved && !jsonEqual(got, float64(want)):
				t.Errorf("%s: %s reserves %v, want %d", name, id, got, want)
			}
		}
	}
	if len(prod.stack.Props.ReservedConcurrency) == 0 || len(dev.stack.Props.ReservedConcurrency) != 0 {
		t.Fatal("fixtures: prod should reserve, dev should not")
	}
}

// TestOnlyTheAPIDeletesItems: no role but the api function's may delete
// items of the table.
func TestOnlyTheAPIDeletesItems(t *testing.T) {
	dev, prod := stacks(t)
	for name, f := range map[string]*fixture{devStage: dev, prodStage: prod} {
		apiRole := roleOf(f.tpl.Resources["ApiFunction"].prop("Role"))
		deleters := []string{}
		for role, sts := range policies(t, f.tpl) {
			for _, st := range sts {
				if contains(st.Actions, "dynamodb:DeleteItem") {
					deleters = append(deleters, role)
				}
			}
		}
		if len(deleters) != 1 || deleters[0] != apiRole {
			t.Errorf("%s: roles that may DeleteItem: %v, want only %s", name, deleters, apiRole)
		}
	}
}

// TestCustomDomain: with DomainName and CertificateArn (prod fixture) the
// API is served on a regional TLS 1.2 domain mapped to its stage, the
// execute-api endpoint is off and ApiUrl is the domain; without (dev), no
// domain and execute-api on.
func TestCustomDomain(t *testing.T) {
	dev, prod := stacks(t)
	devAPI := dev.tpl.Resources[dev.tpl.only(t, "AWS::ApiGatewayV2::Api", nil)]
	if got := devAPI.prop("DisableExecuteApiEndpoint"); got != false {
		t.Errorf("dev: DisableExecuteApiEndpoint = %v, want false", got)
	}
	if _, ok := dev.tpl.Outputs["ApiDomainTarget"]; ok {
		t.Error("dev: ApiDomainTarget output without a custom domain")
	}
	if got := render(dev.tpl.Outputs["ApiUrl"].Value); !strings.Contains(got, "execute-api") {
		t.Errorf("dev: ApiUrl = %s, want the execute-api URL", got)
	}

	p := prod.stack.Props
	api := prod.tpl.only(t, "AWS::ApiGatewayV2::Api", nil)
	if got := prod.tpl.Resources[api].prop("DisableExecuteApiEndpoint"); got != true {
		t.Errorf("prod: DisableExecuteApiEndpoint = %v, want true", got)
	}
	domain := prod.tpl.only(t, "AWS::ApiGatewayV2::DomainName", nil)
	must(t, "prod domain name", func() {
		prod.template.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::DomainName"), map[string]any{
			"DomainName": p.DomainName,
			"DomainNameConfigurations": []any{map[string]any{
				"CertificateArn": p.CertificateArn,
				"EndpointType":   "REGIONAL",
				"SecurityPolicy": "TLS_1_2",
			}},
		})
	})
	stage := prod.tpl.only(t, "AWS::ApiGatewayV2::Stage", nil)
	mapping := prod.tpl.Resources[prod.tpl.only(t, "AWS::ApiGatewayV2::ApiMapping", nil)]
	if !jsonEqual(mapping.Properties, map[string]any{"ApiId": ref(api), "DomainName": ref(domain), "Stage": "$default"}) {
		t.Errorf("prod: api mapping %s, want the API's $default stage on the domain", pretty(mapping.Properties))
	}
	if deps := strs(mapping.DependsOn); !contains(deps, stage) {
		t.Errorf("prod: api mapping DependsOn %v, want the stage %s", deps, stage)
	}
	if got, want := render(prod.tpl.Outputs["ApiUrl"].Value), "https://${"+domain+"}/"; got != want {
		t.Errorf("prod: ApiUrl = %s, want %s", got, want)
	}
	for out, attr := range map[string]string{"ApiDomainTarget": "RegionalDomainName", "ApiDomainHostedZoneId": "RegionalHostedZoneId"} {
		if got := prod.tpl.Outputs[out].Value; !jsonEqual(got, getAtt(domain, attr)) {
			t.Errorf("prod: output %s = %s, want the domain's %s", out, render(got), attr)
		}
	}
}
