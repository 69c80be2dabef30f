package aws_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/testrand"
	awstimer "github.com/dispatcherhq/dispatcher/internal/timer/aws"
)

// fakeSQS records SendMessage calls and answers with errs in turn (nil once
// they run out).
type fakeSQS struct {
	mu    sync.Mutex
	calls []*sqs.SendMessageInput
	errs  []error
}

func (f *fakeSQS) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, in)
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		if err != nil {
			return nil, err
		}
	}
	return &sqs.SendMessageOutput{MessageId: awssdk.String("m-1")}, nil
}

// fakeScheduler records CreateSchedule calls; errs as fakeSQS. always, when
// set, is returned by every call.
type fakeScheduler struct {
	mu     sync.Mutex
	calls  []*scheduler.CreateScheduleInput
	errs   []error
	always error
	onCall func() // when set, called on every call
	// deletes records DeleteSchedule calls; deleteErr is what they return.
	deletes   []*scheduler.DeleteScheduleInput
	deleteErr error
}

func (f *fakeScheduler) DeleteSchedule(_ context.Context, in *scheduler.DeleteScheduleInput, _ ...func(*scheduler.Options)) (*scheduler.DeleteScheduleOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deletes = append(f.deletes, in)
	if f.deleteErr != nil {
		return nil, f.deleteErr
	}
	return &scheduler.DeleteScheduleOutput{}, nil
}

func (f *fakeScheduler) CreateSchedule(_ context.Context, in *scheduler.CreateScheduleInput, _ ...func(*scheduler.Options)) (*scheduler.CreateScheduleOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, in)
	if f.onCall != nil {
		f.onCall()
	}
	if f.always != nil {
		return nil, f.always
	}
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		if err != nil {
			return nil, err
		}
	}
	return &scheduler.CreateScheduleOutput{ScheduleArn: awssdk.String("arn:aws:scheduler:us-east-1:123456789012:schedule/g/" + *in.Name)}, nil
}

// opErr wraps err as the SDK returns it.
func opErr(op string, err error) error {
	return &smithy.OperationError{ServiceID: "Scheduler", OperationName: op, Err: err}
}

func httpErr(status int) error {
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
		Err:      errors.New("boom"),
	}}
}

var now0 = time.Date(2026, 3, 1, 10, 0, 0, 250_000_000, time.UTC)

type bundle struct {
	sqs    *fakeSQS
	sch    *fakeScheduler
	timer  *awstimer.Timer
	sleeps *[]time.Duration
	fire   comms.Fire
}

func setup(t *testing.T, mod ...func(*awstimer.Config)) bundle {
	t.Helper()
	var mu sync.Mutex
	sleeps := &[]time.Duration{}
	cfg := awstimer.Config{
		QueueURL:      "https://sqs.us-east-1.amazonaws.com/123456789012/dispatch",
		ScheduleGroup: "dispatcher",
		TargetARN:     "arn:aws:lambda:us-east-1:123456789012:function:dispatch",
		RoleARN:       "arn:aws:iam::123456789012:role/scheduler",
		DLQARN:        "arn:aws:sqs:us-east-1:123456789012:scheduler-dlq",
		Now:           func() time.Time { return now0 },
		// Waits are recorded, never taken: no test depends on time passing.
		Sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			*sleeps = append(*sleeps, d)
			return ctx.Err()
		},
	}
	for _, m := range mod {
		m(&cfg)
	}
	b := bundle{sqs: &fakeSQS{}, sch: &fakeScheduler{}, sleeps: sleeps, fire: comms.Fire{
		CompanyID:       "3f9a1c2e-0b4d-4e6f-8a1b-2c3d4e5f6a7b",
		CommunicationID: "01963e4a-7b2c-7d3e-8f40-5a6b7c8d9e0f",
		Token:           "a1b2c3d4e5f60718293a4b5c",
	}}
	b.timer = awstimer.New(b.sqs, b.sch, cfg)
	return b
}

