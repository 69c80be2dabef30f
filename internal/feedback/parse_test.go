package feedback_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/feedback"
)

// The values the samples in events/feedback carry (see events/README.md).
const (
	sampleCompany   = "sample-events"
	sampleRow       = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	sampleMessageID = "0100019470a1b2c3-5d6e7f80-91a2-4b3c-8d4e-5f6a7b8c9d0e-000000"
	sampleSMSID     = "5e1f0a2b-3c4d-5e6f-8a9b-0c1d2e3f4a5b"
	sampleTo        = "sarah@example.com"
	sampleNumber    = "+61498765432"
)

func sample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", "feedback", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

var sesCases = []struct {
	file string
	want comms.DeliveryReport
	err  error
}{
	{"ses-send.json", comms.DeliveryReport{Status: comms.DeliveryAccepted, At: at("2027-01-15T09:00:00.512Z"),
		Recipients: []string{sampleTo}}, nil},
	{"ses-delivery.json", comms.DeliveryReport{Status: comms.DeliveryDelivered, At: at("2027-01-15T09:00:01.730Z"),
		Detail: "250 2.6.0 Message received", Recipients: []string{sampleTo}}, nil},
	{"ses-bounce-permanent.json", comms.DeliveryReport{Status: comms.DeliveryBounced, At: at("2027-01-15T09:00:02.669Z"),
		Detail: "Permanent/General", Recipients: []string{sampleTo}, Suppress: comms.SuppressBounce}, nil},
	{"ses-bounce-transient.json", comms.DeliveryReport{Status: comms.DeliveryBounced, At: at("2027-01-15T09:30:02.100Z"),
		Detail: "Transient/MailboxFull", Recipients: []string{sampleTo}}, nil},
	{"ses-complaint.json", comms.DeliveryReport{Status: comms.DeliveryComplained, At: at("2027-01-15T10:15:00Z"),
		Detail: "abuse", Recipients: []string{sampleTo}, Suppress: comms.SuppressComplaint}, nil},
	{"ses-reject.json", comms.DeliveryReport{Status: comms.DeliveryUndeliverable, At: at("2027-01-15T09:00:00.512Z"),
		Detail: "Bad content", Recipients: []string{sampleTo}}, nil},
	{"ses-delivery-delay.json", comms.DeliveryReport{Status: comms.DeliveryDelayed, At: at("2027-01-15T09:20:00Z"),
		Detail: "TransientCommunicationFailure", Recipients: []string{sampleTo}}, nil},
	{"ses-rendering-failure.json", comms.DeliveryReport{Status: comms.DeliveryUndeliverable, At: at("2027-01-15T09:00:00.512Z"),
		Detail: "Attribute 'name' is not present in the rendering data.", Recipients: []string{sampleTo}}, nil},
	{"ses-open.json", comms.DeliveryReport{}, feedback.ErrNotTracked},
}

