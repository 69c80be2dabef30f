// Package lambdafn adapts Lambda events to the use cases: the dispatch
// function's two event shapes (an EventBridge Scheduler invoke carrying one
// fire, and an SQS batch of fires with partial batch failures), the
// sweeper's scheduled invoke, and the events function's two shapes of
// delivery feedback (an SQS batch of SES events, and CloudWatch Logs
// subscription events of SNS SMS delivery-status logs). The HTTP API is adapted by
// aws-lambda-go-api-proxy in functions/api.
package lambdafn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
)

// Dispatcher handles one fire.
type Dispatcher interface {
	Handle(ctx context.Context, f comms.Fire) error
}

// Dispatch returns the dispatch function's handler. The raw event is either
// an SQS event (it has "Records") or the input of a Scheduler schedule: the
// fire itself. An SQS batch reports the records whose fire failed (store
// errors) as batch item failures, so only those are redelivered; a
// fire's request id (comms.Fire.RequestID) is put on the context of its
// handling (comms.WithRequestID), so its log lines carry it; a
// malformed record is logged and dropped (redelivering it cannot help). A
// Scheduler invoke returns the error, so Scheduler retries it.
func Dispatch(d Dispatcher, log *slog.Logger) func(ctx context.Context, raw json.RawMessage) (any, error) {
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		var probe struct {
			Records json.RawMessage `json:"Records"`
		}
		if err := json.Unmarshal(raw, &probe); err != nil {
			return nil, fmt.Errorf("lambdafn.Dispatch: event is not JSON: %w", err)
		}
		if probe.Records != nil {
			var ev events.SQSEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				return nil, fmt.Errorf("lambdafn.Dispatch: SQS event: %w", err)
			}
			return DispatchSQS(ctx, d, log, ev), nil
		}
		f, err := DecodeFire([]byte(raw))
		if err != nil {
			log.ErrorContext(ctx, "scheduler input is not a fire; dropped", "error", err.Error())
			return nil, nil
		}
		if err := d.Handle(comms.WithRequestID(ctx, f.RequestID), f); err != nil {
			return nil, fmt.Errorf("dispatch.Handle: %w", err)
		}
		return nil, nil
	}
}

// DispatchSQS handles a batch of fires and returns the partial batch response.
func DispatchSQS(ctx context.Context, d Dispatcher, log *slog.Logger, ev events.SQSEvent) events.SQSEventResponse {
	res := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	for _, rec := range ev.Records {
		f, err := DecodeFire([]byte(rec.Body))
		if err != nil {
			log.ErrorContext(ctx, "SQS message is not a fire; dropped", "message_id", rec.MessageId, "error", err.Error())
			continue
		}
		// The request that armed the fire is on every line of its handling
		// (the functions' logger adds request_id from the context).
		fctx := comms.WithRequestID(ctx, f.RequestID)
		if err := d.Handle(fctx, f); err != nil {
			log.WarnContext(fctx, "fire failed; SQS will redeliver it", "message_id", rec.MessageId,
				"communication_id", f.CommunicationID, "error", err.Error())
			res.BatchItemFailures = append(res.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
		}
	}
	return res
}

// DecodeFire reads a fire strictly: ids and token present (due_at
// optional), nothing else.
func DecodeFire(b []byte) (comms.Fire, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f comms.Fire
	if err := dec.Decode(&f); err != nil {
		return comms.Fire{}, fmt.Errorf("decode fire: %w", err)
	}
	if f.CompanyID == "" || f.CommunicationID == "" || f.Token == "" {
		return comms.Fire{}, errors.New("decode fire: company_id, communication_id and token are required")
	}
	return f, nil
}

// Sweeper runs one sweep per invoke (EventBridge Scheduler, every minute).
type Sweeper interface {
	Sweep(ctx context.Context) (dispatch.SweepResult, error)
}

// Sweep returns the sweeper function's handler.
func Sweep(s Sweeper, log *slog.Logger) func(ctx context.Context, raw json.RawMessage) (dispatch.SweepResult, error) {
	return func(ctx context.Context, _ json.RawMessage) (dispatch.SweepResult, error) {
		res, err := s.Sweep(ctx)
		log.InfoContext(ctx, "sweep", "refired", res.Refired, "released", res.Released, "outcome_unknown", res.Unknown, "exhausted", res.Exhausted)
		if err != nil {
			return res, fmt.Errorf("dispatch.Sweep: %w", err)
		}
		return res, nil
	}
}