func TestAtExpression(t *testing.T) {
	t.Parallel()
	syd, err := time.LoadLocation("Australia/Sydney")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 3, 1, 9, 5, 7, 0, time.UTC), "at(2026-03-01T09:05:07)"},
		// Sub-seconds are truncated, never rounded up: a schedule fires early, not late.
		{time.Date(2026, 3, 1, 9, 5, 7, 999_999_999, time.UTC), "at(2026-03-01T09:05:07)"},
		// Any zone is written as UTC (the schedule's timezone is UTC).
		{time.Date(2026, 3, 1, 20, 0, 0, 0, syd), "at(2026-03-01T09:00:00)"},
		{time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC), "at(2026-12-31T23:59:59)"},
	}
	for _, c := range cases {
		got := awstimer.AtExpression(c.in)
		if got != c.want {
			t.Errorf("AtExpression(%v) = %q, want %q", c.in, got, c.want)
		}
		back, err := awstimer.ParseAtExpression(got)
		if err != nil || !back.Equal(c.in.Truncate(time.Second)) || back.Location() != time.UTC {
			t.Errorf("ParseAtExpression(%q) = %v, %v; want %v UTC", got, back, err, c.in.Truncate(time.Second).UTC())
		}
	}
	for _, bad := range []string{"", "at()", "at(2026-03-01 09:05:07)", "at(2026-03-01T09:05:07Z)", "rate(5 minutes)", "at(2026-03-01T09:05:07", "2026-03-01T09:05:07", "at(2026-02-30T00:00:00)"} {
		if _, err := awstimer.ParseAtExpression(bad); err == nil {
			t.Errorf("ParseAtExpression(%q) succeeded", bad)
		}
	}
}

func TestArmRoutesByHorizon(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		d         time.Duration
		wantDelay int32  // SQS
		wantExpr  string // Scheduler
	}{
		{"past", -3 * time.Hour, 0, ""},
		{"now", 0, 0, ""},
		{"1ns rounds up", time.Nanosecond, 1, ""},
		{"1s", time.Second, 1, ""},
		{"1.001s rounds up", time.Second + time.Millisecond, 2, ""},
		{"13m59s", 13*time.Minute + 59*time.Second, 839, ""},
		{"exactly 14m stays on SQS", 14 * time.Minute, 840, ""},
		// now0 is 10:00:00.25; at = 10:14:01.25, minus 2 min = 10:12:01.25 → truncated.
		{"14m01s goes to Scheduler 2m early", 14*time.Minute + time.Second, 0, "at(2026-03-01T10:12:01)"},
		{"a year", 365 * 24 * time.Hour, 0, "at(2027-03-01T09:58:00)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			if err := b.timer.Arm(context.Background(), b.fire, now0.Add(c.d)); err != nil {
				t.Fatal(err)
			}
			if c.wantExpr == "" {
				if len(b.sqs.calls) != 1 || len(b.sch.calls) != 0 {
					t.Fatalf("sqs calls %d, scheduler calls %d; want 1, 0", len(b.sqs.calls), len(b.sch.calls))
				}
				in := b.sqs.calls[0]
				if in.DelaySeconds != c.wantDelay {
					t.Errorf("DelaySeconds = %d, want %d", in.DelaySeconds, c.wantDelay)
				}
				if *in.QueueUrl != "https://sqs.us-east-1.amazonaws.com/123456789012/dispatch" {
					t.Errorf("QueueUrl = %q", *in.QueueUrl)
				}
				assertFireJSON(t, *in.MessageBody, b.fire)
				return
			}
			if len(b.sqs.calls) != 0 || len(b.sch.calls) != 1 {
				t.Fatalf("sqs calls %d, scheduler calls %d; want 0, 1", len(b.sqs.calls), len(b.sch.calls))
			}
			if got := *b.sch.calls[0].ScheduleExpression; got != c.wantExpr {
				t.Errorf("ScheduleExpression = %q, want %q", got, c.wantExpr)
			}
		})
	}
}