// shapes returns the SES event of an EventBridge sample in each shape it
// can reach us in.
func shapes(t *testing.T, eventBridge []byte) map[string][]byte {
	t.Helper()
	var ev struct {
		Detail json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal(eventBridge, &ev); err != nil {
		t.Fatal(err)
	}
	sns, _ := json.Marshal(map[string]any{
		"Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
		"TopicArn": "arn:aws:sns:us-east-1:123456789012:dispatcher-ses-events", "Message": string(ev.Detail),
		"Timestamp": "2027-01-15T09:00:05.000Z", "SignatureVersion": "1", "Signature": "EXAMPLE",
	})
	return map[string][]byte{"eventbridge": eventBridge, "sns": sns, "bare": ev.Detail}
}

func TestParseSESEventSamples(t *testing.T) {
	for _, tc := range sesCases {
		for shape, body := range shapes(t, sample(t, tc.file)) {
			t.Run(tc.file+"/"+shape, func(t *testing.T) {
				target, got, err := feedback.ParseSESEvent(body)
				if tc.err != nil {
					if !errors.Is(err, tc.err) {
						t.Fatalf("err = %v, want %v", err, tc.err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if want := (feedback.Target{CompanyID: sampleCompany, CommunicationID: sampleRow}); target != want {
					t.Errorf("target = %+v, want %+v", target, want)
				}
				tc.want.Attempt = 1
				tc.want.ProviderMessageID = sampleMessageID
				checkReport(t, got, tc.want)
			})
		}
	}
}

func checkReport(t *testing.T, got, want comms.DeliveryReport) {
	t.Helper()
	if got.Status != want.Status || got.Attempt != want.Attempt || got.ProviderMessageID != want.ProviderMessageID ||
		!got.At.Equal(want.At) || got.At.Location() != time.UTC || got.Detail != want.Detail ||
		!slices.Equal(got.Recipients, want.Recipients) || got.Suppress != want.Suppress {
		t.Errorf("report =\n%+v, want\n%+v", got, want)
	}
}

// edit rewrites the SES event inside an EventBridge sample.
func edit(t *testing.T, file string, f func(detail map[string]any)) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(sample(t, file), &ev); err != nil {
		t.Fatal(err)
	}
	f(ev["detail"].(map[string]any))
	b, _ := json.Marshal(ev)
	return b
}

func tags(d map[string]any) map[string]any {
	return d["mail"].(map[string]any)["tags"].(map[string]any)
}

func TestParseSESEventEdges(t *testing.T) {
	t.Run("OnAccountSuppressionList", func(t *testing.T) {
		_, r, err := feedback.ParseSESEvent(edit(t, "ses-bounce-permanent.json", func(d map[string]any) {
			d["bounce"].(map[string]any)["bounceSubType"] = "OnAccountSuppressionList"
		}))
		if err != nil || r.Status != comms.DeliveryBounced || r.Suppress != comms.SuppressBounce || r.Detail != "Permanent/OnAccountSuppressionList" {
			t.Errorf("%+v, %v", r, err)
		}
	})
	t.Run("UndeterminedBounceDoesNotSuppress", func(t *testing.T) {
		_, r, err := feedback.ParseSESEvent(edit(t, "ses-bounce-permanent.json", func(d map[string]any) {
			d["bounce"].(map[string]any)["bounceType"] = "Undetermined"
			d["bounce"].(map[string]any)["bounceSubType"] = "Undetermined"
		}))
		if err != nil || r.Status != comms.DeliveryBounced || r.Suppress != "" || r.Detail != "Undetermined/Undetermined" {
			t.Errorf("%+v, %v", r, err)
		}
	})
	t.Run("NoSubObjectTimestampFallsBackToMail", func(t *testing.T) {
		_, r, err := feedback.ParseSESEvent(edit(t, "ses-delivery.json", func(d map[string]any) {
			delete(d["delivery"].(map[string]any), "timestamp")
		}))
		if err != nil || !r.At.Equal(at("2027-01-15T09:00:00.512Z")) {
			t.Errorf("%+v, %v", r, err)
		}
	})
	t.Run("NoAttemptTag", func(t *testing.T) {
		_, r, err := feedback.ParseSESEvent(edit(t, "ses-send.json", func(d map[string]any) { delete(tags(d), "attempt") }))
		if err != nil || r.Attempt != 0 {
			t.Errorf("%+v, %v", r, err)
		}
	})
	for _, typ := range []string{"Click", "Subscription"} {
		t.Run(typ, func(t *testing.T) {
			_, _, err := feedback.ParseSESEvent(edit(t, "ses-open.json", func(d map[string]any) { d["eventType"] = typ }))
			if !errors.Is(err, feedback.ErrNotTracked) {
				t.Errorf("err = %v", err)
			}
		})
	}
	for _, drop := range []string{"company_id", "communication_id"} {
		t.Run("Without_"+drop, func(t *testing.T) {
			_, _, err := feedback.ParseSESEvent(edit(t, "ses-delivery.json", func(d map[string]any) { delete(tags(d), drop) }))
			if !errors.Is(err, feedback.ErrNoRow) {
				t.Errorf("err = %v, want ErrNoRow", err)
			}
		})
	}
	t.Run("IdentityNotificationIsNotOurs", func(t *testing.T) {
		// Feedback notifications set on an identity say notificationType and carry no tags.
		_, _, err := feedback.ParseSESEvent([]byte(`{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bouncedRecipients":[]},"mail":{"messageId":"x"}}`))
		if !errors.Is(err, feedback.ErrNoRow) {
			t.Errorf("err = %v, want ErrNoRow", err)
		}
	})

	for _, tc := range []struct {
		name string
		body []byte
		want string
	}{
		{"NotJSON", []byte(`{"eventType":`), "not a JSON object"},
		{"NoEventType", edit(t, "ses-delivery.json", func(d map[string]any) { delete(d, "eventType") }), "missing eventType"},
		{"UnknownEventType", edit(t, "ses-delivery.json", func(d map[string]any) { d["eventType"] = "Teleport" }), `unknown eventType "Teleport"`},
		{"NoMessageID", edit(t, "ses-delivery.json", func(d map[string]any) { delete(d["mail"].(map[string]any), "messageId") }), "missing mail.messageId"},
		{"NoBounce", edit(t, "ses-bounce-permanent.json", func(d map[string]any) { delete(d, "bounce") }), "missing bounce"},
		{"NoBounceType", edit(t, "ses-bounce-permanent.json", func(d map[string]any) { delete(d["bounce"].(map[string]any), "bounceType") }), "missing bounce.bounceType"},
		{"NoComplaint", edit(t, "ses-complaint.json", func(d map[string]any) { delete(d, "complaint") }), "missing complaint"},
		{"NoDelivery", edit(t, "ses-delivery.json", func(d map[string]any) { delete(d, "delivery") }), "missing delivery"},
		{"NoDeliveryDelay", edit(t, "ses-delivery-delay.json", func(d map[string]any) { delete(d, "deliveryDelay") }), "missing deliveryDelay"},
		{"BadAttempt", edit(t, "ses-send.json", func(d map[string]any) { tags(d)["attempt"] = []string{"two"} }), `tag attempt = "two"`},
		{"BadTimestamp", edit(t, "ses-delivery.json", func(d map[string]any) { d["delivery"].(map[string]any)["timestamp"] = "yesterday" }), `timestamp "yesterday"`},
		{"OtherSource", []byte(`{"source":"aws.s3","detail-type":"Object Created","detail":{"eventType":"Send"}}`), `source "aws.s3"`},
		{"SNSSubscriptionConfirmation", []byte(`{"Type":"SubscriptionConfirmation","Message":"You have chosen to subscribe"}`), `Type "SubscriptionConfirmation"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := feedback.ParseSESEvent(tc.body)
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, feedback.ErrNoRow) || errors.Is(err, feedback.ErrNotTracked) {
				t.Errorf("err = %v, want one naming %q", err, tc.want)
			}
		})
	}
}

// logLine returns the message of the one log event of a CloudWatch Logs sample.
func logLine(t *testing.T, file string) []byte {
	t.Helper()
	var p struct {
		LogEvents []struct {
			Message string `json:"message"`
		} `json:"logEvents"`
	}
	if err := json.Unmarshal(sample(t, file), &p); err != nil || len(p.LogEvents) != 1 {
		t.Fatalf("%s: %v, %d log events", file, err, len(p.LogEvents))
	}
	return []byte(p.LogEvents[0].Message)
}

func TestParseSMSDeliveryLogSamples(t *testing.T) {
	for _, tc := range []struct {
		file string
		want comms.DeliveryReport
	}{
		{"sms-success.json", comms.DeliveryReport{Status: comms.DeliveryDelivered, Detail: "Message has been accepted by phone carrier"}},
		{"sms-failure.json", comms.DeliveryReport{Status: comms.DeliveryUndeliverable, Detail: "Unknown error attempting to reach phone"}},
		{"sms-opted-out.json", comms.DeliveryReport{Status: comms.DeliveryOptedOut, Detail: "Phone is currently opted out", Suppress: comms.SuppressOptOut}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			target, got, err := feedback.ParseSMSDeliveryLog(logLine(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if want := (feedback.Target{ProviderMessageID: sampleSMSID}); target != want {
				t.Errorf("target = %+v, want %+v", target, want)
			}
			tc.want.ProviderMessageID = sampleSMSID
			tc.want.At = at("2027-01-15T09:00:00.640Z")
			tc.want.Recipients = []string{sampleNumber}
			checkReport(t, got, tc.want)
		})
	}
}

func TestParseSMSDeliveryLogEdges(t *testing.T) {
	for _, tc := range []struct {
		line   string
		status comms.DeliveryStatus
		want   string // error
	}{
		{`{"notification":{"messageId":"m","timestamp":"2027-01-15T09:00:00.5Z"},"delivery":{"destination":"+1","providerResponse":"PHONE NUMBER IS OPTED OUT"},"status":"FAILURE"}`, comms.DeliveryOptedOut, ""},
		{`{"notification":{"messageId":"m"},"delivery":{"providerResponse":"Phone has blocked SMS"},"status":"FAILURE"}`, comms.DeliveryUndeliverable, ""},
		{`{"notification":{"messageId":"m"},"status":"SUCCESS"}`, comms.DeliveryDelivered, ""},
		{`{"notification":{},"status":"SUCCESS"}`, "", "missing notification.messageId"},
		{`{"notification":{"messageId":"m"}}`, "", "missing status"},
		{`{"notification":{"messageId":"m"},"status":"PENDING"}`, "", `unknown status "PENDING"`},
		{`{"notification":{"messageId":"m","timestamp":"soon"},"status":"SUCCESS"}`, "", `timestamp "soon"`},
		{`not json`, "", "SMS delivery log"},
	} {
		_, r, err := feedback.ParseSMSDeliveryLog([]byte(tc.line))
		if tc.want != "" {
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: err = %v, want one naming %q", tc.line, err, tc.want)
			}
			continue
		}
		if err != nil || r.Status != tc.status || r.Attempt != 0 {
			t.Errorf("%s: %+v, %v", tc.line, r, err)
		}
		if tc.status == comms.DeliveryOptedOut && r.Suppress != comms.SuppressOptOut {
			t.Errorf("%s: opt-out without suppression", tc.line)
		}
		if tc.status != comms.DeliveryOptedOut && r.Suppress != "" {
			t.Errorf("%s: suppress %q", tc.line, r.Suppress)
		}
	}
}
