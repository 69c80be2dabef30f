package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// Suppressions live in one partition per company, pk SUPP#<company>, sk
// <channel>#<recipient>: the sort key order is the listing's (channel,
// recipient) order, since channels ("email", "sms") contain no '#' and
// neither is a prefix of the other. A provider message id is found through
// a small mapping item, pk PMID#<provider message id>, sk PMID, naming the
// row's company and id, written in the transaction that sets the row's
// provider message id, so the lookup is two strongly consistent GetItems.
const (
	prefixSupp = "SUPP#"
	prefixPMID = "PMID#"
	skPMID     = "PMID"

	entitySupp = "suppression"
	entityPMID = "provider_message_id"

	attrLiftedAt = "lifted_at"
)

// suppItem is a suppression.
type suppItem struct {
	PK              string `dynamodbav:"pk"`
	SK              string `dynamodbav:"sk"`
	Entity          string `dynamodbav:"entity"`
	CompanyID       string `dynamodbav:"company_id"`
	Channel         string `dynamodbav:"channel"`
	Recipient       string `dynamodbav:"recipient"`
	Reason          string `dynamodbav:"reason,omitempty"`
	Detail          string `dynamodbav:"detail,omitempty"`
	CommunicationID string `dynamodbav:"communication_id,omitempty"`
	CreatedAt       string `dynamodbav:"created_at,omitempty"`
	CreatedBy       string `dynamodbav:"created_by,omitempty"`
	LiftedAt        string `dynamodbav:"lifted_at,omitempty"`
	LiftedBy        string `dynamodbav:"lifted_by,omitempty"`
	// Lifts is the JSON of []comms.SuppressionLift, written only by
	// LiftSuppression: the writes of a suppression update the other
	// attributes and keep it.
	Lifts string `dynamodbav:"lifts,omitempty"`
}

// suppAttrs are the attributes a suppression write sets or removes (all but
// the key and lifts).
var suppAttrs = []string{"entity", "company_id", "channel", "recipient", "reason", "detail", "communication_id",
	"created_at", "created_by", "lifted_at", "lifted_by"}

func suppSK(channel comms.SuppressionChannel, recipient string) string {
	return string(channel) + "#" + recipient
}

func suppKey(companyID string, channel comms.SuppressionChannel, recipient string) map[string]types.AttributeValue {
	return key(prefixSupp+companyID, suppSK(channel, recipient))
}

func newSuppItem(x comms.Suppression) suppItem {
	return suppItem{
		PK: prefixSupp + x.CompanyID, SK: suppSK(x.Channel, x.Recipient), Entity: entitySupp,
		CompanyID: x.CompanyID, Channel: string(x.Channel), Recipient: x.Recipient, Reason: string(x.Reason),
		Detail: x.Detail, CommunicationID: x.CommunicationID, CreatedAt: ts(x.CreatedAt), CreatedBy: x.CreatedBy,
		LiftedAt: tsPtr(x.LiftedAt), LiftedBy: x.LiftedBy,
	}
}

func decodeSupp(item map[string]types.AttributeValue) (comms.Suppression, error) {
	var it suppItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return comms.Suppression{}, err
	}
	x := comms.Suppression{
		CompanyID: it.CompanyID, Channel: comms.SuppressionChannel(it.Channel), Recipient: it.Recipient,
		Reason: comms.SuppressionReason(it.Reason), Detail: it.Detail, CommunicationID: it.CommunicationID,
		CreatedBy: it.CreatedBy, LiftedBy: it.LiftedBy,
	}
	var err error
	if x.CreatedAt, err = fromTS(it.CreatedAt); err != nil {
		return comms.Suppression{}, err
	}
	if x.LiftedAt, err = fromTSPtr(it.LiftedAt); err != nil {
		return comms.Suppression{}, err
	}
	if it.Lifts != "" {
		if err := json.Unmarshal([]byte(it.Lifts), &x.Lifts); err != nil {
			return comms.Suppression{}, fmt.Errorf("suppression lifts: %w", err)
		}
	}
	return x, nil
}

