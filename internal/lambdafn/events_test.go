package lambdafn_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/feedback"
	"github.com/dispatcherhq/dispatcher/internal/lambdafn"
)

var updateSamples = flag.Bool("update-samples", false, "rewrite the generated sample events in events/ from events/feedback/")

// The readable SES samples, in the order of the generated SQS batch.
var sesSamples = []string{"send", "delivery", "bounce-permanent", "bounce-transient", "complaint", "reject",
	"delivery-delay", "rendering-failure", "open"}

// The readable CloudWatch Logs payloads, each generated as its own event.
var smsSamples = []string{"success", "failure", "opted-out"}

func eventsDir(parts ...string) string {
	return filepath.Join(append([]string{"..", "..", "events"}, parts...)...)
}

func readCompact(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return buf.Bytes()
}

// sqsRecord wraps body as the events queue delivers it.
func sqsRecord(i int, body []byte) events.SQSMessage {
	return events.SQSMessage{
		MessageId:     fmt.Sprintf("7d3e1f20-4a5b-4c6d-8e7f-90a1b2c3d4%02d", i),
		ReceiptHandle: fmt.Sprintf("AQEB-sample-feedback-receipt-%d", i),
		Body:          string(body),
		Attributes: map[string]string{"ApproximateReceiveCount": "1", "SentTimestamp": "1800003602000",
			"SenderId": "AIDAEXAMPLEEVENTBRIDGE", "ApproximateFirstReceiveTimestamp": "1800003602100"},
		MessageAttributes: map[string]events.SQSMessageAttribute{},
		EventSource:       "aws:sqs",
		EventSourceARN:    "arn:aws:sqs:us-east-1:123456789012:dispatcher-events",
		AWSRegion:         "us-east-1",
	}
}

