package dynamo

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dispatcherhq/dispatcher/internal/ratelimit"
)

// A company's API rate-limit bucket is one item, pk RATE#<company>,
// sk BUCKET, holding the bucket's TAT (attribute tat: Unix nanoseconds; see
// package ratelimit) and a TTL a day past it, so an idle company's bucket
// (full again) is deleted by DynamoDB TTL.
const (
	prefixRate = "RATE#"
	skRate     = "BUCKET"
	attrTAT    = "tat"
	// rateTTL is how long past its TAT (when it is full again) a bucket
	// is kept: any bucket older is full, which is what no item means.
	rateTTL = 24 * time.Hour
	// maxTakeAttempts bounds the conditional updates of one TakeTokens: a
	// failed one returns the item, so the next picks the right form; only
	// a bucket flipping between idle and busy under concurrent requests
	// needs a third.
	maxTakeAttempts = 4
)

// rateHints remembers, per bucket, the last TAT this process saw: a TAT
// still in the future says the bucket is busy, the form of update to try
// first. A wrong guess costs one failed conditional update, never a wrong
// decision.
type rateHints struct {
	mu  sync.Mutex
	tat map[string]int64
}

// TakeTokens takes cost tokens from the bucket of key (a company id) with
// one conditional UpdateItem in the common case, never a read first
// (ratelimit.Store). The GCRA update max(TAT, now) + cost·interval is one
// of two arithmetic updates, each under the condition that makes it the
// right one:
//
//   - idle (no item, or TAT ≤ now): SET tat = now + cost·interval;
//   - busy (now < TAT ≤ now + burst·interval − cost·interval):
//     SET tat = tat + cost·interval, an atomic ADD, so concurrent requests
//     from any number of Lambda instances each take their tokens.
//
// A failed condition returns the item (ReturnValuesOnConditionCheckFailure
// ALL_OLD): a TAT past the busy bound means denied (nothing written), any
// other means the other form, tried next. Each attempt, failed or not,
// consumes one write unit; a denied request costs one. Errors are wrapped
// with the method's name.
func (s *Store) TakeTokens(ctx context.Context, key string, lim ratelimit.Limit, cost int, now time.Time) (ratelimit.Decision, error) {
	const op = "TakeTokens"
	n := now.UnixNano()
	step := lim.Interval()
	inc := int64(cost) * step
	bound := n + int64(lim.Burst)*step - inc // the largest TAT that still admits cost
	if inc > int64(lim.Burst)*step {
		return ratelimit.Decision{Allowed: false, Limit: lim}, wrap(op, errors.New("cost is more than the burst"))
	}
	k := map[string]types.AttributeValue{AttrPK: &types.AttributeValueMemberS{Value: prefixRate + key}, AttrSK: &types.AttributeValueMemberS{Value: skRate}}
	num := func(v int64) types.AttributeValue {
		return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
	}
	busy := s.rateHint(key) > n
	for range maxTakeAttempts {
		in := &dynamodb.UpdateItemInput{
			TableName:                           s.table,
			Key:                                 k,
			ExpressionAttributeNames:            map[string]string{"#tat": attrTAT, "#ttl": AttrTTL},
			ReturnValues:                        types.ReturnValueUpdatedNew,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}
		// The TTL is set from this request's time: a day past the latest
		// possible TAT (bound + inc), so it never expires a busy bucket.
		ttl := num(ttlSeconds(time.Unix(0, bound+inc).Add(rateTTL)))
		if busy {
			in.UpdateExpression = aws.String("SET #tat = #tat + :inc, #ttl = :ttl")
			in.ConditionExpression = aws.String("#tat > :now AND #tat <= :bound")
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":inc": num(inc), ":now": num(n), ":bound": num(bound), ":ttl": ttl}
		} else {
			in.UpdateExpression = aws.String("SET #tat = :next, #ttl = :ttl")
			in.ConditionExpression = aws.String("attribute_not_exists(#tat) OR #tat <= :now")
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":next": num(n + inc), ":now": num(n), ":ttl": ttl}
		}
		out, err := s.api.UpdateItem(ctx, in)
		if err == nil {
			tat, perr := tatOf(out.Attributes)
			if perr != nil {
				return ratelimit.Decision{}, wrap(op, perr)
			}
			s.setRateHint(key, tat)
			_, d := ratelimit.Decide(tat-inc, n, lim, cost) // the decision of the TAT this update moved
			return d, nil
		}
		old, failed := conditionFailed(err)
		if !failed {
			return ratelimit.Decision{}, wrap(op, err)
		}
		tat, perr := tatOf(old)
		if perr != nil {
			return ratelimit.Decision{}, wrap(op, perr)
		}
		switch {
		case tat > bound:
			s.setRateHint(key, tat)
			_, d := ratelimit.Decide(tat, n, lim, cost)
			return d, nil
		case tat <= n:
			busy = false
		default:
			busy = true
		}
	}
	return ratelimit.Decision{}, wrap(op, errors.New("the bucket changed under every attempt"))
}

// tatOf reads the tat attribute of an item (0 when absent: a new bucket).
func tatOf(item map[string]types.AttributeValue) (int64, error) {
	v, ok := item[attrTAT].(*types.AttributeValueMemberN)
	if !ok {
		return 0, nil
	}
	return strconv.ParseInt(v.Value, 10, 64)
}

func (s *Store) rateHint(key string) int64 {
	s.rateHints.mu.Lock()
	defer s.rateHints.mu.Unlock()
	return s.rateHints.tat[key]
}

func (s *Store) setRateHint(key string, tat int64) {
	s.rateHints.mu.Lock()
	defer s.rateHints.mu.Unlock()
	if s.rateHints.tat == nil || len(s.rateHints.tat) >= 10_000 {
		s.rateHints.tat = map[string]int64{} // companies are few; a full map starts over
	}
	s.rateHints.tat[key] = tat
}
