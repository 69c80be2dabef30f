package awsfn_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher/internal/app/awsfn"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/emf"
)

// TestNewLoggerEmitsEMF: the Lambda functions' logger turns delivery
// attempts into EMF lines in the configured namespace, at its level.
func TestNewLoggerEmitsEMF(t *testing.T) {
	var buf bytes.Buffer
	log := awsfn.NewLogger(&buf, "warn", "Dispatcher/test")
	log.Info(emf.DeliveryAttempt, "channel", "email", "result", "sent")
	if buf.Len() != 0 {
		t.Fatalf("an info line at level warn: %s", buf.String())
	}
	log.Warn(emf.DeliveryAttempt, "channel", "email", "result", "permanent", "error_code", "message_rejected")
	var line struct {
		AWS struct {
			CloudWatchMetrics []struct{ Namespace string }
		} `json:"_aws"`
		Channel, Result string
		Deliveries      int
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if len(line.AWS.CloudWatchMetrics) != 1 || line.AWS.CloudWatchMetrics[0].Namespace != "Dispatcher/test" ||
		line.Channel != "email" || line.Result != "permanent" || line.Deliveries != 1 {
		t.Errorf("line %s", strings.TrimSpace(buf.String()))
	}
}

// TestNewLoggerAddsTheRequestID: a line logged under a context carrying a
// request id has it (once, also on an EMF line); a line naming its own
// keeps that one; without one, none is added.
func TestNewLoggerAddsTheRequestID(t *testing.T) {
	var buf bytes.Buffer
	log := awsfn.NewLogger(&buf, "info", "")
	ctx := comms.WithRequestID(context.Background(), "req-42")
	log.InfoContext(ctx, emf.DeliveryAttempt, "channel", "sms", "result", "sent")
	log.With("fn", "x").InfoContext(ctx, "other")
	log.InfoContext(ctx, "request", "request_id", "own")
	log.InfoContext(context.Background(), "none")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{"req-42", "req-42", "own", ""}
	for i, l := range lines {
		if n := strings.Count(l, `"request_id"`); (want[i] == "" && n != 0) || (want[i] != "" && n != 1) {
			t.Errorf("line %d has %d request_id: %s", i, n, l)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		if got, _ := m["request_id"].(string); got != want[i] {
			t.Errorf("line %d request_id %q, want %q: %s", i, got, want[i], l)
		}
	}
	if !strings.Contains(lines[0], `"_aws"`) {
		t.Errorf("the delivery attempt is not an EMF line: %s", lines[0])
	}
}
