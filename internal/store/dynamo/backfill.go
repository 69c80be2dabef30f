package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dispatcherhq/dispatcher/internal/clock"
	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// Backfill of the retention TTL (design §14.5). Items written before the
// store had a retention carry no AttrTTL and would be kept forever unless
// written again. Backfill scans the table and gives each such item the TTL
// the store's own rules (retention.go) give it now:
//
//   - a terminal row (COMM): rowTTL, with an UpdateItem conditioned on the
//     attribute being absent, the row's version and its status being the
//     ones read (a row written meanwhile is left to the store's write,
//     which stamps it itself); an open row gets none;
//   - an event (EVT#): eventTTL with its row as it is now (read by key when
//     the scan did not just return it): the row's TTL when the row is
//     terminal, else the open bound. Events are never rewritten by the
//     store, so without this an event of a row open at the change would
//     keep none for ever;
//   - a row's payload item (BODY): bodyTTL of its terminal row; an open
//     row's payload item gets none, as the row's next write puts it again
//     with its TTL (its body_ref names the TTL it was written with);
//   - a provider message id's mapping (PMID#): the TTL of the terminal
//     row it names.
//
// Every write is "SET ttl" on condition that the item still exists and
// still carries no TTL. Terminal statuses are final in comms (no
// transition leaves one), so a row read terminal stays terminal and its
// events, payload and mapping can take its TTL without a transaction.
// Anything else (idempotency records, SMS receipts and entity events carry
// their own TTL since they exist; companies, keys, suppressions, claims,
// webhook deliveries and endpoints are not retained; a payload or mapping
// whose row is gone) is skipped.

