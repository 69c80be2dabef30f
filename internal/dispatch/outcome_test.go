package dispatch_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
)

const contactID = "1d2e3f4a-5b6c-4d7e-8f9a-0b1c2d3e4f5a"

// cadenceOnReply is a 3-attempt cadence of a contact that stops when the
// contact replies.
const cadenceOnReply = `{"contact_id":"` + contactID + `","cancel_policy":{"cancel_on":["contact_replied"]},"payload":{"follow_ups":{"max_attempts":3,"follow_up_delays":[2,2],"voice_agent_outbound_config_id":"` + agentID + `","to_number":"+14155550199"}}}`

var greeting = comms.Outcome{Connected: true, TalkSeconds: comms.Seconds(16.5), TalkSecondsSource: comms.TalkFromTranscript,
	CallSeconds: comms.Seconds(25), EndedReason: "user_hangup"}

func (b *bundle) events(id string) []comms.EventType {
	b.t.Helper()
	evs, _, err := b.store.ListEvents(b.ctx, "acme", id, 0, 100)
	if err != nil {
		b.t.Fatal(err)
	}
	var out []comms.EventType
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

// TestCallEndedWaitsForTheAnalysis: a 16.5 s "user" greeting in call_ended
// alone would be a conversation; call_analyzed says in_voicemail, and
// the decision, taken on it, is a follow-up. Both are in the history.
func TestCallEndedWaitsForTheAnalysis(t *testing.T) {
	t.Parallel()
	b := setup(t)
	root := b.fire(b.create("voice", time.Minute, cadence3).ID)
	res, err := b.d.RecordCallEnded(b.ctx, "acme", root.ID, root.ProviderMessageID, greeting)
	if err != nil || !res.Waiting || res.FollowUpID != "" {
		t.Fatalf("call_ended: %+v %v", res, err)
	}
	waiting := b.get(root.ID)
	if waiting.Status != comms.StatusProcessing || !waiting.AwaitingAnalysis() || !waiting.LeaseUntil.Equal(b.clock.Now().Add(2*time.Minute)) {
		t.Fatalf("after call_ended: %s %+v, decide by %v", waiting.Status, waiting.Outcome, waiting.LeaseUntil)
	}
	if a := b.timer.last(); a.f != comms.FireOf(waiting) || !a.at.Equal(waiting.LeaseUntil) {
		t.Errorf("decision armed %+v at %v, want the row's fire at decide_by", a.f, a.at)
	}
	// A duplicate call_ended changes nothing.
	if res, err := b.d.RecordCallEnded(b.ctx, "acme", root.ID, root.ProviderMessageID, greeting); err != nil || res.Recorded {
		t.Errorf("duplicate call_ended: %+v %v", res, err)
	}
	b.clock.Advance(20 * time.Second)
	vm := true
	analyzed := greeting
	analyzed.Connected, analyzed.InVoicemail, analyzed.Basis = false, &vm, comms.BasisCallAnalyzed
	res, err = b.d.RecordOutcome(b.ctx, "acme", root.ID, root.ProviderMessageID, analyzed)
	if err != nil || !res.Recorded || res.FollowUpID == "" {
		t.Fatalf("call_analyzed: %+v %v", res, err)
	}
	got := b.get(root.ID)
	if got.Status != comms.StatusSent || got.Outcome.Decision != comms.DecisionRetry || got.Outcome.Basis != comms.BasisCallAnalyzed ||
		got.Outcome.Connected || *got.Outcome.TalkSeconds != 0 {
		t.Errorf("decided: %+v", got.Outcome)
	}
	want := []comms.EventType{comms.EventCreated, comms.EventAttemptStarted, comms.EventSent, comms.EventCallEnded,
		comms.EventOutcomeRecorded, comms.EventFollowUpCreated}
	if evs := b.events(root.ID); !equalTypes(evs, want) {
		t.Errorf("history %v, want %v", evs, want)
	}
	// The decision's fire, now stale, changes nothing when it comes.
	b.clock.Set(waiting.LeaseUntil)
	if err := b.d.Handle(b.ctx, comms.FireOf(waiting)); err != nil {
		t.Fatal(err)
	}
	if n := len(b.cadence(root.ID)); n != 2 {
		t.Errorf("cadence has %d rows, want 2", n)
	}
}

// TestNoAnalysisDecidesFromCallEnded: when call_analyzed does not come,
// the timer's fire at decide_by decides from call_ended.
func TestNoAnalysisDecidesFromCallEnded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	root := b.fire(b.create("voice", time.Minute, cadence3).ID)
	short := comms.Outcome{Connected: true, TalkSeconds: comms.Seconds(4), TalkSecondsSource: comms.TalkFromTranscript, EndedReason: "user_hangup"}
	if _, err := b.d.RecordCallEnded(b.ctx, "acme", root.ID, root.ProviderMessageID, short); err != nil {
		t.Fatal(err)
	}
	waiting := b.get(root.ID)
	// Early: re-armed, nothing decided.
	b.clock.Advance(time.Minute)
	if err := b.d.Handle(b.ctx, comms.FireOf(waiting)); err != nil {
		t.Fatal(err)
	}
	if got := b.get(root.ID); got.Status != comms.StatusProcessing {
		t.Fatalf("decided a minute early: %s", got.Status)
	}
	b.clock.Set(waiting.LeaseUntil)
	if err := b.d.Handle(b.ctx, comms.FireOf(waiting)); err != nil {
		t.Fatal(err)
	}
	got := b.get(root.ID)
	if got.Status != comms.StatusSent || got.Outcome.Basis != comms.BasisCallEnded || got.Outcome.Decision != comms.DecisionRetry {
		t.Fatalf("at decide_by: %s %+v", got.Status, got.Outcome)
	}
	if n := len(b.cadence(root.ID)); n != 2 {
		t.Errorf("cadence has %d rows, want the follow-up", n)
	}
	// A late analysis changes nothing: the decision stands.
	if res, err := b.d.RecordOutcome(b.ctx, "acme", root.ID, root.ProviderMessageID, comms.Outcome{Connected: true,
		TalkSeconds: comms.Seconds(60), Basis: comms.BasisCallAnalyzed}); err != nil || res.Recorded {
		t.Errorf("late analysis: %+v %v", res, err)
	}
}

