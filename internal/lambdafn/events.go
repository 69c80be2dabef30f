package lambdafn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/feedback"
)

//go:generate go test -run TestSampleEventsAreGenerated . -update-samples

// Recorder records one provider report; *feedback.Recorder is one.
type Recorder interface {
	Record(ctx context.Context, t feedback.Target, r comms.DeliveryReport) (feedback.Outcome, error)
}

var _ Recorder = (*feedback.Recorder)(nil)

// Events returns the events function's handler: delivery feedback in. The
// raw event is either
//
//   - an SQS event (it has "Records"): the events queue, fed by an
//     EventBridge rule on SES events (each body is an EventBridge event, or
//     an SNS notification of an SES event). Each record is parsed with
//     feedback.ParseSESEvent and recorded; a record whose recording hit a
//     store error is reported as a batch item failure, so SQS redelivers
//     only it. A record that does not parse, is not Dispatcher's, or is of
//     an event type not tracked (opens, clicks) is logged and acknowledged:
//     redelivering it cannot help.
//   - a CloudWatch Logs subscription event (it has "awslogs"): SNS SMS
//     delivery-status logs. Each log event is parsed with
//     feedback.ParseSMSDeliveryLog and recorded; a store error returns an
//     error after the whole batch was tried, so Lambda retries the
//     invocation (recording is idempotent: what was recorded is ignored
//     the second time) twice, then puts the batch on the events DLQ (its
//     on-failure destination), from which `dispatcher dlq redrive` sends
//     it to the events queue.
func Events(rec Recorder, log *slog.Logger) func(ctx context.Context, raw json.RawMessage) (any, error) {
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		var probe struct {
			Records json.RawMessage `json:"Records"`
			AWSLogs json.RawMessage `json:"awslogs"`
		}
		// An invocation whose shape is wrong can never succeed: it is logged
		// and acknowledged, not retried (only store failures are).
		if err := json.Unmarshal(raw, &probe); err != nil {
			log.ErrorContext(ctx, "events invocation is not a JSON object; dropped", "error", err.Error())
			return nil, nil
		}
		switch {
		case probe.Records != nil:
			var ev events.SQSEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				log.ErrorContext(ctx, "SQS event does not decode; dropped", "error", err.Error())
				return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}, nil
			}
			return EventsSQS(ctx, rec, log, ev), nil
		case probe.AWSLogs != nil:
			var ev events.CloudwatchLogsEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				log.ErrorContext(ctx, "CloudWatch Logs event does not decode; dropped", "error", err.Error())
				return nil, nil
			}
			return nil, EventsLogs(ctx, rec, log, ev)
		}
		log.ErrorContext(ctx, "events invocation is neither an SQS event (Records) nor a CloudWatch Logs event (awslogs); dropped")
		return nil, nil
	}
}

// EventsSQS records a batch of SES events and returns the partial batch
// response. A body that is a CloudWatch Logs subscription event (a batch
// of SMS delivery-status lines the function failed on when CloudWatch Logs
// invoked it, sent back by `dispatcher dlq redrive` from the events DLQ,
// where Lambda's on-failure destination put it) is recorded as EventsLogs
// records one; any line whose recording failed fails the whole message.
func EventsSQS(ctx context.Context, rec Recorder, log *slog.Logger, ev events.SQSEvent) events.SQSEventResponse {
	res := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	for _, m := range ev.Records {
		if lev, ok := cloudWatchLogsBody(m.Body); ok {
			if err := EventsLogs(ctx, rec, log, lev); err != nil {
				res.BatchItemFailures = append(res.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
			}
			continue
		}
		t, r, err := feedback.ParseSESEvent([]byte(m.Body))
		if err != nil {
			logUnparsed(ctx, log, "SES event", err, "message_id", m.MessageId)
			continue
		}
		if _, err := rec.Record(ctx, t, r); err != nil {
			log.WarnContext(ctx, "delivery report not recorded; SQS will redeliver it", "message_id", m.MessageId,
				"communication_id", t.CommunicationID, "error", err.Error())
			res.BatchItemFailures = append(res.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
	}
	return res
}

// EventsLogs records the SNS SMS delivery-status log lines of a CloudWatch
// Logs subscription event. It returns an error when any recording hit a
// store error (the invocation is retried); a payload or a line that does
// not parse is logged and dropped.
func EventsLogs(ctx context.Context, rec Recorder, log *slog.Logger, ev events.CloudwatchLogsEvent) error {
	data, err := ev.AWSLogs.Parse()
	if err != nil {
		log.ErrorContext(ctx, "CloudWatch Logs payload does not decode; dropped", "error", err.Error())
		return nil
	}
	if data.MessageType != "DATA_MESSAGE" {
		// CONTROL_MESSAGE: CloudWatch Logs checking that the destination is reachable.
		log.DebugContext(ctx, "CloudWatch Logs control message", "message_type", data.MessageType)
		return nil
	}
	var errs []error
	for _, le := range data.LogEvents {
		t, r, err := feedback.ParseSMSDeliveryLog([]byte(le.Message))
		if err != nil {
			logUnparsed(ctx, log, "SMS delivery log", err, "log_group", data.LogGroup, "log_event_id", le.ID)
			continue
		}
		if _, err := rec.Record(ctx, t, r); err != nil {
			log.WarnContext(ctx, "delivery report not recorded; the invocation will be retried", "log_event_id", le.ID,
				"provider_message_id", t.ProviderMessageID, "error", err.Error())
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("lambdafn.Events: %d of %d SMS delivery reports not recorded: %w", len(errs), len(data.LogEvents), errors.Join(errs...))
	}
	return nil
}

// cloudWatchLogsBody reads an SQS body that is a CloudWatch Logs
// subscription event ({"awslogs":{"data":…}}).
func cloudWatchLogsBody(body string) (events.CloudwatchLogsEvent, bool) {
	var ev events.CloudwatchLogsEvent
	if json.Unmarshal([]byte(body), &ev) != nil || ev.AWSLogs.Data == "" {
		return events.CloudwatchLogsEvent{}, false
	}
	return ev, true
}

// logUnparsed logs a document the parsers refused, at a level that says
// whether anyone should look: not tracked and not ours are expected.
func logUnparsed(ctx context.Context, log *slog.Logger, what string, err error, attrs ...any) {
	attrs = append(attrs, "error", err.Error())
	switch {
	case errors.Is(err, feedback.ErrNotTracked):
		log.DebugContext(ctx, what+" not tracked; acknowledged", attrs...)
	case errors.Is(err, feedback.ErrNoRow):
		log.InfoContext(ctx, what+" names no row; acknowledged", attrs...)
	default:
		log.ErrorContext(ctx, what+" does not parse; dropped", attrs...)
	}
}
