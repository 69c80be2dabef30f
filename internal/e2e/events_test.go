package e2e_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// seedRow stores the row the sample events name, due now, with the token
// of scheduler-fire.json.
func (s *stack) seedRow() {
	s.t.Helper()
	now := s.clock.Now().UTC().Truncate(time.Millisecond)
	row := comms.Communication{ID: sampleRow, CompanyID: sampleCompany, Channel: comms.ChannelSMS, Status: comms.StatusPending,
		ScheduledFor: now, NextAttemptAt: now, MaxAttempts: 3, Source: comms.SourceAPI, Token: sampleToken,
		Payload:   json.RawMessage(`{"message_body":"Hi from a sample event","phone_number_id":"` + samplePhone + `","to_number":"+61498765432"}`),
		CreatedAt: now, UpdatedAt: now}
	if _, err := s.app.Store.CreateCommunication(s.ctx, comms.Change{Row: row}, nil); err != nil {
		s.t.Fatal(err)
	}
}

func readEvent(t *testing.T, name string, v any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s does not decode into %T: %v", name, v, err)
	}
}

// TestSampleEventsRunAgainstTheEmulator decodes every file in events/ into
// the exact type its handler takes and runs it.
func TestSampleEventsRunAgainstTheEmulator(t *testing.T) {
	t.Parallel()
	s := deploy(t, options{})
	s.seedRow()
	for _, tc := range []struct {
		file   string
		status int
		check  func(body map[string]any) bool
	}{
		{"api-get.json", 200, func(b map[string]any) bool { return b["data"].(map[string]any)["id"] == sampleRow }},
		{"api-list.json", 200, func(b map[string]any) bool { return len(b["data"].([]any)) == 1 }},
		{"api-create-email.json", 201, nil},
		{"api-create-sms.json", 201, nil},
		{"api-create-invalid.json", 422, func(b map[string]any) bool { return len(b["error"].(map[string]any)["details"].([]any)) == 4 }},
		{"api-get-unauthenticated.json", 401, nil},
		{"api-cancel.json", 200, func(b map[string]any) bool { return b["data"].(map[string]any)["status"] == "cancelled" }},
	} {
		var ev events.APIGatewayV2HTTPRequest
		readEvent(t, tc.file, &ev)
		if strings.Contains(tc.file, "create") && !strings.Contains(tc.file, "invalid") {
			ev = event(t, tc.file, s.clock.Now().Add(20*time.Minute), nil)
		}
		status, body := s.call(ev)
		if status != tc.status || (tc.check != nil && !tc.check(body)) {
			t.Errorf("%s: %d %v", tc.file, status, body)
		}
	}

	// The dispatch events run on a second stack whose sample row is still pending.
	d := deploy(t, options{})
	d.seedRow()
	var fire json.RawMessage
	readEvent(t, "scheduler-fire.json", &fire)
	if _, err := d.dispatch(d.ctx, fire); err != nil {
		t.Fatalf("scheduler-fire.json: %v", err)
	}
	if got := d.get(sampleRow); got["status"] != "sent" {
		t.Errorf("after scheduler-fire.json: %v", got)
	}
	var batch events.SQSEvent
	readEvent(t, "sqs-batch.json", &batch)
	raw, _ := json.Marshal(batch)
	out, err := d.dispatch(d.ctx, raw)
	if err != nil {
		t.Fatalf("sqs-batch.json: %v", err)
	}
	if res := out.(events.SQSEventResponse); len(res.BatchItemFailures) != 0 {
		t.Errorf("sqs-batch.json: failures %+v (a sent row's fire, a stale fire and a malformed body are all settled)", res.BatchItemFailures)
	}
	var tick json.RawMessage
	readEvent(t, "sweeper-tick.json", &tick)
	if _, err := d.sweep(d.ctx, tick); err != nil {
		t.Errorf("sweeper-tick.json: %v", err)
	}
	if got := d.app.Dispatcher.Stats().Sent.Load(); got != 1 {
		t.Errorf("%d sends from the dispatch events, want exactly 1", got)
	}
}
