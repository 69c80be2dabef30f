package templatetests

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// wildcardException is one place where a statement may name a resource
// with "*" in it: AWS offers nothing narrower. Action is the statement's
// actions, sorted and joined with commas.
type wildcardException struct {
	// Principal is the logical id of the role (a regexp).
	Principal string
	// Action is the statement's only action.
	Action string
	// Resource is the rendered resource (a regexp).
	Resource string
	// Reason says why AWS requires it.
	Reason string
}

// wildcardExceptions is THE list of wildcard resources allowed anywhere in
// the stack. Actions never contain "*".
var wildcardExceptions = []wildcardException{
	{
		Principal: `^(Dispatch|Sweeper)FunctionRole`,
		Action:    "sns:Publish",
		Resource:  `^\*$`,
		Reason:    `sns:Publish straight to a phone number (SMS) has no resource ARN; AWS requires Resource "*".`,
	},
	{
		Principal: `^(Api|Dispatch|Sweeper|Webhooks)FunctionRole`,
		Action:    "scheduler:CreateSchedule",
		Resource:  `^arn:\$\{AWS::Partition\}:scheduler:\$\{AWS::Region\}:\$\{AWS::AccountId\}:schedule/dispatcher-(test|prod)/\*$`,
		Reason:    "Schedule names are made at run time (row id + token); the narrowest scope is the group's schedules.",
	},
	{
		Principal: `^(Api|Dispatch|Sweeper|Events|Webhooks)FunctionRole`,
		Action:    "xray:PutTelemetryRecords,xray:PutTraceSegments",
		Resource:  `^\*$`,
		Reason:    `X-Ray active tracing: the two write actions have no resource-level permissions; AWS requires Resource "*".`,
	},
	{
		Principal: `^ApiFunctionRole`,
		Action:    "scheduler:DeleteSchedule",
		Resource:  `^arn:\$\{AWS::Partition\}:scheduler:\$\{AWS::Region\}:\$\{AWS::AccountId\}:schedule/dispatcher-(test|prod)/\*$`,
		Reason:    "The API deletes the schedule of a row it cancels or reschedules (named from row id + token at run time): the group's schedules.",
	},
	{
		Principal: `^(Dispatch|Sweeper)FunctionRole`,
		Action:    "ses:SendEmail",
		Resource:  `^arn:\$\{AWS::Partition\}:ses:\$\{AWS::Region\}:\$\{AWS::AccountId\}:identity/\*$`,
		Reason:    "Companies send from the domains they declare in their settings at run time, each checked to be a verified SES identity of this account when declared; the narrowest scope is the account's identities.",
	},
	{
		Principal: `^ApiFunctionRole`,
		Action:    "ses:GetEmailIdentity",
		Resource:  `^arn:\$\{AWS::Partition\}:ses:\$\{AWS::Region\}:\$\{AWS::AccountId\}:identity/\*$`,
		Reason:    "The API checks that a company's declared sending domain (any name) is a verified identity of the account.",
	},
	{
		Principal: `^WebhooksFunctionRole`,
		Action:    "dynamodb:ListStreams",
		Resource:  `^\*$`,
		Reason:    `dynamodb:ListStreams has no resource ARN; AWS requires Resource "*" (the stream event source's other actions name the table's stream).`,
	},
	{
		Principal: `^SMSDeliveryStatusProviderRole`,
		Action:    "sns:SetSMSAttributes",
		Resource:  `^\*$`,
		Reason:    `SetSMSAttributes changes an account setting: no resource ARN; AWS requires Resource "*".`,
	},
}

// statement is one IAM statement of a role, normalized.
type statement struct {
	Sid       string
	Effect    string
	Actions   []string
	Resources []string
	Condition any
}

func (s statement) String() string {
	return fmt.Sprintf("{Sid:%q Actions:%v Resources:%v Condition:%s}", s.Sid, s.Actions, s.Resources, render(s.Condition))
}

func normalize(v any) statement {
	m, _ := v.(map[string]any)
	sid, _ := m["Sid"].(string)
	effect, _ := m["Effect"].(string)
	return statement{Sid: sid, Effect: effect, Actions: strs(m["Action"]), Resources: strs(m["Resource"]), Condition: m["Condition"]}
}

