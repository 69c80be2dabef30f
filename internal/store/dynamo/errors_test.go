package dynamo_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
)

// fakeAPI is a hand-written dynamo.API: each method calls its function, or
// fails the test when the code under test should not have called it.
type fakeAPI struct {
	t        *testing.T
	get      func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error)
	put      func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error)
	update   func(*dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error)
	del      func(*dynamodb.DeleteItemInput) (*dynamodb.DeleteItemOutput, error)
	query    func(*dynamodb.QueryInput) (*dynamodb.QueryOutput, error)
	batchGet func(*dynamodb.BatchGetItemInput) (*dynamodb.BatchGetItemOutput, error)
	transact func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error)
	// transacts counts TransactWriteItems calls.
	transacts int
}

var _ dynamo.API = (*fakeAPI)(nil)

func (f *fakeAPI) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if f.get == nil {
		f.t.Fatalf("unexpected GetItem %v", in.Key)
	}
	return f.get(in)
}

func (f *fakeAPI) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	if f.batchGet == nil {
		f.t.Fatal("unexpected BatchGetItem")
	}
	return f.batchGet(in)
}

func (f *fakeAPI) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if f.put == nil {
		f.t.Fatal("unexpected PutItem")
	}
	return f.put(in)
}

func (f *fakeAPI) UpdateItem(_ context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if f.update == nil {
		f.t.Fatal("unexpected UpdateItem")
	}
	return f.update(in)
}

func (f *fakeAPI) DeleteItem(_ context.Context, in *dynamodb.DeleteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	if f.del == nil {
		f.t.Fatal("unexpected DeleteItem")
	}
	return f.del(in)
}

func (f *fakeAPI) Query(_ context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if f.query == nil {
		f.t.Fatal("unexpected Query")
	}
	return f.query(in)
}

func (f *fakeAPI) TransactWriteItems(_ context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	f.transacts++
	if f.transact == nil {
		f.t.Fatal("unexpected TransactWriteItems")
	}
	return f.transact(in)
}

// balance answers GetItem of a company with credits, and of anything else
// (an idempotency record, a row) with other.
func balance(credits int64, other map[string]types.AttributeValue) func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
	return func(in *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
		if pk := in.Key[dynamo.AttrPK].(*types.AttributeValueMemberS).Value; strings.HasPrefix(pk, "COMPANY#") {
			return &dynamodb.GetItemOutput{Item: map[string]types.AttributeValue{
				"credits": &types.AttributeValueMemberN{Value: strconv.FormatInt(credits, 10)},
			}}, nil
		}
		return &dynamodb.GetItemOutput{Item: other}, nil
	}
}

// cancelled is a TransactionCanceledException with one reason per code;
// items[i], when given, is the old image of item i.
func cancelled(codes []string, items ...map[string]types.AttributeValue) error {
	e := &types.TransactionCanceledException{Message: aws.String("Transaction cancelled")}
	for i, c := range codes {
		r := types.CancellationReason{Code: aws.String(c)}
		if i < len(items) {
			r.Item = items[i]
		}
		e.CancellationReasons = append(e.CancellationReasons, r)
	}
	return e
}

const (
	none = "None"
	ccf  = "ConditionalCheckFailed"
)

func row() comms.Change {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	return comms.Change{Row: comms.Communication{
		ID: "r1", CompanyID: "co_1", Channel: comms.ChannelEmail, Status: comms.StatusPending,
		ScheduledFor: now, NextAttemptAt: now, Source: comms.SourceAPI, CreatedAt: now, UpdatedAt: now, Version: 1,
	}}
}

func idem() *comms.Idempotency {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	return &comms.Idempotency{CompanyID: "co_1", Key: "k", RequestHash: "h", CommunicationID: "r1",
		CreatedAt: now, ExpiresAt: now.Add(comms.IdempotencyTTL)}
}

var oldRow = map[string]types.AttributeValue{"version": &types.AttributeValueMemberN{Value: "2"}}

func requireIs(t *testing.T, err, target error, method string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
	if !strings.HasPrefix(err.Error(), "dynamo."+method+": ") {
		t.Fatalf("error %q is not wrapped with dynamo.%s", err, method)
	}
}

