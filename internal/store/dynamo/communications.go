package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// commItem is the item of a row. Optional attributes are absent when empty;
// JSON given as json.RawMessage is kept as binary, byte for byte; last_error,
// cadence and outcome are JSON strings.
type commItem struct {
	PK     string `dynamodbav:"pk"`
	SK     string `dynamodbav:"sk"`
	GSI1PK string `dynamodbav:"gsi1pk"`
	GSI1SK string `dynamodbav:"gsi1sk"`
	GSI2PK string `dynamodbav:"gsi2pk,omitempty"`
	GSI2SK string `dynamodbav:"gsi2sk,omitempty"`
	Entity string `dynamodbav:"entity"`

	CompanyID            string `dynamodbav:"company_id"`
	ID                   string `dynamodbav:"id"`
	Channel              string `dynamodbav:"channel,omitempty"`
	Status               string `dynamodbav:"status,omitempty"`
	ScheduledFor         string `dynamodbav:"scheduled_for,omitempty"`
	NextAttemptAt        string `dynamodbav:"next_attempt_at,omitempty"`
	LeaseUntil           string `dynamodbav:"lease_until,omitempty"`
	Timezone             string `dynamodbav:"timezone,omitempty"`
	RespectBusinessHours bool   `dynamodbav:"respect_business_hours,omitempty"`
	Payload              []byte `dynamodbav:"payload,omitempty"`
	ContactID            string `dynamodbav:"contact_id,omitempty"`
	CustomerID           string `dynamodbav:"customer_id,omitempty"`
	DealID               string `dynamodbav:"deal_id,omitempty"`
	RelatedEntityType    string `dynamodbav:"related_entity_type,omitempty"`
	RelatedEntityID      string `dynamodbav:"related_entity_id,omitempty"`
	CancelPolicy         []byte `dynamodbav:"cancel_policy,omitempty"`
	AttemptCount         int    `dynamodbav:"attempt_count,omitempty"`
	MaxAttempts          int    `dynamodbav:"max_attempts,omitempty"`
	LastError            string `dynamodbav:"last_error,omitempty"`
	Source               string `dynamodbav:"source,omitempty"`
	Cadence              string `dynamodbav:"cadence,omitempty"`
	CadenceRootID        string `dynamodbav:"cadence_root_id,omitempty"`
	Outcome              string `dynamodbav:"outcome,omitempty"`
	ProviderMessageID    string `dynamodbav:"provider_message_id,omitempty"`
	Token                string `dynamodbav:"token,omitempty"`
	CreatedAt            string `dynamodbav:"created_at,omitempty"`
	UpdatedAt            string `dynamodbav:"updated_at,omitempty"`
	SentAt               string `dynamodbav:"sent_at,omitempty"`
	CancelledAt          string `dynamodbav:"cancelled_at,omitempty"`
	CancelReason         string `dynamodbav:"cancel_reason,omitempty"`
	EventSeq             int64  `dynamodbav:"event_seq,omitempty"`
	DeliveryStatus       string `dynamodbav:"delivery_status,omitempty"`
	DeliveryAt           string `dynamodbav:"delivery_at,omitempty"`
	DeliveryDetail       string `dynamodbav:"delivery_detail,omitempty"`
	Version              int64  `dynamodbav:"version"`
	// TTL is set on a terminal row when the store has a retention.
	TTL int64 `dynamodbav:"ttl,omitempty"`

	// Where the recipient is (comms.RecipientZones); absent on rows
	// stored before it was recorded.
	TimezoneSource string   `dynamodbav:"timezone_source,omitempty"`
	Timezones      []string `dynamodbav:"timezones,omitempty"`

	// BodyRef names the payload's own item when the payload is not kept
	// here (bodies.go).
	BodyRef string `dynamodbav:"body_ref,omitempty"`
}

// Attribute names used in expressions on rows.
const (
	attrVersion = "version"
	attrExpires = "expires_at"
)

// listSK is a row's IndexByCompany sort key.
func listSK(scheduledFor time.Time, id string) string { return keyTS(scheduledFor) + "#" + id }

// dueAt returns when the sweeper must look at a row, and false for a
// terminal row, which IndexByDue does not hold.
func dueAt(c comms.Communication) (time.Time, bool) {
	switch c.Status {
	case comms.StatusPending:
		return c.NextAttemptAt, true
	case comms.StatusProcessing:
		return c.LeaseUntil, true
	}
	return time.Time{}, false
}

