package app

import (
	"io"
	"log/slog"
)

// NewLogger returns the JSON logger every process uses, at level
// ("debug", "info", "warn", "error"; default info).
func NewLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	switch level {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}