func TestCreateCommunicationTranslatesCancellationReasons(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		codes []string
		want  error
	}{
		{"RowExists", []string{ccf, none, none}, comms.ErrAlreadyExists},
		{"IdempotencyKeyLive", []string{none, none, ccf}, comms.ErrIdempotencyKeyExists},
		{"IdempotencyWinsOverRow", []string{ccf, none, ccf}, comms.ErrIdempotencyKeyExists},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeAPI{t: t, get: balance(5, nil)}
			f.transact = func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
				return nil, cancelled(tc.codes)
			}
			_, err := dynamo.New(f, "tbl").CreateCommunication(t.Context(), row(), idem())
			requireIs(t, err, tc.want, "CreateCommunication")
			if f.transacts != 1 {
				t.Fatalf("%d transactions, want 1 (no retry)", f.transacts)
			}
		})
	}
}

func TestCreateCommunicationDebitsExactlyTheBalanceItRead(t *testing.T) {
	t.Parallel()
	f := &fakeAPI{t: t, get: balance(7, nil)}
	f.transact = func(in *dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
		debit := in.TransactItems[1].Update
		if got := *debit.ConditionExpression; got != "#credits = :seen" {
			t.Errorf("debit condition = %q", got)
		}
		if seen := debit.ExpressionAttributeValues[":seen"].(*types.AttributeValueMemberN).Value; seen != "7" {
			t.Errorf(":seen = %s, want 7", seen)
		}
		if next := debit.ExpressionAttributeValues[":next"].(*types.AttributeValueMemberN).Value; next != "6" {
			t.Errorf(":next = %s, want 6", next)
		}
		rec := in.TransactItems[2].Put.Item
		if got := rec["credits_remaining"].(*types.AttributeValueMemberN).Value; got != "6" {
			t.Errorf("recorded credits_remaining = %s, want 6", got)
		}
		if _, ok := rec[dynamo.AttrTTL].(*types.AttributeValueMemberN); !ok {
			t.Errorf("idempotency record without a numeric %s", dynamo.AttrTTL)
		}
		return &dynamodb.TransactWriteItemsOutput{}, nil
	}
	rec := idem()
	credits, err := dynamo.New(f, "tbl").CreateCommunication(t.Context(), row(), rec)
	if err != nil || credits != 6 || rec.CreditsRemaining != 6 {
		t.Fatalf("credits %d, record %d, err %v; want 6", credits, rec.CreditsRemaining, err)
	}
}

func TestCreateCommunicationRetriesWhenTheBalanceMoved(t *testing.T) {
	t.Parallel()
	credits := int64(9)
	f := &fakeAPI{t: t}
	f.get = func(in *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) { return balance(credits, nil)(in) }
	f.transact = func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
		switch f.transacts {
		case 1: // another debit won meanwhile
			credits = 8
			return nil, cancelled([]string{none, ccf})
		case 2: // DynamoDB saw a concurrent transaction on an item
			return nil, cancelled([]string{none, "TransactionConflict"})
		}
		return &dynamodb.TransactWriteItemsOutput{}, nil
	}
	got, err := dynamo.New(f, "tbl").CreateCommunication(t.Context(), row(), nil)
	if err != nil || got != 7 || f.transacts != 3 {
		t.Fatalf("credits %d, err %v after %d transactions; want 7 after 3", got, err, f.transacts)
	}
}

func TestCreateCommunicationGivesUpWithConflict(t *testing.T) {
	t.Parallel()
	f := &fakeAPI{t: t, get: balance(3, nil)}
	f.transact = func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
		return nil, cancelled([]string{none, ccf})
	}
	_, err := dynamo.New(f, "tbl").CreateCommunication(t.Context(), row(), nil)
	requireIs(t, err, comms.ErrConflict, "CreateCommunication")
	if f.transacts != 10 {
		t.Fatalf("%d attempts, want 10", f.transacts)
	}
}

