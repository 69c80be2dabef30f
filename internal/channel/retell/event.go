package retell

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// The webhook events of a voice call that ParseEvent gives meaning to.
// Other events (transcript_updated, transfer_*) parse too, with Ended
// false.
const (
	EventCallStarted  = "call_started"
	EventCallEnded    = "call_ended"
	EventCallAnalyzed = "call_analyzed"
)

// ErrPayload is wrapped by ParseEvent when a body is not a Retell call
// event: not JSON, no event name, no call object or call_id, or our
// dispatcher_attempt metadata not a number.
var ErrPayload = errors.New("malformed Retell webhook payload")

// Event is one call event Retell posted.
type Event struct {
	// Kind is the event name: call_started, call_ended, call_analyzed…
	Kind   string
	CallID string
	// CompanyID, CommunicationID and Attempt come from the call's
	// metadata (empty / 0 for calls Dispatcher did not place).
	CompanyID, CommunicationID string
	Attempt                    int
	// Ended is true for call_ended and call_analyzed, which both carry
	// the final call object; Outcome is meaningful only then.
	Ended   bool
	Outcome comms.Outcome
	// StartedAt and EndedAt are the call's start_timestamp and
	// end_timestamp (UTC; zero when absent).
	StartedAt, EndedAt time.Time
}

// notConnectedReasons are the disconnection reasons of calls nobody
// answered: those Retell lists with call_status not_connected, and the
// errors that stop a call before it is dialled or joined.
var notConnectedReasons = map[string]bool{
	"dial_busy":                            true,
	"dial_failed":                          true,
	"dial_no_answer":                       true,
	"invalid_destination":                  true,
	"telephony_provider_permission_denied": true,
	"telephony_provider_unavailable":       true,
	"sip_routing_error":                    true,
	"marked_as_spam":                       true,
	"user_declined":                        true,
	"concurrency_limit_reached":            true,
	"no_valid_payment":                     true,
	"scam_detected":                        true,
	"registered_call_timeout":              true,
	"error_user_not_joined":                true,
}

// undialableReasons are the disconnection reasons after which calling the
// same number again cannot help, so the cadence stops: the number is not
// a valid destination, the carrier flags the number dialled as spam, or
// Retell flagged the agent's call as a scam. Reasons that a later attempt
// can overcome (busy, no answer, declined, dial_failed — which Retell says
// may also be our own number being blocked —, provider outages, payment or
// concurrency limits of the account) are not in it.
var undialableReasons = map[string]bool{
	"invalid_destination": true,
	"marked_as_spam":      true,
	"scam_detected":       true,
}

// machineReasons are the reasons of calls a machine answered.
var machineReasons = map[string]bool{
	"voicemail_reached": true,
	"ivr_reached":       true,
	"machine_detected":  true,
}

// inPayload is the webhook body as far as ParseEvent reads it.
type inPayload struct {
	Event string  `json:"event"`
	Call  *inCall `json:"call"`
}

type inCall struct {
	CallID              string          `json:"call_id"`
	CallStatus          string          `json:"call_status"`
	StartTimestamp      millis          `json:"start_timestamp"`
	EndTimestamp        millis          `json:"end_timestamp"`
	DisconnectionReason string          `json:"disconnection_reason"`
	DurationMS          *float64        `json:"duration_ms"`
	Transcript          string          `json:"transcript"`
	TranscriptObject    []inUtterance   `json:"transcript_object"`
	Metadata            json.RawMessage `json:"metadata"`
	CallAnalysis        *struct {
		InVoicemail *bool `json:"in_voicemail"`
	} `json:"call_analysis"`
}

type inUtterance struct {
	Role  string   `json:"role"`
	Words []inWord `json:"words"`
}

type inWord struct {
	Start *float64 `json:"start"`
	End   *float64 `json:"end"`
}

// millis is a Unix-milliseconds timestamp that tolerates null and a
// fractional number.
type millis int64

// UnmarshalJSON reads a number or null.
func (m *millis) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*m = 0
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	if i, err := n.Int64(); err == nil {
		*m = millis(i)
		return nil
	}
	f, err := n.Float64()
	if err != nil {
		return err
	}
	*m = millis(math.Round(f))
	return nil
}

// time is the timestamp as a UTC time, zero for 0 or less.
func (m millis) time() time.Time {
	if m <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(m)).UTC()
}

