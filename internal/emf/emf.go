// Package emf turns Dispatcher's delivery-attempt log lines into CloudWatch
// metrics, with the CloudWatch Embedded Metric Format (EMF): a JSON log
// line that carries an "_aws" member is read by CloudWatch Logs, which
// extracts the metrics it declares — no PutMetricData call, no agent.
//
// The dispatcher logs one line per delivery attempt, with the message
// DeliveryAttempt and the attributes communication_id, company_id,
// channel, attempt, result, error_code and duration_ms. Handler wraps the
// JSON handler of a Lambda function and adds to exactly those lines, in the
// same JSON object:
//
//	"_aws": {"Timestamp": <the record's time, ms since the epoch>,
//	         "CloudWatchMetrics": [{"Namespace": <namespace>,
//	                                "Dimensions": [["Channel", "Result"]],
//	                                "Metrics": [{"Name": "Deliveries", "Unit": "Count"}]}]},
//	"Channel": "email", "Result": "sent", "Deliveries": 1
//
// EMF wants every dimension and metric a directive names as a member of the
// root object (the dimension values strings, the metric values numbers), so
// Channel, Result and Deliveries sit next to the line's own attributes.
// The events function logs one line per recorded provider report, with the
// message feedback.MsgDeliveryReport and the attributes channel and
// delivery_status; those lines get the DeliveryReports metric the same way,
// with the dimensions Channel and DeliveryStatus. The webhooks function
// logs one line per status-webhook attempt, with the message
// webhooks.MsgWebhookAttempt and the attribute result; those lines get the
// WebhookAttempts metric with the one dimension Result (succeeded, retry,
// gone).
//
// Every other record passes through unchanged.
//
// Dimension values are kept to known sets, as each distinct value is a
// metric of its own (and a cost): a channel outside Channels, or a result
// outside Results, is reported as Other — as is a missing one — so a
// delivery is always counted and the sum over Results is the number of
// attempts. The log line's own channel and result attributes keep their
// values.
package emf

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/feedback"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
)

// DeliveryAttempt is the message of the dispatcher's per-attempt log line.
const DeliveryAttempt = dispatch.MsgDeliveryAttempt

// Names of the metric, its dimensions and the attributes they come from.
const (
	// DefaultNamespace is the CloudWatch namespace when none is given.
	DefaultNamespace = "Dispatcher"
	// MetricDeliveries counts delivery attempts (Unit Count, value 1 per line).
	MetricDeliveries = "Deliveries"
	// DimensionChannel is the channel of the attempt (a value of Channels).
	DimensionChannel = "Channel"
	// DimensionResult is the result of the attempt (a value of Results).
	DimensionResult = "Result"
	// AttrChannel and AttrResult are the attributes of the log line the
	// dimensions are read from.
	AttrChannel = "channel"
	AttrResult  = "result"
	// Other stands for a channel or result outside the known sets.
	Other = "other"
)

// The results of a delivery attempt, as the dispatcher logs them.
const (
	ResultSent       = dispatch.ResultSent
	ResultTransient  = dispatch.ResultTransient
	ResultPermanent  = dispatch.ResultPermanent
	ResultSuppressed = dispatch.ResultSuppressed
)

// The metric of recorded provider reports.
const (
	// DeliveryReport is the message of the events function's per-report line.
	DeliveryReport = feedback.MsgDeliveryReport
	// MetricDeliveryReports counts recorded reports (Unit Count, 1 per line).
	MetricDeliveryReports = "DeliveryReports"
	// DimensionDeliveryStatus is the delivery status a report recorded (a
	// value of DeliveryStatuses), read from the attribute AttrDeliveryStatus.
	DimensionDeliveryStatus = "DeliveryStatus"
	AttrDeliveryStatus      = "delivery_status"
)

// The metric of status-webhook attempts.
const (
	// WebhookAttempt is the message of the per-attempt line.
	WebhookAttempt = webhooks.MsgWebhookAttempt
	// MetricWebhookAttempts counts webhook attempts (Unit Count, 1 per
	// line), by Result (a value of WebhookResults).
	MetricWebhookAttempts = "WebhookAttempts"
)

// WebhookResults are the results of a webhook attempt, Other included.
var WebhookResults = []string{string(webhooks.Succeeded), string(webhooks.Retry), string(webhooks.Gone), Other}

