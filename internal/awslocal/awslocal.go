// Package awslocal runs Dispatcher's AWS wiring as one local process, which
// is what `dispatcher serve --backend aws` does against an emulator (moto,
// LocalStack) or an AWS account: it plays the parts of the deployment that
// are not our code. CreateResources makes what the CDK stack makes (the
// table, the queues, the Scheduler DLQ, the schedule group, a sender
// identity), and a Runner
// does what Lambda and EventBridge do around the functions: it consumes the
// dispatch queue as the SQS event source mapping would, runs the sweeper on
// a schedule and — against an emulator, which never fires schedules — fires
// due Scheduler schedules itself by reading them back.
//
// AWS errors are matched by type (errors.As on the SDK's exceptions), never
// by their text.
package awslocal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/config"
	"github.com/dispatcherhq/dispatcher/internal/emulator"
	"github.com/dispatcherhq/dispatcher/internal/lambdafn"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
)

// QueueAPI is the part of the SQS client CreateResources uses.
type QueueAPI interface {
	CreateQueue(ctx context.Context, in *sqs.CreateQueueInput, optFns ...func(*sqs.Options)) (*sqs.CreateQueueOutput, error)
}

// ScheduleGroupAPI is the part of the Scheduler client CreateResources uses.
type ScheduleGroupAPI interface {
	GetScheduleGroup(ctx context.Context, in *scheduler.GetScheduleGroupInput, optFns ...func(*scheduler.Options)) (*scheduler.GetScheduleGroupOutput, error)
	CreateScheduleGroup(ctx context.Context, in *scheduler.CreateScheduleGroupInput, optFns ...func(*scheduler.Options)) (*scheduler.CreateScheduleGroupOutput, error)
}

// IdentityAPI is the part of the SES v2 client CreateResources uses.
type IdentityAPI interface {
	CreateEmailIdentity(ctx context.Context, in *sesv2.CreateEmailIdentityInput, optFns ...func(*sesv2.Options)) (*sesv2.CreateEmailIdentityOutput, error)
}

// Clients are the clients CreateResources uses; the fields of app.Clients
// implement them (see ClientsOf).
type Clients struct {
	DynamoDB  dynamo.TableAPI
	SQS       QueueAPI
	Scheduler ScheduleGroupAPI
	SES       IdentityAPI
}

// ClientsOf returns the resource clients of the product's clients.
func ClientsOf(c app.Clients) Clients {
	return Clients{DynamoDB: c.DynamoDB, SQS: c.SQS, Scheduler: c.Scheduler, SES: c.SES}
}

var (
	_ QueueAPI         = (*sqs.Client)(nil)
	_ ScheduleGroupAPI = (*scheduler.Client)(nil)
	_ IdentityAPI      = (*sesv2.Client)(nil)
)

// CreateResources makes, on an emulator, what the CDK stack makes on AWS:
// the table (dynamo.CreateTable: the Store's schema, TTL on), the queues
// named by the last path segment of c.QueueURL and c.WebhookQueueURL, the
// Scheduler dead-letter queue named by the last field of c.SchedulerDLQARN
// (so `dispatcher dlq inspect` has the queue to read on the emulator too),
// the schedule group and, when c.DefaultFromEmail is set, that sender
// identity (an emulator's SES, like AWS's, sends only from a verified one).
// A resource that already exists is accepted — the table only with the
// Store's schema — so it can run at every start.
func CreateResources(ctx context.Context, cl Clients, c config.AWS) error {
	if err := dynamo.CreateTable(ctx, cl.DynamoDB, c.TableName); err != nil {
		return fmt.Errorf("awslocal.CreateResources: table: %w", err)
	}
	urls := map[string]string{config.EnvQueueURL: c.QueueURL}
	if c.WebhookQueueURL != "" {
		urls[config.EnvWebhookQueueURL] = c.WebhookQueueURL
	}
	var names []string
	for env, q := range urls {
		u, err := url.Parse(q)
		if err != nil || path.Base(u.Path) == "." || path.Base(u.Path) == "/" {
			return fmt.Errorf("awslocal.CreateResources: %s %q names no queue", env, q)
		}
		names = append(names, path.Base(u.Path))
	}
	if c.SchedulerDLQARN != "" {
		name, err := SchedulerDLQName(c)
		if err != nil {
			return fmt.Errorf("awslocal.CreateResources: %w", err)
		}
		names = append(names, name)
	}
	for _, name := range names {
		_, err := cl.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
		// CreateQueue of an existing queue with the same attributes returns
		// it; with other attributes it is QueueNameExists: there it is.
		var nameExists *sqstypes.QueueNameExists
		if err != nil && !errors.As(err, &nameExists) {
			return fmt.Errorf("awslocal.CreateResources: sqs.CreateQueue %s: %w", name, err)
		}
	}
	if err := createScheduleGroup(ctx, cl.Scheduler, c.ScheduleGroup); err != nil {
		return err
	}
	if c.DefaultFromEmail != "" {
		_, err := cl.SES.CreateEmailIdentity(ctx, &sesv2.CreateEmailIdentityInput{EmailIdentity: aws.String(c.DefaultFromEmail)})
		var exists *sestypes.AlreadyExistsException
		if err != nil && !errors.As(err, &exists) {
			return fmt.Errorf("awslocal.CreateResources: sesv2.CreateEmailIdentity: %w", err)
		}
	}
	return nil
}