// newCommItem returns the item of c stored at version.
func newCommItem(c comms.Communication, version int64) (commItem, error) {
	it := commItem{
		PK: commPK(c.CompanyID, c.ID), SK: skComm,
		GSI1PK: prefixRows + c.CompanyID, GSI1SK: listSK(c.ScheduledFor, c.ID),
		Entity:    entityComm,
		CompanyID: c.CompanyID, ID: c.ID, Channel: string(c.Channel), Status: string(c.Status),
		ScheduledFor: ts(c.ScheduledFor), NextAttemptAt: ts(c.NextAttemptAt), LeaseUntil: ts(c.LeaseUntil),
		Timezone: c.Timezone, RespectBusinessHours: c.RespectBusinessHours,
		TimezoneSource: string(c.TimezoneSource), Timezones: c.Timezones,
		Payload: nonEmpty(c.Payload), ContactID: c.ContactID, CustomerID: c.CustomerID, DealID: c.DealID,
		RelatedEntityType: c.RelatedEntityType, RelatedEntityID: c.RelatedEntityID,
		CancelPolicy: nonEmpty(c.CancelPolicy), AttemptCount: c.AttemptCount, MaxAttempts: c.MaxAttempts,
		Source: string(c.Source), ProviderMessageID: c.ProviderMessageID, Token: c.Token,
		CreatedAt: ts(c.CreatedAt), UpdatedAt: ts(c.UpdatedAt), SentAt: tsPtr(c.SentAt), CancelledAt: tsPtr(c.CancelledAt),
		CancelReason: string(c.CancelReason), EventSeq: c.EventSeq, Version: version,
		DeliveryStatus: string(c.Delivery.Status), DeliveryAt: ts(c.Delivery.At), DeliveryDetail: c.Delivery.Detail,
	}
	if due, ok := dueAt(c); ok {
		it.GSI2PK, it.GSI2SK = dueShard(c.ID), keyTS(due)+"#"+c.CompanyID+"#"+c.ID
	}
	var err error
	if it.LastError, err = jsonText(c.LastError); err != nil {
		return commItem{}, err
	}
	if it.Cadence, err = jsonText(c.Cadence); err != nil {
		return commItem{}, err
	}
	if it.Outcome, err = jsonText(c.Outcome); err != nil {
		return commItem{}, err
	}
	if c.Cadence != nil {
		it.CadenceRootID = c.Cadence.RootID
	}
	return it, nil
}

// rowItem returns the item of c stored at version, with its TTL, and
// without its payload when the payload goes in a body item (bodies.go).
func (s *Store) rowItem(c comms.Communication, version int64) (commItem, error) {
	it, err := newCommItem(c, version)
	if err != nil {
		return commItem{}, err
	}
	it.TTL = s.rowTTL(c)
	if splitBody(c) {
		it.Payload = nil
		it.BodyRef, _ = s.bodyRef(c)
	}
	return it, nil
}

// comm decodes a row's item.
func (it commItem) comm() (comms.Communication, error) {
	c := comms.Communication{
		ID: it.ID, CompanyID: it.CompanyID, Channel: comms.Channel(it.Channel), Status: comms.Status(it.Status),
		Timezone: it.Timezone, RespectBusinessHours: it.RespectBusinessHours,
		TimezoneSource: comms.TimezoneSource(it.TimezoneSource), Timezones: it.Timezones,
		Payload: raw(it.Payload), ContactID: it.ContactID, CustomerID: it.CustomerID, DealID: it.DealID,
		RelatedEntityType: it.RelatedEntityType, RelatedEntityID: it.RelatedEntityID,
		CancelPolicy: raw(it.CancelPolicy), AttemptCount: it.AttemptCount, MaxAttempts: it.MaxAttempts,
		Source: comms.Source(it.Source), ProviderMessageID: it.ProviderMessageID, Token: it.Token,
		CancelReason: comms.CancelReason(it.CancelReason), EventSeq: it.EventSeq, Version: it.Version,
		Delivery: comms.Delivery{Status: comms.DeliveryStatus(it.DeliveryStatus), Detail: it.DeliveryDetail},
	}
	var errs []error
	at := func(dst *time.Time, s string) {
		t, err := fromTS(s)
		*dst = t
		errs = append(errs, err)
	}
	atPtr := func(dst **time.Time, s string) {
		t, err := fromTSPtr(s)
		*dst = t
		errs = append(errs, err)
	}
	at(&c.ScheduledFor, it.ScheduledFor)
	at(&c.NextAttemptAt, it.NextAttemptAt)
	at(&c.LeaseUntil, it.LeaseUntil)
	at(&c.CreatedAt, it.CreatedAt)
	at(&c.Delivery.At, it.DeliveryAt)
	at(&c.UpdatedAt, it.UpdatedAt)
	atPtr(&c.SentAt, it.SentAt)
	atPtr(&c.CancelledAt, it.CancelledAt)
	errs = append(errs,
		fromJSONText(it.LastError, &c.LastError),
		fromJSONText(it.Cadence, &c.Cadence),
		fromJSONText(it.Outcome, &c.Outcome))
	if err := errors.Join(errs...); err != nil {
		return comms.Communication{}, fmt.Errorf("row %s: %w", it.ID, err)
	}
	return c, nil
}

// decodeComm decodes a row's attribute map.
func decodeComm(item map[string]types.AttributeValue) (comms.Communication, error) {
	var it commItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return comms.Communication{}, err
	}
	return it.comm()
}

