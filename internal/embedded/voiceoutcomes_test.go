package embedded_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/channel/retell"
	"github.com/dispatcherhq/dispatcher/internal/clock"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/embedded"
)

const contactID = "1d2e3f4a-5b6c-4d7e-8f9a-0b1c2d3e4f5a"

// manualCall is a call of a contact that the simulator places and leaves
// to the test: two attempts, the second 2 hours after the first, stopped
// when the contact replies.
func manualCall(at time.Time) string {
	return `{"channel":"voice_call","scheduled_for":"` + at.UTC().Format(time.RFC3339Nano) + `","contact_id":"` + contactID + `",
"cancel_policy":{"cancel_on":["contact_replied"]},"payload":{
"voice_agent_outbound_config_id":"` + agentID + `","to_number":"+14155550123","metadata":{"simulate":"manual"},
"follow_ups":{"max_attempts":2,"follow_up_delays":[2],"voice_agent_outbound_config_id":"` + agentID + `","to_number":"+14155550123"}}}`
}

// hand is a person posting Retell's webhooks by hand, signed with the
// secret in <data>/voice-webhook-secret.
type hand struct {
	t      *testing.T
	n      *node
	clk    *clock.Fake
	secret string
}

func newHand(t *testing.T, n *node, clk *clock.Fake) hand {
	b, err := os.ReadFile(filepath.Join(n.dir, embedded.VoiceSecretFile))
	if err != nil {
		t.Fatal(err)
	}
	return hand{t: t, n: n, clk: clk, secret: string(b)}
}

func (h hand) post(body []byte) {
	h.t.Helper()
	req := httptest.NewRequest("POST", "/v1/webhooks/voice/retell", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(retell.SignatureHeader, retell.Sign(body, h.secret, h.clk.Now()))
	rec := httptest.NewRecorder()
	h.n.l.API.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		h.t.Fatalf("webhook: %d %s", rec.Code, rec.Body)
	}
}

// row reads a row through the API, as a user sees it.
func (n *node) row(t *testing.T, id string) map[string]any {
	t.Helper()
	code, body := n.do(t, "GET", "/v1/scheduled-communications/"+id, "")
	if code != 200 {
		t.Fatalf("get %s: %d %s", id, code, body)
	}
	var r struct{ Data map[string]any }
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	return r.Data
}

// eventTypes reads a row's history through the API.
func (n *node) eventTypes(t *testing.T, id string) []string {
	t.Helper()
	code, body := n.do(t, "GET", "/v1/scheduled-communications/"+id+"/events", "")
	if code != 200 {
		t.Fatalf("events %s: %d %s", id, code, body)
	}
	var r struct{ Data []struct{ Type string } }
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range r.Data {
		out = append(out, e.Type)
	}
	return out
}

