package dynamo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/awstest"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
)

// A lifecycle is the sequence of calls the product makes for one
// communication, step by step: each step runs the store methods its
// function calls (in the order internal/scheduling, internal/dispatch and
// internal/feedback call them; the DynamoDB part of the email matches the
// 9 calls TestEmailDueIn20Minutes counts end to end, plus the events
// function's), and says what else the step costs outside DynamoDB, for the
// cost model (TestCostModel). The DynamoDB units are measured by capMeter.
type step struct {
	name string
	// fn is the Lambda function that runs the step ("" when none does).
	fn string
	// apiRequests are API Gateway requests (a create, a provider webhook).
	apiRequests int
	// schedules are EventBridge Scheduler invocations (one per one-time
	// schedule fired; creating one is free).
	schedules int
	// sqsMessages are SQS messages sent: each is a SendMessage, and a
	// share of the poller's ReceiveMessage and DeleteMessageBatch (the cost
	// model counts 3 requests a message: a batch of one, the worst case).
	sqsMessages int
	// awsCalls are the step's calls to other AWS services the function
	// waits for (CreateSchedule, SendMessage, SendEmail, Publish…), for its
	// duration.
	awsCalls int
	run      func(t *testing.T)
}

// measured is a step with what its DynamoDB calls cost.
type measured struct {
	step
	use usage
}

// lifecycleEnv is a store on a metered table of its own, with one company,
// its SMS number and its voice agent.
type lifecycleEnv struct {
	ctx   context.Context
	store *dynamo.Store
	// peek reads without the meter: the test's own reads.
	peek  *dynamo.Store
	meter *capMeter
	co    string
	now   time.Time
	seq   int
}

func newLifecycleEnv(t *testing.T) *lifecycleEnv {
	t.Helper()
	client := newClient(t)
	table := awstest.Unique(t, "lifecycle")
	requireNoErr(t, dynamo.CreateTable(t.Context(), client, table))
	t.Cleanup(func() { dropTable(t, client, table) })
	m := newCapMeter(client, table)
	e := &lifecycleEnv{ctx: t.Context(), meter: m, store: dynamo.New(m, table).WithRetention(retention),
		peek: dynamo.New(client, table), co: "co_lifecycle",
		now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	requireNoErr(t, e.store.CreateCompany(e.ctx, comms.Company{ID: e.co, Credits: 1000, Settings: comms.DefaultSettings(), CreatedAt: e.now}))
	requireNoErr(t, e.store.PutPhoneNumber(e.ctx, comms.PhoneNumber{ID: "pn_1", CompanyID: e.co, E164: "+61412345678",
		Capabilities: []string{"sms", "voice"}, CreatedAt: e.now, UpdatedAt: e.now}))
	requireNoErr(t, e.store.PutVoiceAgent(e.ctx, comms.VoiceAgent{ID: "va_1", CompanyID: e.co, Provider: "retell", AgentID: "agent_1",
		PhoneNumberID: "pn_1", CreatedAt: e.now, UpdatedAt: e.now}))
	m.take()
	return e
}

func (e *lifecycleEnv) id() string {
	e.seq++
	return fmt.Sprintf("0193a1b2-c3d4-7e5f-8a9b-%012d", e.seq)
}

// play runs the steps and returns what each cost.
func (e *lifecycleEnv) play(t *testing.T, steps []step) []measured {
	t.Helper()
	out := make([]measured, 0, len(steps))
	e.meter.take()
	for _, s := range steps {
		s.run(t)
		out = append(out, measured{step: s, use: e.meter.take()})
	}
	return out
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		requireNoErr(t, err)
		return v
	}
}

// update stores a transition: e.update(t)(comms.Claim(…)).
func (e *lifecycleEnv) update(t *testing.T) func(comms.Change, error) comms.Communication {
	return func(ch comms.Change, err error) comms.Communication {
		t.Helper()
		requireNoErr(t, err)
		stored, _, err := e.store.UpdateCommunication(e.ctx, ch, false)
		requireNoErr(t, err)
		return stored
	}
}