func nonEmpty(m json.RawMessage) []byte {
	if len(m) == 0 {
		return nil
	}
	return m
}

func raw(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	return json.RawMessage(b)
}

// jsonText encodes v as JSON ("" for nil).
func jsonText[T any](v *T) (string, error) {
	if v == nil {
		return "", nil
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// fromJSONText decodes what jsonText encoded.
func fromJSONText[T any](s string, v **T) error {
	if s == "" {
		*v = nil
		return nil
	}
	*v = new(T)
	return json.Unmarshal([]byte(s), *v)
}

// idemItem is an idempotency record.
type idemItem struct {
	PK               string `dynamodbav:"pk"`
	SK               string `dynamodbav:"sk"`
	Entity           string `dynamodbav:"entity"`
	CompanyID        string `dynamodbav:"company_id"`
	Key              string `dynamodbav:"key"`
	RequestHash      string `dynamodbav:"request_hash"`
	CommunicationID  string `dynamodbav:"communication_id"`
	CreditsRemaining int64  `dynamodbav:"credits_remaining"`
	CreatedAt        string `dynamodbav:"created_at"`
	ExpiresAt        string `dynamodbav:"expires_at"` // keyTS: conditions compare it
	TTL              int64  `dynamodbav:"ttl"`
}

// CreateCommunication stores c at version 1, debits one credit from its
// company and records idem (when non-nil), in one TransactWriteItems. The
// debit is a compare-and-swap on the balance read just before, so the
// balance returned (and recorded in idem) is exact; a debit that lost a race
// is retried up to maxDebitAttempts times, then fails with ErrConflict.
func (s *Store) CreateCommunication(ctx context.Context, ch comms.Change, idem *comms.Idempotency) (int64, error) {
	const op = "CreateCommunication"
	c := ch.Row
	it, err := s.rowItem(c, 1)
	if err != nil {
		return 0, wrap(op, err)
	}
	events, err := s.eventPuts(ch.Events, c)
	if err != nil {
		return 0, wrap(op, err)
	}
	bodyWritten := !splitBody(c)
	row, err := attributevalue.MarshalMap(it)
	if err != nil {
		return 0, wrap(op, err)
	}
	putRow := types.TransactWriteItem{Put: &types.Put{
		TableName:                s.table,
		Item:                     row,
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": AttrPK},
	}}
	unlock, err := s.debits.lock(ctx, c.CompanyID)
	if err != nil {
		return 0, wrap(op, err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(ctx, MaxEventWrite)
	defer cancel()
	for attempt := 1; ; attempt++ {
		seen, found, err := s.credits(ctx, c.CompanyID)
		switch {
		case err != nil:
			return 0, wrap(op, err)
		case !found:
			return 0, wrap(op, fmt.Errorf("%w: no such company %s", comms.ErrNotFound, c.CompanyID))
		case seen < 1:
			// The same precedence as the SQLite store: a live key first.
			if idem != nil {
				if _, err := s.idempotency(ctx, c.CompanyID, idem.Key, idem.CreatedAt); err == nil {
					return 0, wrap(op, comms.ErrIdempotencyKeyExists)
				} else if !errors.Is(err, comms.ErrNotFound) {
					return 0, wrap(op, err)
				}
			}
			return 0, wrap(op, comms.ErrInsufficientCredits)
		}
		if !bodyWritten {
			// The payload's item goes first, alone (bodies.go, "Creates").
			if err := s.putNewBody(ctx, c); err != nil {
				return 0, wrap(op, err)
			}
			bodyWritten = true
		}
		items := []types.TransactWriteItem{putRow, s.debitItem(c.CompanyID, seen)}
		if idem != nil {
			rec, err := attributevalue.MarshalMap(idemItem{
				PK: prefixIdem + c.CompanyID + "#" + idem.Key, SK: skIdem, Entity: entityIdem,
				CompanyID: c.CompanyID, Key: idem.Key, RequestHash: idem.RequestHash, CommunicationID: c.ID,
				CreditsRemaining: seen - 1, CreatedAt: keyTS(idem.CreatedAt), ExpiresAt: keyTS(idem.ExpiresAt),
				TTL: ttlSeconds(idem.ExpiresAt),
			})
			if err != nil {
				return 0, wrap(op, err)
			}
			items = append(items, types.TransactWriteItem{Put: &types.Put{
				TableName: s.table,
				Item:      rec,
				// A record is live while now < expires_at: one that expired
				// (even if TTL has not deleted it yet) is replaced.
				ConditionExpression:       aws.String("attribute_not_exists(#pk) OR #expires <= :now"),
				ExpressionAttributeNames:  map[string]string{"#pk": AttrPK, "#expires": attrExpires},
				ExpressionAttributeValues: map[string]types.AttributeValue{":now": str(keyTS(idem.CreatedAt))},
			}})
		}
		items = append(items, events...)
		if c.ProviderMessageID != "" {
			items = append(items, s.pmidPut(c))
		}
		_, err = s.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			if idem != nil {
				idem.CreditsRemaining = seen - 1
			}
			return seen - 1, nil
		}
		codes, _, _ := cancellation(err)
		switch {
		case idem != nil && failed(codes, 2):
			return 0, wrap(op, fmt.Errorf("%w: %v", comms.ErrIdempotencyKeyExists, err))
		case failed(codes, 0):
			return 0, wrap(op, fmt.Errorf("%w: %v", comms.ErrAlreadyExists, err))
		case failed(codes, 1), conflicted(err, codes):
			// The balance moved (or the company went) since we read it.
		default:
			return 0, wrap(op, err)
		}
		if attempt == maxDebitAttempts {
			return 0, wrap(op, fmt.Errorf("%w: the balance kept moving during %d attempts: %v", comms.ErrConflict, attempt, err))
		}
		if err := retryBackoff.Sleep(ctx, attempt); err != nil {
			return 0, wrap(op, err)
		}
	}
}

// insertItems returns the items that create a row the system makes itself
// (ch.Row at version 1, no debit) with its events: the row's Put,
// conditional on the id being new, first.
func (s *Store) insertItems(ch comms.Change) ([]types.TransactWriteItem, error) {
	it, err := s.rowItem(ch.Row, 1)
	if err != nil {
		return nil, err
	}
	row, err := attributevalue.MarshalMap(it)
	if err != nil {
		return nil, err
	}
	events, err := s.eventPuts(ch.Events, ch.Row)
	if err != nil {
		return nil, err
	}
	if splitBody(ch.Row) {
		body, err := s.bodyPut(ch.Row)
		if err != nil {
			return nil, err
		}
		events = append(events, body)
	}
	return append([]types.TransactWriteItem{{Put: &types.Put{TableName: s.table, Item: row,
		ConditionExpression: aws.String("attribute_not_exists(#pk)"), ExpressionAttributeNames: map[string]string{"#pk": AttrPK}}}},
		events...), nil
}

// ttlSeconds is the TTL of a record that expires at t: the epoch second at
// or after t, so that TTL never deletes a live record.
func ttlSeconds(t time.Time) int64 {
	if t.Nanosecond() > 0 {
		return t.Unix() + 1
	}
	return t.Unix()
}

// GetCommunication returns a row of the company; ErrNotFound if absent.
func (s *Store) GetCommunication(ctx context.Context, companyID, id string) (comms.Communication, error) {
	c, err := s.getComm(ctx, companyID, id)
	return c, wrap("GetCommunication", err)
}

// UpdateCommunication writes ch in one TransactWriteItems: the row's Put
// conditional on its version (ReturnValuesOnConditionCheckFailure ALL_OLD
// tells a moved version from an absent row), then with debit the
// compare-and-swap of the balance, the events' Puts, ch.Insert's row and
// events, ch.Suppress's Puts and, when the change gives the row its
// provider message id, the id's mapping (see setsProviderMessageID).
func (s *Store) UpdateCommunication(ctx context.Context, ch comms.Change, debit bool) (comms.Communication, int64, error) {
	const op = "UpdateCommunication"
	c := ch.Row
	it, err := s.rowItem(c, c.Version+1)
	if err != nil {
		return comms.Communication{}, 0, wrap(op, err)
	}
	stored, err := it.comm()
	if err != nil {
		return comms.Communication{}, 0, wrap(op, err)
	}
	stored.Payload = c.Payload
	row, err := attributevalue.MarshalMap(it)
	if err != nil {
		return comms.Communication{}, 0, wrap(op, err)
	}
	names := map[string]string{"#version": attrVersion}
	// A row whose payload has its own item is first written without it, on
	// condition that the stored row names the same body (bodies.go); withBody
	// is set when it does not, and the write is repeated with the body's Put.
	withBody := false
	putRow := func() types.TransactWriteItem {
		p := &types.Put{
			TableName: s.table, Item: row,
			ConditionExpression: aws.String("#version = :expected"), ExpressionAttributeNames: names,
			ExpressionAttributeValues:           map[string]types.AttributeValue{":expected": num(c.Version)},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}
		if it.BodyRef != "" && !withBody {
			p.ConditionExpression = aws.String("#version = :expected AND #bref = :bref")
			p.ExpressionAttributeNames = map[string]string{"#version": attrVersion, "#bref": attrBodyRef}
			p.ExpressionAttributeValues = map[string]types.AttributeValue{":expected": num(c.Version), ":bref": str(it.BodyRef)}
		}
		return types.TransactWriteItem{Put: p}
	}
	var body types.TransactWriteItem
	if it.BodyRef != "" {
		if body, err = s.bodyPut(c); err != nil {
			return comms.Communication{}, 0, wrap(op, err)
		}
	}
	// staleBody reports whether a cancelled write failed only on body_ref:
	// the row is at the expected version but names another body (or none).
	staleBody := func(err error) bool {
		codes, olds, _ := cancellation(err)
		if it.BodyRef == "" || withBody || !failed(codes, 0) || olds[0] == nil {
			return false
		}
		v, ok := olds[0][attrVersion].(*types.AttributeValueMemberN)
		return ok && v.Value == strconv.FormatInt(c.Version, 10)
	}
	withBodyPut := func(items []types.TransactWriteItem) []types.TransactWriteItem {
		if withBody {
			return append(items, body)
		}
		return items
	}
	rest, err := s.eventPuts(ch.Events, c)
	if err != nil {
		return comms.Communication{}, 0, wrap(op, err)
	}
	insertAt := -1
	if ch.Insert != nil {
		ins, err := s.insertItems(*ch.Insert)
		if err != nil {
			return comms.Communication{}, 0, wrap(op, err)
		}
		insertAt = len(rest)
		rest = append(rest, ins...)
	}
	// The suppressions and the provider message id's mapping go after
	// everything the reasons below are read for; both are unconditional.
	supps, err := s.suppressionPuts(ch.Suppress)
	if err != nil {
		return comms.Communication{}, 0, wrap(op, err)
	}
	rest = append(rest, supps...)
	if setsProviderMessageID(ch) {
		rest = append(rest, s.pmidPut(c))
	}
	// written tells what a cancelled transaction's reasons mean; first is
	// the index of the first item after the row (and the debit).
	written := func(err error, first int) error {
		codes, olds, _ := cancellation(err)
		switch {
		case failed(codes, 0) && olds[0] == nil:
			return fmt.Errorf("%w: %v", comms.ErrNotFound, err)
		case failed(codes, 0):
			return fmt.Errorf("%w: %v", comms.ErrConflict, err)
		case insertAt >= 0 && failed(codes, first+insertAt):
			return fmt.Errorf("%w: %v", comms.ErrAlreadyExists, err)
		case slices.Contains(codes, reasonConditionFailed), conflicted(err, codes):
			// An event's sequence is taken (a concurrent writer of the same
			// version), or another transaction held an item.
			return fmt.Errorf("%w: %v", comms.ErrConflict, err)
		}
		return err
	}

	if !debit {
		ctx, cancel := context.WithTimeout(ctx, MaxEventWrite)
		defer cancel()
		for {
			_, err := s.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
				TransactItems: withBodyPut(append([]types.TransactWriteItem{putRow()}, rest...)),
			})
			if staleBody(err) {
				withBody = true
				continue
			}
			if err != nil {
				return comms.Communication{}, 0, wrap(op, written(err, 1))
			}
			return stored, 0, nil // without a debit the balance is not read (one call per write)
		}
	}

	unlock, err := s.debits.lock(ctx, c.CompanyID)
	if err != nil {
		return comms.Communication{}, 0, wrap(op, err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(ctx, MaxEventWrite)
	defer cancel()
	for attempt := 1; ; attempt++ {
		seen, found, err := s.credits(ctx, c.CompanyID)
		if err != nil {
			return comms.Communication{}, 0, wrap(op, err)
		}
		if !found || seen < 1 {
			// Nothing to debit: the row's own state decides first, as in
			// the SQLite store (absent, then stale, then no credits).
			out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
				TableName: s.table, Key: commKey(c.CompanyID, c.ID), ConsistentRead: aws.Bool(true),
				ProjectionExpression: aws.String("#version"), ExpressionAttributeNames: names,
			})
			switch {
			case err != nil:
				return comms.Communication{}, 0, wrap(op, err)
			case out.Item == nil || !found:
				return comms.Communication{}, 0, wrap(op, comms.ErrNotFound)
			}
			var v struct {
				Version int64 `dynamodbav:"version"`
			}
			if err := attributevalue.UnmarshalMap(out.Item, &v); err != nil {
				return comms.Communication{}, 0, wrap(op, err)
			}
			if v.Version != c.Version {
				return comms.Communication{}, 0, wrap(op, comms.ErrConflict)
			}
			return comms.Communication{}, 0, wrap(op, comms.ErrInsufficientCredits)
		}
		items := withBodyPut(append([]types.TransactWriteItem{putRow(), s.debitItem(c.CompanyID, seen)}, rest...))
		_, err = s.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			return stored, seen - 1, nil
		}
		if staleBody(err) {
			withBody = true
			continue
		}
		codes, _, _ := cancellation(err)
		if !failed(codes, 1) && !conflicted(err, codes) || failed(codes, 0) {
			return comms.Communication{}, 0, wrap(op, written(err, 2))
		}
		// The balance moved since we read it, or another transaction held
		// an item: read again.
		if attempt == maxDebitAttempts {
			return comms.Communication{}, 0, wrap(op, fmt.Errorf("%w: the balance kept moving during %d attempts: %v", comms.ErrConflict, attempt, err))
		}
		if err := retryBackoff.Sleep(ctx, attempt); err != nil {
			return comms.Communication{}, 0, wrap(op, err)
		}
	}
}

