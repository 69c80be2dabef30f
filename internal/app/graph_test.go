package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/channel/retell"
	"github.com/dispatcherhq/dispatcher/internal/clock"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/config"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/store/sqlite"
)

const (
	company = "acme"
	secret  = "test-voice-secret"
	phoneID = "6b1f3c2a-8d4e-4a5b-9c6d-7e8f9a0b1c2d"
	agentID = "0c9d8e7f-6a5b-4c3d-8e1f-2a3b4c5d6e7f"
)

var base = time.Date(2030, 1, 7, 9, 0, 0, 0, time.UTC)

// timer records what is armed; the test delivers fires itself.
type timer struct {
	mu    sync.Mutex
	armed map[comms.Fire]time.Time
}

func (t *timer) Arm(_ context.Context, f comms.Fire, at time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.armed[f] = at
	return nil
}

// only returns the single fire armed for a row.
func (t *timer) only(tb testing.TB, id string) (comms.Fire, time.Time) {
	tb.Helper()
	t.mu.Lock()
	defer t.mu.Unlock()
	var fires []comms.Fire
	for f := range t.armed {
		if f.CommunicationID == id {
			fires = append(fires, f)
		}
	}
	if len(fires) != 1 {
		tb.Fatalf("row %s has %d fires armed, want 1: %v", id, len(fires), t.armed)
	}
	return fires[0], t.armed[fires[0]]
}

// senders record what is sent; the voice caller keeps the webhook handler
// Build gave it.
type senders struct {
	mu       sync.Mutex
	emails   []dispatch.Email
	calls    []dispatch.Call
	webhooks http.Handler
}

func (s *senders) SendEmail(_ context.Context, m dispatch.Email) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.emails = append(s.emails, m)
	return fmt.Sprintf("mail_%d", len(s.emails)), nil
}

func (s *senders) SendSMS(context.Context, dispatch.SMS) (string, error) { return "sms_1", nil }

func (s *senders) PlaceCall(_ context.Context, c dispatch.Call) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
	return fmt.Sprintf("call_%d", len(s.calls)), nil
}

// fixture is a graph over a fresh SQLite file, with the forwarders Build
// handed to the factories.
type fixture struct {
	g       *app.Graph
	clock   *clock.Fake
	timer   *timer
	senders *senders
	deliver app.Deliver
	key     string
}

func build(t *testing.T, withVoice bool) *fixture {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := app.CreateCompany(ctx, store, company, 10, "UTC"); err != nil {
		t.Fatal(err)
	}
	key, err := app.CreateKey(ctx, store, company, comms.AllScopes)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{clock: clock.NewFake(base), timer: &timer{armed: map[comms.Fire]time.Time{}}, senders: &senders{}, key: key}
	p := app.Ports{
		Store:       store,
		Timer:       func(d app.Deliver) comms.Timer { f.deliver = d; return f.timer },
		Email:       f.senders,
		SMS:         f.senders,
		Identities:  app.AnyDomain{},
		VoiceSecret: secret,
		Clock:       f.clock.Now,
	}
	if withVoice {
		p.Voice = func(webhooks http.Handler) dispatch.VoiceCaller { f.senders.webhooks = webhooks; return f.senders }
	}
	f.g, err = app.Build(p)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) do(t *testing.T, method, path, body string, want int) map[string]any {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+f.key)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	f.g.API.ServeHTTP(rec, req)
	if rec.Code != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, rec.Code, rec.Body, want)
	}
	var r struct{ Data map[string]any }
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r.Data
}

func (f *fixture) row(t *testing.T, id string) comms.Communication {
	t.Helper()
	row, err := f.g.Store.GetCommunication(context.Background(), company, id)
	if err != nil {
		t.Fatal(err)
	}
	return row
}

