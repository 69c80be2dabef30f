// Package aws is the comms.Timer of the AWS deployment: a two-stage timer
// over Amazon SQS and Amazon EventBridge Scheduler.
//
// A fire due within SQSHorizon (14 minutes by default, under SQS's 15-minute
// DelaySeconds limit) is sent to the dispatch queue with DelaySeconds, so it
// arrives within about a second of its time. A later fire becomes one
// one-time Scheduler schedule, set Lead (2 minutes by default) ahead of its
// time because Scheduler only promises to fire within 60 s of it; the
// dispatch function, seeing the fire early, re-arms it on SQS for the
// remaining seconds. The schedule's input is the fire only (ids and token,
// never the payload), its name derives from the communication id and the
// token, so arming the same fire twice makes one schedule, and it deletes
// itself after it has fired (ActionAfterCompletion DELETE).
//
// Transient failures — what internal/awserr classifies as transient:
// throttling, 5xx, network errors, timeouts — are retried here with the
// backoff of internal/backoff (100 ms doubling to 2 s, equal jitter), on top
// of the SDK's own retryer: the SDK covers a blip of a few hundred
// milliseconds, this covers a longer brown-out, and both are bounded so Arm
// stays well inside a Lambda timeout (see MaxRetryWait). Retrying stops as
// soon as the caller's context is done, whatever the last error was. An
// error awserr cannot classify, or classifies as permanent (a Scheduler
// ServiceQuotaExceededException among them: a full quota is not fixed
// within seconds), is returned at once. A fire that cannot be armed is
// returned as an error; the caller logs it and the sweeper fires the row
// from the store later, so nothing is lost.
package aws

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/dispatcherhq/dispatcher/internal/awserr"
	"github.com/dispatcherhq/dispatcher/internal/backoff"
	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// SQSAPI is the part of the SQS client the timer uses.
type SQSAPI interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// SchedulerAPI is the part of the EventBridge Scheduler client the timer uses.
type SchedulerAPI interface {
	CreateSchedule(ctx context.Context, in *scheduler.CreateScheduleInput, optFns ...func(*scheduler.Options)) (*scheduler.CreateScheduleOutput, error)
	DeleteSchedule(ctx context.Context, in *scheduler.DeleteScheduleInput, optFns ...func(*scheduler.Options)) (*scheduler.DeleteScheduleOutput, error)
}

// Defaults of Config.
const (
	// DefaultLead is how long before its time a far fire's schedule fires.
	DefaultLead = 2 * time.Minute
	// DefaultSQSHorizon is the longest delay sent to SQS.
	DefaultSQSHorizon = 14 * time.Minute
	// DefaultRetries is how many times a transient failure is retried.
	DefaultRetries = 5
)

// Limits and retry constants of the timer.
const (
	// MaxDelaySeconds is SQS's largest DelaySeconds (15 minutes).
	MaxDelaySeconds = 900
	// MaxRetryWait bounds the total time Arm sleeps between its own retries
	// of one call (the SDK's retryer adds its own short backoff per try).
	MaxRetryWait = 5 * time.Second

	// ScheduleMaxRetryAttempts and ScheduleMaxEventAge are the schedule's
	// RetryPolicy (Scheduler's default is 185 attempts over 24 h).
	ScheduleMaxRetryAttempts = 10
	ScheduleMaxEventAge      = 3600
)

