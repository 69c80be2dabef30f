package templatetests

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/jsii-runtime-go"

	"github.com/dispatcherhq/dispatcher/infra"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
)

func TestResourceCounts(t *testing.T) {
	dev, prod := stacks(t)
	want := map[string]float64{
		"AWS::DynamoDB::Table":                       1,
		"AWS::Lambda::Function":                      6, // 5 Go functions, the SetSMSAttributes custom resource's provider
		"AWS::Lambda::EventSourceMapping":            4, // dispatch queue → dispatch, events queue → events, table stream and webhook queue → webhooks
		"AWS::Lambda::EventInvokeConfig":             3,
		"AWS::Lambda::Permission":                    3, // API Gateway → api, CloudWatch Logs (2 SMS log groups) → events
		"AWS::SQS::Queue":                            9, // dispatch queue, its DLQ, the Scheduler DLQ, events queue, its DLQ, the rule target's DLQ, webhook queue, its DLQ, the fan-out DLQ
		"AWS::SQS::QueuePolicy":                      9, // TLS only (+ EventBridge may send to the events queue and the target DLQ)
		"AWS::Scheduler::ScheduleGroup":              2, // the fires', the sweeper's
		"AWS::Scheduler::Schedule":                   1,
		"AWS::IAM::Role":                             9, // 5 functions, the Scheduler role, the sweep schedule's role, SNS delivery status, the custom resource provider
		"AWS::IAM::Policy":                           9, // 5 functions, the two Scheduler roles, the provider's logs, the custom resource's call
		"AWS::Logs::LogGroup":                        9, // 5 functions, API access logs, 2 SMS delivery status, the custom resource provider
		"AWS::Logs::SubscriptionFilter":              2, // SMS delivery status (success, failure) → events
		"AWS::Events::Rule":                          1, // SES events → events queue
		"AWS::SES::ConfigurationSetEventDestination": 1,
		"Custom::AWS":                                1, // SNS SetSMSAttributes
		"AWS::ApiGatewayV2::Api":                     1,
		"AWS::ApiGatewayV2::Stage":                   1,
		"AWS::ApiGatewayV2::Route":                   1,
		"AWS::ApiGatewayV2::Integration":             1,
		"AWS::SecretsManager::Secret":                1,
		"AWS::SNS::Topic":                            1,
		"AWS::SNS::TopicPolicy":                      1,
		"AWS::SNS::Subscription":                     1,
		"AWS::CloudWatch::Alarm":                     25, // 16 (errors, throttles of 5 functions; 4 DLQs; queue age; API 5xx) + a permanent-failure ratio per channel + 6 delivery feedback
		"AWS::CloudWatch::Dashboard":                 1,
		"AWS::SES::ConfigurationSet":                 1,
		"AWS::ApiGatewayV2::DomainName":              0, // only with a custom domain
		"AWS::ApiGatewayV2::ApiMapping":              0,
	}
	for _, c := range []struct {
		name string
		f    *fixture
		diff map[string]float64
	}{
		{devStage, dev, nil},
		// prod names an existing set, and serves the API on a custom domain
		{prodStage, prod, map[string]float64{"AWS::SES::ConfigurationSet": 0, "AWS::ApiGatewayV2::DomainName": 1, "AWS::ApiGatewayV2::ApiMapping": 1}},
	} {
		types := map[string]bool{}
		for _, r := range c.f.tpl.Resources {
			types[r.Type] = true
		}
		for typ, n := range want {
			if d, ok := c.diff[typ]; ok {
				n = d
			}
			delete(types, typ)
			must(t, c.name+" "+typ, func() { c.f.template.ResourceCountIs(jsii.String(typ), jsii.Number(n)) })
		}
		for typ := range types {
			t.Errorf("%s: unexpected resource type %s", c.name, typ)
		}
	}
}

