package e2e_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/emulator"
	"github.com/dispatcherhq/dispatcher/internal/lambdafn"
	"github.com/dispatcherhq/dispatcher/internal/testrand"
)

// crash is what a crashStore panics with: the process died there.
type crash struct{ id string }

// crashStore kills the process (a panic the harness's "Lambda" recovers)
// once per chosen row: "after" rows when the dispatcher records the send's
// result (the change emits sent: the provider has the message, the store
// never hears of it); "before" rows right after the claim is written (the
// send never happens).
type crashStore struct {
	app.Store
	mu      sync.Mutex
	mode    map[string]string // row id → "after" | "before"
	crashed map[string]bool
}

func (c *crashStore) UpdateCommunication(ctx context.Context, ch comms.Change, debit bool) (comms.Communication, int64, error) {
	c.mu.Lock()
	mode := c.mode[ch.Row.ID]
	if c.crashed[ch.Row.ID] {
		mode = ""
	}
	c.mu.Unlock()
	switch {
	case mode == "after" && emits(ch, comms.EventSent):
		c.died(ch.Row.ID)
	case mode == "before" && emits(ch, comms.EventAttemptStarted):
		stored, credits, err := c.Store.UpdateCommunication(ctx, ch, debit)
		if err == nil {
			c.died(ch.Row.ID)
		}
		return stored, credits, err
	}
	return c.Store.UpdateCommunication(ctx, ch, debit)
}

func (c *crashStore) died(id string) {
	c.mu.Lock()
	c.crashed[id] = true
	c.mu.Unlock()
	panic(crash{id})
}

func emits(ch comms.Change, typ comms.EventType) bool {
	for _, e := range ch.Events {
		if e.Type == typ {
			return true
		}
	}
	return false
}

// providerLog is what SES and SNS accepted, as the product's clients saw it
// (the SDK's input and output): what SES publishes as a SEND event and SNS
// logs as a delivery status.
type providerLog struct {
	mu     sync.Mutex
	now    func() time.Time
	emails []sentEmail
	sms    []sentSMS
}

type sentEmail struct {
	id, to string
	tags   map[string]string
	at     time.Time
}

type sentSMS struct {
	id, to string
	at     time.Time
}

func (p *providerLog) attach(cfg *aws.Config) {
	cfg.APIOptions = append(cfg.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("e2e.provider.log",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				if err != nil {
					return out, md, err
				}
				p.mu.Lock()
				defer p.mu.Unlock()
				switch i := in.Parameters.(type) {
				case *sesv2.SendEmailInput:
					o, _ := out.Result.(*sesv2.SendEmailOutput)
					tags := map[string]string{}
					for _, t := range i.EmailTags {
						tags[aws.ToString(t.Name)] = aws.ToString(t.Value)
					}
					p.emails = append(p.emails, sentEmail{id: aws.ToString(o.MessageId), to: i.Destination.ToAddresses[0], tags: tags, at: p.now()})
				case *sns.PublishInput:
					o, _ := out.Result.(*sns.PublishOutput)
					p.sms = append(p.sms, sentSMS{id: aws.ToString(o.MessageId), to: aws.ToString(i.PhoneNumber), at: p.now()})
				}
				return out, md, err
			}), middleware.After)
	})
}