// suppUpdate is the write of a suppression: an Update that sets its
// attributes and removes the empty ones, keeping lifts.
func (s *Store) suppUpdate(x comms.Suppression) (*types.Update, error) {
	item, err := attributevalue.MarshalMap(newSuppItem(x))
	if err != nil {
		return nil, err
	}
	var set, remove []string
	names, values := map[string]string{}, map[string]types.AttributeValue{}
	for i, a := range suppAttrs {
		n := fmt.Sprintf("#a%d", i)
		names[n] = a
		if v, ok := item[a]; ok {
			values[":v"+n[1:]] = v
			set = append(set, n+" = :v"+n[1:])
		} else {
			remove = append(remove, n)
		}
	}
	expr := "SET " + strings.Join(set, ", ")
	if len(remove) > 0 {
		expr += " REMOVE " + strings.Join(remove, ", ")
	}
	return &types.Update{TableName: s.table, Key: suppKey(x.CompanyID, x.Channel, x.Recipient),
		UpdateExpression: aws.String(expr), ExpressionAttributeNames: names, ExpressionAttributeValues: values}, nil
}

// suppAddCondition is the condition of every suppression write: the
// recipient has no active suppression (no item, or a lifted one). A
// suppression is added, never replaces an active one (first reason wins
// while active).
const suppAddCondition = "attribute_not_exists(#pk) OR attribute_exists(#lifted)"

// suppressionPuts returns the writes (Updates that keep the item's lifts,
// conditional on suppAddCondition) of a Change's suppressions, one per
// (company, channel, recipient) — the last one given — as a transaction may
// not write one item twice. The recorder leaves out recipients it read as
// actively suppressed; one suppressed since fails the condition, which
// cancels the transaction as ErrConflict, and the recorder reads again.
func (s *Store) suppressionPuts(xs []comms.Suppression) ([]types.TransactWriteItem, error) {
	var out []types.TransactWriteItem
	at := map[string]int{}
	for _, x := range xs {
		u, err := s.suppUpdate(x)
		if err != nil {
			return nil, err
		}
		u.ConditionExpression = aws.String(suppAddCondition)
		u.ExpressionAttributeNames["#pk"], u.ExpressionAttributeNames["#lifted"] = AttrPK, attrLiftedAt
		put := types.TransactWriteItem{Update: u}
		k := prefixSupp + x.CompanyID + "\x00" + suppSK(x.Channel, x.Recipient)
		if i, ok := at[k]; ok {
			out[i] = put
			continue
		}
		at[k] = len(out)
		out = append(out, put)
	}
	return out, nil
}

// PutSuppression adds the suppression of (company, channel, recipient)
// unless it has an active one: after a consistent GetItem of the company
// (ErrNotFound), one UpdateItem conditional on suppAddCondition. It
// returns the record as stored (ReturnValues ALL_NEW: the lifts the Update
// kept) and true, or — the condition failed — the active suppression
// (ReturnValuesOnConditionCheckFailure ALL_OLD) and false. A single-item
// conditional write: of concurrent puts of one recipient exactly one
// creates. (A company is never deleted while its API keys can call this.)
// Within one process, puts of one recipient queue on a lock, as puts of a
// phone number do: the condition is what makes a put right on DynamoDB;
// the lock lets the suite's concurrent case pass against moto, which runs
// concurrent requests without isolation.
func (s *Store) PutSuppression(ctx context.Context, x comms.Suppression) (comms.Suppression, bool, error) {
	const op = "PutSuppression"
	unlock, err := s.claims.lock(ctx, prefixSupp+x.CompanyID+"#"+suppSK(x.Channel, x.Recipient))
	if err != nil {
		return comms.Suppression{}, false, wrap(op, err)
	}
	defer unlock()
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: s.table, Key: companyKey(x.CompanyID),
		ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String("#pk"), ExpressionAttributeNames: map[string]string{"#pk": AttrPK}})
	switch {
	case err != nil:
		return comms.Suppression{}, false, wrap(op, err)
	case out.Item == nil:
		return comms.Suppression{}, false, wrap(op, comms.ErrNotFound)
	}
	u, err := s.suppUpdate(x)
	if err != nil {
		return comms.Suppression{}, false, wrap(op, err)
	}
	u.ExpressionAttributeNames["#pk"], u.ExpressionAttributeNames["#lifted"] = AttrPK, attrLiftedAt
	res, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: u.TableName, Key: u.Key, UpdateExpression: u.UpdateExpression,
		ConditionExpression:                 aws.String(suppAddCondition),
		ExpressionAttributeNames:            u.ExpressionAttributeNames,
		ExpressionAttributeValues:           u.ExpressionAttributeValues,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if old, ok := conditionFailed(err); ok {
		if len(old) == 0 { // the old image is not always given back (moto): read it
			cur, err := s.GetSuppression(ctx, x.CompanyID, x.Channel, x.Recipient)
			return cur, false, wrap(op, err)
		}
		cur, err := decodeSupp(old)
		return cur, false, wrap(op, err)
	}
	if err != nil {
		return comms.Suppression{}, false, wrap(op, err)
	}
	got, err := decodeSupp(res.Attributes)
	return got, err == nil, wrap(op, err)
}

