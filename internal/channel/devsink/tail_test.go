package devsink_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/channel/devsink"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
)

// TestReadOutboxTail: the lines within the window of the last one, oldest
// first, read backwards across chunk boundaries (lines of ~3 KiB, so the
// tail spans many 256 KiB chunks and lines are cut between them).
func TestReadOutboxTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.jsonl")
	if lines, err := devsink.ReadOutboxTail(path, time.Minute); err != nil || lines != nil {
		t.Fatalf("missing outbox: %v, %v", lines, err)
	}
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	o, err := devsink.Open(path, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	subject := strings.Repeat("s", 3000)
	const total = 1000
	for i := range total {
		now = t0.Add(time.Duration(i) * time.Second)
		if _, err := o.SendEmail(context.Background(), dispatch.Email{CommunicationID: "row", CompanyID: "co", Attempt: i + 1,
			From: "a@example.com", To: "b@example.com", CC: []string{"c@example.com"}, Subject: subject}); err != nil {
			t.Fatal(err)
		}
	}
	o.Close()
	for _, tc := range []struct {
		window time.Duration
		want   int
	}{{0, 1}, {time.Minute, 61}, {500 * time.Second, 501}, {time.Hour, total}} {
		lines, err := devsink.ReadOutboxTail(path, tc.window)
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) != tc.want {
			t.Fatalf("window %v: %d lines, want %d", tc.window, len(lines), tc.want)
		}
		for i, l := range lines {
			if want := total - tc.want + i + 1; l.Attempt != want || l.Subject != subject || l.CompanyID != "co" || len(l.CC) != 1 {
				t.Fatalf("window %v, line %d: attempt %d (want %d), company %q, cc %v", tc.window, i, l.Attempt, want, l.CompanyID, l.CC)
			}
		}
	}
}
