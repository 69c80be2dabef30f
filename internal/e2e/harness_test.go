// Package e2e_test runs the product's AWS wiring end to end against the
// emulator: Lambda events in, DynamoDB rows, Scheduler schedules fired by
// the harness, SQS pumped into the dispatch handler, SES and SNS out.
package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/auth"
	"github.com/dispatcherhq/dispatcher/internal/awstest"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/config"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/emulator"
	"github.com/dispatcherhq/dispatcher/internal/lambdafn"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
)

// The sample events' company and key (see events/README.md).
const (
	sampleCompany = "sample-events"
	sampleKey     = "dk_live_SAMPLE-EVENTS-ONLY-not-a-real-key-0000000000"
	samplePhone   = "6b1f3c2a-8d4e-4a5b-9c6d-7e8f9a0b1c2d"
	sampleAgent   = "0c9d8e7f-6a5b-4c3d-8e1f-2a3b4c5d6e7f"
	sampleRow     = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	sampleToken   = "5a3c9e1f0b7d2a4c6e8f0a1b"
	fromAddress   = "dispatch@dispatcher-e2e.example.com"
)

// seededAt is when the seeded key, phone number and agent were created: a
// fixed time, since nothing in the tests depends on it.
var seededAt = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// clock follows real time plus an offset the test can move forward, so
// "20 minutes from now" can come without waiting (moto delays SQS messages
// in real time, so the offset only ever jumps between stages).
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time            { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration)   { c.offset.Add(int64(d)) }
func (c *clock) AdvanceTo(t time.Time)     { c.Advance(time.Until(t) - time.Duration(c.offset.Load())) }
func (c *clock) Since(t time.Time) float64 { return c.Now().Sub(t).Seconds() }

// stack is the product deployed on the emulator: its resources, the three
// functions' handlers and the harness that plays Scheduler and SQS.
type stack struct {
	t         *testing.T
	ctx       context.Context
	cfg       aws.Config
	conf      config.AWS
	app       *app.AWS
	clock     *clock
	counter   *awstest.Counter
	faults    *awstest.Faults
	schedules *emulator.Schedules
	api       func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)
	dispatch  func(context.Context, json.RawMessage) (any, error)
	sweep     func(context.Context, json.RawMessage) (dispatch.SweepResult, error)
	// webhooks is the webhooks function's handler; stream plays its
	// DynamoDB stream event source, webhookQueue its SQS one.
	webhooks     func(context.Context, json.RawMessage) (any, error)
	stream       *emulator.Stream
	webhookQueue string
}

type options struct {
	faults   float64
	dispatch dispatch.Config
	voice    dispatch.VoiceCaller
	hookKey  string
	// wrap wraps the store the product's parts use (app.WithStoreWrap).
	wrap func(app.Store) app.Store
	// attach adds SDK middleware to the product's clients.
	attach func(*aws.Config)
	// webhookTimer wraps the timer the webhooks function's stream handler
	// arms fan-outs with (tests inject failures into it).
	webhookTimer func(comms.Timer) comms.Timer
	// stream gives the table its stream (the webhook tests). Such a test
	// must not run beside tests that read moto's data.json (see the
	// Makefile's test target): moto cannot serialize stream records.
	stream bool
	// log, when set, receives the product's log as the functions write it
	// (app.NewLogger: JSON, EMF, request ids).
	log io.Writer
}