// SchedulerDLQName is the name of the queue c.SchedulerDLQARN names (an SQS
// queue ARN, arn:aws:sqs:<region>:<account>:<name>); an error names the
// variable when the ARN is not one.
func SchedulerDLQName(c config.AWS) (string, error) {
	f := strings.Split(c.SchedulerDLQARN, ":")
	if len(f) != 6 || f[0] != "arn" || f[2] != "sqs" || f[5] == "" {
		return "", fmt.Errorf("%s %q is not an SQS queue ARN", config.EnvSchedulerDLQARN, c.SchedulerDLQARN)
	}
	return f[5], nil
}

// createScheduleGroup creates the group unless GetScheduleGroup finds it.
// Only ResourceNotFoundException means "absent": any other error (access
// denied, throttling) is returned rather than answered with a create.
func createScheduleGroup(ctx context.Context, api ScheduleGroupAPI, name string) error {
	_, err := api.GetScheduleGroup(ctx, &scheduler.GetScheduleGroupInput{Name: aws.String(name)})
	var notFound *schtypes.ResourceNotFoundException
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &notFound):
		return fmt.Errorf("awslocal.CreateResources: scheduler.GetScheduleGroup: %w", err)
	}
	_, err = api.CreateScheduleGroup(ctx, &scheduler.CreateScheduleGroupInput{Name: aws.String(name)})
	var conflict *schtypes.ConflictException
	if err != nil && !errors.As(err, &conflict) { // Conflict: created meanwhile
		return fmt.Errorf("awslocal.CreateResources: scheduler.CreateScheduleGroup: %w", err)
	}
	return nil
}

// Defaults of Options.
const (
	// DefaultSweepEvery is how often the sweeper runs: every minute, as the
	// stack's schedule runs the sweeper function.
	DefaultSweepEvery = time.Minute
	// DefaultFireEvery is how often due schedules are fired.
	DefaultFireEvery = time.Second
	// DefaultPollWait is how long one pass of the SQS consumer waits for
	// the queue to yield something (long polls of at most 20 s each).
	DefaultPollWait = 20 * time.Second
	// DefaultErrorPause is how long the consumer pauses after a failed pass
	// before it polls again.
	DefaultErrorPause = time.Second
)

// Options configures a Runner. Zero values take the defaults.
type Options struct {
	// SweepEvery is how often the sweeper runs.
	SweepEvery time.Duration
	// Schedules, when set, are fired by the Runner when due: set it against
	// an emulator (which never fires schedules), leave it nil against AWS
	// (which does).
	Schedules *emulator.Schedules
	// FireEvery is how often due schedules are fired.
	FireEvery time.Duration
	// Now is the clock schedules are fired by; default time.Now.
	Now func() time.Time
	// PollWait is how long one pass of the SQS consumer waits for messages.
	PollWait time.Duration
	// ErrorPause is the pause after a failed consumer pass.
	ErrorPause time.Duration
	// Stream, when set, is the table's stream, read every StreamEvery into
	// the webhooks handler as the stream event source mapping does (the
	// app must have a webhook queue).
	Stream *emulator.Stream
	// StreamEvery is how often the stream is read; default 1 s.
	StreamEvery time.Duration
}

// Runner does, in this process, what Lambda and EventBridge do around the
// functions of a deployment.
type Runner struct {
	app  *app.AWS
	log  *slog.Logger
	opts Options
}

