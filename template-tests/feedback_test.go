package templatetests

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/jsii-runtime-go"
)

// Delivery feedback: SES → EventBridge → events queue → events function,
// and SNS SMS delivery-status logs → subscription filters → events
// function.

// The SES event types, as CloudFormation spells them, and the EventBridge
// detail-type of each.
var (
	sesOutcomeTypes = []string{"send", "delivery", "bounce", "complaint", "reject", "deliveryDelay", "renderingFailure"}
	sesOutcomeKinds = []string{"Email Sent", "Email Delivered", "Email Bounced", "Email Complaint Received", "Email Rejected",
		"Email Delivery Delayed", "Email Rendering Failed"}
	sesEngagementTypes = []string{"open", "click"}
	sesEngagementKinds = []string{"Email Opened", "Email Clicked"}
)

func TestSESEventDestination(t *testing.T) {
	dev, prod := stacks(t)
	for _, c := range []struct {
		stage   string
		f       *fixture
		tracked bool // prod sets TrackOpensAndClicks
	}{{devStage, dev, false}, {prodStage, prod, true}} {
		tp := c.f.tpl
		x := resourceIDs(t, c.f)
		d := tp.Resources[tp.only(t, "AWS::SES::ConfigurationSetEventDestination", nil)]
		configSet := any("existing-set") // prod names an existing set: it gets the destination too
		if x.configSet != "" {
			configSet = ref(x.configSet)
		}
		if !jsonEqual(d.prop("ConfigurationSetName"), configSet) {
			t.Errorf("%s: event destination on %v, want %v", c.stage, d.prop("ConfigurationSetName"), configSet)
		}
		if d.prop("EventDestination", "Enabled") != true {
			t.Errorf("%s: event destination not enabled", c.stage)
		}
		if got := render(d.prop("EventDestination", "EventBridgeDestination", "EventBusArn")); got != "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default" {
			t.Errorf("%s: event bus %s, want the default bus", c.stage, got)
		}
		for _, k := range []string{"SnsDestination", "CloudWatchDestination", "KinesisFirehoseDestination"} {
			if d.prop("EventDestination", k) != nil {
				t.Errorf("%s: event destination also has %s", c.stage, k)
			}
		}
		wantTypes := append([]string(nil), sesOutcomeTypes...)
		wantKinds := append([]string(nil), sesOutcomeKinds...)
		if c.tracked {
			wantTypes = append(wantTypes, sesEngagementTypes...)
			wantKinds = append(wantKinds, sesEngagementKinds...)
		}
		if got := strs(d.prop("EventDestination", "MatchingEventTypes")); !jsonEqual(got, sorted(wantTypes...)) {
			t.Errorf("%s: MatchingEventTypes %v, want %v", c.stage, got, sorted(wantTypes...))
		}

		rule := tp.Resources[x.rule]
		wantPattern := map[string]any{
			"source":      []any{"aws.ses"},
			"detail-type": wantKinds,
			"detail":      map[string]any{"mail": map[string]any{"tags": map[string]any{"ses:configuration-set": []any{configSet}}}},
		}
		if !jsonEqual(rule.prop("EventPattern"), wantPattern) {
			t.Errorf("%s: rule pattern\n got %s\nwant %s", c.stage, pretty(rule.prop("EventPattern")), pretty(wantPattern))
		}
		if rule.prop("EventBusName") != nil {
			t.Errorf("%s: rule on bus %v, want the default bus (SES publishes only there)", c.stage, rule.prop("EventBusName"))
		}
		if rule.prop("State") != "ENABLED" {
			t.Errorf("%s: rule state %v", c.stage, rule.prop("State"))
		}
		wantTarget := []any{map[string]any{
			"Arn":              getAtt(x.eventsQueue, "Arn"),
			"DeadLetterConfig": map[string]any{"Arn": getAtt(x.targetDLQ, "Arn")},
			"Id":               "Target0",
			"RetryPolicy":      map[string]any{"MaximumEventAgeInSeconds": 21600, "MaximumRetryAttempts": 8},
		}}
		if !jsonEqual(rule.prop("Targets"), wantTarget) {
			t.Errorf("%s: rule targets\n got %s\nwant %s", c.stage, pretty(rule.prop("Targets")), pretty(wantTarget))
		}
	}
}

