package devsink_test

import (
	"context"
	"fmt"
	"os"
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

// TestOutboxSurvivesTornAndDisorderedLines: a line cut by a power loss at
// the end is dropped when the outbox is opened (the next line is not glued
// to it); a line cut at the start (a partial copy) is skipped by the tail
// reader; one old line among new ones (a clock step) does not hide the new
// ones before it.
func TestOutboxSurvivesTornAndDisorderedLines(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	line := func(attempt int, at time.Time) string {
		return fmt.Sprintf(`{"communication_id":"row","company_id":"co","channel":"email","attempt":%d,"to":"b@example.com","at":%q,"result":"sent","provider_message_id":"m%d"}`+"\n",
			attempt, at.Format(time.RFC3339Nano), attempt)
	}
	t.Run("TornTail", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "outbox.jsonl")
		torn := line(1, t0) + line(2, t0.Add(time.Second)) + `{"communication_id":"row","comp`
		if err := os.WriteFile(path, []byte(torn), 0o600); err != nil {
			t.Fatal(err)
		}
		now := t0.Add(2 * time.Second)
		o, err := devsink.Open(path, func() time.Time { return now })
		if err != nil {
			t.Fatal(err)
		}
		if _, err := o.SendEmail(context.Background(), dispatch.Email{CommunicationID: "row", CompanyID: "co", Attempt: 3,
			From: "a@example.com", To: "b@example.com"}); err != nil {
			t.Fatal(err)
		}
		o.Close()
		lines, err := devsink.ReadOutbox(path)
		if err != nil || len(lines) != 3 || lines[2].Attempt != 3 {
			t.Fatalf("after a torn tail and one more send: %d lines, %v", len(lines), err)
		}
	})
	t.Run("CutHeadAndClockStep", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "outbox.jsonl")
		content := `ion_id":"row","at":"x"}` + "\n" + line(1, t0.Add(50*time.Second)) + line(2, t0.Add(51*time.Second)) +
			line(3, t0.Add(-time.Hour)) + line(4, t0.Add(52*time.Second))
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		lines, err := devsink.ReadOutboxTail(path, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for _, l := range lines {
			got = append(got, l.Attempt)
		}
		if fmt.Sprint(got) != "[1 2 4]" {
			t.Fatalf("tail attempts %v, want [1 2 4]", got)
		}
	})
}
