package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
)

var _ webhooks.DeliveryStore = (*Store)(nil)

// Status-webhook deliveries (see the package documentation's table).
//
// A delivery is an item of a partition of its own, pk
// WHDLV#<company>#<endpoint>#<id>, sk WHDLV, so that a busy endpoint's
// writes spread over the table. It reuses two existing indexes under key
// prefixes no other item has, so the table keeps its three indexes:
//
//   - by_company (gsi1): gsi1pk = WHDLV#<company>#<endpoint>, gsi1sk =
//     <created_at>#<id>, the endpoint's deliveries in (created_at, id)
//     order, whole (projection ALL): ListDeliveries reads it backwards.
//     ListCommunications queries gsi1pk = ROWS#<company> and never sees them.
//   - by_due (gsi2), sparse: a pending delivery carries gsi2pk =
//     WHDUE#<shard>, gsi2sk = <next_attempt_at>#<company>#<endpoint>#<id>,
//     shard = FNV-1a(id) mod DueShards; a settled one carries neither. The
//     row sweeper (DueCommunications) queries gsi2pk = DUE#<shard> — a key
//     equality, so it never reads a WHDUE# partition — and DueDeliveries
//     queries WHDUE#<shard> the same way.
//
// The company's fan-out cursor is the item COMPANY#<company> / WHFANOUT
// (attribute cursor), in the company's partition next to its resources.
// Endpoint ids, like company ids, must not contain '#'.
const (
	prefixDelivery  = "WHDLV#"
	skDelivery      = "WHDLV"
	prefixWHDue     = "WHDUE#"
	skFanOutCursor  = "WHFANOUT"
	entityDelivery  = "webhook_delivery"
	entityFanOutCur = "webhook_fanout_cursor"
	attrCursor      = "cursor"
)

type deliveryItem struct {
	PK     string `dynamodbav:"pk"`
	SK     string `dynamodbav:"sk"`
	GSI1PK string `dynamodbav:"gsi1pk"`
	GSI1SK string `dynamodbav:"gsi1sk"`
	GSI2PK string `dynamodbav:"gsi2pk,omitempty"`
	GSI2SK string `dynamodbav:"gsi2sk,omitempty"`
	Entity string `dynamodbav:"entity"`

	CompanyID       string `dynamodbav:"company_id"`
	EndpointID      string `dynamodbav:"endpoint_id"`
	ID              string `dynamodbav:"id"`
	EventID         string `dynamodbav:"event_id,omitempty"`
	EventType       string `dynamodbav:"event_type,omitempty"`
	CommunicationID string `dynamodbav:"communication_id,omitempty"`
	Payload         []byte `dynamodbav:"payload,omitempty"`
	State           string `dynamodbav:"state"`
	Attempts        string `dynamodbav:"attempts,omitempty"`
	NextAttemptAt   string `dynamodbav:"next_attempt_at,omitempty"`
	CreatedAt       string `dynamodbav:"created_at,omitempty"`
	UpdatedAt       string `dynamodbav:"updated_at,omitempty"`
	Version         int64  `dynamodbav:"version"`
}

func deliveryPK(companyID, endpointID, id string) string {
	return prefixDelivery + companyID + "#" + endpointID + "#" + id
}

func deliveryKey(companyID, endpointID, id string) map[string]types.AttributeValue {
	return key(deliveryPK(companyID, endpointID, id), skDelivery)
}

func deliveryListPK(companyID, endpointID string) string {
	return prefixDelivery + companyID + "#" + endpointID
}

// whDueShard returns the by_due partition of a pending delivery.
func whDueShard(id string) string {
	return prefixWHDue + strings.TrimPrefix(dueShard(id), prefixDue)
}

// whDueSK returns a pending delivery's by_due sort key.
func whDueSK(d webhooks.Delivery) string {
	return keyTS(d.NextAttemptAt) + "#" + d.CompanyID + "#" + d.EndpointID + "#" + d.ID
}

// attemptsText encodes the attempts a delivery keeps (times in UTC) as
// JSON, "" for none.
func attemptsText(as []webhooks.Attempt) (string, error) {
	kept := webhooks.KeepAttempts(as)
	if len(kept) == 0 {
		return "", nil
	}
	out := make([]webhooks.Attempt, len(kept))
	for i, a := range kept {
		a.At = a.At.UTC()
		out[i] = a
	}
	b, err := json.Marshal(out)
	return string(b), err
}

