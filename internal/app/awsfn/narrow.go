package awsfn

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/dispatcherhq/dispatcher/internal/channel/ses"
	snssender "github.com/dispatcherhq/dispatcher/internal/channel/sns"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
	awstimer "github.com/dispatcherhq/dispatcher/internal/timer/aws"
)

// The adapters take the SDK clients through these narrow wrappers, never
// as the *Client itself: a *Client stored in an interface keeps every
// exported method of it in the binary whenever anything linked calls
// reflect's Method by a computed name (google.golang.org/protobuf does,
// under libphonenumber in the api function) — for SES v2 alone ~600 KB of
// operations the product never calls. A wrapper has only the methods the
// adapter's interface names, and holds them as method values, not the
// client (a struct in an interface marks its fields' types as well), so the
// linker keeps those operations alone.

// DynamoDB is the part of c the store uses (dynamo.API).
func DynamoDB(c *dynamodb.Client) dynamo.API {
	return ddbOps{getItem: c.GetItem, batchGetItem: c.BatchGetItem, putItem: c.PutItem, updateItem: c.UpdateItem, deleteItem: c.DeleteItem, query: c.Query, transactWriteItems: c.TransactWriteItems}
}

type ddbOps struct {
	getItem            func(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	batchGetItem       func(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	putItem            func(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	updateItem         func(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	deleteItem         func(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	query              func(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	transactWriteItems func(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

func (d ddbOps) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return d.getItem(ctx, in, o...)
}

func (d ddbOps) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	return d.batchGetItem(ctx, in, o...)
}

func (d ddbOps) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return d.putItem(ctx, in, o...)
}

func (d ddbOps) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return d.updateItem(ctx, in, o...)
}

func (d ddbOps) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return d.deleteItem(ctx, in, o...)
}

func (d ddbOps) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return d.query(ctx, in, o...)
}

func (d ddbOps) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	return d.transactWriteItems(ctx, in, o...)
}

// SQS is the part of c the timer uses (awstimer.SQSAPI).
func SQS(c *sqs.Client) awstimer.SQSAPI {
	return sqsOps{sendMessage: c.SendMessage}
}

type sqsOps struct {
	sendMessage func(context.Context, *sqs.SendMessageInput, ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

func (s sqsOps) SendMessage(ctx context.Context, in *sqs.SendMessageInput, o ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	return s.sendMessage(ctx, in, o...)
}

// Scheduler is the part of c the timer uses (awstimer.SchedulerAPI).
func Scheduler(c *scheduler.Client) awstimer.SchedulerAPI {
	return schedulerOps{createSchedule: c.CreateSchedule, deleteSchedule: c.DeleteSchedule}
}

type schedulerOps struct {
	createSchedule func(context.Context, *scheduler.CreateScheduleInput, ...func(*scheduler.Options)) (*scheduler.CreateScheduleOutput, error)
	deleteSchedule func(context.Context, *scheduler.DeleteScheduleInput, ...func(*scheduler.Options)) (*scheduler.DeleteScheduleOutput, error)
}

func (s schedulerOps) CreateSchedule(ctx context.Context, in *scheduler.CreateScheduleInput, o ...func(*scheduler.Options)) (*scheduler.CreateScheduleOutput, error) {
	return s.createSchedule(ctx, in, o...)
}

func (s schedulerOps) DeleteSchedule(ctx context.Context, in *scheduler.DeleteScheduleInput, o ...func(*scheduler.Options)) (*scheduler.DeleteScheduleOutput, error) {
	return s.deleteSchedule(ctx, in, o...)
}

// SESSend is the part of c the email sender uses (ses.API).
func SESSend(c *sesv2.Client) ses.API {
	return sesSend{sendEmail: c.SendEmail}
}

type sesSend struct {
	sendEmail func(context.Context, *sesv2.SendEmailInput, ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error)
}

func (s sesSend) SendEmail(ctx context.Context, in *sesv2.SendEmailInput, o ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error) {
	return s.sendEmail(ctx, in, o...)
}

// SESIdentities is the part of c the sending-domain check uses (ses.IdentityAPI).
func SESIdentities(c *sesv2.Client) ses.IdentityAPI {
	return sesIdentities{getEmailIdentity: c.GetEmailIdentity}
}

type sesIdentities struct {
	getEmailIdentity func(context.Context, *sesv2.GetEmailIdentityInput, ...func(*sesv2.Options)) (*sesv2.GetEmailIdentityOutput, error)
}

func (s sesIdentities) GetEmailIdentity(ctx context.Context, in *sesv2.GetEmailIdentityInput, o ...func(*sesv2.Options)) (*sesv2.GetEmailIdentityOutput, error) {
	return s.getEmailIdentity(ctx, in, o...)
}

// SNS is the part of c the SMS sender uses (sns.API).
func SNS(c *sns.Client) snssender.API {
	return snsOps{publish: c.Publish}
}

type snsOps struct {
	publish func(context.Context, *sns.PublishInput, ...func(*sns.Options)) (*sns.PublishOutput, error)
}

func (s snsOps) Publish(ctx context.Context, in *sns.PublishInput, o ...func(*sns.Options)) (*sns.PublishOutput, error) {
	return s.publish(ctx, in, o...)
}

// Secrets is the part of c the voice secret uses (SecretsAPI).
func Secrets(c *secretsmanager.Client) SecretsAPI {
	return secretsOps{getSecretValue: c.GetSecretValue}
}

type secretsOps struct {
	getSecretValue func(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

func (s secretsOps) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, o ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	return s.getSecretValue(ctx, in, o...)
}
