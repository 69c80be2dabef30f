package awstest_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/dispatcherhq/dispatcher/internal/awstest"
	"github.com/dispatcherhq/dispatcher/internal/emulator"
)

const (
	testTarget = "arn:aws:lambda:us-east-1:123456789012:function:dispatch"
	testRole   = "arn:aws:iam::123456789012:role/scheduler"
)

type sched struct {
	name, expr, tz, input string
	after                 types.ActionAfterCompletion
	state                 types.ScheduleState
}

func createSchedule(t *testing.T, client *scheduler.Client, group string, s sched) {
	t.Helper()
	in := &scheduler.CreateScheduleInput{
		Name:                  aws.String(s.name),
		GroupName:             aws.String(group),
		ScheduleExpression:    aws.String(s.expr),
		FlexibleTimeWindow:    &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
		ActionAfterCompletion: s.after,
		State:                 s.state,
		Target:                &types.Target{Arn: aws.String(testTarget), RoleArn: aws.String(testRole), Input: aws.String(s.input)},
	}
	if s.tz != "" {
		in.ScheduleExpressionTimezone = aws.String(s.tz)
	}
	if _, err := client.CreateSchedule(context.Background(), in); err != nil {
		t.Fatalf("CreateSchedule %s: %v", s.name, err)
	}
}

func at(t time.Time) string { return "at(" + t.UTC().Format("2006-01-02T15:04:05") + ")" }

func TestCreateScheduleGroup(t *testing.T) {
	t.Parallel()
	cfg := awstest.Config(t)
	group := awstest.CreateScheduleGroup(t, cfg)
	if len(group) > 64 || strings.Trim(group, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.") != "" {
		t.Errorf("group name %q is not a valid Scheduler name", group)
	}
	out, err := scheduler.NewFromConfig(cfg).GetScheduleGroup(context.Background(), &scheduler.GetScheduleGroupInput{Name: aws.String(group)})
	if err != nil || aws.ToString(out.Name) != group {
		t.Fatalf("GetScheduleGroup = %+v, %v", out, err)
	}
}

func TestSchedulesFireDue(t *testing.T) {
	t.Parallel()
	cfg := awstest.Config(t)
	client := scheduler.NewFromConfig(cfg)
	ctx := context.Background()
	group := awstest.CreateScheduleGroup(t, cfg)
	other := awstest.CreateScheduleGroup(t, cfg)
	// A fixed "now": FireDue takes the time to fire at, and moto does not
	// check that at() expressions are in the future.
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	syd, err := time.LoadLocation("Australia/Sydney")
	if err != nil {
		t.Fatal(err)
	}
	sydWall := now.Add(-time.Minute).In(syd).Format("2006-01-02T15:04:05")

	const rawInput = "{ \"company_id\" : \"c\",\n  \"token\": \"t\" }"
	for _, s := range []sched{
		{name: "due", expr: at(now.Add(-time.Minute)), tz: "UTC", input: rawInput, after: types.ActionAfterCompletionDelete},
		{name: "exactly-now", expr: at(now), input: `"now"`, after: types.ActionAfterCompletionDelete},
		{name: "later", expr: at(now.Add(time.Hour)), tz: "UTC", input: `"later"`, after: types.ActionAfterCompletionDelete},
		{name: "kept", expr: at(now.Add(-2 * time.Minute)), input: `"kept"`, after: types.ActionAfterCompletionNone},
		{name: "off", expr: at(now.Add(-time.Minute)), input: `"off"`, after: types.ActionAfterCompletionDelete, state: types.ScheduleStateDisabled},
		{name: "sydney", expr: "at(" + sydWall + ")", tz: "Australia/Sydney", input: `"sydney"`, after: types.ActionAfterCompletionDelete},
		{name: "rate", expr: "rate(5 minutes)", input: `"rate"`},
		{name: "fails", expr: at(now.Add(-3 * time.Minute)), input: `"fails"`, after: types.ActionAfterCompletionDelete},
	} {
		createSchedule(t, client, group, s)
	}
	createSchedule(t, client, other, sched{name: "elsewhere", expr: at(now.Add(-time.Hour)), input: `"elsewhere"`})

	s := emulator.NewSchedules(cfg, group)
	all, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]emulator.Schedule{}
	for _, x := range all {
		byName[x.Name] = x
	}
	if len(all) != 8 || byName["elsewhere"].Name != "" {
		t.Fatalf("List = %d schedules %v, want the group's 8", len(all), byName)
	}
	if got := byName["sydney"].At; !got.Equal(now.Add(-time.Minute)) {
		t.Errorf("Sydney at(%s) read as %v, want %v", sydWall, got, now.Add(-time.Minute))
	}
	if d := byName["due"]; d.Input != rawInput || d.TargetARN != testTarget || d.RoleARN != testRole || d.Timezone != "UTC" ||
		d.ActionAfterCompletion != "DELETE" || d.FlexibleWindowMode != "OFF" || d.State != "ENABLED" || d.GroupName != group || !d.At.Equal(now.Add(-time.Minute)) {
		t.Errorf("schedule read back as %+v", d)
	}
	if !byName["rate"].At.IsZero() {
		t.Errorf("a rate() schedule has At %v", byName["rate"].At)
	}
	for i := 1; i < len(all); i++ {
		if all[i].At.Before(all[i-1].At) {
			t.Errorf("List not in time order: %v then %v", all[i-1].At, all[i].At)
		}
	}

	var mu sync.Mutex
	var got []string
	failing := true
	invoke := func(_ context.Context, input []byte) error {
		mu.Lock()
		defer mu.Unlock()
		if string(input) == `"fails"` && failing {
			return errors.New("lambda throttled")
		}
		got = append(got, string(input))
		return nil
	}
	fired, err := s.FireDue(ctx, now, invoke)
	if err == nil || !strings.Contains(err.Error(), "fails") {
		t.Errorf("FireDue error = %v, want the failed invoke reported", err)
	}
	// Time order: kept (-2m), due and sydney (-1m, by name), exactly-now.
	want := []string{`"kept"`, rawInput, `"sydney"`, `"now"`}
	if fired != 4 || strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("FireDue fired %d: %q; want %q", fired, got, want)
	}
	left, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, x := range left {
		names = append(names, x.Name)
	}
	// DELETE ones are gone; NONE is kept; the failed invoke is kept to retry.
	if strings.Join(names, ",") != "rate,fails,kept,off,later" {
		t.Errorf("left after FireDue: %v", names)
	}

	// Again: only the failed one fires now (kept NONE is completed).
	got, failing = nil, false
	fired, err = s.FireDue(ctx, now, invoke)
	if err != nil || fired != 1 || strings.Join(got, "|") != `"fails"` {
		t.Fatalf("second FireDue = %d, %v, %q; want the retried one only", fired, err, got)
	}
	// An hour on, "later" is due.
	got = nil
	fired, err = s.FireDue(ctx, now.Add(time.Hour), invoke)
	if err != nil || fired != 1 || strings.Join(got, "|") != `"later"` {
		t.Fatalf("FireDue an hour on = %d, %v, %q", fired, err, got)
	}
	if _, err := s.Get(ctx, "later"); err == nil {
		t.Error("later was not deleted after firing")
	}
}
