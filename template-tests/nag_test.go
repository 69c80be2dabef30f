package templatetests

import (
	"sort"
	"strings"
	"testing"
)

// TestNagAwsSolutions runs cdk-nag's AwsSolutions pack over both stacks:
// no error and no warning may remain unsuppressed.
func TestNagAwsSolutions(t *testing.T) {
	dev, prod := stacks(t)
	for name, f := range map[string]*fixture{devStage: dev, prodStage: prod} {
		for _, e := range f.nagErrors {
			t.Errorf("%s: cdk-nag error: %s", name, e)
		}
		for _, w := range f.nagWarnings {
			t.Errorf("%s: cdk-nag warning: %s", name, w)
		}
	}
}

// TestNoAnnotations: no error or warning of any source (the CDK's own
// warnings, e.g. a deprecated runtime or an ignored prop) is left.
func TestNoAnnotations(t *testing.T) {
	dev, prod := stacks(t)
	for name, f := range map[string]*fixture{devStage: dev, prodStage: prod} {
		for _, e := range append(f.errors, f.warnings...) {
			t.Errorf("%s: annotation: %s", name, e)
		}
	}
}

// wantSuppressed lists the cdk-nag rules suppressed somewhere in the stack
// (the reasons are in infra/nag.go).
var wantSuppressed = []string{
	"AwsSolutions-APIG4", // the api function authenticates every request itself
	"AwsSolutions-IAM5",  // the two wildcardExceptions
	"AwsSolutions-SMG4",  // the provider issues the voice API key: no rotation Lambda
	"AwsSolutions-SQS3",  // the Scheduler DLQ is a DLQ, not by a redrive policy
}

// TestNagSuppressionsHaveReasons checks that every suppression in the
// template carries a written reason and that no other rule is suppressed.
func TestNagSuppressionsHaveReasons(t *testing.T) {
	dev, _ := stacks(t)
	seen := map[string]bool{}
	for id, r := range dev.tpl.Resources {
		md, _ := r.Metadata["cdk_nag"].(map[string]any)
		for _, s := range list(md["rules_to_suppress"]) {
			m := s.(map[string]any)
			rule, _ := m["id"].(string)
			reason, _ := m["reason"].(string)
			seen[rule] = true
			if len(strings.Fields(reason)) < 8 {
				t.Errorf("%s: suppression of %s has no real reason: %q", id, rule, reason)
			}
			if rule == "AwsSolutions-IAM5" && m["applies_to"] == nil {
				t.Errorf("%s: IAM5 suppressed for every finding; name the wildcard with appliesTo", id)
			}
		}
	}
	var got []string
	for r := range seen {
		got = append(got, r)
	}
	sort.Strings(got)
	if !jsonEqual(got, wantSuppressed) {
		t.Errorf("suppressed rules %v, want %v", got, wantSuppressed)
	}
}