// createSteps is the API's create: the company's settings, then (email,
// SMS) the recipient's suppression for meta.warnings, (SMS, voice) the
// number and agent the payload names, then the debit and the row.
func (e *lifecycleEnv) create(row *comms.Communication, reads func(t *testing.T)) step {
	return step{name: "create (POST)", fn: "api", apiRequests: 1, awsCalls: 1, // arm: CreateSchedule (due tomorrow)
		run: func(t *testing.T) {
			must[comms.Company](t)(e.store.GetCompany(e.ctx, e.co))
			reads(t)
			ch := comms.Create(*row, e.now)
			must[int64](t)(e.store.CreateCommunication(e.ctx, ch, nil))
			*row = must[comms.Communication](t)(e.peek.GetCommunication(e.ctx, e.co, row.ID))
		}}
}

// fireSteps: Scheduler invokes dispatch 2 min early, which re-arms the fire
// on SQS (no DynamoDB call: the fire carries its due time).
func fireStep() step {
	return step{name: "Scheduler fire → SQS", fn: "dispatch", schedules: 1, sqsMessages: 1, awsCalls: 1, run: func(*testing.T) {}}
}

// dispatchSteps is the dispatcher's handling of the due fire: read the row,
// the company's settings, the recipient's suppression (email, SMS) or the
// agent and its number (voice), the SMS number; claim; send; record.
func (e *lifecycleEnv) dispatch(row *comms.Communication, reads func(t *testing.T), record func(t *testing.T, c comms.Communication, at time.Time) comms.Communication) step {
	return step{name: "dispatch (claim, send, record)", fn: "dispatch", awsCalls: 1, // the provider's send
		run: func(t *testing.T) {
			c := must[comms.Communication](t)(e.store.GetCommunication(e.ctx, e.co, row.ID))
			must[comms.Company](t)(e.store.GetCompany(e.ctx, e.co))
			reads(t)
			at := c.NextAttemptAt
			c = e.update(t)(comms.Claim(c, at.Add(2*time.Minute), at))
			*row = record(t, c, at.Add(300*time.Millisecond))
		}}
}

func payloadOf(t *testing.T, v any) json.RawMessage {
	b, err := json.Marshal(v)
	requireNoErr(t, err)
	return b
}

// emailLifecycle: one email due tomorrow: create, Scheduler fire, dispatch,
// SES's SEND event (read, nothing written) and DELIVERY event (recorded).
func (e *lifecycleEnv) emailLifecycle(t *testing.T, html string) []step {
	row := &comms.Communication{ID: e.id(), CompanyID: e.co, Channel: comms.ChannelEmail,
		ScheduledFor: e.now.Add(24 * time.Hour), NextAttemptAt: e.now.Add(24 * time.Hour), MaxAttempts: 3, Source: comms.SourceAPI,
		Payload: payloadOf(t, comms.EmailPayload{ToEmail: "sarah@example.com", ToName: "Sarah Lee", Subject: "Following up on our call", HTMLBody: html})}
	supp := func(t *testing.T) {
		_, err := e.store.GetSuppression(e.ctx, e.co, comms.SuppressEmail, "sarah@example.com")
		requireNotFoundOrNil(t, err)
	}
	event := func(name string, record bool) step {
		return step{name: name, fn: "events", sqsMessages: 1, run: func(t *testing.T) {
			c := must[comms.Communication](t)(e.store.CommunicationByProviderMessageID(e.ctx, "ses-"+row.ID))
			if record {
				at := c.UpdatedAt.Add(time.Second)
				*row = e.update(t)(comms.RecordDelivery(c, comms.DeliveryReport{Status: comms.DeliveryDelivered, Attempt: 1,
					ProviderMessageID: "ses-" + row.ID, At: at, Recipients: []string{"sarah@example.com"}}, at))
			}
		}}
	}
	return []step{
		e.create(row, supp),
		fireStep(),
		e.dispatch(row, supp, func(t *testing.T, c comms.Communication, at time.Time) comms.Communication {
			return e.update(t)(comms.RecordSent(c, "ses-"+row.ID, at))
		}),
		event("SES SEND event", false),
		event("SES DELIVERY event", true),
	}
}