// ParseEvent reads a Retell webhook body ({"event": …, "call": {…}}) into an
// Event; the package documentation states how Outcome is decided. Event
// names it does not know parse without error (Ended false), so a handler
// can acknowledge and ignore them. Errors wrap ErrPayload.
func ParseEvent(body []byte) (Event, error) {
	var p inPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrPayload, err)
	}
	if p.Event == "" {
		return Event{}, fmt.Errorf("%w: no event name", ErrPayload)
	}
	if p.Call == nil || p.Call.CallID == "" {
		return Event{}, fmt.Errorf("%w: event %q has no call object with a call_id", ErrPayload, p.Event)
	}
	c := p.Call
	ev := Event{
		Kind:      p.Event,
		CallID:    c.CallID,
		Ended:     p.Event == EventCallEnded || p.Event == EventCallAnalyzed,
		StartedAt: c.StartTimestamp.time(),
		EndedAt:   c.EndTimestamp.time(),
	}
	meta := metadataStrings(c.Metadata)
	ev.CompanyID = meta[MetaCompanyID]
	ev.CommunicationID = meta[MetaCommunicationID]
	if a := strings.TrimSpace(meta[MetaAttempt]); a != "" {
		n, err := strconv.Atoi(a)
		if err != nil {
			return Event{}, fmt.Errorf("%w: metadata %s is %q, not a number", ErrPayload, MetaAttempt, a)
		}
		ev.Attempt = n
	}
	if ev.Ended {
		ev.Outcome = outcomeOf(c, ev.StartedAt, ev.EndedAt)
		ev.Outcome.Basis = comms.BasisCallEnded
		if ev.Kind == EventCallAnalyzed {
			ev.Outcome.Basis = comms.BasisCallAnalyzed
		}
	}
	return ev, nil
}

// metadataStrings returns the string (or number) values of a metadata
// object; anything else, or metadata that is not an object, is ignored.
func metadataStrings(raw json.RawMessage) map[string]string {
	var m map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		var s string
		if json.Unmarshal(v, &s) == nil {
			out[k] = s
			continue
		}
		var n json.Number
		if json.Unmarshal(v, &n) == nil {
			out[k] = n.String()
		}
	}
	return out
}

// outcomeOf reads the outcome of an ended call; comms.Decide then applies
// the product's rules to it.
func outcomeOf(c *inCall, start, end time.Time) comms.Outcome {
	o := comms.Outcome{EndedReason: c.DisconnectionReason, Undialable: undialableReasons[c.DisconnectionReason]}
	o.Connected = connected(c, start, end)
	switch {
	case c.DurationMS != nil && *c.DurationMS >= 0:
		o.CallSeconds = comms.Seconds(math.Round(*c.DurationMS/100) / 10)
	case !start.IsZero() && !end.Before(start):
		o.CallSeconds = comms.Seconds(math.Round(end.Sub(start).Seconds()*10) / 10)
	}
	if c.CallAnalysis != nil && c.CallAnalysis.InVoicemail != nil {
		vm := *c.CallAnalysis.InVoicemail
		o.InVoicemail = &vm
	}
	switch {
	case !o.Connected:
		o.TalkSecondsSource = comms.TalkNone
	case len(c.TranscriptObject) > 0:
		o.TalkSeconds = comms.Seconds(userSpeechSeconds(c.TranscriptObject))
		o.TalkSecondsSource = comms.TalkFromTranscript
	default:
		// No transcript (basic_attributes_only storage, or none kept):
		// how long the contact spoke is unknown, not 0.
		o.TalkSecondsSource = comms.TalkFromCallDuration
	}
	return comms.Decide(o)
}

// connected reports whether a person answered the call.
func connected(c *inCall, start, end time.Time) bool {
	switch {
	case start.IsZero() || end.IsZero() || end.Before(start):
		return false
	case c.CallStatus == "not_connected" || c.CallStatus == "registered":
		return false
	case notConnectedReasons[c.DisconnectionReason] || machineReasons[c.DisconnectionReason]:
		return false
	case c.CallAnalysis != nil && c.CallAnalysis.InVoicemail != nil && *c.CallAnalysis.InVoicemail:
		return false
	}
	return true
}

// maxWordSecond bounds a word's timestamps (seconds from the call's
// start): a word outside [0, 1 day] is bad data and skipped.
const maxWordSecond = 24 * 60 * 60

// userSpeechSeconds is how long the role "user" spoke in a transcript: the
// total length of the union of its words' [start, end] intervals (so
// overlapping words count once and pauses not at all), rounded to 0.1 s.
// Words without both timestamps, with end ≤ start, or outside the first
// day of the call are skipped.
func userSpeechSeconds(transcript []inUtterance) float64 {
	var spans [][2]float64
	for _, u := range transcript {
		if u.Role != "user" {
			continue
		}
		for _, w := range u.Words {
			if w.Start == nil || w.End == nil {
				continue
			}
			s, e := *w.Start, *w.End
			// Seconds of call audio: within a day (Retell ends calls long
			// before), so that no sum can overflow.
			if math.IsNaN(s) || math.IsNaN(e) || s < 0 || e > maxWordSecond || e <= s {
				continue
			}
			spans = append(spans, [2]float64{s, e})
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i][0] < spans[j][0] })
	var total, curStart, curEnd float64
	open := false
	for _, sp := range spans {
		switch {
		case !open:
			curStart, curEnd, open = sp[0], sp[1], true
		case sp[0] <= curEnd:
			curEnd = math.Max(curEnd, sp[1])
		default:
			total += curEnd - curStart
			curStart, curEnd = sp[0], sp[1]
		}
	}
	if open {
		total += curEnd - curStart
	}
	return math.Round(total*10) / 10
}
