package dynamo

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

var _ comms.EntityEventStore = (*Store)(nil)

// An event posted to cancel-by-event lives in a partition per company and
// entity, pk ENTEVT#<company>#<entity type>#<entity id>, sk <at>#<id>, with
// at in the table's fixed-width time layout, so that "since the cadence's
// root was created" is one strongly consistent Query of sk >= <since>.
// It expires by TTL EntityEventTTL after it was recorded.
const (
	prefixEntityEvent = "ENTEVT#"
	entityEntityEvent = "entity_event"

	// EntityEventTTL is how long an event is kept: longer than any cadence
	// can last (a row up to 365 days ahead, then 9 follow-ups of at most
	// 720 h each).
	EntityEventTTL = 2 * 365 * 24 * time.Hour
)

type entityEventItem struct {
	PK         string `dynamodbav:"pk"`
	SK         string `dynamodbav:"sk"`
	Entity     string `dynamodbav:"entity"`
	CompanyID  string `dynamodbav:"company_id"`
	EntityType string `dynamodbav:"entity_type"`
	EntityID   string `dynamodbav:"entity_id"`
	ID         string `dynamodbav:"id"`
	Name       string `dynamodbav:"name"`
	At         string `dynamodbav:"at"`
	TTL        int64  `dynamodbav:"ttl"`
}

func entityEventPK(companyID string, t comms.EntityType, id string) string {
	return prefixEntityEvent + companyID + "#" + string(t) + "#" + id
}

// PutEntityEvent puts the event's item (unconditionally: the same event
// again replaces itself).
func (s *Store) PutEntityEvent(ctx context.Context, e comms.EntityEvent) error {
	const op = "PutEntityEvent"
	item, err := attributevalue.MarshalMap(entityEventItem{
		PK: entityEventPK(e.CompanyID, e.EntityType, e.EntityID), SK: keyTS(e.At) + "#" + e.ID, Entity: entityEntityEvent,
		CompanyID: e.CompanyID, EntityType: string(e.EntityType), EntityID: e.EntityID, ID: e.ID, Name: e.Name,
		At: keyTS(e.At), TTL: ttlSeconds(e.At.Add(EntityEventTTL)),
	})
	if err != nil {
		return wrap(op, err)
	}
	_, err = s.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: s.table, Item: item})
	return wrap(op, err)
}

// EntityEventsSince queries the entity's partition (strongly consistent)
// for sort keys from <since>: its events recorded at or after since, in
// (at, id) order.
func (s *Store) EntityEventsSince(ctx context.Context, companyID string, entityType comms.EntityType, entityID string, since time.Time) ([]comms.EntityEvent, error) {
	const op = "EntityEventsSince"
	out := []comms.EntityEvent{}
	in := &dynamodb.QueryInput{
		TableName:                s.table,
		ConsistentRead:           aws.Bool(true),
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk >= :lo"),
		ExpressionAttributeNames: map[string]string{"#pk": AttrPK, "#sk": AttrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(entityEventPK(companyID, entityType, entityID)), ":lo": str(keyTS(since)),
		},
	}
	for {
		page, err := s.api.Query(ctx, in)
		if err != nil {
			return nil, wrap(op, err)
		}
		for _, item := range page.Items {
			var it entityEventItem
			if err := attributevalue.UnmarshalMap(item, &it); err != nil {
				return nil, wrap(op, err)
			}
			e := comms.EntityEvent{ID: it.ID, CompanyID: it.CompanyID, Name: it.Name, EntityType: comms.EntityType(it.EntityType), EntityID: it.EntityID}
			if e.At, err = fromTS(it.At); err != nil {
				return nil, wrap(op, err)
			}
			out = append(out, e)
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}
