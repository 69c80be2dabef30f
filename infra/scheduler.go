package infra

import (
	"fmt"
	"regexp"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsscheduler"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// SchedulerPrincipal is the service that assumes the schedules' roles.
const SchedulerPrincipal = "scheduler.amazonaws.com"

var scheduleNameRe = regexp.MustCompile(`^[0-9A-Za-z_.-]{1,64}$`)

// SchedulingProps configures Scheduling.
type SchedulingProps struct {
	// GroupName names the schedule group of the per-row one-time schedules
	// (1–64 of [0-9a-zA-Z-_.]). Required.
	GroupName string
	// TargetFunctionArn is the ARN of the only function the schedules may
	// invoke: the dispatch function. Required.
	TargetFunctionArn *string
	// Retain keeps the group (and its pending schedules) when the stack is
	// deleted.
	Retain bool
}

// Scheduling holds what the functions need to create one-time EventBridge
// Scheduler schedules: the group they live in, the role Scheduler assumes to
// invoke the dispatch function, and the standard SQS queue that receives
// the invocations Scheduler could not deliver.
type Scheduling struct {
	// Construct is the scope holding the resources.
	Construct constructs.Construct
	// Group is the schedule group.
	Group awsscheduler.ScheduleGroup
	// GroupName is the group's name.
	GroupName string
	// Role is the role Scheduler assumes: it may invoke only the target
	// function and send only to DLQ.
	Role awsiam.Role
	// DLQ receives undeliverable invocations (Scheduler's dead-letter
	// queue, also the dispatch function's asynchronous on-failure
	// destination).
	DLQ awssqs.Queue
}

// NewScheduling creates the group, the role and the DLQ.
func NewScheduling(scope constructs.Construct, id string, props *SchedulingProps) (*Scheduling, error) {
	if props == nil {
		return nil, fmt.Errorf("infra.NewScheduling: props are required")
	}
	if !scheduleNameRe.MatchString(props.GroupName) {
		return nil, fmt.Errorf("infra.NewScheduling: GroupName %q: want 1-64 of [0-9a-zA-Z-_.]", props.GroupName)
	}
	if props.TargetFunctionArn == nil {
		return nil, fmt.Errorf("infra.NewScheduling: TargetFunctionArn is required")
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	removal := awscdk.RemovalPolicy_DESTROY
	if props.Retain {
		removal = awscdk.RemovalPolicy_RETAIN
	}
	group := awsscheduler.NewScheduleGroup(c, jsii.String("Group"), &awsscheduler.ScheduleGroupProps{
		ScheduleGroupName: jsii.String(props.GroupName),
		RemovalPolicy:     removal,
	})
	dlq := awssqs.NewQueue(c, jsii.String("DLQ"), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
	})
	role := awsiam.NewRole(c, jsii.String("Role"), &awsiam.RoleProps{
		Description: jsii.String("Assumed by EventBridge Scheduler for the schedules of group " + props.GroupName + ": invokes the dispatch function only."),
		AssumedBy:   schedulerPrincipal(c, group.ScheduleGroupArn()),
	})
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("InvokeDispatch"),
		Actions:   jsii.Strings("lambda:InvokeFunction"),
		Resources: &[]*string{props.TargetFunctionArn},
	}))
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("DeadLetter"),
		Actions:   jsii.Strings("sqs:SendMessage"),
		Resources: &[]*string{dlq.QueueArn()},
	}))
	return &Scheduling{Construct: c, Group: group, GroupName: props.GroupName, Role: role, DLQ: dlq}, nil
}

// schedulerPrincipal is Scheduler, acting for schedules of groupArn in this
// account only (the confused-deputy conditions AWS documents).
func schedulerPrincipal(scope constructs.Construct, groupArn *string) awsiam.IPrincipal {
	return awsiam.NewPrincipalWithConditions(awsiam.NewServicePrincipal(jsii.String(SchedulerPrincipal), nil), &map[string]interface{}{
		"StringEquals": map[string]interface{}{
			"aws:SourceAccount": awscdk.Stack_Of(scope).Account(),
			"aws:SourceArn":     groupArn,
		},
	})
}

// SchedulesArn is the ARN pattern of the schedules in the group.
func (s *Scheduling) SchedulesArn() *string {
	return awscdk.Stack_Of(s.Construct).FormatArn(&awscdk.ArnComponents{
		Service:      jsii.String("scheduler"),
		Resource:     jsii.String("schedule"),
		ResourceName: jsii.String(s.GroupName + "/*"),
		ArnFormat:    awscdk.ArnFormat_SLASH_RESOURCE_NAME,
	})
}

// GrantCreateSchedule lets grantee create schedules in the group (and
// nowhere else) and pass the Scheduler role, to Scheduler only.
func (s *Scheduling) GrantCreateSchedule(grantee awsiam.IGrantable) {
	p := grantee.GrantPrincipal()
	p.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("CreateSchedule"),
		Actions:   jsii.Strings("scheduler:CreateSchedule"),
		Resources: &[]*string{s.SchedulesArn()},
	}))
	p.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("PassSchedulerRole"),
		Actions:   jsii.Strings("iam:PassRole"),
		Resources: &[]*string{s.Role.RoleArn()},
		Conditions: &map[string]interface{}{
			"StringEquals": map[string]interface{}{"iam:PassedToService": SchedulerPrincipal},
		},
	}))
}