// TestBuildTimerDeliversToTheDispatcher follows an email through the one
// graph: the API creates it on the injected clock, the service arms the
// timer Build made, and the fire handed to deliver reaches the dispatcher
// and the email sender.
func TestBuildTimerDeliversToTheDispatcher(t *testing.T) {
	t.Parallel()
	f := build(t, false)
	due := base.Add(time.Hour)
	id := f.do(t, "POST", "/v1/scheduled-communications", fmt.Sprintf(
		`{"channel":"email","scheduled_for":%q,"payload":{"to_email":"sarah@example.com","subject":"Hi","html_body":"<p>Hi</p>"}}`,
		due.Format(time.RFC3339)), 201)["id"].(string)
	fire, at := f.timer.only(t, id)
	if !at.Equal(due) {
		t.Fatalf("armed at %v, want %v", at, due)
	}
	if row := f.row(t, id); !row.CreatedAt.Equal(base) {
		t.Errorf("created_at %v, want the injected clock's %v", row.CreatedAt, base)
	}
	f.clock.Set(due)
	if err := f.deliver(context.Background(), fire); err != nil {
		t.Fatal(err)
	}
	row := f.row(t, id)
	if row.Status != comms.StatusSent || row.SentAt == nil || !row.SentAt.Equal(due) || len(f.senders.emails) != 1 ||
		f.senders.emails[0].To != "sarah@example.com" {
		t.Errorf("after delivery: %s sent at %v, emails %+v", row.Status, row.SentAt, f.senders.emails)
	}
}