// newDeliveryItem returns the item of d stored at version 1.
func newDeliveryItem(d webhooks.Delivery) (deliveryItem, error) {
	it := deliveryItem{
		PK: deliveryPK(d.CompanyID, d.EndpointID, d.ID), SK: skDelivery,
		GSI1PK: deliveryListPK(d.CompanyID, d.EndpointID), GSI1SK: listSK(d.CreatedAt, d.ID),
		Entity:    entityDelivery,
		CompanyID: d.CompanyID, EndpointID: d.EndpointID, ID: d.ID, EventID: d.EventID, EventType: string(d.EventType),
		CommunicationID: d.CommunicationID, Payload: nonEmpty(d.Payload), State: string(d.State),
		NextAttemptAt: ts(d.NextAttemptAt), CreatedAt: ts(d.CreatedAt), UpdatedAt: ts(d.UpdatedAt), Version: 1,
	}
	if d.State == webhooks.DeliveryPending {
		it.GSI2PK, it.GSI2SK = whDueShard(d.ID), whDueSK(d)
	}
	var err error
	it.Attempts, err = attemptsText(d.Attempts)
	return it, err
}

// decodeDelivery decodes a delivery's attribute map.
func decodeDelivery(item map[string]types.AttributeValue) (webhooks.Delivery, error) {
	var it deliveryItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return webhooks.Delivery{}, err
	}
	d := webhooks.Delivery{
		ID: it.ID, CompanyID: it.CompanyID, EndpointID: it.EndpointID, EventID: it.EventID,
		EventType: comms.EventType(it.EventType), CommunicationID: it.CommunicationID, Payload: raw(it.Payload),
		State: webhooks.DeliveryState(it.State), Version: it.Version,
	}
	var errs []error
	at := func(dst *time.Time, s string) {
		t, err := fromTS(s)
		*dst = t
		errs = append(errs, err)
	}
	at(&d.NextAttemptAt, it.NextAttemptAt)
	at(&d.CreatedAt, it.CreatedAt)
	at(&d.UpdatedAt, it.UpdatedAt)
	if it.Attempts != "" {
		errs = append(errs, json.Unmarshal([]byte(it.Attempts), &d.Attempts))
	}
	if err := errors.Join(errs...); err != nil {
		return webhooks.Delivery{}, fmt.Errorf("delivery %s: %w", it.ID, err)
	}
	return d, nil
}

