package e2e_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/dispatcherhq/dispatcher/internal/dlq"
)

// cancelEvent is the api function's event cancelling row id.
func cancelEvent(t *testing.T, id string) (ev events.APIGatewayV2HTTPRequest) {
	ev = event(t, "api-cancel.json", time.Time{}, nil)
	ev.RawPath = "/v1/scheduled-communications/" + id + "/cancel"
	ev.RequestContext.HTTP.Path = ev.RawPath
	return ev
}

// patchEvent is the api function's event moving row id to at.
func patchEvent(t *testing.T, id string, at time.Time) (ev events.APIGatewayV2HTTPRequest) {
	ev = event(t, "api-cancel.json", time.Time{}, nil)
	ev.RawPath = "/v1/scheduled-communications/" + id
	ev.RequestContext.HTTP.Path = ev.RawPath
	ev.RequestContext.HTTP.Method = "PATCH"
	ev.Headers["content-type"] = "application/json"
	ev.Body = `{"scheduled_for":"` + at.UTC().Format(time.RFC3339) + `"}`
	return ev
}

// schedules lists the names of the stack's schedules.
func (s *stack) scheduleNames() []string {
	s.t.Helper()
	all, err := s.schedules.List(s.ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	names := make([]string, len(all))
	for i, sc := range all {
		names[i] = sc.Name
	}
	return names
}

// TestCancelAndRescheduleDeleteTheSchedule: a row due tomorrow is one
// schedule; a reschedule replaces it (the old one deleted, the new one
// made), a cancel deletes the last one. Nothing is left to fire.
func TestCancelAndRescheduleDeleteTheSchedule(t *testing.T) {
	t.Parallel()
	s := deploy(t, options{})
	due := s.clock.Now().Add(24 * time.Hour).Truncate(time.Second)
	to := uniqueTo(t)
	status, body := s.call(event(t, "api-create-email.json", due, setTo(to)))
	if status != 201 {
		t.Fatalf("create: %d %v", status, body)
	}
	id := body["data"].(map[string]any)["id"].(string)
	first := s.scheduleNames()
	if len(first) != 1 {
		t.Fatalf("after create: schedules %v, want one", first)
	}

	if status, body := s.call(patchEvent(t, id, due.Add(time.Hour))); status != 200 {
		t.Fatalf("reschedule: %d %v", status, body)
	}
	second := s.scheduleNames()
	if len(second) != 1 || second[0] == first[0] {
		t.Fatalf("after reschedule: schedules %v, want one other than %v (the old one deleted)", second, first)
	}
	var missing *schtypes.ResourceNotFoundException
	if _, err := s.schedules.Get(s.ctx, first[0]); !errors.As(err, &missing) {
		t.Errorf("the rescheduled row's old schedule: %v, want not found", err)
	}

	if status, body := s.call(cancelEvent(t, id)); status != 200 || body["data"].(map[string]any)["status"] != "cancelled" {
		t.Fatalf("cancel: %d %v", status, body)
	}
	if left := s.scheduleNames(); len(left) != 0 {
		t.Fatalf("after cancel: schedules %v, want none", left)
	}
	s.clock.AdvanceTo(due.Add(2 * time.Hour))
	if n := s.fireDue(); n != 0 {
		t.Errorf("fired %d schedules after the cancel, want none", n)
	}
	if n := sesMessagesTo(t, to); n != 0 {
		t.Errorf("a cancelled email was sent %d times", n)
	}
}

// TestCancelWhenDeleteFailsDropsTheLaterFire: Scheduler refuses the
// delete; the cancel still succeeds, the schedule stays, fires, and the
// dispatcher drops its stale fire: nothing is sent.
func TestCancelWhenDeleteFailsDropsTheLaterFire(t *testing.T) {
	t.Parallel()
	s := deploy(t, options{attach: failOperation("DeleteSchedule")})
	due := s.clock.Now().Add(20 * time.Minute).Truncate(time.Second)
	to := uniqueTo(t)
	status, body := s.call(event(t, "api-create-email.json", due, setTo(to)))
	if status != 201 {
		t.Fatalf("create: %d %v", status, body)
	}
	id := body["data"].(map[string]any)["id"].(string)
	if status, body := s.call(cancelEvent(t, id)); status != 200 || body["data"].(map[string]any)["status"] != "cancelled" {
		t.Fatalf("cancel with Scheduler failing: %d %v", status, body)
	}
	s.clock.AdvanceTo(due)
	if n := s.fireDue(); n != 1 {
		t.Fatalf("fired %d schedules, want the one the failed delete left", n)
	}
	s.pump(time.Second)
	if got := s.get(id); got["status"] != "cancelled" || got["attempt_count"].(float64) != 0 {
		t.Errorf("after the stale fire: %v", got)
	}
	if n := sesMessagesTo(t, to); n != 0 {
		t.Errorf("a cancelled email was sent %d times", n)
	}
	if got := s.app.Dispatcher.Stats().Dropped.Load(); got != 1 {
		t.Errorf("dropped %d fires, want 1", got)
	}
}

// failOperation makes every call of one AWS operation fail before it is
// sent.
func failOperation(op string) func(*aws.Config) {
	return func(cfg *aws.Config) {
		cfg.APIOptions = append(cfg.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("e2eFail"+op,
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					if awsmiddleware.GetOperationName(ctx) == op {
						return middleware.InitializeOutput{}, middleware.Metadata{}, errors.New("injected failure of " + op)
					}
					return next.HandleInitialize(ctx, in)
				}), middleware.After)
		})
	}
}