// New returns a Runner of a, applying Options' defaults.
func New(a *app.AWS, log *slog.Logger, opts Options) *Runner {
	if opts.SweepEvery <= 0 {
		opts.SweepEvery = DefaultSweepEvery
	}
	if opts.FireEvery <= 0 {
		opts.FireEvery = DefaultFireEvery
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PollWait <= 0 {
		opts.PollWait = DefaultPollWait
	}
	if opts.ErrorPause <= 0 {
		opts.ErrorPause = DefaultErrorPause
	}
	if opts.StreamEvery <= 0 {
		opts.StreamEvery = time.Second
	}
	return &Runner{app: a, log: log, opts: opts}
}

// Run consumes the dispatch queue, fires due schedules (when
// Options.Schedules is set), reads the table's stream and consumes the
// webhook queue (when Options.Stream is set) and sweeps until ctx ends;
// then it waits for the loops to finish and returns nil. Failures inside a loop are
// logged and the loop goes on, as Lambda would invoke again.
func (r *Runner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { r.consume(ctx, r.app.Config.QueueURL) })
	if r.opts.Stream != nil && r.app.Config.WebhookQueueURL != "" {
		wg.Go(func() { r.consume(ctx, r.app.Config.WebhookQueueURL) })
		wg.Go(func() { every(ctx, r.opts.StreamEvery, r.readStream) })
	}
	if r.opts.Schedules != nil {
		wg.Go(func() { every(ctx, r.opts.FireEvery, r.fireDue) })
	}
	wg.Go(func() { every(ctx, r.opts.SweepEvery, r.sweep) })
	wg.Wait()
	return nil
}

// consume delivers a queue to its function's handler — the dispatch queue
// to dispatch's, the webhook queue to webhooks' — batch by batch, as the
// SQS event source mapping does, until ctx ends.
func (r *Runner) consume(ctx context.Context, queueURL string) {
	handle := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		if queueURL == r.app.Config.WebhookQueueURL {
			return lambdafn.WebhookFires(ctx, r.app.Webhooks, r.log, ev), nil
		}
		return lambdafn.DispatchSQS(ctx, r.app, r.log, ev), nil
	}
	for ctx.Err() == nil {
		_, err := emulator.PumpSQS(ctx, r.app.Clients.SQS, queueURL, handle, r.opts.PollWait)
		if err == nil || ctx.Err() != nil {
			continue
		}
		r.log.ErrorContext(ctx, "SQS consumer", "error", err.Error())
		pause(ctx, r.opts.ErrorPause)
	}
}

// fireDue invokes the dispatch handler with every due schedule's input, as
// EventBridge Scheduler invokes the dispatch function.
func (r *Runner) fireDue(ctx context.Context) {
	dispatch := lambdafn.Dispatch(r.app, r.log)
	_, err := r.opts.Schedules.FireDue(ctx, r.opts.Now(), func(ctx context.Context, input []byte) error {
		_, err := dispatch(ctx, input)
		return err
	})
	if err != nil && ctx.Err() == nil {
		r.log.WarnContext(ctx, "firing schedules", "error", err.Error())
	}
}

// readStream hands the table's new stream records to the webhooks
// handler, as the stream event source mapping does (event inserts only,
// batches of 100).
func (r *Runner) readStream(ctx context.Context) {
	o := lambdafn.WebhookOptions{Timer: r.app.WebhookTimer, Now: r.opts.Now}
	_, err := r.opts.Stream.Pump(ctx, 100, func(rec events.DynamoDBEventRecord) bool {
		_, ok := dynamo.EventItemCompany(rec.Change.Keys[dynamo.AttrPK].String(), rec.Change.Keys[dynamo.AttrSK].String())
		return rec.EventName == "INSERT" && ok
	}, func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		return lambdafn.WebhookStream(ctx, o, r.log, ev), nil
	})
	if err != nil && ctx.Err() == nil {
		r.log.WarnContext(ctx, "reading the table's stream", "error", err.Error())
	}
}

// sweep runs the sweeper once, as its every-minute schedule does.
func (r *Runner) sweep(ctx context.Context) {
	if _, err := r.app.Sweep(ctx); err != nil && ctx.Err() == nil {
		r.log.ErrorContext(ctx, "sweep failed", "error", err.Error())
	}
}

// every calls f every d until ctx ends.
func every(ctx context.Context, d time.Duration, f func(context.Context)) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			f(ctx)
		}
	}
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
