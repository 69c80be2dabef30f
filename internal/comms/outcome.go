package comms

import (
	"math"
	"time"
)

// This file holds the voice-outcome rules (docs/design.md §11): what a
// call's report means for its cadence. The provider adapter reads its
// webhook into an Outcome; the rules below are the product's.

// TalkSource says what a call's talk time rests on.
type TalkSource string

// The talk-time sources.
const (
	// TalkFromTranscript: the contact's speech, measured on the transcript.
	TalkFromTranscript TalkSource = "transcript"
	// TalkFromCallDuration: the call connected but came without a
	// transcript (e.g. Retell's basic_attributes_only storage): talk time
	// is unknown and the call's length decides.
	TalkFromCallDuration TalkSource = "call_duration"
	// TalkNone: nothing to measure (the call did not connect, or neither a
	// transcript nor its length is known).
	TalkNone TalkSource = "none"
)

// OutcomeBasis says which report an outcome was decided from.
type OutcomeBasis string

// The outcome bases.
const (
	// BasisCallAnalyzed: the provider's post-call analysis (the richest).
	BasisCallAnalyzed OutcomeBasis = "call_analyzed"
	// BasisCallEnded: the end-of-call report alone; the analysis did not
	// come within the grace period.
	BasisCallEnded OutcomeBasis = "call_ended"
	// BasisProviderLookup: no webhook came; the provider's record of the
	// call (Retell's get-call) was asked.
	BasisProviderLookup OutcomeBasis = "provider_lookup"
	// BasisNoReport: neither a webhook nor the provider told anything; the
	// call is taken as unanswered.
	BasisNoReport OutcomeBasis = "no_report"
)

// Decision is what a voice cadence does after a call.
type Decision string

// The decisions.
const (
	// DecisionConversation: a real conversation; the cadence stops.
	DecisionConversation Decision = "conversation"
	// DecisionRetry: nobody (or only a machine) talked; the next attempt
	// follows while attempts remain.
	DecisionRetry Decision = "retry"
	// DecisionUndialable: retrying cannot help (invalid destination…);
	// the cadence stops.
	DecisionUndialable Decision = "undialable"
)

// TalkThreshold is how long the contact must speak, in total, for a call
// to count as a real conversation. A connected call without transcript
// counts as one when it lasted at least as long: a conversation is never
// redialled because its talk time is unknown.
const TalkThreshold = 10.0 // seconds

// Seconds returns a pointer to s (for Outcome's optional numbers).
func Seconds(s float64) *float64 { return &s }

// Decide returns o with its talk source and decision filled in:
//
//   - undialable reason → undialable;
//   - not connected → retry (talk 0, source none: what a machine said
//     is not the contact's talk);
//   - connected with a transcript → conversation when the contact spoke
//     ≥ TalkThreshold, else retry;
//   - connected without a transcript (talk unknown) → conversation when
//     the call lasted ≥ TalkThreshold or its length is unknown, else retry.
func Decide(o Outcome) Outcome {
	// A length that is not a finite, non-negative number of seconds (a
	// provider's bad data) is unknown, not a number to decide on or record.
	for _, p := range []**float64{&o.TalkSeconds, &o.CallSeconds} {
		if *p != nil && (math.IsNaN(**p) || math.IsInf(**p, 0) || **p < 0) {
			*p = nil
		}
	}
	if !o.Connected {
		o.TalkSeconds, o.TalkSecondsSource = Seconds(0), TalkNone
	}
	if o.TalkSecondsSource == "" {
		if o.TalkSeconds != nil {
			o.TalkSecondsSource = TalkFromTranscript
		} else {
			o.TalkSecondsSource = TalkFromCallDuration
		}
	}
	switch {
	case o.Undialable:
		o.Decision = DecisionUndialable
	case !o.Connected:
		o.Decision = DecisionRetry
	case o.TalkSecondsSource == TalkFromTranscript && o.TalkSeconds != nil:
		o.Decision = DecisionRetry
		if *o.TalkSeconds >= TalkThreshold {
			o.Decision = DecisionConversation
		}
	default: // connected, talk time unknown
		o.TalkSeconds = nil
		o.Decision = DecisionConversation
		if o.CallSeconds != nil && *o.CallSeconds < TalkThreshold {
			o.Decision = DecisionRetry
		}
	}
	return o
}

// Merge returns the outcome of a call from its end-of-call report ended
// and its analysis analyzed (the same final call object plus the
// analysis): the analysis wins where it says more (in_voicemail makes the
// call not connected), and what only ended carried is kept.
func Merge(ended, analyzed Outcome) Outcome {
	o := analyzed
	if o.EndedReason == "" {
		o.EndedReason = ended.EndedReason
	}
	if o.CallSeconds == nil {
		o.CallSeconds = ended.CallSeconds
	}
	if o.TalkSeconds == nil && ended.TalkSeconds != nil && o.Connected {
		o.TalkSeconds, o.TalkSecondsSource = ended.TalkSeconds, ended.TalkSecondsSource
	}
	o.Undialable = o.Undialable || ended.Undialable
	return o
}

// AwaitingAnalysis reports whether a voice row's call has ended and waits,
// until its decide_by (the row's lease), for the provider's analysis.
func (c Communication) AwaitingAnalysis() bool {
	return c.Channel == ChannelVoice && c.Status == StatusProcessing && c.ProviderMessageID != "" &&
		c.Outcome != nil && c.Outcome.Basis == BasisCallEnded
}

// CallEndedData is the data of call_ended: the end-of-call report as
// received, and when Dispatcher decides from it if no analysis comes.
type CallEndedData struct {
	Connected         bool       `json:"connected"`
	TalkSeconds       *float64   `json:"talk_seconds"`
	TalkSecondsSource TalkSource `json:"talk_seconds_source"`
	CallSeconds       *float64   `json:"call_seconds"`
	EndedReason       string     `json:"ended_reason"`
	DecideBy          time.Time  `json:"decide_by"`
}
