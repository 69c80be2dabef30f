package infra

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
)

// The DynamoDB single-table schema is the store's (package
// internal/store/dynamo): its key, index and TTL names, and its indexes as
// dynamo.TableInput declares them (keys and projections), so the table the
// stack creates is the table the store's CreateTable creates for tests.
const (
	// AttrPK is the table's partition key (string).
	AttrPK = dynamo.AttrPK
	// AttrSK is the table's sort key (string).
	AttrSK = dynamo.AttrSK
	// AttrTTL is the TTL attribute (epoch seconds) of idempotency records.
	AttrTTL = dynamo.AttrTTL
	// IndexByCompany lists a company's rows by scheduled_for.
	IndexByCompany = dynamo.IndexByCompany
	// IndexByDue lists non-terminal rows by next_attempt_at, for the sweeper.
	IndexByDue = dynamo.IndexByDue
	// IndexByFeed lists a company's events by time, for GET /v1/events.
	IndexByFeed = dynamo.IndexByFeed
)

// TableIndex is a global secondary index of the store's schema.
type TableIndex struct {
	Name, PartitionKey, SortKey string
	Projection                  awsdynamodb.ProjectionType
	NonKeyAttributes            []string
}

// StoreSchema returns the table's key attributes and global secondary
// indexes from dynamo.TableInput, or an error if it declares something the
// stack cannot build (a non-string key, a missing sort key).
func StoreSchema() (pk, sk string, indexes []TableIndex, err error) {
	in := dynamo.TableInput("schema")
	types_ := map[string]types.ScalarAttributeType{}
	for _, a := range in.AttributeDefinitions {
		types_[deref(a.AttributeName)] = a.AttributeType
	}
	keys := func(ks []types.KeySchemaElement) (string, string, error) {
		var h, r string
		for _, k := range ks {
			name := deref(k.AttributeName)
			if types_[name] != types.ScalarAttributeTypeS {
				return "", "", fmt.Errorf("key %s is not a string attribute", name)
			}
			switch k.KeyType {
			case types.KeyTypeHash:
				h = name
			case types.KeyTypeRange:
				r = name
			}
		}
		if h == "" || r == "" {
			return "", "", fmt.Errorf("want a partition and a sort key, got %q/%q", h, r)
		}
		return h, r, nil
	}
	if pk, sk, err = keys(in.KeySchema); err != nil {
		return "", "", nil, fmt.Errorf("infra.StoreSchema: table: %w", err)
	}
	for _, g := range in.GlobalSecondaryIndexes {
		ix := TableIndex{Name: deref(g.IndexName)}
		if ix.PartitionKey, ix.SortKey, err = keys(g.KeySchema); err != nil {
			return "", "", nil, fmt.Errorf("infra.StoreSchema: index %s: %w", ix.Name, err)
		}
		switch p := g.Projection; {
		case p == nil || p.ProjectionType == types.ProjectionTypeAll:
			ix.Projection = awsdynamodb.ProjectionType_ALL
		case p.ProjectionType == types.ProjectionTypeKeysOnly:
			ix.Projection = awsdynamodb.ProjectionType_KEYS_ONLY
		case p.ProjectionType == types.ProjectionTypeInclude:
			ix.Projection = awsdynamodb.ProjectionType_INCLUDE
			ix.NonKeyAttributes = p.NonKeyAttributes
		default:
			return "", "", nil, fmt.Errorf("infra.StoreSchema: index %s: projection %q", ix.Name, p.ProjectionType)
		}
		indexes = append(indexes, ix)
	}
	return pk, sk, indexes, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