func TestDelaySecondsCap(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]int32{
		-time.Second: 0, 0: 0, 999 * time.Millisecond: 1, 899*time.Second + 1: 900,
		900 * time.Second: 900, 901 * time.Second: 900, 24 * time.Hour: 900,
	} {
		if got := awstimer.DelaySeconds(d); got != want {
			t.Errorf("DelaySeconds(%v) = %d, want %d", d, got, want)
		}
	}
	// A horizon configured past SQS's limit is clamped to 15 minutes, and
	// the delay never exceeds 900 s.
	b := setup(t, func(c *awstimer.Config) { c.SQSHorizon = time.Hour })
	if err := b.timer.Arm(context.Background(), b.fire, now0.Add(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := b.timer.Arm(context.Background(), b.fire, now0.Add(15*time.Minute+time.Second)); err != nil {
		t.Fatal(err)
	}
	if len(b.sqs.calls) != 1 || b.sqs.calls[0].DelaySeconds != 900 || len(b.sch.calls) != 1 {
		t.Fatalf("sqs %d (delay %v), scheduler %d; want one 900-s message and one schedule", len(b.sqs.calls), b.sqs.calls, len(b.sch.calls))
	}
}

func TestCreateScheduleInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	at := now0.Add(3 * time.Hour)
	if err := b.timer.Arm(context.Background(), b.fire, at); err != nil {
		t.Fatal(err)
	}
	in := b.sch.calls[0]
	name := "c-01963e4a7b2c7d3e8f405a6b7c8d9e0f-a1b2c3d4e5f60718293a4b5c"
	str := func(p *string) string { return awssdk.ToString(p) }
	checks := []struct{ what, got, want string }{
		{"Name", str(in.Name), name},
		{"GroupName", str(in.GroupName), "dispatcher"},
		{"ScheduleExpression", str(in.ScheduleExpression), "at(2026-03-01T12:58:00)"},
		{"ScheduleExpressionTimezone", str(in.ScheduleExpressionTimezone), "UTC"},
		{"FlexibleTimeWindow.Mode", string(in.FlexibleTimeWindow.Mode), "OFF"},
		{"ActionAfterCompletion", string(in.ActionAfterCompletion), "DELETE"},
		{"State", string(in.State), "ENABLED"},
		{"ClientToken", str(in.ClientToken), name},
		{"Target.Arn", str(in.Target.Arn), "arn:aws:lambda:us-east-1:123456789012:function:dispatch"},
		{"Target.RoleArn", str(in.Target.RoleArn), "arn:aws:iam::123456789012:role/scheduler"},
		{"Target.DeadLetterConfig.Arn", str(in.Target.DeadLetterConfig.Arn), "arn:aws:sqs:us-east-1:123456789012:scheduler-dlq"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
	if !strings.Contains(str(in.Description), b.fire.CommunicationID) || len(str(in.Description)) > 512 {
		t.Errorf("Description = %q, want the communication id", str(in.Description))
	}
	rp := in.Target.RetryPolicy
	if rp == nil || awssdk.ToInt32(rp.MaximumRetryAttempts) != 10 || awssdk.ToInt32(rp.MaximumEventAgeInSeconds) != 3600 {
		t.Errorf("RetryPolicy = %+v, want 10 attempts within 3600 s", rp)
	}
	if in.StartDate != nil || in.EndDate != nil || in.KmsKeyArn != nil || in.Target.SqsParameters != nil {
		t.Errorf("unexpected optional fields set: %+v", in)
	}
	assertFireJSON(t, str(in.Target.Input), b.fire)
}

// assertFireJSON checks body is the fire and nothing else.
func assertFireJSON(t *testing.T, body string, f comms.Fire) {
	t.Helper()
	want := `{"company_id":"` + f.CompanyID + `","communication_id":"` + f.CommunicationID + `","token":"` + f.Token + `"}`
	if body != want {
		t.Errorf("body = %s, want %s", body, want)
	}
	var back comms.Fire
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&back); err != nil || back != f {
		t.Errorf("body decodes to %+v, %v; want %+v", back, err, f)
	}
}

var nameRE = regexp.MustCompile(`^[0-9a-zA-Z\-_.]{1,64}$`)

func TestScheduleName(t *testing.T) {
	t.Parallel()
	r := testrand.New(t)
	seen := map[string]comms.Fire{}
	check := func(f comms.Fire) {
		t.Helper()
		n := awstimer.ScheduleName(f)
		if !nameRE.MatchString(n) {
			t.Fatalf("ScheduleName(%+v) = %q (%d chars): not ≤ 64 of [0-9a-zA-Z-_.]", f, n, len(n))
		}
		if again := awstimer.ScheduleName(f); again != n {
			t.Fatalf("ScheduleName is not deterministic: %q then %q", n, again)
		}
		g := f
		g.CompanyID = "another company" // the name rests on id and token only
		if awstimer.ScheduleName(g) != n {
			t.Fatalf("ScheduleName depends on the company id")
		}
		if prev, dup := seen[n]; dup && (prev.CommunicationID != f.CommunicationID || prev.Token != f.Token) {
			t.Fatalf("ScheduleName collision: %+v and %+v both %q", prev, f, n)
		}
		seen[n] = f
	}
	for i := range 500 {
		id := r.UUID()
		if i%2 == 0 {
			id = r.UUIDv7()
		}
		check(comms.Fire{CompanyID: r.UUID(), CommunicationID: id, Token: r.Token()})
		// Another token of the same row is another schedule.
		check(comms.Fire{CommunicationID: id, Token: r.Token()})
		// Tokens and ids of other shapes are hashed, still within bounds.
		check(comms.Fire{CommunicationID: id, Token: r.UUID()})
		check(comms.Fire{CommunicationID: "row/" + id + "/follow-up:2", Token: strings.Repeat("t", 300)})
	}
	f := comms.Fire{CommunicationID: "01963e4a-7b2c-7d3e-8f40-5a6b7c8d9e0f", Token: r.Token()}
	if n := awstimer.ScheduleName(f); len(n) != 59 || !strings.HasPrefix(n, "c-01963e4a7b2c7d3e8f405a6b7c8d9e0f-") || !strings.HasSuffix(n, f.Token) {
		t.Errorf("ScheduleName(%+v) = %q (%d chars), want c-<id hex>-<token>, 59 chars", f, n, len(n))
	}
	if n := awstimer.ScheduleName(comms.Fire{CommunicationID: "x", Token: "y"}); len(n) != 50 || !strings.HasPrefix(n, "x-") {
		t.Errorf("hashed name %q (%d chars), want x- + 48 hex", n, len(n))
	}
}

func TestConflictIsSuccess(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.sch.errs = []error{opErr("CreateSchedule", &schtypes.ConflictException{Message: awssdk.String("Schedule exists.")})}
	if err := b.timer.Arm(context.Background(), b.fire, now0.Add(time.Hour)); err != nil {
		t.Fatalf("Arm on ConflictException = %v, want nil", err)
	}
	if len(b.sch.calls) != 1 || len(*b.sleeps) != 0 {
		t.Errorf("calls %d, sleeps %v; want 1 call, no retry", len(b.sch.calls), *b.sleeps)
	}
}

func TestTransientErrorsAreRetried(t *testing.T) {
	t.Parallel()
	throttle := opErr("CreateSchedule", &schtypes.ThrottlingException{Message: awssdk.String("Rate exceeded")})
	t.Run("scheduler throttling then success", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.sch.errs = []error{throttle, opErr("CreateSchedule", httpErr(503)), &schtypes.InternalServerException{}}
		if err := b.timer.Arm(context.Background(), b.fire, now0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if len(b.sch.calls) != 4 || len(*b.sleeps) != 3 {
			t.Errorf("calls %d, sleeps %v; want 4 calls, 3 sleeps", len(b.sch.calls), *b.sleeps)
		}
	})
	t.Run("sqs throttling then success", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.sqs.errs = []error{&sqstypes.RequestThrottled{}, &sqstypes.KmsThrottled{}, httpErr(500)}
		if err := b.timer.Arm(context.Background(), b.fire, now0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if len(b.sqs.calls) != 4 || len(*b.sleeps) != 3 {
			t.Errorf("calls %d, sleeps %v; want 4 calls, 3 sleeps", len(b.sqs.calls), *b.sleeps)
		}
	})
	t.Run("persistent throttling fails after Retries with growing sleeps", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.sch.always = throttle
		err := b.timer.Arm(context.Background(), b.fire, now0.Add(time.Hour))
		var te *schtypes.ThrottlingException
		if !errors.As(err, &te) || !strings.HasPrefix(err.Error(), "scheduler.CreateSchedule: ") {
			t.Fatalf("Arm = %v, want a wrapped ThrottlingException", err)
		}
		sleeps := *b.sleeps
		if len(b.sch.calls) != awstimer.DefaultRetries+1 || len(sleeps) != awstimer.DefaultRetries {
			t.Fatalf("calls %d, sleeps %v; want %d calls, %d sleeps", len(b.sch.calls), sleeps, awstimer.DefaultRetries+1, awstimer.DefaultRetries)
		}
		var total time.Duration
		for i, s := range sleeps {
			// The shared backoff (internal/backoff) with the timer's
			// base and cap: 100 ms doubling to 2 s, equal jitter.
			step := awstimer.RetryPolicy.Step(i + 1)
			if want := min(100*time.Millisecond<<i, 2*time.Second); step != want {
				t.Errorf("retry %d: step %v, want %v", i+1, step, want)
			}
			if s < step/2 || s > step {
				t.Errorf("sleep %d = %v, want within [%v, %v]", i, s, step/2, step)
			}
			if i > 0 && s < sleeps[i-1] {
				t.Errorf("sleeps shrink: %v", sleeps)
			}
			total += s
		}
		if total > awstimer.MaxRetryWait {
			t.Errorf("slept %v in all, more than %v", total, awstimer.MaxRetryWait)
		}
	})
	t.Run("retries are bounded by MaxRetryWait", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *awstimer.Config) { c.Retries = 50 })
		b.sch.always = throttle
		if err := b.timer.Arm(context.Background(), b.fire, now0.Add(time.Hour)); err == nil {
			t.Fatal("Arm succeeded")
		}
		var total time.Duration
		for _, s := range *b.sleeps {
			total += s
		}
		if total > awstimer.MaxRetryWait || len(*b.sleeps) >= 50 {
			t.Errorf("%d sleeps, %v in all; want bounded by %v", len(*b.sleeps), total, awstimer.MaxRetryWait)
		}
	})
}