// policies returns every identity statement of the template by role
// logical id: AWS::IAM::Policy documents attached to roles, and inline
// policies of roles.
func policies(t *testing.T, tp template) map[string][]statement {
	t.Helper()
	out := map[string][]statement{}
	for _, id := range tp.ofType("AWS::IAM::Policy") {
		r := tp.Resources[id]
		roles := list(r.prop("Roles"))
		if len(roles) != 1 {
			t.Errorf("policy %s is attached to %d roles, want 1", id, len(roles))
		}
		for _, role := range roles {
			rid := strings.TrimSuffix(strings.TrimPrefix(render(role), "${"), "}")
			for _, st := range list(r.prop("PolicyDocument", "Statement")) {
				out[rid] = append(out[rid], normalize(st))
			}
		}
	}
	for _, id := range tp.ofType("AWS::IAM::Role") {
		for _, p := range list(tp.Resources[id].prop("Policies")) {
			doc, _ := p.(map[string]any)["PolicyDocument"].(map[string]any)
			for _, st := range list(doc["Statement"]) {
				out[id] = append(out[id], normalize(st))
			}
		}
	}
	return out
}

func TestIAMNoWildcards(t *testing.T) {
	dev, prod := stacks(t)
	for stage, f := range map[string]*fixture{devStage: dev, prodStage: prod} {
		tp := f.tpl
		if n := len(tp.ofType("AWS::IAM::ManagedPolicy")); n != 0 {
			t.Errorf("%s: %d managed policies, want none", stage, n)
		}
		for _, id := range tp.ofType("AWS::IAM::Role") {
			if mp := tp.Resources[id].prop("ManagedPolicyArns"); mp != nil {
				t.Errorf("%s: role %s has managed policies %v: every permission must be a statement listed here", stage, id, render(mp))
			}
		}
		for role, sts := range policies(t, tp) {
			for _, st := range sts {
				if st.Effect != "Allow" {
					continue
				}
				for _, a := range st.Actions {
					if strings.Contains(a, "*") {
						t.Errorf("%s: role %s: wildcard action %q in %v", stage, role, a, st)
					}
				}
				for _, r := range st.Resources {
					if strings.Contains(r, "*") && !excepted(role, st, r) {
						t.Errorf("%s: role %s: wildcard resource %q in %v is not in wildcardExceptions", stage, role, r, st)
					}
				}
			}
		}
	}
}

// actionsKey is a statement's actions, sorted and joined with commas.
func actionsKey(st statement) string { return strings.Join(sorted(st.Actions...), ",") }

func excepted(role string, st statement, resource string) bool {
	for _, e := range wildcardExceptions {
		if regexp.MustCompile(e.Principal).MatchString(role) && actionsKey(st) == e.Action &&
			regexp.MustCompile(e.Resource).MatchString(resource) {
			return true
		}
	}
	return false
}

// TestWildcardExceptionsUsed keeps the exception list honest: each entry
// is needed by some statement.
func TestWildcardExceptionsUsed(t *testing.T) {
	dev, _ := stacks(t)
	pols := policies(t, dev.tpl)
	for _, e := range wildcardExceptions {
		used := false
		for role, sts := range pols {
			for _, st := range sts {
				for _, r := range st.Resources {
					if strings.Contains(r, "*") && regexp.MustCompile(e.Principal).MatchString(role) &&
						actionsKey(st) == e.Action && regexp.MustCompile(e.Resource).MatchString(r) {
						used = true
					}
				}
			}
		}
		if !used {
			t.Errorf("wildcard exception %+v matches no statement: remove it", e)
		}
	}
}