func TestEventsQueue(t *testing.T) {
	dev, prod := stacks(t)
	for name, f := range map[string]*fixture{devStage: dev, prodStage: prod} {
		tp := f.tpl
		x := resourceIDs(t, f)
		q := tp.Resources[x.eventsQueue]
		if !jsonEqual(q.prop("RedrivePolicy"), map[string]any{"deadLetterTargetArn": getAtt(x.eventsDLQ, "Arn"), "maxReceiveCount": 5}) {
			t.Errorf("%s: events RedrivePolicy = %s", name, pretty(q.prop("RedrivePolicy")))
		}
		if vis, _ := q.prop("VisibilityTimeout").(float64); vis < 6*30 {
			t.Errorf("%s: events queue VisibilityTimeout %v < 6 × events Timeout 30", name, vis)
		}
		for _, id := range []string{x.eventsQueue, x.eventsDLQ, x.targetDLQ} {
			r := tp.Resources[id]
			if r.prop("SqsManagedSseEnabled") != true {
				t.Errorf("%s: queue %s is not encrypted (SSE-SQS)", name, id)
			}
			if got := r.prop("MessageRetentionPeriod"); got != 1209600.0 {
				t.Errorf("%s: queue %s retention %v, want 14 days", name, id, got)
			}
			if r.prop("KmsMasterKeyId") != nil || r.prop("FifoQueue") == true {
				t.Errorf("%s: queue %s: EventBridge needs a standard queue without a customer KMS key", name, id)
			}
		}
		// EventBridge may send to the events queue and to the target DLQ,
		// from this rule only; nobody may use either without TLS.
		for _, id := range []string{x.eventsQueue, x.targetDLQ} {
			pid := tp.only(t, "AWS::SQS::QueuePolicy", func(_ string, r resource) bool {
				return jsonEqual(r.prop("Queues"), []any{ref(id)})
			})
			var allowed, tlsOnly bool
			for _, st := range list(tp.Resources[pid].prop("PolicyDocument", "Statement")) {
				m := st.(map[string]any)
				if m["Effect"] == "Deny" && jsonEqual(m["Condition"], map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}}) {
					tlsOnly = true
				}
				if m["Effect"] == "Allow" && jsonEqual(m["Principal"], map[string]any{"Service": "events.amazonaws.com"}) {
					allowed = contains(strs(m["Action"]), "sqs:SendMessage") &&
						jsonEqual(m["Condition"], map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": getAtt(x.rule, "Arn")}})
					if !allowed {
						t.Errorf("%s: queue %s lets EventBridge %s", name, id, pretty(m))
					}
				}
			}
			if !allowed || !tlsOnly {
				t.Errorf("%s: queue %s policy: EventBridge allowed from the rule %v, TLS only %v", name, id, allowed, tlsOnly)
			}
		}
		must(t, name+" events event source mapping", func() {
			f.template.HasResourceProperties(jsii.String("AWS::Lambda::EventSourceMapping"), map[string]any{
				"FunctionName":          ref("EventsFunction"),
				"EventSourceArn":        getAtt(x.eventsQueue, "Arn"),
				"BatchSize":             10,
				"FunctionResponseTypes": []any{"ReportBatchItemFailures"},
			})
		})
	}
}