// Config configures a Timer. QueueURL is needed for near fires; the
// Scheduler settings for far ones.
type Config struct {
	// QueueURL is the dispatch queue (its consumer is the dispatch function).
	QueueURL string
	// ScheduleGroup is the Scheduler group the schedules are created in.
	ScheduleGroup string
	// TargetARN is what a schedule invokes: the dispatch function's ARN.
	TargetARN string
	// RoleARN is the role Scheduler assumes to invoke the target.
	RoleARN string
	// DLQARN is the standard SQS queue undeliverable schedule fires go to.
	DLQARN string
	// Lead is how long before its time a far fire's schedule fires. Zero
	// means DefaultLead (2 minutes); a negative value means no lead. It is
	// kept below SQSHorizon.
	Lead time.Duration
	// SQSHorizon is the longest delay sent to SQS; later fires go to
	// Scheduler. Zero means DefaultSQSHorizon (14 minutes); at most 15
	// minutes (SQS's DelaySeconds limit).
	SQSHorizon time.Duration
	// Now is the clock, default time.Now.
	Now func() time.Time
	// Retries is how many times a transient failure is retried (after the
	// first try). Zero means DefaultRetries (5); negative means none.
	Retries int
	// Sleep waits d between retries, or until ctx is done (then it returns
	// ctx.Err()). Default: a timer raced against ctx. Tests inject one that
	// records the waits instead of taking them.
	Sleep func(ctx context.Context, d time.Duration) error
}

// retryPolicy is the backoff between Arm's own retries: 100 ms for the
// first, doubling, each at most 2 s (equal jitter: a wait is drawn from
// the upper half of its step).
var retryPolicy = backoff.Policy{Base: 100 * time.Millisecond, Cap: 2 * time.Second}

// permanentCodes are the errors awserr is told no retry within seconds can
// fix: the account holds as many schedules as its quota allows (the
// sweeper fires the row instead).
var permanentCodes = map[string]string{"ServiceQuotaExceededException": "quota_exceeded"}

// Timer arms fires on SQS (near) or EventBridge Scheduler (far). It is
// safe for concurrent use.
type Timer struct {
	sqs SQSAPI
	sch SchedulerAPI
	cfg Config
}

var _ comms.Timer = (*Timer)(nil)