// TestFunctionPolicies asserts each function role's statements exactly.
func TestFunctionPolicies(t *testing.T) {
	dev, prod := stacks(t)
	for _, c := range []struct {
		f     *fixture
		stage string
	}{{dev, devStage}, {prod, prodStage}} {
		tp := c.f.tpl
		x := resourceIDs(t, c.f)
		pols := policies(t, tp)
		props := c.f.stack.Props
		dispatchArn := fmt.Sprintf(pseudoArn, "lambda", "function:dispatcher-"+c.stage+"-dispatch")
		schedules := fmt.Sprintf(pseudoArn, "scheduler", "schedule/dispatcher-"+c.stage+"/*")
		configSet := props.SESConfigurationSet
		if configSet == "" {
			configSet = "dispatcher-" + c.stage
		}
		// Companies send from the domains they declare (each checked to be a
		// verified identity of the account when declared): every identity.
		identities := fmt.Sprintf(pseudoArn, "ses", "identity/*")
		sesResources := sorted(identities, fmt.Sprintf(pseudoArn, "ses", "configuration-set/"+configSet))
		arn := func(id string) string { return "${" + id + ".Arn}" }
		base := func(fn string) map[string]statement {
			logs := tp.Resources[fn].prop("LoggingConfig", "LogGroup").(map[string]any)["Ref"].(string)
			return map[string]statement{
				"Logs": {Actions: []string{"logs:CreateLogStream", "logs:PutLogEvents"}, Resources: []string{arn(logs)}},
				// No dynamodb:DeleteItem: only the API deletes items.
				"TableItems": {Actions: sorted("dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"), Resources: []string{arn(x.table)}},
				"Tracing":    {Actions: sorted("xray:PutTelemetryRecords", "xray:PutTraceSegments"), Resources: []string{"*"}},
				"TableIndexes": {Actions: []string{"dynamodb:Query"}, Resources: sorted(
					arn(x.table)+"/index/by_company", arn(x.table)+"/index/by_due", arn(x.table)+"/index/by_feed")},
				"QueueSend":         {Actions: []string{"sqs:SendMessage"}, Resources: []string{arn(x.queue)}},
				"CreateSchedule":    {Actions: []string{"scheduler:CreateSchedule"}, Resources: []string{schedules}},
				"PassSchedulerRole": {Actions: []string{"iam:PassRole"}, Resources: []string{arn(x.schedulerRole)}},
			}
		}
		senders := func(m map[string]statement) map[string]statement {
			m["SendEmail"] = statement{Actions: []string{"ses:SendEmail"}, Resources: sesResources}
			m["PublishSMS"] = statement{Actions: []string{"sns:Publish"}, Resources: []string{"*"}}
			m["VoiceSecret"] = statement{Actions: []string{"secretsmanager:GetSecretValue"}, Resources: []string{"${" + x.secret + "}"}}
			return m
		}
		api := base("ApiFunction")
		// The API alone deletes items: sender resources, webhook endpoints,
		// phone-number and sending-domain claims.
		api["TableItems"] = statement{Actions: sorted("dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"), Resources: []string{arn(x.table)}}
		api["VoiceSecret"] = statement{Actions: []string{"secretsmanager:GetSecretValue"}, Resources: []string{"${" + x.secret + "}"}}
		// Cancel and reschedule delete the row's stale schedule, in the group only.
		api["DeleteSchedule"] = statement{Actions: []string{"scheduler:DeleteSchedule"}, Resources: []string{schedules}}
		api["ReadSESIdentities"] = statement{Actions: []string{"ses:GetEmailIdentity"}, Resources: []string{identities}}
		// The events function: the table's items and indexes, and consuming
		// its queue; nothing to send with.
		events := base("EventsFunction")
		for _, k := range []string{"QueueSend", "CreateSchedule", "PassSchedulerRole"} {
			delete(events, k)
		}
		events["(event source)"] = statement{Actions: sorted("sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ReceiveMessage"), Resources: []string{arn(x.eventsQueue)}}
		// Every function that arms webhook fires may send to their queue.
		webhookSend := statement{Actions: []string{"sqs:SendMessage"}, Resources: []string{arn(x.webhookQueue)}}
		for _, m := range []map[string]statement{api} {
			m["WebhookQueueSend"] = webhookSend
		}
		// The webhooks function: the table, its queue (send and consume),
		// schedules, and reading the table's stream; nothing to send
		// communications with, no dispatch queue.
		hooks := base("WebhooksFunction")
		delete(hooks, "QueueSend")
		hooks["WebhookQueueSend"] = webhookSend
		hooks["(event source)"] = statement{Actions: sorted("sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ReceiveMessage"), Resources: []string{arn(x.webhookQueue)}}
		hooks["(stream)"] = statement{Actions: sorted("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"), Resources: []string{"${" + x.table + ".StreamArn}"}}
		hooks["(list streams)"] = statement{Actions: []string{"dynamodb:ListStreams"}, Resources: []string{"*"}}
		hooks["(on-failure destination)"] = statement{Actions: sorted("sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"), Resources: []string{arn(x.fanOutDLQ)}}
		dispatchFn, sweeperFn := senders(base("DispatchFunction")), senders(base("SweeperFunction"))
		dispatchFn["WebhookQueueSend"], sweeperFn["WebhookQueueSend"] = webhookSend, webhookSend
		want := map[string]map[string]statement{
			"ApiFunction":      api,
			"DispatchFunction": dispatchFn,
			"SweeperFunction":  sweeperFn,
			"EventsFunction":   events,
			"WebhooksFunction": hooks,
		}
		// Added by the CDK without a Sid: the SQS event source's consume
		// grant and the async on-failure destination's send grant.
		want["DispatchFunction"]["(event source)"] = statement{Actions: sorted("sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ReceiveMessage"), Resources: []string{arn(x.queue)}}
		want["DispatchFunction"]["(on-failure destination)"] = statement{Actions: sorted("sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"), Resources: []string{arn(x.schedulerDLQ)}}
		// SMS delivery-status batches it failed on are parked on the events DLQ.
		want["EventsFunction"]["(on-failure destination)"] = statement{Actions: sorted("sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"), Resources: []string{arn(x.eventsDLQ)}}

		for fn, wantSts := range want {
			t.Run(c.stage+"/"+fn, func(t *testing.T) {
				role := roleOf(tp.Resources[fn].prop("Role"))
				got := map[string]statement{}
				for _, st := range pols[role] {
					key := st.Sid
					if key == "" {
						switch {
						case contains(st.Actions, "sqs:ReceiveMessage"):
							key = "(event source)"
						case contains(st.Actions, "dynamodb:GetRecords"):
							key = "(stream)"
						case contains(st.Actions, "dynamodb:ListStreams"):
							key = "(list streams)"
						case contains(st.Actions, "sqs:SendMessage"):
							key = "(on-failure destination)"
						default:
							key = fmt.Sprintf("(unexpected %v)", st.Actions)
						}
					}
					if _, dup := got[key]; dup {
						t.Errorf("two statements %q", key)
					}
					got[key] = st
				}
				for key, w := range wantSts {
					g, ok := got[key]
					if !ok {
						t.Errorf("missing statement %s %v", key, w)
						continue
					}
					w.Sid = g.Sid
					if !jsonEqual(g.Actions, w.Actions) || !jsonEqual(g.Resources, w.Resources) {
						t.Errorf("statement %s\n got %v\nwant %v", key, g, w)
					}
					if key == "PassSchedulerRole" && !jsonEqual(g.Condition, map[string]any{"StringEquals": map[string]any{"iam:PassedToService": "scheduler.amazonaws.com"}}) {
						t.Errorf("iam:PassRole condition = %s, want iam:PassedToService scheduler.amazonaws.com", render(g.Condition))
					}
				}
				for key, g := range got {
					if _, ok := wantSts[key]; !ok {
						t.Errorf("unexpected statement %s %v", key, g)
					}
				}
			})
		}

		t.Run(c.stage+"/PassRole only for the scheduler role and the SMS delivery-status role", func(t *testing.T) {
			for role, sts := range pols {
				for _, st := range sts {
					if !contains(st.Actions, "iam:PassRole") {
						continue
					}
					ok := jsonEqual(st.Resources, []string{arn(x.schedulerRole)})
					if role == x.providerRole {
						ok = jsonEqual(st.Resources, []string{arn(x.smsRole)})
					}
					if !ok {
						t.Errorf("role %s may pass %v", role, st.Resources)
					}
				}
			}
		})

		t.Run(c.stage+"/events function: least privilege", func(t *testing.T) {
			role := roleOf(tp.Resources["EventsFunction"].prop("Role"))
			var actions []string
			for _, st := range pols[role] {
				actions = append(actions, st.Actions...)
			}
			for _, a := range actions {
				if strings.HasPrefix(a, "ses:") || strings.HasPrefix(a, "sns:") || strings.HasPrefix(a, "scheduler:") ||
					strings.HasPrefix(a, "secretsmanager:") || strings.HasPrefix(a, "iam:") {
					t.Errorf("events function may %s", a)
				}
			}
			for _, st := range pols[role] {
				if contains(st.Actions, "sqs:SendMessage") && !jsonEqual(st.Resources, []string{arn(x.eventsDLQ)}) {
					t.Errorf("events function may send to %v (only its DLQ, the on-failure destination)", st.Resources)
				}
			}
			for _, a := range []string{"dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:PutItem", "sqs:ReceiveMessage", "sqs:DeleteMessage"} {
				if !contains(actions, a) {
					t.Errorf("events function may not %s (has %v)", a, actions)
				}
			}
		})

		t.Run(c.stage+"/scheduler role invokes dispatch only", func(t *testing.T) {
			wantTrust := map[string]any{"StringEquals": map[string]any{
				"aws:SourceAccount": ref("AWS::AccountId"),
				"aws:SourceArn":     getAtt(x.group, "Arn"),
			}}
			checkSchedulerRole(t, tp, x.schedulerRole, wantTrust, []statement{
				{Sid: "DeadLetter", Actions: []string{"sqs:SendMessage"}, Resources: []string{arn(x.schedulerDLQ)}},
				{Sid: "InvokeDispatch", Actions: []string{"lambda:InvokeFunction"}, Resources: []string{dispatchArn}},
			}, pols)
		})
		t.Run(c.stage+"/sweep schedule role invokes sweeper only", func(t *testing.T) {
			wantTrust := map[string]any{"StringEquals": map[string]any{
				"aws:SourceAccount": ref("AWS::AccountId"),
				"aws:SourceArn":     getAtt(x.sweepGroup, "Arn"),
			}}
			checkSchedulerRole(t, tp, x.sweepRole, wantTrust, []statement{
				{Sid: "DeadLetter", Actions: []string{"sqs:SendMessage"}, Resources: []string{arn(x.schedulerDLQ)}},
				{Sid: "InvokeTarget", Actions: []string{"lambda:InvokeFunction"}, Resources: []string{arn("SweeperFunction")}},
			}, pols)
		})
	}
}

