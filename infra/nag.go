package infra

import (
	"regexp"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// AddNagChecks adds the cdk-nag AwsSolutions rule pack to scope (an app or
// a stack): synthesis then reports each unsuppressed finding as an error or
// warning annotation, and `cdk synth` fails on an error.
func AddNagChecks(scope constructs.IConstruct) {
	awscdk.Aspects_Of(scope).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
}

// Reasons of the cdk-nag suppressions. Each suppression is as narrow as the
// rule allows: one resource, and for IAM5 one wildcard string.
const (
	ReasonScheduleWildcard = "Schedules are created at run time, one per fire, named from the row id and token, so " +
		"scheduler:CreateSchedule (and the API's scheduler:DeleteSchedule of a cancelled or rescheduled row's schedule) can " +
		"only be scoped to the schedules of this stack's group (schedule/<group>/*), which holds nothing else."
	ReasonTracingWildcard = "X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords have no resource-level " +
		"permissions, AWS requires Resource \"*\" (the statement of the AWSXRayDaemonWriteAccess managed policy, without its " +
		"sampling-rule reads, which Lambda does itself)."
	ReasonSMSWildcard = "sns:Publish straight to a phone number (SMS) has no resource ARN: AWS requires Resource \"*\". " +
		"The statement allows sns:Publish only, and the functions publish to no topic."
	ReasonSESIdentityWildcard = "Companies send from the domains they declare in their settings at run time; the API " +
		"checks each is a verified SES identity of this account (ses:GetEmailIdentity) when it is declared, and the " +
		"senders may use only identities of this account and region (identity/*), with this stack's configuration set."
	ReasonAPIAuthorization = "Every route authenticates in the api function: Bearer API keys (stored as SHA-256 hashes, " +
		"scoped per company) and HMAC-signed voice-provider webhooks; /healthz and /v1/openapi.json are public on purpose. " +
		"An API Gateway authorizer would repeat the key lookup on every request."
	ReasonSecretRotation = "The voice provider issues the API key (which also signs its webhooks): it is rotated in the " +
		"provider's dashboard and then written here with put-secret-value; no rotation Lambda can create one. The functions " +
		"read the secret lazily and cache it for 5 minutes, so a rotated key is picked up without a deployment."
	ReasonSchedulerDLQ = "This queue is a dead-letter queue itself: the DeadLetterConfig of the EventBridge Scheduler " +
		"targets and the on-failure destination of the dispatch function's async invokes (the rule only recognises " +
		"redrive policies). It is alarmed when not empty."
	ReasonFeedbackTargetDLQ = "This queue is a dead-letter queue itself: the DeadLetterConfig of the EventBridge rule's " +
		"target (SES events EventBridge could not put on the events queue); the rule only recognises redrive policies. " +
		"It is alarmed when not empty."
	ReasonStreamListWildcard = "dynamodb:ListStreams has no resource ARN: AWS requires Resource \"*\" (the CDK's DynamoDB " +
		"stream event source grants it with the stream's own read actions, which are scoped to this table's stream)."
	ReasonWebhookFanOutDLQ = "This queue is a dead-letter queue itself: the on-failure destination of the webhooks " +
		"function's DynamoDB stream event source (records whose fan-out could not be armed within the stream's 24 hours); " +
		"the rule only recognises redrive policies. It is alarmed when not empty."
	ReasonSetSMSAttributesWildcard = "sns:SetSMSAttributes changes an account setting and has no resource ARN: AWS requires " +
		"Resource \"*\". The statement allows that action only, for the custom resource that points SMS delivery-status " +
		"logging at this stack's role."
)

func suppress(c constructs.IConstruct, children bool, id, reason string, appliesTo ...interface{}) {
	s := &cdknag.NagPackSuppression{Id: jsii.String(id), Reason: jsii.String(reason)}
	if len(appliesTo) > 0 {
		s.AppliesTo = &appliesTo
	}
	cdknag.NagSuppressions_AddResourceSuppressions(c, &[]*cdknag.NagPackSuppression{s}, jsii.Bool(children))
}

func addNagSuppressions(s *DispatcherStack) {
	// The partition, region and account are literals or pseudo parameters
	// (<AWS::Region>) depending on the stack's env.
	part := `(<AWS::[A-Za-z]+>|[^:<>]+)`
	schedules := &cdknag.RegexAppliesTo{Regex: jsii.String(
		`/^Resource::arn:` + part + `:scheduler:` + part + `:` + part + `:schedule\/` + regexp.QuoteMeta(s.Scheduling.GroupName) + `\/\*$/`)}
	identities := &cdknag.RegexAppliesTo{Regex: jsii.String(
		`/^Resource::arn:` + part + `:ses:` + part + `:` + part + `:identity\/\*$/`)}
	for _, fn := range FunctionNames {
		a := functionAccess[fn]
		role := s.Functions[fn].Role
		suppress(role, true, "AwsSolutions-IAM5", ReasonTracingWildcard, "Resource::*")
		if a.schedules || a.deleteSchedules {
			suppress(role, true, "AwsSolutions-IAM5", ReasonScheduleWildcard, schedules)
		}
		if a.sms {
			suppress(role, true, "AwsSolutions-IAM5", ReasonSMSWildcard, "Resource::*")
		}
		if a.email || a.identities {
			suppress(role, true, "AwsSolutions-IAM5", ReasonSESIdentityWildcard, identities)
		}
	}
	suppress(s.API.API, true, "AwsSolutions-APIG4", ReasonAPIAuthorization)
	suppress(s.VoiceSecret, false, "AwsSolutions-SMG4", ReasonSecretRotation)
	suppress(s.Scheduling.DLQ, false, "AwsSolutions-SQS3", ReasonSchedulerDLQ)
	suppress(s.Feedback.TargetDLQ, false, "AwsSolutions-SQS3", ReasonFeedbackTargetDLQ)
	suppress(s.WebhookFanOutDLQ, false, "AwsSolutions-SQS3", ReasonWebhookFanOutDLQ)
	suppress(s.Functions[FnWebhooks].Role, true, "AwsSolutions-IAM5", ReasonStreamListWildcard, "Resource::*")
	suppress(s.SMSDeliveryStatus.Setting, true, "AwsSolutions-IAM5", ReasonSetSMSAttributesWildcard, "Resource::*")
}
