package retell

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

var simMeta = map[string]string{
	MetaCompanyID:       "co-1",
	MetaCommunicationID: "comm-1",
	MetaAttempt:         "2",
	"simulate":          "conversation",
}

func TestSimulatedEventScenarios(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 2, 14, 30, 0, 0, time.UTC)
	cases := []struct {
		scenario string
		want     comms.Outcome
		atLeast  float64
	}{
		// 9 + 32 + 20 user words of 0.5 s each.
		{ScenarioConversation, comms.Outcome{Connected: true, TalkSeconds: comms.Seconds(30.5), EndedReason: "agent_hangup"}, 30},
		// 1 + 7 user words.
		{ScenarioShort, comms.Outcome{Connected: true, TalkSeconds: comms.Seconds(4.0), EndedReason: "user_hangup"}, 4},
		{ScenarioNoAnswer, comms.Outcome{Connected: false, TalkSeconds: comms.Seconds(0), EndedReason: "dial_no_answer"}, 0},
		// The greeting's 12 "user" words do not count: not connected.
		{ScenarioVoicemail, comms.Outcome{Connected: false, TalkSeconds: comms.Seconds(0), EndedReason: "voicemail_reached"}, 0},
	}
	for _, tc := range cases {
		for _, kind := range []string{EventCallEnded, EventCallAnalyzed} {
			t.Run(tc.scenario+"/"+kind, func(t *testing.T) {
				t.Parallel()
				body, err := SimulatedEvent(kind, "call_sim_"+tc.scenario, simMeta, tc.scenario, start)
				if err != nil {
					t.Fatalf("SimulatedEvent: %v", err)
				}
				ev, err := ParseEvent(body)
				if err != nil {
					t.Fatalf("ParseEvent: %v\n%s", err, body)
				}
				if ev.Kind != kind || ev.CallID != "call_sim_"+tc.scenario || !ev.Ended || ev.CompanyID != "co-1" ||
					ev.CommunicationID != "comm-1" || ev.Attempt != 2 || !ev.StartedAt.Equal(start) || !ev.EndedAt.After(start) {
					t.Errorf("event %+v", ev)
				}
				if keyOf(ev.Outcome) != keyOf(tc.want) || *ev.Outcome.TalkSeconds < tc.atLeast {
					t.Errorf("outcome %+v, want %+v", ev.Outcome, tc.want)
				}
				// It must verify like a real webhook once signed.
				if err := Verify(body, Sign(body, "key_dev", start), "key_dev", start, 0); err != nil {
					t.Errorf("Verify: %v", err)
				}
			})
		}
	}
}

func TestSimulatedEventStarted(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 2, 14, 30, 0, 0, time.UTC)
	body, err := SimulatedEvent(EventCallStarted, "call_sim", simMeta, ScenarioConversation, start)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := ParseEvent(body)
	if err != nil {
		t.Fatal(err)
	}
	want := Event{Kind: EventCallStarted, CallID: "call_sim", CompanyID: "co-1", CommunicationID: "comm-1", Attempt: 2, StartedAt: start}
	if ev != want {
		t.Errorf("got %+v, want %+v", ev, want)
	}
	if strings.Contains(string(body), "transcript") || strings.Contains(string(body), "end_timestamp") {
		t.Errorf("call_started carries only basic fields: %s", body)
	}
}

func TestSimulatedEventErrors(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	cases := []struct{ kind, scenario string }{
		{EventCallStarted, ScenarioNoAnswer}, // Retell sends none
		{EventCallEnded, "hangs_up_twice"},
		{"call_exploded", ScenarioShort},
		{"", ScenarioShort},
	}
	for _, tc := range cases {
		if b, err := SimulatedEvent(tc.kind, "c", nil, tc.scenario, start); err == nil {
			t.Errorf("SimulatedEvent(%q, %q) = %s, want an error", tc.kind, tc.scenario, b)
		}
	}
}

// TestBuildEventShape checks the body against Retell's documented call
// object field by field.
func TestBuildEventShape(t *testing.T) {
	t.Parallel()
	start := time.UnixMilli(1768471200000)
	end := start.Add(12900 * time.Millisecond)
	transcript := []Utterance{
		{Role: "agent", Words: []Word{{"Hi", 0.5, 0.9}, {"there", 0.9, 1.3}}},
		{Role: "user", Words: []Word{{"Hello", 2.0, 2.5}, {"bad", math.NaN(), 3}}},
	}
	body := BuildEvent(EventCallAnalyzed, "call_b", map[string]string{"k": "v"}, transcript, "voicemail_reached", start, end)
	want := `{"event":"call_analyzed","call":{"call_type":"phone_call","call_id":"call_b","direction":"outbound",` +
		`"call_status":"ended","metadata":{"k":"v"},"start_timestamp":1768471200000,"end_timestamp":1768471212900,` +
		`"duration_ms":12900,"disconnection_reason":"voicemail_reached","transcript":"Agent: Hi there\nUser: Hello\n",` +
		`"transcript_object":[{"role":"agent","content":"Hi there","words":[{"word":"Hi","start":0.5,"end":0.9},` +
		`{"word":"there","start":0.9,"end":1.3}]},{"role":"user","content":"Hello","words":[{"word":"Hello","start":2,"end":2.5}]}],` +
		`"call_analysis":{"in_voicemail":true}}}`
	if string(body) != want {
		t.Errorf("BuildEvent\n got %s\nwant %s", body, want)
	}

	// Unanswered: not_connected, nothing about talk; metadata left out
	// when none was given, as Retell does.
	body = BuildEvent(EventCallEnded, "call_n", nil, nil, "dial_busy", start, end)
	var p struct{ Call map[string]any }
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	c := p.Call
	if c["call_status"] != "not_connected" || c["metadata"] != nil || c["transcript_object"] != nil || c["call_analysis"] != nil {
		t.Errorf("unanswered call body %s", body)
	}
}