// TestSchedulerDLQRedrive: Scheduler could not deliver a row's fire (it
// parked it on the Scheduler DLQ, as AWS does, with its error attributes,
// and the one-time schedule is gone); `dispatcher dlq inspect` shows it
// as schedule_undelivered with the row's id, `dlq redrive` replays it on
// the dispatch queue, and the email is sent, once.
func TestSchedulerDLQRedrive(t *testing.T) {
	t.Parallel()
	s := deploy(t, options{})
	due := s.clock.Now().Add(20 * time.Minute).Truncate(time.Second)
	to := uniqueTo(t)
	status, body := s.call(event(t, "api-create-email.json", due, setTo(to)))
	if status != 201 {
		t.Fatalf("create: %d %v", status, body)
	}
	id := body["data"].(map[string]any)["id"].(string)
	all, err := s.schedules.List(s.ctx)
	if err != nil || len(all) != 1 {
		t.Fatalf("schedules %v, %v; want one", all, err)
	}
	// Scheduler fires 2 minutes early and cannot invoke dispatch; when its
	// retries are spent it puts the input on the DLQ and the schedule is
	// deleted (ActionAfterCompletion DELETE).
	s.clock.AdvanceTo(due.Add(-2 * time.Second))
	sc, err := s.schedules.Get(s.ctx, all[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	sqsClient := sqs.NewFromConfig(s.cfg)
	dlqName := s.conf.SchedulerDLQARN[strings.LastIndexByte(s.conf.SchedulerDLQARN, ':')+1:]
	dlqURL, err := dlq.New(sqsClient).QueueURL(s.ctx, dlqName)
	if err != nil {
		t.Fatal(err)
	}
	str := func(v string) sqstypes.MessageAttributeValue {
		return sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	if _, err := sqsClient.SendMessage(s.ctx, &sqs.SendMessageInput{QueueUrl: aws.String(dlqURL), MessageBody: aws.String(sc.Input),
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			"ERROR_CODE": str("AWS.Lambda.TooManyRequestsException"), "ERROR_MESSAGE": str("Rate exceeded"),
			"TARGET_ARN": str(s.conf.DispatchTargetARN),
		}}); err != nil {
		t.Fatal(err)
	}
	if _, err := scheduler.NewFromConfig(s.cfg).DeleteSchedule(s.ctx, &scheduler.DeleteScheduleInput{
		Name: aws.String(all[0].Name), GroupName: aws.String(s.conf.ScheduleGroup)}); err != nil {
		t.Fatal(err)
	}

	tool := dlq.New(sqsClient)
	msgs, err := tool.Inspect(s.ctx, dlqURL, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Kind != dlq.KindScheduleUndelivered || msgs[0].Fire == nil || msgs[0].Fire.CommunicationID != id ||
		!strings.Contains(msgs[0].Error, "TooManyRequests") {
		t.Fatalf("inspect: %+v, want the row's undelivered fire", msgs)
	}
	res, err := tool.Redrive(s.ctx, dlqURL, s.conf.QueueURL, dlq.RedriveOptions{})
	if err != nil || res.Replayed != 1 {
		t.Fatalf("redrive: %+v, %v", res, err)
	}
	// The replayed fire is 2 s early: the dispatcher arms it again on SQS
	// for the rest; at its time the email goes out.
	if n := s.pump(time.Second); n != 1 {
		t.Fatalf("pumped %d, want the replayed fire", n)
	}
	s.clock.AdvanceTo(due)
	s.pump(4 * time.Second)
	if got := s.get(id); got["status"] != "sent" {
		t.Fatalf("after the redrive: %v, want sent", got["status"])
	}
	if n := sesMessagesTo(t, to); n != 1 {
		t.Errorf("sent %d times, want once", n)
	}
	if left, err := tool.Inspect(s.ctx, dlqURL, 10); err != nil || len(left) != 0 {
		t.Errorf("left in the DLQ: %+v, %v", left, err)
	}
}
