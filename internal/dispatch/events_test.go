package dispatch_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
)

// history returns a row's event types, in order, checking the sequences.
func (b *bundle) history(id string) string {
	b.t.Helper()
	evs, more, err := b.store.ListEvents(b.ctx, "acme", id, 0, 100)
	if err != nil || more {
		b.t.Fatalf("ListEvents: %v (more %v)", err, more)
	}
	types := make([]string, len(evs))
	for i, e := range evs {
		if e.Sequence != int64(i+1) {
			b.t.Fatalf("event %d of %s has sequence %d", i, id, e.Sequence)
		}
		types[i] = string(e.Type)
	}
	return strings.Join(types, ",")
}

func (b *bundle) lastData(id string) map[string]any {
	b.t.Helper()
	evs, _, err := b.store.ListEvents(b.ctx, "acme", id, 0, 100)
	if err != nil || len(evs) == 0 {
		b.t.Fatalf("ListEvents: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(evs[len(evs)-1].Data, &m); err != nil {
		b.t.Fatal(err)
	}
	return m
}

// TestEveryPathLeavesItsEvents walks each way a fire can end and checks
// the row's history says what happened.
func TestEveryPathLeavesItsEvents(t *testing.T) {
	t.Parallel()

	t.Run("Expired", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		row := b.create("email", time.Minute, `{"cancel_policy":{"max_delay_minutes":10}}`)
		b.clock.Advance(time.Hour)
		if err := b.d.Handle(b.ctx, comms.FireOf(row)); err != nil {
			t.Fatal(err)
		}
		if got := b.history(row.ID); got != "created,expired,cancelled" {
			t.Fatalf("history %s", got)
		}
		if got := b.get(row.ID); got.CancelReason != comms.CancelExpired {
			t.Fatalf("cancel_reason %q", got.CancelReason)
		}
	})

	t.Run("DeferredToBusinessHours", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		row := b.create("sms", time.Hour, `{"respect_business_hours":true}`)
		set := comms.DefaultSettings() // the company moves to afternoons only
		for _, d := range comms.Weekdays[:5] {
			set.BusinessHours[d] = [][2]string{{"14:00", "18:00"}}
		}
		if err := b.store.PutSettings(b.ctx, "acme", set); err != nil {
			t.Fatal(err)
		}
		b.fire(row.ID)
		if d := b.lastData(row.ID); d["reason"] != "business_hours" || d["next_attempt_at"] != "2026-12-02T14:00:00Z" {
			t.Fatalf("deferred data %v", d)
		}
		b.fire(row.ID)
		if got := b.history(row.ID); got != "created,deferred,attempt_started,sent" {
			t.Fatalf("history %s", got)
		}
	})

	t.Run("TransientThenSent", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		row := b.create("email", time.Minute, "")
		b.senders.result = func(_, _ string, attempt int) error {
			if attempt == 1 {
				return comms.Transient("throttled", "slow down")
			}
			return nil
		}
		b.fire(row.ID)
		if d := b.lastData(row.ID); d["retry_at"] == nil || d["error"].(map[string]any)["code"] != "throttled" {
			t.Fatalf("attempt_failed data %v", d)
		}
		b.fire(row.ID)
		if got := b.history(row.ID); got != "created,attempt_started,attempt_failed,attempt_started,sent" {
			t.Fatalf("history %s", got)
		}
	})

	t.Run("LeaseExpiredAndSweptAndRepairLogged", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var logs bytes.Buffer
		d := dispatch.New(b.store, b.timer, dispatch.Senders{Email: b.senders, Voice: b.senders}, dispatch.Config{},
			dispatch.WithClock(b.clock.Now), dispatch.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
		email, voice := b.create("email", 0, ""), b.create("voice", 0, "")
		for _, r := range []comms.Communication{email, voice} {
			ch, err := comms.Claim(b.get(r.ID), b.clock.Now().Add(2*time.Minute), b.clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := b.store.UpdateCommunication(b.ctx, ch, false); err != nil {
				t.Fatal(err)
			}
		}
		b.clock.Advance(4 * time.Minute)
		if _, err := d.Sweep(b.ctx); err != nil {
			t.Fatal(err)
		}
		b.clock.Advance(5 * time.Minute) // SettleWait for the email's provider record
		if _, err := d.Sweep(b.ctx); err != nil {
			t.Fatal(err)
		}
		if got := b.history(email.ID); got != "created,attempt_started,attempt_failed,attempt_started,sent" {
			t.Errorf("email history %s", got)
		}
		if got := b.history(voice.ID); got != "created,attempt_started,attempt_failed,failed" {
			t.Errorf("voice history %s", got)
		}
		var actions []string
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "sweep repair" {
				actions = append(actions, m["action"].(string))
			}
		}
		if strings.Join(actions, ",") != "released,outcome_unknown" && strings.Join(actions, ",") != "outcome_unknown,released" {
			t.Errorf("sweep repair lines %v, want released and outcome_unknown", actions)
		}
	})

	t.Run("CadenceOutcomeAndFollowUp", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		root := b.fire(b.create("voice", time.Minute, cadence3).ID)
		res := b.outcome(root, 3)
		if got := b.history(root.ID); got != "created,attempt_started,sent,outcome_recorded,follow_up_created" {
			t.Fatalf("root history %s", got)
		}
		if d := b.lastData(root.ID); d["follow_up_id"] != res.FollowUpID || d["attempt"] != 2.0 {
			t.Fatalf("follow_up_created data %v, follow-up %s", d, res.FollowUpID)
		}
		if got := b.history(res.FollowUpID); got != "created" {
			t.Fatalf("follow-up history %s", got)
		}
		if d := b.lastData(res.FollowUpID); d["source"] != "cadence" {
			t.Fatalf("follow-up created data %v", d)
		}
		// A duplicate outcome records nothing more.
		b.outcome(root, 3)
		if got := b.history(root.ID); got != "created,attempt_started,sent,outcome_recorded,follow_up_created" {
			t.Fatalf("root history after a duplicate %s", got)
		}
		// Cancelling the follow-up through the API records the reason api.
		if _, err := b.svc.Cancel(b.ctx, b.p, res.FollowUpID); err != nil {
			t.Fatal(err)
		}
		if got := b.get(res.FollowUpID).CancelReason; got != comms.CancelAPI {
			t.Fatalf("cancel_reason %q", got)
		}
	})
}

