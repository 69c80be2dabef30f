package retell

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// TestOutcomeAsRetellSendsIt: the reports of one call as Retell sends
// them, and what the cadence decides from each.
func TestOutcomeAsRetellSendsIt(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	meta := map[string]string{MetaCommunicationID: "comm-1", MetaCompanyID: "co-1", MetaAttempt: "1"}
	greeting := VoicemailGreeting()
	parse := func(body []byte) comms.Outcome {
		t.Helper()
		ev, err := ParseEvent(body)
		if err != nil {
			t.Fatal(err)
		}
		return ev.Outcome
	}

	// A greeting Retell transcribed as the user's 16.5 s, the call ended
	// by the user: call_ended alone says conversation; call_analyzed says
	// in_voicemail, so it is none.
	ended := parse(BuildEvent(EventCallEnded, "call_1", meta, greeting, "user_hangup", start, start.Add(25*time.Second)))
	if !ended.Connected || *ended.TalkSeconds != 16.5 || ended.TalkSecondsSource != comms.TalkFromTranscript ||
		ended.Decision != comms.DecisionConversation || ended.Basis != comms.BasisCallEnded {
		t.Errorf("call_ended: %+v", ended)
	}
	analyzed := parse(BuildAnalyzed("call_1", meta, greeting, "user_hangup", start, start.Add(25*time.Second), true))
	if analyzed.Connected || analyzed.InVoicemail == nil || !*analyzed.InVoicemail || analyzed.Decision != comms.DecisionRetry ||
		analyzed.Basis != comms.BasisCallAnalyzed || *analyzed.TalkSeconds != 0 || analyzed.TalkSecondsSource != comms.TalkNone {
		t.Errorf("call_analyzed: %+v", analyzed)
	}

	// basic_attributes_only: no transcript. 300 s connected → talk
	// unknown, a conversation by its length; 6 s → retry.
	long := parse(BuildEvent(EventCallEnded, "call_2", meta, nil, "user_hangup", start, start.Add(300*time.Second)))
	if !long.Connected || long.TalkSeconds != nil || long.TalkSecondsSource != comms.TalkFromCallDuration ||
		long.CallSeconds == nil || *long.CallSeconds != 300 || long.Decision != comms.DecisionConversation {
		t.Errorf("300 s without transcript: %+v", long)
	}
	short := parse(BuildEvent(EventCallEnded, "call_3", meta, nil, "user_hangup", start, start.Add(6*time.Second)))
	if short.Decision != comms.DecisionRetry || short.TalkSeconds != nil {
		t.Errorf("6 s without transcript: %+v", short)
	}

	// Reasons after which retrying cannot help stop the cadence; busy and
	// no answer do not.
	for reason, want := range map[string]comms.Decision{
		"invalid_destination": comms.DecisionUndialable, "marked_as_spam": comms.DecisionUndialable,
		"scam_detected": comms.DecisionUndialable, "dial_busy": comms.DecisionRetry, "dial_no_answer": comms.DecisionRetry,
		"user_declined": comms.DecisionRetry, "machine_detected": comms.DecisionRetry,
	} {
		o := parse(BuildEvent(EventCallEnded, "call_4", meta, nil, reason, start, start.Add(time.Second)))
		if o.Decision != want || o.Connected {
			t.Errorf("%s: decision %s (connected %v), want %s", reason, o.Decision, o.Connected, want)
		}
	}
}

func TestLookupCall(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	ended := BuildEvent(EventCallEnded, "call_ended", nil, nil, "user_hangup", start, start.Add(300*time.Second))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.Header.Get("Authorization") != "Bearer key_1" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case GetCallPath + "call_ended":
			w.Write(callObject(ended))
		case GetCallPath + "call_ongoing":
			w.Write([]byte(`{"call_id":"call_ongoing","call_status":"ongoing","start_timestamp":1768471200000}`))
		case GetCallPath + "call_broken":
			w.WriteHeader(http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"status":"error","message":"call not found"}`))
		}
	}))
	defer srv.Close()
	c := New(srv.URL, "key_1", srv.Client())
	ctx := context.Background()

	rec, err := c.LookupCall(ctx, "call_ended")
	if err != nil || !rec.Found || !rec.Ended || rec.Outcome.Decision != comms.DecisionConversation ||
		rec.Outcome.Basis != comms.BasisProviderLookup || rec.Outcome.TalkSecondsSource != comms.TalkFromCallDuration {
		t.Errorf("ended: %+v, %v", rec, err)
	}
	if rec, err := c.LookupCall(ctx, "call_ongoing"); err != nil || !rec.Found || rec.Ended {
		t.Errorf("ongoing: %+v, %v", rec, err)
	}
	if rec, err := c.LookupCall(ctx, "call_unknown"); err != nil || rec.Found {
		t.Errorf("unknown: %+v, %v", rec, err)
	}
	if _, err := c.LookupCall(ctx, "call_broken"); err == nil {
		t.Error("500: no error")
	}
}

// callObject is the "call" of a webhook body: what get-call returns.
func callObject(webhook []byte) []byte {
	i := len(`{"event":"call_ended","call":`)
	return webhook[i : len(webhook)-1]
}

// TestHostileWordTimesGiveAFiniteTalkTime: words whose timestamps are
// outside the call (negative, beyond a day, ±1e308) are skipped, so the
// talk time stays a finite number the event can record (+Inf made the
// event's JSON fail and the webhook answer 500 on every resend).
func TestHostileWordTimesGiveAFiniteTalkTime(t *testing.T) {
	t.Parallel()
	body := []byte(`{"event":"call_ended","call":{"call_id":"c","call_status":"ended","disconnection_reason":"user_hangup",
		"start_timestamp":1767261600000,"end_timestamp":1767261660000,"metadata":{"dispatcher_communication_id":"r","dispatcher_company_id":"co","dispatcher_attempt":"1"},
		"transcript_object":[{"role":"user","content":"x","words":[
			{"word":"a","start":-1e308,"end":1e308},{"word":"b","start":-5,"end":3},{"word":"c","start":1,"end":1e9},
			{"word":"d","start":10,"end":22.5}]}]}}`)
	ev, err := ParseEvent(body)
	if err != nil {
		t.Fatal(err)
	}
	if ts := ev.Outcome.TalkSeconds; ts == nil || *ts != 12.5 {
		t.Errorf("talk seconds %v, want 12.5 (only the word inside the call)", ts)
	}
	// The domain rule, for any adapter: a non-finite length is unknown.
	inf := comms.Decide(comms.Outcome{Connected: true, TalkSeconds: comms.Seconds(math.Inf(1)), CallSeconds: comms.Seconds(math.NaN())})
	if inf.TalkSeconds != nil || inf.CallSeconds != nil {
		t.Errorf("Decide kept a non-finite length: %+v", inf)
	}
}