// smsLifecycle: one SMS due tomorrow: as the email, with the number read at
// create and at dispatch, and SNS's delivery status (one report).
func (e *lifecycleEnv) smsLifecycle(t *testing.T) []step {
	row := &comms.Communication{ID: e.id(), CompanyID: e.co, Channel: comms.ChannelSMS,
		ScheduledFor: e.now.Add(24 * time.Hour), NextAttemptAt: e.now.Add(24 * time.Hour), MaxAttempts: 3, Source: comms.SourceAPI,
		Payload: payloadOf(t, comms.SMSPayload{PhoneNumberID: "pn_1", ToNumber: "+61498765432",
			MessageBody: "Hi Jane, this is Example Co. Your site visit is confirmed for tomorrow at 10:00. Reply STOP to opt out."})}
	reads := func(t *testing.T) {
		must[comms.PhoneNumber](t)(e.store.GetPhoneNumber(e.ctx, e.co, "pn_1"))
		_, err := e.store.GetSuppression(e.ctx, e.co, comms.SuppressSMS, "+61498765432")
		requireNotFoundOrNil(t, err)
	}
	return []step{
		e.create(row, reads),
		fireStep(),
		e.dispatch(row, reads, func(t *testing.T, c comms.Communication, at time.Time) comms.Communication {
			return e.update(t)(comms.RecordSent(c, "sns-"+row.ID, at))
		}),
		{name: "SNS delivery status", fn: "events", sqsMessages: 1, run: func(t *testing.T) {
			c := must[comms.Communication](t)(e.store.CommunicationByProviderMessageID(e.ctx, "sns-"+row.ID))
			at := c.UpdatedAt.Add(time.Second)
			*row = e.update(t)(comms.RecordDelivery(c, comms.DeliveryReport{Status: comms.DeliveryDelivered,
				ProviderMessageID: "sns-" + row.ID, At: at, Recipients: []string{"+61498765432"}}, at))
		}},
	}
}

// voiceLifecycle: a 3-attempt voice cadence, nobody answers: per attempt a
// Scheduler fire, the dispatch (claim, call placed), Retell's call_started
// (nothing stored), call_ended (provisional outcome, decision fire on SQS)
// and call_analyzed (the outcome, with the next attempt created in the same
// write for the first two), and the decision fire arriving after the
// decision (read, dropped).
func (e *lifecycleEnv) voiceLifecycle(t *testing.T) []step {
	rootID := e.id()
	fu := &comms.FollowUps{MaxAttempts: 3, FollowUpDelays: []float64{24, 48}, VoiceAgentOutboundConfigID: "va_1", ToNumber: "+61498765432"}
	payload := comms.VoicePayload{VoiceAgentOutboundConfigID: "va_1", ToNumber: "+61498765432",
		DynamicVariables: map[string]string{"first_name": "Jane", "visit": "tomorrow 10:00"}, FollowUps: fu}
	row := &comms.Communication{ID: rootID, CompanyID: e.co, Channel: comms.ChannelVoice,
		ScheduledFor: e.now.Add(24 * time.Hour), NextAttemptAt: e.now.Add(24 * time.Hour), MaxAttempts: 1, Source: comms.SourceAPI,
		Payload: payloadOf(t, payload), Cadence: &comms.Cadence{RootID: rootID, Attempt: 1, MaxAttempts: 3}}
	agentReads := func(t *testing.T) {
		must[comms.VoiceAgent](t)(e.store.GetVoiceAgent(e.ctx, e.co, "va_1"))
		must[comms.PhoneNumber](t)(e.store.GetPhoneNumber(e.ctx, e.co, "pn_1"))
	}
	steps := []step{e.create(row, agentReads)}
	for attempt := 1; attempt <= 3; attempt++ {
		callID := fmt.Sprintf("call-%s-%d", rootID, attempt)
		steps = append(steps, fireStep(),
			e.dispatch(row, agentReads, func(t *testing.T, c comms.Communication, at time.Time) comms.Communication {
				return e.update(t)(comms.RecordCallPlaced(c, callID, at.Add(2*time.Hour), at))
			}),
			step{name: "Retell call_started", fn: "api", apiRequests: 1, run: func(*testing.T) {}},
			step{name: "Retell call_ended", fn: "api", apiRequests: 1, sqsMessages: 1, awsCalls: 1, run: func(t *testing.T) {
				c := must[comms.Communication](t)(e.store.GetCommunication(e.ctx, e.co, row.ID))
				at := c.UpdatedAt.Add(40 * time.Second)
				*row = e.update(t)(comms.RecordCallEnded(c, comms.Outcome{EndedReason: "dial_no_answer"}, at.Add(5*time.Minute), at))
			}},
			step{name: "Retell call_analyzed", fn: "api", apiRequests: 1, run: func(t *testing.T) {
				c := must[comms.Communication](t)(e.store.GetCommunication(e.ctx, e.co, row.ID))
				if c.Cadence.RootID != c.ID {
					must[comms.Communication](t)(e.store.GetCommunication(e.ctx, e.co, c.Cadence.RootID)) // cadenceStart
				}
				at := c.UpdatedAt.Add(10 * time.Second)
				var next *comms.Communication
				if c.Cadence.Attempt < 3 {
					must[comms.Company](t)(e.store.GetCompany(e.ctx, e.co)) // placeFollowUp
					when := c.SentAt.Add(time.Duration(fu.FollowUpDelays[c.Cadence.Attempt-1]) * time.Hour)
					next = &comms.Communication{ID: e.id(), CompanyID: e.co, Channel: comms.ChannelVoice, ScheduledFor: when, NextAttemptAt: when,
						Payload: c.Payload, MaxAttempts: 1, Source: comms.SourceCadence,
						Cadence: &comms.Cadence{RootID: c.Cadence.RootID, Attempt: c.Cadence.Attempt + 1, MaxAttempts: 3}}
				}
				e.update(t)(comms.RecordOutcome(c, comms.Outcome{EndedReason: "dial_no_answer"}, next, "", at))
				if next != nil {
					*row = must[comms.Communication](t)(e.peek.GetCommunication(e.ctx, e.co, next.ID))
				}
			}},
		)
		if attempt < 3 {
			// The follow-up's schedule (armed by the call_analyzed step).
			steps[len(steps)-1].awsCalls++
		}
		steps = append(steps, step{name: "decision fire (already decided)", fn: "dispatch", run: func(t *testing.T) {
			must[comms.Communication](t)(e.store.GetCommunication(e.ctx, e.co, row.ID))
		}})
	}
	return steps
}

