package dynamo_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
)

// pks returns the partition keys of a transaction's items, in order.
func pks(in *dynamodb.TransactWriteItemsInput) []string {
	var out []string
	for _, it := range in.TransactItems {
		var k map[string]types.AttributeValue
		switch {
		case it.Put != nil:
			k = it.Put.Item
		case it.Update != nil:
			k = it.Update.Key
		case it.Delete != nil:
			k = it.Delete.Key
		case it.ConditionCheck != nil:
			k = it.ConditionCheck.Key
		}
		out = append(out, k[dynamo.AttrPK].(*types.AttributeValueMemberS).Value)
	}
	return out
}

func countPrefix(keys []string, prefix string) int {
	n := 0
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}

// TestUpdateCommunicationWritesTheMapAndSuppressions: the transition that
// sends a row puts its provider message id's map in the row's transaction,
// later ones do not, and a Change's suppressions are one Put per key.
func TestUpdateCommunicationWritesTheMapAndSuppressions(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var last *dynamodb.TransactWriteItemsInput
	f := &fakeAPI{t: t}
	f.transact = func(in *dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
		last = in
		return &dynamodb.TransactWriteItemsOutput{}, nil
	}
	s := dynamo.New(f, "tbl")
	row := row().Row
	row.Payload = []byte(`{"to_email":"ada@example.com","cc":["bob@example.com"]}`)
	claim, err := comms.Claim(row, now.Add(2*time.Minute), now)
	requireNoErr(t, err)
	stored, _, err := s.UpdateCommunication(t.Context(), claim, false)
	requireNoErr(t, err)
	if n := countPrefix(pks(last), "PMID#"); n != 0 {
		t.Fatalf("a claim wrote %d message id maps", n)
	}
	sent, err := comms.RecordSent(stored, "ses-1", now.Add(time.Second))
	requireNoErr(t, err)
	stored, _, err = s.UpdateCommunication(t.Context(), sent, false)
	requireNoErr(t, err)
	if keys := pks(last); countPrefix(keys, "PMID#ses-1") != 1 || keys[0] != "COMM#co_1#r1" {
		t.Fatalf("record sent wrote %v, want the row first and one PMID#ses-1", keys)
	}
	bounce, err := comms.RecordDelivery(stored, comms.DeliveryReport{Status: comms.DeliveryBounced, ProviderMessageID: "ses-1",
		Recipients: []string{"Ada@Example.com", "ada@example.com", "bob@example.com"}, Suppress: comms.SuppressBounce}, now.Add(time.Minute))
	requireNoErr(t, err)
	_, _, err = s.UpdateCommunication(t.Context(), bounce, false)
	requireNoErr(t, err)
	keys := pks(last)
	if countPrefix(keys, "PMID#") != 0 || countPrefix(keys, "SUPP#co_1") != 2 {
		t.Fatalf("a bounce of two addresses (one given twice) wrote %v, want 2 suppressions and no map", keys)
	}
}

func TestPutPhoneNumberTranslatesCancellationReasons(t *testing.T) {
	t.Parallel()
	p := comms.PhoneNumber{ID: "p1", CompanyID: "co_1", E164: "+61400000001"}
	absent := func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) { return &dynamodb.GetItemOutput{}, nil }
	for _, tc := range []struct {
		name      string
		codes     []string
		want      error
		transacts int
	}{
		{"Taken", []string{none, none, ccf}, comms.ErrPhoneNumberTaken, 1},
		{"NoCompany", []string{none, ccf, none}, comms.ErrNotFound, 1},
		{"ResourceMoved", []string{ccf, none, none}, nil, 2},
	} {
		f := &fakeAPI{t: t, get: absent}
		f.transact = func(in *dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
			if keys := pks(in); len(keys) != 3 || keys[2] != "PHONE#+61400000001" {
				t.Fatalf("%s: transaction of %v", tc.name, keys)
			}
			if f.transacts == 1 {
				return nil, cancelled(tc.codes)
			}
			return &dynamodb.TransactWriteItemsOutput{}, nil
		}
		err := dynamo.New(f, "tbl").PutPhoneNumber(t.Context(), p)
		if tc.want == nil {
			requireNoErr(t, err)
		} else {
			requireIs(t, err, tc.want, "PutPhoneNumber")
		}
		if f.transacts != tc.transacts {
			t.Fatalf("%s: %d transactions, want %d", tc.name, f.transacts, tc.transacts)
		}
	}
}