func TestSMSDeliveryStatus(t *testing.T) {
	dev, prod := stacks(t)
	for _, c := range []struct {
		stage  string
		f      *fixture
		days   float64
		policy string
	}{{devStage, dev, 30, "Delete"}, {prodStage, prod, 365, "Retain"}} {
		tp := c.f.tpl
		x := resourceIDs(t, c.f)
		pols := policies(t, tp)
		arn := func(id string) string { return "${" + id + ".Arn}" }

		// The role SNS assumes writes to the two log groups only.
		role := tp.Resources[x.smsRole]
		wantRole := []statement{{
			Sid: "DeliveryStatusLogs", Effect: "Allow",
			Actions:   sorted("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:PutMetricFilter", "logs:PutRetentionPolicy"),
			Resources: sorted(arn(x.successLogs), arn(x.failureLogs)),
		}}
		if got := pols[x.smsRole]; !jsonEqual(got, wantRole) {
			t.Errorf("%s: SNS delivery-status role statements\n got %v\nwant %v", c.stage, got, wantRole)
		}
		if role.prop("ManagedPolicyArns") != nil {
			t.Errorf("%s: SNS delivery-status role has managed policies", c.stage)
		}

		// The custom resource sets the account's SMS attributes on create
		// and update, never on delete.
		cr := tp.Resources[tp.only(t, "Custom::AWS", nil)]
		if cr.prop("Delete") != nil {
			t.Errorf("%s: the custom resource changes SMS attributes on delete: %s", c.stage, render(cr.prop("Delete")))
		}
		if cr.prop("InstallLatestAwsSdk") != false {
			t.Errorf("%s: InstallLatestAwsSdk = %v, want false (the runtime's SDK has SetSMSAttributes)", c.stage, cr.prop("InstallLatestAwsSdk"))
		}
		for _, phase := range []string{"Create", "Update"} {
			rendered := render(cr.prop(phase))
			// Put the role's ARN back as a JSON string to decode the call.
			var call struct {
				Service    string `json:"service"`
				Action     string `json:"action"`
				Parameters struct {
					Attributes map[string]string `json:"attributes"`
				} `json:"parameters"`
				PhysicalResourceID struct {
					ID string `json:"id"`
				} `json:"physicalResourceId"`
			}
			if err := json.Unmarshal([]byte(rendered), &call); err != nil {
				t.Errorf("%s: %s is not a call: %v: %s", c.stage, phase, err, rendered)
				continue
			}
			want := map[string]string{"DeliveryStatusIAMRole": arn(x.smsRole), "DeliveryStatusSuccessSamplingRate": "100"}
			if call.Service != "SNS" || call.Action != "SetSMSAttributes" || !jsonEqual(call.Parameters.Attributes, want) || call.PhysicalResourceID.ID == "" {
				t.Errorf("%s: %s call = %+v, want SNS SetSMSAttributes %v", c.stage, phase, call, want)
			}
		}
		// Its function runs as its own role: SetSMSAttributes, passing the
		// delivery-status role to SNS only, and its own logs.
		wantProvider := map[string]statement{
			"SetSMSAttributes":       {Actions: []string{"sns:SetSMSAttributes"}, Resources: []string{"*"}},
			"PassDeliveryStatusRole": {Actions: []string{"iam:PassRole"}, Resources: []string{arn(x.smsRole)}},
			"Logs":                   {Actions: []string{"logs:CreateLogStream", "logs:PutLogEvents"}},
		}
		got := map[string]statement{}
		for _, st := range pols[x.providerRole] {
			got[st.Sid] = st
		}
		if len(got) != len(wantProvider) {
			t.Errorf("%s: provider role statements %v, want %v", c.stage, pols[x.providerRole], wantProvider)
		}
		for sid, w := range wantProvider {
			g := got[sid]
			if !jsonEqual(g.Actions, w.Actions) || (w.Resources != nil && !jsonEqual(g.Resources, w.Resources)) {
				t.Errorf("%s: provider statement %s = %v, want %v", c.stage, sid, g, w)
			}
		}
		if !jsonEqual(got["PassDeliveryStatusRole"].Condition, map[string]any{"StringEquals": map[string]any{"iam:PassedToService": "sns.amazonaws.com"}}) {
			t.Errorf("%s: PassRole condition %s, want iam:PassedToService sns.amazonaws.com", c.stage, render(got["PassDeliveryStatusRole"].Condition))
		}

		// The two log groups: the stage's retention and removal policy,
		// each forwarded whole to the events function, which CloudWatch
		// Logs may invoke for that log group only.
		for _, lg := range []string{x.successLogs, x.failureLogs} {
			r := tp.Resources[lg]
			if r.prop("RetentionInDays") != c.days || r.DeletionPolicy != c.policy {
				t.Errorf("%s: log group %s retention %v deletion %q, want %v %q", c.stage, lg, r.prop("RetentionInDays"), r.DeletionPolicy, c.days, c.policy)
			}
			tp.only(t, "AWS::Logs::SubscriptionFilter", func(_ string, f resource) bool {
				return jsonEqual(f.prop("LogGroupName"), ref(lg)) &&
					jsonEqual(f.prop("DestinationArn"), getAtt("EventsFunction", "Arn")) && f.prop("FilterPattern") == ""
			})
			tp.only(t, "AWS::Lambda::Permission", func(_ string, p resource) bool {
				return p.prop("Action") == "lambda:InvokeFunction" && p.prop("Principal") == "logs.amazonaws.com" &&
					jsonEqual(p.prop("FunctionName"), getAtt("EventsFunction", "Arn")) && jsonEqual(p.prop("SourceArn"), getAtt(lg, "Arn"))
			})
		}
	}
}

