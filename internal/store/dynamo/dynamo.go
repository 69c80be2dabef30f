package dynamo

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dispatcherhq/dispatcher/internal/backoff"
	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// The names of the table's keys, indexes and TTL attribute. The CDK stack
// creates production tables with exactly these; CreateTable creates the
// same for tests and emulators.
const (
	// AttrPK is the table's partition key (S).
	AttrPK = "pk"
	// AttrSK is the table's sort key (S).
	AttrSK = "sk"
	// IndexByCompany lists a company's rows ordered by (scheduled_for, id):
	// partition key AttrGSI1PK, sort key AttrGSI1SK, projection INCLUDE of
	// ByCompanyAttributes (what listing filters on; the rows themselves are
	// then read from the table).
	IndexByCompany = "by_company"
	// AttrGSI1PK is the partition key of IndexByCompany (S): ROWS#<company>.
	AttrGSI1PK = "gsi1pk"
	// AttrGSI1SK is the sort key of IndexByCompany (S): <scheduled_for>#<id>.
	AttrGSI1SK = "gsi1sk"
	// IndexByDue is the sparse index of non-terminal rows by the time the
	// sweeper must look at them: partition key AttrGSI2PK, sort key
	// AttrGSI2SK, projection KEYS_ONLY (the rows are then read by key).
	IndexByDue = "by_due"
	// AttrGSI2PK is the partition key of IndexByDue (S): DUE#<shard>, the
	// shard being in [0, DueShards).
	AttrGSI2PK = "gsi2pk"
	// AttrGSI2SK is the sort key of IndexByDue (S):
	// <next_attempt_at or lease_until>#<company>#<id>.
	AttrGSI2SK = "gsi2sk"
	// AttrTTL is the table's TTL attribute (N, epoch seconds): idempotency
	// records, SMS receipts and entity events carry it, and with a
	// retention (WithRetention) terminal rows, events and provider message
	// id mappings do.
	AttrTTL = "ttl"
	// DueShards is how many partitions IndexByDue spreads its rows over.
	// Changing it needs every non-terminal row rewritten.
	DueShards = 8
)

// API is the part of the DynamoDB client the Store uses; *dynamodb.Client
// implements it, and so can a hand-written fake.
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

var (
	_ comms.Store = (*Store)(nil)
	_ API         = (*dynamodb.Client)(nil)
	_ TableAPI    = (*dynamodb.Client)(nil)
)

// Store is a comms.Store on one DynamoDB table laid out as the package
// documentation describes. It is safe for concurrent use.
type Store struct {
	api   API
	table *string
	// debits serialises this process's credit debits of one company (see
	// the package documentation, "Credits"). It is an optimisation, never
	// what makes a debit correct.
	debits keyedLocks
	// claims serialises this process's puts of one phone number (keyed by
	// the number), its writes of sending-domain claims (keyed DOMAINS) and
	// its puts of one suppression (keyed by its item's key), in the same spirit: the conditions are what make a put correct.
	claims keyedLocks
	// fanOuts serialises this process's webhook fan-outs of one company
	// (keyed by company), in the same spirit.
	fanOuts keyedLocks
	// rateHints guesses which update a rate-limit bucket needs (ratelimit.go).
	rateHints rateHints
	// retention is how long a terminal row is kept (WithRetention); 0
	// keeps it forever.
	retention time.Duration
}

// New returns a Store on the table through client.
func New(client API, table string) *Store {
	return &Store{api: client, table: aws.String(table)}
}

// maxDebitAttempts bounds how many times a debit is retried when the
// company's balance moved between its read and its conditional write.
const maxDebitAttempts = 10

// retryBackoff is the wait before retry n (n ≥ 1) of a contended debit or
// of unprocessed BatchGetItem keys: 5 ms doubling each retry, at most
// 100 ms, with the equal jitter of internal/backoff.
var retryBackoff = backoff.Policy{Base: 5 * time.Millisecond, Cap: 100 * time.Millisecond}

// keyedLocks is a set of mutexes by key, each existing while someone holds
// or waits for it.
type keyedLocks struct {
	mu sync.Mutex
	m  map[string]*keyedLock
}

type keyedLock struct {
	held chan struct{} // a token in it while the lock is held
	refs int           // holders and waiters
}

