package templatetests

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher/internal/config"
)

// The environment contract between infra and the functions, written here
// independently of infra.FunctionEnv: each function gets exactly these
// variables (the names its main reads through package config).
var (
	commonEnv = []string{
		config.EnvTableName, config.EnvQueueURL, config.EnvScheduleGroup,
		config.EnvSchedulerRoleARN, config.EnvDispatchTargetARN, config.EnvSchedulerDLQARN,
		config.EnvDefaultFromEmail, config.EnvSESConfigSet, config.EnvLogLevel,
		config.EnvMetricsNamespace, config.EnvWebhookQueueURL, config.EnvRetentionDays,
	}
	voiceEnv = []string{config.EnvVoiceProviderURL, config.EnvVoiceSecretARN}
	wantEnv  = map[string][]string{
		// Verifies voice webhooks, and limits each company's requests.
		"ApiFunction": append([]string{config.EnvVoiceSecretARN, config.EnvCompanyRateLimit, config.EnvCompanyRateBurst,
			config.EnvCompanyRateOverrides}, commonEnv...),
		"DispatchFunction": append(append([]string{}, commonEnv...), voiceEnv...),
		"SweeperFunction":  append(append([]string{}, commonEnv...), voiceEnv...),
		// Records delivery feedback on rows: the table, nothing to send with;
		// the rows it writes keep their retention.
		"EventsFunction": {config.EnvTableName, config.EnvLogLevel, config.EnvMetricsNamespace, config.EnvRetentionDays},
		// Status webhooks: the table, its queue, and schedules for retries
		// hours away; nothing to send messages with.
		"WebhooksFunction": {config.EnvTableName, config.EnvWebhookQueueURL, config.EnvScheduleGroup, config.EnvSchedulerRoleARN,
			config.EnvDispatchTargetARN, config.EnvSchedulerDLQARN, config.EnvLogLevel, config.EnvMetricsNamespace},
	}
)

// wantSize is each function's memory (MB) and timeout (s).
var wantSize = map[string][2]float64{
	"ApiFunction":      {512, 15},
	"DispatchFunction": {512, 60},
	"SweeperFunction":  {256, 55},
	"EventsFunction":   {256, 30},
	"WebhooksFunction": {256, 60},
}

// ids are the logical ids of a stack's shared resources, found by what
// they are rather than by their generated names.
type ids struct {
	table, queue, dlq, schedulerDLQ, group, schedulerRole, sweepRole, secret, topic string
	// sweepGroup is the sweeper schedule's own group.
	sweepGroup string
	configSet  string // "" when the props named an existing set
	// Delivery feedback: the events queue, its DLQ, the rule target's DLQ,
	// the rule, the role SNS assumes, the custom resource provider's role,
	// and the SMS delivery-status log groups (success, failure).
	eventsQueue, eventsDLQ, targetDLQ, rule, smsRole, providerRole, successLogs, failureLogs string
	// Status webhooks: the webhook queue, its DLQ, and the stream event
	// source's on-failure DLQ.
	webhookQueue, webhookDLQ, fanOutDLQ string
}

// consumed returns the logical id of the queue the function's event
// source mapping reads (its only SQS one).
func consumed(t *testing.T, tp template, fn string) string {
	t.Helper()
	esm := tp.Resources[tp.only(t, "AWS::Lambda::EventSourceMapping", func(_ string, r resource) bool {
		return jsonEqual(r.prop("FunctionName"), ref(fn)) && r.prop("StartingPosition") == nil
	})]
	return roleOf(esm.prop("EventSourceArn"))
}

// redriveTarget returns the logical id of the queue's dead-letter queue.
func redriveTarget(tp template, queue string) string {
	return roleOf(tp.Resources[queue].prop("RedrivePolicy", "deadLetterTargetArn"))
}

