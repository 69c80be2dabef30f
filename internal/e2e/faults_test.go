package e2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/testrand"
)

// TestFaultsLoseNothingAndDuplicateNothing injects throttling and 5xx into
// 20 % of the HTTP requests of every AWS client the product uses (DynamoDB,
// SQS, Scheduler, SES, SNS) and drives a mix of rows — near ones through
// SQS, far ones through Scheduler — to the end: every row must end in one
// terminal state, and every recipient must have received exactly one message.
func TestFaultsLoseNothingAndDuplicateNothing(t *testing.T) {
	t.Parallel()
	s := deploy(t, options{faults: 0.2, dispatch: dispatch.Config{BackoffBase: 200 * time.Millisecond}})
	type sent struct{ id, to, channel string }
	var rows []sent
	create := func(file string, at time.Time, to string) {
		edit := setTo(to)
		if strings.Contains(file, "sms") {
			edit = func(b map[string]any) { b["payload"].(map[string]any)["to_number"] = to }
		}
		ev := event(t, file, at, edit)
		ev.Headers["idempotency-key"] = "faults-" + to
		// A client retries a failed create with the same Idempotency-Key.
		for attempt := 1; ; attempt++ {
			status, body := s.call(ev)
			if status == 201 {
				rows = append(rows, sent{body["data"].(map[string]any)["id"].(string), to, file})
				return
			}
			if status < 500 || attempt == 10 {
				t.Fatalf("create %s: %d %v", to, status, body)
			}
		}
	}
	now := s.clock.Now()
	// Recipients unique to the run (moto's records outlive it), from the
	// run's logged seed: never from the clock, whose digits made invalid
	// phone numbers.
	r := testrand.New(t)
	run := r.Hex(8)
	for i := range 8 {
		create("api-create-email.json", now.Add(time.Duration(i)*200*time.Millisecond), fmt.Sprintf("near%d-%s@faults.example.com", i, run))
		create("api-create-sms.json", now.Add(time.Duration(i)*200*time.Millisecond), r.PhoneNumber("AU"))
	}
	far := now.Add(30 * time.Minute).Truncate(time.Second)
	for i := range 4 {
		create("api-create-email.json", far, fmt.Sprintf("far%d-%s@faults.example.com", i, run))
	}

	// Drive it as AWS would: Scheduler fires, SQS delivers, the sweeper runs
	// every "minute" (the clock jumps so leases and lost fires come due).
	deadline := time.Now().Add(90 * time.Second)
	for {
		pending := 0
		for _, r := range rows {
			var row comms.Communication
			var err error
			for range 5 { // the inspection read goes through the faulty client too
				if row, err = s.app.Store.GetCommunication(s.ctx, sampleCompany, r.id); err == nil {
					break
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			if !row.Status.Terminal() {
				pending++
			}
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d rows still not terminal after 90 s", pending, len(rows))
		}
		if s.clock.Now().Before(far) {
			s.clock.AdvanceTo(far.Add(-2 * time.Second))
		}
		s.fireDue()
		s.pump(500 * time.Millisecond)
		s.clock.Advance(90 * time.Second)
		if _, err := s.app.Dispatcher.Sweep(s.ctx); err != nil {
			t.Logf("sweep (faults are expected): %v", err)
		}
	}
	s.faults.SetRate(0)
	emails, sms := recorded(t)
	for _, r := range rows {
		got := s.get(r.id)
		if got["status"] != "sent" {
			t.Errorf("%s ended %v: %v", r.to, got["status"], got["last_error"])
		}
		n := emails[r.to]
		if strings.HasPrefix(r.to, "+") {
			n = sms[r.to]
		}
		if n != 1 {
			t.Errorf("%s received %d messages, want exactly 1", r.to, n)
		}
	}
	t.Logf("injected faults: %v; dispatcher: sent %d, retried %d, dropped %d, lost records %d",
		s.faults.Injected(), s.app.Dispatcher.Stats().Sent.Load(), s.app.Dispatcher.Stats().Retried.Load(),
		s.app.Dispatcher.Stats().Dropped.Load(), s.app.Dispatcher.Stats().LostRecord.Load())
}