// storeTable is the table the store's own CreateTable makes
// (dynamo.TableInput), in CloudFormation terms: the stack must create the
// same keys, attributes and indexes.
func storeTable() map[string]any {
	in := dynamo.TableInput("x")
	keys := func(ks []types.KeySchemaElement) []any {
		var out []any
		for _, k := range ks {
			out = append(out, map[string]any{"AttributeName": *k.AttributeName, "KeyType": string(k.KeyType)})
		}
		return out
	}
	var attrs, gsis []any
	for _, a := range in.AttributeDefinitions {
		attrs = append(attrs, map[string]any{"AttributeName": *a.AttributeName, "AttributeType": string(a.AttributeType)})
	}
	for _, g := range in.GlobalSecondaryIndexes {
		proj := map[string]any{"ProjectionType": string(g.Projection.ProjectionType)}
		if len(g.Projection.NonKeyAttributes) > 0 {
			proj["NonKeyAttributes"] = g.Projection.NonKeyAttributes
		}
		gsis = append(gsis, map[string]any{"IndexName": *g.IndexName, "KeySchema": keys(g.KeySchema), "Projection": proj})
	}
	return map[string]any{
		"BillingMode":            string(in.BillingMode),
		"KeySchema":              keys(in.KeySchema),
		"AttributeDefinitions":   assertions.Match_ArrayEquals(&attrs),
		"GlobalSecondaryIndexes": gsis,
	}
}

func TestTable(t *testing.T) {
	dev, prod := stacks(t)
	// The names the rest of the system relies on.
	if dynamo.AttrPK != "pk" || dynamo.AttrSK != "sk" || dynamo.AttrTTL != "ttl" ||
		dynamo.IndexByCompany != "by_company" || dynamo.IndexByDue != "by_due" || dynamo.IndexByFeed != "by_feed" {
		t.Errorf("the store's schema names changed: update infra and these tests together")
	}
	for _, c := range []struct {
		name   string
		f      *fixture
		retain bool
	}{{devStage, dev, false}, {prodStage, prod, true}} {
		props := storeTable()
		props["PointInTimeRecoverySpecification"] = map[string]any{"PointInTimeRecoveryEnabled": true}
		props["TimeToLiveSpecification"] = map[string]any{"AttributeName": dynamo.AttrTTL, "Enabled": true}
		props["DeletionProtectionEnabled"] = c.retain
		if props["BillingMode"] != "PAY_PER_REQUEST" {
			t.Errorf("store schema billing mode %v, want on demand", props["BillingMode"])
		}
		must(t, c.name+" table", func() {
			c.f.template.HasResourceProperties(jsii.String("AWS::DynamoDB::Table"), props)
		})
		policy := "Delete"
		if c.retain {
			policy = "Retain"
		}
		id := c.f.tpl.only(t, "AWS::DynamoDB::Table", nil)
		if r := c.f.tpl.Resources[id]; r.DeletionPolicy != policy || r.UpdateReplacePolicy != policy {
			t.Errorf("%s: table DeletionPolicy %q UpdateReplacePolicy %q, want %q", c.name, r.DeletionPolicy, r.UpdateReplacePolicy, policy)
		}
		// Every stateful resource follows the stage's policy.
		for _, typ := range []string{"AWS::Logs::LogGroup", "AWS::SecretsManager::Secret", "AWS::Scheduler::ScheduleGroup"} {
			for _, id := range c.f.tpl.ofType(typ) {
				if got := c.f.tpl.Resources[id].DeletionPolicy; got != policy {
					t.Errorf("%s: %s %s DeletionPolicy %q, want %q", c.name, typ, id, got, policy)
				}
			}
		}
	}
}

