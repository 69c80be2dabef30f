// Package emulator plays the parts of AWS that emulators do not: it fires
// due EventBridge Scheduler schedules by reading them back with
// GetSchedule, and delivers SQS messages to a handler of SQS batches the way
// the Lambda event source mapping does. The emulator tests use it, and so
// does `dispatcher serve --backend aws` when it runs against an emulator.
package emulator

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"
)

// Schedule is one schedule as GetSchedule returns it, flattened.
type Schedule struct {
	Name      string
	GroupName string
	ARN       string
	// At is the time of a one-time at(…) expression in its timezone,
	// as UTC; zero for rate() and cron() schedules.
	At                    time.Time
	Expression            string
	Timezone              string
	State                 string
	FlexibleWindowMode    string
	ActionAfterCompletion string
	Description           string
	TargetARN             string
	RoleARN               string
	// Input is the target's input: what Scheduler hands the Lambda as its
	// event, byte for byte.
	Input              string
	DLQARN             string
	MaxRetryAttempts   *int32
	MaxEventAgeSeconds *int32
}

// Schedules reads a schedule group back from the emulator and fires its
// due schedules, standing in for EventBridge Scheduler, which neither moto
// nor LocalStack runs. It is safe for concurrent use.
type Schedules struct {
	client *scheduler.Client
	group  string

	mu sync.Mutex
	// done holds completed schedules kept by ActionAfterCompletion NONE
	// (name + expression), which AWS never fires again.
	done map[string]bool
}

// NewSchedules returns the Schedules of group.
func NewSchedules(cfg aws.Config, group string) *Schedules {
	return &Schedules{client: scheduler.NewFromConfig(cfg), group: group, done: map[string]bool{}}
}

// List returns every schedule of the group (ListSchedules, every page, then
// GetSchedule of each, since ListSchedules shows the target ARN only),
// ordered by At, then name.
func (s *Schedules) List(ctx context.Context) ([]Schedule, error) {
	var names []string
	p := scheduler.NewListSchedulesPaginator(s.client, &scheduler.ListSchedulesInput{GroupName: aws.String(s.group)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("scheduler.ListSchedules: %w", err)
		}
		for _, sum := range page.Schedules {
			names = append(names, aws.ToString(sum.Name))
		}
	}
	out := make([]Schedule, 0, len(names))
	for _, name := range names {
		got, err := s.client.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String(name), GroupName: aws.String(s.group)})
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("scheduler.GetSchedule %s: %w", name, err)
		}
		sch, err := scheduleOf(got)
		if err != nil {
			return nil, err
		}
		out = append(out, sch)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Get returns one schedule of the group by name.
func (s *Schedules) Get(ctx context.Context, name string) (Schedule, error) {
	got, err := s.client.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String(name), GroupName: aws.String(s.group)})
	if err != nil {
		return Schedule{}, fmt.Errorf("scheduler.GetSchedule %s: %w", name, err)
	}
	return scheduleOf(got)
}

// FireDue does what EventBridge Scheduler does at now: every ENABLED
// one-time schedule whose at(…) time is at or before now is invoked, in
// time order, with its target input exactly as Scheduler would invoke the
// Lambda (the raw input bytes are the event), and after a successful
// invoke it is deleted when its ActionAfterCompletion is DELETE (moto
// never does this itself) or remembered as completed when it is NONE.
//
// A failed invoke keeps the schedule, to be fired again by a later
// FireDue, as Scheduler retries it (this harness does not count the
// RetryPolicy or move anything to the DLQ); the failures are returned,
// joined, after every due schedule has been tried. rate() and cron()
// schedules are ignored. Scheduler's up-to-60-s lateness is not emulated:
// the caller picks now.
func (s *Schedules) FireDue(ctx context.Context, now time.Time, invoke func(ctx context.Context, input []byte) error) (fired int, err error) {
	all, err := s.List(ctx)
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, sch := range all {
		if sch.At.IsZero() || sch.At.After(now) || sch.State != string(types.ScheduleStateEnabled) {
			continue
		}
		key := sch.Name + "\x00" + sch.Expression
		s.mu.Lock()
		done := s.done[key]
		s.mu.Unlock()
		if done {
			continue
		}
		if err := invoke(ctx, []byte(sch.Input)); err != nil {
			errs = append(errs, fmt.Errorf("invoke of schedule %s: %w", sch.Name, err))
			continue
		}
		fired++
		if sch.ActionAfterCompletion != string(types.ActionAfterCompletionDelete) {
			s.mu.Lock()
			s.done[key] = true
			s.mu.Unlock()
			continue
		}
		_, err := s.client.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String(sch.Name), GroupName: aws.String(s.group)})
		var nf *types.ResourceNotFoundException
		if err != nil && !errors.As(err, &nf) {
			errs = append(errs, fmt.Errorf("scheduler.DeleteSchedule %s: %w", sch.Name, err))
		}
	}
	return fired, errors.Join(errs...)
}

func scheduleOf(g *scheduler.GetScheduleOutput) (Schedule, error) {
	s := Schedule{
		Name:                  aws.ToString(g.Name),
		GroupName:             aws.ToString(g.GroupName),
		ARN:                   aws.ToString(g.Arn),
		Expression:            aws.ToString(g.ScheduleExpression),
		Timezone:              aws.ToString(g.ScheduleExpressionTimezone),
		State:                 string(g.State),
		ActionAfterCompletion: string(g.ActionAfterCompletion),
		Description:           aws.ToString(g.Description),
	}
	if g.FlexibleTimeWindow != nil {
		s.FlexibleWindowMode = string(g.FlexibleTimeWindow.Mode)
	}
	if tg := g.Target; tg != nil {
		s.TargetARN = aws.ToString(tg.Arn)
		s.RoleARN = aws.ToString(tg.RoleArn)
		s.Input = aws.ToString(tg.Input)
		if tg.DeadLetterConfig != nil {
			s.DLQARN = aws.ToString(tg.DeadLetterConfig.Arn)
		}
		if tg.RetryPolicy != nil {
			s.MaxRetryAttempts = tg.RetryPolicy.MaximumRetryAttempts
			s.MaxEventAgeSeconds = tg.RetryPolicy.MaximumEventAgeInSeconds
		}
	}
	if strings.HasPrefix(s.Expression, "at(") {
		at, err := parseAt(s.Expression, s.Timezone)
		if err != nil {
			return Schedule{}, fmt.Errorf("schedule %s: %w", s.Name, err)
		}
		s.At = at
	}
	return s, nil
}

// parseAt reads at(yyyy-mm-ddThh:mm:ss) as a wall-clock time in tz (UTC
// when empty), as Scheduler does. It is written apart from the timer's own
// parser on purpose: the harness checks what the adapter sends.
func parseAt(expr, tz string) (time.Time, error) {
	inner, ok := strings.CutPrefix(expr, "at(")
	if ok {
		inner, ok = strings.CutSuffix(inner, ")")
	}
	if !ok {
		return time.Time{}, fmt.Errorf("expression %q is not at(yyyy-mm-ddThh:mm:ss)", expr)
	}
	loc := time.UTC
	if tz != "" && tz != "UTC" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return time.Time{}, fmt.Errorf("timezone %q: %w", tz, err)
		}
		loc = l
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05", inner, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("expression %q: %w", expr, err)
	}
	return t.UTC(), nil
}
