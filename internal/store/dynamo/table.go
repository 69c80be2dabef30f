package dynamo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TableAPI is the part of the DynamoDB client CreateTable uses.
type TableAPI interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	DescribeTimeToLive(ctx context.Context, in *dynamodb.DescribeTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

// tableWait is how long CreateTable waits for the table to become ACTIVE.
const tableWait = 5 * time.Minute

// TableInput returns the CreateTable request of the Store's schema (the
// package documentation describes it): pk/sk, by_company projecting the
// listing filters' attributes (ByCompanyAttributes),
// by_due projecting KEYS_ONLY, by_feed projecting ALL, on-demand billing,
// and a stream of the items' keys (StreamViewType KEYS_ONLY), which feeds
// the status-webhook fan-out (EventStreamFilter).
func TableInput(table string) *dynamodb.CreateTableInput {
	s := func(name string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: types.ScalarAttributeTypeS}
	}
	keys := func(pk, sk string) []types.KeySchemaElement {
		return []types.KeySchemaElement{
			{AttributeName: aws.String(pk), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(sk), KeyType: types.KeyTypeRange},
		}
	}
	projection := func(t types.ProjectionType) *types.Projection { return &types.Projection{ProjectionType: t} }
	return &dynamodb.CreateTableInput{
		TableName: aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{
			s(AttrPK), s(AttrSK), s(AttrGSI1PK), s(AttrGSI1SK), s(AttrGSI2PK), s(AttrGSI2SK), s(AttrGSI3PK), s(AttrGSI3SK),
		},
		KeySchema:   keys(AttrPK, AttrSK),
		BillingMode: types.BillingModePayPerRequest,
		StreamSpecification: &types.StreamSpecification{
			StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeKeysOnly,
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{
			{IndexName: aws.String(IndexByCompany), KeySchema: keys(AttrGSI1PK, AttrGSI1SK), Projection: &types.Projection{
				ProjectionType: types.ProjectionTypeInclude, NonKeyAttributes: ByCompanyAttributes}},
			{IndexName: aws.String(IndexByDue), KeySchema: keys(AttrGSI2PK, AttrGSI2SK), Projection: projection(types.ProjectionTypeKeysOnly)},
			{IndexName: aws.String(IndexByFeed), KeySchema: keys(AttrGSI3PK, AttrGSI3SK), Projection: projection(types.ProjectionTypeAll)},
		},
	}
}

// ByCompanyAttributes are the attributes IndexByCompany projects besides the
// keys: those the listings filter on (rows: status, channel, contact,
// customer, deal, cadence root, delivery status; webhook deliveries:
// state). Listings read the items themselves from the table by key, so a
// transition writes the index only when one of these changes, and never
// copies a payload into it.
var ByCompanyAttributes = []string{"status", "channel", "contact_id", "customer_id", "deal_id", "cadence_root_id", "delivery_status", "state"}

// TableOption changes the CreateTable request.
type TableOption func(*dynamodb.CreateTableInput)

// WithoutStream creates the table without its stream: for emulator runs in
// which nothing reads it, because moto cannot serialize a stream's records
// in /moto-api/data.json, which the emulator tests read to see what SES
// and SNS were asked to send.
func WithoutStream() TableOption {
	return func(in *dynamodb.CreateTableInput) { in.StreamSpecification = nil }
}

// CreateTable creates the table with the Store's schema (TableInput, then
// opts), waits until it is
// ACTIVE and enables TTL on AttrTTL. A table of that name that already
// exists is accepted if its keys and indexes are the Store's (so a local
// `serve --backend aws` can call it at every start), and refused otherwise.
// Production tables come from the CDK stack, not from here.
func CreateTable(ctx context.Context, client TableAPI, table string, opts ...TableOption) error {
	in := TableInput(table)
	for _, o := range opts {
		o(in)
	}
	_, err := client.CreateTable(ctx, in)
	var inUse *types.ResourceInUseException
	existed := errors.As(err, &inUse)
	if err != nil && !existed {
		return fmt.Errorf("dynamo.CreateTable: %w", err)
	}
	w := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = time.Second, 5*time.Second
	})
	out, err := w.WaitForOutput(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, tableWait)
	if err != nil {
		return fmt.Errorf("dynamo.CreateTable: waiting for %s: %w", table, err)
	}
	if existed {
		if err := checkSchema(out.Table); err != nil {
			return fmt.Errorf("dynamo.CreateTable: table %s exists with another schema: %w", table, err)
		}
		ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
		if err != nil {
			return fmt.Errorf("dynamo.CreateTable: %w", err)
		}
		if d := ttl.TimeToLiveDescription; d != nil && aws.ToString(d.AttributeName) == AttrTTL &&
			(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
			return nil
		}
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(AttrTTL), Enabled: aws.Bool(true)},
	})
	if err != nil {
		return fmt.Errorf("dynamo.CreateTable: enabling TTL: %w", err)
	}
	return nil
}

// checkSchema compares an existing table's keys and indexes with TableInput's.
func checkSchema(d *types.TableDescription) error {
	want := TableInput("")
	if d == nil {
		return errors.New("no description")
	}
	if !sameKeys(d.KeySchema, want.KeySchema) {
		return errors.New("primary key is not pk/sk")
	}
	for _, wi := range want.GlobalSecondaryIndexes {
		i := slices.IndexFunc(d.GlobalSecondaryIndexes, func(g types.GlobalSecondaryIndexDescription) bool {
			return aws.ToString(g.IndexName) == aws.ToString(wi.IndexName)
		})
		if i < 0 {
			return fmt.Errorf("index %s is missing", aws.ToString(wi.IndexName))
		}
		g := d.GlobalSecondaryIndexes[i]
		if !sameKeys(g.KeySchema, wi.KeySchema) || !projects(g.Projection, wi.Projection) {
			return fmt.Errorf("index %s has other keys or projection", aws.ToString(wi.IndexName))
		}
	}
	return nil
}

// projects reports whether an index projecting has serves the store where
// it declares want: the same type, or ALL (which holds everything), and
// for INCLUDE at least want's attributes. (Tables made before issue 14
// project ALL on by_company; listings read their rows by key either way.)
func projects(has, want *types.Projection) bool {
	switch {
	case has == nil:
		return false
	case has.ProjectionType == types.ProjectionTypeAll:
		return true
	case has.ProjectionType != want.ProjectionType:
		return false
	}
	for _, a := range want.NonKeyAttributes {
		if !slices.Contains(has.NonKeyAttributes, a) {
			return false
		}
	}
	return true
}

func sameKeys(a, b []types.KeySchemaElement) bool {
	return slices.EqualFunc(a, b, func(x, y types.KeySchemaElement) bool {
		return aws.ToString(x.AttributeName) == aws.ToString(y.AttributeName) && x.KeyType == y.KeyType
	})
}
