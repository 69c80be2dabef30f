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

// An unclaimed SMS receipt (an SNS SMS delivery report whose message id no
// row carried when it arrived) lives in one partition per destination
// number, pk SMSR#<e164>, sk <accepted_at>#<message id>, with accepted_at
// in the table's fixed-width time layout so that the sort key orders by
// time and a time window is a BETWEEN. It expires by TTL ReceiptTTL after
// it was accepted: the sweeper looks for it only within minutes.
const (
	prefixSMSR = "SMSR#"
	entitySMSR = "sms_receipt"

	// ReceiptTTL is how long after SNS accepted the message an unclaimed
	// SMS receipt is kept (TTL deletes it some time after).
	ReceiptTTL = 7 * 24 * time.Hour
)

type smsrItem struct {
	PK                string `dynamodbav:"pk"`
	SK                string `dynamodbav:"sk"`
	Entity            string `dynamodbav:"entity"`
	Destination       string `dynamodbav:"destination"`
	ProviderMessageID string `dynamodbav:"provider_message_id"`
	AcceptedAt        string `dynamodbav:"accepted_at"`
	Status            string `dynamodbav:"status,omitempty"`
	Detail            string `dynamodbav:"detail,omitempty"`
	At                string `dynamodbav:"at,omitempty"`
	TTL               int64  `dynamodbav:"ttl"`
}

// PutSMSReceipt puts the receipt's item (unconditionally: a report
// delivered twice replaces itself).
func (s *Store) PutSMSReceipt(ctx context.Context, r comms.SMSReceipt) error {
	const op = "PutSMSReceipt"
	item, err := attributevalue.MarshalMap(smsrItem{
		PK: prefixSMSR + r.Destination, SK: keyTS(r.AcceptedAt) + "#" + r.ProviderMessageID, Entity: entitySMSR,
		Destination: r.Destination, ProviderMessageID: r.ProviderMessageID, AcceptedAt: keyTS(r.AcceptedAt),
		Status: string(r.Status), Detail: r.Detail, At: ts(r.At), TTL: ttlSeconds(r.AcceptedAt.Add(ReceiptTTL)),
	})
	if err != nil {
		return wrap(op, err)
	}
	_, err = s.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: s.table, Item: item})
	return wrap(op, err)
}

// FindSMSReceipts queries the destination's partition (strongly
// consistent) for sort keys between <from># and <to>$ ('$' follows '#'):
// the receipts accepted in [from, to], in (accepted_at, message id) order.
func (s *Store) FindSMSReceipts(ctx context.Context, destination string, from, to time.Time) ([]comms.SMSReceipt, error) {
	const op = "FindSMSReceipts"
	out := []comms.SMSReceipt{}
	if to.Before(from) {
		return out, nil
	}
	in := &dynamodb.QueryInput{
		TableName:                s.table,
		ConsistentRead:           aws.Bool(true),
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi"),
		ExpressionAttributeNames: map[string]string{"#pk": AttrPK, "#sk": AttrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(prefixSMSR + destination), ":lo": str(keyTS(from) + "#"), ":hi": str(keyTS(to) + "$"),
		},
	}
	for {
		page, err := s.api.Query(ctx, in)
		if err != nil {
			return nil, wrap(op, err)
		}
		for _, item := range page.Items {
			var it smsrItem
			if err := attributevalue.UnmarshalMap(item, &it); err != nil {
				return nil, wrap(op, err)
			}
			r := comms.SMSReceipt{Destination: it.Destination, ProviderMessageID: it.ProviderMessageID,
				Status: comms.DeliveryStatus(it.Status), Detail: it.Detail}
			if r.AcceptedAt, err = fromTS(it.AcceptedAt); err != nil {
				return nil, wrap(op, err)
			}
			if r.At, err = fromTS(it.At); err != nil {
				return nil, wrap(op, err)
			}
			out = append(out, r)
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}
