package lambdafn_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/lambdafn"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
)

// fanOutTimer records armed fan-outs and fails for the companies in fail.
type fanOutTimer struct {
	fail  map[string]bool
	fires []comms.Fire
	ats   []time.Time
}

func (f *fanOutTimer) Arm(_ context.Context, fire comms.Fire, at time.Time) error {
	if f.fail[fire.CompanyID] {
		return errors.New("injected: the webhook queue is unreachable")
	}
	f.fires, f.ats = append(f.fires, fire), append(f.ats, at)
	return nil
}

func streamRecord(name, pk, sk, seq string) events.DynamoDBEventRecord {
	return events.DynamoDBEventRecord{EventName: name, EventSource: "aws:dynamodb", Change: events.DynamoDBStreamRecord{
		SequenceNumber: seq, Keys: map[string]events.DynamoDBAttributeValue{
			dynamo.AttrPK: events.NewStringAttribute(pk), dynamo.AttrSK: events.NewStringAttribute(sk)}}}
}

// TestWebhookStreamArmsOneFanOutPerCompany: a stream batch arms one
// fan-out per company named by an event insert, due once the feed has
// settled (the default, also when WebhookStream is called directly);
// other records are skipped; a company whose arm fails is reported by the
// lowest sequence number of its records, so Lambda retries from there.
func TestWebhookStreamArmsOneFanOutPerCompany(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	tm := &fanOutTimer{fail: map[string]bool{"globex": true}}
	ev := events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
		streamRecord("INSERT", "COMM#acme#0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "EVT#0000000001", "100"),
		streamRecord("INSERT", "COMM#globex#0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "EVT#0000000001", "99"),
		streamRecord("INSERT", "COMM#acme#0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "EVT#0000000002", "101"),
		streamRecord("MODIFY", "COMM#initech#x", "EVT#0000000001", "102"),
		streamRecord("INSERT", "COMM#initech#x", "ROW", "103"),
		streamRecord("INSERT", "COMM#globex#0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "EVT#0000000002", "1000"),
	}}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	res := lambdafn.WebhookStream(context.Background(), lambdafn.WebhookOptions{Timer: tm, Now: func() time.Time { return now }}, log, ev)
	if len(tm.fires) != 1 || tm.fires[0].CompanyID != "acme" || tm.fires[0].Kind != webhooks.FanOutFireKind || tm.fires[0].Token != "100" {
		t.Fatalf("armed %+v, want one fan-out of acme", tm.fires)
	}
	if want := now.Add(dynamo.FeedSettle + time.Second); !tm.ats[0].Equal(want) || !tm.fires[0].DueAt.Equal(want) {
		t.Errorf("fan-out due %v (fire %v), want %v (the feed's settle time)", tm.ats[0], tm.fires[0].DueAt, want)
	}
	if len(res.BatchItemFailures) != 1 || res.BatchItemFailures[0].ItemIdentifier != "99" {
		t.Errorf("batch item failures %+v, want globex's first record, 99", res.BatchItemFailures)
	}
	// Through the handler: the raw event's shape is recognised.
	raw, _ := json.Marshal(ev)
	out, err := lambdafn.Webhooks(nil, lambdafn.WebhookOptions{Timer: tm, Now: func() time.Time { return now }}, log)(context.Background(), raw)
	if err != nil || len(out.(events.DynamoDBEventResponse).BatchItemFailures) != 1 {
		t.Errorf("handler: %+v %v", out, err)
	}
}