func resourceIDs(t *testing.T, f *fixture) ids {
	t.Helper()
	tp := f.tpl
	var x ids
	x.table = tp.only(t, "AWS::DynamoDB::Table", nil)
	x.queue = consumed(t, tp, "DispatchFunction")
	x.dlq = redriveTarget(tp, x.queue)
	x.eventsQueue = consumed(t, tp, "EventsFunction")
	x.eventsDLQ = redriveTarget(tp, x.eventsQueue)
	x.webhookQueue = consumed(t, tp, "WebhooksFunction")
	x.webhookDLQ = redriveTarget(tp, x.webhookQueue)
	stream := tp.Resources[tp.only(t, "AWS::Lambda::EventSourceMapping", func(_ string, r resource) bool {
		return jsonEqual(r.prop("FunctionName"), ref("WebhooksFunction")) && r.prop("StartingPosition") != nil
	})]
	x.fanOutDLQ = roleOf(stream.prop("DestinationConfig", "OnFailure", "Destination"))
	x.rule = tp.only(t, "AWS::Events::Rule", nil)
	targets := list(tp.Resources[x.rule].prop("Targets"))
	if len(targets) != 1 {
		t.Fatalf("rule %s has %d targets, want 1", x.rule, len(targets))
	}
	x.targetDLQ = roleOf(targets[0].(map[string]any)["DeadLetterConfig"].(map[string]any)["Arn"])
	x.smsRole = tp.only(t, "AWS::IAM::Role", func(_ string, r resource) bool {
		return jsonEqual(r.prop("AssumeRolePolicyDocument", "Statement"), []any{map[string]any{
			"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": map[string]any{"Service": "sns.amazonaws.com"},
		}})
	})
	cr := tp.Resources[tp.only(t, "Custom::AWS", nil)]
	provider := roleOf(cr.prop("ServiceToken"))
	x.providerRole = roleOf(tp.Resources[provider].prop("Role"))
	for i, suffix := range []string{"/DirectPublishToPhoneNumber", "/DirectPublishToPhoneNumber/Failure"} {
		id := tp.only(t, "AWS::Logs::LogGroup", func(_ string, r resource) bool {
			return render(r.prop("LogGroupName")) == "sns/${AWS::Region}/${AWS::AccountId}"+suffix
		})
		if i == 0 {
			x.successLogs = id
		} else {
			x.failureLogs = id
		}
	}
	x.group = tp.only(t, "AWS::Scheduler::ScheduleGroup", func(_ string, r resource) bool {
		return !strings.HasSuffix(fmt.Sprint(r.prop("Name")), "-sweeper")
	})
	x.sweepGroup = tp.only(t, "AWS::Scheduler::ScheduleGroup", func(_ string, r resource) bool {
		return strings.HasSuffix(fmt.Sprint(r.prop("Name")), "-sweeper")
	})
	schedule := tp.Resources[tp.only(t, "AWS::Scheduler::Schedule", nil)]
	dl := schedule.prop("Target", "DeadLetterConfig", "Arn")
	x.schedulerDLQ = tp.only(t, "AWS::SQS::Queue", func(id string, _ resource) bool { return jsonEqual(dl, getAtt(id, "Arn")) })
	x.schedulerRole = tp.only(t, "AWS::IAM::Role", func(_ string, r resource) bool {
		for _, st := range list(r.prop("AssumeRolePolicyDocument", "Statement")) {
			if c, _ := st.(map[string]any)["Condition"].(map[string]any); c != nil {
				if eq, _ := c["StringEquals"].(map[string]any); eq != nil && jsonEqual(eq["aws:SourceArn"], getAtt(x.group, "Arn")) {
					return true
				}
			}
		}
		return false
	})
	x.sweepRole = roleOf(schedule.prop("Target", "RoleArn"))
	x.secret = tp.only(t, "AWS::SecretsManager::Secret", nil)
	x.topic = tp.only(t, "AWS::SNS::Topic", nil)
	if cs := tp.ofType("AWS::SES::ConfigurationSet"); len(cs) == 1 {
		x.configSet = cs[0]
	}
	return x
}

// roleOf returns X of {"Fn::GetAtt": [X, "Arn"]}.
func roleOf(v any) string {
	m, _ := v.(map[string]any)
	ga, _ := m["Fn::GetAtt"].([]any)
	if len(ga) != 2 {
		return ""
	}
	s, _ := ga[0].(string)
	return s
}

const pseudoArn = "arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:%s"

func TestFunctions(t *testing.T) {
	dev, prod := stacks(t)
	for _, c := range []struct {
		f     *fixture
		stage string
		level string
		days  float64
	}{{dev, devStage, "INFO", 30}, {prod, prodStage, "WARN", 365}} {
		tp := c.f.tpl
		// The Go functions (the custom resource's provider function is
		// the CDK's, on Node.js).
		var goFns []string
		for _, id := range tp.ofType("AWS::Lambda::Function") {
			if tp.Resources[id].prop("Handler") == "bootstrap" {
				goFns = append(goFns, id)
			}
		}
		if len(goFns) != len(wantEnv) || len(tp.ofType("AWS::Lambda::Function")) != len(wantEnv)+1 {
			t.Errorf("%s: Go functions %v of %v, want %d and the custom resource provider", c.stage, goFns, tp.ofType("AWS::Lambda::Function"), len(wantEnv))
		}
		for id, size := range wantSize {
			t.Run(c.stage+"/"+id, func(t *testing.T) {
				r, ok := tp.Resources[id]
				if !ok || r.Type != "AWS::Lambda::Function" {
					t.Fatalf("no function %s", id)
				}
				check := func(what string, got, want any) {
					t.Helper()
					if !jsonEqual(got, want) {
						t.Errorf("%s = %s, want %s", what, pretty(got), pretty(want))
					}
				}
				check("Runtime", r.prop("Runtime"), "provided.al2023")
				check("Architectures", r.prop("Architectures"), []string{"arm64"})
				check("Handler", r.prop("Handler"), "bootstrap")
				check("MemorySize", r.prop("MemorySize"), size[0])
				check("Timeout", r.prop("Timeout"), size[1])
				check("LoggingConfig.LogFormat", r.prop("LoggingConfig", "LogFormat"), "JSON")
				check("LoggingConfig.ApplicationLogLevel", r.prop("LoggingConfig", "ApplicationLogLevel"), c.level)
				check("LoggingConfig.SystemLogLevel", r.prop("LoggingConfig", "SystemLogLevel"), "WARN")
				if r.prop("Code", "S3Bucket") == nil || r.prop("Code", "S3Key") == nil {
					t.Errorf("Code = %s, want an S3 asset", pretty(r.prop("Code")))
				}
				lg, _ := r.prop("LoggingConfig", "LogGroup").(map[string]any)
				lgID, _ := lg["Ref"].(string)
				logs, ok := tp.Resources[lgID]
				if !ok || logs.Type != "AWS::Logs::LogGroup" {
					t.Fatalf("LoggingConfig.LogGroup = %v, want a log group of the stack", lg)
				}
				check("log group RetentionInDays", logs.prop("RetentionInDays"), c.days)
				recursion := "Terminate"
				if id == "DispatchFunction" {
					recursion = "Allow" // it re-arms itself through SQS on purpose
				}
				check("RecursiveLoop", r.prop("RecursiveLoop"), recursion)
			})
		}
	}
}