// FanOut reads which of ds exist (a consistent BatchGetItem), then writes
// one TransactWriteItems: the cursor's Put on condition that it is from
// (attribute_not_exists(pk) for ""), and a Put of each new delivery on
// condition attribute_not_exists(pk). The cursor's failed condition is
// ErrConflict; a delivery's (one written since the read) reads again and
// retries, as does a TransactionConflict. Within one process the company's
// fan-outs take a lock, as its debits do (see "Credits"), so that the
// process never races itself. At most webhooks.MaxFanOut deliveries + the
// cursor = DynamoDB's 100 items.
func (s *Store) FanOut(ctx context.Context, companyID, from, to string, ds []webhooks.Delivery) error {
	const op = "FanOut"
	if err := webhooks.CheckFanOut(companyID, to, ds); err != nil {
		return wrap(op, err)
	}
	// Each delivery once (the first), as a transaction may not name an
	// item twice.
	seen := make(map[string]bool, len(ds))
	var uniq []webhooks.Delivery
	for _, d := range ds {
		if pk := deliveryPK(d.CompanyID, d.EndpointID, d.ID); !seen[pk] {
			seen[pk] = true
			uniq = append(uniq, d)
		}
	}
	unlock, err := s.fanOuts.lock(ctx, companyID)
	if err != nil {
		return wrap(op, err)
	}
	defer unlock()

	cursor := &types.Put{
		TableName: s.table,
		Item: map[string]types.AttributeValue{
			AttrPK: str(prefixCompany + companyID), AttrSK: str(skFanOutCursor),
			attrEntity: str(entityFanOutCur), attrCursor: str(to),
		},
	}
	if from == "" {
		cursor.ConditionExpression = aws.String("attribute_not_exists(#pk)")
		cursor.ExpressionAttributeNames = map[string]string{"#pk": AttrPK}
	} else {
		cursor.ConditionExpression = aws.String("#c = :from")
		cursor.ExpressionAttributeNames = map[string]string{"#c": attrCursor}
		cursor.ExpressionAttributeValues = map[string]types.AttributeValue{":from": str(from)}
	}
	for attempt := 1; ; attempt++ {
		keys := make([]map[string]types.AttributeValue, len(uniq))
		for i, d := range uniq {
			keys[i] = deliveryKey(d.CompanyID, d.EndpointID, d.ID)
		}
		existing, err := s.batchGet(ctx, keys)
		if err != nil {
			return wrap(op, err)
		}
		items := []types.TransactWriteItem{{Put: cursor}}
		for _, d := range uniq {
			if existing[deliveryPK(d.CompanyID, d.EndpointID, d.ID)] != nil {
				continue // left untouched
			}
			it, err := newDeliveryItem(d)
			if err != nil {
				return wrap(op, err)
			}
			item, err := attributevalue.MarshalMap(it)
			if err != nil {
				return wrap(op, err)
			}
			items = append(items, types.TransactWriteItem{Put: &types.Put{
				TableName: s.table, Item: item,
				ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
				ExpressionAttributeNames: map[string]string{"#pk": AttrPK},
			}})
		}
		_, err = s.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			return nil
		}
		codes, _, cancelled := cancellation(err)
		if cancelled && failed(codes, 0) {
			return wrap(op, fmt.Errorf("%w: the fan-out cursor is no longer %q", comms.ErrConflict, from))
		}
		retry := conflicted(err, codes)
		for i := 1; cancelled && i < len(codes); i++ {
			retry = retry || failed(codes, i)
		}
		if !retry {
			return wrap(op, err)
		}
		if attempt == maxDebitAttempts {
			return wrap(op, fmt.Errorf("%w: fan-out still contended after %d attempts: %v", comms.ErrConflict, attempt, err))
		}
		if err := retryBackoff.Sleep(ctx, attempt); err != nil {
			return wrap(op, err)
		}
	}
}

// FanOutCursor reads the cursor item (consistent GetItem).
func (s *Store) FanOutCursor(ctx context.Context, companyID string) (string, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: s.table, Key: key(prefixCompany+companyID, skFanOutCursor), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return "", wrap("FanOutCursor", err)
	}
	return strAttr(out.Item, attrCursor), nil
}

// GetDelivery reads the delivery's item (consistent GetItem).
func (s *Store) GetDelivery(ctx context.Context, companyID, endpointID, id string) (webhooks.Delivery, error) {
	return getItem(ctx, s, "GetDelivery", deliveryKey(companyID, endpointID, id), decodeDelivery)
}

// ListDeliveries queries by_company backwards (eventually consistent, as
// ListCommunications): gsi1pk = WHDLV#<company>#<endpoint> [AND gsi1sk <
// the cursor's], the state as a FilterExpression.
func (s *Store) ListDeliveries(ctx context.Context, companyID, endpointID string, f webhooks.DeliveryFilter) ([]webhooks.Delivery, bool, error) {
	const op = "ListDeliveries"
	limit := f.Limit
	if limit < 1 || limit > maxLimit {
		limit = maxLimit
	}
	names := map[string]string{"#pk": AttrGSI1PK}
	values := map[string]types.AttributeValue{":pk": str(deliveryListPK(companyID, endpointID))}
	kc := "#pk = :pk"
	if f.After != "" {
		at, id, err := webhooks.ParseDeliveryCursor(f.After)
		if err != nil {
			return nil, false, wrap(op, err)
		}
		kc += " AND #sk < :after"
		names["#sk"], values[":after"] = AttrGSI1SK, str(listSK(at, id))
	}
	in := &dynamodb.QueryInput{
		TableName:              s.table,
		IndexName:              aws.String(IndexByCompany),
		KeyConditionExpression: aws.String(kc),
		ScanIndexForward:       aws.Bool(false),
	}
	if f.State != "" {
		names["#state"], values[":state"] = "state", str(string(f.State))
		in.FilterExpression = aws.String("#state = :state")
	}
	in.ExpressionAttributeNames, in.ExpressionAttributeValues = names, values
	keys, more, err := queryListing(ctx, s.api, in, limit, nil, tableKey)
	if err != nil {
		return nil, false, wrap(op, err)
	}
	// The index projects the keys and state (ByCompanyAttributes): the
	// deliveries are read from the table, eventually consistent like the
	// index; one whose state no longer matches is left out.
	items, err := s.batchGetItems(ctx, keys, false)
	if err != nil {
		return nil, false, wrap(op, err)
	}
	ds := make([]webhooks.Delivery, 0, len(items))
	for _, item := range items {
		d, err := decodeDelivery(item)
		if err != nil {
			return nil, false, wrap(op, err)
		}
		if f.State == "" || d.State == f.State {
			ds = append(ds, d)
		}
	}
	return ds, more, nil
}

