package devsink_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/channel/devsink"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
)

func TestEmailReportsFollowTheMailboxSimulator(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for to, want := range map[string][]string{
		"success@simulator.amazonses.com":         {"Send", "Delivery"},
		"Bounce+x@Simulator.AmazonSES.com":        {"Send", "Bounce/General"},
		"complaint@simulator.amazonses.com":       {"Send", "Delivery", "Complaint"},
		"suppressionlist@simulator.amazonses.com": {"Send", "Bounce/OnAccountSuppressionList"},
		"ooto@simulator.amazonses.com":            {"Send", "Delivery"},
		"sarah@example.com":                       {"Send", "Delivery"},
		"bounce@example.com":                      {"Send", "Delivery"},
	} {
		m := dispatch.Email{CommunicationID: "c1", CompanyID: "co", Attempt: 2, From: "a@b.example", To: to}
		var got []string
		for _, r := range devsink.EmailReports(m, "msg-1", at) {
			var ev struct {
				EventType string `json:"eventType"`
				Mail      struct {
					MessageID string              `json:"messageId"`
					Tags      map[string][]string `json:"tags"`
				} `json:"mail"`
				Bounce struct {
					BounceType    string `json:"bounceType"`
					BounceSubType string `json:"bounceSubType"`
				} `json:"bounce"`
			}
			if r.Kind != devsink.ReportSESEvent || json.Unmarshal(r.Body, &ev) != nil {
				t.Fatalf("%s: report %s %s", to, r.Kind, r.Body)
			}
			if ev.Mail.MessageID != "msg-1" || ev.Mail.Tags["communication_id"][0] != "c1" || ev.Mail.Tags["company_id"][0] != "co" || ev.Mail.Tags["attempt"][0] != "2" {
				t.Errorf("%s: mail = %+v", to, ev.Mail)
			}
			name := ev.EventType
			if name == "Bounce" {
				if ev.Bounce.BounceType != "Permanent" {
					t.Errorf("%s: bounce type %q", to, ev.Bounce.BounceType)
				}
				name += "/" + ev.Bounce.BounceSubType
			}
			got = append(got, name)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: events %v, want %v", to, got, want)
		}
	}
}

func TestSMSReportsFollowTheSimulatorNumbers(t *testing.T) {
	for to, want := range map[string][2]string{
		devsink.SMSSimulatorSuccess: {"SUCCESS", "Message has been accepted by phone carrier"},
		devsink.SMSSimulatorFailure: {"FAILURE", "Unknown error attempting to reach phone"},
		"+61412348888":              {"FAILURE", devsink.ProviderResponseOptedOut},
		"+14155550123":              {"SUCCESS", "Message has been accepted by phone carrier"},
	} {
		rs := devsink.SMSReports(dispatch.SMS{To: to}, "sns-1", time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
		var line struct {
			Notification struct{ MessageID, Timestamp string }
			Delivery     struct{ Destination, ProviderResponse string }
			Status       string
		}
		if len(rs) != 1 || rs[0].Kind != devsink.ReportSMSDeliveryLog || json.Unmarshal(rs[0].Body, &line) != nil {
			t.Fatalf("%s: %+v", to, rs)
		}
		if line.Status != want[0] || line.Delivery.ProviderResponse != want[1] || line.Delivery.Destination != to ||
			line.Notification.MessageID != "sns-1" || line.Notification.Timestamp != "2026-12-01 09:00:00.000" {
			t.Errorf("%s: %+v, want %v", to, line, want)
		}
	}
}

// TestOutboxIsTheLedgerOfWhatWasSent: FindAttempt finds a sent attempt by
// row and attempt number, and nothing for a failed or unknown one.
func TestOutboxIsTheLedgerOfWhatWasSent(t *testing.T) {
	ctx := context.Background()
	o, err := devsink.Open(filepath.Join(t.TempDir(), "outbox.jsonl"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := o.SendEmail(ctx, dispatch.Email{CommunicationID: "c1", Attempt: 1, From: "a@b.example", To: "x+transient@example.com"}); err == nil {
		t.Fatal("want a transient failure")
	}
	id, err := o.SendEmail(ctx, dispatch.Email{CommunicationID: "c1", Attempt: 2, From: "a@b.example", To: "x@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id      string
		attempt int
		want    string
		found   bool
	}{{"c1", 2, id, true}, {"c1", 1, "", false}, {"c1", 3, "", false}, {"c2", 2, "", false}} {
		got, found, err := o.FindAttempt(ctx, comms.Communication{ID: c.id, AttemptCount: c.attempt})
		if err != nil || found != c.found || got != c.want {
			t.Errorf("FindAttempt(%s, %d) = %q %v %v, want %q %v", c.id, c.attempt, got, found, err, c.want, c.found)
		}
	}
}