// New returns a Timer over the two clients, applying Config's defaults.
func New(sqsClient SQSAPI, sch SchedulerAPI, cfg Config) *Timer {
	if cfg.SQSHorizon <= 0 {
		cfg.SQSHorizon = DefaultSQSHorizon
	}
	if cfg.SQSHorizon > MaxDelaySeconds*time.Second {
		cfg.SQSHorizon = MaxDelaySeconds * time.Second
	}
	switch {
	case cfg.Lead == 0:
		cfg.Lead = DefaultLead
	case cfg.Lead < 0:
		cfg.Lead = 0
	}
	if cfg.Lead >= cfg.SQSHorizon {
		// A schedule must fire in the future, after the SQS horizon has
		// been left behind: keep the lead inside the horizon.
		cfg.Lead = cfg.SQSHorizon / 2
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.Retries == 0:
		cfg.Retries = DefaultRetries
	case cfg.Retries < 0:
		cfg.Retries = 0
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	return &Timer{sqs: sqsClient, sch: sch, cfg: cfg}
}

// Arm delivers f to the dispatch function at (or within about a second
// after) at. A time already past is sent to SQS without delay. Arming the
// same fire twice for SQS sends it twice (the dispatcher drops the second);
// for Scheduler it makes one schedule (a ConflictException is success).
func (t *Timer) Arm(ctx context.Context, f comms.Fire, at time.Time) error {
	if f.CommunicationID == "" || f.Token == "" {
		return errors.New("timer/aws.Arm: fire without communication id or token")
	}
	if f.RequestID == "" {
		// The request whose work arms the fire travels with it, so the
		// dispatch that handles it logs the same request_id.
		f.RequestID = comms.RequestID(ctx)
	}
	body, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("json.Marshal: %w", err)
	}
	d := at.Sub(t.cfg.Now())
	if d <= t.cfg.SQSHorizon {
		in := &sqs.SendMessageInput{
			QueueUrl:     awssdk.String(t.cfg.QueueURL),
			MessageBody:  awssdk.String(string(body)),
			DelaySeconds: DelaySeconds(d),
		}
		if h := TraceHeader(ctx); h != "" {
			// X-Ray: the consumer's trace continues the producer's.
			in.MessageSystemAttributes = map[string]sqstypes.MessageSystemAttributeValue{
				"AWSTraceHeader": {DataType: awssdk.String("String"), StringValue: awssdk.String(h)},
			}
		}
		err := t.retry(ctx, func() error {
			_, err := t.sqs.SendMessage(ctx, in)
			return err
		})
		if err != nil {
			return fmt.Errorf("sqs.SendMessage: %w", err)
		}
		return nil
	}
	in := t.scheduleInput(f, at, string(body))
	err = t.retry(ctx, func() error {
		_, err := t.sch.CreateSchedule(ctx, in)
		var conflict *schtypes.ConflictException
		if errors.As(err, &conflict) {
			// The schedule of this very fire exists already: armed.
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("scheduler.CreateSchedule: %w", err)
	}
	return nil
}

// lambdaTraceKey is where aws-lambda-go keeps the invocation's X-Ray trace
// header (Root=…;Parent=…;Sampled=…) in the handler's context.
const lambdaTraceKey = "x-amzn-trace-id"

// TraceHeader is the X-Ray trace header of the Lambda invocation ctx
// belongs to, "" outside Lambda or without tracing. A message sent with
// it as its AWSTraceHeader system attribute continues the trace in the
// function SQS invokes (Scheduler carries no trace header: a far fire
// starts a trace of its own and is followed by its request_id).
func TraceHeader(ctx context.Context) string {
	h, _ := ctx.Value(lambdaTraceKey).(string)
	if !strings.HasPrefix(h, "Root=") {
		return ""
	}
	return h
}

func (t *Timer) scheduleInput(f comms.Fire, at time.Time, body string) *scheduler.CreateScheduleInput {
	name := ScheduleName(f)
	desc := "dispatcher fire of communication " + f.CommunicationID
	if len(desc) > 512 {
		desc = desc[:512]
	}
	return &scheduler.CreateScheduleInput{
		Name:                       awssdk.String(name),
		GroupName:                  awssdk.String(t.cfg.ScheduleGroup),
		ScheduleExpression:         awssdk.String(AtExpression(at.Add(-t.cfg.Lead))),
		ScheduleExpressionTimezone: awssdk.String("UTC"),
		FlexibleTimeWindow:         &schtypes.FlexibleTimeWindow{Mode: schtypes.FlexibleTimeWindowModeOff},
		ActionAfterCompletion:      schtypes.ActionAfterCompletionDelete,
		State:                      schtypes.ScheduleStateEnabled,
		// The name is unique to the fire and made of [0-9a-zA-Z-], which
		// ClientToken ([a-zA-Z0-9-_], ≤ 64) accepts: a retried create of
		// the same fire is idempotent, not a second schedule.
		ClientToken: awssdk.String(name),
		Description: awssdk.String(desc),
		Target: &schtypes.Target{
			Arn:     awssdk.String(t.cfg.TargetARN),
			RoleArn: awssdk.String(t.cfg.RoleARN),
			Input:   awssdk.String(body),
			RetryPolicy: &schtypes.RetryPolicy{
				MaximumRetryAttempts:     awssdk.Int32(ScheduleMaxRetryAttempts),
				MaximumEventAgeInSeconds: awssdk.Int32(ScheduleMaxEventAge),
			},
			DeadLetterConfig: &schtypes.DeadLetterConfig{Arn: awssdk.String(t.cfg.DLQARN)},
		},
	}
}

// Disarm deletes the schedule of a fire that will never be wanted (its row
// was cancelled or rescheduled, so its token is stale), so that it neither
// fires for nothing nor counts against the account's schedule quota until
// it would have fired. armedAt is when the fire was armed: the row's last
// change, which is when its token was made (comms' lifecycle sets both).
//
// It calls Scheduler only when the fire could have a schedule that has not
// fired yet: it was due more than SQSHorizon after armedAt (nearer fires
// went to SQS, where a message cannot be taken back, and a stale one is
// dropped by the dispatcher), and the schedule's time (due minus Lead) is
// still ahead. A schedule that does not exist (never created, already
// fired and deleted itself) is success. It does not retry: the caller
// treats any error as a leftover schedule that fires and is dropped.
func (t *Timer) Disarm(ctx context.Context, f comms.Fire, armedAt time.Time) (deleted bool, err error) {
	if f.CommunicationID == "" || f.Token == "" || f.DueAt.IsZero() {
		return false, nil
	}
	if f.DueAt.Sub(armedAt) <= t.cfg.SQSHorizon || !f.DueAt.Add(-t.cfg.Lead).After(t.cfg.Now()) {
		return false, nil
	}
	_, err = t.sch.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{
		Name:      awssdk.String(ScheduleName(f)),
		GroupName: awssdk.String(t.cfg.ScheduleGroup),
	})
	var missing *schtypes.ResourceNotFoundException
	if errors.As(err, &missing) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("scheduler.DeleteSchedule: %w", err)
	}
	return true, nil
}

