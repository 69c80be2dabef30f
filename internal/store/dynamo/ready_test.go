package dynamo_test

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
)

// TestReady: the table answering is ready; DynamoDB unreachable is not.
func TestReady(t *testing.T) {
	t.Parallel()
	var down bool
	f := &fakeAPI{t: t, get: func(in *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
		if *in.TableName != "t" {
			t.Errorf("table %q", *in.TableName)
		}
		if down {
			return nil, errors.New("dial tcp: connection refused")
		}
		return &dynamodb.GetItemOutput{}, nil
	}}
	s := dynamo.New(f, "t")
	if err := s.Ready(t.Context()); err != nil {
		t.Fatalf("reachable: %v", err)
	}
	down = true
	if err := s.Ready(t.Context()); err == nil {
		t.Fatal("unreachable DynamoDB is ready")
	}
}