// TestEnvironmentContract asserts that each function has exactly the
// variables of wantEnv, each bound to the right resource.
func TestEnvironmentContract(t *testing.T) {
	dev, prod := stacks(t)
	for _, c := range []struct {
		f     *fixture
		stage string
	}{{dev, devStage}, {prod, prodStage}} {
		tp := c.f.tpl
		x := resourceIDs(t, c.f)
		props := c.f.stack.Props
		dispatchName, _ := tp.Resources["DispatchFunction"].prop("FunctionName").(string)
		configSet := any("existing-set")
		if x.configSet != "" {
			configSet = ref(x.configSet)
		}
		groupName := tp.Resources[x.group].prop("Name")
		want := map[string]any{
			config.EnvTableName:         ref(x.table),
			config.EnvQueueURL:          ref(x.queue),
			config.EnvScheduleGroup:     groupName,
			config.EnvSchedulerRoleARN:  getAtt(x.schedulerRole, "Arn"),
			config.EnvDispatchTargetARN: fmt.Sprintf(pseudoArn, "lambda", "function:"+dispatchName),
			config.EnvSchedulerDLQARN:   getAtt(x.schedulerDLQ, "Arn"),
			config.EnvDefaultFromEmail:  props.DefaultFromEmail,
			config.EnvSESConfigSet:      configSet,
			config.EnvLogLevel:          props.LogLevel,
			config.EnvMetricsNamespace:  "Dispatcher/" + c.stage, // what the alarms read
			config.EnvVoiceProviderURL:  props.VoiceProviderURL,
			config.EnvVoiceSecretARN:    ref(x.secret),
			config.EnvWebhookQueueURL:   ref(x.webhookQueue),
			// The retention prop: dev leaves the default of 90 days, prod sets 400.
			config.EnvRetentionDays: map[string]string{devStage: "90", prodStage: "400"}[c.stage],
			// The company limit: dev the defaults, prod its props.
			config.EnvCompanyRateLimit:     map[string]string{devStage: "25", prodStage: "40"}[c.stage],
			config.EnvCompanyRateBurst:     map[string]string{devStage: "50", prodStage: "80"}[c.stage],
			config.EnvCompanyRateOverrides: map[string]string{devStage: "", prodStage: "big-co=150/300,tiny=0.5/2"}[c.stage],
		}
		if dispatchName != "dispatcher-"+c.stage+"-dispatch" || groupName != "dispatcher-"+c.stage {
			t.Errorf("%s: dispatch function name %q, schedule group %v", c.stage, dispatchName, groupName)
		}
		for id, names := range wantEnv {
			t.Run(c.stage+"/"+id, func(t *testing.T) {
				vars, _ := tp.Resources[id].prop("Environment", "Variables").(map[string]any)
				var got []string
				for k := range vars {
					got = append(got, k)
				}
				sort.Strings(got)
				exp := append([]string(nil), names...)
				sort.Strings(exp)
				if !jsonEqual(got, exp) {
					t.Errorf("environment variables\n got %v\nwant %v", got, exp)
				}
				for _, k := range names {
					w := want[k]
					g := vars[k]
					if s, ok := w.(string); ok && len(s) > 4 && s[:4] == "arn:" {
						g = render(g)
					}
					if !jsonEqual(g, w) {
						t.Errorf("%s = %s, want %s", k, pretty(g), pretty(w))
					}
				}
			})
		}
	}
}
