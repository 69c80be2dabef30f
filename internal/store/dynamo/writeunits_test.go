package dynamo_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dispatcherhq/dispatcher/internal/awstest"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
)

// itemSize is an item's size as DynamoDB bills it ("Item sizes and
// formats", DynamoDB developer guide): attribute names plus values —
// strings and binaries their byte length, numbers about one byte per two
// digits plus one, booleans and nulls one byte, maps and lists 3 bytes plus
// one per element plus their contents.
func itemSize(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return (len(strings.TrimLeft(v.Value, "-0"))+1)/2 + 1
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberM:
		return 3 + len(v.Value) + itemSize(v.Value)
	case *types.AttributeValueMemberL:
		n := 3 + len(v.Value)
		for _, e := range v.Value {
			n += valueSize(e)
		}
		return n
	}
	return 0
}

func units(size int) float64 { return math.Ceil(float64(size) / 1024) }

// meter is a store client that passes every call to the emulator and
// counts the write units each write of an item costs: the table write
// (transactional writes cost twice), and each index entry it writes or
// deletes (an entry whose key changed is a delete and a put).
type meter struct {
	dynamo.API
	mu    sync.Mutex
	last  map[string]map[string]types.AttributeValue
	calls int
	table float64 // table write units
	index float64 // index write units
	items int
	// legacy counts what the store wrote before events: no event items
	// (nor the provider message id's mapping, which came later still), and
	// a lone row write (claim, record) as a PutItem, not a transaction.
	legacy bool
}

func (m *meter) write(item map[string]types.AttributeValue, transactional bool) {
	key := fmt.Sprint(item[dynamo.AttrPK], item[dynamo.AttrSK])
	prev := m.last[key]
	m.last[key] = item
	m.items++
	f := 1.0
	if transactional {
		f = 2
	}
	m.table += f * units(itemSize(item))
	for _, gsi := range dynamo.TableInput("").GlobalSecondaryIndexes {
		pk, sk := aws.ToString(gsi.KeySchema[0].AttributeName), aws.ToString(gsi.KeySchema[1].AttributeName)
		had, has := prev[pk] != nil, item[pk] != nil
		if had && (!has || fmt.Sprint(prev[sk], prev[pk]) != fmt.Sprint(item[sk], item[pk])) {
			m.index++ // the old entry is deleted
		}
		if has {
			m.index += units(itemSize(indexEntry(gsi, item)))
		}
	}
}

func (m *meter) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	out, err := m.API.PutItem(ctx, in, o...)
	if err == nil {
		m.mu.Lock()
		m.calls++
		m.write(in.Item, false)
		m.mu.Unlock()
	}
	return out, err
}

func (m *meter) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	out, err := m.API.TransactWriteItems(ctx, in, o...)
	if err == nil {
		m.mu.Lock()
		m.calls++
		// Before events only a debiting write was a transaction.
		debit := slices.ContainsFunc(in.TransactItems, func(it types.TransactWriteItem) bool { return it.Update != nil })
		for _, it := range in.TransactItems {
			switch {
			case it.Put != nil && m.legacy && (isEntity(it.Put.Item, "event") || isEntity(it.Put.Item, "provider_message_id")):
			case it.Put != nil:
				m.write(it.Put.Item, !m.legacy || debit)
			case it.Update != nil: // the company's balance: a small item
				m.items++
				m.table += 2
			}
		}
		m.mu.Unlock()
	}
	return out, err
}

func isEntity(item map[string]types.AttributeValue, entity string) bool {
	e, ok := item["entity"].(*types.AttributeValueMemberS)
	return ok && e.Value == entity
}