func TestCreateCommunicationWithoutCreditsOrCompany(t *testing.T) {
	t.Parallel()
	t.Run("NoCredits", func(t *testing.T) {
		t.Parallel()
		f := &fakeAPI{t: t, get: balance(0, nil)}
		_, err := dynamo.New(f, "tbl").CreateCommunication(t.Context(), row(), idem())
		requireIs(t, err, comms.ErrInsufficientCredits, "CreateCommunication")
	})
	t.Run("NoCreditsButALiveKey", func(t *testing.T) {
		t.Parallel()
		live := map[string]types.AttributeValue{
			"key":        &types.AttributeValueMemberS{Value: "k"},
			"expires_at": &types.AttributeValueMemberS{Value: "2999-01-01T00:00:00.000000000Z"},
			"created_at": &types.AttributeValueMemberS{Value: "2026-05-01T12:00:00.000000000Z"},
		}
		f := &fakeAPI{t: t, get: balance(0, live)}
		_, err := dynamo.New(f, "tbl").CreateCommunication(t.Context(), row(), idem())
		requireIs(t, err, comms.ErrIdempotencyKeyExists, "CreateCommunication")
	})
	t.Run("CompanyGoneBetweenReadAndCommit", func(t *testing.T) {
		t.Parallel()
		f := &fakeAPI{t: t}
		f.get = func(in *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
			if f.transacts == 0 {
				return balance(4, nil)(in)
			}
			return &dynamodb.GetItemOutput{}, nil
		}
		f.transact = func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
			return nil, cancelled([]string{none, ccf})
		}
		_, err := dynamo.New(f, "tbl").CreateCommunication(t.Context(), row(), nil)
		requireIs(t, err, comms.ErrNotFound, "CreateCommunication")
	})
}

func TestUpdateCommunicationTranslatesFailedConditions(t *testing.T) {
	t.Parallel()
	t.Run("WithoutDebit", func(t *testing.T) {
		t.Parallel()
		withInsert := row()
		ins := row()
		ins.Row.ID = "r2"
		withInsert.Insert = &ins
		for _, tc := range []struct {
			name   string
			change comms.Change
			err    error
			want   error
		}{
			{"StaleVersion", row(), cancelled([]string{ccf}, oldRow), comms.ErrConflict},
			{"Absent", row(), cancelled([]string{ccf}), comms.ErrNotFound},
			{"InATransaction", row(), &types.TransactionConflictException{}, comms.ErrConflict},
			{"InsertTaken", withInsert, cancelled([]string{none, ccf}), comms.ErrAlreadyExists},
		} {
			f := &fakeAPI{t: t}
			f.transact = func(in *dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
				if in.TransactItems[0].Put.ReturnValuesOnConditionCheckFailure != types.ReturnValuesOnConditionCheckFailureAllOld {
					t.Errorf("%s: the row's Put does not ask for the old image", tc.name)
				}
				return nil, tc.err
			}
			_, _, err := dynamo.New(f, "tbl").UpdateCommunication(t.Context(), tc.change, false)
			requireIs(t, err, tc.want, "UpdateCommunication")
		}
	})
	t.Run("WithDebit", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name string
			err  error
			want error
		}{
			{"StaleVersion", cancelled([]string{ccf, none}, oldRow), comms.ErrConflict},
			{"Absent", cancelled([]string{ccf, none}), comms.ErrNotFound},
		} {
			f := &fakeAPI{t: t, get: balance(2, nil)}
			f.transact = func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
				return nil, tc.err
			}
			_, _, err := dynamo.New(f, "tbl").UpdateCommunication(t.Context(), row(), true)
			requireIs(t, err, tc.want, "UpdateCommunication")
		}
	})
	t.Run("WithDebitAtZero", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name   string
			stored map[string]types.AttributeValue
			want   error
		}{
			{"Current", map[string]types.AttributeValue{"version": &types.AttributeValueMemberN{Value: "1"}}, comms.ErrInsufficientCredits},
			{"Stale", oldRow, comms.ErrConflict},
			{"Absent", nil, comms.ErrNotFound},
		} {
			f := &fakeAPI{t: t, get: balance(0, tc.stored)}
			_, _, err := dynamo.New(f, "tbl").UpdateCommunication(t.Context(), row(), true)
			requireIs(t, err, tc.want, "UpdateCommunication")
		}
	})
}