// TestFeedbackAlarms: every delivery-feedback alarm, its metric, threshold
// and comparison, to the alarm topic.
func TestFeedbackAlarms(t *testing.T) {
	dev, prod := stacks(t)
	for name, f := range map[string]*fixture{devStage: dev, prodStage: prod} {
		x := resourceIDs(t, f)
		qDim := func(q string) any { return []any{map[string]any{"Name": "QueueName", "Value": getAtt(q, "QueueName")}} }
		for _, a := range []struct {
			what, namespace, metric, statistic, comparison string
			dimensions                                     any
			period, threshold                              float64
		}{
			{"SES bounce rate", "AWS/SES", "Reputation.BounceRate", "Maximum", "GreaterThanThreshold", nil, 900, 0.05},
			{"SES complaint rate", "AWS/SES", "Reputation.ComplaintRate", "Maximum", "GreaterThanThreshold", nil, 900, 0.001},
			{"events DLQ", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", "GreaterThanOrEqualToThreshold", qDim(x.eventsDLQ), 60, 1},
			{"target DLQ", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", "GreaterThanOrEqualToThreshold", qDim(x.targetDLQ), 60, 1},
			{"events queue age", "AWS/SQS", "ApproximateAgeOfOldestMessage", "Maximum", "GreaterThanThreshold", qDim(x.eventsQueue), 60, 600},
		} {
			id := f.tpl.only(t, "AWS::CloudWatch::Alarm", func(_ string, r resource) bool {
				return r.prop("MetricName") == a.metric && jsonEqual(r.prop("Dimensions"), a.dimensions)
			})
			r := f.tpl.Resources[id]
			for k, want := range map[string]any{
				"Namespace":          a.namespace,
				"Statistic":          a.statistic,
				"ComparisonOperator": a.comparison,
				"Threshold":          a.threshold,
				"Period":             a.period,
				"EvaluationPeriods":  1,
				"TreatMissingData":   "notBreaching",
				"AlarmActions":       []any{ref(x.topic)},
				"OKActions":          []any{ref(x.topic)},
			} {
				if got := r.prop(k); !jsonEqual(got, want) {
					t.Errorf("%s: %s alarm %s = %s, want %s", name, a.what, k, pretty(got), pretty(want))
				}
			}
		}
		// The dashboard shows delivery outcomes by channel.
		body := render(f.tpl.Resources[f.tpl.only(t, "AWS::CloudWatch::Dashboard", nil)].prop("DashboardBody"))
		for _, want := range []string{`"AWS/SES","Send"`, `"AWS/SES","Delivery"`, `"AWS/SES","Bounce"`, `"AWS/SES","Complaint"`,
			`"DeliveryReports","Channel","sms","DeliveryStatus","opted_out"`, `"DeliveryReports","Channel","email","DeliveryStatus","complained"`,
			`"title":"Events function"`} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: dashboard lacks %s", name, want)
			}
		}
	}
}