// sesBatch is the generated events-ses-sqs-batch.json.
func sesBatch(t *testing.T) []byte {
	t.Helper()
	var ev events.SQSEvent
	for i, name := range sesSamples {
		ev.Records = append(ev.Records, sqsRecord(i, readCompact(t, eventsDir("feedback", "ses-"+name+".json"))))
	}
	b, err := json.MarshalIndent(ev, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// awslogs encodes a CloudWatch Logs payload as a subscription delivers it:
// gzip, then base64.
func awslogs(t *testing.T, payload []byte) []byte {
	t.Helper()
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	_, _ = w.Write(payload)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(events.CloudwatchLogsEvent{AWSLogs: events.CloudwatchLogsRawData{
		Data: base64.StdEncoding.EncodeToString(z.Bytes())}}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestSampleEventsAreGenerated keeps the Lambda events built from the
// readable samples in events/feedback in step with them (go generate
// ./internal/lambdafn rewrites them): the SQS batch of every SES sample,
// and one CloudWatch Logs event per SMS sample, whose awslogs.data must
// decode to the readable payload.
func TestSampleEventsAreGenerated(t *testing.T) {
	want := map[string][]byte{"events-ses-sqs-batch.json": sesBatch(t)}
	payloads := map[string][]byte{}
	for _, name := range smsSamples {
		file := "events-sms-" + name + ".json"
		payloads[file] = readCompact(t, eventsDir("feedback", "sms-"+name+".json"))
		want[file] = awslogs(t, payloads[file])
	}
	for file, b := range want {
		path := eventsDir(file)
		if *updateSamples {
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (go generate ./internal/lambdafn writes it)", err)
		}
		if p, ok := payloads[file]; ok {
			// gzip output may differ between Go versions: compare what it decodes to.
			var ev events.CloudwatchLogsEvent
			if err := json.Unmarshal(got, &ev); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if decoded := decodeAWSLogs(t, ev.AWSLogs.Data); !bytes.Equal(decoded, p) {
				t.Errorf("%s decodes to\n%s\nwant the payload of events/feedback:\n%s\n(go generate ./internal/lambdafn)", file, decoded, p)
			}
			continue
		}
		if !bytes.Equal(got, b) {
			t.Errorf("%s is stale: go generate ./internal/lambdafn", file)
		}
	}
}

func decodeAWSLogs(t *testing.T, data string) []byte {
	t.Helper()
	z, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		t.Fatal(err)
	}
	r, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// recorder is a hand-written fake Recorder: it remembers every report and
// fails those of one status.
type recorder struct {
	mu   sync.Mutex
	got  []recorded
	fail comms.DeliveryStatus
}

type recorded struct {
	target feedback.Target
	report comms.DeliveryReport
}

func (r *recorder) Record(_ context.Context, t feedback.Target, rep comms.DeliveryReport) (feedback.Outcome, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, recorded{t, rep})
	if rep.Status == r.fail {
		return "", errors.New("store unavailable")
	}
	return feedback.Recorded, nil
}

func readRaw(t *testing.T, file string) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(eventsDir(file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEventsSQSBatch(t *testing.T) {
	rec := &recorder{fail: comms.DeliveryBounced}
	var ev events.SQSEvent
	if err := json.Unmarshal(readRaw(t, "events-ses-sqs-batch.json"), &ev); err != nil {
		t.Fatal(err)
	}
	ev.Records = append(ev.Records,
		sqsRecord(90, []byte(`not json`)),
		sqsRecord(91, []byte(`{"source":"aws.ses","detail-type":"Email Sent","detail":{"eventType":"Send","mail":{"messageId":"m","tags":{}}}}`)),
	)
	raw, _ := json.Marshal(ev)
	out, err := lambdafn.Events(rec, log)(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	res := out.(events.SQSEventResponse)
	// The two bounces hit the failing store; everything else is settled.
	var failed []string
	for _, f := range res.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	if want := []string{ev.Records[2].MessageId, ev.Records[3].MessageId}; strings.Join(failed, ",") != strings.Join(want, ",") {
		t.Errorf("failures = %v, want the two bounces %v (unparseable, foreign and untracked records are acknowledged)", failed, want)
	}
	var statuses []string
	for _, g := range rec.got {
		statuses = append(statuses, string(g.report.Status))
		if g.target.CompanyID != "sample-events" || g.target.CommunicationID != "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b" || g.report.Attempt != 1 {
			t.Errorf("recorded %+v", g)
		}
	}
	if got, want := strings.Join(statuses, ","), "accepted,delivered,bounced,bounced,complained,undeliverable,delayed,undeliverable"; got != want {
		t.Errorf("recorded %s, want %s (the open is not recorded)", got, want)
	}
}

func TestEventsCloudWatchLogs(t *testing.T) {
	for _, tc := range []struct {
		name string
		want comms.DeliveryStatus
	}{{"success", comms.DeliveryDelivered}, {"failure", comms.DeliveryUndeliverable}, {"opted-out", comms.DeliveryOptedOut}} {
		t.Run(tc.name, func(t *testing.T) {
			raw := readRaw(t, "events-sms-"+tc.name+".json")
			rec := &recorder{}
			if _, err := lambdafn.Events(rec, log)(context.Background(), raw); err != nil {
				t.Fatal(err)
			}
			if len(rec.got) != 1 || rec.got[0].report.Status != tc.want ||
				rec.got[0].target != (feedback.Target{ProviderMessageID: "5e1f0a2b-3c4d-5e6f-8a9b-0c1d2e3f4a5b"}) {
				t.Errorf("recorded %+v", rec.got)
			}
			// A store error fails the invocation, so Lambda retries it.
			rec = &recorder{fail: tc.want}
			if _, err := lambdafn.Events(rec, log)(context.Background(), raw); err == nil {
				t.Error("a store error returned no error")
			}
		})
	}

	t.Run("SeveralLinesOneBad", func(t *testing.T) {
		payload := fmt.Sprintf(`{"messageType":"DATA_MESSAGE","logGroup":"g","logEvents":[
			{"id":"1","timestamp":1,"message":%q},{"id":"2","timestamp":2,"message":"not json"},{"id":"3","timestamp":3,"message":%q}]}`,
			`{"notification":{"messageId":"a"},"delivery":{"destination":"+61400000001","providerResponse":"Phone is currently opted out"},"status":"FAILURE"}`,
			`{"notification":{"messageId":"b"},"delivery":{"destination":"+61400000002"},"status":"SUCCESS"}`)
		rec := &recorder{}
		if _, err := lambdafn.Events(rec, log)(context.Background(), awslogs(t, []byte(payload))); err != nil {
			t.Fatal(err)
		}
		if len(rec.got) != 2 || rec.got[0].report.Suppress != comms.SuppressOptOut || rec.got[1].target.ProviderMessageID != "b" {
			t.Errorf("recorded %+v", rec.got)
		}
	})
	t.Run("RedrivenThroughTheEventsQueue", func(t *testing.T) {
		// A batch the function failed on, parked on the events DLQ by its
		// on-failure destination and sent to the events queue by `dispatcher
		// dlq redrive`: the SQS path records it as the logs path does.
		payload := fmt.Sprintf(`{"messageType":"DATA_MESSAGE","logGroup":"g","logEvents":[{"id":"1","timestamp":1,"message":%q}]}`,
			`{"notification":{"messageId":"c"},"delivery":{"destination":"+61400000003"},"status":"SUCCESS"}`)
		raw, _ := json.Marshal(events.SQSEvent{Records: []events.SQSMessage{sqsRecord(1, awslogs(t, []byte(payload)))}})
		rec := &recorder{}
		out, err := lambdafn.Events(rec, log)(context.Background(), raw)
		if err != nil || len(out.(events.SQSEventResponse).BatchItemFailures) != 0 {
			t.Fatalf("%v, %+v", err, out)
		}
		if len(rec.got) != 1 || rec.got[0].target.ProviderMessageID != "c" || rec.got[0].report.Status != comms.DeliveryDelivered {
			t.Fatalf("recorded %+v", rec.got)
		}
		// A store error fails that message alone, so SQS redelivers it.
		rec = &recorder{fail: comms.DeliveryDelivered}
		out, _ = lambdafn.Events(rec, log)(context.Background(), raw)
		if f := out.(events.SQSEventResponse).BatchItemFailures; len(f) != 1 {
			t.Fatalf("failures %v, want the message", f)
		}
	})
	t.Run("ControlMessage", func(t *testing.T) {
		rec := &recorder{}
		payload := `{"messageType":"CONTROL_MESSAGE","logGroup":"","logEvents":[{"id":"","timestamp":1,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}`
		if _, err := lambdafn.Events(rec, log)(context.Background(), awslogs(t, []byte(payload))); err != nil || len(rec.got) != 0 {
			t.Errorf("%v, %+v", err, rec.got)
		}
	})
	t.Run("UndecodableData", func(t *testing.T) {
		rec := &recorder{}
		if _, err := lambdafn.Events(rec, log)(context.Background(), json.RawMessage(`{"awslogs":{"data":"bm90IGd6aXA="}}`)); err != nil || len(rec.got) != 0 {
			t.Errorf("%v, %+v: a payload that cannot decode is dropped, not retried", err, rec.got)
		}
	})
}

// TestEventsUnknownShape: an invocation that can never succeed — not an
// SQS or CloudWatch Logs event, or one whose members have the wrong types —
// is acknowledged (no error: Lambda would retry it) and records nothing.
func TestEventsUnknownShape(t *testing.T) {
	rec := &recorder{}
	h := lambdafn.Events(rec, log)
	for _, raw := range []string{`{"detail":{}}`, `[]`, `nope`, `{"Records":5}`, `{"Records":{}}`, `{"Records":[1,2,3]}`,
		`{"Records":[{"body":5}]}`, `{"awslogs":"x"}`, `{"awslogs":{"data":5}}`} {
		if _, err := h(context.Background(), json.RawMessage(raw)); err != nil {
			t.Errorf("%s: %v, want it acknowledged", raw, err)
		}
	}
	if len(rec.got) != 0 {
		t.Errorf("recorded %v", rec.got)
	}
}
