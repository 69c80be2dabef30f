package awsfn

import (
	"io"
	"log/slog"

	"github.com/dispatcherhq/dispatcher/internal/emf"
)

// NewLogger returns the JSON logger every Lambda function uses, at level
// ("debug", "info", "warn", "error"; default info). Its delivery-attempt
// lines also carry CloudWatch metrics in the Embedded Metric Format
// (internal/emf) in namespace (config.AWS.MetricsNamespace, from
// DISPATCHER_METRICS_NAMESPACE; "" means "Dispatcher"), which CloudWatch
// Logs extracts from the function's log group.
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
	return slog.New(emf.NewHandler(h, namespace))
}