func TestPermanentErrorsAreNotRetried(t *testing.T) {
	t.Parallel()
	for name, err := range map[string]error{
		"validation": opErr("CreateSchedule", &schtypes.ValidationException{Message: awssdk.String("bad")}),
		"quota":      opErr("CreateSchedule", &schtypes.ServiceQuotaExceededException{Message: awssdk.String("10M schedules")}),
		"not found":  opErr("CreateSchedule", &schtypes.ResourceNotFoundException{Message: awssdk.String("no group")}),
		"403":        opErr("CreateSchedule", httpErr(403)),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.sch.always = err
			got := b.timer.Arm(context.Background(), b.fire, now0.Add(time.Hour))
			if got == nil || !errors.Is(got, err) {
				t.Fatalf("Arm = %v, want %v wrapped", got, err)
			}
			if len(b.sch.calls) != 1 || len(*b.sleeps) != 0 {
				t.Errorf("calls %d, sleeps %v; want no retry", len(b.sch.calls), *b.sleeps)
			}
		})
	}
	t.Run("sqs queue missing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.sqs.errs = []error{&sqstypes.QueueDoesNotExist{}}
		err := b.timer.Arm(context.Background(), b.fire, now0)
		if err == nil || !strings.HasPrefix(err.Error(), "sqs.SendMessage: ") || len(b.sqs.calls) != 1 {
			t.Fatalf("Arm = %v after %d calls, want one wrapped sqs.SendMessage error", err, len(b.sqs.calls))
		}
	})
}

