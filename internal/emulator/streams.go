package emulator

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// Stream plays the Lambda event source mapping of a table's DynamoDB
// stream (ReportBatchItemFailures on): it reads every shard from its
// start, keeps a checkpoint per shard, and hands the records a filter lets
// through to a handler in batches. A batch item failure moves the
// checkpoint to just before the sequence number it names, so the next
// Pump delivers that record and every one after it again — what Lambda
// does; a handler error does the same from the batch's first record.
type Stream struct {
	client *dynamodbstreams.Client
	arn    string
	region string
	// done is the last sequence number handled of each shard.
	done map[string]string
}

// NewStream finds the stream of table (which must have one).
func NewStream(ctx context.Context, cfg aws.Config, table string) (*Stream, error) {
	out, err := dynamodb.NewFromConfig(cfg).DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return nil, fmt.Errorf("dynamodb.DescribeTable: %w", err)
	}
	arn := aws.ToString(out.Table.LatestStreamArn)
	if arn == "" {
		return nil, fmt.Errorf("emulator.NewStream: table %s has no stream", table)
	}
	return &Stream{client: dynamodbstreams.NewFromConfig(cfg), arn: arn, region: cfg.Region, done: map[string]string{}}, nil
}

// Pump delivers, shard by shard, every record after the checkpoints that
// keep lets through (nil: all), in batches of at most batch, to handle.
// It returns how many records it handed over and the handler's or the
// emulator's error.
func (s *Stream) Pump(ctx context.Context, batch int, keep func(events.DynamoDBEventRecord) bool,
	handle func(context.Context, events.DynamoDBEvent) (events.DynamoDBEventResponse, error)) (int, error) {
	desc, err := s.client.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(s.arn)})
	if err != nil {
		return 0, fmt.Errorf("dynamodbstreams.DescribeStream: %w", err)
	}
	delivered := 0
	for _, sh := range desc.StreamDescription.Shards {
		shard := aws.ToString(sh.ShardId)
		in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(s.arn), ShardId: aws.String(shard),
			ShardIteratorType: types.ShardIteratorTypeTrimHorizon}
		if seq, ok := s.done[shard]; ok {
			in.ShardIteratorType, in.SequenceNumber = types.ShardIteratorTypeAfterSequenceNumber, aws.String(seq)
		}
		it, err := s.client.GetShardIterator(ctx, in)
		if err != nil {
			return delivered, fmt.Errorf("dynamodbstreams.GetShardIterator: %w", err)
		}
		recs, err := s.client.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it.ShardIterator})
		if err != nil {
			return delivered, fmt.Errorf("dynamodbstreams.GetRecords: %w", err)
		}
		var pending []events.DynamoDBEventRecord
		for _, r := range recs.Records {
			rec, err := s.record(r)
			if err != nil {
				return delivered, err
			}
			if keep == nil || keep(rec) {
				pending = append(pending, rec)
			} else if len(pending) == 0 {
				s.done[shard] = rec.Change.SequenceNumber // filtered out: passed
			}
		}
		for len(pending) > 0 {
			n := min(batch, len(pending))
			ev := events.DynamoDBEvent{Records: pending[:n]}
			delivered += n
			res, err := handle(ctx, ev)
			if err != nil {
				return delivered, err
			}
			if len(res.BatchItemFailures) > 0 {
				failed := res.BatchItemFailures[0].ItemIdentifier
				for i, r := range pending[:n] {
					if r.Change.SequenceNumber == failed {
						if i > 0 {
							s.done[shard] = pending[i-1].Change.SequenceNumber
						}
						return delivered, nil
					}
				}
				return delivered, errors.New("emulator.Stream: a batch item failure names no record of the batch: " + failed)
			}
			s.done[shard] = pending[n-1].Change.SequenceNumber
			pending = pending[n:]
		}
	}
	return delivered, nil
}

// record converts a stream record of the SDK into the Lambda event's
// shape (keys and images of string and number attributes: what the
// table's keys are).
func (s *Stream) record(r types.Record) (events.DynamoDBEventRecord, error) {
	conv := func(m map[string]types.AttributeValue) (map[string]events.DynamoDBAttributeValue, error) {
		if m == nil {
			return nil, nil
		}
		out := make(map[string]events.DynamoDBAttributeValue, len(m))
		for k, v := range m {
			switch x := v.(type) {
			case *types.AttributeValueMemberS:
				out[k] = events.NewStringAttribute(x.Value)
			case *types.AttributeValueMemberN:
				out[k] = events.NewNumberAttribute(x.Value)
			case *types.AttributeValueMemberBOOL:
				out[k] = events.NewBooleanAttribute(x.Value)
			default:
				return nil, fmt.Errorf("emulator.Stream: attribute %s of type %T is not converted", k, v)
			}
		}
		return out, nil
	}
	rec := events.DynamoDBEventRecord{EventID: aws.ToString(r.EventID), EventName: string(r.EventName), EventVersion: "1.1",
		EventSource: "aws:dynamodb", AWSRegion: s.region, EventSourceArn: s.arn}
	d := r.Dynamodb
	if d == nil {
		return rec, errors.New("emulator.Stream: a record without its dynamodb member")
	}
	var err error
	if rec.Change.Keys, err = conv(d.Keys); err != nil {
		return rec, err
	}
	if rec.Change.NewImage, err = conv(d.NewImage); err != nil {
		return rec, err
	}
	if rec.Change.OldImage, err = conv(d.OldImage); err != nil {
		return rec, err
	}
	rec.Change.SequenceNumber = aws.ToString(d.SequenceNumber)
	rec.Change.StreamViewType = string(d.StreamViewType)
	if d.SizeBytes != nil {
		rec.Change.SizeBytes = *d.SizeBytes
	}
	if d.ApproximateCreationDateTime != nil {
		rec.Change.ApproximateCreationDateTime = events.SecondsEpochTime{Time: *d.ApproximateCreationDateTime}
	}
	return rec, nil
}
