package dynamo

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
)

var _ webhooks.EndpointStore = (*Store)(nil)

// A webhook endpoint lives in its company's partition, pk COMPANY#<company>,
// sk WEBHOOK#<id>, beside the company's phone numbers and voice agents: a
// company has at most webhooks.MaxEndpoints of them, and the listing is one
// strongly consistent Query in id order. event_types and secrets are JSON
// strings; a secret's times are in the table's time layout.
const (
	prefixWebhook = "WEBHOOK#"
	entityWebhook = "webhook_endpoint"
)

type webhookItem struct {
	PK             string `dynamodbav:"pk"`
	SK             string `dynamodbav:"sk"`
	Entity         string `dynamodbav:"entity"`
	CompanyID      string `dynamodbav:"company_id"`
	ID             string `dynamodbav:"id"`
	URL            string `dynamodbav:"url"`
	EventTypes     string `dynamodbav:"event_types"`
	Description    string `dynamodbav:"description,omitempty"`
	Disabled       bool   `dynamodbav:"disabled"`
	DisabledReason string `dynamodbav:"disabled_reason,omitempty"`
	Secrets        string `dynamodbav:"secrets"`
	CreatedAt      string `dynamodbav:"created_at,omitempty"`
	UpdatedAt      string `dynamodbav:"updated_at,omitempty"`
	Version        int64  `dynamodbav:"version"`
	DisabledAt     string `dynamodbav:"disabled_at,omitempty"`
	FailingSince   string `dynamodbav:"failing_since,omitempty"`
}

// webhookSecret is a signing secret in the secrets attribute.
type webhookSecret struct {
	Value     string `json:"value"`
	CreatedAt string `json:"created_at"`
	ExpiresAt string `json:"expires_at,omitempty"`
}

func webhookKey(companyID, id string) map[string]types.AttributeValue {
	return key(prefixCompany+companyID, prefixWebhook+id)
}

// webhookPut is the item of e as it is stored: at version e.Version+1.
func webhookPut(e webhooks.Endpoint) (map[string]types.AttributeValue, error) {
	ts0 := e.EventTypes
	if ts0 == nil {
		ts0 = []comms.EventType{}
	}
	tj, err := json.Marshal(ts0)
	if err != nil {
		return nil, err
	}
	secrets := make([]webhookSecret, len(e.Secrets))
	for i, s := range e.Secrets {
		secrets[i] = webhookSecret{Value: s.Value, CreatedAt: keyTS(s.CreatedAt), ExpiresAt: tsPtr(s.ExpiresAt)}
	}
	sj, err := json.Marshal(secrets)
	if err != nil {
		return nil, err
	}
	return attributevalue.MarshalMap(webhookItem{
		PK: prefixCompany + e.CompanyID, SK: prefixWebhook + e.ID, Entity: entityWebhook,
		CompanyID: e.CompanyID, ID: e.ID, URL: e.URL, EventTypes: string(tj), Description: e.Description,
		Disabled: e.Disabled, DisabledReason: string(e.DisabledReason), Secrets: string(sj),
		CreatedAt: ts(e.CreatedAt), UpdatedAt: ts(e.UpdatedAt), Version: e.Version + 1,
		DisabledAt: ts(e.DisabledAt), FailingSince: ts(e.FailingSince),
	})
}

func decodeWebhook(item map[string]types.AttributeValue) (webhooks.Endpoint, error) {
	var it webhookItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return webhooks.Endpoint{}, err
	}
	e := webhooks.Endpoint{ID: it.ID, CompanyID: it.CompanyID, URL: it.URL, Description: it.Description,
		Disabled: it.Disabled, DisabledReason: webhooks.DisabledReason(it.DisabledReason), Version: it.Version}
	var err error
	if e.CreatedAt, err = fromTS(it.CreatedAt); err != nil {
		return webhooks.Endpoint{}, err
	}
	if e.UpdatedAt, err = fromTS(it.UpdatedAt); err != nil {
		return webhooks.Endpoint{}, err
	}
	if e.DisabledAt, err = fromTS(it.DisabledAt); err != nil {
		return webhooks.Endpoint{}, err
	}
	if e.FailingSince, err = fromTS(it.FailingSince); err != nil {
		return webhooks.Endpoint{}, err
	}
	if err := json.Unmarshal([]byte(it.EventTypes), &e.EventTypes); err != nil {
		return webhooks.Endpoint{}, fmt.Errorf("webhook endpoint event_types: %w", err)
	}
	if len(e.EventTypes) == 0 {
		e.EventTypes = nil
	}
	var secrets []webhookSecret
	if err := json.Unmarshal([]byte(it.Secrets), &secrets); err != nil {
		return webhooks.Endpoint{}, fmt.Errorf("webhook endpoint secrets: %w", err)
	}
	for _, s := range secrets {
		x := webhooks.Secret{Value: s.Value}
		if x.CreatedAt, err = fromTS(s.CreatedAt); err != nil {
			return webhooks.Endpoint{}, err
		}
		if x.ExpiresAt, err = fromTSPtr(s.ExpiresAt); err != nil {
			return webhooks.Endpoint{}, err
		}
		e.Secrets = append(e.Secrets, x)
	}
	return e, nil
}