func TestQueues(t *testing.T) {
	dev, prod := stacks(t)
	for _, c := range []struct {
		name    string
		f       *fixture
		maxConc float64
	}{{devStage, dev, 10}, {prodStage, prod, 25}} {
		tp := c.f.tpl
		x := resourceIDs(t, c.f)
		q := tp.Resources[x.queue]
		timeout := tp.Resources["DispatchFunction"].prop("Timeout").(float64)
		vis, _ := q.prop("VisibilityTimeout").(float64)
		if vis < 6*timeout {
			t.Errorf("%s: queue VisibilityTimeout %v < 6 × dispatch Timeout %v", c.name, vis, timeout)
		}
		if !jsonEqual(q.prop("RedrivePolicy"), map[string]any{"deadLetterTargetArn": getAtt(x.dlq, "Arn"), "maxReceiveCount": 5}) {
			t.Errorf("%s: RedrivePolicy = %s", c.name, pretty(q.prop("RedrivePolicy")))
		}
		for _, id := range []string{x.queue, x.dlq, x.schedulerDLQ} {
			if tp.Resources[id].prop("SqsManagedSseEnabled") != true {
				t.Errorf("%s: queue %s is not encrypted (SSE-SQS)", c.name, id)
			}
			if tp.Resources[id].prop("FifoQueue") == true {
				t.Errorf("%s: queue %s is FIFO; Scheduler's DLQ must be a standard queue", c.name, id)
			}
		}
		for _, id := range []string{x.dlq, x.schedulerDLQ, x.webhookDLQ, x.fanOutDLQ} {
			if got := tp.Resources[id].prop("MessageRetentionPeriod"); got != 1209600.0 {
				t.Errorf("%s: DLQ %s retention %v, want 14 days", c.name, id, got)
			}
		}
		must(t, c.name+" TLS-only queue policies", func() {
			c.f.template.ResourcePropertiesCountIs(jsii.String("AWS::SQS::QueuePolicy"), map[string]any{
				"PolicyDocument": map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{
					assertions.Match_ObjectLike(&map[string]any{
						"Effect":    "Deny",
						"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
					}),
				})},
			}, jsii.Number(9)) // every queue
		})
		must(t, c.name+" event source mapping", func() {
			c.f.template.HasResourceProperties(jsii.String("AWS::Lambda::EventSourceMapping"), map[string]any{
				"FunctionName":          ref("DispatchFunction"),
				"EventSourceArn":        getAtt(x.queue, "Arn"),
				"BatchSize":             10,
				"FunctionResponseTypes": []any{"ReportBatchItemFailures"},
				"ScalingConfig":         map[string]any{"MaximumConcurrency": c.maxConc},
			})
		})
		must(t, c.name+" dispatch async invokes", func() {
			c.f.template.HasResourceProperties(jsii.String("AWS::Lambda::EventInvokeConfig"), map[string]any{
				"FunctionName":         ref("DispatchFunction"),
				"MaximumRetryAttempts": 2,
				"DestinationConfig":    map[string]any{"OnFailure": map[string]any{"Destination": getAtt(x.schedulerDLQ, "Arn")}},
			})
		})
		must(t, c.name+" events async invokes (SMS delivery-status logs)", func() {
			c.f.template.HasResourceProperties(jsii.String("AWS::Lambda::EventInvokeConfig"), map[string]any{
				"FunctionName":             ref("EventsFunction"),
				"MaximumRetryAttempts":     2,
				"MaximumEventAgeInSeconds": 6 * 3600,
				"DestinationConfig":        map[string]any{"OnFailure": map[string]any{"Destination": getAtt(x.eventsDLQ, "Arn")}},
			})
		})
		must(t, c.name+" sweeper async invokes", func() {
			c.f.template.HasResourceProperties(jsii.String("AWS::Lambda::EventInvokeConfig"), map[string]any{
				"FunctionName":             ref("SweeperFunction"),
				"MaximumRetryAttempts":     0,
				"MaximumEventAgeInSeconds": 60,
			})
		})
	}
}

