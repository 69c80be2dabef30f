package embedded_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/channel/retell"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
)

const (
	phoneID = "6b1f3c2a-8d4e-4a5b-9c6d-7e8f9a0b1c2d"
	agentID = "0c9d8e7f-6a5b-4c3d-8e1f-2a3b4c5d6e7f"
)

func (n *node) do(t testing.TB, method, path, body string) (int, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+n.key)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	n.l.API.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

func (n *node) voiceResources(t testing.TB) {
	t.Helper()
	if code, body := n.do(t, "PUT", "/v1/phone-numbers/"+phoneID, `{"e164":"+61412345678","capabilities":["voice"]}`); code != 200 {
		t.Fatalf("phone: %d %s", code, body)
	}
	if code, body := n.do(t, "PUT", "/v1/voice-agents/"+agentID, `{"provider":"retell","agent_id":"agent_1","phone_number_id":"`+phoneID+`"}`); code != 200 {
		t.Fatalf("agent: %d %s", code, body)
	}
}

func voiceCall(simulate string) string {
	return `{"channel":"voice_call","scheduled_for":"` + time.Now().UTC().Format(time.RFC3339Nano) + `","payload":{
"voice_agent_outbound_config_id":"` + agentID + `","to_number":"+14155550123","metadata":{"simulate":"` + simulate + `"},
"follow_ups":{"max_attempts":3,"follow_up_delays":[0.0005,0.0005],"voice_agent_outbound_config_id":"` + agentID + `","to_number":"+14155550123"}}}`
}

// cadenceRows lists a cadence through the API, in order.
func (n *node) cadenceRows(t testing.TB, root string) []map[string]any {
	t.Helper()
	code, body := n.do(t, "GET", "/v1/scheduled-communications?cadence_root_id="+root, "")
	if code != 200 {
		t.Fatalf("list: %d %s", code, body)
	}
	var r struct{ Data []map[string]any }
	_ = json.Unmarshal(body, &r)
	return r.Data
}