func deploy(t *testing.T, o options) *stack {
	t.Helper()
	ctx := context.Background()
	cfg := awstest.Config(t)
	s := &stack{t: t, ctx: ctx, clock: &clock{}, counter: awstest.NewCounter()}
	// Resources are created with a clean config; the product's clients
	// get the call counter and, when asked, injected faults.
	queueURL, _ := awstest.CreateQueue(t, cfg)
	webhookQueue, _ := awstest.CreateQueue(t, cfg)
	_, dlqARN := awstest.CreateQueue(t, cfg)
	group := awstest.CreateScheduleGroup(t, cfg)
	table := awstest.Unique(t, "dispatcher")
	// A stream only where a test reads it: moto's data.json, which the
	// tests read in parallel, fails while a table has stream records.
	var topts []dynamo.TableOption
	if !o.stream {
		topts = append(topts, dynamo.WithoutStream())
	}
	if err := dynamo.CreateTable(ctx, app.NewClients(cfg).DynamoDB, table, topts...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = app.NewClients(cfg).DynamoDB.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	var exists *sestypes.AlreadyExistsException
	if _, err := sesv2.NewFromConfig(cfg).CreateEmailIdentity(ctx, &sesv2.CreateEmailIdentityInput{EmailIdentity: aws.String(fromAddress)}); err != nil &&
		!errors.As(err, &exists) {
		t.Fatal(err)
	}
	s.conf = config.AWS{TableName: table, QueueURL: queueURL, ScheduleGroup: group,
		SchedulerRoleARN:  "arn:aws:iam::123456789012:role/dispatcher-scheduler",
		DispatchTargetARN: "arn:aws:lambda:us-east-1:123456789012:function:dispatcher-dispatch",
		SchedulerDLQARN:   dlqARN, DefaultFromEmail: fromAddress, SchedulerLead: 2 * time.Minute, WebhookQueueURL: webhookQueue}
	productCfg := cfg.Copy()
	s.counter.Attach(&productCfg)
	if o.faults > 0 {
		s.faults = awstest.NewFaults(o.faults, 42)
		s.faults.Attach(&productCfg)
	}
	if o.attach != nil {
		o.attach(&productCfg)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if o.log != nil {
		log = app.NewLogger(o.log, "debug", "")
	}
	// Webhook receivers in the tests are local http servers.
	opts := []app.AWSOption{app.WithAWSClock(s.clock.Now), app.WithDispatchConfig(o.dispatch), app.WithWebhookLoopback()}
	if o.wrap != nil {
		opts = append(opts, app.WithStoreWrap(o.wrap))
	}
	if o.voice != nil {
		opts = append(opts, app.WithVoice(o.voice, o.hookKey))
	}
	s.app = app.NewAWS(s.conf, app.NewClients(productCfg), log, opts...)
	s.cfg = cfg
	s.api = httpadapter.NewV2(s.app.API).ProxyWithContext
	s.dispatch = lambdafn.Dispatch(s.app, log)
	s.sweep = lambdafn.Sweep(s.app, log)
	var whTimer comms.Timer = s.app.WebhookTimer
	if o.webhookTimer != nil {
		whTimer = o.webhookTimer(whTimer)
	}
	// Settle 0: the test moves the clock past dynamo.FeedSettle itself
	// (moto delays SQS messages in real time).
	s.webhooks = lambdafn.Webhooks(s.app.Webhooks, lambdafn.WebhookOptions{Timer: whTimer, Now: s.clock.Now, Settle: time.Nanosecond}, log)
	s.webhookQueue = webhookQueue
	if o.stream {
		var err error
		if s.stream, err = emulator.NewStream(ctx, cfg, table); err != nil {
			t.Fatal(err)
		}
	}
	s.schedules = emulator.NewSchedules(cfg, group)
	s.seed()
	s.counter.Reset()
	return s
}

// seed creates the sample events' company, key and phone number.
func (s *stack) seed() {
	s.t.Helper()
	st := dynamo.New(app.NewClients(s.cfg).DynamoDB, s.conf.TableName)
	if err := app.CreateCompany(s.ctx, st, sampleCompany, 1000, "UTC"); err != nil {
		s.t.Fatal(err)
	}
	now := seededAt
	key := comms.APIKey{ID: "b1c2d3e4-0000-4000-8000-00000000e2e0", CompanyID: sampleCompany, Hash: auth.Hash(sampleKey),
		Prefix: sampleKey[:14], Scopes: comms.AllScopes, CreatedAt: now}
	if err := st.CreateAPIKey(s.ctx, key); err != nil {
		s.t.Fatal(err)
	}
	if err := st.PutPhoneNumber(s.ctx, comms.PhoneNumber{ID: samplePhone, CompanyID: sampleCompany, E164: "+61412345678",
		Capabilities: []string{"sms", "voice"}, CreatedAt: now, UpdatedAt: now}); err != nil {
		s.t.Fatal(err)
	}
	if err := st.PutVoiceAgent(s.ctx, comms.VoiceAgent{ID: sampleAgent, CompanyID: sampleCompany, Provider: "retell", AgentID: "agent_e2e",
		PhoneNumberID: samplePhone, CreatedAt: now, UpdatedAt: now}); err != nil {
		s.t.Fatal(err)
	}
}

// event loads a sample API Gateway event, moving its scheduled_for to
// at and, when to is set, its recipient.
func event(t *testing.T, name string, at time.Time, edit func(body map[string]any)) events.APIGatewayV2HTTPRequest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatalf("%s is not an APIGatewayV2HTTPRequest: %v", name, err)
	}
	if ev.Body != "" && (!at.IsZero() || edit != nil) {
		var body map[string]any
		if err := json.Unmarshal([]byte(ev.Body), &body); err != nil {
			t.Fatal(err)
		}
		if !at.IsZero() {
			body["scheduled_for"] = at.UTC().Format(time.RFC3339Nano)
		}
		if edit != nil {
			edit(body)
		}
		b, _ := json.Marshal(body)
		ev.Body = string(b)
	}
	return ev
}

