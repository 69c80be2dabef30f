package e2e_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/dispatcherhq/dispatcher/internal/awstest"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/testrand"
	awstimer "github.com/dispatcherhq/dispatcher/internal/timer/aws"
)

// uniqueTo is a recipient no other test uses, so its messages can be
// counted in the emulator's records.
func uniqueTo(t *testing.T) string {
	return strings.ToLower(awstest.Unique(t, "to")) + "@e2e.example.com"
}

func setTo(to string) func(map[string]any) {
	return func(b map[string]any) { b["payload"].(map[string]any)["to_email"] = to }
}

// TestEmailDueIn20Minutes: API Gateway event → row in DynamoDB → one
// Scheduler schedule with the right expression, target and input → the
// harness fires it (2 minutes early, as set) → the fire is re-armed on SQS
// for the remaining seconds → the dispatch handler sends through SES →
// moto recorded the message → GET shows sent. Also: the AWS calls of the
// whole lifecycle.
func TestEmailDueIn20Minutes(t *testing.T) {
	t.Parallel()
	s := deploy(t, options{})
	// A warm process: the API key is cached, as on a warm Lambda.
	if status, _ := s.call(event(t, "api-list.json", time.Time{}, nil)); status != 200 {
		t.Fatalf("list: %d", status)
	}
	s.counter.Reset()

	due := s.clock.Now().Add(20 * time.Minute).Truncate(time.Second)
	to := uniqueTo(t)
	ev := event(t, "api-create-email.json", due, setTo(to))
	delete(ev.Headers, "idempotency-key") // counted separately below
	status, body := s.call(ev)
	if status != 201 {
		t.Fatalf("create: %d %v", status, body)
	}
	id := body["data"].(map[string]any)["id"].(string)

	var row comms.Communication
	var err error
	s.counter.Exclude(func() { row, err = s.app.Store.GetCommunication(s.ctx, sampleCompany, id) })
	if err != nil || row.Status != comms.StatusPending || !row.NextAttemptAt.Equal(due) {
		t.Fatalf("row in DynamoDB: %+v, %v", row, err)
	}
	list, err := s.schedules.List(s.ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("schedules: %+v, %v", list, err)
	}
	sch := list[0]
	// The fire carries the id of the request that armed it (the API's
	// meta.request_id), so the dispatch that handles it logs it.
	wantFire := comms.FireOf(row)
	wantFire.RequestID, _ = body["meta"].(map[string]any)["request_id"].(string)
	wantInput, _ := json.Marshal(wantFire)
	if sch.Name != awstimer.ScheduleName(comms.FireOf(row)) ||
		sch.Expression != "at("+due.Add(-2*time.Minute).UTC().Format("2006-01-02T15:04:05")+")" ||
		sch.Timezone != "UTC" || sch.TargetARN != s.conf.DispatchTargetARN || sch.RoleARN != s.conf.SchedulerRoleARN ||
		sch.Input != string(wantInput) || sch.ActionAfterCompletion != "DELETE" {
		t.Errorf("schedule = %+v\nwant at(%s) UTC → %s with input %s", sch, due.Add(-2*time.Minute).UTC().Format(time.RFC3339), s.conf.DispatchTargetARN, wantInput)
	}
	if n := s.fireDue(); n != 0 {
		t.Fatalf("%d schedules fired 20 minutes early", n)
	}

	// Scheduler fires within its window of the early time: here 2 s before due.
	s.clock.AdvanceTo(due.Add(-2 * time.Second))
	if n := s.fireDue(); n != 1 {
		t.Fatalf("fired %d schedules, want 1", n)
	}
	if left, _ := s.schedules.List(s.ctx); len(left) != 0 {
		t.Errorf("a fired schedule was kept: %+v", left)
	}
	s.counter.Exclude(func() {
		if s.get(id)["status"] != "pending" {
			t.Fatalf("sent before its time")
		}
	})
	delayed := queueDepth(t, s, sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed)
	if delayed != 1 {
		t.Errorf("%d delayed SQS messages after the early fire, want 1 (the re-armed fire)", delayed)
	}
	s.clock.AdvanceTo(due)
	if n := s.pump(4 * time.Second); n != 1 {
		t.Fatalf("pumped %d SQS messages, want 1", n)
	}
	calls := s.counter.ByService()
	lifecycle := s.counter.String()
	got := s.get(id)
	if got["status"] != "sent" || got["attempt_count"].(float64) != 1 || got["provider_message_id"] == nil {
		t.Fatalf("after dispatch: %v", got)
	}
	if n := sesMessagesTo(t, to); n != 1 {
		t.Errorf("moto recorded %d SES messages to %s, want 1", n, to)
	}

	// The lifecycle's AWS calls: create, schedule, early fire, re-arm, send.
	t.Logf("AWS calls for one email due in 20 minutes (warm process, no Idempotency-Key): %s", lifecycle)
	timerCalls := calls["Scheduler"] + calls["SQS"]
	// DynamoDB: 3 writes (create, claim, record) and reads of the row, the
	// company at dispatch and — since quiet hours apply to every row — at
	// create, and — the two added by delivery feedback — the recipient's
	// suppression at create (the warning) and at dispatch (the refusal).
	if calls["DynamoDB"] > 9 || timerCalls > 2 || calls["SESv2"] != 1 {
		t.Errorf("lifecycle made %d DynamoDB calls (goal ≤ 9), %d timer calls (goal ≤ 2), %d SES calls: %s",
			calls["DynamoDB"], timerCalls, calls["SESv2"], lifecycle)
	}
}

func queueDepth(t *testing.T, s *stack, attr sqstypes.QueueAttributeName) int {
	t.Helper()
	out, err := sqs.NewFromConfig(s.cfg).GetQueueAttributes(s.ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(s.conf.QueueURL), AttributeNames: []sqstypes.QueueAttributeName{attr}})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(out.Attributes[string(attr)], &n)
	return n
}

// TestSMSDueIn5Seconds takes the SQS path only: no schedule, a delayed
// message, SNS Publish with the company's number as origination.
func TestSMSDueIn5Seconds(t *testing.T) {
	t.Parallel()
	s := deploy(t, options{})
	// A number libphonenumber accepts (the API validates with it), unique
	// to the run; built from the clock, one in six was invalid.
	to := testrand.New(t).PhoneNumber("AU")
	status, body := s.call(event(t, "api-create-sms.json", s.clock.Now().Add(5*time.Second), func(b map[string]any) {
		b["payload"].(map[string]any)["to_number"] = to
	}))
	if status != 201 {
		t.Fatalf("create: %d %v", status, body)
	}
	id := body["data"].(map[string]any)["id"].(string)
	if list, _ := s.schedules.List(s.ctx); len(list) != 0 {
		t.Errorf("an SMS due in 5 s made a schedule: %+v", list)
	}
	deadline := time.Now().Add(20 * time.Second)
	for s.get(id)["status"] == "pending" && time.Now().Before(deadline) {
		s.pump(2 * time.Second)
	}
	got := s.get(id)
	if got["status"] != "sent" || got["attempt_count"].(float64) != 1 {
		t.Fatalf("sms: %v", got)
	}
	if n := snsMessagesTo(t, to); n != 1 {
		t.Errorf("moto recorded %d SMS to %s, want 1", n, to)
	}
}
