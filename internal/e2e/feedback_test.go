package e2e_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/lambdafn"
)

// The fixed values of the delivery feedback samples (events/README.md).
const (
	sampleSESMessageID = "0100019470a1b2c3-5d6e7f80-91a2-4b3c-8d4e-5f6a7b8c9d0e-000000"
	sampleSNSMessageID = "5e1f0a2b-3c4d-5e6f-8a9b-0c1d2e3f4a5b"
	sampleTo           = "sarah@example.com"
	sampleNumber       = "+61498765432"
	otherCompany       = "feedback-other"
)

// feedbackStack is a deployed stack with the events function's handler.
type feedbackStack struct {
	*stack
	events func(raw json.RawMessage) (any, error)
}

func deployFeedback(t *testing.T) *feedbackStack {
	t.Helper()
	s := deploy(t, options{})
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	h := lambdafn.Events(s.app.Feedback, log)
	if err := app.CreateCompany(s.ctx, s.app.Store, otherCompany, 10, "UTC"); err != nil {
		t.Fatal(err)
	}
	return &feedbackStack{stack: s, events: func(raw json.RawMessage) (any, error) { return h(s.ctx, raw) }}
}

// sesEvent loads events/feedback/ses-<name>.json for row (its id, company,
// SES message id and recipient substituted), tagged with attempt.
func sesEvent(t *testing.T, name string, row comms.Communication, to string, attempt int) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", "feedback", "ses-"+name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer(sampleRow, row.ID, sampleSESMessageID, row.ProviderMessageID, sampleTo, to).Replace(string(b))
	var ev map[string]any
	if err := json.Unmarshal([]byte(s), &ev); err != nil {
		t.Fatal(err)
	}
	tags := ev["detail"].(map[string]any)["mail"].(map[string]any)["tags"].(map[string]any)
	tags["company_id"] = []string{row.CompanyID}
	tags["attempt"] = []string{strconv.Itoa(attempt)}
	return ev
}

func setTag(ev map[string]any, name, value string) map[string]any {
	ev["detail"].(map[string]any)["mail"].(map[string]any)["tags"].(map[string]any)[name] = []string{value}
	return ev
}

// feedSES sends the events as one SQS batch through the events handler and
// fails the test on any batch item failure.
func (f *feedbackStack) feedSES(t *testing.T, evs ...map[string]any) {
	t.Helper()
	var batch events.SQSEvent
	for i, ev := range evs {
		body, _ := json.Marshal(ev)
		batch.Records = append(batch.Records, events.SQSMessage{MessageId: "feedback-" + strconv.Itoa(i), Body: string(body),
			EventSource: "aws:sqs", EventSourceARN: "arn:aws:sqs:us-east-1:123456789012:dispatcher-events"})
	}
	raw, _ := json.Marshal(batch)
	out, err := f.events(raw)
	if err != nil {
		t.Fatalf("events handler: %v", err)
	}
	if res := out.(events.SQSEventResponse); len(res.BatchItemFailures) != 0 {
		t.Fatalf("batch item failures %+v", res.BatchItemFailures)
	}
}