// GrantDeleteSchedule lets grantee delete schedules of the group (and
// nowhere else): the API deletes the schedule of a row it cancels or
// reschedules, best-effort.
func (s *Scheduling) GrantDeleteSchedule(grantee awsiam.IGrantable) {
	grantee.GrantPrincipal().AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("DeleteSchedule"),
		Actions:   jsii.Strings("scheduler:DeleteSchedule"),
		Resources: &[]*string{s.SchedulesArn()},
	}))
}

// MinuteScheduleProps configures a MinuteSchedule.
type MinuteScheduleProps struct {
	// GroupName names the schedule group the recurring schedule lives in,
	// created with it (1–64 of [0-9a-zA-Z-_.]): the stage's own, never the
	// account's "default" group every stage would share. Required.
	GroupName string
	// TargetFunctionArn is the function invoked every minute. Required.
	TargetFunctionArn *string
	// DLQ receives the invocations Scheduler could not deliver. Required.
	DLQ awssqs.IQueue
	// Retain keeps the group when the stack is deleted (stage prod, like
	// every stateful resource).
	Retain bool
}

// MinuteSchedule invokes one function every minute with EventBridge
// Scheduler (`rate(1 minute)`, no flexible window, no retries: the next
// minute's run is the retry), in a schedule group of its own, with a role
// that may invoke only that function and that Scheduler may assume only
// for that group.
//
// Scheduler rather than an EventBridge rule: the stack already depends on
// Scheduler for every fire, so one service, one invocation model (a role
// scoped to one function ARN, with the confused-deputy conditions, instead
// of a resource policy on the function) and one DLQ cover both; the target
// gets an explicit retry policy and dead-letter queue; and no rule is spent
// on the default event bus (a per-Region quota shared by the account).
//
// Its own group rather than the per-row schedules' group: the functions
// that create and delete row schedules may do so in that group only, so
// they can never touch the sweeper's schedule, and the role's trust names
// this group alone (not "default", which every stage and every other
// application in the account shares).
type MinuteSchedule struct {
	// Construct is the scope holding the resources.
	Construct constructs.Construct
	// Group is the schedule's group.
	Group awsscheduler.ScheduleGroup
	// Schedule is the recurring schedule.
	Schedule awsscheduler.CfnSchedule
	// Role is the role Scheduler assumes for it.
	Role awsiam.Role
}

// SweepScheduleExpression is the sweeper's schedule.
const SweepScheduleExpression = "rate(1 minute)"

// NewMinuteSchedule creates the group, the schedule and its role.
func NewMinuteSchedule(scope constructs.Construct, id string, props *MinuteScheduleProps) (*MinuteSchedule, error) {
	if props == nil || props.TargetFunctionArn == nil || props.DLQ == nil {
		return nil, fmt.Errorf("infra.NewMinuteSchedule: TargetFunctionArn and DLQ are required")
	}
	if !scheduleNameRe.MatchString(props.GroupName) {
		return nil, fmt.Errorf("infra.NewMinuteSchedule: GroupName %q: want 1-64 of [0-9a-zA-Z-_.]", props.GroupName)
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	removal := awscdk.RemovalPolicy_DESTROY
	if props.Retain {
		removal = awscdk.RemovalPolicy_RETAIN
	}
	group := awsscheduler.NewScheduleGroup(c, jsii.String("Group"), &awsscheduler.ScheduleGroupProps{
		ScheduleGroupName: jsii.String(props.GroupName),
		RemovalPolicy:     removal,
	})
	role := awsiam.NewRole(c, jsii.String("Role"), &awsiam.RoleProps{
		Description: jsii.String("Assumed by EventBridge Scheduler for the every-minute sweeper schedule (group " + props.GroupName + ")."),
		AssumedBy:   schedulerPrincipal(c, group.ScheduleGroupArn()),
	})
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("InvokeTarget"),
		Actions:   jsii.Strings("lambda:InvokeFunction"),
		Resources: &[]*string{props.TargetFunctionArn},
	}))
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("DeadLetter"),
		Actions:   jsii.Strings("sqs:SendMessage"),
		Resources: &[]*string{props.DLQ.QueueArn()},
	}))
	sched := awsscheduler.NewCfnSchedule(c, jsii.String("Schedule"), &awsscheduler.CfnScheduleProps{
		Description:        jsii.String("Runs the sweeper every minute: re-fires lost fires, settles expired leases and voice outcome timeouts."),
		GroupName:          group.ScheduleGroupName(),
		ScheduleExpression: jsii.String(SweepScheduleExpression),
		FlexibleTimeWindow: &awsscheduler.CfnSchedule_FlexibleTimeWindowProperty{Mode: jsii.String("OFF")},
		State:              jsii.String("ENABLED"),
		Target: &awsscheduler.CfnSchedule_TargetProperty{
			Arn:     props.TargetFunctionArn,
			RoleArn: role.RoleArn(),
			Input:   jsii.String("{}"),
			RetryPolicy: &awsscheduler.CfnSchedule_RetryPolicyProperty{
				MaximumRetryAttempts:     jsii.Number(0),
				MaximumEventAgeInSeconds: jsii.Number(60),
			},
			DeadLetterConfig: &awsscheduler.CfnSchedule_DeadLetterConfigProperty{Arn: props.DLQ.QueueArn()},
		},
	})
	// The role's policy must exist before Scheduler first invokes the
	// target (the GetAtt of RoleArn already orders the role itself).
	if policy := role.Node().TryFindChild(jsii.String("DefaultPolicy")); policy != nil {
		sched.Node().AddDependency(policy)
	}
	// The group's name is a literal in the schedule: order them explicitly.
	sched.Node().AddDependency(group)
	return &MinuteSchedule{Construct: c, Group: group, Schedule: sched, Role: role}, nil
}