// TestLostDecisionFireIsSwept: the sweeper decides a call whose decide_by
// passed (its fire lost) from call_ended.
func TestLostDecisionFireIsSwept(t *testing.T) {
	t.Parallel()
	b := setup(t)
	root := b.fire(b.create("voice", time.Minute, cadence3).ID)
	if _, err := b.d.RecordCallEnded(b.ctx, "acme", root.ID, root.ProviderMessageID, greeting); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(2*time.Minute + time.Minute + time.Second) // grace + sweep grace
	res, err := b.d.Sweep(b.ctx)
	if err != nil || res.Decided != 1 {
		t.Fatalf("sweep = %+v %v", res, err)
	}
	got := b.get(root.ID)
	if got.Status != comms.StatusSent || got.Outcome.Decision != comms.DecisionConversation {
		t.Errorf("swept: %s %+v", got.Status, got.Outcome)
	}
	if n := len(b.cadence(root.ID)); n != 1 {
		t.Errorf("cadence has %d rows after a 16.5 s conversation (no analysis), want 1", n)
	}
}

// TestConnectedWithoutTranscriptIsNotRedialled: 300 s connected, no
// transcript: talk time unknown, a conversation by its length.
func TestConnectedWithoutTranscriptIsNotRedialled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	root := b.fire(b.create("voice", time.Minute, cadence3).ID)
	res, err := b.d.RecordOutcome(b.ctx, "acme", root.ID, root.ProviderMessageID, comms.Outcome{Connected: true,
		CallSeconds: comms.Seconds(300), TalkSecondsSource: comms.TalkFromCallDuration, EndedReason: "user_hangup", Basis: comms.BasisCallAnalyzed})
	if err != nil || !res.Recorded || res.FollowUpID != "" {
		t.Fatalf("outcome: %+v %v", res, err)
	}
	got := b.get(root.ID).Outcome
	if got.TalkSeconds != nil || got.TalkSecondsSource != comms.TalkFromCallDuration || got.Decision != comms.DecisionConversation {
		t.Errorf("outcome %+v", got)
	}
}

// TestUndialableStopsTheCadence: invalid_destination ends it.
func TestUndialableStopsTheCadence(t *testing.T) {
	t.Parallel()
	b := setup(t)
	root := b.fire(b.create("voice", time.Minute, cadence3).ID)
	res, err := b.d.RecordOutcome(b.ctx, "acme", root.ID, root.ProviderMessageID, comms.Outcome{EndedReason: "invalid_destination",
		Undialable: true, Basis: comms.BasisCallAnalyzed})
	if err != nil || res.FollowUpID != "" || b.get(root.ID).Outcome.Decision != comms.DecisionUndialable {
		t.Errorf("undialable: %+v %v", res, err)
	}
}

// lookup is a scripted provider record of calls.
type lookup struct {
	rec dispatch.CallRecord
	err error
}

func (l lookup) LookupCall(context.Context, string) (dispatch.CallRecord, error) { return l.rec, l.err }

