package dynamo

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// Events live in their row's partition (pk COMM#<company>#<id>, sk
// EVT#<sequence, 10 digits>), so a row's history is one Query and the event
// is written in the same TransactWriteItems as the row's compare-and-swap.
// The company feed reads IndexByFeed, whose partitions are spread over
// FeedShards per company so that a busy tenant has no single hot partition.
const (
	// IndexByFeed lists a company's events by time: partition key
	// AttrGSI3PK, sort key AttrGSI3SK, projection ALL (events are small and
	// the feed returns them whole).
	IndexByFeed = "by_feed"
	// AttrGSI3PK is the partition key of IndexByFeed (S): FEED#<company>#<shard>.
	AttrGSI3PK = "gsi3pk"
	// AttrGSI3SK is the sort key of IndexByFeed (S):
	// <at>#<communication id>#<sequence, 10 digits>.
	AttrGSI3SK = "gsi3sk"
	// FeedShards is how many partitions of IndexByFeed one company's events
	// spread over (by row id): each takes about 1,000 writes a second, so a
	// company can record about 8,000 events a second before its feed
	// throttles. Changing it needs every event rewritten.
	FeedShards = 8
	// FeedSettle is how old an event must be before the feed returns it.
	// The feed is ordered by event time, which the writer's clock assigns
	// just before its write, and the index copies the write asynchronously:
	// an event younger than this might still appear before a cursor already
	// handed out. A write that carries events is bounded to MaxEventWrite
	// (its reads, retries and SDK retries included), which leaves 10 s for
	// the index to catch up; waiting that out makes "follow the cursors"
	// miss nothing. A caller that retries a failed write builds its change
	// (and its events' times) again (dispatch does).
	FeedSettle = 15 * time.Second
	// MaxEventWrite bounds a CreateCommunication or UpdateCommunication (a
	// context deadline from the moment it may write): one that takes longer
	// fails, and a request already on the wire then commits at once or not
	// at all.
	MaxEventWrite = 5 * time.Second

	prefixEvent = "EVT#"
	prefixFeed  = "FEED#"
	entityEvent = "event"
)

// How much one feed request with a type filter reads: at most
// maxFilteredPages index pages of feedFilteredPage items per shard (vars
// so that a test can make them small).
var (
	maxFilteredPages       = 2
	feedFilteredPage int32 = filteredPage
)

// eventItem is the item of an event.
type eventItem struct {
	PK     string `dynamodbav:"pk"`
	SK     string `dynamodbav:"sk"`
	GSI3PK string `dynamodbav:"gsi3pk"`
	GSI3SK string `dynamodbav:"gsi3sk"`
	Entity string `dynamodbav:"entity"`

	CompanyID       string `dynamodbav:"company_id"`
	CommunicationID string `dynamodbav:"communication_id"`
	Sequence        int64  `dynamodbav:"sequence"`
	ID              string `dynamodbav:"id"`
	Type            string `dynamodbav:"type"`
	At              string `dynamodbav:"at"`
	Data            string `dynamodbav:"data"`
	// TTL: see eventTTL.
	TTL int64 `dynamodbav:"ttl,omitempty"`
}

func eventSK(seq int64) string { return fmt.Sprintf("%s%010d", prefixEvent, seq) }

func feedSK(at time.Time, communicationID string, seq int64) string {
	return fmt.Sprintf("%s#%s#%010d", keyTS(at), communicationID, seq)
}

// feedShard returns the IndexByFeed partition of a row's events.
func feedShard(companyID, communicationID string, shard int) string {
	if shard < 0 {
		h := fnv.New32a()
		_, _ = h.Write([]byte(communicationID))
		shard = int(h.Sum32() % FeedShards)
	}
	return prefixFeed + companyID + "#" + strconv.Itoa(shard)
}

// eventPuts returns the Puts of events written with row (its state after
// the write), each conditional on its key being new (an event is never
// overwritten), each with its TTL (eventTTL).
func (s *Store) eventPuts(evs []comms.Event, row comms.Communication) ([]types.TransactWriteItem, error) {
	out := make([]types.TransactWriteItem, 0, len(evs))
	for _, e := range evs {
		item, err := attributevalue.MarshalMap(eventItem{
			PK: commPK(e.CompanyID, e.CommunicationID), SK: eventSK(e.Sequence),
			GSI3PK: feedShard(e.CompanyID, e.CommunicationID, -1), GSI3SK: feedSK(e.At, e.CommunicationID, e.Sequence),
			Entity: entityEvent, CompanyID: e.CompanyID, CommunicationID: e.CommunicationID, Sequence: e.Sequence,
			ID: e.ID, Type: string(e.Type), At: keyTS(e.At), Data: string(e.Data), TTL: s.eventTTL(e, row),
		})
		if err != nil {
			return nil, err
		}
		out = append(out, types.TransactWriteItem{Put: &types.Put{TableName: s.table, Item: item,
			ConditionExpression: aws.String("attribute_not_exists(#pk)"), ExpressionAttributeNames: map[string]string{"#pk": AttrPK}}})
	}
	return out, nil
}

