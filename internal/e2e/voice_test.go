package e2e_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/channel/retell"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	awstimer "github.com/dispatcherhq/dispatcher/internal/timer/aws"
)

// caller is a hand-written fake of the voice provider: it places every call.
type caller struct{}

func (caller) PlaceCall(_ context.Context, c dispatch.Call) (string, error) {
	return "call_" + c.CommunicationID[:8] + "_" + strconv.Itoa(c.Attempt), nil
}

// TestVoiceWebhookThroughTheAPIFunction: the provider's signed call_analyzed
// webhook reaches the api function as an API Gateway event; the outcome is
// recorded in DynamoDB, and the cadence's follow-up row is created there
// and its timer armed (2 hours ahead: a Scheduler schedule).
func TestVoiceWebhookThroughTheAPIFunction(t *testing.T) {
	t.Parallel()
	const key = "e2e-retell-key"
	s := deploy(t, options{voice: caller{}, hookKey: key})
	ev := event(t, "api-create-email.json", time.Time{}, nil)
	ev.Body = `{"channel":"voice_call","scheduled_for":"` + s.clock.Now().Add(time.Second).UTC().Format(time.RFC3339Nano) + `","payload":{
"voice_agent_outbound_config_id":"` + sampleAgent + `","to_number":"+14155550123",
"follow_ups":{"max_attempts":3,"follow_up_delays":[2,24],"voice_agent_outbound_config_id":"` + sampleAgent + `","to_number":"+14155550123"}}}`
	status, body := s.call(ev)
	if status != 201 {
		t.Fatalf("create: %d %v", status, body)
	}
	id := body["data"].(map[string]any)["id"].(string)
	var row comms.Communication
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		s.pump(time.Second)
		row, _ = s.app.Store.GetCommunication(s.ctx, sampleCompany, id)
		if row.ProviderMessageID != "" {
			break
		}
	}
	if row.Status != comms.StatusProcessing || row.ProviderMessageID == "" {
		t.Fatalf("the call was not placed: %s %q", row.Status, row.ProviderMessageID)
	}

	meta := map[string]string{retell.MetaCommunicationID: id, retell.MetaCompanyID: sampleCompany, retell.MetaAttempt: "1"}
	payload, err := retell.SimulatedEvent(retell.EventCallAnalyzed, row.ProviderMessageID, meta, retell.ScenarioShort, *row.SentAt)
	if err != nil {
		t.Fatal(err)
	}
	hook := event(t, "api-get-unauthenticated.json", time.Time{}, nil)
	hook.RequestContext.HTTP.Method = "POST"
	hook.RawPath, hook.RequestContext.HTTP.Path = "/v1/webhooks/voice/retell", "/v1/webhooks/voice/retell"
	hook.Headers = map[string]string{"content-type": "application/json", "x-retell-signature": retell.Sign(payload, "forged", s.clock.Now())}
	hook.Body = string(payload)
	if status, body := s.call(hook); status != 401 {
		t.Fatalf("forged webhook: %d %v", status, body)
	}
	hook.Headers["x-retell-signature"] = retell.Sign(payload, key, s.clock.Now())
	for range 2 { // delivered twice: one follow-up
		if status, body := s.call(hook); status != 200 {
			t.Fatalf("webhook: %d %v", status, body)
		}
	}
	got, _ := s.app.Store.GetCommunication(s.ctx, sampleCompany, id)
	if got.Status != comms.StatusSent || got.Outcome == nil || got.Outcome.TalkSeconds == nil || *got.Outcome.TalkSeconds != 4 {
		t.Fatalf("outcome in DynamoDB: %s %+v", got.Status, got.Outcome)
	}
	next, err := s.app.Store.GetCommunication(s.ctx, sampleCompany, dispatch.FollowUpID(id, 2))
	if err != nil {
		t.Fatalf("follow-up row: %v", err)
	}
	if next.Status != comms.StatusPending || next.Source != comms.SourceCadence || !next.ScheduledFor.Equal(row.SentAt.Add(2*time.Hour)) {
		t.Errorf("follow-up = %s %s at %v", next.Status, next.Source, next.ScheduledFor)
	}
	list, err := s.schedules.List(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, sch := range list {
		if sch.Name == awstimer.ScheduleName(comms.FireOf(next)) {
			found++
		}
	}
	if found != 1 {
		t.Errorf("the follow-up's schedule exists %d times among %d schedules, want once", found, len(list))
	}
}
