package awsfn

import (
	"context"
	"io"
	"log/slog"

	"github.com/dispatcherhq/dispatcher/internal/comms"

	"github.com/dispatcherhq/dispatcher/internal/emf"
)

// NewLogger returns the JSON logger every Lambda function uses, at level
// ("debug", "info", "warn", "error"; default info). Its delivery-attempt
// lines also carry CloudWatch metrics in the Embedded Metric Format
// (internal/emf) in namespace (config.AWS.MetricsNamespace, from
// DISPATCHER_METRICS_NAMESPACE; "" means "Dispatcher"), which CloudWatch
// Logs extracts from the function's log group. Every line logged under a
// context that carries a request id (comms.WithRequestID: the API's
// request, a fire armed by one) has it as request_id — the JSON fields and
// the EMF record are the same line — unless the line names one itself.
func NewLogger(w io.Writer, level, namespace string) *slog.Logger {
	var l slog.Level
	switch level {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})
	return slog.New(requestIDs{next: emf.NewHandler(h, namespace)})
}

// AttrRequestID is the attribute of a line's request id.
const AttrRequestID = "request_id"

// requestIDs adds the context's request id to each record as
// AttrRequestID, before the EMF handler sees it.
type requestIDs struct {
	next slog.Handler
	// named: an attribute given to WithAttrs already names a request id.
	named bool
}

func (h requestIDs) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h requestIDs) Handle(ctx context.Context, r slog.Record) error {
	if id := comms.RequestID(ctx); id != "" && !h.named {
		named := false
		r.Attrs(func(a slog.Attr) bool {
			named = a.Key == AttrRequestID
			return !named
		})
		if !named {
			r = r.Clone()
			r.AddAttrs(slog.String(AttrRequestID, id))
		}
	}
	return h.next.Handle(ctx, r)
}

func (h requestIDs) WithAttrs(attrs []slog.Attr) slog.Handler {
	named := h.named
	for _, a := range attrs {
		named = named || a.Key == AttrRequestID
	}
	return requestIDs{next: h.next.WithAttrs(attrs), named: named}
}

func (h requestIDs) WithGroup(name string) slog.Handler {
	// Attributes after a group are inside it; the id stays at the top.
	return requestIDs{next: h.next.WithGroup(name), named: true}
}