// TestCrashesBetweenSendAndRecordSendNothingTwice: a burst of 60 emails
// and 30 SMS through the AWS wiring on the emulator, where the process
// dies (kill -9) for a seeded subset of rows between the provider's send
// and the write that records it, and for a few right after the claim,
// before the send. SES's SEND events and SNS's delivery-status logs then
// arrive through the events function as AWS would deliver them; the clock
// passes the lease, the sweep grace and SettleWait, and the sweeper runs.
// Every recipient must have exactly one message.
func TestCrashesBetweenSendAndRecordSendNothingTwice(t *testing.T) {
	t.Parallel()
	// 90 rows, not the hundreds of the SQLite kill -9 test: moto copies
	// the whole table in every DynamoDB transaction, so a burst costs
	// quadratic time on the emulator.
	const nEmail, nSMS = 60, 30
	start := time.Now()
	r := testrand.New(t)
	run := r.Hex(8)
	cs := &crashStore{mode: map[string]string{}, crashed: map[string]bool{}}
	plog := &providerLog{}
	s := deploy(t, options{wrap: func(st app.Store) app.Store { cs.Store = st; return cs }, attach: plog.attach})
	plog.now = s.clock.Now
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	eventsFn := lambdafn.Events(s.app.Feedback, log)

	type row struct{ id, to, channel, mode string }
	var rows []row
	var due time.Time
	for i := range nEmail + nSMS {
		due = s.clock.Now().Add(2 * time.Second).Truncate(time.Millisecond)
		file, to, channel := "api-create-email.json", fmt.Sprintf("crash%d-%s@crash.example.com", i, run), "email"
		edit := setTo(to)
		if i >= nEmail {
			file, to, channel = "api-create-sms.json", r.PhoneNumber("AU"), "sms"
			edit = func(b map[string]any) { b["payload"].(map[string]any)["to_number"] = to }
		}
		ev := event(t, file, due, edit)
		ev.Headers["idempotency-key"] = "crash-" + run + "-" + strconv.Itoa(i)
		// A client retries a failed create with the same Idempotency-Key
		// (moto answers a rare request with a checksum error under load).
		status, body := s.call(ev)
		for attempt := 1; status >= 500 && attempt < 5; attempt++ {
			status, body = s.call(ev)
		}
		if status != 201 {
			t.Fatalf("create %s: %d %v", to, status, body)
		}
		// A seeded fifth dies after the send, a seeded 5 % before it.
		mode := ""
		switch n := r.IntN(100); {
		case n < 20:
			mode = "after"
		case n < 25:
			mode = "before"
		}
		id := body["data"].(map[string]any)["id"].(string)
		rows = append(rows, row{id, to, channel, mode})
		if mode != "" {
			cs.mode[id] = mode
		}
	}

	// Lambda: each record is one invocation here, so that a process that
	// dies loses only its own record, which SQS redelivers later.
	handle := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		res := events.SQSEventResponse{}
		for _, rec := range ev.Records {
			func() {
				defer func() {
					if p := recover(); p != nil {
						if _, ok := p.(crash); !ok {
							panic(p)
						}
						res.BatchItemFailures = append(res.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
					}
				}()
				raw, _ := json.Marshal(events.SQSEvent{Records: []events.SQSMessage{rec}})
				out, err := s.dispatch(ctx, raw)
				if err != nil {
					t.Errorf("dispatch: %v", err)
					return
				}
				res.BatchItemFailures = append(res.BatchItemFailures, out.(events.SQSEventResponse).BatchItemFailures...)
			}()
		}
		return res, nil
	}
	pump := func(wait time.Duration) {
		if _, err := emulator.PumpSQS(s.ctx, sqs.NewFromConfig(s.cfg), s.conf.QueueURL, handle, wait); err != nil {
			t.Fatalf("pump SQS: %v", err)
		}
	}
	t.Logf("created %d rows in %v", len(rows), time.Since(start))
	s.clock.AdvanceTo(due)
	byStatus := func() map[comms.Status]int {
		out := map[comms.Status]int{}
		for _, rw := range rows {
			got, err := s.app.Store.GetCommunication(s.ctx, sampleCompany, rw.id)
			if err != nil {
				t.Fatal(err)
			}
			out[got.Status]++
		}
		return out
	}
	// Until no row waits for its fire: moto's delays are real time, and a
	// loaded machine stretches them (a bound for a broken build).
	pump(3 * time.Second)
	for deadline := time.Now().Add(60 * time.Second); byStatus()[comms.StatusPending] > 0 && time.Now().Before(deadline); {
		pump(2 * time.Second)
	}
	t.Logf("burst pumped at %v", time.Since(start))
	crashes := map[string]int{}
	for _, rw := range rows {
		if rw.mode != "" {
			crashes[rw.channel+" "+rw.mode]++
		}
	}
	for _, rw := range rows {
		got, _ := s.app.Store.GetCommunication(s.ctx, sampleCompany, rw.id)
		if (got.Status == comms.StatusProcessing) != (rw.mode != "") {
			t.Errorf("after the burst: %s row %s (crash %q) is %s (%+v)", rw.channel, rw.id, rw.mode, got.Status, got.LastError)
		}
	}
	if after := byStatus(); after[comms.StatusProcessing] != len(cs.mode) {
		t.Fatalf("after the burst: %v, want the %d crashed rows processing (%v)", after, len(cs.mode), crashes)
	}

	// The providers' records, as AWS delivers them: SES SEND events through
	// the events queue (SQS batches of 10), SNS delivery-status logs through
	// a CloudWatch Logs subscription (25 lines per event).
	// feed delivers the records the providers made since the last feed: a
	// row the load kept from the burst (a lease that ran out, a throttled
	// call) is sent by the sweep below, and its records come after it.
	fedEmails, fedSMS := 0, 0
	feed := func() {
		plog.mu.Lock()
		emails, smss := plog.emails[fedEmails:], plog.sms[fedSMS:]
		fedEmails, fedSMS = len(plog.emails), len(plog.sms)
		plog.mu.Unlock()
		var batch events.SQSEvent
		flush := func() {
			if len(batch.Records) == 0 {
				return
			}
			raw, _ := json.Marshal(batch)
			out, err := eventsFn(s.ctx, raw)
			if err != nil || len(out.(events.SQSEventResponse).BatchItemFailures) != 0 {
				t.Fatalf("events handler: %v %+v", err, out)
			}
			batch.Records = nil
		}
		for i, e := range emails {
			tags := map[string][]string{}
			for k, v := range e.tags {
				tags[k] = []string{v}
			}
			body, _ := json.Marshal(map[string]any{"version": "0", "source": "aws.ses", "detail-type": "Email Sent",
				"detail": map[string]any{"eventType": "Send", "send": map[string]any{}, "mail": map[string]any{
					"timestamp": e.at.UTC().Format(time.RFC3339Nano), "messageId": e.id, "destination": []string{e.to}, "tags": tags}}})
			batch.Records = append(batch.Records, events.SQSMessage{MessageId: "ses-" + strconv.Itoa(i), Body: string(body),
				EventSource: "aws:sqs", EventSourceARN: "arn:aws:sqs:us-east-1:123456789012:dispatcher-events"})
			if len(batch.Records) == 10 {
				flush()
			}
		}
		flush()
		for i := 0; i < len(smss); i += 25 {
			var lines []events.CloudwatchLogsLogEvent
			for j, m := range smss[i:min(i+25, len(smss))] {
				msg, _ := json.Marshal(map[string]any{
					"notification": map[string]any{"messageId": m.id, "timestamp": m.at.UTC().Format("2006-01-02 15:04:05.000")},
					"delivery": map[string]any{"destination": m.to, "providerResponse": "Message has been accepted by phone carrier",
						"smsType": "Transactional", "dwellTimeMs": 412},
					"status": "SUCCESS"})
				lines = append(lines, events.CloudwatchLogsLogEvent{ID: strconv.Itoa(i + j), Timestamp: m.at.UnixMilli(), Message: string(msg)})
			}
			payload, _ := json.Marshal(events.CloudwatchLogsData{MessageType: "DATA_MESSAGE", Owner: "123456789012",
				LogGroup: "sns/us-east-1/123456789012/DirectPublishToPhoneNumber", LogStream: "crash", LogEvents: lines})
			var z bytes.Buffer
			w := gzip.NewWriter(&z)
			_, _ = w.Write(payload)
			_ = w.Close()
			raw, _ := json.Marshal(events.CloudwatchLogsEvent{AWSLogs: events.CloudwatchLogsRawData{Data: base64.StdEncoding.EncodeToString(z.Bytes())}})
			if _, err := eventsFn(s.ctx, raw); err != nil {
				t.Fatalf("events handler (logs): %v", err)
			}
		}
	}
	feed()
	t.Logf("provider records fed at %v", time.Since(start))
	settledBySES := crashes["email after"] - byStatus()[comms.StatusProcessing] + crashes["sms after"] + crashes["email before"] + crashes["sms before"]

	// The sweeper, a minute past the lease and the sweep grace: SMS settled
	// from their receipts, rows with no record waiting; then past SettleWait:
	// those are sent again.
	cfg := dispatch.Config{}.WithDefaults()
	s.clock.Advance(cfg.Lease + cfg.SweepGrace + 10*time.Second)
	// The sweeper is a process too: a row the load kept from the burst
	// can reach its injected crash in a sweep. It dies there, and the next
	// minute's sweep runs.
	sweep := func() dispatch.SweepResult {
		for {
			var res dispatch.SweepResult
			var err error
			died := func() (died bool) {
				defer func() {
					if p := recover(); p != nil {
						if _, ok := p.(crash); !ok {
							panic(p)
						}
						died = true
					}
				}()
				res, err = s.app.Dispatcher.Sweep(s.ctx)
				return false
			}()
			if !died {
				if err != nil {
					t.Fatalf("sweep: %v", err)
				}
				return res
			}
			t.Logf("the sweeper died at an injected crash; it runs again")
		}
	}
	first := sweep()
	s.clock.Advance(cfg.SettleWait)
	second := sweep()
	t.Logf("swept at %v", time.Since(start))
	pump(time.Second)
	t.Logf("pumped at %v", time.Since(start))
	feed() // the records of what the sweep sent

	sent, smsSent := recorded(t)
	t.Logf("moto's records read at %v", time.Since(start))
	dups, lost := 0, 0
	for _, rw := range rows {
		n := sent[rw.to]
		if rw.channel == "sms" {
			n = smsSent[rw.to]
		}
		got, err := s.app.Store.GetCommunication(s.ctx, sampleCompany, rw.id)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case n > 1:
			dups += n - 1
		case n == 0:
			lost++
		}
		if n != 1 || got.Status != comms.StatusSent {
			t.Errorf("%s row %s (crash %q): %d messages, status %s; want 1, sent", rw.channel, rw.to, rw.mode, n, got.Status)
		}
		// Every SMS SNS logged is delivered on its row, the ones settled
		// from a receipt included (the ledger records the receipt's report).
		if rw.channel == "sms" && rw.mode != "before" && got.Delivery.Status != comms.DeliveryDelivered {
			t.Errorf("SMS row %s (crash %q): delivery_status %q, want delivered", rw.to, rw.mode, got.Delivery.Status)
		}
	}
	t.Logf("done at %v", time.Since(start))
	t.Logf("rows %d (%d email, %d SMS); injected crashes %v; settled from SES SEND events %d; "+
		"settled from SMS receipts %d (first sweep %+v); resent because no record %d (second sweep %+v); duplicates %d, lost %d",
		len(rows), nEmail, nSMS, crashes, settledBySES, first.Settled, first, second.Released, second, dups, lost)
}
