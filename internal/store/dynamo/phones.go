package dynamo

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// A phone number is claimed by one phone-number resource at most: the claim
// is an item of its own, pk PHONE#<e164>, sk CLAIM, naming the resource's
// company and id. PutPhoneNumber writes the resource and its claim in one
// TransactWriteItems, the claim's Put conditional on the number being free
// or already the resource's, and deletes the claim of the number the
// resource held before; DeletePhoneNumber deletes both.
//
// Resources stored before claims existed have none; their first put
// claims their number (if it is still free). DeletePhoneNumber and a change
// of number release only a claim that is the resource's own.
const (
	prefixClaim = "PHONE#"
	skClaim     = "CLAIM"
	entityClaim = "phone_number_claim"
)

// claimItem is the claim of one E.164 number.
type claimItem struct {
	PK            string `dynamodbav:"pk"`
	SK            string `dynamodbav:"sk"`
	Entity        string `dynamodbav:"entity"`
	CompanyID     string `dynamodbav:"company_id"`
	PhoneNumberID string `dynamodbav:"phone_number_id"`
}

func claimKey(e164 string) map[string]types.AttributeValue { return key(prefixClaim+e164, skClaim) }

// ownClaim is the condition that the claim is the resource's: names #co,
// #pid, values :co, :pid.
const ownClaim = "#co = :co AND #pid = :pid"

func claimNames() map[string]string {
	return map[string]string{"#co": "company_id", "#pid": "phone_number_id"}
}

func claimValues(companyID, id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{":co": str(companyID), ":pid": str(id)}
}

// ownsClaim reports whether the claim of e164 is the resource (companyID, id)'s.
func (s *Store) ownsClaim(ctx context.Context, e164, companyID, id string) (bool, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: s.table, Key: claimKey(e164), ConsistentRead: aws.Bool(true),
	})
	if err != nil || out.Item == nil {
		return false, err
	}
	var c claimItem
	if err := attributevalue.UnmarshalMap(out.Item, &c); err != nil {
		return false, err
	}
	return c.CompanyID == companyID && c.PhoneNumberID == id, nil
}

// releaseClaim is the transaction item that deletes the resource's claim of e164.
func (s *Store) releaseClaim(e164, companyID, id string) types.TransactWriteItem {
	return types.TransactWriteItem{Delete: &types.Delete{
		TableName: s.table, Key: claimKey(e164),
		ConditionExpression:       aws.String(ownClaim),
		ExpressionAttributeNames:  claimNames(),
		ExpressionAttributeValues: claimValues(companyID, id),
	}}
}

// currentPhone reads the resource as stored; found is false if absent.
func (s *Store) currentPhone(ctx context.Context, companyID, id string) (phoneItem, bool, error) {
	var it phoneItem
	err := s.getResource(ctx, companyID, prefixPhone+id, &it)
	if errors.Is(err, comms.ErrNotFound) {
		return phoneItem{}, false, nil
	}
	return it, err == nil, err
}

