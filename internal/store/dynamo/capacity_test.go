package dynamo_test

import (
	"context"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
)

// capMeter is a store client that passes every call to the emulator with
// ReturnConsumedCapacity INDEXES, and prices each call by DynamoDB's
// on-demand rules from the items it really reads and writes:
//
//   - a write of an item (Put, Update, Delete, ConditionCheck) costs one
//     write request unit per started KB of the larger of the item before
//     and after it, twice in a transaction;
//   - each global secondary index whose entry the write creates, deletes,
//     moves (key changed: a delete and a put) or changes (a projected
//     attribute changed) costs one unit per started KB of the entry, by the
//     index's projection as dynamo.TableInput declares it; a write that
//     changes nothing the index projects costs it nothing;
//   - a strongly consistent read costs one read request unit per started
//     4 KB of each item (GetItem, BatchGetItem) or of the items a Query
//     returns together, an eventually consistent one half; a GetItem that
//     finds nothing costs the minimum.
//
// Why not take moto's figures: moto 5.2.5 answers ReturnConsumedCapacity
// with a constant (1.0 for any write, 0.5 for any read, whatever the size),
// no index figures, and nothing at all for TransactWriteItems. The meter
// keeps what moto reported (reported) beside its own figures to show it.
// Item sizes follow the DynamoDB developer guide ("Item sizes and
// formats"), as itemSize does.
type capMeter struct {
	dynamo.API
	raw dynamo.API
	tbl string

	mu       sync.Mutex
	calls    map[string]int // by operation
	wruTable float64
	wruIndex map[string]float64
	rru      float64
	reported float64 // the sum of what moto reported as consumed
	items    int     // items written
}

func newCapMeter(raw dynamo.API, table string) *capMeter {
	m := &capMeter{API: raw, raw: raw, tbl: table}
	m.reset()
	return m
}

func (m *capMeter) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls, m.wruIndex = map[string]int{}, map[string]float64{}
	m.wruTable, m.rru, m.reported, m.items = 0, 0, 0, 0
}

// usage is what a step of a lifecycle cost.
type usage struct {
	Calls              map[string]int
	WRUTable, WRUIndex float64
	WRUByIndex         map[string]float64
	RRU                float64
	Reported           float64
	Items              int
}

func (u usage) WRU() float64 { return u.WRUTable + u.WRUIndex }

func (u usage) NCalls() int {
	n := 0
	for _, c := range u.Calls {
		n += c
	}
	return n
}

func (u *usage) add(v usage) {
	if u.Calls == nil {
		u.Calls, u.WRUByIndex = map[string]int{}, map[string]float64{}
	}
	for k, c := range v.Calls {
		u.Calls[k] += c
	}
	for k, c := range v.WRUByIndex {
		u.WRUByIndex[k] += c
	}
	u.WRUTable += v.WRUTable
	u.WRUIndex += v.WRUIndex
	u.RRU += v.RRU
	u.Reported += v.Reported
	u.Items += v.Items
}

// take returns what was used since the last take and starts again.
func (m *capMeter) take() usage {
	m.mu.Lock()
	u := usage{Calls: maps.Clone(m.calls), WRUTable: m.wruTable, WRUByIndex: maps.Clone(m.wruIndex), RRU: m.rru, Reported: m.reported, Items: m.items}
	for _, v := range m.wruIndex {
		u.WRUIndex += v
	}
	m.mu.Unlock()
	m.reset()
	return u
}

func (m *capMeter) count(op string, cc ...types.ConsumedCapacity) {
	m.calls[op]++
	for _, c := range cc {
		m.reported += aws.ToFloat64(c.CapacityUnits)
	}
}

func readUnits(size int, consistent bool) float64 {
	u := math.Max(1, math.Ceil(float64(size)/4096))
	if !consistent {
		u /= 2
	}
	return u
}

func (m *capMeter) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityIndexes
	out, err := m.raw.GetItem(ctx, in, o...)
	if err == nil {
		m.mu.Lock()
		m.count("GetItem", ptrs(out.ConsumedCapacity)...)
		m.rru += readUnits(itemSize(out.Item), aws.ToBool(in.ConsistentRead))
		m.mu.Unlock()
	}
	return out, err
}

func (m *capMeter) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityIndexes
	out, err := m.raw.BatchGetItem(ctx, in, o...)
	if err == nil {
		m.mu.Lock()
		m.count("BatchGetItem", out.ConsumedCapacity...)
		for table, items := range out.Responses {
			consistent := aws.ToBool(in.RequestItems[table].ConsistentRead)
			for _, it := range items {
				m.rru += readUnits(itemSize(it), consistent)
			}
		}
		m.mu.Unlock()
	}
	return out, err
}

func (m *capMeter) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityIndexes
	out, err := m.raw.Query(ctx, in, o...)
	if err == nil {
		m.mu.Lock()
		m.count("Query", ptrs(out.ConsumedCapacity)...)
		size := 0
		for _, it := range out.Items {
			size += itemSize(it)
		}
		// A Query with a FilterExpression is billed for what it examined,
		// which the response does not show: none of the lifecycles filters.
		m.rru += readUnits(size, aws.ToBool(in.ConsistentRead))
		m.mu.Unlock()
	}
	return out, err
}

