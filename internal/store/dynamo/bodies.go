package dynamo

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// Payload bodies. A row's payload longer than InlinePayloadMax bytes is not
// kept in the row's item, which every transition rewrites (and pays for by
// size), but in an item of its own in the row's partition, sk BODY,
// written before the row's create and again only when the payload changes
// (an edit) or its TTL must move (bodyTTL). The row's item then carries
// body_ref instead of payload: the payload's FNV-1a 64 hash and the body
// item's TTL ("<hash hex>.<ttl>"), which the body item carries too.
//
// Every row read reads its body item with it: GetCommunication is one
// Query of the partition's BODY..COMM range (one call, the same read
// units as a GetItem of a row holding its payload); BatchGetItem reads
// (due rows, listings) read the rows, then the bodies of those that have
// one. A write that does not carry the body conditions the row's Put on
// body_ref being the one it would write; when that fails on a row still at
// the expected version (an edited payload, a TTL that moved, a row stored
// before bodies existed or with a short payload), the write is repeated
// with the body item's Put. A payload that shrinks to InlinePayloadMax or
// less goes back into the row; its old body item is left to its TTL.
//
// Creates. CreateCommunication writes the body item with a PutItem of its
// own just before the create's transaction (once its credit check passed),
// not inside it: a transaction bills each item twice, 514 write units for a
// 256 KiB body against 257. The row, written after, always finds its body;
// a create whose transaction then fails (a lost debit race, a concurrent
// Idempotency-Key, a timeout) leaves the body behind, without a row, until
// its TTL. The Put is conditioned on the partition holding no other body
// (attribute_not_exists(pk) OR the same body_ref), so it can never replace
// the payload of a row that exists. Follow-ups (InsertCommunication, a
// transition's insert) carry voice payloads, which stay inline; a large one
// would be written in its transaction.
const (
	// InlinePayloadMax is the longest payload (JSON bytes) kept in the
	// row's item: SMS, voice and short emails. At that size the row item
	// stays near 1 KB, one write unit.
	InlinePayloadMax = 1024

	skBody      = "BODY"
	entityBody  = "communication_body"
	attrBodyRef = "body_ref"
)

// bodyItem is the item of a row's payload.
type bodyItem struct {
	PK      string `dynamodbav:"pk"`
	SK      string `dynamodbav:"sk"`
	Entity  string `dynamodbav:"entity"`
	Payload []byte `dynamodbav:"payload"`
	Ref     string `dynamodbav:"body_ref"`
	TTL     int64  `dynamodbav:"ttl,omitempty"`
}

// splitBody reports whether c's payload is kept in a body item.
func splitBody(c comms.Communication) bool { return len(c.Payload) > InlinePayloadMax }

// bodyRef is the body_ref of c's payload as the store writes it now.
func (s *Store) bodyRef(c comms.Communication) (ref string, ttl int64) {
	h := fnv.New64a()
	_, _ = h.Write(c.Payload)
	ttl = s.bodyTTL(c)
	return strconv.FormatUint(h.Sum64(), 16) + "." + strconv.FormatInt(ttl, 10), ttl
}

// bodyPut is the Put of c's body item (unconditional: it is written only
// in a transaction whose row write holds).
func (s *Store) bodyPut(c comms.Communication) (types.TransactWriteItem, error) {
	ref, ttl := s.bodyRef(c)
	item, err := attributevalue.MarshalMap(bodyItem{PK: commPK(c.CompanyID, c.ID), SK: skBody, Entity: entityBody,
		Payload: c.Payload, Ref: ref, TTL: ttl})
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	return types.TransactWriteItem{Put: &types.Put{TableName: s.table, Item: item}}, nil
}

// putNewBody writes the body item of c, a row being created, with a plain
// PutItem on condition that the row's partition holds no other body
// (ErrAlreadyExists: the id is taken).
func (s *Store) putNewBody(ctx context.Context, c comms.Communication) error {
	put, err := s.bodyPut(c)
	if err != nil {
		return err
	}
	_, err = s.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: s.table, Item: put.Put.Item,
		ConditionExpression:       aws.String("attribute_not_exists(#pk) OR #bref = :bref"),
		ExpressionAttributeNames:  map[string]string{"#pk": AttrPK, "#bref": attrBodyRef},
		ExpressionAttributeValues: map[string]types.AttributeValue{":bref": put.Put.Item[attrBodyRef]},
	})
	if _, ok := conditionFailed(err); ok {
		return fmt.Errorf("%w: row %s has another payload item: %v", comms.ErrAlreadyExists, c.ID, err)
	}
	return err
}