func TestCancelledContextStopsRetrying(t *testing.T) {
	t.Parallel()
	throttle := opErr("CreateSchedule", &schtypes.ThrottlingException{})
	t.Run("cancelled while sleeping", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		b := setup(t, func(c *awstimer.Config) {
			c.Sleep = func(ctx context.Context, _ time.Duration) error { cancel(); return ctx.Err() }
		})
		b.sch.always = throttle
		if err := b.timer.Arm(ctx, b.fire, now0.Add(time.Hour)); err == nil {
			t.Fatal("Arm succeeded")
		}
		if len(b.sch.calls) != 1 {
			t.Errorf("calls = %d after cancel, want 1", len(b.sch.calls))
		}
	})
	t.Run("the caller's context ends during a call", func(t *testing.T) {
		t.Parallel()
		// The call fails with the deadline of the caller's own context:
		// transient as a class, but the loop stops, without sleeping.
		ctx, cancel := context.WithCancel(context.Background())
		b := setup(t)
		b.sch.always = opErr("CreateSchedule", context.DeadlineExceeded)
		b.sch.onCall = cancel
		err := b.timer.Arm(ctx, b.fire, now0.Add(time.Hour))
		if !errors.Is(err, context.DeadlineExceeded) || len(b.sch.calls) != 1 || len(*b.sleeps) != 0 {
			t.Errorf("Arm = %v after %d calls and sleeps %v; want the error after 1 call, no sleep", err, len(b.sch.calls), *b.sleeps)
		}
	})
	t.Run("a context already done makes no call", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		b := setup(t)
		if err := b.timer.Arm(ctx, b.fire, now0.Add(time.Hour)); !errors.Is(err, context.Canceled) || len(b.sch.calls) != 0 {
			t.Errorf("Arm = %v after %d calls, want context.Canceled and none", err, len(b.sch.calls))
		}
	})
	t.Run("a deadline too close for the next wait", func(t *testing.T) {
		t.Parallel()
		// The first wait is at least 50 ms; a deadline 1 ms away (or
		// already past, on a slow machine) leaves no room for it.
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		b := setup(t)
		b.sch.always = throttle
		if err := b.timer.Arm(ctx, b.fire, now0.Add(time.Hour)); err == nil || len(b.sch.calls) > 1 || len(*b.sleeps) != 0 {
			t.Errorf("Arm = %v after %d calls and sleeps %v; want an error, no sleep", err, len(b.sch.calls), *b.sleeps)
		}
	})
}