// DeliveryStatuses are the delivery-status dimension's values, Other included.
var DeliveryStatuses = func() []string {
	out := make([]string, 0, len(comms.DeliveryStatuses)+1)
	for _, s := range comms.DeliveryStatuses {
		out = append(out, string(s))
	}
	return append(out, Other)
}()

// Channels are the channel dimension's values besides Other.
var Channels = []string{"email", "sms", "voice_call"}

// Results are the result dimension's values, Other included: the alarm on
// the permanent-failure ratio (package infra) divides by their sum, so a
// new result the dispatcher logs belongs here.
var Results = []string{ResultSent, ResultTransient, ResultPermanent, ResultSuppressed, Other}

// Handler is a slog.Handler that adds the EMF members to delivery-attempt
// records and hands every record to the handler it wraps (a JSON handler:
// EMF lines must be JSON objects).
//
// The members are added at the root of the line, so they are added only
// while no group is open (Logger.WithGroup): inside a group they would
// nest, and CloudWatch would not find them; such records pass through
// unchanged. channel and result are looked for in the record's attributes,
// then in those given to Logger.With.
type Handler struct {
	next      slog.Handler
	namespace string
	now       func() time.Time
	attrs     []slog.Attr // added by WithAttrs outside any group
	grouped   bool
}

var _ slog.Handler = (*Handler)(nil)

// NewHandler wraps next. An empty namespace means DefaultNamespace.
func NewHandler(next slog.Handler, namespace string) *Handler {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	return &Handler{next: next, namespace: namespace, now: time.Now}
}

// Enabled reports what the wrapped handler reports.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// WithAttrs returns a Handler whose wrapped handler has the attributes.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	if !h.grouped {
		c.attrs = append(slices.Clip(h.attrs), attrs...)
	}
	return &c
}

// WithGroup returns a Handler whose wrapped handler opens the group; its
// records get no EMF members (see Handler).
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.next = h.next.WithGroup(name)
	c.grouped = true
	return &c
}

// line is one kind of log line that carries a metric: its message, the
// metric, and its last dimension with the attribute it is read from and
// its known values; noChannel drops the first dimension, Channel.
type line struct {
	metric, dimension, attr string
	values                  []string
	noChannel               bool
}

var lines = map[string]line{
	DeliveryAttempt: {MetricDeliveries, DimensionResult, AttrResult, Results, false},
	DeliveryReport:  {MetricDeliveryReports, DimensionDeliveryStatus, AttrDeliveryStatus, DeliveryStatuses, false},
	WebhookAttempt:  {MetricWebhookAttempts, DimensionResult, AttrResult, WebhookResults, true},
}

// Handle adds the EMF members to a delivery-attempt or delivery-report
// record, then hands the record on.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	l, ok := lines[r.Message]
	if !ok || h.grouped {
		return h.next.Handle(ctx, r)
	}
	var channel, result string
	found := func(a slog.Attr) {
		switch a.Key {
		case AttrChannel:
			channel = a.Value.Resolve().String()
		case l.attr:
			result = a.Value.Resolve().String()
		}
	}
	for _, a := range h.attrs {
		found(a)
	}
	r.Attrs(func(a slog.Attr) bool { found(a); return true })
	at := r.Time
	if at.IsZero() {
		at = h.now()
	}
	dims := []string{DimensionChannel, l.dimension}
	if l.noChannel {
		dims = dims[1:]
	}
	out := r.Clone()
	out.AddAttrs(slog.Any("_aws", metadata{
		Timestamp: at.UnixMilli(),
		CloudWatchMetrics: []directive{{
			Namespace:  h.namespace,
			Dimensions: [][]string{dims},
			Metrics:    []metric{{Name: l.metric, Unit: "Count"}},
		}},
	}))
	if !l.noChannel {
		out.AddAttrs(slog.String(DimensionChannel, known(channel, Channels)))
	}
	out.AddAttrs(slog.String(l.dimension, known(result, l.values)), slog.Int(l.metric, 1))
	return h.next.Handle(ctx, out)
}

// known is v when it is one of values, Other otherwise.
func known(v string, values []string) string {
	if slices.Contains(values, v) {
		return v
	}
	return Other
}

// metadata is EMF's "_aws" member.
type metadata struct {
	Timestamp         int64       `json:"Timestamp"`
	CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
}

// directive is one MetricDirective.
type directive struct {
	Namespace  string     `json:"Namespace"`
	Dimensions [][]string `json:"Dimensions"`
	Metrics    []metric   `json:"Metrics"`
}

// metric is one MetricDefinition.
type metric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}