// PutWebhookEndpoint creates the endpoint (e.Version 0: a transaction of
// the item's Put, attribute_not_exists(pk), and the company's
// ConditionCheck) or replaces it (a PutItem on condition version =
// e.Version, ALL_OLD on failure to tell ErrConflict from ErrNotFound).
func (s *Store) PutWebhookEndpoint(ctx context.Context, e webhooks.Endpoint) error {
	const op = "PutWebhookEndpoint"
	item, err := webhookPut(e)
	if err != nil {
		return wrap(op, err)
	}
	if e.Version == 0 {
		_, err := s.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
			{Put: &types.Put{TableName: s.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(#pk)"),
				ExpressionAttributeNames: map[string]string{"#pk": AttrPK}}},
			s.companyExistsItem(e.CompanyID),
		}})
		if codes, _, ok := cancellation(err); ok {
			switch {
			case failed(codes, 0):
				err = fmt.Errorf("%w: %v", comms.ErrAlreadyExists, err)
			case failed(codes, 1):
				err = fmt.Errorf("%w: no such company: %v", comms.ErrNotFound, err)
			}
		}
		return wrap(op, err)
	}
	_, err = s.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: s.table, Item: item,
		ConditionExpression:                 aws.String("#v = :v"),
		ExpressionAttributeNames:            map[string]string{"#v": "version"},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":v": num(e.Version)},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if old, ok := conditionFailed(err); ok {
		if len(old) == 0 {
			err = comms.ErrNotFound
		} else {
			err = fmt.Errorf("%w: stored version %s, written from %d", comms.ErrConflict, numAttr(old, "version"), e.Version)
		}
	}
	return wrap(op, err)
}

func numAttr(item map[string]types.AttributeValue, name string) string {
	if n, ok := item[name].(*types.AttributeValueMemberN); ok {
		return n.Value
	}
	return "?"
}

// GetWebhookEndpoint returns an endpoint of the company (GetItem,
// consistent).
func (s *Store) GetWebhookEndpoint(ctx context.Context, companyID, id string) (webhooks.Endpoint, error) {
	return getItem(ctx, s, "GetWebhookEndpoint", webhookKey(companyID, id), decodeWebhook)
}

// ListWebhookEndpoints queries the company's partition (consistent) for
// sort keys in (WEBHOOK#<after>, WEBHOOK$): its endpoints in id order.
func (s *Store) ListWebhookEndpoints(ctx context.Context, companyID, after string, limit int) ([]webhooks.Endpoint, bool, error) {
	const op = "ListWebhookEndpoints"
	if limit < 1 || limit > maxLimit {
		limit = maxLimit
	}
	lo := prefixWebhook + after
	in := &dynamodb.QueryInput{
		TableName:                s.table,
		ConsistentRead:           aws.Bool(true),
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi"),
		ExpressionAttributeNames: map[string]string{"#pk": AttrPK, "#sk": AttrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(prefixCompany + companyID), ":lo": str(lo), ":hi": str("WEBHOOK$"),
		},
	}
	out := []webhooks.Endpoint{}
	for len(out) <= limit {
		in.Limit = aws.Int32(int32(limit + 2 - len(out)))
		page, err := s.api.Query(ctx, in)
		if err != nil {
			return nil, false, wrap(op, err)
		}
		for _, item := range page.Items {
			if strAttr(item, AttrSK) == lo {
				continue // the cursor's own endpoint (or the bare prefix)
			}
			e, err := decodeWebhook(item)
			if err != nil {
				return nil, false, wrap(op, err)
			}
			out = append(out, e)
		}
		if len(page.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// DeleteWebhookEndpoint deletes an endpoint of the company (DeleteItem,
// attribute_exists(pk) → ErrNotFound).
func (s *Store) DeleteWebhookEndpoint(ctx context.Context, companyID, id string) error {
	const op = "DeleteWebhookEndpoint"
	_, err := s.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: s.table, Key: webhookKey(companyID, id),
		ConditionExpression:      aws.String("attribute_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": AttrPK},
	})
	if _, ok := conditionFailed(err); ok {
		err = comms.ErrNotFound
	}
	return wrap(op, err)
}
