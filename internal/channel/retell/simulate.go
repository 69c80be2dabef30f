package retell

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// Word is one transcribed word with its start and end, in seconds of call
// audio (relative to the call's start, as Retell reports them).
type Word struct {
	Word       string
	Start, End float64
}

// Utterance is one turn of the transcript: Role "agent" or "user" (the
// contact) and its words.
type Utterance struct {
	Role  string
	Words []Word
}

// The scenarios of the dev voice simulator (payload.metadata.simulate).
const (
	// ScenarioConversation: the contact answers and speaks 30.5 s in
	// three turns; the agent hangs up at the end.
	ScenarioConversation = "conversation"
	// ScenarioShort: the contact answers, speaks 4 s and hangs up.
	ScenarioShort = "short"
	// ScenarioNoAnswer: nobody picks up (dial_no_answer, no transcript).
	ScenarioNoAnswer = "no_answer"
	// ScenarioVoicemail: a voicemail greeting answers and the agent leaves
	// a message (voicemail_reached): not connected, 0 s of talk.
	ScenarioVoicemail = "voicemail"
	// ScenarioManual: the call is placed and the simulator posts nothing:
	// a person or a test posts the webhooks by hand.
	ScenarioManual = "manual"
)

// outPayload is a webhook body in Retell's shape, as BuildEvent writes it.
type outPayload struct {
	Event string  `json:"event"`
	Call  outCall `json:"call"`
}

type outCall struct {
	CallType            string            `json:"call_type"`
	CallID              string            `json:"call_id"`
	Direction           string            `json:"direction"`
	CallStatus          string            `json:"call_status"`
	Metadata            map[string]string `json:"metadata,omitempty"`
	StartTimestamp      int64             `json:"start_timestamp,omitempty"`
	EndTimestamp        int64             `json:"end_timestamp,omitempty"`
	DurationMS          int64             `json:"duration_ms,omitempty"`
	DisconnectionReason string            `json:"disconnection_reason,omitempty"`
	Transcript          string            `json:"transcript,omitempty"`
	TranscriptObject    []outUtterance    `json:"transcript_object,omitempty"`
	CallAnalysis        *outAnalysis      `json:"call_analysis,omitempty"`
}

type outUtterance struct {
	Role    string    `json:"role"`
	Content string    `json:"content"`
	Words   []outWord `json:"words"`
}

type outWord struct {
	Word  string  `json:"word"`
	Start float64 `json:"start"`
	End   float64 `json:"end"`
}

type outAnalysis struct {
	InVoicemail bool   `json:"in_voicemail"`
	CallSummary string `json:"call_summary,omitempty"`
}

// BuildEvent returns a webhook body in Retell's shape:
// {"event": kind, "call": {call_type "phone_call", call_id, direction
// "outbound", call_status, metadata, start_timestamp, end_timestamp,
// duration_ms, disconnection_reason, transcript, transcript_object}}, plus
// call_analysis {in_voicemail} for call_analyzed. For call_started only the
// basic fields are written (call_status "ongoing", no end, reason or
// transcript), as Retell does. call_status is "not_connected" for the
// reasons of unanswered calls, else "ended". A zero start or end, an empty
// reason, nil meta or an empty transcript is left out; words with a
// non-finite time are dropped. Sign the result with Sign to post it.
func BuildEvent(kind, callID string, meta map[string]string, transcript []Utterance, reason string, start, end time.Time) []byte {
	return buildEvent(kind, callID, meta, transcript, reason, start, end, machineReasons[reason])
}

// BuildAnalyzed returns a call_analyzed body like BuildEvent's, with
// call_analysis.in_voicemail as given: Retell's analysis can find a
// voicemail the call's end did not show (a greeting transcribed as the
// user, the call ended by a hang-up).
func BuildAnalyzed(callID string, meta map[string]string, transcript []Utterance, reason string, start, end time.Time, inVoicemail bool) []byte {
	return buildEvent(EventCallAnalyzed, callID, meta, transcript, reason, start, end, inVoicemail)
}

func buildEvent(kind, callID string, meta map[string]string, transcript []Utterance, reason string, start, end time.Time, inVoicemail bool) []byte {
	call := outCall{CallType: "phone_call", CallID: callID, Direction: "outbound", Metadata: meta}
	if !start.IsZero() {
		call.StartTimestamp = start.UnixMilli()
	}
	if kind == EventCallStarted {
		call.CallStatus = "ongoing"
	} else {
		call.CallStatus = "ended"
		if notConnectedReasons[reason] {
			call.CallStatus = "not_connected"
		}
		if !end.IsZero() {
			call.EndTimestamp = end.UnixMilli()
			if !start.IsZero() && !end.Before(start) {
				call.DurationMS = end.Sub(start).Milliseconds()
			}
		}
		call.DisconnectionReason = reason
		call.Transcript, call.TranscriptObject = transcriptOf(transcript)
		if kind == EventCallAnalyzed {
			call.CallAnalysis = &outAnalysis{InVoicemail: inVoicemail}
		}
	}
	b, err := json.Marshal(outPayload{Event: kind, Call: call})
	if err != nil {
		// Only strings, integers and finite floats are marshalled.
		panic(fmt.Sprintf("retell.BuildEvent: %v", err))
	}
	return b
}