func (it eventItem) event() (comms.Event, error) {
	at, err := fromTS(it.At)
	if err != nil {
		return comms.Event{}, fmt.Errorf("event %s: %w", it.ID, err)
	}
	return comms.Event{ID: it.ID, CommunicationID: it.CommunicationID, CompanyID: it.CompanyID, Sequence: it.Sequence,
		Type: comms.EventType(it.Type), At: at, Data: []byte(it.Data)}, nil
}

func decodeEvent(item map[string]types.AttributeValue) (comms.Event, error) {
	var it eventItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return comms.Event{}, err
	}
	return it.event()
}

// ListEvents returns the row's events after afterSeq, oldest first: one
// strongly consistent Query of the row's partition.
func (s *Store) ListEvents(ctx context.Context, companyID, communicationID string, afterSeq int64, limit int) ([]comms.Event, bool, error) {
	const op = "ListEvents"
	if limit < 1 || limit > maxLimit {
		limit = maxLimit
	}
	out, err := s.api.Query(ctx, &dynamodb.QueryInput{
		TableName:                s.table,
		ConsistentRead:           aws.Bool(true),
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi"),
		ExpressionAttributeNames: map[string]string{"#pk": AttrPK, "#sk": AttrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(commPK(companyID, communicationID)), ":lo": str(eventSK(afterSeq + 1)), ":hi": str(prefixEvent + "9999999999"),
		},
		Limit: aws.Int32(int32(limit + 1)),
	})
	if err != nil {
		return nil, false, wrap(op, err)
	}
	evs := make([]comms.Event, 0, len(out.Items))
	for _, item := range out.Items {
		e, err := decodeEvent(item)
		if err != nil {
			return nil, false, wrap(op, err)
		}
		evs = append(evs, e)
	}
	if len(evs) > limit {
		return evs[:limit], true, nil
	}
	return evs, false, nil
}