// PutPhoneNumber creates or replaces a phone number, keeping the first
// CreatedAt, and claims its number: one TransactWriteItems of the
// resource's Update (conditional on the number it was read with, so that
// the claim released below is the right one), the company's
// ConditionCheck, the claim's Put (attribute_not_exists(pk) or already the
// resource's: else ErrPhoneNumberTaken, nothing written) and, when the
// number changes, the old claim's Delete. ErrNotFound if the company does
// not exist. Within one process, puts of one number queue on a lock (as
// debits do; see the package documentation): the condition alone is what
// keeps a number to one resource across processes.
func (s *Store) PutPhoneNumber(ctx context.Context, p comms.PhoneNumber) error {
	const op = "PutPhoneNumber"
	up, err := resourceUpdate(phoneItem{
		PK: prefixCompany + p.CompanyID, SK: prefixPhone + p.ID, Entity: entityPhone,
		ID: p.ID, CompanyID: p.CompanyID, E164: p.E164, Capabilities: p.Capabilities, Label: p.Label,
		CreatedAt: ts(p.CreatedAt), UpdatedAt: ts(p.UpdatedAt),
	})
	if err != nil {
		return wrap(op, err)
	}
	up.TableName = s.table
	claim, err := attributevalue.MarshalMap(claimItem{
		PK: prefixClaim + p.E164, SK: skClaim, Entity: entityClaim, CompanyID: p.CompanyID, PhoneNumberID: p.ID,
	})
	if err != nil {
		return wrap(op, err)
	}
	names := claimNames()
	names["#pk"] = AttrPK
	putClaim := types.TransactWriteItem{Put: &types.Put{
		TableName: s.table, Item: claim,
		ConditionExpression:       aws.String("attribute_not_exists(#pk) OR (" + ownClaim + ")"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: claimValues(p.CompanyID, p.ID),
	}}
	unlock, err := s.claims.lock(ctx, p.E164)
	if err != nil {
		return wrap(op, err)
	}
	defer unlock()
	for attempt := 1; ; attempt++ {
		old, found, err := s.currentPhone(ctx, p.CompanyID, p.ID)
		if err != nil {
			return wrap(op, err)
		}
		// The resource must still be as read when the transaction commits.
		up.ExpressionAttributeNames["#cpk"], up.ExpressionAttributeNames["#ce164"] = AttrPK, "e164"
		if found {
			up.ConditionExpression = aws.String("#ce164 = :ce164")
			up.ExpressionAttributeValues[":ce164"] = str(old.E164)
			delete(up.ExpressionAttributeNames, "#cpk")
		} else {
			up.ConditionExpression = aws.String("attribute_not_exists(#cpk)")
			delete(up.ExpressionAttributeValues, ":ce164")
			delete(up.ExpressionAttributeNames, "#ce164")
		}
		items := []types.TransactWriteItem{{Update: up}, s.companyExistsItem(p.CompanyID), putClaim}
		if found && old.E164 != p.E164 {
			own, err := s.ownsClaim(ctx, old.E164, p.CompanyID, p.ID)
			if err != nil {
				return wrap(op, err)
			}
			if own {
				items = append(items, s.releaseClaim(old.E164, p.CompanyID, p.ID))
			}
		}
		_, err = s.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			return nil
		}
		codes, _, _ := cancellation(err)
		switch {
		case failed(codes, 2):
			return wrap(op, fmt.Errorf("%w: %s is held by another phone-number resource", comms.ErrPhoneNumberTaken, p.E164))
		case failed(codes, 1):
			return wrap(op, fmt.Errorf("%w: no such company: %v", comms.ErrNotFound, err))
		case failed(codes, 0), failed(codes, 3), conflicted(err, codes):
			// The resource or its old claim changed since it was read.
		default:
			return wrap(op, err)
		}
		if attempt == maxDebitAttempts {
			return wrap(op, fmt.Errorf("%w: the phone number kept changing during %d attempts: %v", comms.ErrConflict, attempt, err))
		}
		if err := retryBackoff.Sleep(ctx, attempt); err != nil {
			return wrap(op, err)
		}
	}
}

// DeletePhoneNumber deletes a phone number and releases its claim in one
// TransactWriteItems, the resource's Delete conditional on the number it
// was read with; ErrNotFound if absent.
func (s *Store) DeletePhoneNumber(ctx context.Context, companyID, id string) error {
	const op = "DeletePhoneNumber"
	for attempt := 1; ; attempt++ {
		old, found, err := s.currentPhone(ctx, companyID, id)
		if err != nil {
			return wrap(op, err)
		}
		if !found {
			return wrap(op, comms.ErrNotFound)
		}
		items := []types.TransactWriteItem{{Delete: &types.Delete{
			TableName: s.table, Key: key(prefixCompany+companyID, prefixPhone+id),
			ConditionExpression:       aws.String("#e164 = :e164"),
			ExpressionAttributeNames:  map[string]string{"#e164": "e164"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":e164": str(old.E164)},
		}}}
		own, err := s.ownsClaim(ctx, old.E164, companyID, id)
		if err != nil {
			return wrap(op, err)
		}
		if own {
			items = append(items, s.releaseClaim(old.E164, companyID, id))
		}
		_, err = s.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			return nil
		}
		codes, _, _ := cancellation(err)
		if !failed(codes, 0) && !failed(codes, 1) && !conflicted(err, codes) {
			return wrap(op, err)
		}
		// Changed or deleted since read: read again.
		if attempt == maxDebitAttempts {
			return wrap(op, fmt.Errorf("%w: the phone number kept changing during %d attempts: %v", comms.ErrConflict, attempt, err))
		}
		if err := retryBackoff.Sleep(ctx, attempt); err != nil {
			return wrap(op, err)
		}
	}
}
