package comms

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// sentEmail is an email row to sarah@example.com (cc boss@example.com)
// sent by attempt 2 as message msg-2.
func sentEmail(now time.Time) Communication {
	return Communication{ID: "r", CompanyID: "co", Channel: ChannelEmail, Status: StatusSent, AttemptCount: 2, Version: 5,
		ProviderMessageID: "msg-2", SentAt: &now, UpdatedAt: now,
		Payload:  json.RawMessage(`{"to_email":"sarah@example.com","cc":["boss@example.com"],"subject":"s","html_body":"<p>x</p>"}`),
		Delivery: Delivery{Status: DeliveryAccepted, At: now}}
}

// applied is ch's row as the store would return it.
func applied(ch Change) Communication {
	row := ch.Row
	row.Version++
	return row
}

// A suppressing report suppresses whatever the row's delivery status: a
// Permanent bounce after a Transient one (both rank bounced), an opt-out
// after an SMS failure (both final failures).
func TestSuppressingReportSuppressesWhateverTheRank(t *testing.T) {
	now := time.Date(2027, 1, 15, 9, 0, 0, 0, time.UTC)
	row := sentEmail(now)
	soft := DeliveryReport{Status: DeliveryBounced, Attempt: 2, ProviderMessageID: "msg-2", Detail: "Transient/MailboxFull", Recipients: []string{"sarah@example.com"}}
	ch, err := RecordDelivery(row, soft, now)
	if err != nil || len(ch.Suppress) != 0 {
		t.Fatalf("transient bounce: %+v %v", ch.Suppress, err)
	}
	row = applied(ch)
	hard := soft
	hard.Detail, hard.Suppress = "Permanent/General", SuppressBounce
	ch, err = RecordDelivery(row, hard, now.Add(time.Minute))
	if err != nil || len(ch.Suppress) != 1 || ch.Suppress[0].Recipient != "sarah@example.com" {
		t.Fatalf("permanent bounce after a transient one: %+v %v", ch.Suppress, err)
	}
	if ch.Row.Delivery.Status != DeliveryBounced || ch.Row.Delivery.Detail != "Permanent/General" {
		t.Errorf("delivery = %+v, want bounced Permanent/General", ch.Row.Delivery)
	}
	// Redelivered: this row's bounce already suppressed her.
	row = applied(ch)
	again := hard
	again.Prior = map[string]Suppression{"sarah@example.com": ch.Suppress[0]}
	if _, err := RecordDelivery(row, again, now.Add(2*time.Minute)); !errors.Is(err, ErrNothingToRecord) {
		t.Errorf("the permanent bounce redelivered: %v, want nothing to record", err)
	}

	sms := Communication{ID: "s", CompanyID: "co", Channel: ChannelSMS, Status: StatusSent, AttemptCount: 1, Version: 3,
		ProviderMessageID: "sms-1", SentAt: &now, Payload: json.RawMessage(`{"to_number":"+14155550100","body":"hi"}`),
		Delivery: Delivery{Status: DeliveryUndeliverable, At: now, Detail: "Unknown error"}}
	ch, err = RecordDelivery(sms, DeliveryReport{Status: DeliveryOptedOut, ProviderMessageID: "sms-1", Recipients: []string{"+14155550100"}, Suppress: SuppressOptOut}, now)
	if err != nil || len(ch.Suppress) != 1 || ch.Row.Delivery.Status != DeliveryOptedOut {
		t.Errorf("opt-out after a failure: %+v %+v %v", ch.Row.Delivery, ch.Suppress, err)
	}
}

// A complaint naming no recipient is about the message's To.
func TestComplaintNamingNoOneSuppressesTheTo(t *testing.T) {
	now := time.Date(2027, 1, 15, 9, 0, 0, 0, time.UTC)
	ch, err := RecordDelivery(sentEmail(now), DeliveryReport{Status: DeliveryComplained, Attempt: 2, ProviderMessageID: "msg-2", Suppress: SuppressComplaint}, now)
	if err != nil || ch.Row.Delivery.Status != DeliveryComplained || len(ch.Suppress) != 1 || ch.Suppress[0].Recipient != "sarah@example.com" {
		t.Fatalf("complaint with no complainedRecipients: %+v %v", ch.Suppress, err)
	}
}

// Reports about attempt 1's message of a row attempt 2 sent: a suppressing
// one suppresses (the row's status unmoved, the event names attempt 1's
// message); any other is nothing to record, marked a duplicate send.
func TestReportOfAnEarlierAttempt(t *testing.T) {
	now := time.Date(2027, 1, 15, 9, 0, 0, 0, time.UTC)
	row := sentEmail(now)
	row.Delivery = Delivery{Status: DeliveryDelivered, At: now}
	c := DeliveryReport{Status: DeliveryComplained, Attempt: 1, ProviderMessageID: "msg-1", Suppress: SuppressComplaint, Recipients: []string{"sarah@example.com"}}
	ch, err := RecordDelivery(row, c, now)
	if err != nil || len(ch.Suppress) != 1 || ch.Suppress[0].Recipient != "sarah@example.com" {
		t.Fatalf("complaint about attempt 1's copy: %+v %v", ch.Suppress, err)
	}
	if ch.Row.Delivery != row.Delivery {
		t.Errorf("delivery moved to %+v", ch.Row.Delivery)
	}
	var d DeliveryData
	if len(ch.Events) != 1 || ch.Events[0].Type != EventComplained || json.Unmarshal(ch.Events[0].Data, &d) != nil || d.ProviderMessageID != "msg-1" {
		t.Errorf("events %+v", ch.Events)
	}
	for _, r := range []DeliveryReport{
		{Status: DeliveryAccepted, Attempt: 1, ProviderMessageID: "msg-1"},
		{Status: DeliveryDelivered, ProviderMessageID: "msg-1"},
		{Status: DeliveryBounced, Attempt: 1, ProviderMessageID: "msg-1", Detail: "Transient/General"},
	} {
		_, err := RecordDelivery(row, r, now)
		var old *EarlierAttemptError
		if !errors.Is(err, ErrNothingToRecord) || !errors.As(err, &old) || !old.Duplicate || old.Attempt != r.Attempt || old.RowAttempt != 2 {
			t.Errorf("%s of attempt 1: %v, want a duplicate EarlierAttemptError", r.Status, err)
		}
	}
}