// GetSuppression returns the suppression of the recipient, active or lifted.
func (s *Store) GetSuppression(ctx context.Context, companyID string, channel comms.SuppressionChannel, recipient string) (comms.Suppression, error) {
	return getItem(ctx, s, "GetSuppression", suppKey(companyID, channel, recipient), decodeSupp)
}

// ListSuppressions queries the company's suppression partition (strongly
// consistent) in sort-key order: the channel and the cursor bound the sort
// key, the recipient and liftedness filter.
func (s *Store) ListSuppressions(ctx context.Context, companyID string, f comms.SuppressionFilter) ([]comms.Suppression, bool, error) {
	const op = "ListSuppressions"
	limit := f.Limit
	if limit < 1 || limit > maxLimit {
		limit = maxLimit
	}
	var after string // the cursor's sort key, skipped
	if f.After != "" {
		ch, rcpt, ok := strings.Cut(f.After, ":")
		if !ok || !comms.SuppressionChannel(ch).Valid() || rcpt == "" {
			return nil, false, wrap(op, comms.ErrBadCursor)
		}
		after = suppSK(comms.SuppressionChannel(ch), rcpt)
	}
	if f.Recipient != "" {
		xs, err := s.suppressionsOf(ctx, companyID, f, after)
		if err != nil {
			return nil, false, wrap(op, err)
		}
		if len(xs) > limit {
			return xs[:limit], true, nil
		}
		return xs, false, nil
	}
	names := map[string]string{"#pk": AttrPK}
	values := map[string]types.AttributeValue{":pk": str(prefixSupp + companyID)}
	kc := "#pk = :pk"
	switch {
	case f.Channel != "":
		// Every sort key of the channel is in [<channel>#, <channel>$]
		// ('$' follows '#').
		lo, hi := string(f.Channel)+"#", string(f.Channel)+"$"
		if after > lo {
			lo = after
		}
		if lo > hi {
			return []comms.Suppression{}, false, nil
		}
		kc += " AND #sk BETWEEN :lo AND :hi"
		names["#sk"], values[":lo"], values[":hi"] = AttrSK, str(lo), str(hi)
	case after != "":
		kc += " AND #sk > :lo"
		names["#sk"], values[":lo"] = AttrSK, str(after)
	}
	var filters []string
	if !f.IncludeLifted {
		names["#lifted"] = attrLiftedAt
		filters = append(filters, "attribute_not_exists(#lifted)")
	}
	in := &dynamodb.QueryInput{
		TableName:                 s.table,
		ConsistentRead:            aws.Bool(true),
		KeyConditionExpression:    aws.String(kc),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}
	if len(filters) > 0 {
		in.FilterExpression = aws.String(strings.Join(filters, " AND "))
	}
	xs, more, err := queryListing(ctx, s.api, in, limit,
		func(item map[string]types.AttributeValue) bool { return after != "" && strAttr(item, AttrSK) == after }, decodeSupp)
	return xs, more, wrap(op, err)
}