// lock takes the lock of key, or gives up when ctx ends, and returns its unlock.
func (k *keyedLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyedLock{held: make(chan struct{}, 1)}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()
	release := func() {
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.held <- struct{}{}:
		return func() { <-l.held; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// Key prefixes and sort-key constants of the items (see the package doc).
const (
	prefixCompany = "COMPANY#"
	prefixKeyHash = "KEYHASH#"
	prefixKeyID   = "KEYID#"
	prefixKeyList = "KEY#"
	prefixPhone   = "PHONE#"
	prefixAgent   = "AGENT#"
	prefixComm    = "COMM#"
	prefixIdem    = "IDEM#"
	prefixRows    = "ROWS#"
	prefixDue     = "DUE#"

	skCompany = "COMPANY"
	skKey     = "KEY"
	skComm    = "COMM"
	skIdem    = "IDEM"
)

// The values of the entity attribute every item carries, so that a human
// reading the table knows what an item is.
const (
	attrEntity    = "entity"
	entityCompany = "company"
	entityKey     = "api_key"
	entityKeyID   = "api_key_id"
	entityKeyList = "api_key_listing"
	entityPhone   = "phone_number"
	entityAgent   = "voice_agent"
	entityComm    = "communication"
	entityIdem    = "idempotency"
)

// key returns the primary key of an item.
func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrPK: str(pk), AttrSK: str(sk)}
}

func companyKey(id string) map[string]types.AttributeValue { return key(prefixCompany+id, skCompany) }

func commPK(companyID, id string) string { return prefixComm + companyID + "#" + id }

func commKey(companyID, id string) map[string]types.AttributeValue {
	return key(commPK(companyID, id), skComm)
}

func idemKey(companyID, k string) map[string]types.AttributeValue {
	return key(prefixIdem+companyID+"#"+k, skIdem)
}

// dueShard returns the IndexByDue partition of a row.
func dueShard(id string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return prefixDue + strconv.Itoa(int(h.Sum32()%DueShards))
}

func str(s string) *types.AttributeValueMemberS { return &types.AttributeValueMemberS{Value: s} }

func num(n int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// timeLayout is how times are stored: fixed-width UTC with nanoseconds, so
// that their strings sort as the times do (for years 1000–9999).
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// ts encodes a time for an attribute: "" (attribute absent) for the zero time.
func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return keyTS(t)
}

// keyTS encodes a time for a key, the zero time included.
func keyTS(t time.Time) string { return t.UTC().Format(timeLayout) }

// tsPtr encodes an optional time: "" for nil.
func tsPtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return keyTS(*t)
}

// fromTS decodes what ts encoded, in UTC.
func fromTS(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}

// fromTSPtr decodes what tsPtr encoded.
func fromTSPtr(s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	t, err := fromTS(s)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// wrap names the method an error comes from, translating the SDK errors that
// have a comms meaning everywhere (a cancelled context stays what it is).
func wrap(method string, err error) error {
	if err == nil {
		return nil
	}
	var rnf *types.ResourceNotFoundException
	if errors.As(err, &rnf) {
		// The table itself is missing: not a comms.ErrNotFound, which would
		// tell a caller that one row is.
		return fmt.Errorf("dynamo.%s: table not found: %w", method, err)
	}
	return fmt.Errorf("dynamo.%s: %w", method, err)
}

// cancellation returns the reason codes of a cancelled transaction, one per
// item in request order ("None" where the item was fine), and their items
// (set when the item asked for ALL_OLD and its condition failed).
func cancellation(err error) (codes []string, items []map[string]types.AttributeValue, ok bool) {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return nil, nil, false
	}
	for _, r := range tce.CancellationReasons {
		codes = append(codes, aws.ToString(r.Code))
		items = append(items, r.Item)
	}
	return codes, items, true
}

// Cancellation reason codes of TransactWriteItems.
const (
	reasonConditionFailed = "ConditionalCheckFailed"
	reasonConflict        = "TransactionConflict"
)

// failed reports whether item i of a cancelled transaction failed its condition.
func failed(codes []string, i int) bool { return i < len(codes) && codes[i] == reasonConditionFailed }

// conflicted reports whether a transaction was cancelled (or a write
// refused) because another transaction held one of its items: worth a retry.
func conflicted(err error, codes []string) bool {
	var tc *types.TransactionConflictException
	if errors.As(err, &tc) {
		return true
	}
	for _, c := range codes {
		if c == reasonConflict {
			return true
		}
	}
	return false
}

// conditionFailed reports whether err is a failed condition of a single-item
// write, and returns the item's old image when the write asked for ALL_OLD.
func conditionFailed(err error) (old map[string]types.AttributeValue, ok bool) {
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return nil, false
	}
	return ccf.Item, true
}

// getItem reads one item by key (consistent GetItem) and decodes it; an
// absent item is comms.ErrNotFound. Errors are wrapped with op.
func getItem[T any](ctx context.Context, s *Store, op string, k map[string]types.AttributeValue, decode func(map[string]types.AttributeValue) (T, error)) (T, error) {
	var zero T
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: s.table, Key: k, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return zero, wrap(op, err)
	}
	if out.Item == nil {
		return zero, wrap(op, comms.ErrNotFound)
	}
	v, err := decode(out.Item)
	if err != nil {
		return zero, wrap(op, err)
	}
	return v, nil
}