// An active suppression (manual, or another row's) is kept as it is: the
// report's event is recorded, no suppression written.
func TestReportKeepsAnActiveSuppression(t *testing.T) {
	now := time.Date(2027, 1, 15, 9, 0, 0, 0, time.UTC)
	manual := Suppression{CompanyID: "co", Channel: SuppressEmail, Recipient: "sarah@example.com", Reason: SuppressManual, CreatedAt: now, CreatedBy: "key_1"}
	r := DeliveryReport{Status: DeliveryBounced, Attempt: 2, ProviderMessageID: "msg-2", Suppress: SuppressBounce, Detail: "Permanent/General",
		Recipients: []string{"sarah@example.com"}, Prior: map[string]Suppression{"sarah@example.com": manual}}
	ch, err := RecordDelivery(sentEmail(now), r, now)
	if err != nil || len(ch.Suppress) != 0 || ch.Row.Delivery.Status != DeliveryBounced {
		t.Fatalf("bounce of a manually suppressed address: %+v %v", ch.Suppress, err)
	}
	// Redelivered: the rank says it was recorded (no second event).
	if _, err := RecordDelivery(applied(ch), r, now.Add(time.Minute)); !errors.Is(err, ErrNothingToRecord) {
		t.Errorf("the bounce redelivered: %v, want nothing to record", err)
	}
	// A Permanent bounce after a Transient one, the address suppressed by
	// hand: recorded once (the row takes the permanent detail), then a
	// redelivery records nothing.
	row := sentEmail(now)
	row.Delivery = Delivery{Status: DeliveryBounced, At: now, Detail: "Transient/MailboxFull"}
	ch, err = RecordDelivery(row, r, now)
	if err != nil || len(ch.Suppress) != 0 || ch.Row.Delivery.Detail != "Permanent/General" {
		t.Fatalf("permanent after transient, suppressed by hand: %+v %+v %v", ch.Row.Delivery, ch.Suppress, err)
	}
	if _, err := RecordDelivery(applied(ch), r, now.Add(time.Minute)); !errors.Is(err, ErrNothingToRecord) {
		t.Errorf("redelivered: %v, want nothing to record", err)
	}
}

// TestARedeliveredReportDoesNotUndoALift: row B's complaint arrived while row A's (or a manual) suppression of the
// same address was active: B's row moved to complained, the suppression
// was kept as A's. The company then lifted it. A redelivery of B's report
// (SES at-least-once, or the dev mode's replay of the outbox's last minute
// at a restart) must not suppress the address again.
func TestARedeliveredReportDoesNotUndoALift(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for _, firstBy := range []string{"A", ""} { // another row's report; a manual PUT
		claimed, _ := Claim(Communication{ID: "B", CompanyID: "co", Channel: ChannelEmail, Status: StatusPending, MaxAttempts: 3,
			Payload: json.RawMessage(`{"to_email":"x@example.com"}`)}, now.Add(time.Minute), now)
		sentCh, _ := RecordSent(claimed.Row, "msg-B", now)
		rep := DeliveryReport{Status: DeliveryComplained, Attempt: 1, ProviderMessageID: "msg-B", At: now.Add(time.Second),
			Recipients: []string{"x@example.com"}, Suppress: SuppressComplaint}
		reason, by := SuppressComplaint, SuppressedBySystem
		if firstBy == "" {
			reason, by = SuppressionReason("manual"), "key_1"
		}
		active := Suppression{CompanyID: "co", Channel: SuppressEmail, Recipient: "x@example.com", Reason: reason,
			CommunicationID: firstBy, CreatedAt: now, CreatedBy: by}
		rep.Prior = map[string]Suppression{"x@example.com": active}
		ch, err := RecordDelivery(sentCh.Row, rep, now.Add(2*time.Second))
		if err != nil || len(ch.Suppress) != 0 || ch.Row.Delivery.Status != DeliveryComplained {
			t.Fatalf("first complaint: suppress=%v status=%s err=%v", ch.Suppress, ch.Row.Delivery.Status, err)
		}
		liftAt := now.Add(10 * time.Second)
		lifted := active
		lifted.LiftedAt, lifted.LiftedBy = &liftAt, "key_1"
		lifted.Lifts = []SuppressionLift{active.Lifted("key_1", liftAt)}
		rep.Prior = map[string]Suppression{"x@example.com": lifted}
		ch2, err := RecordDelivery(ch.Row, rep, now.Add(20*time.Second))
		if len(ch2.Suppress) != 0 {
			t.Errorf("first suppressed by %q: the redelivered complaint of B re-suppressed the lifted address: %+v (err %v)", firstBy, ch2.Suppress, err)
		}
	}
}