// TestSMSDeliveryFailureAlarm: the SMS failure ratio is computed from the
// events function's DeliveryReports metric (SNS's SMSSuccessRate exists
// only per country and SMS type).
func TestSMSDeliveryFailureAlarm(t *testing.T) {
	dev, prod := stacks(t)
	const total = "(FILL(delivered, 0) + FILL(undeliverable, 0) + FILL(opted_out, 0))"
	const expression = "IF(" + total + " > 0, (FILL(undeliverable, 0) + FILL(opted_out, 0)) / " + total + ", 0)"
	for name, f := range map[string]*fixture{devStage: dev, prodStage: prod} {
		x := resourceIDs(t, f)
		id := f.tpl.only(t, "AWS::CloudWatch::Alarm", func(_ string, r resource) bool {
			for _, m := range list(r.prop("Metrics")) {
				stat, _ := m.(map[string]any)["MetricStat"].(map[string]any)
				if metric, _ := stat["Metric"].(map[string]any); metric["MetricName"] == "DeliveryReports" {
					return true
				}
			}
			return false
		})
		a := f.tpl.Resources[id]
		for k, want := range map[string]any{"ComparisonOperator": "GreaterThanThreshold", "Threshold": 0.1, "EvaluationPeriods": 1,
			"TreatMissingData": "notBreaching", "AlarmActions": []any{ref(x.topic)}} {
			if got := a.prop(k); !jsonEqual(got, want) {
				t.Errorf("%s: %s = %s, want %s", name, k, pretty(got), pretty(want))
			}
		}
		ids := map[string]bool{}
		for _, m := range list(a.prop("Metrics")) {
			m := m.(map[string]any)
			if e, ok := m["Expression"]; ok {
				if e != expression || m["ReturnData"] != true {
					t.Errorf("%s: expression %v, want %s", name, e, expression)
				}
				continue
			}
			metric := m["MetricStat"].(map[string]any)["Metric"].(map[string]any)
			want := []any{map[string]any{"Name": "Channel", "Value": "sms"}, map[string]any{"Name": "DeliveryStatus", "Value": m["Id"]}}
			if !jsonEqual(metric["Dimensions"], want) || metric["Namespace"] != "Dispatcher/"+name || m["MetricStat"].(map[string]any)["Period"] != float64(900) {
				t.Errorf("%s: metric %s", name, pretty(m))
			}
			ids[m["Id"].(string)] = true
		}
		if !ids["delivered"] || !ids["undeliverable"] || !ids["opted_out"] || len(ids) != 3 {
			t.Errorf("%s: metric ids %v", name, ids)
		}
	}
}

// TestSESSuppressionIsPerCompany: the configuration set the stack creates
// turns SES's account-level suppression list off, so one company's bounce
// or complaint does not stop another company's mail (docs/design.md §8.4).
func TestSESSuppressionIsPerCompany(t *testing.T) {
	dev, _ := stacks(t)
	set := dev.tpl.Resources[dev.tpl.only(t, "AWS::SES::ConfigurationSet", nil)]
	if got := set.prop("SuppressionOptions", "SuppressedReasons"); !jsonEqual(got, []any{}) {
		t.Fatalf("SuppressionOptions.SuppressedReasons %s, want [] (the account list off)", pretty(got))
	}
}