// TestDefaultSleepHonoursContext: the default sleep returns the context's
// error as soon as the context is done. A sleep that ignored it would hang
// this test for an hour (and time out), never pass.
func TestDefaultSleepHonoursContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := awstimer.DefaultSleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("DefaultSleep(cancelled, 1h) = %v, want context.Canceled", err)
	}
	if err := awstimer.DefaultSleep(context.Background(), 0); err != nil {
		t.Fatalf("DefaultSleep(0) = %v", err)
	}
}

func TestLeadConfig(t *testing.T) {
	t.Parallel()
	at := now0.Add(time.Hour)
	for _, c := range []struct {
		name string
		lead time.Duration
		want time.Time
	}{
		{"default", 0, at.Add(-2 * time.Minute)},
		{"5m", 5 * time.Minute, at.Add(-5 * time.Minute)},
		{"negative means none", -1, at},
		{"beyond the horizon is clamped", time.Hour, at.Add(-7 * time.Minute)},
	} {
		b := setup(t, func(cfg *awstimer.Config) { cfg.Lead = c.lead })
		if err := b.timer.Arm(context.Background(), b.fire, at); err != nil {
			t.Fatal(err)
		}
		if got, want := *b.sch.calls[0].ScheduleExpression, awstimer.AtExpression(c.want); got != want {
			t.Errorf("%s: expression %q, want %q", c.name, got, want)
		}
	}
}