// row reads a row straight from DynamoDB.
func (f *feedbackStack) row(t *testing.T, company, id string) comms.Communication {
	t.Helper()
	r, err := f.app.Store.GetCommunication(f.ctx, company, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// history lists a row's event types, oldest first.
func (f *feedbackStack) history(t *testing.T, company, id string) []comms.Event {
	t.Helper()
	evs, _, err := f.app.Store.ListEvents(f.ctx, company, id, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func types(evs []comms.Event) string {
	var out []string
	for _, e := range evs {
		out = append(out, string(e.Type))
	}
	return strings.Join(out, ",")
}

// TestDeliveryFeedbackOnAWS: rows sent through SES and SNS on the
// emulator, then the sample SES events and SMS delivery logs (ids
// substituted) through the events function's handler, recorded in
// DynamoDB by the real store.
func TestDeliveryFeedbackOnAWS(t *testing.T) {
	t.Parallel()
	f := deployFeedback(t)

	// Two emails and an SMS, sent for real through the emulator.
	due := f.clock.Now().Add(3 * time.Second).Truncate(time.Second)
	toA, toB := strings.Replace(uniqueTo(t), "@", "-a@", 1), strings.Replace(uniqueTo(t), "@", "-b@", 1)
	var ids []string
	for _, ev := range []events.APIGatewayV2HTTPRequest{
		event(t, "api-create-email.json", due, setTo(toA)),
		event(t, "api-create-email.json", due, setTo(toB)),
		event(t, "api-create-sms.json", due, nil),
	} {
		delete(ev.Headers, "idempotency-key")
		status, body := f.call(ev)
		if status != 201 {
			t.Fatalf("create: %d %v", status, body)
		}
		ids = append(ids, body["data"].(map[string]any)["id"].(string))
	}
	f.clock.AdvanceTo(due)
	// moto delays the messages in real time; a loaded machine (the other
	// emulator tests run in parallel) can stretch that: pump until the
	// three fires came, within a bound for a broken build.
	n := 0
	for deadline := time.Now().Add(30 * time.Second); n < 3 && time.Now().Before(deadline); {
		n += f.pump(2 * time.Second)
	}
	if n != 3 {
		t.Fatalf("pumped %d SQS messages, want 3", n)
	}
	emailA, emailB, sms := f.row(t, sampleCompany, ids[0]), f.row(t, sampleCompany, ids[1]), f.row(t, sampleCompany, ids[2])
	for _, r := range []comms.Communication{emailA, emailB, sms} {
		if r.Status != comms.StatusSent || r.ProviderMessageID == "" || r.AttemptCount != 1 {
			t.Fatalf("row not sent: %+v", r)
		}
	}

	t.Run("ForeignTagWritesNothing", func(t *testing.T) {
		// A complaint tagged with another company but naming this company's
		// row: Unknown, acknowledged, nothing written anywhere.
		before := f.row(t, sampleCompany, emailA.ID)
		f.feedSES(t, setTag(sesEvent(t, "complaint", emailA, toA, 1), "company_id", otherCompany))
		after := f.row(t, sampleCompany, emailA.ID)
		if after.Version != before.Version || after.EventSeq != before.EventSeq || after.Delivery != before.Delivery {
			t.Errorf("row changed: %+v → %+v", before, after)
		}
		if _, err := f.app.Store.GetSuppression(f.ctx, otherCompany, comms.SuppressEmail, toA); !errors.Is(err, comms.ErrNotFound) {
			t.Errorf("other company's suppression of %s: %v", toA, err)
		}
		if _, err := f.app.Store.GetSuppression(f.ctx, sampleCompany, comms.SuppressEmail, toA); !errors.Is(err, comms.ErrNotFound) {
			t.Errorf("suppression of %s: %v", toA, err)
		}
	})

	t.Run("DuplicatesAndOutOfOrder", func(t *testing.T) {
		// Delivery before Send, then the Delivery again, then a Send and a
		// DeliveryDelay that arrive late: one delivered event, and the row
		// stays delivered.
		f.feedSES(t, sesEvent(t, "delivery", emailA, toA, 1))
		f.feedSES(t, sesEvent(t, "delivery", emailA, toA, 1), sesEvent(t, "send", emailA, toA, 1))
		f.feedSES(t, sesEvent(t, "delivery-delay", emailA, toA, 1))
		if got := types(f.history(t, sampleCompany, emailA.ID)); got != "created,attempt_started,sent,delivered" {
			t.Errorf("history %s, want one delivered event after sent", got)
		}
		r := f.row(t, sampleCompany, emailA.ID)
		if r.Status != comms.StatusSent || r.Delivery.Status != comms.DeliveryDelivered ||
			!r.Delivery.At.Equal(time.Date(2027, 1, 15, 9, 0, 1, 730e6, time.UTC)) || r.Delivery.Detail != "250 2.6.0 Message received" {
			t.Errorf("row delivery %+v, want delivered at the Delivery event's time", r.Delivery)
		}
	})

	t.Run("PermanentBounceSuppressesForThatCompanyOnly", func(t *testing.T) {
		f.feedSES(t, sesEvent(t, "bounce-permanent", emailB, toB, 1))
		f.feedSES(t, sesEvent(t, "bounce-permanent", emailB, toB, 1)) // SES delivers at least once
		evs := f.history(t, sampleCompany, emailB.ID)
		if got := types(evs); got != "created,attempt_started,sent,bounced" {
			t.Fatalf("history %s", got)
		}
		var data comms.DeliveryData
		if err := json.Unmarshal(evs[len(evs)-1].Data, &data); err != nil {
			t.Fatal(err)
		}
		if data.Status != comms.DeliveryBounced || data.Detail != "Permanent/General" || !data.Suppressed ||
			data.ProviderMessageID != emailB.ProviderMessageID || len(data.Recipients) != 1 || data.Recipients[0] != toB {
			t.Errorf("bounced data %+v", data)
		}
		if r := f.row(t, sampleCompany, emailB.ID); r.Delivery.Status != comms.DeliveryBounced {
			t.Errorf("delivery_status %q, want bounced", r.Delivery.Status)
		}
		sup, err := f.app.Store.GetSuppression(f.ctx, sampleCompany, comms.SuppressEmail, toB)
		if err != nil || !sup.Active() || sup.Reason != comms.SuppressBounce || sup.CommunicationID != emailB.ID || sup.CreatedBy != comms.SuppressedBySystem {
			t.Errorf("suppression %+v, %v", sup, err)
		}
		if _, err := f.app.Store.GetSuppression(f.ctx, otherCompany, comms.SuppressEmail, toB); !errors.Is(err, comms.ErrNotFound) {
			t.Errorf("another company's suppression of %s: %v (want none)", toB, err)
		}
	})

	t.Run("SMSDeliveredFromCloudWatchLogs", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join("..", "..", "events", "feedback", "sms-success.json"))
		if err != nil {
			t.Fatal(err)
		}
		payload := strings.ReplaceAll(string(b), sampleSNSMessageID, sms.ProviderMessageID)
		var z bytes.Buffer
		w := gzip.NewWriter(&z)
		_, _ = w.Write([]byte(payload))
		_ = w.Close()
		raw, _ := json.Marshal(events.CloudwatchLogsEvent{AWSLogs: events.CloudwatchLogsRawData{Data: base64.StdEncoding.EncodeToString(z.Bytes())}})
		if _, err := f.events(raw); err != nil {
			t.Fatalf("events handler: %v", err)
		}
		if got := types(f.history(t, sampleCompany, sms.ID)); got != "created,attempt_started,sent,delivered" {
			t.Errorf("history %s", got)
		}
		if r := f.row(t, sampleCompany, sms.ID); r.Delivery.Status != comms.DeliveryDelivered {
			t.Errorf("delivery_status %q, want delivered", r.Delivery.Status)
		}
	})

	t.Run("SendSettlesAnUncertainAttempt", func(t *testing.T) {
		// A row whose dispatcher lost track of attempt 1 after SES took it
		// (processing, lease running): SES's Send event for attempt 1
		// settles it as sent, so it is never sent again; one for another
		// attempt changes nothing.
		now := f.clock.Now().UTC().Truncate(time.Millisecond)
		row := comms.Communication{ID: "0193a1b2-c3d4-7e5f-8a9b-00000000fb01", CompanyID: sampleCompany, Channel: comms.ChannelEmail,
			Status: comms.StatusProcessing, ScheduledFor: now, NextAttemptAt: now, MaxAttempts: 3, AttemptCount: 1,
			LeaseUntil: now.Add(2 * time.Minute), Source: comms.SourceAPI, Token: "settle",
			Payload:   json.RawMessage(`{"to_email":"` + toA + `","subject":"Hi","html_body":"<p>Hi</p>"}`),
			CreatedAt: now, UpdatedAt: now}
		if _, err := f.app.Store.CreateCommunication(f.ctx, comms.Change{Row: row}, nil); err != nil {
			t.Fatal(err)
		}
		row.ProviderMessageID = "0100019470a1b2c3-settle-000000"
		f.feedSES(t, sesEvent(t, "send", row, toA, 2))
		if r := f.row(t, sampleCompany, row.ID); r.Status != comms.StatusProcessing {
			t.Fatalf("a Send of attempt 2 moved a row at attempt 1: %+v", r)
		}
		f.feedSES(t, sesEvent(t, "send", row, toA, 1))
		r := f.row(t, sampleCompany, row.ID)
		if r.Status != comms.StatusSent || r.ProviderMessageID != row.ProviderMessageID || r.SentAt == nil {
			t.Fatalf("row after its Send event: %+v", r)
		}
		evs := f.history(t, sampleCompany, row.ID)
		var data comms.SentData
		if len(evs) == 0 || evs[len(evs)-1].Type != comms.EventSent || json.Unmarshal(evs[len(evs)-1].Data, &data) != nil || !data.SettledLate || data.Attempt != 1 {
			t.Errorf("history %s, last %+v", types(evs), data)
		}
	})
}
