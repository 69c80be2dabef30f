package feedback_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/feedback"
)

// memStore is the recorder's and the ledger's store in memory.
type memStore struct {
	rows     map[string]comms.Communication // by id
	receipts []comms.SMSReceipt
}

func (m *memStore) GetCommunication(_ context.Context, _, id string) (comms.Communication, error) {
	if r, ok := m.rows[id]; ok {
		return r, nil
	}
	return comms.Communication{}, comms.ErrNotFound
}

func (m *memStore) CommunicationByProviderMessageID(_ context.Context, id string) (comms.Communication, error) {
	for _, r := range m.rows {
		if id != "" && r.ProviderMessageID == id {
			return r, nil
		}
	}
	return comms.Communication{}, comms.ErrNotFound
}

func (m *memStore) GetSuppression(context.Context, string, comms.SuppressionChannel, string) (comms.Suppression, error) {
	return comms.Suppression{}, comms.ErrNotFound
}

func (m *memStore) UpdateCommunication(_ context.Context, ch comms.Change, _ bool) (comms.Communication, int64, error) {
	ch.Row.Version++
	m.rows[ch.Row.ID] = ch.Row
	return ch.Row, 0, nil
}

func (m *memStore) PutSMSReceipt(_ context.Context, r comms.SMSReceipt) error {
	m.receipts = append(m.receipts, r)
	return nil
}

func (m *memStore) FindSMSReceipts(_ context.Context, to string, from, until time.Time) ([]comms.SMSReceipt, error) {
	var out []comms.SMSReceipt
	for _, r := range m.receipts {
		if r.Destination == to && !r.AcceptedAt.Before(from) && !r.AcceptedAt.After(until) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b comms.SMSReceipt) int {
		if c := a.AcceptedAt.Compare(b.AcceptedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ProviderMessageID, b.ProviderMessageID)
	})
	return out, nil
}

const lease = 2 * time.Minute

var t0 = time.Date(2027, 1, 15, 9, 0, 0, 0, time.UTC)

func smsRow(id, to string, claimed time.Time) comms.Communication {
	p, _ := json.Marshal(comms.SMSPayload{ToNumber: to})
	return comms.Communication{ID: id, CompanyID: "co", Channel: comms.ChannelSMS, Status: comms.StatusProcessing,
		AttemptCount: 1, MaxAttempts: 3, LeaseUntil: claimed.Add(lease), Payload: p, ScheduledFor: claimed,
		NextAttemptAt: claimed, CreatedAt: claimed, UpdatedAt: claimed, Version: 2}
}

func logLineAt(msgID, to string, at time.Time) []byte {
	return []byte(`{"notification":{"messageId":"` + msgID + `","timestamp":"` + at.Format("2006-01-02 15:04:05.000") +
		`"},"delivery":{"destination":"` + to + `","providerResponse":"Message has been accepted by phone carrier"},"status":"SUCCESS"}`)
}

func TestUnclaimedSMSReportsBecomeReceiptsAndSettleTheirAttempt(t *testing.T) {
	ctx := context.Background()
	st := &memStore{rows: map[string]comms.Communication{}}
	now := t0.Add(10 * time.Minute)
	rec := feedback.New(st, nil, func() time.Time { return now }, feedback.WithSMSReceipts(st))
	ledger := feedback.NewSMSLedger(st, lease, rec, nil)

	// Two uncertain SMS to one number, claimed a second apart; an already
	// recorded one to it too, and one to another number.
	const to = "+61400000001"
	a, b := smsRow("a", to, t0), smsRow("b", to, t0.Add(time.Second))
	sent := smsRow("sent", to, t0)
	sent.Status, sent.ProviderMessageID = comms.StatusSent, "m-sent"
	st.rows["a"], st.rows["b"], st.rows["sent"] = a, b, sent
	for _, l := range []struct {
		id, to string
		at     time.Time
	}{{"m-sent", to, t0.Add(100 * time.Millisecond)}, {"m-b", to, t0.Add(1200 * time.Millisecond)},
		{"m-a", to, t0.Add(200 * time.Millisecond)}, {"m-other", "+61400000002", t0.Add(200 * time.Millisecond)},
		{"m-before", to, t0.Add(-3 * time.Second)}} {
		tg, r, err := feedback.ParseSMSDeliveryLog(logLineAt(l.id, l.to, l.at))
		if err != nil {
			t.Fatal(err)
		}
		out, err := rec.Record(ctx, tg, r)
		want := feedback.Unclaimed
		if l.id == "m-sent" {
			want = feedback.Recorded
		}
		if err != nil || out != want {
			t.Fatalf("%s: %s, %v; want %s", l.id, out, err, want)
		}
	}
	if len(st.receipts) != 4 {
		t.Fatalf("%d receipts, want 4: %+v", len(st.receipts), st.receipts)
	}

	// a takes the earliest unclaimed receipt of its window; once settled
	// (its message id now on the row), b takes the next.
	id, found, err := ledger.FindAttempt(ctx, a)
	if err != nil || !found || id != "m-a" {
		t.Fatalf("a: %q %v %v, want m-a", id, found, err)
	}
	ch, err := comms.SettleAttempt(a, id, now)
	if err != nil {
		t.Fatal(err)
	}
	settled, _, _ := st.UpdateCommunication(ctx, ch, false)
	ledger.AttemptSettled(ctx, settled)
	if r := st.rows["a"]; r.Status != comms.StatusSent || r.Delivery.Status != comms.DeliveryDelivered {
		t.Errorf("a after settling: %s, delivery %+v; want sent, delivered", r.Status, r.Delivery)
	}
	if id, found, err := ledger.FindAttempt(ctx, b); err != nil || !found || id != "m-b" {
		t.Errorf("b: %q %v %v, want m-b", id, found, err)
	}
	// Nothing for an email row, nor for a row whose window has no receipt.
	email := a
	email.Channel = comms.ChannelEmail
	if _, found, _ := ledger.FindAttempt(ctx, email); found {
		t.Error("an email row found a receipt")
	}
	if _, found, _ := ledger.FindAttempt(ctx, smsRow("c", to, t0.Add(time.Hour))); found {
		t.Error("a row claimed an hour later found a receipt")
	}
	if ledger.Complete() {
		t.Error("the SMS ledger says it is complete")
	}
}