func TestScheduler(t *testing.T) {
	dev, prod := stacks(t)
	for name, f := range map[string]*fixture{devStage: dev, prodStage: prod} {
		x := resourceIDs(t, f)
		must(t, name+" schedule group", func() {
			f.template.HasResourceProperties(jsii.String("AWS::Scheduler::ScheduleGroup"), map[string]any{"Name": "dispatcher-" + name})
		})
		must(t, name+" sweep schedule group", func() {
			f.template.HasResourceProperties(jsii.String("AWS::Scheduler::ScheduleGroup"), map[string]any{"Name": "dispatcher-" + name + "-sweeper"})
		})
		must(t, name+" sweep schedule", func() {
			f.template.HasResourceProperties(jsii.String("AWS::Scheduler::Schedule"), map[string]any{
				"ScheduleExpression": "rate(1 minute)",
				"FlexibleTimeWindow": map[string]any{"Mode": "OFF"},
				"State":              "ENABLED",
				// The stage's own group: neither the account's shared
				// "default" group nor the fires' group (whose schedules the
				// functions may create and delete).
				"GroupName": "dispatcher-" + name + "-sweeper",
				"Target": map[string]any{
					"Arn":              getAtt("SweeperFunction", "Arn"),
					"RoleArn":          getAtt(x.sweepRole, "Arn"),
					"RetryPolicy":      map[string]any{"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60},
					"DeadLetterConfig": map[string]any{"Arn": getAtt(x.schedulerDLQ, "Arn")},
				},
			})
		})
	}
}

// TestSweepScheduleAfterItsGroup: the group is named by a literal, so the
// schedule must depend on it explicitly.
func TestSweepScheduleAfterItsGroup(t *testing.T) {
	dev, prod := stacks(t)
	for name, f := range map[string]*fixture{devStage: dev, prodStage: prod} {
		x := resourceIDs(t, f)
		sched := f.tpl.only(t, "AWS::Scheduler::Schedule", nil)
		if deps := strs(f.tpl.Resources[sched].DependsOn); !contains(deps, x.sweepGroup) {
			t.Errorf("%s: sweep schedule DependsOn %v, want its group %s", name, deps, x.sweepGroup)
		}
	}
}

func TestHTTPAPI(t *testing.T) {
	dev, prod := stacks(t)
	for name, f := range map[string]*fixture{devStage: dev, prodStage: prod} {
		tp := f.tpl
		api := tp.only(t, "AWS::ApiGatewayV2::Api", nil)
		must(t, name+" api", func() {
			f.template.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Api"), map[string]any{"ProtocolType": "HTTP"})
		})
		integ := tp.only(t, "AWS::ApiGatewayV2::Integration", nil)
		must(t, name+" integration", func() {
			f.template.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Integration"), map[string]any{
				"ApiId":                ref(api),
				"IntegrationType":      "AWS_PROXY",
				"IntegrationUri":       getAtt("ApiFunction", "Arn"),
				"PayloadFormatVersion": "2.0",
			})
		})
		must(t, name+" route", func() {
			f.template.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Route"), map[string]any{
				"ApiId":    ref(api),
				"RouteKey": "$default",
				"Target":   map[string]any{"Fn::Join": []any{"", []any{"integrations/", ref(integ)}}},
			})
		})
		stage := tp.Resources[tp.only(t, "AWS::ApiGatewayV2::Stage", nil)]
		if stage.prop("StageName") != "$default" || stage.prop("AutoDeploy") != true {
			t.Errorf("%s: stage %v autodeploy %v", name, stage.prop("StageName"), stage.prop("AutoDeploy"))
		}
		// The stage limits are props: dev the defaults (50/s, burst 100),
		// prod its own (200/s, burst 400).
		wantThrottle := map[string]map[string]any{devStage: {"ThrottlingBurstLimit": 100, "ThrottlingRateLimit": 50},
			prodStage: {"ThrottlingBurstLimit": 400, "ThrottlingRateLimit": 200}}[name]
		if !jsonEqual(stage.prop("DefaultRouteSettings"), wantThrottle) {
			t.Errorf("%s: stage throttling = %s, want %v", name, pretty(stage.prop("DefaultRouteSettings")), wantThrottle)
		}
		dest := roleOf(stage.prop("AccessLogSettings", "DestinationArn"))
		if tp.Resources[dest].Type != "AWS::Logs::LogGroup" {
			t.Errorf("%s: access logs go to %v, want a log group", name, stage.prop("AccessLogSettings"))
		}
		var format map[string]string
		if err := json.Unmarshal([]byte(stage.prop("AccessLogSettings", "Format").(string)), &format); err != nil {
			t.Errorf("%s: access log format is not JSON: %v", name, err)
		}
		for _, k := range []string{"requestId", "status", "routeKey", "integrationLatency", "ip"} {
			if format[k] == "" {
				t.Errorf("%s: access log format lacks %q", name, k)
			}
		}
		must(t, name+" invoke permission", func() {
			f.template.HasResourceProperties(jsii.String("AWS::Lambda::Permission"), map[string]any{
				"Action":       "lambda:InvokeFunction",
				"FunctionName": getAtt("ApiFunction", "Arn"),
				"Principal":    "apigateway.amazonaws.com",
				"SourceArn":    assertions.Match_AnyValue(),
			})
		})
		perm := tp.Resources[tp.only(t, "AWS::Lambda::Permission", func(_ string, r resource) bool {
			return r.prop("Principal") == "apigateway.amazonaws.com"
		})]
		if src := render(perm.prop("SourceArn")); src != "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${"+api+"}/*/*" {
			t.Errorf("%s: permission SourceArn %s, want this API only", name, src)
		}
	}
}