// GetIdempotency returns the record for key; ErrNotFound if there is none
// or now is not before its ExpiresAt (whether or not TTL deleted it yet).
func (s *Store) GetIdempotency(ctx context.Context, companyID, key string, now time.Time) (comms.Idempotency, error) {
	r, err := s.idempotency(ctx, companyID, key, now)
	return r, wrap("GetIdempotency", err)
}

func (s *Store) idempotency(ctx context.Context, companyID, key string, now time.Time) (comms.Idempotency, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: s.table, Key: idemKey(companyID, key), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return comms.Idempotency{}, err
	}
	if out.Item == nil {
		return comms.Idempotency{}, comms.ErrNotFound
	}
	var it idemItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return comms.Idempotency{}, err
	}
	r := comms.Idempotency{
		CompanyID: it.CompanyID, Key: it.Key, RequestHash: it.RequestHash,
		CommunicationID: it.CommunicationID, CreditsRemaining: it.CreditsRemaining,
	}
	if r.CreatedAt, err = fromTS(it.CreatedAt); err != nil {
		return comms.Idempotency{}, err
	}
	if r.ExpiresAt, err = fromTS(it.ExpiresAt); err != nil {
		return comms.Idempotency{}, err
	}
	if !now.Before(r.ExpiresAt) {
		return comms.Idempotency{}, comms.ErrNotFound
	}
	return r, nil
}