// UpdateDelivery is one UpdateItem of the mutable attributes (and the
// by_due keys: set while pending, removed otherwise) on condition version
// = d.Version, ReturnValues ALL_NEW, ReturnValuesOnConditionCheckFailure
// ALL_OLD: an old image is ErrConflict, none ErrNotFound.
func (s *Store) UpdateDelivery(ctx context.Context, d webhooks.Delivery) (webhooks.Delivery, error) {
	const op = "UpdateDelivery"
	if err := d.Check(); err != nil {
		return webhooks.Delivery{}, wrap(op, err)
	}
	attempts, err := attemptsText(d.Attempts)
	if err != nil {
		return webhooks.Delivery{}, wrap(op, err)
	}
	names := map[string]string{"#state": "state", "#updated": "updated_at", "#version": attrVersion,
		"#attempts": "attempts", "#next": "next_attempt_at", "#g2pk": AttrGSI2PK, "#g2sk": AttrGSI2SK}
	values := map[string]types.AttributeValue{":state": str(string(d.State)), ":updated": str(keyTS(d.UpdatedAt)),
		":expected": num(d.Version), ":version": num(d.Version + 1)}
	set := []string{"#state = :state", "#updated = :updated", "#version = :version"}
	var remove []string
	if attempts != "" {
		set, values[":attempts"] = append(set, "#attempts = :attempts"), str(attempts)
	} else {
		remove = append(remove, "#attempts")
	}
	if d.State == webhooks.DeliveryPending {
		set = append(set, "#next = :next", "#g2pk = :g2pk", "#g2sk = :g2sk")
		values[":next"], values[":g2pk"], values[":g2sk"] = str(keyTS(d.NextAttemptAt)), str(whDueShard(d.ID)), str(whDueSK(d))
	} else {
		remove = append(remove, "#next", "#g2pk", "#g2sk")
	}
	expr := "SET " + strings.Join(set, ", ")
	if len(remove) > 0 {
		expr += " REMOVE " + strings.Join(remove, ", ")
	}
	out, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           s.table,
		Key:                                 deliveryKey(d.CompanyID, d.EndpointID, d.ID),
		UpdateExpression:                    aws.String(expr),
		ConditionExpression:                 aws.String("#version = :expected"),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if old, ok := conditionFailed(err); ok {
		if len(old) == 0 {
			return webhooks.Delivery{}, wrap(op, comms.ErrNotFound)
		}
		return webhooks.Delivery{}, wrap(op, fmt.Errorf("%w: delivery %s is no longer at version %d", comms.ErrConflict, d.ID, d.Version))
	}
	if err != nil {
		return webhooks.Delivery{}, wrap(op, err)
	}
	stored, err := decodeDelivery(out.Attributes)
	if err != nil {
		return webhooks.Delivery{}, wrap(op, err)
	}
	return stored, nil
}

// DueDeliveries queries every WHDUE# shard of by_due in parallel for its
// earliest keys at or before t, merges them, and reads the deliveries with
// a consistent BatchGetItem, leaving out any that is no longer pending and
// due (the index is eventually consistent).
func (s *Store) DueDeliveries(ctx context.Context, t time.Time, limit int) ([]webhooks.Delivery, error) {
	// '$' follows '#': every sort key of a delivery due at t is below.
	ds, err := dueItems(ctx, s, prefixWHDue, keyTS(t)+"$", limit, decodeDelivery, func(d webhooks.Delivery) bool {
		return d.State == webhooks.DeliveryPending && !d.NextAttemptAt.After(t)
	})
	if err != nil {
		return nil, wrap("DueDeliveries", err)
	}
	slices.SortStableFunc(ds, func(a, b webhooks.Delivery) int { return strings.Compare(whDueSK(a), whDueSK(b)) })
	return ds, nil
}
