package lambdafn_test

// The events function on a real SQLite store, fed SES events (the
// repository's samples, retagged) about rows sent more than once or
// suppressed by hand.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/feedback"
	"github.com/dispatcherhq/dispatcher/internal/lambdafn"
	"github.com/dispatcherhq/dispatcher/internal/store/sqlite"
)

// sesEvent is the sample events/feedback/ses-<name>.json retagged for
// (company, id, attempt) and message msgID.
func sesEvent(t *testing.T, name, company, id string, attempt int, msgID string) []byte {
	t.Helper()
	b, err := os.ReadFile(eventsDir("feedback", "ses-"+name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	mail := doc["detail"].(map[string]any)["mail"].(map[string]any)
	mail["tags"] = map[string]any{"company_id": []string{company}, "communication_id": []string{id}, "attempt": []string{fmt.Sprint(attempt)}}
	mail["messageId"] = msgID
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type attemptsEnv struct {
	ctx   context.Context
	store *sqlite.Store
	now   time.Time
	logs  *bytes.Buffer
	rec   *feedback.Recorder
	log   *slog.Logger
}

func newAttemptsEnv(t *testing.T) *attemptsEnv {
	ctx := t.Context()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "fb.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	now := time.Date(2027, 1, 15, 9, 0, 0, 0, time.UTC)
	if err := s.CreateCompany(ctx, comms.Company{ID: "acme", Credits: 100, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return &attemptsEnv{ctx: ctx, store: s, now: now, logs: logs, log: log,
		rec: feedback.New(s, log, func() time.Time { return now.Add(time.Hour) })}
}

func (e *attemptsEnv) apply(t *testing.T) func(comms.Change, error) comms.Communication {
	return func(ch comms.Change, err error) comms.Communication {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		row, _, err := e.store.UpdateCommunication(e.ctx, ch, false)
		if err != nil {
			t.Fatal(err)
		}
		return row
	}
}

// sentTwice is an email row to sarah@example.com whose attempt 1 was
// released with no recorded result (it went out as msg-attempt-1, the
// dispatcher never knew) and attempt 2 sent as msg-attempt-2.
func (e *attemptsEnv) sentTwice(t *testing.T, id string) comms.Communication {
	t.Helper()
	c := comms.Communication{ID: id, CompanyID: "acme", Channel: comms.ChannelEmail, ScheduledFor: e.now, NextAttemptAt: e.now,
		Payload: json.RawMessage(`{"to_email":"sarah@example.com","subject":"s","html_body":"<p>x</p>"}`), Source: comms.SourceAPI, MaxAttempts: 3}
	if _, err := e.store.CreateCommunication(e.ctx, comms.Create(c, e.now), nil); err != nil {
		t.Fatal(err)
	}
	row, err := e.store.GetCommunication(e.ctx, "acme", id)
	if err != nil {
		t.Fatal(err)
	}
	row = e.apply(t)(comms.Claim(row, e.now.Add(2*time.Minute), e.now.Add(time.Second)))
	row = e.apply(t)(comms.ReleaseExpiredLease(row, e.now.Add(10*time.Minute)))
	row = e.apply(t)(comms.Claim(row, e.now.Add(13*time.Minute), e.now.Add(11*time.Minute)))
	return e.apply(t)(comms.RecordSent(row, "msg-attempt-2", e.now.Add(11*time.Minute)))
}

func (e *attemptsEnv) run(t *testing.T, bodies ...[]byte) {
	t.Helper()
	var ev events.SQSEvent
	for i, b := range bodies {
		ev.Records = append(ev.Records, sqsRecord(i, b))
	}
	if res := lambdafn.EventsSQS(e.ctx, e.rec, e.log, ev); len(res.BatchItemFailures) != 0 {
		t.Fatalf("batch item failures: %v", res.BatchItemFailures)
	}
}

func (e *attemptsEnv) eventTypes(t *testing.T, id string) []string {
	evs, _, err := e.store.ListEvents(e.ctx, "acme", id, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, string(ev.Type))
	}
	return out
}

// A complaint and a permanent bounce about attempt 1's copy suppress the
// recipient (a person complained about mail we sent) without moving the
// row's delivery status; the late SEND of attempt 1 is logged as a
// duplicate send naming both attempts.
func TestReportsAboutAnEarlierAttempt(t *testing.T) {
	e := newAttemptsEnv(t)
	id := "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5d"
	row := e.sentTwice(t, id)
	e.run(t, sesEvent(t, "delivery", "acme", id, 2, "msg-attempt-2"))
	e.run(t, sesEvent(t, "send", "acme", id, 1, "msg-attempt-1"), sesEvent(t, "complaint", "acme", id, 1, "msg-attempt-1"))

	sup, err := e.store.GetSuppression(e.ctx, "acme", comms.SuppressEmail, "sarah@example.com")
	if err != nil || !sup.Active() || sup.Reason != comms.SuppressComplaint || sup.CommunicationID != id {
		t.Fatalf("complaint about attempt 1's copy: suppression %+v, %v", sup, err)
	}
	got, err := e.store.GetCommunication(e.ctx, "acme", id)
	if err != nil || got.Delivery.Status != comms.DeliveryDelivered || got.ProviderMessageID != row.ProviderMessageID {
		t.Errorf("row after attempt 1's reports: %+v %v, want delivered, msg-attempt-2", got.Delivery, err)
	}
	if types := strings.Join(e.eventTypes(t, id), ","); !strings.HasSuffix(types, "sent,delivered,complained") {
		t.Errorf("events %s", types)
	}
	var warned bool
	for _, line := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) == nil && l["msg"] == feedback.MsgDuplicateSend && l["level"] == "WARN" &&
			l["communication_id"] == id && l["attempt"] == 1.0 && l["row_attempt"] == 2.0 &&
			l["provider_message_id"] == "msg-attempt-1" && l["row_provider_message_id"] == "msg-attempt-2" {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no duplicate-send WARN naming both attempts in\n%s", e.logs)
	}

	// A permanent bounce of attempt 1's copy after the company lifted the
	// complaint's suppression suppresses again (a bounce is new news).
	if _, err := e.store.LiftSuppression(e.ctx, "acme", comms.SuppressEmail, "sarah@example.com", "key_1", e.now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	e.run(t, sesEvent(t, "bounce-permanent", "acme", id, 1, "msg-attempt-1"))
	sup, err = e.store.GetSuppression(e.ctx, "acme", comms.SuppressEmail, "sarah@example.com")
	if err != nil || !sup.Active() || sup.Reason != comms.SuppressBounce || len(sup.Lifts) != 1 {
		t.Errorf("permanent bounce of attempt 1's copy: %+v %v", sup, err)
	}
}

// A company's manual suppression is kept as it is when a report of a row
// sent before it would suppress the same address.
func TestReportKeepsAManualSuppression(t *testing.T) {
	e := newAttemptsEnv(t)
	id := "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5e"
	e.sentTwice(t, id)
	manual, created, err := e.store.PutSuppression(e.ctx, comms.Suppression{CompanyID: "acme", Channel: comms.SuppressEmail, Recipient: "sarah@example.com",
		Reason: comms.SuppressManual, Detail: "asked by phone", CreatedAt: e.now, CreatedBy: "key_123"})
	if err != nil || !created {
		t.Fatal(created, err)
	}
	e.run(t, sesEvent(t, "bounce-permanent", "acme", id, 2, "msg-attempt-2"))
	got, err := e.store.GetSuppression(e.ctx, "acme", comms.SuppressEmail, "sarah@example.com")
	if err != nil || got.Reason != manual.Reason || got.CreatedBy != manual.CreatedBy || got.Detail != manual.Detail || !got.CreatedAt.Equal(manual.CreatedAt) {
		t.Errorf("after the bounce: %+v %v, want the manual one %+v", got, err, manual)
	}
	row, err := e.store.GetCommunication(e.ctx, "acme", id)
	if err != nil || row.Delivery.Status != comms.DeliveryBounced {
		t.Errorf("row %+v %v: the bounce is still recorded", row.Delivery, err)
	}
}
