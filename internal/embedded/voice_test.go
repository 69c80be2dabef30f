package embedded_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/channel/devsink"
	"github.com/dispatcherhq/dispatcher/internal/channel/retell"
	"github.com/dispatcherhq/dispatcher/internal/clock"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/embedded"
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

// voiceCall is a call due at at, answered as simulate says, with two
// follow-ups 0.0005 h (1.8 s) apart.
func voiceCall(at time.Time, simulate string) string {
	return `{"channel":"voice_call","scheduled_for":"` + at.UTC().Format(time.RFC3339Nano) + `","payload":{
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
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("list: %v in %s", err, body)
	}
	return r.Data
}

// placed reports whether the row's call was placed and awaits its outcome.
func placed(r comms.Communication) bool {
	return r.Status == comms.StatusProcessing && r.ProviderMessageID != ""
}

func answered(r comms.Communication) bool { return r.Status == comms.StatusSent && r.Outcome != nil }

// TestVoiceCadenceThroughTheSimulator is the make dev demonstration: the
// simulator "answers" each call as payload.metadata.simulate says and posts
// a signed outcome to the real webhook path. The test moves the clock from
// one event to the next: the call's end, then the follow-up's time.
func TestVoiceCadenceThroughTheSimulator(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		simulate string
		rows     int
	}{{"no_answer", 3}, {"conversation", 1}, {"short", 3}, {"voicemail", 3}} {
		t.Run(tc.simulate, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			clk := clock.NewFake(base)
			n := startNode(t, dir, dispatch.Config{}, clk)
			defer n.stop()
			n.voiceResources(t)
			root := n.create(t, voiceCall(clk.Now(), tc.simulate))
			for attempt := 1; attempt <= tc.rows; attempt++ {
				id := root
				if attempt > 1 {
					id = dispatch.FollowUpID(root, attempt)
					next := n.waitRow(t, id, "created", func(comms.Communication) bool { return true })
					clk.Set(next.NextAttemptAt)
				}
				n.waitRow(t, id, "placed", placed)
				clk.Advance(embedded.SimulatedCallLength)
				n.waitRow(t, id, "answered", answered)
			}
			// Every outcome has been posted and answered, so every follow-up
			// it creates exists: the cadence stops here. Once nothing is armed
			// and no call awaits an outcome, nothing can add a row later.
			deadline := time.Now().Add(patience)
			for n.l.SimulatedOutcomes() < int64(tc.rows) {
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d outcomes posted after %v", n.l.SimulatedOutcomes(), tc.rows, patience)
				}
				time.Sleep(10 * time.Millisecond) // poll interval
			}
			// Each call_ended armed its decision's fire at decide_by; the
			// analysis decided first, so those fires are stale: move the
			// clock past them and let the timer drop them.
			clk.Advance(dispatch.Config{}.WithDefaults().AnalysisGrace)
			for n.l.Timer.Len() != 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond) // poll interval
			}
			rows := n.cadenceRows(t, root)
			if len(rows) != tc.rows || n.l.SimulatedOutcomes() != int64(tc.rows) || n.l.Timer.Len() != 0 {
				var got []string
				for _, row := range rows {
					got = append(got, fmt.Sprintf("%v %v", row["cadence"], row["status"]))
				}
				t.Fatalf("cadence has %d rows, %d outcomes, %d fires armed; want %d, %d, 0: %v",
					len(rows), n.l.SimulatedOutcomes(), n.l.Timer.Len(), tc.rows, tc.rows, got)
			}
			for i, row := range rows {
				cad, _ := row["cadence"].(map[string]any)
				if row["status"] != "sent" || row["outcome"] == nil || cad == nil || int(cad["attempt"].(float64)) != i+1 ||
					cad["root_id"] != root || (i > 0) != (row["source"] == "cadence") {
					t.Errorf("row %d: %v %v, cadence %v, source %v", i, row["status"], row["outcome"], cad, row["source"])
				}
			}
			if calls := outbox(t, dir); len(calls) != tc.rows {
				t.Errorf("calls placed for %d rows, want %d", len(calls), tc.rows)
			}
		})
	}
}

// TestVoiceWebhook: forged, stale, unsigned and altered deliveries are
// refused (401) and change nothing about a call awaiting its outcome; a
// webhook delivered five times and out of order creates exactly one
// follow-up.
func TestVoiceWebhook(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(base)
	n := startNode(t, t.TempDir(), dispatch.Config{}, clk)
	defer n.stop()
	n.voiceResources(t)
	ctx := context.Background()
	// The secret the process verifies with: generated on first start into
	// the data directory, where a person signing by hand would read it.
	b, err := os.ReadFile(filepath.Join(n.dir, embedded.VoiceSecretFile))
	if err != nil {
		t.Fatal(err)
	}
	secret := string(b)
	if secret != n.l.VoiceSecret() || len(secret) < 32 {
		t.Fatalf("the secret file holds %q, the process verifies with %q", secret, n.l.VoiceSecret())
	}
	post := func(b []byte, sig string) int {
		req := httptest.NewRequest("POST", "/v1/webhooks/voice/retell", strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(retell.SignatureHeader, sig)
		rec := httptest.NewRecorder()
		n.l.API.ServeHTTP(rec, req)
		return rec.Code
	}

	// A call the simulator places and answers as a conversation, but only
	// once the clock moves past the call's end: until then it awaits its
	// outcome, and refused deliveries of a short one must not be recorded.
	id := n.create(t, voiceCall(clk.Now(), retell.ScenarioConversation))
	row := n.waitRow(t, id, "placed", placed)
	meta := map[string]string{retell.MetaCommunicationID: row.ID, retell.MetaCompanyID: app.DevCompany, retell.MetaAttempt: "1"}
	short, err := retell.SimulatedEvent(retell.EventCallEnded, row.ProviderMessageID, meta, retell.ScenarioShort, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	for name, sig := range map[string]string{
		"forged": retell.Sign(short, "not-the-secret", clk.Now()),
		"stale":  retell.Sign(short, secret, clk.Now().Add(-10*time.Minute)),
		"none":   "",
	} {
		if code := post(short, sig); code != http.StatusUnauthorized {
			t.Errorf("%s signature: %d, want 401", name, code)
		}
	}
	altered := []byte(strings.Replace(string(short), "user_hangup", "agent_hangup", 1))
	if string(altered) == string(short) {
		t.Fatal("the short outcome has no user_hangup to alter")
	}
	if code := post(altered, retell.Sign(short, secret, clk.Now())); code != http.StatusUnauthorized {
		t.Errorf("altered body: %d, want 401", code)
	}
	if got := n.get(t, id); got.Version != row.Version || got.Outcome != nil || len(n.cadenceRows(t, id)) != 1 {
		t.Fatalf("a refused webhook changed the row (version %d → %d, outcome %+v) or the cadence", row.Version, got.Version, got.Outcome)
	}
	clk.Advance(embedded.SimulatedCallLength)
	row = n.waitRow(t, id, "answered by the simulator", answered)
	if row.Outcome.TalkSeconds == nil || *row.Outcome.TalkSeconds < 30 || !row.Outcome.Connected {
		t.Fatalf("the simulated conversation was not what was recorded: %+v", row.Outcome)
	}

	// A second call of a fresh cadence, answered "short", delivered 5 times
	// out of order. The dev caller refuses "fail" calls (transiently, and the
	// clock never reaches the retry); record it as placed, as a real
	// provider would have, then deliver its events.
	id = n.create(t, voiceCall(clk.Now(), devsink.SimulateFail))
	row = n.waitRow(t, id, "refused by the dev caller", func(r comms.Communication) bool {
		return r.AttemptCount == 1 && r.Status == comms.StatusPending
	})
	row.Status, row.ProviderMessageID = comms.StatusProcessing, "call_test_1"
	now := clk.Now()
	row.SentAt = &now
	if _, _, err := n.l.Store.UpdateCommunication(ctx, comms.Change{Row: row}, false); err != nil {
		t.Fatal(err)
	}
	meta[retell.MetaCommunicationID] = row.ID
	var events [3][]byte
	for i, kind := range []string{retell.EventCallEnded, retell.EventCallAnalyzed, retell.EventCallStarted} {
		if events[i], err = retell.SimulatedEvent(kind, "call_test_1", meta, retell.ScenarioShort, now); err != nil {
			t.Fatal(err)
		}
	}
	ended, analyzed, started := events[0], events[1], events[2]
	for _, b := range [][]byte{analyzed, ended, started, ended, analyzed} {
		if code := post(b, retell.Sign(b, secret, clk.Now())); code != 200 {
			t.Fatalf("webhook: %d", code)
		}
	}
	rows := n.cadenceRows(t, row.ID)
	if len(rows) != 2 || rows[1]["id"] != dispatch.FollowUpID(row.ID, 2) {
		t.Fatalf("5 deliveries made %d cadence rows, want the root and follow-up %s: %v", len(rows), dispatch.FollowUpID(row.ID, 2), rows)
	}
	got := n.get(t, row.ID)
	if got.Status != comms.StatusSent || got.Outcome == nil || got.Outcome.TalkSeconds == nil || *got.Outcome.TalkSeconds != 4 || !got.Outcome.Connected {
		t.Errorf("outcome = %s %+v", got.Status, got.Outcome)
	}
}