// TestWriteUnitsPerEmailLifecycle measures what one email costs in
// DynamoDB write units from create to sent, from the items the store really
// writes (run with -v for the figures BENCHMARKS.md quotes). The bound is
// what the design pays for events: every transition is a transaction of the
// row and its event. (The record write also puts the provider message id's
// mapping, one small item: 2 WCU.)
func TestWriteUnitsPerEmailLifecycle(t *testing.T) {
	client := newClient(t)
	m := &meter{API: client, last: map[string]map[string]types.AttributeValue{}}
	table := awstest.Unique(t, "writeunits")
	requireNoErr(t, dynamo.CreateTable(t.Context(), client, table))
	t.Cleanup(func() { dropTable(t, client, table) })
	s := dynamo.New(m, table)
	ctx := t.Context()
	co := "co_writeunits"
	requireNoErr(t, s.CreateCompany(ctx, comms.Company{ID: co, Credits: 10, Settings: comms.DefaultSettings(), CreatedAt: time.Unix(0, 0)}))
	var before float64
	for i, body := range []struct {
		name   string
		html   string
		legacy bool
	}{
		{"1 KB html, before events", strings.Repeat("x", 1000), true}, {"1 KB html, with events", strings.Repeat("x", 1000), false},
		{"20 KB html, before events", strings.Repeat("x", 20_000), true}, {"20 KB html, with events", strings.Repeat("x", 20_000), false},
	} {
		m.table, m.index, m.items, m.calls, m.legacy = 0, 0, 0, 0, body.legacy
		now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		row := comms.Communication{ID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", CompanyID: co, Channel: comms.ChannelEmail,
			ScheduledFor: now.Add(24 * time.Hour), NextAttemptAt: now.Add(24 * time.Hour), Timezone: "Australia/Sydney", MaxAttempts: 3, Source: comms.SourceAPI,
			Payload: []byte(`{"to_email":"sarah@example.com","subject":"Following up","html_body":"` + body.html + `"}`)}
		row.ID = row.ID[:len(row.ID)-1] + fmt.Sprint(i)
		ch := comms.Create(row, now)
		_, err := s.CreateCommunication(ctx, ch, nil)
		requireNoErr(t, err)
		stored := ch.Row
		stored.Version = 1
		at := now.Add(24 * time.Hour)
		claim, err := comms.Claim(stored, at.Add(2*time.Minute), at)
		requireNoErr(t, err)
		stored, _, err = s.UpdateCommunication(ctx, claim, false)
		requireNoErr(t, err)
		sent, err := comms.RecordSent(stored, "ses-1", at.Add(300*time.Millisecond))
		requireNoErr(t, err)
		stored, _, err = s.UpdateCommunication(ctx, sent, false)
		requireNoErr(t, err)
		total, calls := m.table+m.index, m.calls
		t.Logf("email lifecycle, %s: %d write calls, %d items, %.0f table WCU + %.0f index WCU = %.0f WCU",
			body.name, m.calls, m.items, m.table, m.index, total)
		if !body.legacy {
			// What SES's DELIVERY report then costs (the row and its event).
			m.table, m.index, m.items, m.calls = 0, 0, 0, 0
			delivered, err := comms.RecordDelivery(stored, comms.DeliveryReport{Status: comms.DeliveryDelivered, Attempt: 1,
				ProviderMessageID: "ses-1", At: at.Add(time.Second), Recipients: []string{"sarah@example.com"}}, at.Add(2*time.Second))
			requireNoErr(t, err)
			_, _, err = s.UpdateCommunication(ctx, delivered, false)
			requireNoErr(t, err)
			t.Logf("delivery report (delivered), %s: %d write calls, %d items, %.0f table WCU + %.0f index WCU = %.0f WCU",
				body.name, m.calls, m.items, m.table, m.index, m.table+m.index)
		}
		if body.legacy {
			before = total
		} else if total > 2*before {
			t.Errorf("%s: %.0f WCU, more than twice the %.0f of the same lifecycle without events", body.name, total, before)
		}
		want := 3 // create, claim, record
		if len(row.Payload) > dynamo.InlinePayloadMax {
			want++ // the payload's own item, put before the create (issue 14)
		}
		if calls != want {
			t.Errorf("%s: %d write calls, want %d", body.name, calls, want)
		}
	}
}

func requireNoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