func checkSchedulerRole(t *testing.T, tp template, role string, wantTrust map[string]any, want []statement, pols map[string][]statement) {
	t.Helper()
	trust := list(tp.Resources[role].prop("AssumeRolePolicyDocument", "Statement"))
	if len(trust) != 1 {
		t.Fatalf("role %s: %d trust statements, want 1", role, len(trust))
	}
	st := trust[0].(map[string]any)
	if !jsonEqual(st["Principal"], map[string]any{"Service": "scheduler.amazonaws.com"}) || st["Action"] != "sts:AssumeRole" {
		t.Errorf("role %s trust = %s", role, pretty(st))
	}
	cond := st["Condition"].(map[string]any)
	eq := cond["StringEquals"].(map[string]any)
	eq["aws:SourceArn"] = renderIfJoin(eq["aws:SourceArn"])
	if !jsonEqual(cond, wantTrust) {
		t.Errorf("role %s trust condition\n got %s\nwant %s", role, pretty(cond), pretty(wantTrust))
	}
	got := append([]statement(nil), pols[role]...)
	sort.Slice(got, func(i, j int) bool { return got[i].Sid < got[j].Sid })
	for i := range got {
		got[i].Effect, got[i].Condition = "", nil
	}
	if !jsonEqual(got, want) {
		t.Errorf("role %s statements\n got %v\nwant %v", role, got, want)
	}
}

func renderIfJoin(v any) any {
	if m, ok := v.(map[string]any); ok && m["Fn::Join"] != nil {
		return render(v)
	}
	return v
}

func sorted(s ...string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