// DelaySeconds is the SQS DelaySeconds for a fire due in d: d rounded up to
// the second (never early), 0 for a time already past, at most 900.
func DelaySeconds(d time.Duration) int32 {
	if d <= 0 {
		return 0
	}
	s := (d + time.Second - 1) / time.Second
	if s > MaxDelaySeconds {
		return MaxDelaySeconds
	}
	return int32(s)
}

// retry calls op until it succeeds, fails with an error awserr does not
// call transient, the retries or the MaxRetryWait budget are spent, or ctx
// is done. It returns op's last error.
func (t *Timer) retry(ctx context.Context, op func() error) error {
	var waited time.Duration
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := op()
		if err == nil || attempt > t.cfg.Retries || ctx.Err() != nil {
			return err
		}
		if _, transient := awserr.Classify(err, permanentCodes); !transient {
			return err
		}
		wait := retryPolicy.Random(attempt)
		if waited+wait > MaxRetryWait {
			return err
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return err
		}
		waited += wait
		if t.cfg.Sleep(ctx, wait) != nil {
			return err
		}
	}
}

// sleep waits d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var (
	canonicalUUID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	plainToken    = regexp.MustCompile(`^[0-9A-Za-z]{1,24}$`)
)

// ScheduleName is the Scheduler schedule name of f: deterministic, unique
// to the communication id and token, at most 64 characters of [0-9a-zA-Z-].
// For a UUID id and a token of up to 24 letters and digits (what
// comms.NewToken makes: 24 hex characters) it reads
// "c-" + the id without dashes + "-" + the token (59 characters at most);
// any other id or token is hashed instead: "x-" + 48 hex characters of
// SHA-256(id NUL token).
func ScheduleName(f comms.Fire) string {
	if canonicalUUID.MatchString(f.CommunicationID) && plainToken.MatchString(f.Token) {
		return "c-" + strings.ReplaceAll(f.CommunicationID, "-", "") + "-" + f.Token
	}
	sum := sha256.Sum256([]byte(f.CommunicationID + "\x00" + f.Token))
	return "x-" + hex.EncodeToString(sum[:24])
}

// atLayout is Scheduler's one-time expression layout, at(yyyy-mm-ddThh:mm:ss).
const atLayout = "2006-01-02T15:04:05"

// AtExpression is the one-time schedule expression of t in UTC, truncated
// to the second: "at(2006-01-02T15:04:05)". It goes with
// ScheduleExpressionTimezone "UTC".
func AtExpression(t time.Time) string {
	return "at(" + t.UTC().Format(atLayout) + ")"
}

// ParseAtExpression parses an expression made by AtExpression back into a
// UTC time.
func ParseAtExpression(expr string) (time.Time, error) {
	inner, ok := strings.CutPrefix(expr, "at(")
	if ok {
		inner, ok = strings.CutSuffix(inner, ")")
	}
	if !ok {
		return time.Time{}, fmt.Errorf("timer/aws.ParseAtExpression: %q is not at(yyyy-mm-ddThh:mm:ss)", expr)
	}
	t, err := time.ParseInLocation(atLayout, inner, time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("timer/aws.ParseAtExpression: %w", err)
	}
	return t, nil
}
