package emf

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"
)

// TestZeroTimeUsesTheClock: EMF requires a Timestamp; a record without a
// time (slog allows it) is stamped with the handler's clock.
func TestZeroTimeUsesTheClock(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	h := NewHandler(slog.NewJSONHandler(&buf, nil), "")
	h.now = func() time.Time { return now }
	r := slog.NewRecord(time.Time{}, slog.LevelInfo, DeliveryAttempt, 0)
	r.AddAttrs(slog.String("channel", "sms"), slog.String("result", "sent"))
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	var m struct {
		AWS struct{ Timestamp int64 } `json:"_aws"`
	}
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil || m.AWS.Timestamp != now.UnixMilli() {
		t.Errorf("Timestamp %d, %v; want %d", m.AWS.Timestamp, err, now.UnixMilli())
	}
}
