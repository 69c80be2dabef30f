package templatetests

import (
	"testing"

	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
)

// TestWebhookFanOut: the table streams its keys; the webhooks function
// reads only event inserts from it (the store's own filter), reports
// partial batch failures, retries a record until it leaves the stream
// (24 h), then parks it on the fan-out DLQ; it consumes the webhook queue
// in batches of 10 with partial failures, at most 20 at once.
func TestWebhookFanOut(t *testing.T) {
	dev, prod := stacks(t)
	for _, c := range []struct {
		stage string
		f     *fixture
	}{{devStage, dev}, {prodStage, prod}} {
		tp := c.f.tpl
		x := resourceIDs(t, c.f)
		if got := tp.Resources[x.table].prop("StreamSpecification"); !jsonEqual(got, map[string]any{"StreamViewType": "KEYS_ONLY"}) {
			t.Errorf("%s: table stream %s, want KEYS_ONLY", c.stage, render(got))
		}
		stream := tp.Resources[tp.only(t, "AWS::Lambda::EventSourceMapping", func(_ string, r resource) bool {
			return jsonEqual(r.prop("FunctionName"), ref("WebhooksFunction")) && r.prop("StartingPosition") != nil
		})]
		for k, want := range map[string]any{
			"EventSourceArn":             getAtt(x.table, "StreamArn"),
			"FilterCriteria":             map[string]any{"Filters": []any{map[string]any{"Pattern": dynamo.EventStreamFilter}}},
			"FunctionResponseTypes":      []any{"ReportBatchItemFailures"},
			"BisectBatchOnFunctionError": true,
			"MaximumRetryAttempts":       float64(-1),
			"MaximumRecordAgeInSeconds":  float64(86400),
			"StartingPosition":           "LATEST",
			"DestinationConfig":          map[string]any{"OnFailure": map[string]any{"Destination": getAtt(x.fanOutDLQ, "Arn")}},
		} {
			if got := stream.prop(k); !jsonEqual(got, want) {
				t.Errorf("%s: stream mapping %s = %s, want %s", c.stage, k, render(got), render(want))
			}
		}
		queue := tp.Resources[tp.only(t, "AWS::Lambda::EventSourceMapping", func(_ string, r resource) bool {
			return jsonEqual(r.prop("FunctionName"), ref("WebhooksFunction")) && r.prop("StartingPosition") == nil
		})]
		for k, want := range map[string]any{
			"BatchSize":             float64(10),
			"FunctionResponseTypes": []any{"ReportBatchItemFailures"},
			"ScalingConfig":         map[string]any{"MaximumConcurrency": float64(c.f.stack.Props.WebhookMaxConcurrency)},
		} {
			if got := queue.prop(k); !jsonEqual(got, want) {
				t.Errorf("%s: webhook queue mapping %s = %s, want %s", c.stage, k, render(got), render(want))
			}
		}
		// The queue's visibility timeout is 6 × the function's 60 s.
		if got := tp.Resources[x.webhookQueue].prop("VisibilityTimeout"); !jsonEqual(got, float64(360)) {
			t.Errorf("%s: webhook queue visibility timeout %v, want 360", c.stage, got)
		}
	}
}
