package emf_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/emf"
)

var at = time.Date(2026, 3, 1, 10, 0, 0, 123_000_000, time.UTC)

// attempt is a delivery-attempt record with the dispatcher's attributes.
func attempt(channel, result, code string) slog.Record {
	r := slog.NewRecord(at, slog.LevelInfo, emf.DeliveryAttempt, 0)
	r.AddAttrs(
		slog.String("communication_id", "01963e4a-7b2c-7d3e-8f40-5a6b7c8d9e0f"),
		slog.String("company_id", "acme"),
		slog.String("channel", channel),
		slog.Int("attempt", 2),
		slog.String("result", result),
		slog.String("error_code", code),
		slog.Float64("duration_ms", 412.5),
	)
	return r
}

// handle runs r through an EMF handler over a JSON handler and decodes the
// one line it writes.
func handle(t *testing.T, namespace string, r slog.Record) (map[string]any, string) {
	t.Helper()
	var buf bytes.Buffer
	if err := emf.NewHandler(slog.NewJSONHandler(&buf, nil), namespace).Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return decodeLine(t, buf.String()), buf.String()
}

func decodeLine(t *testing.T, line string) map[string]any {
	t.Helper()
	if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
		t.Fatalf("want one JSON line, got %q", line)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, line)
	}
	return m
}

func TestDeliveryAttemptCarriesEMF(t *testing.T) {
	t.Parallel()
	m, line := handle(t, "Dispatcher/test", attempt("email", "permanent", "message_rejected"))

	want := map[string]any{
		"Timestamp": float64(at.UnixMilli()),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  "Dispatcher/test",
			"Dimensions": []any{[]any{"Channel", "Result"}},
			"Metrics":    []any{map[string]any{"Name": "Deliveries", "Unit": "Count"}},
		}},
	}
	if !reflect.DeepEqual(m["_aws"], want) {
		t.Errorf("_aws = %#v\nwant %#v", m["_aws"], want)
	}
	if m["Channel"] != "email" || m["Result"] != "permanent" || m["Deliveries"] != float64(1) {
		t.Errorf("Channel %v, Result %v, Deliveries %v; want email, permanent, 1", m["Channel"], m["Result"], m["Deliveries"])
	}
	// The line is still the dispatcher's: every attribute kept as logged.
	for k, v := range map[string]any{
		"msg": "delivery attempt", "level": "INFO", "communication_id": "01963e4a-7b2c-7d3e-8f40-5a6b7c8d9e0f",
		"company_id": "acme", "channel": "email", "attempt": float64(2), "result": "permanent",
		"error_code": "message_rejected", "duration_ms": 412.5,
	} {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	assertEMF(t, m, line)
}

// assertEMF checks the rules of the EMF specification the line must meet:
// "_aws" holds a Timestamp (a number) and CloudWatchMetrics; each
// directive's Namespace is a string, each dimension set names root members
// whose values are strings, and each metric names a root member whose value
// is a number.
func assertEMF(t *testing.T, m map[string]any, line string) {
	t.Helper()
	meta, ok := m["_aws"].(map[string]any)
	if !ok {
		t.Fatalf("no _aws object: %s", line)
	}
	if _, ok := meta["Timestamp"].(float64); !ok {
		t.Errorf("_aws.Timestamp is not a number: %s", line)
	}
	dirs, _ := meta["CloudWatchMetrics"].([]any)
	if len(dirs) == 0 {
		t.Fatalf("_aws.CloudWatchMetrics is empty: %s", line)
	}
	for _, d := range dirs {
		d := d.(map[string]any)
		if ns, _ := d["Namespace"].(string); ns == "" {
			t.Errorf("directive without a Namespace: %s", line)
		}
		for _, set := range d["Dimensions"].([]any) {
			for _, name := range set.([]any) {
				if _, ok := m[name.(string)].(string); !ok {
					t.Errorf("dimension %v is not a string member of the root: %s", name, line)
				}
			}
		}
		for _, mt := range d["Metrics"].([]any) {
			name := mt.(map[string]any)["Name"].(string)
			if _, ok := m[name].(float64); !ok {
				t.Errorf("metric %s is not a number member of the root: %s", name, line)
			}
		}
	}
}

func TestOtherRecordsPassThroughUnchanged(t *testing.T) {
	t.Parallel()
	for _, r := range []slog.Record{
		func() slog.Record {
			r := slog.NewRecord(at, slog.LevelInfo, "request", 0)
			r.AddAttrs(slog.String("path", "/v1/settings"), slog.Int("status", 200))
			return r
		}(),
		// Only the exact message counts.
		func() slog.Record {
			r := attempt("sms", "sent", "")
			r.Message = "delivery attempts"
			return r
		}(),
	} {
		var plain bytes.Buffer
		if err := slog.NewJSONHandler(&plain, nil).Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		_, got := handle(t, "", r)
		if got != plain.String() {
			t.Errorf("record %q changed:\n got %s\nwant %s", r.Message, got, plain.String())
		}
	}
}

