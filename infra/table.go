package infra

import (
	"errors"
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// DataTableProps configures a DataTable.
type DataTableProps struct {
	// Retain turns on deletion protection and the RETAIN removal policy
	// (production). Otherwise the table is destroyed with the stack.
	Retain bool
	// ListingIndexAll keeps dynamo.IndexByCompany projecting ALL
	// (DispatcherStackProps.ListingIndexAll).
	ListingIndexAll bool
}

// DataTable is the service's DynamoDB single table: on demand, point-in-time
// recovery, TTL on AttrTTL, and the keys and global secondary indexes of
// the store's schema (StoreSchema).
type DataTable struct {
	// Construct is the scope holding the table.
	Construct constructs.Construct
	// Table is the DynamoDB table.
	Table awsdynamodb.Table
	// Indexes are the names of the global secondary indexes.
	Indexes []string
}

// NewDataTable creates the table.
func NewDataTable(scope constructs.Construct, id string, props *DataTableProps) (*DataTable, error) {
	if props == nil {
		return nil, errors.New("infra.NewDataTable: props are required")
	}
	pk, sk, indexes, err := StoreSchema()
	if err != nil {
		return nil, fmt.Errorf("infra.NewDataTable: %w", err)
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	removal := awscdk.RemovalPolicy_DESTROY
	if props.Retain {
		removal = awscdk.RemovalPolicy_RETAIN
	}
	str := func(name string) *awsdynamodb.Attribute {
		return &awsdynamodb.Attribute{Name: jsii.String(name), Type: awsdynamodb.AttributeType_STRING}
	}
	t := awsdynamodb.NewTable(c, jsii.String("Table"), &awsdynamodb.TableProps{
		PartitionKey: str(pk),
		SortKey:      str(sk),
		BillingMode:  awsdynamodb.BillingMode_PAY_PER_REQUEST,
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		TimeToLiveAttribute: jsii.String(AttrTTL),
		// The keys of every change: the webhooks function reads the event
		// inserts (dynamo.EventStreamFilter) to fan them out.
		Stream:             awsdynamodb.StreamViewType_KEYS_ONLY,
		DeletionProtection: jsii.Bool(props.Retain),
		RemovalPolicy:      removal,
		Encryption:         awsdynamodb.TableEncryption_AWS_MANAGED,
	})
	var names []string
	for _, ix := range indexes {
		gp := &awsdynamodb.GlobalSecondaryIndexProps{
			IndexName:      jsii.String(ix.Name),
			PartitionKey:   str(ix.PartitionKey),
			SortKey:        str(ix.SortKey),
			ProjectionType: ix.Projection,
		}
		if len(ix.NonKeyAttributes) > 0 {
			gp.NonKeyAttributes = jsii.Strings(ix.NonKeyAttributes...)
		}
		if props.ListingIndexAll && ix.Name == IndexByCompany {
			gp.ProjectionType, gp.NonKeyAttributes = awsdynamodb.ProjectionType_ALL, nil
		}
		t.AddGlobalSecondaryIndex(gp)
		names = append(names, ix.Name)
	}
	return &DataTable{Construct: c, Table: t, Indexes: names}, nil
}

// IndexArns returns the ARN of each global secondary index, by name: no
// `index/*` wildcard.
func (t *DataTable) IndexArns() []*string {
	arns := make([]*string, 0, len(t.Indexes))
	for _, ix := range t.Indexes {
		arns = append(arns, awscdk.Fn_Join(jsii.String(""), &[]*string{t.Table.TableArn(), jsii.String("/index/" + ix)}))
	}
	return arns
}

// Item actions the store performs on the table. Transactions
// (TransactWriteItems/TransactGetItems) are authorized per item by these
// same actions; the store never scans. Deleting items (DeleteItem, and the
// Delete of a transaction) is only what the API does: deleting sender
// resources and webhook endpoints, releasing phone-number and sending-domain
// claims (internal/store/dynamo: deleteResource, DeleteWebhookEndpoint,
// releaseClaim, the domain claims of PutSettings).
var (
	tableItemActions = []string{
		"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query",
		"dynamodb:PutItem", "dynamodb:UpdateItem",
		"dynamodb:ConditionCheckItem",
	}
	tableDeleteAction = "dynamodb:DeleteItem"
	indexActions      = []string{"dynamodb:Query"}
)

// GrantReadWrite lets grantee read and write items of the table and query
// its indexes, naming the table and each index ARN; with deleteItems, also
// delete items.
func (t *DataTable) GrantReadWrite(grantee awsiam.IGrantable, deleteItems bool) {
	actions := append([]string(nil), tableItemActions...)
	if deleteItems {
		actions = append(actions, tableDeleteAction)
	}
	grantee.GrantPrincipal().AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("TableItems"),
		Actions:   jsii.Strings(actions...),
		Resources: &[]*string{t.Table.TableArn()},
	}))
	arns := t.IndexArns()
	grantee.GrantPrincipal().AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("TableIndexes"),
		Actions:   jsii.Strings(indexActions...),
		Resources: &arns,
	}))
}
