package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// companyItem is the item of a company.
type companyItem struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	Entity    string `dynamodbav:"entity"`
	ID        string `dynamodbav:"id"`
	Credits   int64  `dynamodbav:"credits"`
	Settings  string `dynamodbav:"settings"` // JSON of comms.Settings
	CreatedAt string `dynamodbav:"created_at,omitempty"`
}

// CreateCompany stores a new company; ErrAlreadyExists if the id is taken.
// Settings with sending domains are refused (PutSettings claims them).
func (s *Store) CreateCompany(ctx context.Context, c comms.Company) error {
	const op = "CreateCompany"
	if len(c.Settings.SendingDomains) > 0 {
		return wrap(op, errors.New("a company is created without sending domains; declare them with PutSettings, which claims them"))
	}
	settings, err := json.Marshal(c.Settings)
	if err != nil {
		return wrap(op, err)
	}
	item, err := attributevalue.MarshalMap(companyItem{
		PK: prefixCompany + c.ID, SK: skCompany, Entity: entityCompany,
		ID: c.ID, Credits: c.Credits, Settings: string(settings), CreatedAt: ts(c.CreatedAt),
	})
	if err != nil {
		return wrap(op, err)
	}
	_, err = s.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                s.table,
		Item:                     item,
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": AttrPK},
	})
	if _, ok := conditionFailed(err); ok {
		err = comms.ErrAlreadyExists
	}
	return wrap(op, err)
}

// GetCompany returns the company with its settings as stored; ErrNotFound if absent.
func (s *Store) GetCompany(ctx context.Context, id string) (comms.Company, error) {
	const op = "GetCompany"
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: s.table, Key: companyKey(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return comms.Company{}, wrap(op, err)
	}
	if out.Item == nil {
		return comms.Company{}, wrap(op, comms.ErrNotFound)
	}
	var it companyItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return comms.Company{}, wrap(op, err)
	}
	c := comms.Company{ID: it.ID, Credits: it.Credits}
	if err := json.Unmarshal([]byte(it.Settings), &c.Settings); err != nil {
		return comms.Company{}, wrap(op, err)
	}
	if c.CreatedAt, err = fromTS(it.CreatedAt); err != nil {
		return comms.Company{}, wrap(op, err)
	}
	return c, nil
}

// credits reads the company's balance with a strongly consistent read;
// found is false when there is no such company.
func (s *Store) credits(ctx context.Context, companyID string) (credits int64, found bool, err error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                s.table,
		Key:                      companyKey(companyID),
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     aws.String("#credits"),
		ExpressionAttributeNames: map[string]string{"#credits": "credits"},
	})
	if err != nil {
		return 0, false, err
	}
	if out.Item == nil {
		return 0, false, nil
	}
	n, ok := out.Item["credits"].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false, errors.New("company item without a numeric credits attribute")
	}
	credits, err = strconv.ParseInt(n.Value, 10, 64)
	return credits, true, err
}

// debitItem is the transaction item that takes one credit from a company
// whose balance was read as seen: it fails if the balance moved since, or
// if the company is gone.
func (s *Store) debitItem(companyID string, seen int64) types.TransactWriteItem {
	return types.TransactWriteItem{Update: &types.Update{
		TableName:                 s.table,
		Key:                       companyKey(companyID),
		UpdateExpression:          aws.String("SET #credits = :next"),
		ConditionExpression:       aws.String("#credits = :seen"),
		ExpressionAttributeNames:  map[string]string{"#credits": "credits"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":seen": num(seen), ":next": num(seen - 1)},
	}}
}

// companyExistsItem is the transaction item that checks the company exists.
func (s *Store) companyExistsItem(companyID string) types.TransactWriteItem {
	return types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
		TableName:                s.table,
		Key:                      companyKey(companyID),
		ConditionExpression:      aws.String("attribute_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": AttrPK},
	}}
}

// keyItem is an API key: the KEYHASH item and the company's listing item
// hold all of it; the KEYID item only what finds the other two.
type keyItem struct {
	PK        string        `dynamodbav:"pk"`
	SK        string        `dynamodbav:"sk"`
	Entity    string        `dynamodbav:"entity"`
	ID        string        `dynamodbav:"id"`
	CompanyID string        `dynamodbav:"company_id"`
	Hash      string        `dynamodbav:"hash"`
	Prefix    string        `dynamodbav:"prefix,omitempty"`
	Scopes    []comms.Scope `dynamodbav:"scopes"`
	CreatedAt string        `dynamodbav:"created_at,omitempty"`
	RevokedAt string        `dynamodbav:"revoked_at,omitempty"`
}