func TestSecret(t *testing.T) {
	dev, _ := stacks(t)
	must(t, "voice secret", func() {
		dev.template.HasResourceProperties(jsii.String("AWS::SecretsManager::Secret"), map[string]any{
			"GenerateSecretString": map[string]any{
				"SecretStringTemplate": `{"api_key":""}`,
				"GenerateStringKey":    "webhook_signing_secret",
			},
		})
	})
}

func TestMonitoring(t *testing.T) {
	dev, prod := stacks(t)
	for name, f := range map[string]*fixture{devStage: dev, prodStage: prod} {
		tp := f.tpl
		x := resourceIDs(t, f)
		must(t, name+" email subscription", func() {
			f.template.HasResourceProperties(jsii.String("AWS::SNS::Subscription"), map[string]any{
				"Protocol": "email",
				"Endpoint": f.stack.Props.AlarmEmail,
				"TopicArn": ref(x.topic),
			})
		})
		type alarm struct {
			namespace, metric string
			dimension         any
			threshold         float64
		}
		fnDim := func(fn string) any { return []any{map[string]any{"Name": "FunctionName", "Value": ref(fn)}} }
		qDim := func(q string) any {
			return []any{map[string]any{"Name": "QueueName", "Value": getAtt(q, "QueueName")}}
		}
		want := []alarm{
			{"AWS/SQS", "ApproximateNumberOfMessagesVisible", qDim(x.dlq), 1},
			{"AWS/SQS", "ApproximateNumberOfMessagesVisible", qDim(x.schedulerDLQ), 1},
			{"AWS/SQS", "ApproximateAgeOfOldestMessage", qDim(x.queue), 1200},
			{"AWS/SQS", "ApproximateNumberOfMessagesVisible", qDim(x.webhookDLQ), 1},
			{"AWS/SQS", "ApproximateNumberOfMessagesVisible", qDim(x.fanOutDLQ), 1},
		}
		for _, fn := range []string{"ApiFunction", "DispatchFunction", "SweeperFunction", "EventsFunction", "WebhooksFunction"} {
			want = append(want, alarm{"AWS/Lambda", "Errors", fnDim(fn), 1}, alarm{"AWS/Lambda", "Throttles", fnDim(fn), 1})
		}
		for _, a := range want {
			must(t, name+" alarm "+a.metric+" "+render(a.dimension), func() {
				f.template.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), map[string]any{
					"Namespace":          a.namespace,
					"MetricName":         a.metric,
					"Dimensions":         a.dimension,
					"Threshold":          a.threshold,
					"ComparisonOperator": "GreaterThanOrEqualToThreshold",
					"AlarmActions":       []any{ref(x.topic)},
					"OKActions":          []any{ref(x.topic)},
				})
			})
		}
		must(t, name+" API 5xx alarm", func() {
			f.template.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), map[string]any{
				"Namespace": "AWS/ApiGateway", "MetricName": "5xx", "AlarmActions": []any{ref(x.topic)},
			})
		})
		for _, id := range tp.ofType("AWS::CloudWatch::Alarm") {
			if !jsonEqual(tp.Resources[id].prop("AlarmActions"), []any{ref(x.topic)}) {
				t.Errorf("%s: alarm %s does not notify the topic", name, id)
			}
		}
		must(t, name+" dashboard", func() {
			f.template.HasResourceProperties(jsii.String("AWS::CloudWatch::Dashboard"), map[string]any{"DashboardName": "dispatcher-" + name})
		})
		for _, o := range []string{"ApiUrl", "TableName", "QueueName"} {
			if _, ok := tp.Outputs[o]; !ok {
				t.Errorf("%s: no output %s", name, o)
			}
		}
		if !jsonEqual(tp.Outputs["TableName"].Value, ref(x.table)) || !jsonEqual(tp.Outputs["QueueName"].Value, getAtt(x.queue, "QueueName")) {
			t.Errorf("%s: outputs TableName %v QueueName %v", name, tp.Outputs["TableName"].Value, tp.Outputs["QueueName"].Value)
		}
	}
}