// TestVoiceOutcomesByHand is issue 13's "what it must show", tried as a
// new user would: make dev, a manual call, signed webhooks posted by hand.
func TestVoiceOutcomesByHand(t *testing.T) {
	t.Parallel()
	setup := func(t *testing.T) (*node, *clock.Fake, hand, string, comms.Communication, map[string]string) {
		clk := clock.NewFake(base)
		n := startNode(t, t.TempDir(), dispatch.Config{}, clk)
		t.Cleanup(n.stop)
		n.voiceResources(t)
		id := n.create(t, manualCall(clk.Now()))
		row := n.waitRow(t, id, "placed", placed)
		meta := map[string]string{retell.MetaCommunicationID: id, retell.MetaCompanyID: app.DevCompany, retell.MetaAttempt: "1"}
		return n, clk, newHand(t, n, clk), id, row, meta
	}
	calls := func(t *testing.T, n *node) int {
		total := 0
		for _, lines := range outbox(t, n.dir) {
			total += len(lines)
		}
		return total
	}

	t.Run("VoicemailGreetingThenAnalysis", func(t *testing.T) {
		t.Parallel()
		n, clk, h, id, row, meta := setup(t)
		start := *row.SentAt
		h.post(retell.BuildEvent(retell.EventCallStarted, row.ProviderMessageID, meta, nil, "", start, time.Time{}))
		clk.Advance(25 * time.Second)
		end := clk.Now()
		// call_ended: the greeting, transcribed as the contact's 16.5 s.
		h.post(retell.BuildEvent(retell.EventCallEnded, row.ProviderMessageID, meta, retell.VoicemailGreeting(), "user_hangup", start, end))
		got := n.row(t, id)
		out, _ := got["outcome"].(map[string]any)
		if got["status"] != "processing" || out["basis"] != "call_ended" || out["talk_seconds"] != 16.5 {
			t.Fatalf("after call_ended: %v %v", got["status"], out)
		}
		if len(n.cadenceRows(t, id)) != 1 {
			t.Fatal("a follow-up before the analysis")
		}
		clk.Advance(3 * time.Second)
		h.post(retell.BuildAnalyzed(row.ProviderMessageID, meta, retell.VoicemailGreeting(), "user_hangup", start, end, true))
		got = n.row(t, id)
		out, _ = got["outcome"].(map[string]any)
		if got["status"] != "sent" || out["connected"] != false || out["in_voicemail"] != true || out["decision"] != "retry" ||
			out["basis"] != "call_analyzed" {
			t.Errorf("after call_analyzed: %v %v", got["status"], out)
		}
		rows := n.cadenceRows(t, id)
		if len(rows) != 2 || rows[1]["status"] != "pending" || rows[1]["id"] != dispatch.FollowUpID(id, 2) {
			t.Fatalf("attempt 2 not created: %v", rows)
		}
		if evs := strings.Join(n.eventTypes(t, id), ","); evs != "created,attempt_started,sent,call_ended,outcome_recorded,follow_up_created" {
			t.Errorf("history %s", evs)
		}
	})

	t.Run("ConnectedWithoutTranscript", func(t *testing.T) {
		t.Parallel()
		n, clk, h, id, row, meta := setup(t)
		start := *row.SentAt
		clk.Advance(300 * time.Second)
		h.post(retell.BuildEvent(retell.EventCallEnded, row.ProviderMessageID, meta, nil, "user_hangup", start, clk.Now()))
		// No analysis comes: the product's timer decides at decide_by.
		clk.Advance(dispatch.Config{}.WithDefaults().AnalysisGrace)
		n.waitRow(t, id, "decided", answered)
		got := n.row(t, id)
		out, _ := got["outcome"].(map[string]any)
		if out["talk_seconds"] != nil || out["talk_seconds_source"] != "call_duration" || out["call_seconds"] != 300.0 ||
			out["decision"] != "conversation" || out["basis"] != "call_ended" {
			t.Errorf("outcome %v", out)
		}
		if rows := n.cadenceRows(t, id); len(rows) != 1 {
			t.Errorf("a 5-minute conversation was followed up: %d rows", len(rows))
		}
	})

	t.Run("ContactRepliedDuringTheCall", func(t *testing.T) {
		t.Parallel()
		n, clk, h, id, row, meta := setup(t)
		start := *row.SentAt
		h.post(retell.BuildEvent(retell.EventCallStarted, row.ProviderMessageID, meta, nil, "", start, time.Time{}))
		clk.Advance(10 * time.Second)
		code, body := n.do(t, "POST", "/v1/scheduled-communications/cancel-by-event", `{"event":"contact_replied","contact_id":"`+contactID+`"}`)
		var r struct {
			Data struct {
				Cancelled []string
				Recorded  struct {
					Kept bool `json:"kept_for_later_steps"`
				}
			}
		}
		if err := json.Unmarshal(body, &r); code != 200 || err != nil || len(r.Data.Cancelled) != 0 || !r.Data.Recorded.Kept {
			t.Fatalf("cancel-by-event during the call: %d %s", code, body)
		}
		clk.Advance(10 * time.Second)
		h.post(retell.BuildEvent(retell.EventCallEnded, row.ProviderMessageID, meta, nil, "dial_no_answer", start, clk.Now()))
		h.post(retell.BuildAnalyzed(row.ProviderMessageID, meta, nil, "dial_no_answer", start, clk.Now(), false))
		f2 := dispatch.FollowUpID(id, 2)
		got := n.row(t, f2)
		if got["status"] != "cancelled" || got["cancel_reason"] != "event:contact_replied" {
			t.Fatalf("attempt 2: %v %v, want cancelled event:contact_replied", got["status"], got["cancel_reason"])
		}
		// Its time comes and goes: nobody is called again.
		clk.Advance(3 * time.Hour)
		n.waitRow(t, id, "sent", answered)
		if c := calls(t, n); c != 1 {
			t.Errorf("%d calls placed, want 1", c)
		}
	})
}