// keyIDItem finds a key by its id.
type keyIDItem struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	Entity    string `dynamodbav:"entity"`
	CompanyID string `dynamodbav:"company_id"`
	Hash      string `dynamodbav:"hash"`
	CreatedAt string `dynamodbav:"created_at"` // keyTS: the listing item's sort key needs it
}

// keyListSK is the sort key of a key's listing item under its company.
func keyListSK(created, id string) string { return prefixKeyList + created + "#" + id }

// CreateAPIKey stores a key; ErrAlreadyExists if its id or hash is taken,
// ErrNotFound if its company does not exist. One transaction writes its
// three items.
func (s *Store) CreateAPIKey(ctx context.Context, k comms.APIKey) error {
	const op = "CreateAPIKey"
	it := keyItem{
		Entity: entityKey, ID: k.ID, CompanyID: k.CompanyID, Hash: k.Hash, Prefix: k.Prefix,
		Scopes: k.Scopes, CreatedAt: ts(k.CreatedAt), RevokedAt: tsPtr(k.RevokedAt),
	}
	it.PK, it.SK = prefixKeyHash+k.Hash, skKey
	byHash, err := attributevalue.MarshalMap(it)
	if err != nil {
		return wrap(op, err)
	}
	it.PK, it.SK, it.Entity = prefixCompany+k.CompanyID, keyListSK(keyTS(k.CreatedAt), k.ID), entityKeyList
	listing, err := attributevalue.MarshalMap(it)
	if err != nil {
		return wrap(op, err)
	}
	byID, err := attributevalue.MarshalMap(keyIDItem{
		PK: prefixKeyID + k.ID, SK: skKey, Entity: entityKeyID,
		CompanyID: k.CompanyID, Hash: k.Hash, CreatedAt: keyTS(k.CreatedAt),
	})
	if err != nil {
		return wrap(op, err)
	}
	isNew := func(item map[string]types.AttributeValue) types.TransactWriteItem {
		return types.TransactWriteItem{Put: &types.Put{
			TableName:                s.table,
			Item:                     item,
			ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
			ExpressionAttributeNames: map[string]string{"#pk": AttrPK},
		}}
	}
	_, err = s.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		isNew(byHash), isNew(byID), isNew(listing), s.companyExistsItem(k.CompanyID),
	}})
	if codes, _, ok := cancellation(err); ok {
		switch {
		case failed(codes, 0), failed(codes, 1), failed(codes, 2):
			err = fmt.Errorf("%w: %v", comms.ErrAlreadyExists, err)
		case failed(codes, 3):
			err = fmt.Errorf("%w: no such company: %v", comms.ErrNotFound, err)
		}
	}
	return wrap(op, err)
}

func (it keyItem) apiKey() (comms.APIKey, error) {
	k := comms.APIKey{ID: it.ID, CompanyID: it.CompanyID, Hash: it.Hash, Prefix: it.Prefix, Scopes: it.Scopes}
	var err error
	if k.CreatedAt, err = fromTS(it.CreatedAt); err != nil {
		return comms.APIKey{}, err
	}
	if k.RevokedAt, err = fromTSPtr(it.RevokedAt); err != nil {
		return comms.APIKey{}, err
	}
	return k, nil
}

// APIKeyByHash returns the key (revoked or not) whose secret hashes to hash.
func (s *Store) APIKeyByHash(ctx context.Context, hash string) (comms.APIKey, error) {
	const op = "APIKeyByHash"
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: s.table, Key: key(prefixKeyHash+hash, skKey), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return comms.APIKey{}, wrap(op, err)
	}
	if out.Item == nil {
		return comms.APIKey{}, wrap(op, comms.ErrNotFound)
	}
	var it keyItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return comms.APIKey{}, wrap(op, err)
	}
	k, err := it.apiKey()
	return k, wrap(op, err)
}

// ListAPIKeys returns the company's keys, oldest first (ties by id).
func (s *Store) ListAPIKeys(ctx context.Context, companyID string) ([]comms.APIKey, error) {
	const op = "ListAPIKeys"
	keys, err := queryPrefix(ctx, s, companyID, prefixKeyList, keyItem.apiKey)
	return keys, wrap(op, err)
}

