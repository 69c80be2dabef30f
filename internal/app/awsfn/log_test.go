package awsfn_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher/internal/app/awsfn"
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