func requireNotFoundOrNil(t *testing.T, err error) {
	t.Helper()
	if err != nil && !strings.Contains(err.Error(), comms.ErrNotFound.Error()) {
		t.Fatal(err)
	}
}

// lifecycleCase names a lifecycle and builds its steps.
type lifecycleCase struct {
	name  string
	steps func(e *lifecycleEnv, t *testing.T) []step
}

var lifecycleCases = []lifecycleCase{
	{"email, 1 KB html_body", func(e *lifecycleEnv, t *testing.T) []step { return e.emailLifecycle(t, strings.Repeat("x", 1024)) }},
	{"email, 256 KiB html_body", func(e *lifecycleEnv, t *testing.T) []step {
		return e.emailLifecycle(t, strings.Repeat("x", 256*1024))
	}},
	{"SMS", func(e *lifecycleEnv, t *testing.T) []step { return e.smsLifecycle(t) }},
	{"voice, 3-attempt cadence", func(e *lifecycleEnv, t *testing.T) []step { return e.voiceLifecycle(t) }},
}

// measureLifecycles plays every lifecycle case on a fresh metered table.
func measureLifecycles(t *testing.T) map[string][]measured {
	e := newLifecycleEnv(t)
	out := map[string][]measured{}
	for _, c := range lifecycleCases {
		out[c.name] = e.play(t, c.steps(e, t))
	}
	return out
}

func total(ms []measured) usage {
	var u usage
	for _, m := range ms {
		u.add(m.use)
	}
	return u
}

// TestCapacityPerLifecycle measures the DynamoDB read and write units of
// each lifecycle, step by step (run with -v for the figures BENCHMARKS.md
// quotes).
func TestCapacityPerLifecycle(t *testing.T) {
	all := measureLifecycles(t)
	for _, c := range lifecycleCases {
		ms := all[c.name]
		for _, m := range ms {
			if m.use.NCalls() == 0 {
				continue
			}
			t.Logf("%-26s %-34s %5.1f RRU %6.0f WRU (table %5.0f, index %v) — %s; moto reported %.1f",
				c.name, m.name, m.use.RRU, m.use.WRU(), m.use.WRUTable, m.use.WRUByIndex, m.use.describe(), m.use.Reported)
		}
		u := total(ms)
		t.Logf("%-26s %-34s %5.1f RRU %6.0f WRU (table %5.0f, index %v), %d items written, %d calls — moto reported %.1f units",
			c.name, "TOTAL", u.RRU, u.WRU(), u.WRUTable, u.WRUByIndex, u.Items, u.NCalls(), u.Reported)
	}
}