// ListCompanyEvents returns the company's events ordered by (at,
// communication id, sequence), the sort key of IndexByFeed, and only those
// older than f.Now − FeedSettle. It queries every shard in parallel for its
// first Limit+1 matches after the cursor and merges them; the cursor is
// the sort key of the last event returned. Index reads are eventually
// consistent; FeedSettle covers that too.
func (s *Store) ListCompanyEvents(ctx context.Context, companyID string, f comms.EventFilter) ([]comms.Event, string, bool, error) {
	const op = "ListCompanyEvents"
	if f.After != "" && !validFeedSK(f.After) {
		return nil, "", false, wrap(op, comms.ErrBadCursor)
	}
	limit := f.Limit
	if limit < 1 || limit > maxLimit {
		limit = maxLimit
	}
	now := f.Now
	if now.IsZero() {
		now = time.Now()
	}
	// The sort-key range: lo inclusive (the cursor's own event is skipped),
	// hi = the settle bound, which no sort key equals (each has a suffix).
	lo, hi := f.After, keyTS(now.Add(-FeedSettle))
	if !f.CreatedAfter.IsZero() && keyTS(f.CreatedAfter) > lo {
		lo = keyTS(f.CreatedAfter)
	}
	if lo != "" && lo >= hi {
		return []comms.Event{}, f.After, false, nil
	}
	names := map[string]string{"#pk": AttrGSI3PK, "#sk": AttrGSI3SK}
	values := map[string]types.AttributeValue{":hi": str(hi)}
	kc := "#pk = :pk AND #sk <= :hi"
	if lo != "" {
		kc = "#pk = :pk AND #sk BETWEEN :lo AND :hi"
		values[":lo"] = str(lo)
	}
	var filter *string
	if len(f.Types) > 0 {
		names["#type"] = "type"
		ph := make([]string, len(f.Types))
		for i, t := range f.Types {
			ph[i] = ":t" + strconv.Itoa(i)
			values[ph[i]] = str(string(t))
		}
		filter = aws.String("#type IN (" + strings.Join(ph, ", ") + ")")
	}

	type result struct {
		items []map[string]types.AttributeValue
		// scannedTo is the sort key up to which a shard was examined when it
		// stopped at maxFilteredPages with more left ("" when exhausted or full).
		scannedTo string
		err       error
	}
	results := make([]result, FeedShards)
	var wg sync.WaitGroup
	for shard := range FeedShards {
		wg.Go(func() {
			vals := make(map[string]types.AttributeValue, len(values)+1)
			for k, v := range values {
				vals[k] = v
			}
			vals[":pk"] = str(feedShard(companyID, "", shard))
			in := &dynamodb.QueryInput{
				TableName: s.table, IndexName: aws.String(IndexByFeed),
				KeyConditionExpression: aws.String(kc), FilterExpression: filter,
				ExpressionAttributeNames: names, ExpressionAttributeValues: vals,
			}
			r := &results[shard]
			for pages := 1; len(r.items) <= limit; pages++ {
				in.Limit = aws.Int32(int32(limit + 2 - len(r.items)))
				if filter != nil {
					in.Limit = aws.Int32(feedFilteredPage)
				}
				page, err := s.api.Query(ctx, in)
				if err != nil {
					r.err = err
					return
				}
				for _, item := range page.Items {
					if f.After == "" || strAttr(item, AttrGSI3SK) != f.After {
						r.items = append(r.items, item)
					}
				}
				if len(page.LastEvaluatedKey) == 0 {
					return
				}
				if filter != nil && pages == maxFilteredPages && len(r.items) <= limit {
					// A rare type must not make one request read a tenant's
					// whole history: stop, and say how far this shard got.
					r.scannedTo = strAttr(page.LastEvaluatedKey, AttrGSI3SK)
					return
				}
				in.ExclusiveStartKey = page.LastEvaluatedKey
			}
		})
	}
	wg.Wait()
	var all []map[string]types.AttributeValue
	bound := "" // everything up to bound was examined on every shard
	for _, r := range results {
		if r.err != nil {
			return nil, "", false, wrap(op, r.err)
		}
		all = append(all, r.items...)
		if r.scannedTo != "" && (bound == "" || r.scannedTo < bound) {
			bound = r.scannedTo
		}
	}
	if bound != "" {
		all = slices.DeleteFunc(all, func(item map[string]types.AttributeValue) bool { return strAttr(item, AttrGSI3SK) > bound })
	}
	slices.SortFunc(all, func(a, b map[string]types.AttributeValue) int {
		return strings.Compare(strAttr(a, AttrGSI3SK), strAttr(b, AttrGSI3SK))
	})
	more := len(all) > limit || bound != ""
	full := len(all) > limit
	all = all[:min(len(all), limit)]
	evs := make([]comms.Event, len(all))
	next := f.After
	for i, item := range all {
		e, err := decodeEvent(item)
		if err != nil {
			return nil, "", false, wrap(op, err)
		}
		evs[i] = e
		next = strAttr(item, AttrGSI3SK)
	}
	if bound != "" && !full && bound > next {
		next = bound // nothing matched up to there: read on after it
	}
	return evs, next, more, nil
}

// validFeedSK reports whether s has the shape of an IndexByFeed sort key.
func validFeedSK(s string) bool {
	parts := strings.Split(s, "#")
	if len(parts) != 3 || len(parts[2]) != 10 {
		return false
	}
	if _, err := time.Parse(timeLayout, parts[0]); err != nil {
		return false
	}
	if _, ok := comms.UUIDString(parts[1]); !ok {
		return false
	}
	_, err := strconv.ParseUint(parts[2], 10, 64)
	return err == nil
}

// EventItemCompany reads the company of an event item from its key, as a
// DynamoDB stream record carries it (a KEYS_ONLY stream view is enough):
// pk COMM#<company>#<row id>, sk EVT#<sequence>. ok is false for any other
// item. A company id holds no '#' (comms.ValidCompanyID).
func EventItemCompany(pk, sk string) (companyID string, ok bool) {
	if !strings.HasPrefix(sk, prefixEvent) || !strings.HasPrefix(pk, prefixComm) {
		return "", false
	}
	company, _, found := strings.Cut(strings.TrimPrefix(pk, prefixComm), "#")
	if !found || !comms.ValidCompanyID(company) {
		return "", false
	}
	return company, true
}

// EventStreamFilter is the Lambda event-source filter pattern (JSON) that
// lets only the inserts of event items through from the table's stream:
// the webhooks function is invoked for nothing else.
const EventStreamFilter = `{"eventName":["INSERT"],"dynamodb":{"Keys":{"sk":{"S":[{"prefix":"` + prefixEvent + `"}]}}}}`