func TestSingleItemConditionsAndKeys(t *testing.T) {
	t.Parallel()
	failed := &types.ConditionalCheckFailedException{}
	f := &fakeAPI{t: t}
	f.put = func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) { return nil, failed }
	f.update = func(*dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) { return nil, failed }
	f.del = func(*dynamodb.DeleteItemInput) (*dynamodb.DeleteItemOutput, error) { return nil, failed }
	// Phone numbers are read before they are written (their claims).
	f.get = func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) { return &dynamodb.GetItemOutput{}, nil }
	s := dynamo.New(f, "tbl")
	ctx := t.Context()
	requireIs(t, s.CreateCompany(ctx, comms.Company{ID: "co_1"}), comms.ErrAlreadyExists, "CreateCompany")
	requireIs(t, s.PutSettings(ctx, "co_1", comms.Settings{}), comms.ErrNotFound, "PutSettings")
	requireIs(t, s.DeletePhoneNumber(ctx, "co_1", "p"), comms.ErrNotFound, "DeletePhoneNumber")
	requireIs(t, s.DeleteVoiceAgent(ctx, "co_1", "a"), comms.ErrNotFound, "DeleteVoiceAgent")

	for _, tc := range []struct {
		codes []string
		want  error
	}{
		{[]string{ccf, none, none, none}, comms.ErrAlreadyExists}, // hash taken
		{[]string{none, ccf, none, none}, comms.ErrAlreadyExists}, // id taken
		{[]string{none, none, none, ccf}, comms.ErrNotFound},      // no company
	} {
		f.transact = func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
			return nil, cancelled(tc.codes)
		}
		requireIs(t, s.CreateAPIKey(ctx, comms.APIKey{ID: "k", CompanyID: "co_1", Hash: "h"}), tc.want, "CreateAPIKey")
	}
	f.transact = func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
		return nil, cancelled([]string{none, ccf})
	}
	requireIs(t, s.PutPhoneNumber(ctx, comms.PhoneNumber{ID: "p", CompanyID: "co_1"}), comms.ErrNotFound, "PutPhoneNumber")
	requireIs(t, s.PutVoiceAgent(ctx, comms.VoiceAgent{ID: "a", CompanyID: "co_1"}), comms.ErrNotFound, "PutVoiceAgent")
}

func TestOtherErrorsPassThroughWrapped(t *testing.T) {
	t.Parallel()
	throttled := &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}
	f := &fakeAPI{t: t}
	f.get = func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) { return nil, throttled }
	f.query = func(*dynamodb.QueryInput) (*dynamodb.QueryOutput, error) { return nil, throttled }
	f.transact = func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
		return nil, throttled
	}
	s := dynamo.New(f, "tbl")
	ctx := t.Context()
	check := func(method string, err error) {
		t.Helper()
		var pte *types.ProvisionedThroughputExceededException
		if !errors.As(err, &pte) {
			t.Fatalf("%s: error = %v, want the throttling error", method, err)
		}
		for _, sentinel := range []error{comms.ErrNotFound, comms.ErrConflict, comms.ErrAlreadyExists, comms.ErrInsufficientCredits} {
			if errors.Is(err, sentinel) {
				t.Fatalf("%s: throttling became %v", method, sentinel)
			}
		}
		if !strings.HasPrefix(err.Error(), "dynamo."+method+": ") {
			t.Fatalf("error %q is not wrapped with dynamo.%s", err, method)
		}
	}
	_, err := s.GetCompany(ctx, "co_1")
	check("GetCompany", err)
	_, err = s.GetCommunication(ctx, "co_1", "r1")
	check("GetCommunication", err)
	_, err = s.CreateCommunication(ctx, row(), nil)
	check("CreateCommunication", err)
	_, _, err = s.ListCommunications(ctx, "co_1", comms.ListFilter{Limit: 10})
	check("ListCommunications", err)
	_, err = s.DueCommunications(ctx, time.Now(), 10)
	check("DueCommunications", err)

	// Throttling inside a transaction (after the SDK's own retries) too.
	f.get = balance(5, nil)
	_, err = s.CreateCommunication(ctx, row(), nil)
	check("CreateCommunication", err)
}

func TestMissingTableIsNotAMissingRow(t *testing.T) {
	t.Parallel()
	f := &fakeAPI{t: t}
	f.query = func(*dynamodb.QueryInput) (*dynamodb.QueryOutput, error) { // a row and its body are one Query
		return nil, &types.ResourceNotFoundException{Message: aws.String("Requested resource not found")}
	}
	_, err := dynamo.New(f, "tbl").GetCommunication(t.Context(), "co_1", "r1")
	if err == nil || errors.Is(err, comms.ErrNotFound) {
		t.Fatalf("error = %v, want a missing-table error that is not comms.ErrNotFound", err)
	}
}

func TestCreateCommunicationGivesUpWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	f := &fakeAPI{t: t, get: balance(3, nil)}
	f.transact = func(*dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
		cancel()
		return nil, cancelled([]string{none, ccf})
	}
	_, err := dynamo.New(f, "tbl").CreateCommunication(ctx, row(), nil)
	if !errors.Is(err, context.Canceled) || f.transacts != 1 {
		t.Fatalf("error = %v after %d attempts; want context.Canceled after 1", err, f.transacts)
	}
}

// TestListingReadsABodyAgainWhenItsReadIsStale: a listing's eventually
// consistent reads can see a row and its payload item of different moments
// (an edit just replaced the payload); the body is then read again,
// strongly consistent, and the row is listed with its own payload.
func TestListingReadsABodyAgainWhenItsReadIsStale(t *testing.T) {
	t.Parallel()
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	pk := "COMM#co_1#r1"
	row := map[string]types.AttributeValue{"pk": s(pk), "sk": s("COMM"), "id": s("r1"), "company_id": s("co_1"),
		"channel": s("email"), "status": s("pending"), "scheduled_for": s("2026-12-01T09:00:00.000000000Z"),
		"gsi1pk": s("ROWS#co_1"), "gsi1sk": s("2026-12-01T09:00:00.000000000Z#r1"), "version": &types.AttributeValueMemberN{Value: "2"},
		"body_ref": s("new.0")}
	body := func(ref, payload string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"pk": s(pk), "sk": s("BODY"), "body_ref": s(ref),
			"payload": &types.AttributeValueMemberB{Value: []byte(payload)}}
	}
	f := &fakeAPI{t: t}
	f.query = func(*dynamodb.QueryInput) (*dynamodb.QueryOutput, error) {
		return &dynamodb.QueryOutput{Items: []map[string]types.AttributeValue{{"pk": s(pk), "sk": s("COMM"), "gsi1sk": row["gsi1sk"]}}}, nil
	}
	var consistentBodyReads int
	f.batchGet = func(in *dynamodb.BatchGetItemInput) (*dynamodb.BatchGetItemOutput, error) {
		ka := in.RequestItems["tbl"]
		var out []map[string]types.AttributeValue
		for _, k := range ka.Keys {
			switch {
			case k["sk"].(*types.AttributeValueMemberS).Value == "COMM":
				out = append(out, row)
			case aws.ToBool(ka.ConsistentRead):
				consistentBodyReads++
				out = append(out, body("new.0", `{"v":"new"}`))
			default:
				out = append(out, body("old.0", `{"v":"old"}`)) // a replica behind
			}
		}
		return &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{"tbl": out}}, nil
	}
	rows, _, err := dynamo.New(f, "tbl").ListCommunications(t.Context(), "co_1", comms.ListFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || string(rows[0].Payload) != `{"v":"new"}` || consistentBodyReads != 1 {
		t.Fatalf("rows %d, payload %s, %d consistent body reads; want the new payload after one", len(rows), rows[0].Payload, consistentBodyReads)
	}
}

// TestListSuppressionsOfARecipientIsAKeyLookup: a listing filtered by
// recipient reads the recipient's key on each channel (GetItem), never
// the company's partition (no Query).
func TestListSuppressionsOfARecipientIsAKeyLookup(t *testing.T) {
	var keys []string
	f := &fakeAPI{t: t, get: func(in *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
		keys = append(keys, in.Key["sk"].(*types.AttributeValueMemberS).Value)
		if !aws.ToBool(in.ConsistentRead) {
			t.Error("not a consistent read")
		}
		return &dynamodb.GetItemOutput{}, nil
	}}
	xs, more, err := dynamo.New(f, "tbl").ListSuppressions(t.Context(), "acme", comms.SuppressionFilter{Recipient: "ada@example.com", Limit: 10})
	if err != nil || len(xs) != 0 || more {
		t.Fatalf("%v %v %v", xs, more, err)
	}
	if len(keys) != 2 || keys[0] != "email#ada@example.com" || keys[1] != "sms#ada@example.com" {
		t.Errorf("read keys %v, want email#ada@example.com and sms#ada@example.com", keys)
	}
}
