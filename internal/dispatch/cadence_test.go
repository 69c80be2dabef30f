package dispatch_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
)

const cadence3 = `{"payload":{"metadata":{"crm":"x"},"follow_ups":{"max_attempts":3,"follow_up_delays":[2,24.5],"voice_agent_outbound_config_id":"` + agentID + `","to_number":"+14155550199","dynamic_variables":{"first_name":"Sam"}}}}`

func (b *bundle) cadence(root string) []comms.Communication {
	b.t.Helper()
	rows, _, err := b.store.ListCommunications(b.ctx, "acme", comms.ListFilter{CadenceRootID: root, Limit: 100})
	if err != nil {
		b.t.Fatal(err)
	}
	return rows
}

func (b *bundle) outcome(row comms.Communication, talk float64) dispatch.OutcomeResult {
	b.t.Helper()
	res, err := b.d.RecordOutcome(b.ctx, "acme", row.ID, row.ProviderMessageID, comms.Outcome{Connected: talk > 0, TalkSeconds: comms.Seconds(talk), EndedReason: "user_hangup"})
	if err != nil {
		b.t.Fatal(err)
	}
	return res
}

func TestCadenceStopsOnRealConversation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	root := b.fire(b.create("voice", time.Minute, cadence3).ID)
	if root.Cadence == nil || root.Cadence.RootID != root.ID || root.Cadence.Attempt != 1 || root.Cadence.MaxAttempts != 3 {
		t.Fatalf("root cadence = %+v", root.Cadence)
	}
	res := b.outcome(root, 30)
	got := b.get(root.ID)
	if !res.Recorded || res.FollowUpID != "" || got.Status != comms.StatusSent || *got.Outcome.TalkSeconds != 30 {
		t.Errorf("after a conversation: %+v, row %s %+v", res, got.Status, got.Outcome)
	}
	if n := len(b.cadence(root.ID)); n != 1 {
		t.Errorf("cadence has %d rows, want 1", n)
	}
}

func TestCadenceFollowsUpUntilMaxAttempts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	root := b.fire(b.create("voice", time.Minute, cadence3).ID)
	res := b.outcome(root, 4) // 4 s of contact speech: not a conversation
	f2 := b.get(res.FollowUpID)
	wantAt := root.SentAt.Add(2 * time.Hour)
	if f2.Status != comms.StatusPending || f2.Source != comms.SourceCadence || *f2.Cadence != (comms.Cadence{RootID: root.ID, Attempt: 2, MaxAttempts: 3}) ||
		!f2.ScheduledFor.Equal(wantAt) || !f2.NextAttemptAt.Equal(wantAt) || f2.AttemptCount != 0 {
		t.Fatalf("follow-up 2 = %s %+v at %v (want %v)", f2.Status, f2.Cadence, f2.ScheduledFor, wantAt)
	}
	var p comms.VoicePayload
	if err := jsonUnmarshal(f2.Payload, &p); err != nil || p.ToNumber != "+14155550199" || p.DynamicVariables["first_name"] != "Sam" || p.FollowUps == nil {
		t.Errorf("follow-up payload = %s", f2.Payload)
	}
	if a := b.timer.last(); a.f != comms.FireOf(f2) || !a.at.Equal(wantAt) {
		t.Errorf("follow-up armed %+v at %v", a.f, a.at)
	}
	f2 = b.fire(f2.ID)
	f3 := b.get(b.outcome(f2, 0).FollowUpID)
	if want := f2.SentAt.Add(24*time.Hour + 30*time.Minute); f3.Cadence.Attempt != 3 || !f3.ScheduledFor.Equal(want) {
		t.Fatalf("follow-up 3 = %+v at %v, want %v (24.5 h after the second call)", f3.Cadence, f3.ScheduledFor, want)
	}
	f3 = b.fire(f3.ID)
	if res := b.outcome(f3, 2); res.FollowUpID != "" {
		t.Errorf("a fourth attempt was created for a 3-attempt cadence")
	}
	rows := b.cadence(root.ID)
	if len(rows) != 3 || rows[0].ID != root.ID || rows[1].ID != f2.ID || rows[2].ID != f3.ID {
		t.Errorf("cadence listed %d rows out of order", len(rows))
	}
}