// TestEditWaitingForARetryKeepsItsBackoff: a PATCH that does not move the
// row must not turn a retry into an immediate attempt.
func TestEditWaitingForARetryKeepsItsBackoff(t *testing.T) {
	t.Parallel()
	b := setup(t)
	row := b.create("email", time.Minute, "")
	b.senders.result = func(_, _ string, attempt int) error { return comms.Transient("throttled", "slow down") }
	waiting := b.fire(row.ID)
	if waiting.Status != comms.StatusPending || !waiting.NextAttemptAt.After(b.clock.Now()) {
		t.Fatalf("after a transient failure: %s next %v", waiting.Status, waiting.NextAttemptAt)
	}
	edited, _, err := b.svc.Patch(b.ctx, b.p, row.ID, []byte(`{"payload":{"subject":"Changed"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !edited.NextAttemptAt.Equal(waiting.NextAttemptAt) {
		t.Fatalf("next_attempt_at %v after the edit, want the retry's %v", edited.NextAttemptAt, waiting.NextAttemptAt)
	}
	moved, _, err := b.svc.Patch(b.ctx, b.p, row.ID, []byte(`{"scheduled_for":"`+b.clock.Now().Add(3*time.Hour).Format(time.RFC3339)+`"}`))
	if err != nil || !moved.NextAttemptAt.Equal(b.clock.Now().Add(3*time.Hour).Truncate(time.Second)) {
		t.Fatalf("after moving scheduled_for: %v %v", moved.NextAttemptAt, err)
	}
}

// TestSendersAreCheckedWhenSending: a phone number whose capability was
// removed after a row was created is not used for it; the row fails as
// unknown_resource instead of texting or calling from it.
func TestSendersAreCheckedWhenSending(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sms, voice := b.create("sms", time.Minute, ""), b.create("voice", time.Minute, "")
	pn, err := b.store.GetPhoneNumber(b.ctx, "acme", phoneID)
	if err != nil {
		t.Fatal(err)
	}
	pn.Capabilities = []string{}
	if err := b.store.PutPhoneNumber(b.ctx, pn); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{sms.ID, voice.ID} {
		got := b.fire(id)
		if got.Status != comms.StatusFailed || got.LastError == nil || got.LastError.Code != "unknown_resource" || b.senders.sends(id) != 0 {
			t.Errorf("row %s: %s %+v, %d sends; want failed unknown_resource, nothing sent", id, got.Status, got.LastError, b.senders.sends(id))
		}
	}
}
