package feedback_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/channel/devsink"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/feedback"
)

// batchStore is memStore with the batch pair, its suppressions kept (a
// write suppressing an address another write suppressed since its read
// conflicts, as in the SQLite and DynamoDB stores), and conflicts to inject: the first write of each id in conflictOnce finds
// the row changed by another writer (its version bumped) and loses.
type batchStore struct {
	memStore
	supps         map[string]comms.Suppression // by recipient
	conflictOnce  map[string]bool
	reads, writes int // batch calls
	single        int // UpdateCommunication calls (Record's)
}

func newBatchStore() *batchStore {
	return &batchStore{memStore: memStore{rows: map[string]comms.Communication{}}, supps: map[string]comms.Suppression{},
		conflictOnce: map[string]bool{}}
}

func (b *batchStore) GetSuppression(_ context.Context, _ string, _ comms.SuppressionChannel, rcpt string) (comms.Suppression, error) {
	if s, ok := b.supps[rcpt]; ok {
		return s, nil
	}
	return comms.Suppression{}, comms.ErrNotFound
}

func (b *batchStore) UpdateCommunication(ctx context.Context, ch comms.Change, debit bool) (comms.Communication, int64, error) {
	b.single++
	return b.update(ch)
}

func (b *batchStore) update(ch comms.Change) (comms.Communication, int64, error) {
	cur, ok := b.rows[ch.Row.ID]
	if !ok {
		return comms.Communication{}, 0, comms.ErrNotFound
	}
	if b.conflictOnce[ch.Row.ID] {
		delete(b.conflictOnce, ch.Row.ID)
		cur.Version++
		b.rows[cur.ID] = cur
	}
	if cur.Version != ch.Row.Version {
		return comms.Communication{}, 0, comms.ErrConflict
	}
	for _, s := range ch.Suppress {
		if old, ok := b.supps[s.Recipient]; ok && old.Active() {
			// Suppressed since the caller read it: the stores keep the
			// active one and refuse the write (the caller reads again).
			return comms.Communication{}, 0, comms.ErrConflict
		}
	}
	for _, s := range ch.Suppress {
		b.supps[s.Recipient] = s
	}
	ch.Row.Version++
	b.rows[ch.Row.ID] = ch.Row
	return ch.Row, 0, nil
}

func (b *batchStore) GetCommunications(_ context.Context, company string, ids []string) ([]comms.Communication, error) {
	b.reads++
	var out []comms.Communication
	for _, id := range ids {
		if r, ok := b.rows[id]; ok && r.CompanyID == company {
			out = append(out, r)
		}
	}
	return out, nil
}

func (b *batchStore) UpdateCommunications(ctx context.Context, chs []comms.Change) ([]comms.Communication, []error) {
	b.writes++
	stored, errs := make([]comms.Communication, len(chs)), make([]error, len(chs))
	for i, ch := range chs {
		stored[i], _, errs[i] = b.update(ch)
	}
	return stored, errs
}

// sentEmail is a row sent as attempt 1 with message id "m-<id>", and the
// mailbox simulator's reports of that send.
func sentEmail(t *testing.T, id, to string) (comms.Communication, []feedback.Item) {
	t.Helper()
	p, _ := json.Marshal(comms.EmailPayload{ToEmail: to, Subject: "Hi", HTMLBody: "<p>Hi</p>"})
	row := comms.Communication{ID: id, CompanyID: "co", Channel: comms.ChannelEmail, Status: comms.StatusSent,
		AttemptCount: 1, MaxAttempts: 3, Payload: p, ScheduledFor: t0, NextAttemptAt: t0, CreatedAt: t0, UpdatedAt: t0,
		SentAt: &t0, ProviderMessageID: "m-" + id, Version: 3, Delivery: comms.Delivery{Status: comms.DeliveryAccepted, At: t0}}
	var items []feedback.Item
	for _, r := range devsink.EmailReports(dispatch.Email{CommunicationID: id, CompanyID: "co", Attempt: 1, To: to}, "m-"+id, t0) {
		tg, rep, err := feedback.ParseSESEvent(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, feedback.Item{Target: tg, Report: rep})
	}
	return row, items
}

// TestRecordBatchRecordsAsRecordDoes: the mailbox simulator's reports of
// many sends (delivered, bounced, complained: two or three reports a row,
// a suppression among them), one row's report twice, a report of a row
// that does not exist and a forged tag, recorded by RecordBatch, leave
// every row, suppression and outcome as Record one by one does — also
// when writes lose races and fall back — in a few batch calls.
func TestRecordBatchRecordsAsRecordDoes(t *testing.T) {
	ctx := context.Background()
	now := func() time.Time { return t0.Add(time.Second) }
	one, batched, racing := newBatchStore(), newBatchStore(), newBatchStore()
	var items []feedback.Item
	for i := range 30 {
		to := []string{"success@simulator.amazonses.com", "bounce@simulator.amazonses.com", "complaint@simulator.amazonses.com"}[i%3]
		row, its := sentEmail(t, fmt.Sprintf("0193a1b2-c3d4-7e5f-8a9b-%012d", i), to)
		for _, st := range []*batchStore{one, batched, racing} {
			st.rows[row.ID] = row
		}
		if i%4 == 0 {
			racing.conflictOnce[row.ID] = true
		}
		items = append(items, its...)
	}
	items = append(items, items[4], // a redelivered report
		feedback.Item{Target: feedback.Target{CompanyID: "co", CommunicationID: "0193a1b2-c3d4-7e5f-8a9b-999999999999"},
			Report: items[1].Report}, // no such row
		feedback.Item{Target: feedback.Target{CompanyID: "co", CommunicationID: "forged"}, Report: items[1].Report})

	var want []feedback.Outcome
	rc := feedback.New(one, nil, now)
	for _, it := range items {
		out, err := rc.Record(ctx, it.Target, it.Report)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, out)
	}
	for name, st := range map[string]*batchStore{"batched": batched, "racing": racing} {
		outs, errs := feedback.New(st, nil, now, feedback.WithBatch(st)).RecordBatch(ctx, items)
		for i := range items {
			if errs[i] != nil || outs[i] != want[i] {
				t.Errorf("%s: item %d: %s, %v; Record one by one: %s", name, i, outs[i], errs[i], want[i])
			}
		}
		for id, w := range one.rows {
			got := st.rows[id]
			if name == "racing" && got.Version == w.Version+1 {
				got.Version-- // the injected writer's bump
			}
			got.Token, w.Token = "", "" // random per transition
			if !reflect.DeepEqual(got, w) {
				t.Errorf("%s: row %s:\n got %+v\nwant %+v", name, id, got, w)
			}
		}
		// The first bounce and complaint suppress their addresses; the
		// later rows' find them active and keep them.
		if !reflect.DeepEqual(st.supps, one.supps) || len(one.supps) != 2 {
			t.Errorf("%s: suppressions %+v, one by one %+v (want 2)", name, st.supps, one.supps)
		}
	}
	// One read; a round per report position that changes a row (delivered
	// or bounced, then complained). Through Record: the 9 later bounces and
	// 9 later complaints of a round, whose suppression the first one's
	// write made active (they read none), and nothing else.
	if batched.reads != 1 || batched.writes != 2 || batched.single != 18 {
		t.Errorf("batched: %d reads, %d batch writes, %d single writes; want 1, 2, 18", batched.reads, batched.writes, batched.single)
	}
}