// suppressionsOf is ListSuppressions of one recipient: a recipient has at
// most one suppression per channel, each at a known key, so it is a
// consistent GetItem per channel (f.Channel, or email then sms — the
// listing's order) instead of a scan of the company's partition, after
// the cursor's sort key.
func (s *Store) suppressionsOf(ctx context.Context, companyID string, f comms.SuppressionFilter, after string) ([]comms.Suppression, error) {
	channels := []comms.SuppressionChannel{comms.SuppressEmail, comms.SuppressSMS}
	if f.Channel != "" {
		channels = []comms.SuppressionChannel{f.Channel}
	}
	out := []comms.Suppression{}
	for _, ch := range channels {
		if after != "" && suppSK(ch, f.Recipient) <= after {
			continue
		}
		x, err := s.GetSuppression(ctx, companyID, ch, f.Recipient)
		if errors.Is(err, comms.ErrNotFound) || err == nil && !f.IncludeLifted && !x.Active() {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

// LiftSuppression sets lifted_at and lifted_by on the suppression if it is
// active (UpdateItem conditional on attribute_not_exists(lifted_at)) and
// returns it as stored; ErrNotFound when there is no active one.
func (s *Store) LiftSuppression(ctx context.Context, companyID string, channel comms.SuppressionChannel, recipient, by string, at time.Time) (comms.Suppression, error) {
	const op = "LiftSuppression"
	cur, err := s.GetSuppression(ctx, companyID, channel, recipient)
	if err != nil {
		return comms.Suppression{}, wrap(op, err)
	}
	if !cur.Active() {
		return comms.Suppression{}, wrap(op, comms.ErrNotFound)
	}
	lifts, err := json.Marshal(append(cur.Lifts, cur.Lifted(by, at)))
	if err != nil {
		return comms.Suppression{}, wrap(op, err)
	}
	update := "SET #lifted = :at, #lifts = :lifts REMOVE #by"
	values := map[string]types.AttributeValue{":at": str(keyTS(at)), ":lifts": str(string(lifts)), ":created": str(ts(cur.CreatedAt))}
	if by != "" {
		update = "SET #lifted = :at, #by = :by, #lifts = :lifts"
		values[":by"] = str(by)
	}
	// Still the suppression that was read: active, and not replaced since.
	out, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           s.table,
		Key:                 suppKey(companyID, channel, recipient),
		UpdateExpression:    aws.String(update),
		ConditionExpression: aws.String("attribute_exists(#pk) AND attribute_not_exists(#lifted) AND #created = :created"),
		ExpressionAttributeNames: map[string]string{"#pk": AttrPK, "#lifted": attrLiftedAt, "#by": "lifted_by",
			"#lifts": "lifts", "#created": "created_at"},
		ExpressionAttributeValues: values,
		ReturnValues:              types.ReturnValueAllNew,
	})
	if _, ok := conditionFailed(err); ok {
		return comms.Suppression{}, wrap(op, comms.ErrNotFound)
	}
	if err != nil {
		return comms.Suppression{}, wrap(op, err)
	}
	x, err := decodeSupp(out.Attributes)
	return x, wrap(op, err)
}

// pmidItem maps a provider message id to its row.
type pmidItem struct {
	PK              string `dynamodbav:"pk"`
	SK              string `dynamodbav:"sk"`
	Entity          string `dynamodbav:"entity"`
	CompanyID       string `dynamodbav:"company_id"`
	CommunicationID string `dynamodbav:"communication_id"`
}

// pmidPut is the unconditional Put of c's provider message id mapping. It
// is unconditional so that it can never fail the transition it rides on
// (providers do not reuse message ids; were one reused, the last row
// written with it would be found).
func (s *Store) pmidPut(c comms.Communication) types.TransactWriteItem {
	item := map[string]types.AttributeValue{
		AttrPK: str(prefixPMID + c.ProviderMessageID), AttrSK: str(skPMID), attrEntity: str(entityPMID),
		"company_id": str(c.CompanyID), "communication_id": str(c.ID),
	}
	if ttl := s.rowTTL(c); ttl > 0 {
		item[AttrTTL] = num(ttl) // the row's when it is written (see retention.go)
	}
	return types.TransactWriteItem{Put: &types.Put{TableName: s.table, Item: item}}
}

// setsProviderMessageID reports whether ch is the transition that gives
// its row a provider message id. A Change does not carry the row it was
// made from, so its events tell: in the lifecycle, exactly the transitions
// that set provider_message_id (RecordSent, RecordCallPlaced, and a send
// settled late by RecordDelivery or SettleAttempt) emit sent. Later
// transitions of a sent row (delivery reports, a call's outcome) keep the
// id and need no second write of the mapping.
func setsProviderMessageID(ch comms.Change) bool {
	if ch.Row.ProviderMessageID == "" {
		return false
	}
	for _, e := range ch.Events {
		if e.Type == comms.EventSent {
			return true
		}
	}
	return false
}

// CommunicationByProviderMessageID reads the mapping item of id, then the
// row it names (both strongly consistent); ErrNotFound if either is absent
// or the row no longer carries id.
func (s *Store) CommunicationByProviderMessageID(ctx context.Context, id string) (comms.Communication, error) {
	const op = "CommunicationByProviderMessageID"
	if id == "" {
		return comms.Communication{}, wrap(op, comms.ErrNotFound)
	}
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: s.table, Key: key(prefixPMID+id, skPMID), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return comms.Communication{}, wrap(op, err)
	}
	if out.Item == nil {
		return comms.Communication{}, wrap(op, comms.ErrNotFound)
	}
	var m pmidItem
	if err := attributevalue.UnmarshalMap(out.Item, &m); err != nil {
		return comms.Communication{}, wrap(op, err)
	}
	c, err := s.GetCommunication(ctx, m.CompanyID, m.CommunicationID)
	if err != nil {
		return comms.Communication{}, wrap(op, err)
	}
	if c.ProviderMessageID != id {
		return comms.Communication{}, wrap(op, comms.ErrNotFound)
	}
	return c, nil
}
