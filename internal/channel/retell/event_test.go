package retell

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

var fixtureNames = []string{
	"call_ended_conversation.json",
	"call_ended_short.json",
	"call_ended_no_answer.json",
	"call_ended_voicemail.json",
	"call_started.json",
	"call_analyzed.json",
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	companyID = "c0a8012e-7d3b-4f61-9a52-3e1b8c4d2f70"
	convCall  = "call_5e2b8d41c7a0f3962e18b4d7a9c3"
	convComm  = "6f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
)

// TestParseEventFixtures reads the recorded-style payloads. The expected
// talk times, from the word timestamps of the role "user" utterances
// (words tile each run, so a run counts end − start):
//
//	call_ended_conversation.json / call_analyzed.json (same call):
//	  "Yes, speaking."                      5.0–6.2              1.2
//	  two runs with a 1 s pause between     14.8–20.0, 21.0–26.4 5.2 + 5.4 = 10.6
//	  25 words, "two" (37.776–38.540)
//	  overlapping "after" (37.612–38.076)   33.9–45.5            11.6 (overlap counted once)
//	  "Three fifteen on Thursday…"          53.0–58.3            5.3
//	  "Perfect, thank you, bye."            64.2–66.0            1.8
//	  total 1.2 + 10.6 + 11.6 + 5.3 + 1.8 = 30.5 s; the agent speaks
//	  3.6 + 7.1 + 5.8 + 5.8 + 4.4 + 1.5 = 28.2 s (not counted); the call
//	  lasts 68.9 s (not used).
//	call_ended_short.json: "Hello?" 0.9–1.4 = 0.5, "Um." has no words = 0,
//	  "Sorry, I'm not interested…" 9.0–12.5 = 3.5; total 4.0 s (agent 6.3 s,
//	  call 12.9 s).
//	call_ended_voicemail.json: the greeting is transcribed as "user"
//	  (1.2–6.0 = 4.8 s) but the call is voicemail_reached, not connected,
//	  so 0 s; the agent's 12.5 s message is not counted either.
//	call_ended_no_answer.json: dial_no_answer, no transcript: 0 s.
//	call_started.json: not ended, zero outcome.
func TestParseEventFixtures(t *testing.T) {
	t.Parallel()
	convStart := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		file string
		want Event
	}{
		{"call_ended_conversation.json", Event{
			Kind: EventCallEnded, CallID: convCall, CompanyID: companyID, CommunicationID: convComm, Attempt: 1, Ended: true,
			Outcome:   comms.Outcome{Connected: true, TalkSeconds: comms.Seconds(30.5), EndedReason: "agent_hangup"},
			StartedAt: convStart, EndedAt: convStart.Add(68900 * time.Millisecond),
		}},
		{"call_analyzed.json", Event{
			Kind: EventCallAnalyzed, CallID: convCall, CompanyID: companyID, CommunicationID: convComm, Attempt: 1, Ended: true,
			Outcome:   comms.Outcome{Connected: true, TalkSeconds: comms.Seconds(30.5), EndedReason: "agent_hangup"},
			StartedAt: convStart, EndedAt: convStart.Add(68900 * time.Millisecond),
		}},
		{"call_ended_short.json", Event{
			Kind: EventCallEnded, CallID: "call_91d4f7a2b8c3e6051d2a9f8e7b4c", CompanyID: companyID,
			CommunicationID: "0d9c8b7a-6f5e-4d3c-9b2a-1f0e9d8c7b6a", Attempt: 2, Ended: true,
			Outcome:   comms.Outcome{Connected: true, TalkSeconds: comms.Seconds(4.0), EndedReason: "user_hangup"},
			StartedAt: convStart.Add(time.Hour), EndedAt: convStart.Add(time.Hour + 12900*time.Millisecond),
		}},
		{"call_ended_no_answer.json", Event{
			Kind: EventCallEnded, CallID: "call_2a7c9e1f4b6d8305a9c2e7f1d4b8", CompanyID: companyID,
			CommunicationID: "7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d", Attempt: 1, Ended: true,
			Outcome:   comms.Outcome{Connected: false, TalkSeconds: comms.Seconds(0), EndedReason: "dial_no_answer"},
			StartedAt: convStart.Add(2 * time.Hour), EndedAt: convStart.Add(2*time.Hour + 31200*time.Millisecond),
		}},
		{"call_ended_voicemail.json", Event{
			Kind: EventCallEnded, CallID: "call_c3e8a1d6f2b9470e5c8d1a6f3b2e", CompanyID: companyID,
			CommunicationID: "5c4d3e2f-1a0b-4c9d-8e7f-6a5b4c3d2e1f", Attempt: 1, Ended: true,
			Outcome:   comms.Outcome{Connected: false, TalkSeconds: comms.Seconds(0), EndedReason: "voicemail_reached"},
			StartedAt: convStart.Add(3 * time.Hour), EndedAt: convStart.Add(3*time.Hour + 20400*time.Millisecond),
		}},
		{"call_started.json", Event{
			Kind: EventCallStarted, CallID: convCall, CompanyID: companyID, CommunicationID: convComm, Attempt: 1,
			StartedAt: convStart,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			got, err := ParseEvent(readFixture(t, tc.file))
			if err != nil {
				t.Fatalf("ParseEvent: %v", err)
			}
			if gotKey, wantKey := keyOf(got.Outcome), keyOf(tc.want.Outcome); gotKey != wantKey || withoutOutcome(got) != withoutOutcome(tc.want) {
				t.Errorf("ParseEvent\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestAgentSpeechNotCounted relabels the conversation's turns: with every
// turn "agent" nothing counts; with every turn "user" the agent's 28.2 s
// join the contact's 30.5 s — so only the role decides, never call length.
func TestAgentSpeechNotCounted(t *testing.T) {
	t.Parallel()
	body := string(readFixture(t, "call_ended_conversation.json"))
	cases := []struct {
		name string
		body string
		want float64
	}{
		{"as recorded", body, 30.5},
		{"all agent", strings.ReplaceAll(body, `"role": "user"`, `"role": "agent"`), 0},
		{"all user", strings.ReplaceAll(body, `"role": "agent"`, `"role": "user"`), 58.7},
		{"agent as transfer_target", strings.ReplaceAll(body, `"role": "agent"`, `"role": "transfer_target"`), 30.5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev, err := ParseEvent([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if !ev.Outcome.Connected || *ev.Outcome.TalkSeconds != tc.want {
				t.Errorf("outcome %+v, want connected with %.1f s", ev.Outcome, tc.want)
			}
		})
	}
}

func TestParseEventRules(t *testing.T) {
	t.Parallel()
	const talk = `"transcript_object":[` +
		`{"role":"agent","content":"hi","words":[{"word":"hi","start":0.5,"end":3.5}]},` +
		`{"role":"user","content":"a b c","words":[{"word":"a","start":4.0,"end":5.0},{"word":"b","start":5.0,"end":6.26}]}]`
	call := func(fields string) string {
		return `{"event":"call_ended","call":{"call_id":"call_1","call_status":"ended",` +
			`"start_timestamp":1768471200000,"end_timestamp":1768471230000,` + fields + `}}`
	}
	cases := []struct {
		name      string
		body      string
		connected bool
		talk      float64
		reason    string
	}{
		{"user hangup", call(`"disconnection_reason":"user_hangup",` + talk), true, 2.3, "user_hangup"},
		{"mid-call error still connected", call(`"disconnection_reason":"error_llm_websocket_lost_connection",` + talk), true, 2.3, "error_llm_websocket_lost_connection"},
		{"unknown future reason", call(`"disconnection_reason":"something_new",` + talk), true, 2.3, "something_new"},
		{"no reason", call(talk), true, 2.3, ""},
		{"busy", call(`"disconnection_reason":"dial_busy"`), false, 0, "dial_busy"},
		{"failed", call(`"disconnection_reason":"dial_failed"`), false, 0, "dial_failed"},
		{"declined", call(`"disconnection_reason":"user_declined"`), false, 0, "user_declined"},
		{"ivr", call(`"disconnection_reason":"ivr_reached",` + talk), false, 0, "ivr_reached"},
		{"machine detected", call(`"disconnection_reason":"machine_detected",` + talk), false, 0, "machine_detected"},
		{"analysis says voicemail", call(`"disconnection_reason":"agent_hangup","call_analysis":{"in_voicemail":true},` + talk), false, 0, "agent_hangup"},
		{"analysis says no voicemail", call(`"disconnection_reason":"agent_hangup","call_analysis":{"in_voicemail":false},` + talk), true, 2.3, "agent_hangup"},
		{"status not_connected", strings.Replace(call(talk), `"ended"`, `"not_connected"`, 1), false, 0, ""},
		{"no end timestamp", strings.Replace(call(`"disconnection_reason":"user_hangup",`+talk), `"end_timestamp":1768471230000,`, ``, 1), false, 0, "user_hangup"},
		{"no start timestamp", strings.Replace(call(`"disconnection_reason":"user_hangup",`+talk), `"start_timestamp":1768471200000,`, ``, 1), false, 0, "user_hangup"},
		{"end before start", strings.Replace(call(`"disconnection_reason":"user_hangup",`+talk), `1768471230000`, `1768471100000`, 1), false, 0, "user_hangup"},
		{"null timestamps", strings.NewReplacer(`1768471200000`, `null`, `1768471230000`, `null`).Replace(call(talk)), false, 0, ""},
		{"fractional timestamps", strings.NewReplacer(`1768471200000`, `1768471200000.0`, `1768471230000`, `1768471230000.4`).Replace(call(talk)), true, 2.3, ""},
		{"words: overlaps across utterances, bad and missing times", call(`"disconnection_reason":"user_hangup","transcript_object":[` +
			`{"role":"user","content":"x","words":[{"word":"a","start":1.0,"end":2.0},{"word":"b","start":1.5,"end":2.5}]},` +
			`{"role":"user","content":"y","words":[{"word":"c","start":2.2,"end":3.0},{"word":"d","start":5.0},{"word":"e","end":6.0},` +
			`{"word":"f","start":7.0,"end":7.0},{"word":"g","start":8.0,"end":7.5},{"word":"h","start":null,"end":9.0}]},` +
			`{"role":"user","content":"no words"},{"role":"user","content":"null words","words":null},` +
			`{"role":"transfer_target","content":"z","words":[{"word":"z","start":10,"end":20}]}]`), true, 2.0, "user_hangup"},
		{"rounds down", call(`"transcript_object":[{"role":"user","content":"a","words":[{"word":"a","start":1.0,"end":2.24}]}]`), true, 1.2, ""},
		{"rounds up", call(`"transcript_object":[{"role":"user","content":"a","words":[{"word":"a","start":1.0,"end":2.26}]}]`), true, 1.3, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev, err := ParseEvent([]byte(tc.body))
			if err != nil {
				t.Fatalf("ParseEvent: %v", err)
			}
			want := comms.Outcome{Connected: tc.connected, TalkSeconds: comms.Seconds(tc.talk), EndedReason: tc.reason}
			if !ev.Ended || keyOf(ev.Outcome) != keyOf(want) {
				t.Errorf("outcome %+v (ended %v), want %+v", ev.Outcome, ev.Ended, want)
			}
		})
	}
}

func TestParseEventMetadata(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		meta    string
		company string
		comm    string
		attempt int
	}{
		{"strings", `"metadata":{"dispatcher_company_id":"co","dispatcher_communication_id":"cm","dispatcher_attempt":"3"},`, "co", "cm", 3},
		{"attempt as a number", `"metadata":{"dispatcher_company_id":"co","dispatcher_communication_id":"cm","dispatcher_attempt":2},`, "co", "cm", 2},
		{"no metadata (call not ours)", ``, "", "", 0},
		{"metadata not an object", `"metadata":"free text",`, "", "", 0},
		{"other keys only", `"metadata":{"crm":"x","nested":{"a":1}},`, "", "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev, err := ParseEvent([]byte(`{"event":"call_started","call":{` + tc.meta + `"call_id":"call_1","call_status":"ongoing"}}`))
			if err != nil {
				t.Fatalf("ParseEvent: %v", err)
			}
			if ev.CompanyID != tc.company || ev.CommunicationID != tc.comm || ev.Attempt != tc.attempt || ev.Ended {
				t.Errorf("got %+v", ev)
			}
		})
	}
}

func TestParseEventOtherKinds(t *testing.T) {
	t.Parallel()
	ev, err := ParseEvent([]byte(`{"event":"transcript_updated","call":{"call_id":"call_1","call_status":"ongoing",` +
		`"start_timestamp":1768471200000,"end_timestamp":1768471230000,"disconnection_reason":"user_hangup"}}`))
	if err != nil {
		t.Fatalf("ParseEvent: %v", err)
	}
	if ev.Kind != "transcript_updated" || ev.Ended || keyOf(ev.Outcome) != keyOf(comms.Outcome{}) {
		t.Errorf("got %+v, want an event that is not ended", ev)
	}
}

func TestParseEventMalformed(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"not json":           `{"event":`,
		"empty":              ``,
		"array":              `[]`,
		"no event":           `{"call":{"call_id":"call_1"}}`,
		"no call":            `{"event":"call_ended"}`,
		"chat event":         `{"event":"chat_ended","chat":{"chat_id":"chat_1"}}`,
		"no call id":         `{"event":"call_ended","call":{"call_status":"ended"}}`,
		"attempt not number": `{"event":"call_ended","call":{"call_id":"call_1","metadata":{"dispatcher_attempt":"two"}}}`,
		"bad timestamp":      `{"event":"call_ended","call":{"call_id":"call_1","start_timestamp":"yesterday"}}`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := ParseEvent([]byte(body)); !errors.Is(err, ErrPayload) {
				t.Errorf("ParseEvent = %v, want an ErrPayload", err)
			}
		})
	}
}

// outcomeKey is what these tests compare of an outcome: whether it
// connected, the contact's talk (-1 when unknown) and the reason.
type outcomeKey struct {
	Connected bool
	Talk      float64
	Reason    string
}

func keyOf(o comms.Outcome) outcomeKey {
	k := outcomeKey{Connected: o.Connected, Talk: -1, Reason: o.EndedReason}
	if o.TalkSeconds != nil {
		k.Talk = *o.TalkSeconds
	}
	return k
}

func withoutOutcome(e Event) Event {
	e.Outcome = comms.Outcome{}
	return e
}
