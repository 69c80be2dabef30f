package dynamo

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// readyKey names an item that never exists: Ready reads it.
var readyKey = key("READY", "READY")

// Ready reports whether the table answers, for the readiness endpoint: one
// GetItem of an item that does not exist (half a read unit). It fails when
// DynamoDB is unreachable, the table is missing or the role may not read
// it; DynamoDB acknowledges a write only once it is durable, so no write is
// needed to prove that.
func (s *Store) Ready(ctx context.Context) error {
	_, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: s.table, Key: readyKey})
	return wrap("Ready", err)
}