// TestBuildVoiceWebhooksReachTheDispatcher: the voice caller gets a handler
// that is the finished API, and an outcome posted there, signed with
// VoiceSecret at the injected clock's time, is recorded on the row.
func TestBuildVoiceWebhooksReachTheDispatcher(t *testing.T) {
	t.Parallel()
	f := build(t, true)
	f.do(t, "PUT", "/v1/phone-numbers/"+phoneID, `{"e164":"+61412345678","capabilities":["voice"]}`, 200)
	f.do(t, "PUT", "/v1/voice-agents/"+agentID, `{"provider":"retell","agent_id":"agent_1","phone_number_id":"`+phoneID+`"}`, 200)
	id := f.do(t, "POST", "/v1/scheduled-communications", `{"channel":"voice_call","scheduled_for":"`+base.Format(time.RFC3339)+
		`","payload":{"voice_agent_outbound_config_id":"`+agentID+`","to_number":"+14155550123"}}`, 201)["id"].(string)
	fire, _ := f.timer.only(t, id)
	if err := f.deliver(context.Background(), fire); err != nil {
		t.Fatal(err)
	}
	if row := f.row(t, id); row.Status != comms.StatusProcessing || row.ProviderMessageID != "call_1" || f.senders.webhooks == nil {
		t.Fatalf("after placing the call: %s %q, webhooks handler given: %v", row.Status, row.ProviderMessageID, f.senders.webhooks != nil)
	}

	meta := map[string]string{retell.MetaCommunicationID: id, retell.MetaCompanyID: company, retell.MetaAttempt: "1"}
	body, err := retell.SimulatedEvent(retell.EventCallEnded, "call_1", meta, retell.ScenarioShort, base)
	if err != nil {
		t.Fatal(err)
	}
	post := func(sig string) int {
		req := httptest.NewRequest("POST", "/v1/webhooks/voice/retell", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(retell.SignatureHeader, sig)
		rec := httptest.NewRecorder()
		f.senders.webhooks.ServeHTTP(rec, req)
		return rec.Code
	}
	// Signed at the wall clock's time, not the graph's: outside the tolerance.
	if code := post(retell.Sign(body, secret, time.Now())); code != http.StatusUnauthorized {
		t.Errorf("signed at the wall clock: %d, want 401 (the hooks must verify on the injected clock)", code)
	}
	if code := post(retell.Sign(body, secret, f.clock.Now())); code != http.StatusOK {
		t.Fatalf("signed with VoiceSecret: %d, want 200", code)
	}
	// call_ended: recorded, the decision waits for the analysis.
	row := f.row(t, id)
	if row.Status != comms.StatusProcessing || !row.AwaitingAnalysis() {
		t.Errorf("after call_ended: %s %+v", row.Status, row.Outcome)
	}
	body, err = retell.SimulatedEvent(retell.EventCallAnalyzed, "call_1", meta, retell.ScenarioShort, base)
	if err != nil {
		t.Fatal(err)
	}
	if code := post(retell.Sign(body, secret, f.clock.Now())); code != http.StatusOK {
		t.Fatalf("call_analyzed: %d, want 200", code)
	}
	row = f.row(t, id)
	if row.Status != comms.StatusSent || row.Outcome == nil || row.Outcome.TalkSeconds == nil || *row.Outcome.TalkSeconds != 4 ||
		row.Outcome.Basis != comms.BasisCallAnalyzed {
		t.Errorf("after the analysis: %s %+v", row.Status, row.Outcome)
	}
}

// TestBuildWithoutVoice: calls fail as voice_not_configured.
func TestBuildWithoutVoice(t *testing.T) {
	t.Parallel()
	f := build(t, false)
	f.do(t, "PUT", "/v1/phone-numbers/"+phoneID, `{"e164":"+61412345678","capabilities":["voice"]}`, 200)
	f.do(t, "PUT", "/v1/voice-agents/"+agentID, `{"provider":"retell","agent_id":"agent_1","phone_number_id":"`+phoneID+`"}`, 200)
	id := f.do(t, "POST", "/v1/scheduled-communications", `{"channel":"voice_call","scheduled_for":"`+base.Format(time.RFC3339)+
		`","payload":{"voice_agent_outbound_config_id":"`+agentID+`","to_number":"+14155550123"}}`, 201)["id"].(string)
	fire, _ := f.timer.only(t, id)
	if err := f.deliver(context.Background(), fire); err != nil {
		t.Fatal(err)
	}
	if row := f.row(t, id); row.Status != comms.StatusFailed || row.LastError == nil || row.LastError.Code != "voice_not_configured" {
		t.Errorf("row = %s %+v, want failed voice_not_configured", row.Status, row.LastError)
	}
}

func TestBuildNamesMissingPorts(t *testing.T) {
	t.Parallel()
	_, err := app.Build(app.Ports{})
	if err == nil {
		t.Fatal("Build without ports succeeded")
	}
	for _, port := range []string{"Store", "Timer", "Email", "SMS", "Identities"} {
		if !strings.Contains(err.Error(), "Ports."+port+" is required") {
			t.Errorf("error does not name Ports.%s: %v", port, err)
		}
	}
}

// TestBuildRefusesADefaultFromWithoutDomain: the deployment's sender
// domain is reserved from companies; a default From that is not a bare
// address (a display name, a trailing dot) would reserve nothing.
func TestBuildRefusesADefaultFromWithoutDomain(t *testing.T) {
	t.Parallel()
	for _, from := range []string{"Acme <no-reply@acme.com>", "no-reply@acme.com."} {
		_, err := app.Build(app.Ports{Dispatch: dispatch.Config{DefaultFrom: from}})
		if err == nil || !strings.Contains(err.Error(), "is not a bare address") {
			t.Errorf("DefaultFrom %q: %v, want a refusal naming it", from, err)
		}
	}
}

// TestNewAWSWiresTheGraph builds the AWS wiring without calling AWS: the
// parts are there, and without a voice key the webhook refuses deliveries.
func TestNewAWSWiresTheGraph(t *testing.T) {
	t.Parallel()
	a := app.NewAWS(config.AWS{TableName: "t", QueueURL: "http://127.0.0.1:1/q", ScheduleGroup: "g"},
		app.NewClients(aws.Config{Region: "us-east-1"}), nil, app.WithAWSClock(func() time.Time { return base }))
	if a.Store == nil || a.Timer == nil || a.Service == nil || a.Dispatcher == nil || a.API == nil {
		t.Fatalf("NewAWS left parts out: %+v", a)
	}
	req := httptest.NewRequest("POST", "/v1/webhooks/voice/retell", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	a.API.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("voice webhook without a configured key: %d, want 401", rec.Code)
	}
}