// TestPermanentFailureAlarms: one alarm per channel on the metric math
// Deliveries{Channel, Result=permanent} / Σ over results of
// Deliveries{Channel, Result}, in the stage's namespace (the one the
// functions are given), above the PermanentFailureRatio prop (default
// 0.05; the prod fixture sets 0.1), missing data not breaching.
func TestPermanentFailureAlarms(t *testing.T) {
	dev, prod := stacks(t)
	const total = "(FILL(sent, 0) + FILL(transient, 0) + FILL(permanent, 0) + FILL(suppressed, 0) + FILL(other, 0))"
	const expression = "IF(" + total + " > 0, FILL(permanent, 0) / " + total + ", 0)"
	results := []string{"sent", "transient", "permanent", "suppressed", "other"}
	for _, c := range []struct {
		stage     string
		f         *fixture
		threshold float64
	}{{devStage, dev, 0.05}, {prodStage, prod, 0.1}} {
		tp := c.f.tpl
		x := resourceIDs(t, c.f)
		namespace := "Dispatcher/" + c.stage
		for _, channel := range []string{"email", "sms", "voice_call"} {
			t.Run(c.stage+"/"+channel, func(t *testing.T) {
				// The alarm whose metrics are this channel's.
				var found []string
				for _, id := range tp.ofType("AWS::CloudWatch::Alarm") {
					for _, m := range list(tp.Resources[id].prop("Metrics")) {
						stat, _ := m.(map[string]any)["MetricStat"].(map[string]any)
						metric, _ := stat["Metric"].(map[string]any)
						if dims := list(metric["Dimensions"]); metric["MetricName"] == "Deliveries" && len(dims) > 0 && jsonEqual(dims[0], map[string]any{"Name": "Channel", "Value": channel}) {
							found = append(found, id)
							break
						}
					}
				}
				if len(found) != 1 {
					t.Fatalf("alarms on channel %s: %v, want one", channel, found)
				}
				a := tp.Resources[found[0]]
				for k, want := range map[string]any{
					"ComparisonOperator": "GreaterThanThreshold",
					"Threshold":          c.threshold,
					"EvaluationPeriods":  float64(1),
					"TreatMissingData":   "notBreaching",
					"AlarmActions":       []any{ref(x.topic)},
					"OKActions":          []any{ref(x.topic)},
				} {
					if got := a.prop(k); !jsonEqual(got, want) {
						t.Errorf("%s = %s, want %s", k, pretty(got), pretty(want))
					}
				}
				if a.prop("MetricName") != nil || a.prop("Namespace") != nil {
					t.Errorf("the alarm watches a single metric, not the math: %s", pretty(a.Properties))
				}
				byID := map[string]map[string]any{}
				var expressions []map[string]any
				for _, m := range list(a.prop("Metrics")) {
					m := m.(map[string]any)
					if _, ok := m["Expression"]; ok {
						expressions = append(expressions, m)
						continue
					}
					byID[m["Id"].(string)] = m
				}
				if len(expressions) != 1 || expressions[0]["Expression"] != expression || expressions[0]["ReturnData"] != true {
					t.Errorf("expression: %s\nwant %s", pretty(expressions), expression)
				}
				if len(byID) != len(results) {
					t.Errorf("metrics %v, want one per result %v", byID, results)
				}
				for _, r := range results {
					want := map[string]any{
						"Id": r,
						"MetricStat": map[string]any{
							"Metric": map[string]any{
								"Namespace":  namespace,
								"MetricName": "Deliveries",
								"Dimensions": []any{
									map[string]any{"Name": "Channel", "Value": channel},
									map[string]any{"Name": "Result", "Value": r},
								},
							},
							"Period": float64(900),
							"Stat":   "Sum",
						},
						"ReturnData": false,
					}
					if !jsonEqual(byID[r], want) {
						t.Errorf("metric %s = %s\nwant %s", r, pretty(byID[r]), pretty(want))
					}
				}
			})
		}
	}
}

