package comms

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// TestTransitionTable tries every transition from every status: the
// allowed ones give the documented next status and events, the others
// return the domain error and change nothing.
func TestTransitionTable(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	e := LastError{Code: "throttled", Message: "slow down"}
	follow := Communication{ID: "fu-1", CompanyID: "co", Channel: ChannelVoice, Source: SourceCadence,
		ScheduledFor: now.Add(2 * time.Hour), NextAttemptAt: now.Add(2 * time.Hour), Cadence: &Cadence{RootID: "r", Attempt: 2, MaxAttempts: 3}}
	type want struct {
		status Status
		events []EventType
	}
	// row builds the row a transition starts from.
	row := func(s Status, ch Channel, attempts int, placed bool) Communication {
		r := Communication{ID: "r", CompanyID: "co", Channel: ch, Status: s, AttemptCount: attempts, MaxAttempts: 3,
			ScheduledFor: now, NextAttemptAt: now, Version: 4, EventSeq: 5, Token: "old", UpdatedAt: now.Add(-time.Minute)}
		if placed {
			r.ProviderMessageID = "call-1"
		}
		return r
	}
	transitions := []struct {
		name    Transition
		channel Channel
		attempt int
		placed  bool
		run     func(Communication) (Change, error)
		from    map[Status]want
	}{
		{TransitionReschedule, ChannelEmail, 0, false, func(r Communication) (Change, error) {
			next := r
			next.ScheduledFor = now.Add(time.Hour)
			return Reschedule(r, next, now)
		}, map[Status]want{StatusPending: {StatusPending, []EventType{EventRescheduled}}}},
		{TransitionCancel, ChannelEmail, 0, false, func(r Communication) (Change, error) { return Cancel(r, CancelAPI, now) },
			map[Status]want{StatusPending: {StatusCancelled, []EventType{EventCancelled}}}},
		{TransitionExpire, ChannelEmail, 0, false, func(r Communication) (Change, error) { return Expire(r, now.Add(-time.Hour), 30, now) },
			map[Status]want{StatusPending: {StatusCancelled, []EventType{EventExpired, EventCancelled}}}},
		{TransitionDefer, ChannelEmail, 0, false, func(r Communication) (Change, error) {
			return Defer(r, DeferBusinessHours, now.Add(time.Hour), now)
		}, map[Status]want{StatusPending: {StatusPending, []EventType{EventDeferred}}}},
		{TransitionClaim, ChannelEmail, 0, false, func(r Communication) (Change, error) { return Claim(r, now.Add(2*time.Minute), now) },
			map[Status]want{StatusPending: {StatusProcessing, []EventType{EventAttemptStarted}}}},
		{TransitionRecordSent, ChannelEmail, 1, false, func(r Communication) (Change, error) { return RecordSent(r, "msg", now) },
			map[Status]want{StatusProcessing: {StatusSent, []EventType{EventSent}}}},
		{TransitionRecordCallPlaced, ChannelVoice, 1, false, func(r Communication) (Change, error) {
			return RecordCallPlaced(r, "call-1", now.Add(30*time.Minute), now)
		}, map[Status]want{StatusProcessing: {StatusProcessing, []EventType{EventSent}}}},
		{TransitionRecordTransientFailure + " (attempts left)", ChannelEmail, 1, false, func(r Communication) (Change, error) {
			return RecordTransientFailure(r, e, now.Add(time.Minute), now)
		}, map[Status]want{StatusProcessing: {StatusPending, []EventType{EventAttemptFailed}}}},
		{TransitionRecordTransientFailure + " (last attempt)", ChannelEmail, 3, false, func(r Communication) (Change, error) {
			return RecordTransientFailure(r, e, now.Add(time.Minute), now)
		}, map[Status]want{StatusProcessing: {StatusFailed, []EventType{EventAttemptFailed, EventFailed}}}},
		{TransitionRecordPermanentFailure, ChannelEmail, 1, false, func(r Communication) (Change, error) { return RecordPermanentFailure(r, e, now) },
			map[Status]want{StatusProcessing: {StatusFailed, []EventType{EventAttemptFailed, EventFailed}}, StatusPending: {StatusFailed, []EventType{EventFailed}}}},
		{TransitionReleaseExpiredLease + " (email)", ChannelEmail, 1, false, func(r Communication) (Change, error) { return ReleaseExpiredLease(r, now) },
			map[Status]want{StatusProcessing: {StatusPending, []EventType{EventAttemptFailed}}}},
		{TransitionReleaseUnsent, ChannelEmail, 2, false, func(r Communication) (Change, error) {
			return ReleaseUnsent(r, LastError{Code: "not_sent", Message: "disk full"}, now.Add(time.Second), now)
		}, map[Status]want{StatusProcessing: {StatusPending, []EventType{EventAttemptFailed}}}},
		{TransitionReleaseExpiredLease + " (voice)", ChannelVoice, 1, false, func(r Communication) (Change, error) { return ReleaseExpiredLease(r, now) },
			map[Status]want{StatusProcessing: {StatusFailed, []EventType{EventAttemptFailed, EventFailed}}}},
		{TransitionRecordOutcome, ChannelVoice, 1, true, func(r Communication) (Change, error) {
			return RecordOutcome(r, Outcome{EndedReason: "no_answer"}, &follow, "", now)
		}, map[Status]want{StatusProcessing: {StatusSent, []EventType{EventOutcomeRecorded, EventFollowUpCreated}}}},
		{TransitionRecordCallEnded, ChannelVoice, 1, true, func(r Communication) (Change, error) {
			return RecordCallEnded(r, Outcome{EndedReason: "user_hangup", Connected: true}, now.Add(2*time.Minute), now)
		}, map[Status]want{StatusProcessing: {StatusProcessing, []EventType{EventCallEnded}}}},
		{TransitionSettleAttempt, ChannelEmail, 1, false, func(r Communication) (Change, error) { return SettleAttempt(r, "msg", now) },
			map[Status]want{StatusProcessing: {StatusSent, []EventType{EventSent}}}},
		{TransitionRecordDelivery, ChannelEmail, 1, false, func(r Communication) (Change, error) {
			return RecordDelivery(r, DeliveryReport{Status: DeliveryDelivered, Attempt: 1, ProviderMessageID: "msg", At: now}, now)
		}, map[Status]want{
			StatusSent:       {StatusSent, []EventType{EventDelivered}},
			StatusProcessing: {StatusSent, []EventType{EventSent, EventDelivered}}, // settled late by the report
			StatusPending:    {StatusSent, []EventType{EventSent, EventDelivered}},
		}},
	}
	statuses := []Status{StatusPending, StatusProcessing, StatusSent, StatusFailed, StatusCancelled}
	for _, tr := range transitions {
		for _, from := range statuses {
			r := row(from, tr.channel, tr.attempt, tr.placed)
			ch, err := tr.run(r)
			w, allowed := tr.from[from]
			if !allowed {
				if !errors.Is(err, ErrInvalidTransition) {
					t.Errorf("%s from %s: err = %v, want ErrInvalidTransition", tr.name, from, err)
				}
				if pendingOnly := len(tr.from) == 1 && tr.from[StatusPending].status != ""; pendingOnly != errors.Is(err, ErrNotPending) {
					t.Errorf("%s from %s: errors.Is(ErrNotPending) = %v, want %v", tr.name, from, !pendingOnly, pendingOnly)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s from %s: %v", tr.name, from, err)
				continue
			}
			if ch.Row.Status != w.status {
				t.Errorf("%s from %s: status %s, want %s", tr.name, from, ch.Row.Status, w.status)
			}
			if ch.Row.Token == r.Token || ch.Row.Version != r.Version || !ch.Row.UpdatedAt.Equal(now) {
				t.Errorf("%s from %s: token %q version %d updated %v: want a new token, the read version, updated now",
					tr.name, from, ch.Row.Token, ch.Row.Version, ch.Row.UpdatedAt)
			}
			if len(ch.Events) != len(w.events) {
				t.Fatalf("%s from %s: events %+v, want %v", tr.name, from, ch.Events, w.events)
			}
			for i, ev := range ch.Events {
				seq := r.EventSeq + int64(i) + 1
				if ev.Type != w.events[i] || ev.Sequence != seq || ev.ID != EventID(r.ID, seq) || !ev.At.Equal(now) ||
					ev.CommunicationID != r.ID || ev.CompanyID != r.CompanyID || !json.Valid(ev.Data) {
					t.Errorf("%s from %s: event %d = %+v, want %s seq %d", tr.name, from, i, ev, w.events[i], seq)
				}
			}
			if ch.Row.EventSeq != r.EventSeq+int64(len(w.events)) {
				t.Errorf("%s from %s: row EventSeq %d, want %d", tr.name, from, ch.Row.EventSeq, r.EventSeq+int64(len(w.events)))
			}
		}
	}
}

func TestTransitionsRecordWhatHappened(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	pending := Communication{ID: "r", CompanyID: "co", Channel: ChannelEmail, Status: StatusPending, MaxAttempts: 3}
	data := func(ev Event) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(ev.Data, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}

	t.Run("CreateNumbersFromOne", func(t *testing.T) {
		ch := Create(pending, now)
		if ch.Row.Status != StatusPending || ch.Row.EventSeq != 1 || ch.Events[0].Type != EventCreated || data(ch.Events[0])["source"] != "" {
			t.Fatalf("create: %+v", ch)
		}
	})
	t.Run("CancelReasons", func(t *testing.T) {
		for _, reason := range []CancelReason{CancelAPI, CancelOnEvent("contact_replied"), CancelCadence} {
			ch, err := Cancel(pending, reason, now)
			if err != nil || ch.Row.CancelReason != reason || ch.Row.CancelledAt == nil || data(ch.Events[0])["reason"] != string(reason) {
				t.Fatalf("cancel %s: %+v %v", reason, ch.Row, err)
			}
		}
		ch, _ := Expire(pending, now.Add(-2*time.Hour), 30, now)
		if ch.Row.CancelReason != CancelExpired || data(ch.Events[1])["reason"] != "expired" || data(ch.Events[0])["late_seconds"] != 7200.0 {
			t.Fatalf("expire: %+v %s %s", ch.Row, ch.Events[0].Data, ch.Events[1].Data)
		}
	})
	t.Run("RetryAtOnlyWhenRetried", func(t *testing.T) {
		claimed, _ := Claim(pending, now.Add(time.Minute), now)
		retry := now.Add(30 * time.Second)
		ch, _ := RecordTransientFailure(claimed.Row, LastError{Code: "throttled"}, retry, now)
		if d := data(ch.Events[0]); d["retry_at"] != retry.Format(time.RFC3339) || d["permanent"] != false || ch.Row.NextAttemptAt != retry {
			t.Fatalf("retried: %s", ch.Events[0].Data)
		}
		last := claimed.Row
		last.AttemptCount = 3
		ch, _ = RecordTransientFailure(last, LastError{Code: "throttled"}, retry, now)
		if d := data(ch.Events[0]); d["retry_at"] != nil {
			t.Fatalf("last attempt: %s", ch.Events[0].Data)
		}
	})
	t.Run("VoiceCallPlacedOnlyOnce", func(t *testing.T) {
		voice := pending
		voice.Channel = ChannelVoice
		claimed, _ := Claim(voice, now.Add(time.Minute), now)
		placed, err := RecordCallPlaced(claimed.Row, "call-1", now.Add(30*time.Minute), now)
		if err != nil || placed.Row.LeaseUntil != now.Add(30*time.Minute) || placed.Row.SentAt == nil {
			t.Fatalf("placed: %+v %v", placed.Row, err)
		}
		if _, err := RecordCallPlaced(placed.Row, "call-2", now, now); !errors.Is(err, ErrInvalidTransition) {
			t.Fatalf("placing twice: %v", err)
		}
		if _, err := RecordOutcome(claimed.Row, Outcome{}, nil, "", now); !errors.Is(err, ErrInvalidTransition) {
			t.Fatalf("an outcome before the call was placed: %v", err)
		}
	})
	t.Run("EventsNeverGoBackInTime", func(t *testing.T) {
		ahead := pending
		ahead.UpdatedAt = now.Add(3 * time.Millisecond) // written by a process whose clock runs ahead
		ch, err := Claim(ahead, now.Add(time.Minute), now)
		if err != nil || !ch.Events[0].At.Equal(ahead.UpdatedAt) || !ch.Row.UpdatedAt.Equal(ahead.UpdatedAt) {
			t.Fatalf("claim at %v of a row last changed at %v: event at %v", now, ahead.UpdatedAt, ch.Events[0].At)
		}
	})
}

// TestRecordDeliveryIsIdempotentAndOrderTolerant feeds reports as SES and
// SNS deliver them — at least once, in any order — and checks the row only
// ever moves forward.
func TestRecordDeliveryIsIdempotentAndOrderTolerant(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	claimed, _ := Claim(Communication{ID: "r", CompanyID: "co", Channel: ChannelEmail, Status: StatusPending, MaxAttempts: 3,
		Payload: json.RawMessage(`{"to_email":"sarah@example.com","cc":["Boss@Example.com"]}`)}, now.Add(time.Minute), now)
	sentCh, _ := RecordSent(claimed.Row, "msg-1", now)
	sent := sentCh.Row
	if sent.Delivery.Status != DeliveryAccepted {
		t.Fatalf("a sent row's delivery_status = %q, want accepted", sent.Delivery.Status)
	}
	report := func(s DeliveryStatus) DeliveryReport {
		return DeliveryReport{Status: s, Attempt: 1, ProviderMessageID: "msg-1", At: now.Add(time.Second), Recipients: []string{"Sarah@Example.com"}}
	}
	apply := func(row Communication, r DeliveryReport) (Communication, Change, error) {
		ch, err := RecordDelivery(row, r, now.Add(2*time.Second))
		if err != nil {
			return row, ch, err
		}
		return ch.Row, ch, nil
	}

	row, ch, err := apply(sent, report(DeliveryDelivered))
	if err != nil || row.Delivery.Status != DeliveryDelivered || ch.Events[0].Type != EventDelivered || !row.Delivery.At.Equal(now.Add(time.Second)) {
		t.Fatalf("delivered: %+v %v", row.Delivery, err)
	}
	for _, late := range []DeliveryStatus{DeliveryDelivered, DeliveryDelayed, DeliveryAccepted} {
		if _, _, err := apply(row, report(late)); !errors.Is(err, ErrNothingToRecord) {
			t.Errorf("%s after delivered: err = %v, want ErrNothingToRecord", late, err)
		}
	}
	other := report(DeliveryBounced)
	other.ProviderMessageID = "msg-0"
	if _, _, err := apply(row, other); !errors.Is(err, ErrNothingToRecord) {
		t.Errorf("a report about another message: err = %v, want ErrNothingToRecord", err)
	}
	c := report(DeliveryComplained)
	c.Suppress = SuppressComplaint
	row, ch, err = apply(row, c)
	if err != nil || row.Delivery.Status != DeliveryComplained || len(ch.Suppress) != 1 {
		t.Fatalf("complaint after delivery: %+v %v", ch, err)
	}
	if s := ch.Suppress[0]; s.CompanyID != "co" || s.Channel != SuppressEmail || s.Recipient != "sarah@example.com" ||
		s.Reason != SuppressComplaint || s.CommunicationID != "r" || !s.Active() {
		t.Errorf("suppression = %+v", s)
	}
	var d DeliveryData
	if err := json.Unmarshal(ch.Events[0].Data, &d); err != nil || !d.Suppressed || d.Status != DeliveryComplained {
		t.Errorf("complained data = %s", ch.Events[0].Data)
	}
	legacy := sent // sent before delivery feedback existed: no delivery_status
	legacy.Delivery = Delivery{}
	if _, err := RecordDelivery(legacy, report(DeliveryAccepted), now); !errors.Is(err, ErrNothingToRecord) {
		t.Errorf("SES SEND on a row sent before delivery feedback: err = %v, want ErrNothingToRecord", err)
	}
	for in, want := range map[string]string{`"Sarah Lee" <Sarah@Example.com>`: "sarah@example.com", " SARAH@example.com ": "sarah@example.com", "<Sarah@Example.com>": "sarah@example.com",
		"=?UTF-8?Q?Zo=C3=AB?= <zoe@bücher.example>": "zoe@xn--bcher-kva.example"} {
		if got := NormalizeRecipient(SuppressEmail, in); got != want {
			t.Errorf("NormalizeRecipient(%q) = %q, want %q", in, got, want)
		}
	}
	if !ValidCompanyID("acme_2-b") || ValidCompanyID("acme.corp") || ValidCompanyID("") {
		t.Error("ValidCompanyID")
	}
	// A bounce of the cc only: its event and the cc's suppression, the row's
	// status unchanged; a report about an address the row was not sent to:
	// nothing.
	ccBounce := DeliveryReport{Status: DeliveryBounced, Attempt: 1, ProviderMessageID: "msg-1", Recipients: []string{"boss@example.com"}, Suppress: SuppressBounce}
	ch, err = RecordDelivery(row, ccBounce, now)
	if err != nil || ch.Row.Delivery.Status != DeliveryComplained || len(ch.Events) != 1 || ch.Events[0].Type != EventBounced ||
		len(ch.Suppress) != 1 || ch.Suppress[0].Recipient != "boss@example.com" {
		t.Errorf("cc bounce: %+v %v", ch, err)
	}
	// Redelivered, after the company lifted the cc's suppression: nothing
	// again (the lift stands).
	lifted := ch.Suppress[0]
	at := now.Add(time.Hour)
	lifted.LiftedAt, lifted.Lifts = &at, []SuppressionLift{ch.Suppress[0].Lifted("key_1", at)}
	again := ccBounce
	again.Prior = map[string]Suppression{"boss@example.com": lifted}
	if _, err := RecordDelivery(ch.Row, again, now); !errors.Is(err, ErrNothingToRecord) {
		t.Errorf("the cc's bounce redelivered after a lift: %v, want nothing recorded", err)
	}
	// Another row's bounce of the same cc is news.
	otherRow := ccBounce
	otherRow.Prior = map[string]Suppression{"boss@example.com": {Recipient: "boss@example.com", CommunicationID: "another-row", Reason: SuppressBounce}}
	if _, err := RecordDelivery(ch.Row, otherRow, now); err != nil {
		t.Errorf("a cc already suppressed by another row's bounce: %v", err)
	}
	stranger := ccBounce
	stranger.Recipients = []string{"someone@else.example"}
	if _, err := RecordDelivery(row, stranger, now); !errors.Is(err, ErrNothingToRecord) {
		t.Errorf("a report about an address the row was not sent to: %v", err)
	}
	if _, err := RecordDelivery(Communication{ID: "v", Channel: ChannelVoice, Status: StatusSent}, report(DeliveryDelivered), now); !errors.Is(err, ErrNothingToRecord) {
		t.Errorf("a voice row: err = %v", err)
	}

	t.Run("SettlesAnAttemptTheDispatcherLostTrackOf", func(t *testing.T) {
		// Attempt 1 timed out at the dispatcher and went back to pending,
		// but SES had sent it: its SEND event settles the row.
		retried, _ := RecordTransientFailure(claimed.Row, LastError{Code: "timeout"}, now.Add(time.Minute), now)
		ch, err := RecordDelivery(retried.Row, DeliveryReport{Status: DeliveryAccepted, Attempt: 1, ProviderMessageID: "msg-1", At: now}, now)
		if err != nil || ch.Row.Status != StatusSent || ch.Row.ProviderMessageID != "msg-1" || ch.Row.LastError != nil || len(ch.Events) != 1 {
			t.Fatalf("settled: %+v %v", ch, err)
		}
		var sd SentData
		_ = json.Unmarshal(ch.Events[0].Data, &sd)
		if !sd.SettledLate || sd.Attempt != 1 {
			t.Errorf("sent data = %s", ch.Events[0].Data)
		}
		// A report of an older attempt proves nothing about the current one.
		again, _ := Claim(retried.Row, now.Add(3*time.Minute), now.Add(time.Minute))
		if _, err := RecordDelivery(again.Row, DeliveryReport{Status: DeliveryAccepted, Attempt: 1, ProviderMessageID: "msg-1"}, now); !errors.Is(err, ErrNothingToRecord) {
			t.Errorf("attempt 1's report on attempt 2: %v", err)
		}
		// Without an attempt (SNS SMS logs) a report cannot settle anything.
		if _, err := RecordDelivery(claimed.Row, DeliveryReport{Status: DeliveryDelivered, ProviderMessageID: "x"}, now); !errors.Is(err, ErrNothingToRecord) {
			t.Errorf("a report without attempt on a processing row: %v", err)
		}
	})
}

// TestDecide: the rule that never redials a real conversation.
func TestDecide(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   Outcome
		want Decision
		src  TalkSource
		talk *float64
	}{
		{"transcript 30 s", Outcome{Connected: true, TalkSeconds: Seconds(30)}, DecisionConversation, TalkFromTranscript, Seconds(30)},
		{"transcript 4 s", Outcome{Connected: true, TalkSeconds: Seconds(4), TalkSecondsSource: TalkFromTranscript}, DecisionRetry, TalkFromTranscript, Seconds(4)},
		{"no transcript, 300 s call", Outcome{Connected: true, CallSeconds: Seconds(300)}, DecisionConversation, TalkFromCallDuration, nil},
		{"no transcript, 6 s call", Outcome{Connected: true, CallSeconds: Seconds(6)}, DecisionRetry, TalkFromCallDuration, nil},
		{"no transcript, no length", Outcome{Connected: true}, DecisionConversation, TalkFromCallDuration, nil},
		{"voicemail greeting 16.5 s", Outcome{Connected: false, TalkSeconds: Seconds(16.5), TalkSecondsSource: TalkFromTranscript}, DecisionRetry, TalkNone, Seconds(0)},
		{"invalid destination", Outcome{Undialable: true, EndedReason: "invalid_destination"}, DecisionUndialable, TalkNone, Seconds(0)},
	} {
		got := Decide(tc.in)
		if got.Decision != tc.want || got.TalkSecondsSource != tc.src || (got.TalkSeconds == nil) != (tc.talk == nil) ||
			got.TalkSeconds != nil && *got.TalkSeconds != *tc.talk {
			t.Errorf("%s: %s %s %v; want %s %s %v", tc.name, got.Decision, got.TalkSecondsSource, got.TalkSeconds, tc.want, tc.src, tc.talk)
		}
	}
	// The analysis wins: in_voicemail makes a greeting "heard" in
	// call_ended a machine.
	ended := Decide(Outcome{Connected: true, TalkSeconds: Seconds(16.5), TalkSecondsSource: TalkFromTranscript, EndedReason: "user_hangup"})
	vm := true
	merged := Decide(Merge(ended, Outcome{Connected: false, InVoicemail: &vm, EndedReason: "user_hangup"}))
	if ended.Decision != DecisionConversation || merged.Decision != DecisionRetry {
		t.Errorf("ended %s, merged with in_voicemail %s; want conversation, retry", ended.Decision, merged.Decision)
	}
}

