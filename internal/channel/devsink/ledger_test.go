package devsink_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dispatcherhq/dispatcher/internal/channel/devsink"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
)

// TestFindAttemptSeesLinesAppendedAfterItsFirstUse: the index FindAttempt
// builds on first use is extended by later sends, by lines another outbox
// appends to the same file, and left alone by a line not complete yet.
func TestFindAttemptSeesLinesAppendedAfterItsFirstUse(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "outbox.jsonl")
	o, err := devsink.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	find := func(id string, attempt int) (string, bool) {
		t.Helper()
		got, found, err := o.FindAttempt(ctx, comms.Communication{ID: id, AttemptCount: attempt})
		if err != nil {
			t.Fatal(err)
		}
		return got, found
	}
	if _, found := find("c1", 1); found {
		t.Fatal("found in an empty outbox")
	}
	id1, err := o.SendEmail(ctx, dispatch.Email{CommunicationID: "c1", Attempt: 1, From: "a@b.example", To: "x@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if got, found := find("c1", 1); !found || got != id1 {
		t.Errorf("after a send: %q %v, want %q", got, found, id1)
	}
	// Another process's outbox on the same file (a restart).
	other, err := devsink.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	id2, err := other.SendSMS(ctx, dispatch.SMS{CommunicationID: "c2", Attempt: 3, To: "+61400000000", Body: "x"})
	if err != nil {
		t.Fatal(err)
	}
	other.Close()
	if got, found := find("c2", 3); !found || got != id2 {
		t.Errorf("another writer's line: %q %v, want %q", got, found, id2)
	}
	// A line being written (no newline yet) is read once it is complete.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	half := `{"communication_id":"c3","channel":"email","attempt":1,"result":"sent","provider_message_id":"devmail_x"`
	if _, err := f.WriteString(half); err != nil {
		t.Fatal(err)
	}
	if _, found := find("c3", 1); found {
		t.Error("found a line not complete yet")
	}
	if _, err := f.WriteString("}\n"); err != nil {
		t.Fatal(err)
	}
	if got, found := find("c3", 1); !found || got != "devmail_x" {
		t.Errorf("the completed line: %q %v", got, found)
	}
	if got, found := find("c1", 1); !found || got != id1 {
		t.Errorf("an earlier line after extending: %q %v", got, found)
	}
}

// BenchmarkSweepOfUncertainRows: a sweep asking FindAttempt about 500
// uncertain rows of an outbox of 5,000 sent lines.
//
//	go test -run '^$' -bench SweepOfUncertainRows -benchtime 1x ./internal/channel/devsink/
func BenchmarkSweepOfUncertainRows(b *testing.B) {
	ctx := context.Background()
	o, err := devsink.Open(filepath.Join(b.TempDir(), "outbox.jsonl"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	const lines, uncertain = 5000, 500
	for i := range lines {
		if _, err := o.SendEmail(ctx, dispatch.Email{CommunicationID: fmt.Sprintf("row-%05d", i), CompanyID: "co", Attempt: 1,
			From: "a@b.example", To: "x@example.com", Subject: "hello"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		for j := range uncertain {
			// Every tenth row: spread over the file, half of them found.
			if _, _, err := o.FindAttempt(ctx, comms.Communication{ID: fmt.Sprintf("row-%05d", j*10), AttemptCount: 1 + j%2}); err != nil {
				b.Fatal(err)
			}
		}
	}
}