func TestDuplicateAndOutOfOrderOutcomesCreateOneFollowUp(t *testing.T) {
	t.Parallel()
	b := setup(t)
	root := b.fire(b.create("voice", time.Minute, cadence3).ID)
	// A call id that is not the row's (an old attempt's, a forgery) changes nothing.
	if _, err := b.d.RecordOutcome(b.ctx, "acme", root.ID, "other-call", comms.Outcome{TalkSeconds: comms.Seconds(99)}); !errors.Is(err, comms.ErrNotFound) {
		t.Errorf("foreign call id: %v", err)
	}
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if _, err := b.d.RecordOutcome(b.ctx, "acme", root.ID, root.ProviderMessageID, comms.Outcome{TalkSeconds: comms.Seconds(3)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// A later, contradicting event (call_analyzed after call_ended): the first outcome stands.
	if res := b.outcome(root, 50); res.Recorded {
		t.Error("a second outcome was recorded")
	}
	if got := b.get(root.ID); *got.Outcome.TalkSeconds != 0 {
		t.Errorf("outcome talk = %v, want the first (0: not connected)", *got.Outcome.TalkSeconds)
	}
	rows := b.cadence(root.ID)
	if len(rows) != 2 {
		t.Fatalf("5 deliveries made %d cadence rows, want 2", len(rows))
	}
	if rows[1].ID != dispatch.FollowUpID(root.ID, 2) {
		t.Errorf("follow-up id %s is not the deterministic one", rows[1].ID)
	}
}

func TestOutcomeThatNeverArrivesIsNoAnswer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	root := b.fire(b.create("voice", time.Minute, cadence3).ID)
	b.clock.Advance(30*time.Minute + time.Minute + time.Second) // outcome window + sweep grace
	res, err := b.d.Sweep(b.ctx)
	if err != nil || res.NoOutcome != 1 {
		t.Fatalf("sweep = %+v %v", res, err)
	}
	got := b.get(root.ID)
	if got.Status != comms.StatusSent || got.Outcome == nil || got.Outcome.EndedReason != "no_answer" || got.Outcome.Connected {
		t.Errorf("after 30 minutes without an outcome: %s %+v", got.Status, got.Outcome)
	}
	if rows := b.cadence(root.ID); len(rows) != 2 {
		t.Errorf("cadence has %d rows, want the follow-up", len(rows))
	}
	if b.senders.sends(root.ID) != 1 {
		t.Errorf("the contact was called %d times for one attempt", b.senders.sends(root.ID))
	}
}

func TestFollowUpRespectsBusinessHours(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := `{"payload":{"follow_ups":{"max_attempts":2,"follow_up_delays":[10],"voice_agent_outbound_config_id":"` + agentID + `","to_number":"+14155550199","respect_business_hours":true}}}`
	root := b.fire(b.create("voice", time.Minute, body).ID) // Wednesday 10:01 UTC
	f := b.get(b.outcome(root, 0).FollowUpID)               // +10 h = 20:01, after hours
	want := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	if !f.RespectBusinessHours || !f.NextAttemptAt.Equal(want) || !f.ScheduledFor.Equal(root.SentAt.Add(10*time.Hour)) {
		t.Errorf("follow-up next_attempt_at %v, want %v (the next window)", f.NextAttemptAt, want)
	}
}

func TestCancellingAFollowUpEndsTheCadence(t *testing.T) {
	t.Parallel()
	b := setup(t)
	root := b.fire(b.create("voice", time.Minute, cadence3).ID)
	f2 := b.get(b.outcome(root, 0).FollowUpID)
	if _, err := b.svc.Cancel(b.ctx, b.p, f2.ID); err != nil {
		t.Fatal(err)
	}
	b.clock.Set(f2.NextAttemptAt)
	if err := b.d.Handle(b.ctx, comms.FireOf(f2)); err != nil {
		t.Fatal(err)
	}
	if b.senders.sends(f2.ID) != 0 || len(b.cadence(root.ID)) != 2 {
		t.Errorf("a cancelled follow-up was called or continued the cadence")
	}
	// A late duplicate of the root's outcome does not bring the follow-up back.
	b.outcome(root, 0)
	if got := b.get(f2.ID); got.Status != comms.StatusCancelled {
		t.Errorf("follow-up is %s after a duplicate outcome", got.Status)
	}
}