func TestInvalidFire(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, f := range []comms.Fire{{}, {CommunicationID: "x"}, {Token: "t"}} {
		if err := b.timer.Arm(context.Background(), f, now0); err == nil {
			t.Errorf("Arm(%+v) succeeded", f)
		}
	}
	if len(b.sqs.calls)+len(b.sch.calls) != 0 {
		t.Error("an invalid fire reached AWS")
	}
}

// TestRetriesFollowTheSharedClassifier: Arm retries exactly what
// internal/awserr classifies as transient (with the timer's one permanent
// code, a full schedule quota) and returns anything else at once.
func TestRetriesFollowTheSharedClassifier(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		err     error
		retried bool
	}{
		{"throttling", &schtypes.ThrottlingException{}, true},
		{"internal server error", &schtypes.InternalServerException{}, true},
		{"generic throttling code", &smithy.GenericAPIError{Code: "ThrottlingException"}, true},
		{"HTTP 500", httpErr(500), true},
		{"HTTP 429", httpErr(429), true},
		// An attempt's own timeout while the caller still has time.
		{"deadline of an attempt", opErr("CreateSchedule", context.DeadlineExceeded), true},
		{"quota", &schtypes.ServiceQuotaExceededException{}, false},
		{"validation", &schtypes.ValidationException{}, false},
		{"HTTP 400", httpErr(400), false},
		{"access denied", &smithy.GenericAPIError{Code: "AccessDeniedException"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.sch.errs = []error{tc.err}
			err := b.timer.Arm(context.Background(), b.fire, now0.Add(time.Hour))
			switch {
			case tc.retried && (err != nil || len(b.sch.calls) != 2 || len(*b.sleeps) != 1):
				t.Errorf("Arm = %v after %d calls, sleeps %v; want success on the retry", err, len(b.sch.calls), *b.sleeps)
			case !tc.retried && (!errors.Is(err, tc.err) || len(b.sch.calls) != 1 || len(*b.sleeps) != 0):
				t.Errorf("Arm = %v after %d calls, sleeps %v; want the error at once", err, len(b.sch.calls), *b.sleeps)
			}
		})
	}
}