func TestDimensionValuesAreBounded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		channel, result         string
		wantChannel, wantResult string
	}{
		{"sms", "sent", "sms", "sent"},
		{"voice_call", "transient", "voice_call", "transient"},
		{"email", "suppressed", "email", "suppressed"},
		{"fax", "sent", "other", "sent"},
		{"email", "exploded: connection reset by peer", "email", "other"},
		{"", "", "other", "other"},
	} {
		m, line := handle(t, "", attempt(tc.channel, tc.result, ""))
		if m["Channel"] != tc.wantChannel || m["Result"] != tc.wantResult {
			t.Errorf("channel %q result %q → Channel %v Result %v; want %s %s", tc.channel, tc.result, m["Channel"], m["Result"], tc.wantChannel, tc.wantResult)
		}
		if m["channel"] != tc.channel || m["result"] != tc.result {
			t.Errorf("the line's own attributes changed: %s", line)
		}
		assertEMF(t, m, line)
	}
	if !reflect.DeepEqual(emf.Results, []string{"sent", "transient", "permanent", "suppressed", "other"}) {
		t.Errorf("Results = %v", emf.Results)
	}
}

// TestThroughALogger: the way the dispatcher logs, with some attributes
// given to Logger.With, at a level the handler filters, and inside a group.
func TestThroughALogger(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(emf.NewHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}), ""))

	log.With("company_id", "acme", "channel", "voice_call").Info(emf.DeliveryAttempt, "result", "sent", "attempt", 1, "error_code", "")
	m := decodeLine(t, buf.String())
	if m["Channel"] != "voice_call" || m["Result"] != "sent" || m["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)["Namespace"] != "Dispatcher" {
		t.Errorf("line %s: want Channel from With, Result from the record, the default namespace", buf.String())
	}
	logged, err := time.Parse(time.RFC3339Nano, m["time"].(string))
	if err != nil || m["_aws"].(map[string]any)["Timestamp"] != float64(logged.UnixMilli()) {
		t.Errorf("Timestamp %v is not the line's time %v in ms", m["_aws"].(map[string]any)["Timestamp"], m["time"])
	}
	assertEMF(t, m, buf.String())

	buf.Reset()
	log.Debug(emf.DeliveryAttempt, "channel", "sms", "result", "sent")
	if buf.Len() != 0 {
		t.Errorf("a debug record was written at level info: %s", buf.String())
	}

	// Inside a group the members would nest where CloudWatch does not
	// look: the record passes through without them.
	buf.Reset()
	log.WithGroup("g").Info(emf.DeliveryAttempt, "channel", "sms", "result", "sent")
	if m := decodeLine(t, buf.String()); m["_aws"] != nil || m["Deliveries"] != nil {
		t.Errorf("a grouped record got EMF members: %s", buf.String())
	}
}

// TestDeliveryReportCarriesEMF: the events function's line per recorded
// report becomes DeliveryReports by Channel and DeliveryStatus; an unknown
// status is counted as other.
func TestDeliveryReportCarriesEMF(t *testing.T) {
	t.Parallel()
	for status, want := range map[string]string{"opted_out": "opted_out", "complained": "complained", "teleported": "other"} {
		r := slog.NewRecord(at, slog.LevelInfo, emf.DeliveryReport, 0)
		r.AddAttrs(slog.String("communication_id", "c"), slog.String("channel", "sms"), slog.String("delivery_status", status))
		m, _ := handle(t, "Dispatcher/test", r)
		aws := m["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)
		if !reflect.DeepEqual(aws["Dimensions"], []any{[]any{"Channel", "DeliveryStatus"}}) ||
			!reflect.DeepEqual(aws["Metrics"], []any{map[string]any{"Name": "DeliveryReports", "Unit": "Count"}}) {
			t.Errorf("%s: directive %v", status, aws)
		}
		if m["Channel"] != "sms" || m["DeliveryStatus"] != want || m["DeliveryReports"] != float64(1) || m["delivery_status"] != status {
			t.Errorf("%s: Channel %v DeliveryStatus %v DeliveryReports %v", status, m["Channel"], m["DeliveryStatus"], m["DeliveryReports"])
		}
	}
}

// TestWebhookAttemptCarriesEMF: a webhook attempt line gets the
// WebhookAttempts metric with the one dimension Result, and no Channel
// (a webhook has none); an unknown result counts as other.
func TestWebhookAttemptCarriesEMF(t *testing.T) {
	t.Parallel()
	for result, want := range map[string]string{"succeeded": "succeeded", "retry": "retry", "gone": "gone", "exploded": "other"} {
		r := slog.NewRecord(at, slog.LevelWarn, emf.WebhookAttempt, 0)
		r.AddAttrs(slog.String("webhook_id", "msg_x"), slog.String("endpoint_id", "e"), slog.String("result", result), slog.Int("status_code", 500))
		m, _ := handle(t, "Dispatcher/test", r)
		aws := m["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)
		if !reflect.DeepEqual(aws["Dimensions"], []any{[]any{"Result"}}) ||
			!reflect.DeepEqual(aws["Metrics"], []any{map[string]any{"Name": "WebhookAttempts", "Unit": "Count"}}) {
			t.Errorf("%s: directive %v", result, aws)
		}
		if _, has := m["Channel"]; has || m["Result"] != want || m["WebhookAttempts"] != float64(1) || m["result"] != result {
			t.Errorf("%s: Channel %v Result %v WebhookAttempts %v", result, m["Channel"], m["Result"], m["WebhookAttempts"])
		}
	}
}
