package lambdafn_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/lambdafn"
)

// dispatcher is a hand-written fake: it fails the fires of one row.
type dispatcher struct {
	got  []comms.Fire
	fail string
	// reqs are the request ids the fires' contexts carried.
	reqs []string
}

func (d *dispatcher) Handle(ctx context.Context, f comms.Fire) error {
	d.got = append(d.got, f)
	d.reqs = append(d.reqs, comms.RequestID(ctx))
	if f.CommunicationID == d.fail {
		return errors.New("store unavailable")
	}
	return nil
}

var log = slog.New(slog.NewJSONHandler(io.Discard, nil))

func TestSQSBatchReportsOnlyFailedRecords(t *testing.T) {
	d := &dispatcher{fail: "bad"}
	ev := events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m1", Body: `{"company_id":"c","communication_id":"ok","token":"t"}`},
		{MessageId: "m2", Body: `{"company_id":"c","communication_id":"bad","token":"t"}`},
		{MessageId: "m3", Body: `not json`},
		{MessageId: "m4", Body: `{"company_id":"c","communication_id":"ok","token":"t","payload":{}}`},
	}}
	raw, _ := json.Marshal(ev)
	out, err := lambdafn.Dispatch(d, log)(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	res := out.(events.SQSEventResponse)
	if len(res.BatchItemFailures) != 1 || res.BatchItemFailures[0].ItemIdentifier != "m2" {
		t.Errorf("failures = %+v, want only m2 (malformed bodies are dropped, not retried)", res.BatchItemFailures)
	}
	if len(d.got) != 2 {
		t.Errorf("handled %d fires, want 2", len(d.got))
	}
}

func TestSchedulerInvoke(t *testing.T) {
	d := &dispatcher{fail: "bad"}
	h := lambdafn.Dispatch(d, log)
	if _, err := h(context.Background(), json.RawMessage(`{"company_id":"c","communication_id":"ok","token":"t","due_at":"2026-12-01T09:00:00Z"}`)); err != nil {
		t.Fatal(err)
	}
	if len(d.got) != 1 || d.got[0].DueAt.IsZero() {
		t.Errorf("fire = %+v", d.got)
	}
	// A failing fire returns the error, so Scheduler retries it.
	if _, err := h(context.Background(), json.RawMessage(`{"company_id":"c","communication_id":"bad","token":"t"}`)); err == nil {
		t.Error("a failed Scheduler fire returned no error")
	}
	// A malformed input is dropped: retrying cannot help.
	if _, err := h(context.Background(), json.RawMessage(`{"company_id":"c"}`)); err != nil || len(d.got) != 2 {
		t.Errorf("malformed input: %v, %d handled", err, len(d.got))
	}
}

// TestFiresCarryTheirRequestID: a fire's request_id is the request id of
// the context it is handled under, through SQS and Scheduler; a fire
// without one adds none.
func TestFiresCarryTheirRequestID(t *testing.T) {
	d := &dispatcher{}
	h := lambdafn.Dispatch(d, log)
	ev := events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m1", Body: `{"company_id":"c","communication_id":"a","token":"t","request_id":"req-a"}`},
		{MessageId: "m2", Body: `{"company_id":"c","communication_id":"b","token":"t"}`},
	}}
	raw, _ := json.Marshal(ev)
	if _, err := h(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	if _, err := h(context.Background(), json.RawMessage(`{"company_id":"c","communication_id":"d","token":"t","request_id":"req-d"}`)); err != nil {
		t.Fatal(err)
	}
	want := []string{"req-a", "", "req-d"}
	if len(d.reqs) != 3 || d.reqs[0] != want[0] || d.reqs[1] != want[1] || d.reqs[2] != want[2] {
		t.Errorf("request ids = %q, want %q", d.reqs, want)
	}
	if d.got[0].RequestID != "req-a" {
		t.Errorf("decoded fire = %+v", d.got[0])
	}
}