// TestLostWebhookIsSettledByTheProvider: no webhook within the outcome
// window; get-call says the call connected for 5 minutes → recorded as
// that, no follow-up; a provider that does not answer is asked again
// until another window passed, then no_answer.
func TestLostWebhookIsSettledByTheProvider(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		l        lookup
		sweeps   []time.Duration // clock moves before each sweep
		want     comms.OutcomeBasis
		followUp bool
	}{
		{"connected", lookup{rec: dispatch.CallRecord{Found: true, Ended: true, Outcome: comms.Outcome{Connected: true,
			CallSeconds: comms.Seconds(300), EndedReason: "user_hangup"}}}, []time.Duration{31*time.Minute + time.Second}, comms.BasisProviderLookup, false},
		{"unknown to the provider", lookup{}, []time.Duration{31*time.Minute + time.Second}, comms.BasisNoReport, true},
		{"provider down", lookup{err: errors.New("503")}, []time.Duration{31*time.Minute + time.Second, 30 * time.Minute}, comms.BasisNoReport, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.d = dispatch.New(b.store, b.timer, dispatch.Senders{Email: b.senders, SMS: b.senders, Voice: b.senders}, dispatch.Config{},
				dispatch.WithClock(b.clock.Now), dispatch.WithCallLookup(tc.l))
			root := b.fire(b.create("voice", time.Minute, cadence3).ID)
			for i, d := range tc.sweeps {
				b.clock.Advance(d)
				if _, err := b.d.Sweep(b.ctx); err != nil {
					t.Fatal(err)
				}
				if got := b.get(root.ID); (got.Status == comms.StatusSent) != (i == len(tc.sweeps)-1) {
					t.Fatalf("after sweep %d: %s", i+1, got.Status)
				}
			}
			got := b.get(root.ID)
			if got.Outcome.Basis != tc.want || (len(b.cadence(root.ID)) == 2) != tc.followUp {
				t.Errorf("outcome %+v, cadence rows %d", got.Outcome, len(b.cadence(root.ID)))
			}
		})
	}
}

// TestEventDuringTheCallCancelsTheFollowUp: contact_replied posted while
// call 1 is in progress cancels nothing now, is kept, and the follow-up is
// created cancelled (event:contact_replied): no second call.
func TestEventDuringTheCallCancelsTheFollowUp(t *testing.T) {
	t.Parallel()
	b := setup(t)
	root := b.fire(b.create("voice", time.Minute, cadenceOnReply).ID)
	b.clock.Advance(30 * time.Second)
	out, err := b.svc.CancelByEvent(b.ctx, b.p, []byte(`{"event":"contact_replied","contact_id":"`+contactID+`"}`))
	if err != nil || len(out.Cancelled) != 0 || out.Recorded.Name != "contact_replied" {
		t.Fatalf("cancel-by-event during the call: %+v %v", out, err)
	}
	res, err := b.d.RecordOutcome(b.ctx, "acme", root.ID, root.ProviderMessageID, comms.Outcome{EndedReason: "dial_no_answer",
		Basis: comms.BasisCallAnalyzed})
	if err != nil || res.FollowUpID == "" || res.CancelledBy != "contact_replied" {
		t.Fatalf("outcome: %+v %v", res, err)
	}
	f2 := b.get(res.FollowUpID)
	if f2.Status != comms.StatusCancelled || f2.CancelReason != comms.CancelOnEvent("contact_replied") {
		t.Errorf("follow-up %s %q, want cancelled event:contact_replied", f2.Status, f2.CancelReason)
	}
	if evs := b.events(f2.ID); !equalTypes(evs, []comms.EventType{comms.EventCreated, comms.EventCancelled}) {
		t.Errorf("follow-up history %v", evs)
	}
	if b.senders.sends(f2.ID) != 0 {
		t.Error("the follow-up was called")
	}
}

// TestRecordedEventCancelsAtDispatch: a pending row whose cadence began
// before a recorded event it lists is cancelled at dispatch, not sent; an
// event from before the row was created does not cancel it.
func TestRecordedEventCancelsAtDispatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, err := b.svc.CancelByEvent(b.ctx, b.p, []byte(`{"event":"contact_replied","contact_id":"`+contactID+`"}`)); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(time.Second)
	body := `{"contact_id":"` + contactID + `","cancel_policy":{"cancel_on":["contact_replied"]}}`
	later := b.create("email", time.Hour, body) // created after the event: not cancelled by it
	if got := b.fire(later.ID); got.Status != comms.StatusSent {
		t.Errorf("a row created after the event is %s, want sent", got.Status)
	}
	// An event recorded through the store while a row is pending but
	// unseen by cancel-by-event's listing (as one racing a claim would be).
	row := b.create("sms", time.Hour, body)
	if err := b.store.PutEntityEvent(b.ctx, comms.EntityEvent{ID: "e1", CompanyID: "acme", Name: "contact_replied",
		EntityType: comms.EntityContact, EntityID: contactID, At: b.clock.Now().Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	got := b.fire(row.ID)
	if got.Status != comms.StatusCancelled || got.CancelReason != comms.CancelOnEvent("contact_replied") || b.senders.sends(row.ID) != 0 {
		t.Errorf("at dispatch: %s %q, %d sends", got.Status, got.CancelReason, b.senders.sends(row.ID))
	}
}

func equalTypes(a, b []comms.EventType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