// getComm reads a row and its body item with one strongly consistent Query
// (sk BETWEEN BODY AND COMM: events sort after COMM); ErrNotFound if the
// row is absent.
func (s *Store) getComm(ctx context.Context, companyID, id string) (comms.Communication, error) {
	out, err := s.api.Query(ctx, &dynamodb.QueryInput{
		TableName: s.table, ConsistentRead: aws.Bool(true),
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :body AND :comm"),
		ExpressionAttributeNames: map[string]string{"#pk": AttrPK, "#sk": AttrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(commPK(companyID, id)), ":body": str(skBody), ":comm": str(skComm)},
	})
	if err != nil {
		return comms.Communication{}, err
	}
	var row, body map[string]types.AttributeValue
	for _, it := range out.Items {
		switch strAttr(it, AttrSK) {
		case skComm:
			row = it
		case skBody:
			body = it
		}
	}
	if row == nil {
		return comms.Communication{}, comms.ErrNotFound
	}
	c, err := decodeComm(row)
	if err != nil {
		return comms.Communication{}, err
	}
	if ref := strAttr(row, attrBodyRef); ref != "" {
		if c.Payload, err = bodyPayload(c.ID, ref, body); err != nil {
			return comms.Communication{}, err
		}
	}
	return c, nil
}

// bodyPayload returns the payload of body, the body item of row id whose
// item names ref.
func bodyPayload(id, ref string, body map[string]types.AttributeValue) ([]byte, error) {
	if body == nil {
		return nil, fmt.Errorf("row %s: its payload item is missing", id)
	}
	var b bodyItem
	if err := attributevalue.UnmarshalMap(body, &b); err != nil {
		return nil, fmt.Errorf("row %s: payload item: %w", id, err)
	}
	if b.Ref != ref {
		return nil, fmt.Errorf("row %s: payload item %s, want %s", id, b.Ref, ref)
	}
	return b.Payload, nil
}

// decodeRows decodes row items and reads the body items of those that
// have one (BatchGetItem, consistent or not), in order. Eventually
// consistent reads that find a row and a body of different moments are
// read again strongly consistent (the body, then the row with it); a row
// deleted meanwhile is then an error (rows are never deleted).
func (s *Store) decodeRows(ctx context.Context, items []map[string]types.AttributeValue, consistent bool) ([]comms.Communication, error) {
	rows := make([]comms.Communication, len(items))
	refs := map[string]int{} // pk → index
	var keys []map[string]types.AttributeValue
	for i, it := range items {
		c, err := decodeComm(it)
		if err != nil {
			return nil, err
		}
		rows[i] = c
		if strAttr(it, attrBodyRef) != "" {
			refs[pkOf(it)] = i
			keys = append(keys, key(pkOf(it), skBody))
		}
	}
	if len(keys) == 0 {
		return rows, nil
	}
	bodies := map[string]map[string]types.AttributeValue{}
	if err := s.batchGetWith(ctx, keys, consistent, func(it map[string]types.AttributeValue) { bodies[pkOf(it)] = it }); err != nil {
		return nil, err
	}
	// An eventually consistent read may see a row and its body at
	// different moments (a body just written with its row, or just
	// replaced by an edit): those are read again, strongly consistent.
	var again []map[string]types.AttributeValue
	for pk, i := range refs {
		if b := bodies[pk]; b == nil || strAttr(b, attrBodyRef) != strAttr(items[i], attrBodyRef) {
			again = append(again, key(pk, skBody))
		}
	}
	if len(again) > 0 && !consistent {
		if err := s.batchGetWith(ctx, again, true, func(it map[string]types.AttributeValue) { bodies[pkOf(it)] = it }); err != nil {
			return nil, err
		}
	}
	for pk, i := range refs {
		p, err := bodyPayload(rows[i].ID, strAttr(items[i], attrBodyRef), bodies[pk])
		if err != nil && !consistent {
			// The row read was the stale one: read both again.
			rows[i], err = s.getComm(ctx, rows[i].CompanyID, rows[i].ID)
			if err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		rows[i].Payload = p
	}
	return rows, nil
}