// RevokeAPIKey marks the key revoked at the given time. Revoking a revoked key
// succeeds and keeps the first revocation time.
func (s *Store) RevokeAPIKey(ctx context.Context, companyID, keyID string, at time.Time) error {
	const op = "RevokeAPIKey"
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: s.table, Key: key(prefixKeyID+keyID, skKey), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return wrap(op, err)
	}
	var id keyIDItem
	if err := attributevalue.UnmarshalMap(out.Item, &id); err != nil {
		return wrap(op, err)
	}
	if out.Item == nil || id.CompanyID != companyID {
		return wrap(op, comms.ErrNotFound)
	}
	revoke := func(k map[string]types.AttributeValue) types.TransactWriteItem {
		return types.TransactWriteItem{Update: &types.Update{
			TableName:                 s.table,
			Key:                       k,
			UpdateExpression:          aws.String("SET #revoked = if_not_exists(#revoked, :at)"),
			ConditionExpression:       aws.String("attribute_exists(#pk)"),
			ExpressionAttributeNames:  map[string]string{"#pk": AttrPK, "#revoked": "revoked_at"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":at": str(keyTS(at))},
		}}
	}
	_, err = s.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		revoke(key(prefixKeyHash+id.Hash, skKey)),
		revoke(key(prefixCompany+companyID, keyListSK(id.CreatedAt, keyID))),
	}})
	if codes, _, ok := cancellation(err); ok && (failed(codes, 0) || failed(codes, 1)) {
		err = fmt.Errorf("%w: %v", comms.ErrNotFound, err)
	}
	return wrap(op, err)
}

// queryPrefix returns every item of the company's partition whose sort key
// starts with prefix, in sort-key order, converted by conv.
func queryPrefix[I, T any](ctx context.Context, s *Store, companyID, prefix string, conv func(I) (T, error)) ([]T, error) {
	in := &dynamodb.QueryInput{
		TableName:                s.table,
		ConsistentRead:           aws.Bool(true),
		KeyConditionExpression:   aws.String("#pk = :pk AND begins_with(#sk, :prefix)"),
		ExpressionAttributeNames: map[string]string{"#pk": AttrPK, "#sk": AttrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(prefixCompany + companyID), ":prefix": str(prefix),
		},
	}
	out := []T{}
	for {
		page, err := s.api.Query(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, item := range page.Items {
			var it I
			if err := attributevalue.UnmarshalMap(item, &it); err != nil {
				return nil, err
			}
			v, err := conv(it)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// phoneItem is a phone number, under its company's partition.
type phoneItem struct {
	PK           string   `dynamodbav:"pk"`
	SK           string   `dynamodbav:"sk"`
	Entity       string   `dynamodbav:"entity"`
	ID           string   `dynamodbav:"id"`
	CompanyID    string   `dynamodbav:"company_id"`
	E164         string   `dynamodbav:"e164"`
	Capabilities []string `dynamodbav:"capabilities"`
	Label        string   `dynamodbav:"label"`
	CreatedAt    string   `dynamodbav:"created_at,omitempty"`
	UpdatedAt    string   `dynamodbav:"updated_at"`
}

func (it phoneItem) phone() (comms.PhoneNumber, error) {
	p := comms.PhoneNumber{ID: it.ID, CompanyID: it.CompanyID, E164: it.E164, Capabilities: it.Capabilities, Label: it.Label}
	var err error
	if p.CreatedAt, err = fromTS(it.CreatedAt); err != nil {
		return comms.PhoneNumber{}, err
	}
	if p.UpdatedAt, err = fromTS(it.UpdatedAt); err != nil {
		return comms.PhoneNumber{}, err
	}
	return p, nil
}

// agentItem is a voice agent, under its company's partition.
type agentItem struct {
	PK            string `dynamodbav:"pk"`
	SK            string `dynamodbav:"sk"`
	Entity        string `dynamodbav:"entity"`
	ID            string `dynamodbav:"id"`
	CompanyID     string `dynamodbav:"company_id"`
	Provider      string `dynamodbav:"provider"`
	AgentID       string `dynamodbav:"agent_id"`
	PhoneNumberID string `dynamodbav:"phone_number_id"`
	Label         string `dynamodbav:"label"`
	CreatedAt     string `dynamodbav:"created_at,omitempty"`
	UpdatedAt     string `dynamodbav:"updated_at"`
}

func (it agentItem) agent() (comms.VoiceAgent, error) {
	a := comms.VoiceAgent{
		ID: it.ID, CompanyID: it.CompanyID, Provider: it.Provider, AgentID: it.AgentID,
		PhoneNumberID: it.PhoneNumberID, Label: it.Label,
	}
	var err error
	if a.CreatedAt, err = fromTS(it.CreatedAt); err != nil {
		return comms.VoiceAgent{}, err
	}
	if a.UpdatedAt, err = fromTS(it.UpdatedAt); err != nil {
		return comms.VoiceAgent{}, err
	}
	return a, nil
}

// putResource creates or replaces the item of a sender resource, keeping its
// first created_at, in a transaction that checks its company exists
// (ErrNotFound otherwise).
func (s *Store) putResource(ctx context.Context, companyID string, item any) error {
	up, err := resourceUpdate(item)
	if err != nil {
		return err
	}
	up.TableName = s.table
	_, err = s.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Update: up},
		s.companyExistsItem(companyID),
	}})
	if codes, _, ok := cancellation(err); ok && failed(codes, 1) {
		err = fmt.Errorf("%w: no such company: %v", comms.ErrNotFound, err)
	}
	return err
}

