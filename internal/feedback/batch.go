package feedback

import (
	"context"
	"slices"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// BatchStore is what RecordBatch needs of a store that reads and writes
// many rows per call (the SQLite store; the same pair as
// dispatch.BatchStore).
type BatchStore interface {
	// GetCommunications returns the company's rows among ids that exist,
	// in any order.
	GetCommunications(ctx context.Context, companyID string, ids []string) ([]comms.Communication, error)
	// UpdateCommunications writes each change as UpdateCommunication
	// without debit would: errs[i] is chs[i]'s alone, stored[i] the row as
	// stored when nil.
	UpdateCommunications(ctx context.Context, chs []comms.Change) (stored []comms.Communication, errs []error)
}

// WithBatch makes RecordBatch read and write through b, many rows per
// call. Without it RecordBatch is Record in a loop.
func WithBatch(b BatchStore) Option { return func(rc *Recorder) { rc.batch = b } }

// Item is one report for RecordBatch.
type Item struct {
	Target Target
	Report comms.DeliveryReport
}

// RecordBatch records items as Record would record each of them in turn,
// and returns each one's outcome and error (outs[i], errs[i] for
// items[i]). With WithBatch, the reports naming a row by company and id
// are read with one GetCommunications per company and written in rounds
// of one UpdateCommunications: a round writes the next report that
// changes something of each row, decided on the row as the previous round
// stored it, so a row's reports apply in their order. A report named by
// provider message id alone, one whose row is not found, and the rest of
// a row whose read or write failed or lost a race go through Record, in
// their order, which re-reads the row (and answers Unknown, or the store's
// error). The embedded mode's dev senders record their reports this way
// (docs/design.md §15).
func (rc *Recorder) RecordBatch(ctx context.Context, items []Item) ([]Outcome, []error) {
	outs, errs := make([]Outcome, len(items)), make([]error, len(items))
	if rc.batch == nil {
		for i, it := range items {
			outs[i], errs[i] = rc.Record(ctx, it.Target, it.Report)
		}
		return outs, errs
	}
	type rowKey struct{ company, id string }
	type queue struct {
		row   comms.Communication
		found bool
		items []int // indexes into items still to record, in order
	}
	var (
		queues    = map[rowKey]*queue{}
		order     []rowKey
		byCompany = map[string][]string{}
		single    []int // recorded one by one through Record
	)
	for i, it := range items {
		t := it.Target
		if _, ok := comms.UUIDString(t.CommunicationID); !ok || !comms.ValidCompanyID(t.CompanyID) {
			single = append(single, i)
			continue
		}
		k := rowKey{t.CompanyID, t.CommunicationID}
		q := queues[k]
		if q == nil {
			q = &queue{}
			queues[k] = q
			order = append(order, k)
			byCompany[k.company] = append(byCompany[k.company], k.id)
		}
		q.items = append(q.items, i)
	}
	for company, ids := range byCompany {
		rows, err := rc.batch.GetCommunications(ctx, company, ids)
		if err != nil {
			continue // not found below: Record reads each again
		}
		for _, row := range rows {
			if q := queues[rowKey{company, row.ID}]; q != nil {
				q.row, q.found = row, true
			}
		}
	}
	toSingle := func(q *queue) {
		single = append(single, q.items...)
		q.items = nil
	}
	for _, k := range order {
		if q := queues[k]; !q.found {
			toSingle(q)
		}
	}
	for {
		var (
			chs []comms.Change
			who []*queue
		)
		for _, k := range order {
			q := queues[k]
			for len(q.items) > 0 {
				i := q.items[0]
				ch, err := rc.decide(ctx, q.row, &items[i].Report)
				if err != nil {
					toSingle(q) // a suppression read failed: Record tries again
					break
				}
				if ch == nil {
					outs[i] = Ignored
					q.items = q.items[1:]
					continue
				}
				chs, who = append(chs, *ch), append(who, q)
				break
			}
		}
		if len(chs) == 0 {
			break
		}
		stored, werrs := rc.batch.UpdateCommunications(ctx, chs)
		for j, q := range who {
			if werrs[j] != nil {
				toSingle(q) // lost a race or failed: Record reads the row again
				continue
			}
			i := q.items[0]
			rc.recorded(ctx, q.row, items[i].Report, chs[j])
			outs[i] = Recorded
			q.row = stored[j]
			q.items = q.items[1:]
		}
	}
	slices.Sort(single)
	for _, i := range single {
		outs[i], errs[i] = rc.Record(ctx, items[i].Target, items[i].Report)
	}
	return outs, errs
}