// Scanner is the Scan operation of the DynamoDB client, which Backfill
// reads the table with; *dynamodb.Client implements it.
type Scanner interface {
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

var _ Scanner = (*dynamodb.Client)(nil)

// MaxBackfillSegments bounds BackfillOptions.Segments (DynamoDB allows
// up to 1,000,000; more than this gains nothing for one process).
const MaxBackfillSegments = 1000

// BackfillOptions configure Backfill.
type BackfillOptions struct {
	// Segments is how many parallel Scan segments to read, from 1 to
	// MaxBackfillSegments; ignored when Start is given (it says how many).
	Segments int
	// Start resumes a backfill where a report's Next left it; nil starts
	// from the beginning.
	Start *BackfillPosition
	// DryRun counts what would be updated and writes nothing.
	DryRun bool
	// PageSize is the most items one Scan call examines (its Limit); 0
	// lets DynamoDB fill pages up to 1 MB. Smaller pages make smaller
	// bursts and finer resume positions.
	PageSize int32
	// MaxWCU and MaxRCU cap the capacity units the backfill consumes per
	// second (writes and reads, indexes included, as DynamoDB reports them
	// with ReturnConsumedCapacity TOTAL; 1 per call when it reports
	// nothing); 0 means no cap. A call waits until the units of earlier
	// calls are paid for, so the average stays under the cap and a burst
	// is at most one call per segment.
	MaxWCU, MaxRCU float64
	// Progress, when set, is called after each page with the report so
	// far (its Next is where to resume from); calls are serialised.
	Progress func(BackfillReport)
	// Clock paces the caps (nil: the system clock).
	Clock clock.Clock
}

// BackfillPosition is where a backfill resumes: one entry per segment.
type BackfillPosition struct {
	Segments []SegmentPosition `json:"segments"`
}

// SegmentPosition is one segment's place: Done when it has been read to
// its end, else the key of the last item read (empty: not started).
type SegmentPosition struct {
	Done bool   `json:"done,omitempty"`
	PK   string `json:"pk,omitempty"`
	SK   string `json:"sk,omitempty"`
}

// Backfill kinds, the keys of BackfillReport.UpdatedByKind.
const (
	BackfillRow     = "row"
	BackfillEvent   = "event"
	BackfillBody    = "body"
	BackfillMapping = "message_id_map"
)

// BackfillReport counts what a backfill did.
type BackfillReport struct {
	DryRun bool `json:"dry_run"`
	// Scanned is how many items the scans examined (ScannedCount); the
	// scans return only those without a TTL.
	Scanned int64 `json:"scanned"`
	// Updated is how many items were given a TTL (with DryRun: would be).
	Updated       int64            `json:"updated"`
	UpdatedByKind map[string]int64 `json:"updated_by_kind"`
	// Skipped is how many items without a TTL get none: open rows and
	// their payload items, items of other kinds, items whose row is gone.
	Skipped int64 `json:"skipped"`
	// ConditionalFailures is how many updates found the item changed
	// since it was read (a TTL set meanwhile, a row written again).
	ConditionalFailures int64   `json:"conditional_failures"`
	ConsumedRCU         float64 `json:"consumed_rcu"`
	ConsumedWCU         float64 `json:"consumed_wcu"`
	// Complete reports whether every segment was read to its end.
	Complete bool `json:"complete"`
	// Next is where to resume (BackfillOptions.Start); nil once Complete.
	Next *BackfillPosition `json:"next,omitempty"`
}

// Backfill gives the items of the table that should carry the retention
// TTL and do not the TTL the store's rules give them (see above),
// reading the table with scan in parallel segments. It needs a retention
// (WithRetention). The report counts what was done even when an error
// (the first one of any segment, which stops the others) is returned, and
// its Next says where to resume. Errors are wrapped "dynamo.Backfill".
func (s *Store) Backfill(ctx context.Context, scan Scanner, opts BackfillOptions) (BackfillReport, error) {
	const op = "Backfill"
	rep := BackfillReport{DryRun: opts.DryRun, UpdatedByKind: map[string]int64{}}
	if s.retention <= 0 {
		return rep, wrap(op, errors.New("the store has no retention: nothing would carry a TTL"))
	}
	var pos []SegmentPosition
	switch {
	case opts.Start != nil:
		if n := len(opts.Start.Segments); n < 1 || n > MaxBackfillSegments {
			return rep, wrap(op, fmt.Errorf("start: %d segments, want 1 to %d", n, MaxBackfillSegments))
		}
		pos = append(pos, opts.Start.Segments...)
	case opts.Segments < 1 || opts.Segments > MaxBackfillSegments:
		return rep, wrap(op, fmt.Errorf("segments %d, want 1 to %d", opts.Segments, MaxBackfillSegments))
	default:
		pos = make([]SegmentPosition, opts.Segments)
	}
	for i, p := range pos {
		if !p.Done && (p.PK == "") != (p.SK == "") {
			return rep, wrap(op, fmt.Errorf("start: segment %d: pk and sk go together", i))
		}
	}
	clk := clock.OrSystem(opts.Clock)
	b := &backfill{s: s, scan: scan, opts: opts, rep: rep, pos: pos,
		reads: newCapacityCap(opts.MaxRCU, clk), writes: newCapacityCap(opts.MaxWCU, clk)}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for i := range pos {
		wg.Go(func() {
			if err := b.segment(ctx, i); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	err := context.Cause(ctx)
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.snapshot()
	if err != nil {
		return out, wrap(op, err)
	}
	return out, nil
}

// backfill is one run of Backfill.
type backfill struct {
	s             *Store
	scan          Scanner
	opts          BackfillOptions
	reads, writes *capacityCap

	mu  sync.Mutex // guards rep and pos, and serialises Progress
	rep BackfillReport
	pos []SegmentPosition
}

// snapshot is the report so far with its resume position (mu held).
func (b *backfill) snapshot() BackfillReport {
	out := b.rep
	out.UpdatedByKind = make(map[string]int64, len(b.rep.UpdatedByKind))
	for k, v := range b.rep.UpdatedByKind {
		out.UpdatedByKind[k] = v
	}
	out.Complete = true
	for _, p := range b.pos {
		out.Complete = out.Complete && p.Done
	}
	if !out.Complete {
		out.Next = &BackfillPosition{Segments: append([]SegmentPosition(nil), b.pos...)}
	}
	return out
}

// count adds to the report under the lock.
func (b *backfill) count(f func(r *BackfillReport)) {
	b.mu.Lock()
	f(&b.rep)
	b.mu.Unlock()
}

// segment reads segment i from its position to its end, page by page; its
// position moves only once a page is done, so a resume redoes at most
// one page (whose done items the scan's filter then leaves out).
func (b *backfill) segment(ctx context.Context, i int) error {
	rows := &lastRow{}
	for {
		b.mu.Lock()
		p := b.pos[i]
		b.mu.Unlock()
		if p.Done {
			return nil
		}
		in := &dynamodb.ScanInput{
			TableName: b.s.table, Segment: aws.Int32(int32(i)), TotalSegments: aws.Int32(int32(len(b.pos))),
			FilterExpression:         aws.String("attribute_not_exists(#ttl)"),
			ExpressionAttributeNames: map[string]string{"#ttl": AttrTTL},
			ReturnConsumedCapacity:   types.ReturnConsumedCapacityTotal,
		}
		if b.opts.PageSize > 0 {
			in.Limit = aws.Int32(b.opts.PageSize)
		}
		if p.PK != "" {
			in.ExclusiveStartKey = key(p.PK, p.SK)
		}
		if err := b.reads.wait(ctx); err != nil {
			return err
		}
		out, err := b.scan.Scan(ctx, in)
		if err != nil {
			return fmt.Errorf("segment %d: Scan: %w", i, err)
		}
		b.reads.charge(consumed(out.ConsumedCapacity))
		b.count(func(r *BackfillReport) {
			r.Scanned += int64(out.ScannedCount)
			r.ConsumedRCU += consumed(out.ConsumedCapacity)
		})
		for _, it := range out.Items {
			if err := b.item(ctx, it, rows); err != nil {
				return fmt.Errorf("segment %d: item %s / %s: %w", i, pkOf(it), strAttr(it, AttrSK), err)
			}
		}
		b.mu.Lock()
		if lek := out.LastEvaluatedKey; len(lek) > 0 {
			b.pos[i] = SegmentPosition{PK: strAttr(lek, AttrPK), SK: strAttr(lek, AttrSK)}
		} else {
			b.pos[i] = SegmentPosition{Done: true}
		}
		if b.opts.Progress != nil {
			b.opts.Progress(b.snapshot())
		}
		b.mu.Unlock()
	}
}

// lastRow caches the row last read in a segment: a scan returns a
// partition's items together in sort-key order (BODY, COMM, then its
// events), so the events of a row usually find it here. The order saves
// reads; nothing depends on it.
type lastRow struct {
	pk    string
	row   comms.Communication
	found bool
}

// row returns the row of partition pk (a consistent GetItem unless
// cached); found is false when there is none.
func (b *backfill) row(ctx context.Context, pk string, cache *lastRow) (comms.Communication, bool, error) {
	if cache.pk == pk {
		return cache.row, cache.found, nil
	}
	if err := b.reads.wait(ctx); err != nil {
		return comms.Communication{}, false, err
	}
	out, err := b.s.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: b.s.table, Key: key(pk, skComm),
		ConsistentRead: aws.Bool(true), ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
	if err != nil {
		return comms.Communication{}, false, fmt.Errorf("GetItem of its row: %w", err)
	}
	b.reads.charge(consumed(out.ConsumedCapacity))
	b.count(func(r *BackfillReport) { r.ConsumedRCU += consumed(out.ConsumedCapacity) })
	*cache = lastRow{pk: pk}
	if out.Item != nil {
		if cache.row, err = decodeComm(out.Item); err != nil {
			return comms.Communication{}, false, err
		}
		cache.found = true
	}
	return cache.row, cache.found, nil
}

// item decides one item without a TTL and, when it should carry one,
// sets it.
func (b *backfill) item(ctx context.Context, it map[string]types.AttributeValue, rows *lastRow) error {
	pk := pkOf(it)
	skip := func() error { b.count(func(r *BackfillReport) { r.Skipped++ }); return nil }
	switch strAttr(it, attrEntity) {
	case entityComm:
		c, err := decodeComm(it)
		if err != nil {
			return err
		}
		*rows = lastRow{pk: pk, row: c, found: true}
		ttl := b.s.rowTTL(c)
		if ttl == 0 {
			return skip()
		}
		ok, err := b.set(ctx, BackfillRow, it, ttl, " AND #v = :v AND #st = :st",
			map[string]string{"#v": attrVersion, "#st": "status"},
			map[string]types.AttributeValue{":v": num(c.Version), ":st": str(string(c.Status))})
		if !ok {
			// Written since the scan read it: what follows it reads it again.
			*rows = lastRow{}
		}
		return err
	case entityEvent:
		if !strings.HasPrefix(pk, prefixComm) {
			return skip()
		}
		c, found, err := b.row(ctx, pk, rows)
		if err != nil || !found {
			if err == nil {
				return skip()
			}
			return err
		}
		at, err := fromTS(strAttr(it, "at"))
		if err != nil {
			return err
		}
		_, err = b.set(ctx, BackfillEvent, it, b.s.eventTTL(comms.Event{At: at}, c), "", nil, nil)
		return err
	case entityBody:
		c, found, err := b.row(ctx, pk, rows)
		if err != nil || !found || !c.Status.Terminal() {
			if err == nil {
				return skip()
			}
			return err
		}
		_, err = b.set(ctx, BackfillBody, it, b.s.bodyTTL(c), "", nil, nil)
		return err
	case entityPMID:
		company, id := strAttr(it, "company_id"), strAttr(it, "communication_id")
		if company == "" || id == "" {
			return skip()
		}
		c, found, err := b.row(ctx, commPK(company, id), rows)
		if err != nil || !found {
			if err == nil {
				return skip()
			}
			return err
		}
		if ttl := b.s.rowTTL(c); ttl > 0 {
			_, err = b.set(ctx, BackfillMapping, it, ttl, "", nil, nil)
			return err
		}
	}
	return skip()
}

// set gives item it the TTL ttl with an UpdateItem on condition that it
// exists and has no TTL, and extra (names and values added); ok is false
// when the condition failed (counted, not an error).
func (b *backfill) set(ctx context.Context, kind string, it map[string]types.AttributeValue, ttl int64, extra string,
	names map[string]string, values map[string]types.AttributeValue) (ok bool, err error) {
	if ttl <= 0 {
		b.count(func(r *BackfillReport) { r.Skipped++ })
		return true, nil
	}
	if b.opts.DryRun {
		b.count(func(r *BackfillReport) { r.Updated++; r.UpdatedByKind[kind]++ })
		return true, nil
	}
	in := &dynamodb.UpdateItemInput{
		TableName: b.s.table, Key: key(pkOf(it), strAttr(it, AttrSK)),
		UpdateExpression:          aws.String("SET #ttl = :ttl"),
		ConditionExpression:       aws.String("attribute_exists(#pk) AND attribute_not_exists(#ttl)" + extra),
		ExpressionAttributeNames:  map[string]string{"#pk": AttrPK, "#ttl": AttrTTL},
		ExpressionAttributeValues: map[string]types.AttributeValue{":ttl": num(ttl)},
		ReturnConsumedCapacity:    types.ReturnConsumedCapacityTotal,
	}
	for k, v := range names {
		in.ExpressionAttributeNames[k] = v
	}
	for k, v := range values {
		in.ExpressionAttributeValues[k] = v
	}
	if err := b.writes.wait(ctx); err != nil {
		return false, err
	}
	out, err := b.s.api.UpdateItem(ctx, in)
	if _, failed := conditionFailed(err); failed {
		// A failed condition is billed as a write too.
		b.writes.charge(1)
		b.count(func(r *BackfillReport) { r.ConditionalFailures++; r.ConsumedWCU++ })
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("UpdateItem: %w", err)
	}
	b.writes.charge(consumed(out.ConsumedCapacity))
	b.count(func(r *BackfillReport) {
		r.Updated++
		r.UpdatedByKind[kind]++
		r.ConsumedWCU += consumed(out.ConsumedCapacity)
	})
	return true, nil
}

// consumed is the capacity a call reports (TOTAL), or 1 when it reports
// none.
func consumed(cc *types.ConsumedCapacity) float64 {
	if cc == nil || aws.ToFloat64(cc.CapacityUnits) <= 0 {
		return 1
	}
	return aws.ToFloat64(cc.CapacityUnits)
}

// capacityCap paces calls to rate capacity units per second: charge moves
// the moment the next call may start on by units/rate, wait waits for it.
// A nil cap or a rate ≤ 0 never waits.
type capacityCap struct {
	rate float64
	clk  clock.Clock

	mu   sync.Mutex
	next time.Time
}

func newCapacityCap(rate float64, clk clock.Clock) *capacityCap {
	if rate <= 0 {
		return nil
	}
	return &capacityCap{rate: rate, clk: clk}
}

// wait returns once the units charged so far are paid for at the rate, or
// with ctx's error.
func (c *capacityCap) wait(ctx context.Context) error {
	if c == nil {
		return ctx.Err()
	}
	c.mu.Lock()
	at := c.next
	c.mu.Unlock()
	if !at.After(c.clk.Now()) {
		return ctx.Err()
	}
	ring, stop := c.clk.Alarm(at)
	defer stop()
	select {
	case <-ring:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// charge records units consumed now.
func (c *capacityCap) charge(units float64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.clk.Now(); c.next.Before(now) {
		c.next = now
	}
	c.next = c.next.Add(time.Duration(units / c.rate * float64(time.Second)))
}