// call sends an API Gateway event through the api function's handler.
func (s *stack) call(ev events.APIGatewayV2HTTPRequest) (int, map[string]any) {
	s.t.Helper()
	res, err := s.api(s.ctx, ev)
	if err != nil {
		s.t.Fatalf("api handler: %v", err)
	}
	var body map[string]any
	_ = json.Unmarshal([]byte(res.Body), &body)
	return res.StatusCode, body
}

// get reads a row through the api function.
func (s *stack) get(id string) map[string]any {
	s.t.Helper()
	ev := event(s.t, "api-get.json", time.Time{}, nil)
	ev.RawPath = "/v1/scheduled-communications/" + id
	ev.RequestContext.HTTP.Path = ev.RawPath
	status, body := s.call(ev)
	if status != 200 {
		s.t.Fatalf("GET %s: %d %v", id, status, body)
	}
	return body["data"].(map[string]any)
}

// fireDue plays EventBridge Scheduler: every schedule due by the clock is
// read back with GetSchedule and its input invoked on the dispatch handler.
func (s *stack) fireDue() int {
	s.t.Helper()
	n, err := s.schedules.FireDue(s.ctx, s.clock.Now(), func(ctx context.Context, input []byte) error {
		_, err := s.dispatch(ctx, json.RawMessage(input))
		return err
	})
	if err != nil {
		s.t.Fatalf("fire schedules: %v", err)
	}
	return n
}

// pump plays the SQS event source mapping until the queue stays empty for wait.
func (s *stack) pump(wait time.Duration) int {
	s.t.Helper()
	n, err := emulator.PumpSQS(s.ctx, sqs.NewFromConfig(s.cfg), s.conf.QueueURL, func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		raw, _ := json.Marshal(ev)
		out, err := s.dispatch(ctx, raw)
		if err != nil {
			return events.SQSEventResponse{}, err
		}
		return out.(events.SQSEventResponse), nil
	}, wait)
	if err != nil {
		s.t.Fatalf("pump SQS: %v", err)
	}
	return n
}

// recorded counts what moto recorded: SES messages by To address, SMS by
// phone number. One fetch: data.json holds every emulated resource.
func recorded(t *testing.T) (emails, sms map[string]int) {
	t.Helper()
	emails, sms = map[string]int{}, map[string]int{}
	data := awstest.MotoData(t)
	for _, m := range data["ses"]["Message"] {
		dest, _ := m["destinations"].(map[string]any)
		list, _ := dest["ToAddresses"].([]any)
		for _, a := range list {
			s, _ := a.(string)
			if i := strings.LastIndexByte(s, '<'); i >= 0 {
				s = strings.TrimSuffix(s[i+1:], ">")
			}
			emails[s]++
		}
	}
	for _, m := range data["sns"]["SMS"] {
		if n, ok := m["phone_number"].(string); ok {
			sms[n]++
		}
	}
	return emails, sms
}

// sesMessagesTo counts the SES messages moto recorded to an address.
func sesMessagesTo(t *testing.T, to string) int { e, _ := recorded(t); return e[to] }

// snsMessagesTo counts the SMS moto recorded to a phone number.
func snsMessagesTo(t *testing.T, to string) int { _, s := recorded(t); return s[to] }