// maxLimit caps ListFilter.Limit; a Limit below 1 also means maxLimit.
const maxLimit = 100

// filteredPage is the Query page size of a listing with a FilterExpression.
const filteredPage = 200

// queryListing reads the pages of a listing's Query until it holds more
// than limit items or the query ends, and returns the first limit of them
// and whether more exist. A filtered query (in has a FilterExpression)
// reads filteredPage items a call; an unfiltered one only what is still
// needed, plus one to know whether more exist, plus one when skip names
// the cursor's own item (which an inclusive key bound returns, and skip
// drops).
// tableKey decodes an index item of a listing as the key of its table
// item (the listing reads the items by key: BatchGetItem).
func tableKey(item map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
	return map[string]types.AttributeValue{AttrPK: item[AttrPK], AttrSK: item[AttrSK]}, nil
}

func queryListing[T any](ctx context.Context, api API, in *dynamodb.QueryInput, limit int,
	skip func(map[string]types.AttributeValue) bool, decode func(map[string]types.AttributeValue) (T, error)) ([]T, bool, error) {
	extra := 1
	if skip != nil {
		extra = 2
	}
	out := []T{}
	for len(out) <= limit {
		if in.FilterExpression != nil {
			in.Limit = aws.Int32(filteredPage)
		} else {
			in.Limit = aws.Int32(int32(limit + extra - len(out)))
		}
		page, err := api.Query(ctx, in)
		if err != nil {
			return nil, false, err
		}
		for _, item := range page.Items {
			if skip != nil && skip(item) {
				continue
			}
			x, err := decode(item)
			if err != nil {
				return nil, false, err
			}
			out = append(out, x)
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

// ListCommunications returns rows of the company matching f, ordered by
// (scheduled_for, id), after f.After, at most f.Limit of them, and whether
// more exist. It queries IndexByCompany, so it reads eventually consistent.
func (s *Store) ListCommunications(ctx context.Context, companyID string, f comms.ListFilter) ([]comms.Communication, bool, error) {
	const op = "ListCommunications"
	limit := f.Limit
	if limit < 1 || limit > maxLimit {
		limit = maxLimit
	}
	names := map[string]string{"#pk": AttrGSI1PK}
	values := map[string]types.AttributeValue{":pk": str(prefixRows + companyID)}

	// The sort-key range: lo inclusive, hi exclusive. gsi1sk is
	// <scheduled_for>#<id> with a fixed-width time, so "< ts(before)" is
	// exactly "scheduled_for < before", and "<= ts(before)" too (no gsi1sk
	// equals a bare time).
	var lo, hi, skip string
	if !f.ScheduledAfter.IsZero() {
		lo = keyTS(f.ScheduledAfter)
	}
	if f.After != nil {
		// The cursor's own row is the lower bound and is skipped.
		if skip = listSK(f.After.ScheduledFor, f.After.ID); skip > lo {
			lo = skip
		}
	}
	if !f.ScheduledBefore.IsZero() {
		hi = keyTS(f.ScheduledBefore)
	}
	kc := "#pk = :pk"
	switch {
	case lo != "" && hi != "":
		if lo >= hi {
			return []comms.Communication{}, false, nil
		}
		kc += " AND #sk BETWEEN :lo AND :hi"
	case lo != "":
		kc += " AND #sk >= :lo"
	case hi != "":
		kc += " AND #sk < :hi"
	}
	if lo != "" || hi != "" {
		names["#sk"] = AttrGSI1SK
	}
	if lo != "" {
		values[":lo"] = str(lo)
	}
	if hi != "" {
		values[":hi"] = str(hi)
	}

	var filters []string
	eq := func(attr, v string) {
		if v == "" {
			return
		}
		n, p := "#f_"+attr, ":f_"+attr
		names[n], values[p] = attr, str(v)
		filters = append(filters, n+" = "+p)
	}
	status := f.Status
	if f.DeliveryStatus != "" {
		// A delivery status is what became of a sent row.
		if status != "" && status != comms.StatusSent {
			return []comms.Communication{}, false, nil
		}
		status = comms.StatusSent
		eq("delivery_status", string(f.DeliveryStatus))
	}
	eq("status", string(status))
	eq("channel", string(f.Channel))
	eq("contact_id", f.ContactID)
	eq("customer_id", f.CustomerID)
	eq("deal_id", f.DealID)
	eq("cadence_root_id", f.CadenceRootID)

	in := &dynamodb.QueryInput{
		TableName:                 s.table,
		IndexName:                 aws.String(IndexByCompany),
		KeyConditionExpression:    aws.String(kc),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}
	if len(filters) > 0 {
		in.FilterExpression = aws.String(strings.Join(filters, " AND "))
	}
	keys, more, err := queryListing(ctx, s.api, in, limit,
		func(item map[string]types.AttributeValue) bool {
			return skip != "" && strAttr(item, AttrGSI1SK) == skip
		}, tableKey)
	if err != nil {
		return nil, false, wrap(op, err)
	}
	// The index holds the keys and what the filters read (IndexByCompany):
	// the rows are read from the table, eventually consistent like the
	// index, in the index's order. A row that changed since the index saw
	// it so that it no longer matches is left out.
	items, err := s.batchGetItems(ctx, keys, false)
	if err != nil {
		return nil, false, wrap(op, err)
	}
	rows, err := s.decodeRows(ctx, items, false)
	if err != nil {
		return nil, false, wrap(op, err)
	}
	out := rows[:0]
	for _, c := range rows {
		if listed(c, f, status, lo, hi, skip) {
			out = append(out, c)
		}
	}
	return out, more, nil
}

// listed reports whether row c, read from the table, still belongs in the
// listing whose index query found it: the filters and the sort-key range
// (lo inclusive, hi exclusive, skip the cursor's own row).
func listed(c comms.Communication, f comms.ListFilter, status comms.Status, lo, hi, skip string) bool {
	k := listSK(c.ScheduledFor, c.ID)
	eq := func(want, got string) bool { return want == "" || want == got }
	return (lo == "" || k >= lo) && (hi == "" || k < hi) && k != skip &&
		eq(string(status), string(c.Status)) && eq(string(f.DeliveryStatus), string(c.Delivery.Status)) &&
		eq(string(f.Channel), string(c.Channel)) && eq(f.ContactID, c.ContactID) && eq(f.CustomerID, c.CustomerID) &&
		eq(f.DealID, c.DealID) && (f.CadenceRootID == "" || c.Cadence != nil && c.Cadence.RootID == f.CadenceRootID)
}

// batchGetItems reads the items of keys (BatchGetItem) and returns those
// found in the order of keys.
func (s *Store) batchGetItems(ctx context.Context, keys []map[string]types.AttributeValue, consistent bool) ([]map[string]types.AttributeValue, error) {
	got := make(map[string]map[string]types.AttributeValue, len(keys))
	if err := s.batchGetWith(ctx, keys, consistent, func(item map[string]types.AttributeValue) { got[pkOf(item)+"|"+strAttr(item, AttrSK)] = item }); err != nil {
		return nil, err
	}
	out := make([]map[string]types.AttributeValue, 0, len(keys))
	for _, k := range keys {
		if item := got[pkOf(k)+"|"+strAttr(k, AttrSK)]; item != nil {
			out = append(out, item)
		}
	}
	return out, nil
}

// DueCommunications returns up to limit pending rows whose next_attempt_at,
// and processing rows whose lease_until, is before t, of any company,
// earliest first (ties by company and id). It queries every shard of
// IndexByDue in parallel for its earliest keys before t, merges them, and
// reads the rows with a strongly consistent BatchGetItem; a row that moved
// on since the index saw it (no longer due, or terminal) is left out.
func (s *Store) DueCommunications(ctx context.Context, t time.Time, limit int) ([]comms.Communication, error) {
	items, err := dueItems(ctx, s, prefixDue, keyTS(t), limit, func(item map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
		return item, nil
	}, func(item map[string]types.AttributeValue) bool {
		c, err := decodeComm(item)
		if err != nil {
			return true // decodeRows reports it
		}
		due, ok := dueAt(c)
		return ok && due.Before(t)
	})
	if err != nil {
		return nil, wrap("DueCommunications", err)
	}
	rows, err := s.decodeRows(ctx, items, true)
	return rows, wrap("DueCommunications", err)
}

// dueItems reads the items of the limit earliest IndexByDue entries below
// before in the shards <prefix>0 … (dueKeys) with a strongly consistent
// BatchGetItem, in key order, keeping those still due by keep: the index
// is eventually consistent, and an item may have moved on (or gone) since
// it was seen there.
func dueItems[T any](ctx context.Context, s *Store, prefix, before string, limit int,
	decode func(map[string]types.AttributeValue) (T, error), keep func(T) bool) ([]T, error) {
	if limit < 1 {
		return nil, nil
	}
	keys, err := s.dueKeys(ctx, prefix, before, limit)
	if err != nil {
		return nil, err
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(keys))
	for _, k := range keys {
		item := items[pkOf(k)]
		if item == nil {
			continue // deleted since
		}
		x, err := decode(item)
		if err != nil {
			return nil, err
		}
		if keep(x) {
			out = append(out, x)
		}
	}
	return out, nil
}

// dueKeys returns the table keys of the limit earliest IndexByDue entries
// whose sort key is below before, across the shards <prefix>0 … <prefix>7
// (DUE# for rows, WHDUE# for webhook deliveries), in sort-key order.
func (s *Store) dueKeys(ctx context.Context, prefix, before string, limit int) ([]map[string]types.AttributeValue, error) {
	type result struct {
		items []map[string]types.AttributeValue
		err   error
	}
	results := make([]result, DueShards)
	var wg sync.WaitGroup
	for shard := range DueShards {
		wg.Go(func() {
			in := &dynamodb.QueryInput{
				TableName:                s.table,
				IndexName:                aws.String(IndexByDue),
				KeyConditionExpression:   aws.String("#pk = :pk AND #sk < :t"),
				ExpressionAttributeNames: map[string]string{"#pk": AttrGSI2PK, "#sk": AttrGSI2SK},
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":pk": str(prefix + strconv.Itoa(shard)), ":t": str(before),
				},
			}
			r := &results[shard]
			for len(r.items) < limit {
				in.Limit = aws.Int32(int32(limit - len(r.items)))
				page, err := s.api.Query(ctx, in)
				if err != nil {
					r.err = err
					return
				}
				r.items = append(r.items, page.Items...)
				if len(page.LastEvaluatedKey) == 0 {
					return
				}
				in.ExclusiveStartKey = page.LastEvaluatedKey
			}
		})
	}
	wg.Wait()
	var all []map[string]types.AttributeValue
	for _, r := range results {
		if r.err != nil {
			return nil, r.err
		}
		all = append(all, r.items...)
	}
	slices.SortFunc(all, func(a, b map[string]types.AttributeValue) int {
		return strings.Compare(strAttr(a, AttrGSI2SK), strAttr(b, AttrGSI2SK))
	})
	keys := make([]map[string]types.AttributeValue, 0, min(limit, len(all)))
	for _, item := range all[:min(limit, len(all))] {
		keys = append(keys, map[string]types.AttributeValue{AttrPK: item[AttrPK], AttrSK: item[AttrSK]})
	}
	return keys, nil
}

// batchSize is the most keys one BatchGetItem takes.
const batchSize = 100

// batchGet reads the items of keys with strongly consistent BatchGetItems,
// retrying unprocessed keys, and returns them by pk.
func (s *Store) batchGet(ctx context.Context, keys []map[string]types.AttributeValue) (map[string]map[string]types.AttributeValue, error) {
	got := make(map[string]map[string]types.AttributeValue, len(keys))
	err := s.batchGetEach(ctx, keys, func(item map[string]types.AttributeValue) { got[strAttr(item, AttrPK)] = item })
	if err != nil {
		return nil, err
	}
	return got, nil
}

// batchGetEach reads the items of keys with strongly consistent
// BatchGetItems of at most batchSize keys, retrying unprocessed keys with
// backoff (maxDebitAttempts at most), and hands each item found to each.
func (s *Store) batchGetEach(ctx context.Context, keys []map[string]types.AttributeValue, each func(map[string]types.AttributeValue)) error {
	return s.batchGetWith(ctx, keys, true, each)
}

// batchGetWith is batchGetEach with strongly consistent reads or not.
func (s *Store) batchGetWith(ctx context.Context, keys []map[string]types.AttributeValue, consistent bool, each func(map[string]types.AttributeValue)) error {
	for chunk := range slices.Chunk(keys, batchSize) {
		pending := chunk
		for attempt := 1; len(pending) > 0; attempt++ {
			out, err := s.api.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
				*s.table: {Keys: pending, ConsistentRead: aws.Bool(consistent)},
			}})
			if err != nil {
				return err
			}
			for _, item := range out.Responses[*s.table] {
				each(item)
			}
			pending = out.UnprocessedKeys[*s.table].Keys
			if len(pending) == 0 {
				break
			}
			if attempt == maxDebitAttempts {
				return fmt.Errorf("BatchGetItem left %d keys unprocessed after %d attempts", len(pending), attempt)
			}
			if err := retryBackoff.Sleep(ctx, attempt); err != nil {
				return err
			}
		}
	}
	return nil
}

// strAttr returns the string attribute name of item ("" if absent).
func strAttr(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// pkOf returns the partition key of a key or item.
func pkOf(item map[string]types.AttributeValue) string { return strAttr(item, AttrPK) }