// TestIndexesCopyNoPayload: a transition rewrites its row, and each index
// whose projection holds what changed: the listing index projects only
// the keys and what listings filter on (never the payload, which lives in
// its own item over 1 KiB), the sweeper's only keys (issue 14).
func TestIndexesCopyNoPayload(t *testing.T) {
	dev, _ := stacks(t)
	id := dev.tpl.only(t, "AWS::DynamoDB::Table", nil)
	want := map[string]map[string]any{
		"by_company": {"ProjectionType": "INCLUDE", "NonKeyAttributes": []any{"status", "channel", "contact_id", "customer_id", "deal_id", "cadence_root_id", "delivery_status", "state"}},
		"by_due":     {"ProjectionType": "KEYS_ONLY"},
	}
	for _, g := range list(dev.tpl.Resources[id].prop("GlobalSecondaryIndexes")) {
		g := g.(map[string]any)
		w, ok := want[g["IndexName"].(string)]
		if !ok {
			continue
		}
		delete(want, g["IndexName"].(string))
		if !jsonEqual(g["Projection"], w) {
			t.Errorf("index %s projects %s, want %s", g["IndexName"], render(g["Projection"]), render(w))
		}
	}
	if len(want) > 0 {
		t.Errorf("indexes missing from the table: %v", want)
	}

	// A stack deployed before keeps ALL (CloudFormation cannot change an
	// index's projection in place): the prop says so, and changes nothing else.
	flags, err := featureFlags(filepath.Join("..", "cdk.json"))
	if err != nil {
		t.Fatal(err)
	}
	props := devProps
	props.AssetRoot, props.ListingIndexAll = assetRoot, true
	stack, err := infra.NewDispatcherStack(awscdk.NewApp(&awscdk.AppProps{Context: &flags}), "Dispatcher-"+props.Stage, &props)
	if err != nil {
		t.Fatal(err)
	}
	var old template
	b, _ := json.Marshal(assertions.Template_FromStack(stack.Stack, nil).ToJSON())
	if err := json.Unmarshal(b, &old); err != nil {
		t.Fatal(err)
	}
	oldID := old.only(t, "AWS::DynamoDB::Table", nil)
	got := list(old.Resources[oldID].prop("GlobalSecondaryIndexes"))
	base := list(dev.tpl.Resources[id].prop("GlobalSecondaryIndexes"))
	for i, g := range got {
		g, w := g.(map[string]any), base[i].(map[string]any)
		if g["IndexName"] == "by_company" {
			if !jsonEqual(g["Projection"], map[string]any{"ProjectionType": "ALL"}) {
				t.Errorf("ListingIndexAll: by_company projects %s, want ALL", render(g["Projection"]))
			}
			continue
		}
		if !jsonEqual(g, w) {
			t.Errorf("ListingIndexAll changed index %s: %s", g["IndexName"], render(g))
		}
	}
}