// TestReleaseUnsentGivesTheAttemptBack: a claim on the last attempt whose
// send never reached the provider leaves the row pending with its attempts
// intact, and its event says so.
func TestReleaseUnsentGivesTheAttemptBack(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	r := Communication{ID: "r", CompanyID: "co", Channel: ChannelEmail, Status: StatusPending, MaxAttempts: 3, AttemptCount: 2,
		ScheduledFor: now, NextAttemptAt: now, Token: "t0"}
	claimed, err := Claim(r, now.Add(time.Minute), now)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := ReleaseUnsent(claimed.Row, LastError{Code: "not_sent", Message: "disk full"}, now.Add(2*time.Second), now)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Row.Status != StatusPending || ch.Row.AttemptCount != 2 || !ch.Row.NextAttemptAt.Equal(now.Add(2*time.Second)) ||
		!ch.Row.LeaseUntil.IsZero() || ch.Row.Token == claimed.Row.Token {
		t.Fatalf("row after release: %+v", ch.Row)
	}
	var d map[string]any
	if err := json.Unmarshal(ch.Events[0].Data, &d); err != nil || d["counted"] != false || d["attempt"] != 3.0 || d["retry_at"] == nil {
		t.Fatalf("event data %s (%v)", ch.Events[0].Data, err)
	}
}