func ptrs(c *types.ConsumedCapacity) []types.ConsumedCapacity {
	if c == nil {
		return nil
	}
	return []types.ConsumedCapacity{*c}
}

// image reads an item as it is now, outside the counts.
func (m *capMeter) image(ctx context.Context, k map[string]types.AttributeValue) map[string]types.AttributeValue {
	out, err := m.raw.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(m.tbl), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{dynamo.AttrPK: k[dynamo.AttrPK], dynamo.AttrSK: k[dynamo.AttrSK]}})
	if err != nil {
		panic(fmt.Sprintf("capMeter: reading an image: %v", err))
	}
	return out.Item
}

// written prices the write of one item from its images before and after.
func (m *capMeter) written(before, after map[string]types.AttributeValue, transactional bool) {
	m.items++
	f := 1.0
	if transactional {
		f = 2
	}
	m.wruTable += f * math.Max(1, units(max(itemSize(before), itemSize(after))))
	for _, gsi := range dynamo.TableInput(m.tbl).GlobalSecondaryIndexes {
		name := aws.ToString(gsi.IndexName)
		b, a := indexEntry(gsi, before), indexEntry(gsi, after)
		pk, sk := aws.ToString(gsi.KeySchema[0].AttributeName), aws.ToString(gsi.KeySchema[1].AttributeName)
		var u float64
		switch {
		case b == nil && a == nil:
		case b == nil:
			u = units(itemSize(a))
		case a == nil:
			u = units(itemSize(b))
		case !reflect.DeepEqual(b[pk], a[pk]) || !reflect.DeepEqual(b[sk], a[sk]):
			u = units(itemSize(b)) + units(itemSize(a))
		case !reflect.DeepEqual(b, a):
			u = units(max(itemSize(b), itemSize(a)))
		}
		m.wruIndex[name] += u
	}
}

// indexEntry is the entry item has in gsi (nil: none, the index is sparse).
func indexEntry(gsi types.GlobalSecondaryIndex, item map[string]types.AttributeValue) map[string]types.AttributeValue {
	pk, sk := aws.ToString(gsi.KeySchema[0].AttributeName), aws.ToString(gsi.KeySchema[1].AttributeName)
	if item == nil || item[pk] == nil || item[sk] == nil {
		return nil
	}
	if gsi.Projection.ProjectionType == types.ProjectionTypeAll {
		return item
	}
	keep := []string{dynamo.AttrPK, dynamo.AttrSK, pk, sk}
	if gsi.Projection.ProjectionType == types.ProjectionTypeInclude {
		keep = append(keep, gsi.Projection.NonKeyAttributes...)
	}
	e := map[string]types.AttributeValue{}
	for _, k := range keep {
		if v, ok := item[k]; ok {
			e[k] = v
		}
	}
	return e
}

func (m *capMeter) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityIndexes
	before := m.image(ctx, in.Item)
	out, err := m.raw.PutItem(ctx, in, o...)
	if err == nil {
		m.mu.Lock()
		m.count("PutItem", ptrs(out.ConsumedCapacity)...)
		m.written(before, in.Item, false)
		m.mu.Unlock()
	}
	return out, err
}

func (m *capMeter) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityIndexes
	before := m.image(ctx, in.Key)
	out, err := m.raw.UpdateItem(ctx, in, o...)
	if err == nil {
		after := m.image(ctx, in.Key)
		m.mu.Lock()
		m.count("UpdateItem", ptrs(out.ConsumedCapacity)...)
		m.written(before, after, false)
		m.mu.Unlock()
	}
	return out, err
}

func (m *capMeter) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityIndexes
	before := m.image(ctx, in.Key)
	out, err := m.raw.DeleteItem(ctx, in, o...)
	if err == nil {
		m.mu.Lock()
		m.count("DeleteItem", ptrs(out.ConsumedCapacity)...)
		m.written(before, nil, false)
		m.mu.Unlock()
	}
	return out, err
}

func (m *capMeter) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityIndexes
	keys := make([]map[string]types.AttributeValue, len(in.TransactItems))
	befores := make([]map[string]types.AttributeValue, len(in.TransactItems))
	for i, it := range in.TransactItems {
		switch {
		case it.Put != nil:
			keys[i] = it.Put.Item
		case it.Update != nil:
			keys[i] = it.Update.Key
		case it.Delete != nil:
			keys[i] = it.Delete.Key
		case it.ConditionCheck != nil:
			keys[i] = it.ConditionCheck.Key
		}
		befores[i] = m.image(ctx, keys[i])
	}
	out, err := m.raw.TransactWriteItems(ctx, in, o...)
	if err == nil {
		afters := make([]map[string]types.AttributeValue, len(keys))
		for i, k := range keys {
			afters[i] = m.image(ctx, k)
		}
		m.mu.Lock()
		m.count("TransactWriteItems", out.ConsumedCapacity...)
		for i := range keys {
			m.written(befores[i], afters[i], true)
		}
		m.mu.Unlock()
	}
	return out, err
}

// describe is one line per operation: "GetItem 3, TransactWriteItems 2".
func (u usage) describe() string {
	ops := slices.Collect(maps.Keys(u.Calls))
	sort.Strings(ops)
	var b strings.Builder
	for i, op := range ops {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", op, u.Calls[op])
	}
	return b.String()
}
