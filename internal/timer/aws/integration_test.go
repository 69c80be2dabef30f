package aws_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/dispatcherhq/dispatcher/internal/awstest"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	emu "github.com/dispatcherhq/dispatcher/internal/emulator"
	"github.com/dispatcherhq/dispatcher/internal/testrand"
	awstimer "github.com/dispatcherhq/dispatcher/internal/timer/aws"
)

// emuNow is the timer's clock in the emulator tests: fixed, so what is
// armed never depends on when the test runs. Delays are relative to it
// (moto holds an SQS message for its DelaySeconds from the send), and moto
// does not check that an at() expression is in the future.
var emuNow = time.Date(2030, 1, 15, 10, 0, 0, 250_000_000, time.UTC)

// emulator is one test's view of the emulator: its own queue, DLQ and
// schedule group, and a Timer over real SDK clients.
type emulator struct {
	cfg       awssdk.Config
	sqs       *sqs.Client
	queueURL  string
	dlqARN    string
	group     string
	timer     *awstimer.Timer
	targetARN string
	roleARN   string
}

func setupEmulator(t *testing.T) emulator {
	t.Helper()
	cfg := awstest.Config(t)
	e := emulator{
		cfg:       cfg,
		sqs:       sqs.NewFromConfig(cfg),
		group:     awstest.CreateScheduleGroup(t, cfg),
		targetARN: "arn:aws:lambda:us-east-1:123456789012:function:dispatcher-dispatch",
		roleARN:   "arn:aws:iam::123456789012:role/dispatcher-scheduler",
	}
	e.queueURL, _ = awstest.CreateQueue(t, cfg)
	_, e.dlqARN = awstest.CreateQueue(t, cfg)
	e.timer = awstimer.New(e.sqs, scheduler.NewFromConfig(cfg), awstimer.Config{
		QueueURL: e.queueURL, ScheduleGroup: e.group, TargetARN: e.targetARN, RoleARN: e.roleARN, DLQARN: e.dlqARN,
		Now: func() time.Time { return emuNow },
	})
	return e
}

func newFire(r *testrand.Rand) comms.Fire {
	return comms.Fire{CompanyID: r.UUID(), CommunicationID: r.UUIDv7(), Token: r.Token()}
}

// TestEmulatorNearFiresGoToSQS: a fire within the horizon is one SQS
// message held for its delay, a fire already due is delivered at once. No
// assertion depends on time passing: the held fire is 14 minutes away.
func TestEmulatorNearFiresGoToSQS(t *testing.T) {
	t.Parallel()
	e := setupEmulator(t)
	ctx := context.Background()
	r := testrand.New(t)
	held, due := newFire(r), newFire(r)
	if err := e.timer.Arm(ctx, held, emuNow.Add(14*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := e.timer.Arm(ctx, due, emuNow.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	attrs, err := e.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       &e.queueURL,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed},
	})
	if err != nil || attrs.Attributes["ApproximateNumberOfMessagesDelayed"] != "1" {
		t.Errorf("delayed messages: %v, %v; want the 14-minute fire held", attrs, err)
	}
	var got []events.SQSMessage
	n, err := emu.PumpSQS(ctx, e.sqs, e.queueURL, func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		got = append(got, ev.Records...)
		return events.SQSEventResponse{}, nil
	}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || len(got) != 1 {
		t.Fatalf("delivered %d, want the due fire only", n)
	}
	assertFireJSON(t, got[0].Body, due)
	if sent := got[0].Attributes["SentTimestamp"]; sent == "" {
		t.Errorf("no SentTimestamp attribute: %v", got[0].Attributes)
	}
}

func TestEmulatorFarFireBecomesASchedule(t *testing.T) {
	t.Parallel()
	e := setupEmulator(t)
	ctx := context.Background()
	f := newFire(testrand.New(t))
	at := emuNow.Add(3 * time.Hour).Truncate(time.Second).Add(400 * time.Millisecond)
	if err := e.timer.Arm(ctx, f, at); err != nil {
		t.Fatal(err)
	}
	// The same fire armed again: ConflictException, which is success.
	if err := e.timer.Arm(ctx, f, at); err != nil {
		t.Fatalf("second Arm of the same fire: %v", err)
	}
	schedules := emu.NewSchedules(e.cfg, e.group)
	all, err := schedules.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Fatalf("%d schedules, want 1: %+v", len(all), all)
	}
	s := all[0]
	wantAt := at.Add(-2 * time.Minute).Truncate(time.Second).UTC()
	checks := []struct{ what, got, want string }{
		{"Name", s.Name, awstimer.ScheduleName(f)},
		{"GroupName", s.GroupName, e.group},
		{"Expression", s.Expression, awstimer.AtExpression(at.Add(-2 * time.Minute))},
		{"Expression (layout)", s.Expression, "at(" + wantAt.Format("2006-01-02T15:04:05") + ")"},
		{"Timezone", s.Timezone, "UTC"},
		{"State", s.State, "ENABLED"},
		{"FlexibleWindowMode", s.FlexibleWindowMode, "OFF"},
		{"ActionAfterCompletion", s.ActionAfterCompletion, "DELETE"},
		{"TargetARN", s.TargetARN, e.targetARN},
		{"RoleARN", s.RoleARN, e.roleARN},
		{"DLQARN", s.DLQARN, e.dlqARN},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
	if !s.At.Equal(wantAt) {
		t.Errorf("At = %v, want %v", s.At, wantAt)
	}
	if awssdk.ToInt32(s.MaxRetryAttempts) != 10 || awssdk.ToInt32(s.MaxEventAgeSeconds) != 3600 {
		t.Errorf("retry policy %v attempts / %v s, want 10 / 3600", awssdk.ToInt32(s.MaxRetryAttempts), awssdk.ToInt32(s.MaxEventAgeSeconds))
	}
	assertFireJSON(t, s.Input, f)

	// Stage two: the schedule fires Lead early with the fire as the event;
	// the dispatcher, seeing it early, re-arms it on SQS for the rest.
	if n, err := schedules.FireDue(ctx, wantAt.Add(-time.Second), nil); n != 0 || err != nil {
		t.Fatalf("FireDue before its time = %d, %v", n, err)
	}
	var invoked []comms.Fire
	n, err := schedules.FireDue(ctx, wantAt, func(ctx context.Context, input []byte) error {
		var got comms.Fire
		if err := json.Unmarshal(input, &got); err != nil {
			return err
		}
		invoked = append(invoked, got)
		// What the dispatcher does with an early fire: arm the rest.
		early := awstimer.New(e.sqs, nil, awstimer.Config{QueueURL: e.queueURL, Now: func() time.Time { return wantAt }})
		return early.Arm(ctx, got, at)
	})
	if err != nil || n != 1 || len(invoked) != 1 || invoked[0] != f {
		t.Fatalf("FireDue = %d, %v, invoked %+v; want the fire once", n, err, invoked)
	}
	if left, err := schedules.List(ctx); err != nil || len(left) != 0 {
		t.Fatalf("after firing: %d schedules, %v; want it deleted (ActionAfterCompletion DELETE)", len(left), err)
	}
	attrs, err := e.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       &e.queueURL,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed},
	})
	if err != nil || attrs.Attributes["ApproximateNumberOfMessagesDelayed"] != "1" {
		t.Errorf("re-armed fire: %v delayed messages, %v; want 1", attrs, err)
	}
}