// TestVoiceCadenceThroughTheSimulator is the make dev demonstration: the
// simulator "answers" each call as payload.metadata.simulate says and posts
// a signed outcome to the real webhook path.
func TestVoiceCadenceThroughTheSimulator(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		simulate string
		rows     int
	}{{"no_answer", 3}, {"conversation", 1}, {"short", 3}, {"voicemail", 3}} {
		t.Run(tc.simulate, func(t *testing.T) {
			t.Parallel()
			n := startNode(t, t.TempDir(), dispatch.Config{})
			defer n.stop()
			n.voiceResources(t)
			code, body := n.do(t, "POST", "/v1/scheduled-communications", voiceCall(tc.simulate))
			if code != 201 {
				t.Fatalf("create: %d %s", code, body)
			}
			var r struct{ Data struct{ ID string } }
			_ = json.Unmarshal(body, &r)
			deadline := time.Now().Add(45 * time.Second)
			for {
				rows := n.cadenceRows(t, r.Data.ID)
				done := len(rows) == tc.rows
				for _, row := range rows {
					done = done && row["status"] == "sent" && row["outcome"] != nil
				}
				if done {
					// And it stops there.
					time.Sleep(3 * time.Second)
					if rows = n.cadenceRows(t, r.Data.ID); len(rows) != tc.rows {
						t.Fatalf("cadence grew to %d rows", len(rows))
					}
					for i, row := range rows {
						cad := row["cadence"].(map[string]any)
						if int(cad["attempt"].(float64)) != i+1 || cad["root_id"] != r.Data.ID || (i > 0) != (row["source"] == "cadence") {
							t.Errorf("row %d: cadence %v source %v", i, cad, row["source"])
						}
					}
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("cadence after 45 s: %d rows, want %d all sent: %v", len(rows), tc.rows, rows)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// TestVoiceWebhook: forged and stale signatures change nothing; a webhook
// delivered five times and out of order creates exactly one follow-up.
func TestVoiceWebhook(t *testing.T) {
	t.Parallel()
	n := startNode(t, t.TempDir(), dispatch.Config{})
	defer n.stop()
	n.voiceResources(t)
	// A call the simulator places but whose outcome this test delivers itself:
	// "fail" makes the dev caller refuse, so place the call by hand instead.
	ctx := context.Background()
	code, body := n.do(t, "POST", "/v1/scheduled-communications", strings.Replace(voiceCall("conversation"), `"scheduled_for":"`, `"scheduled_for":"`, 1))
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	var r struct{ Data struct{ ID string } }
	_ = json.Unmarshal(body, &r)
	// Wait for the call to be placed and its simulated (conversation) outcome.
	var row comms.Communication
	deadline := time.Now().Add(20 * time.Second)
	for {
		row, _ = n.l.Store.GetCommunication(ctx, app.DevCompany, r.Data.ID)
		if row.Outcome != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if row.Outcome == nil || row.Outcome.TalkSeconds < 30 {
		t.Fatalf("simulated conversation: %+v", row.Outcome)
	}
	post := func(b []byte, sig string) int {
		req := httptest.NewRequest("POST", "/v1/webhooks/voice/retell", strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(retell.SignatureHeader, sig)
		rec := httptest.NewRecorder()
		n.l.API.ServeHTTP(rec, req)
		return rec.Code
	}
	meta := map[string]string{retell.MetaCommunicationID: row.ID, retell.MetaCompanyID: app.DevCompany, retell.MetaAttempt: "1"}
	short, _ := retell.SimulatedEvent(retell.EventCallEnded, row.ProviderMessageID, meta, retell.ScenarioShort, time.Now())
	// Forged (signed with another key), altered, stale: 401, nothing changes.
	for name, sig := range map[string]string{
		"forged": retell.Sign(short, "not-the-secret", time.Now()),
		"stale":  retell.Sign(short, app.DevVoiceSecret, time.Now().Add(-10*time.Minute)),
		"none":   "",
	} {
		if code := post(short, sig); code != http.StatusUnauthorized {
			t.Errorf("%s signature: %d, want 401", name, code)
		}
	}
	altered := []byte(strings.Replace(string(short), "user_hangup", "agent_hangup", 1))
	if code := post(altered, retell.Sign(short, app.DevVoiceSecret, time.Now())); code != http.StatusUnauthorized {
		t.Errorf("altered body: %d, want 401", code)
	}
	if got, _ := n.l.Store.GetCommunication(ctx, app.DevCompany, row.ID); got.Outcome.TalkSeconds != row.Outcome.TalkSeconds || len(n.cadenceRows(t, row.ID)) != 1 {
		t.Fatalf("a refused webhook changed the row or the cadence")
	}

	// A second call of a fresh cadence, answered "short", delivered 5 times out of order.
	code, body = n.do(t, "POST", "/v1/scheduled-communications", voiceCall("fail"))
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	_ = json.Unmarshal(body, &r)
	deadline = time.Now().Add(20 * time.Second)
	for {
		row, _ = n.l.Store.GetCommunication(ctx, app.DevCompany, r.Data.ID)
		if row.AttemptCount >= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The dev caller refused ("fail" = transient); record the call as placed,
	// as a real provider would have, then deliver its events.
	row.Status, row.ProviderMessageID = comms.StatusProcessing, "call_test_1"
	now := time.Now().UTC()
	row.SentAt = &now
	if _, _, err := n.l.Store.UpdateCommunication(ctx, comms.Change{Row: row}, false); err != nil {
		t.Fatal(err)
	}
	meta[retell.MetaCommunicationID] = row.ID
	ended, _ := retell.SimulatedEvent(retell.EventCallEnded, "call_test_1", meta, retell.ScenarioShort, now)
	analyzed, _ := retell.SimulatedEvent(retell.EventCallAnalyzed, "call_test_1", meta, retell.ScenarioShort, now)
	started, _ := retell.SimulatedEvent(retell.EventCallStarted, "call_test_1", meta, retell.ScenarioShort, now)
	for _, b := range [][]byte{analyzed, ended, started, ended, analyzed} {
		if code := post(b, retell.Sign(b, app.DevVoiceSecret, time.Now())); code != 200 {
			t.Fatalf("webhook: %d", code)
		}
	}
	rows := n.cadenceRows(t, row.ID)
	if len(rows) != 2 {
		t.Fatalf("5 deliveries made %d cadence rows, want 2", len(rows))
	}
	got, _ := n.l.Store.GetCommunication(ctx, app.DevCompany, row.ID)
	if got.Status != comms.StatusSent || got.Outcome == nil || got.Outcome.TalkSeconds != 4 || got.Outcome.Connected != true {
		t.Errorf("outcome = %s %+v", got.Status, got.Outcome)
	}
}