// TestDisarm: only a fire that went to Scheduler (due more than the SQS
// horizon after it was armed) and whose schedule has not fired yet (due
// minus the lead still ahead) is deleted, by its name in the group; a
// schedule already gone is success, any other error is returned.
func TestDisarm(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	armed := now0.Add(-time.Hour)
	cases := []struct {
		name    string
		due     time.Time
		armedAt time.Time
		err     error
		want    bool // a DeleteSchedule call
		deleted bool
		wantErr bool
	}{
		{name: "far, not fired", due: now0.Add(24 * time.Hour), armedAt: armed, want: true, deleted: true},
		{name: "armed far, now near", due: now0.Add(5 * time.Minute), armedAt: armed, want: true, deleted: true},
		{name: "armed within the horizon: SQS", due: now0.Add(10 * time.Minute), armedAt: now0.Add(-time.Minute)},
		{name: "schedule already fired (inside the lead)", due: now0.Add(time.Minute), armedAt: armed},
		{name: "due in the past", due: now0.Add(-time.Minute), armedAt: armed},
		{name: "schedule gone", due: now0.Add(24 * time.Hour), armedAt: armed, want: true,
			err: opErr("DeleteSchedule", &schtypes.ResourceNotFoundException{Message: awssdk.String("no such schedule")})},
		{name: "throttled", due: now0.Add(24 * time.Hour), armedAt: armed, want: true, wantErr: true,
			err: opErr("DeleteSchedule", &schtypes.ThrottlingException{Message: awssdk.String("slow down")})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.sch.deleteErr = tc.err
			f := b.fire
			f.DueAt = tc.due
			deleted, err := b.timer.Disarm(ctx, f, tc.armedAt)
			if (err != nil) != tc.wantErr || deleted != tc.deleted {
				t.Fatalf("Disarm = %v, %v; want deleted %v, error %v", deleted, err, tc.deleted, tc.wantErr)
			}
			if !tc.want {
				if len(b.sch.deletes) != 0 {
					t.Fatalf("DeleteSchedule called %d times, want none", len(b.sch.deletes))
				}
				return
			}
			if len(b.sch.deletes) != 1 {
				t.Fatalf("DeleteSchedule called %d times, want once (no retries)", len(b.sch.deletes))
			}
			in := b.sch.deletes[0]
			if awssdk.ToString(in.Name) != awstimer.ScheduleName(f) || awssdk.ToString(in.GroupName) != "dispatcher" {
				t.Errorf("DeleteSchedule(%q in %q), want %q in dispatcher", awssdk.ToString(in.Name), awssdk.ToString(in.GroupName), awstimer.ScheduleName(f))
			}
		})
	}
}

// TestDisarmIgnoresIncompleteFires: nothing to name, nothing called.
func TestDisarmIgnoresIncompleteFires(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := b.fire // no DueAt
	if deleted, err := b.timer.Disarm(context.Background(), f, now0.Add(-time.Hour)); deleted || err != nil || len(b.sch.deletes) != 0 {
		t.Fatalf("Disarm = %v, %v, %d calls; want nothing", deleted, err, len(b.sch.deletes))
	}
}

// TestArmCarriesTheRequestAndTrace: a fire armed under a request carries
// its id in the message and the schedule's input, and an SQS message the
// invocation's X-Ray trace header; the schedule's name ignores the id.
func TestArmCarriesTheRequestAndTrace(t *testing.T) {
	t.Parallel()
	b := setup(t)
	trace := "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	ctx := context.WithValue(comms.WithRequestID(context.Background(), "req-7"), "x-amzn-trace-id", trace) //nolint:staticcheck // aws-lambda-go's key
	if err := b.timer.Arm(ctx, b.fire, now0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := b.timer.Arm(ctx, b.fire, now0.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := b.timer.Arm(context.Background(), b.fire, now0); err != nil {
		t.Fatal(err)
	}
	var sent comms.Fire
	if err := json.Unmarshal([]byte(*b.sqs.calls[0].MessageBody), &sent); err != nil || sent.RequestID != "req-7" {
		t.Errorf("SQS body %s: request_id %q, %v", *b.sqs.calls[0].MessageBody, sent.RequestID, err)
	}
	if a, ok := b.sqs.calls[0].MessageSystemAttributes["AWSTraceHeader"]; !ok || awssdk.ToString(a.StringValue) != trace {
		t.Errorf("AWSTraceHeader = %+v", b.sqs.calls[0].MessageSystemAttributes)
	}
	var scheduled comms.Fire
	if err := json.Unmarshal([]byte(*b.sch.calls[0].Target.Input), &scheduled); err != nil || scheduled.RequestID != "req-7" {
		t.Errorf("schedule input %s: %v", *b.sch.calls[0].Target.Input, err)
	}
	if *b.sch.calls[0].Name != awstimer.ScheduleName(b.fire) {
		t.Errorf("schedule name %s depends on the request id", *b.sch.calls[0].Name)
	}
	if body := *b.sqs.calls[1].MessageBody; strings.Contains(body, "request_id") || b.sqs.calls[1].MessageSystemAttributes != nil {
		t.Errorf("armed outside a request: %s %+v", body, b.sqs.calls[1].MessageSystemAttributes)
	}
}