// transcriptOf renders utterances as Retell's transcript text ("Agent: …\n
// User: …\n") and transcript_object.
func transcriptOf(us []Utterance) (string, []outUtterance) {
	var text strings.Builder
	var objs []outUtterance
	for _, u := range us {
		words := make([]outWord, 0, len(u.Words))
		parts := make([]string, 0, len(u.Words))
		for _, w := range u.Words {
			if !finite(w.Start) || !finite(w.End) {
				continue
			}
			words = append(words, outWord(w))
			parts = append(parts, w.Word)
		}
		content := strings.Join(parts, " ")
		label := "User"
		if u.Role == "agent" {
			label = "Agent"
		}
		text.WriteString(label + ": " + content + "\n")
		objs = append(objs, outUtterance{Role: u.Role, Content: content, Words: words})
	}
	return text.String(), objs
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// say is an utterance of text starting at second at: every word lasts
// 0.5 s and is followed by 0.25 s of silence (values exact in binary, so
// the talk time of n user words is exactly n/2 s). It returns the
// utterance and the second its last word ends.
func say(role string, at float64, text string) (Utterance, float64) {
	u := Utterance{Role: role}
	t, end := at, at
	for _, w := range strings.Fields(text) {
		u.Words = append(u.Words, Word{Word: w, Start: t, End: t + 0.5})
		end = t + 0.5
		t += 0.75
	}
	return u, end
}

// script chains turns with 0.75 s between them, the first at 0.75 s, and
// returns the transcript and when its last word ends.
func script(turns ...[2]string) ([]Utterance, float64) {
	var us []Utterance
	at, end := 0.75, 0.0
	for _, turn := range turns {
		var u Utterance
		u, end = say(turn[0], at, turn[1])
		us = append(us, u)
		at = end + 0.75
	}
	return us, end
}

// seconds converts a call-audio offset to a duration.
func seconds(s float64) time.Duration { return time.Duration(math.Round(s * float64(time.Second))) }

// SimulatedEvent is the webhook body Retell would send, as event kind
// (call_started, call_ended or call_analyzed), for a call that started at
// start and went as scenario says:
//
//	conversation  agent_hangup; the contact speaks 61 words = 30.5 s in 3 turns
//	short         user_hangup; the contact speaks 8 words = 4.0 s
//	no_answer     dial_no_answer after 30 s of ringing; no transcript
//	voicemail     voicemail_reached; a greeting (transcribed as "user", as
//	              Retell does) and the agent's message; not connected, 0 s
//
// It is built on BuildEvent and parses back with ParseEvent. Retell sends
// no call_started for a call that did not connect, so call_started with
// no_answer is an error, as are unknown kinds and scenarios.
func SimulatedEvent(kind string, callID string, meta map[string]string, scenario string, start time.Time) ([]byte, error) {
	switch kind {
	case EventCallStarted, EventCallEnded, EventCallAnalyzed:
	default:
		return nil, fmt.Errorf("retell.SimulatedEvent: unknown event kind %q", kind)
	}
	var (
		transcript []Utterance
		last       float64
		reason     string
	)
	switch scenario {
	case ScenarioConversation:
		transcript, last = script(
			[2]string{"agent", "Hi, this is Ava calling from Northwind Dental. Am I speaking with the account holder?"},
			[2]string{"user", "Yes, this is Jordan speaking. What is this about?"},
			[2]string{"agent", "I am calling to confirm your cleaning appointment next Tuesday at ten in the morning. Does that still work for you?"},
			[2]string{"user", "Tuesday at ten should be fine, but I might be a few minutes late because I drop my kids at school first. Is that going to be a problem for the hygienist?"},
			[2]string{"agent", "Not at all, we can hold the slot for fifteen minutes. Is there anything else you would like us to know?"},
			[2]string{"user", "Yes, please note that I switched insurance last month, so I will bring the new card with me on Tuesday."},
			[2]string{"agent", "Noted, thank you Jordan. See you on Tuesday, goodbye."},
		)
		reason = "agent_hangup"
	case ScenarioShort:
		transcript, last = script(
			[2]string{"user", "Hello?"},
			[2]string{"agent", "Hi, this is Ava calling from Northwind Dental about your upcoming appointment. Do you have a minute?"},
			[2]string{"user", "Sorry, not interested, please remove my number."},
		)
		reason = "user_hangup"
	case ScenarioNoAnswer:
		if kind == EventCallStarted {
			return nil, fmt.Errorf("retell.SimulatedEvent: Retell sends no call_started for a call nobody answered (scenario %q)", scenario)
		}
		last, reason = 30, "dial_no_answer"
	case ScenarioVoicemail:
		transcript, last = script(
			[2]string{"user", "Hi, you have reached Jordan. Please leave a message after the tone."},
			[2]string{"agent", "Hi Jordan, this is Ava from Northwind Dental calling about your appointment on Tuesday. Please call us back at your convenience. Thank you."},
		)
		reason = "voicemail_reached"
	default:
		return nil, fmt.Errorf("retell.SimulatedEvent: unknown scenario %q (want conversation, short, no_answer or voicemail)", scenario)
	}
	end := start.Add(seconds(last + 1))
	return BuildEvent(kind, callID, meta, transcript, reason, start, end), nil
}

// VoicemailGreeting is a voicemail greeting as Retell transcribes it: as
// the "user", 33 words = 16.5 s of speech. Its call_ended alone looks like
// a conversation; the analysis (in_voicemail) says otherwise.
func VoicemailGreeting() []Utterance {
	us, _ := script([2]string{"user", "Hi you have reached Jordan at Northwind Dental I am away from my desk so please leave " +
		"your name your number and a short message after the tone and I will get back"})
	return us
}