// resourceUpdate returns the Update (table name left to the caller) that
// sets every attribute of item but its key, keeping a created_at already
// stored. Its names are #a<n>, its values :a<n>.
func resourceUpdate(item any) (*types.Update, error) {
	av, err := attributevalue.MarshalMap(item)
	if err != nil {
		return nil, err
	}
	k := map[string]types.AttributeValue{AttrPK: av[AttrPK], AttrSK: av[AttrSK]}
	names := map[string]string{}
	values := map[string]types.AttributeValue{}
	expr := "SET "
	i := 0
	for _, name := range slices.Sorted(maps.Keys(av)) {
		v := av[name]
		if name == AttrPK || name == AttrSK {
			continue
		}
		n, p := "#a"+strconv.Itoa(i), ":a"+strconv.Itoa(i)
		i++
		names[n], values[p] = name, v
		if i > 1 {
			expr += ", "
		}
		if name == "created_at" {
			expr += n + " = if_not_exists(" + n + ", " + p + ")"
		} else {
			expr += n + " = " + p
		}
	}
	return &types.Update{
		Key:                       k,
		UpdateExpression:          aws.String(expr),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}, nil
}

// getResource reads the item of a sender resource into it; ErrNotFound if absent.
func (s *Store) getResource(ctx context.Context, companyID, sk string, it any) error {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: s.table, Key: key(prefixCompany+companyID, sk), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return err
	}
	if out.Item == nil {
		return comms.ErrNotFound
	}
	return attributevalue.UnmarshalMap(out.Item, it)
}

// deleteResource deletes the item of a sender resource; ErrNotFound if absent.
func (s *Store) deleteResource(ctx context.Context, companyID, sk string) error {
	_, err := s.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                s.table,
		Key:                      key(prefixCompany+companyID, sk),
		ConditionExpression:      aws.String("attribute_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": AttrPK},
	})
	if _, ok := conditionFailed(err); ok {
		return comms.ErrNotFound
	}
	return err
}

// GetPhoneNumber returns a phone number of the company; ErrNotFound if absent.
func (s *Store) GetPhoneNumber(ctx context.Context, companyID, id string) (comms.PhoneNumber, error) {
	const op = "GetPhoneNumber"
	var it phoneItem
	if err := s.getResource(ctx, companyID, prefixPhone+id, &it); err != nil {
		return comms.PhoneNumber{}, wrap(op, err)
	}
	p, err := it.phone()
	return p, wrap(op, err)
}

// ListPhoneNumbers returns the company's numbers ordered by id.
func (s *Store) ListPhoneNumbers(ctx context.Context, companyID string) ([]comms.PhoneNumber, error) {
	ps, err := queryPrefix(ctx, s, companyID, prefixPhone, phoneItem.phone)
	return ps, wrap("ListPhoneNumbers", err)
}

// PutVoiceAgent creates or replaces a voice agent, keeping the first
// CreatedAt; ErrNotFound if its company does not exist.
func (s *Store) PutVoiceAgent(ctx context.Context, a comms.VoiceAgent) error {
	return wrap("PutVoiceAgent", s.putResource(ctx, a.CompanyID, agentItem{
		PK: prefixCompany + a.CompanyID, SK: prefixAgent + a.ID, Entity: entityAgent,
		ID: a.ID, CompanyID: a.CompanyID, Provider: a.Provider, AgentID: a.AgentID,
		PhoneNumberID: a.PhoneNumberID, Label: a.Label, CreatedAt: ts(a.CreatedAt), UpdatedAt: ts(a.UpdatedAt),
	}))
}

// GetVoiceAgent returns a voice agent of the company; ErrNotFound if absent.
func (s *Store) GetVoiceAgent(ctx context.Context, companyID, id string) (comms.VoiceAgent, error) {
	const op = "GetVoiceAgent"
	var it agentItem
	if err := s.getResource(ctx, companyID, prefixAgent+id, &it); err != nil {
		return comms.VoiceAgent{}, wrap(op, err)
	}
	a, err := it.agent()
	return a, wrap(op, err)
}

// ListVoiceAgents returns the company's agents ordered by id.
func (s *Store) ListVoiceAgents(ctx context.Context, companyID string) ([]comms.VoiceAgent, error) {
	as, err := queryPrefix(ctx, s, companyID, prefixAgent, agentItem.agent)
	return as, wrap("ListVoiceAgents", err)
}

// DeleteVoiceAgent deletes a voice agent; ErrNotFound if absent.
func (s *Store) DeleteVoiceAgent(ctx context.Context, companyID, id string) error {
	return wrap("DeleteVoiceAgent", s.deleteResource(ctx, companyID, prefixAgent+id))
}
