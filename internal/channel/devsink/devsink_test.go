package devsink_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/channel/devsink"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
)

var fixedNow = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

func open(t *testing.T) (*devsink.Outbox, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "outbox.jsonl")
	o, err := devsink.Open(path, func() time.Time { return fixedNow })
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = o.Close() })
	return o, path
}

func readOne(t *testing.T, path string) devsink.Line {
	t.Helper()
	lines, err := devsink.ReadOutbox(path)
	if err != nil {
		t.Fatalf("ReadOutbox: %v", err)
	}
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want 1: %+v", len(lines), lines)
	}
	return lines[0]
}

// checkResult asserts the returned id/error against the wanted outcome.
func checkResult(t *testing.T, id string, err error, idPrefix, wantResult, wantCode string) {
	t.Helper()
	switch wantResult {
	case devsink.ResultSent:
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		if !strings.HasPrefix(id, idPrefix) || len(id) != len(idPrefix)+36 {
			t.Fatalf("id = %q, want %s<uuid>", id, idPrefix)
		}
	default:
		if id != "" {
			t.Errorf("id = %q on failure, want empty", id)
		}
		var se *comms.SendError
		if !errors.As(err, &se) {
			t.Fatalf("err = %v (%T), want *comms.SendError", err, err)
		}
		if se.Code != wantCode {
			t.Errorf("code = %q, want %q", se.Code, wantCode)
		}
		if want := wantResult == devsink.ResultTransientFailure; se.Transient != want {
			t.Errorf("Transient = %v, want %v", se.Transient, want)
		}
	}
}

func checkLine(t *testing.T, l devsink.Line, id, channel, to, result, code string) {
	t.Helper()
	if l.Channel != channel || l.To != to || l.Result != result || l.ErrorCode != code {
		t.Errorf("line = %+v, want channel=%s to=%s result=%s code=%q", l, channel, to, result, code)
	}
	if l.ProviderMessageID != id {
		t.Errorf("provider_message_id = %q, want %q", l.ProviderMessageID, id)
	}
	if !l.At.Equal(fixedNow) {
		t.Errorf("at = %v, want %v", l.At, fixedNow)
	}
}

func TestEmailRules(t *testing.T) {
	t.Parallel()
	cases := []struct {
		to, result, code string
	}{
		{"success@simulator.amazonses.com", devsink.ResultSent, ""},
		{"SUCCESS@Simulator.AmazonSES.com", devsink.ResultSent, ""},
		// As in SES, the send succeeds; the bounce or complaint is reported after it (EmailReports).
		{"bounce@simulator.amazonses.com", devsink.ResultSent, ""},
		{"bounce+label1@simulator.amazonses.com", devsink.ResultSent, ""},
		{"complaint@simulator.amazonses.com", devsink.ResultSent, ""},
		{"suppressionlist@simulator.amazonses.com", devsink.ResultSent, ""},
		{"sarah+transient@example.com", devsink.ResultTransientFailure, "throttled"},
		{"Sarah+Transient@Example.com", devsink.ResultTransientFailure, "throttled"},
		{"sarah+transientx@example.com", devsink.ResultSent, ""},
		{"sarah@example.com", devsink.ResultSent, ""},
		{"bounce@example.com", devsink.ResultSent, ""},
		{"transient@example.com", devsink.ResultSent, ""},
		// What SES refuses, the dev sink refuses too (package mailaddr).
		{"user@bücher.de", devsink.ResultSent, ""},
		{"dån@example.com", devsink.ResultPermanentFailure, "invalid_address"},
		{"sarah@exa_mple.com", devsink.ResultPermanentFailure, "invalid_address"},
	}
	for _, tc := range cases {
		t.Run(tc.to, func(t *testing.T) {
			t.Parallel()
			o, path := open(t)
			id, err := o.SendEmail(context.Background(), dispatch.Email{
				CommunicationID: "comm_1",
				CompanyID:       "co_1",
				Attempt:         3,
				From:            "noreply@acme.test",
				To:              tc.to,
				Subject:         "Your appointment",
				HTMLBody:        "<p>hi</p>",
			})
			checkResult(t, id, err, "devmail_", tc.result, tc.code)
			l := readOne(t, path)
			checkLine(t, l, id, devsink.ChannelEmail, tc.to, tc.result, tc.code)
			if l.CommunicationID != "comm_1" || l.Attempt != 3 || l.Subject != "Your appointment" ||
				l.From != "noreply@acme.test" || l.Body != "" {
				t.Errorf("line = %+v", l)
			}
		})
	}
}

func TestEmailOnlyToDecides(t *testing.T) {
	t.Parallel()
	o, path := open(t)
	id, err := o.SendEmail(context.Background(), dispatch.Email{
		CommunicationID: "comm_cc",
		Attempt:         1,
		To:              "sarah@example.com",
		CC:              []string{"bounce@simulator.amazonses.com", "x+transient@example.com"},
	})
	checkResult(t, id, err, "devmail_", devsink.ResultSent, "")
	checkLine(t, readOne(t, path), id, devsink.ChannelEmail, "sarah@example.com", devsink.ResultSent, "")
}

func TestEmailTransientEveryAttempt(t *testing.T) {
	t.Parallel()
	o, path := open(t)
	for attempt := 1; attempt <= 5; attempt++ {
		_, err := o.SendEmail(context.Background(), dispatch.Email{
			CommunicationID: "comm_t", Attempt: attempt, To: "sarah+transient@example.com",
		})
		checkResult(t, "", err, "", devsink.ResultTransientFailure, "throttled")
	}
	lines, err := devsink.ReadOutbox(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 5 {
		t.Fatalf("got %d lines, want 5", len(lines))
	}
	for i, l := range lines {
		if l.Attempt != i+1 || l.Result != devsink.ResultTransientFailure || l.ErrorCode != "throttled" {
			t.Errorf("line %d = %+v", i, l)
		}
	}
}

func TestSMSRules(t *testing.T) {
	t.Parallel()
	cases := []struct {
		to, result, code string
	}{
		{"+15555550100", devsink.ResultSent, ""},
		{"+447700900000", devsink.ResultSent, ""},
		{"+61412349999", devsink.ResultTransientFailure, "throttled"},
		{"+15555599990", devsink.ResultSent, ""},
	}
	for _, tc := range cases {
		t.Run(tc.to, func(t *testing.T) {
			t.Parallel()
			o, path := open(t)
			id, err := o.SendSMS(context.Background(), dispatch.SMS{
				CommunicationID: "comm_2",
				Attempt:         2,
				From:            "+15555550001",
				To:              tc.to,
				Body:            "Reminder: tomorrow 9am",
			})
			checkResult(t, id, err, "devsms_", tc.result, tc.code)
			l := readOne(t, path)
			checkLine(t, l, id, devsink.ChannelSMS, tc.to, tc.result, tc.code)
			if l.CommunicationID != "comm_2" || l.Attempt != 2 || l.Body != "Reminder: tomorrow 9am" ||
				l.From != "+15555550001" || l.Subject != "" {
				t.Errorf("line = %+v", l)
			}
		})
	}
}

func TestVoiceRules(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		metadata map[string]any
		result   string
		code     string
	}{
		{"no metadata", nil, devsink.ResultSent, ""},
		{"conversation", map[string]any{"simulate": "conversation"}, devsink.ResultSent, ""},
		{"fail", map[string]any{"simulate": "fail", "x": 1}, devsink.ResultTransientFailure, "provider_unavailable"},
		{"non-string", map[string]any{"simulate": true}, devsink.ResultSent, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o, path := open(t)
			id, err := o.PlaceCall(context.Background(), dispatch.Call{
				CommunicationID: "comm_3",
				Attempt:         1,
				Provider:        "retell",
				AgentID:         "agent_1",
				From:            "+15555550001",
				To:              "+15555550123",
				Metadata:        tc.metadata,
			})
			checkResult(t, id, err, "devcall_", tc.result, tc.code)
			l := readOne(t, path)
			checkLine(t, l, id, devsink.ChannelVoice, "+15555550123", tc.result, tc.code)
			if l.CommunicationID != "comm_3" || l.Attempt != 1 || l.From != "+15555550001" {
				t.Errorf("line = %+v", l)
			}
		})
	}
}

func TestCancelledContextWritesNothing(t *testing.T) {
	t.Parallel()
	o, path := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := o.SendEmail(ctx, dispatch.Email{To: "a@example.com"}); !errors.Is(err, context.Canceled) {
		t.Errorf("SendEmail err = %v", err)
	}
	if _, err := o.SendSMS(ctx, dispatch.SMS{To: "+15555550100"}); !errors.Is(err, context.Canceled) {
		t.Errorf("SendSMS err = %v", err)
	}
	if _, err := o.PlaceCall(ctx, dispatch.Call{To: "+15555550100"}); !errors.Is(err, context.Canceled) {
		t.Errorf("PlaceCall err = %v", err)
	}
	lines, err := devsink.ReadOutbox(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 0 {
		t.Fatalf("got %d lines, want 0", len(lines))
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
		t.Fatalf("outbox size = %v, %v; want empty", fi, err)
	}
}

func TestConcurrentSendsNeverInterleave(t *testing.T) {
	t.Parallel()
	o, path := open(t)
	const goroutines, sends = 64, 50
	// A long body makes a torn or interleaved write visible.
	body := strings.Repeat("x", 2000)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range sends {
				ctx := context.Background()
				id := fmt.Sprintf("comm_%d_%d", g, i)
				var err error
				switch i % 3 {
				case 0:
					_, err = o.SendEmail(ctx, dispatch.Email{CommunicationID: id, Attempt: 1, To: "a@example.com", Subject: body})
				case 1:
					_, err = o.SendSMS(ctx, dispatch.SMS{CommunicationID: id, Attempt: 1, To: "+15555550100", Body: body})
				default:
					_, err = o.PlaceCall(ctx, dispatch.Call{CommunicationID: id, Attempt: 1, To: "+15555550100"})
				}
				if err != nil {
					t.Errorf("send %s: %v", id, err)
				}
			}
		})
	}
	wg.Wait()

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.TrimSuffix(string(raw), "\n")
	rawLines := strings.Split(text, "\n")
	if len(rawLines) != goroutines*sends {
		t.Fatalf("got %d raw lines, want %d", len(rawLines), goroutines*sends)
	}
	seen := make(map[string]bool, len(rawLines))
	for n, rl := range rawLines {
		var l devsink.Line
		dec := json.NewDecoder(strings.NewReader(rl))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil || dec.More() {
			t.Fatalf("line %d malformed (%v): %.120q", n+1, err, rl)
		}
		if l.Result != devsink.ResultSent || l.ProviderMessageID == "" {
			t.Fatalf("line %d = %+v", n+1, l)
		}
		if seen[l.CommunicationID] {
			t.Fatalf("duplicate line for %s", l.CommunicationID)
		}
		seen[l.CommunicationID] = true
	}
	lines, err := devsink.ReadOutbox(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != goroutines*sends {
		t.Fatalf("ReadOutbox: %d lines, want %d", len(lines), goroutines*sends)
	}
}

func TestOpenCreatesDirAndAppendsAcrossReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nested", ".data", "outbox.jsonl")
	send := func(comm string) {
		t.Helper()
		o, err := devsink.Open(path, nil) // nil now → time.Now
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if _, err := o.SendSMS(context.Background(), dispatch.SMS{CommunicationID: comm, Attempt: 1, To: "+15555550100"}); err != nil {
			t.Fatalf("SendSMS: %v", err)
		}
		if err := o.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	before := time.Now()
	send("first")
	send("second")

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("outbox mode = %o, want 600", perm)
	}
	lines, err := devsink.ReadOutbox(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || lines[0].CommunicationID != "first" || lines[1].CommunicationID != "second" {
		t.Fatalf("lines = %+v", lines)
	}
	for _, l := range lines {
		if l.At.Before(before.Add(-time.Second)) || l.At.After(time.Now().Add(time.Second)) {
			t.Errorf("at = %v, want about now", l.At)
		}
	}
}

func TestSendAfterClose(t *testing.T) {
	t.Parallel()
	o, path := open(t)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_, err := o.SendEmail(context.Background(), dispatch.Email{To: "a@example.com"})
	if !errors.Is(err, os.ErrClosed) {
		t.Errorf("err = %v, want os.ErrClosed", err)
	}
	if lines, err := devsink.ReadOutbox(path); err != nil || len(lines) != 0 {
		t.Errorf("lines = %v, %v", lines, err)
	}
}

func TestReadOutboxRejectsMalformed(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "outbox.jsonl")
	content := `{"communication_id":"a","channel":"sms","attempt":1,"to":"+1","at":"2026-01-01T00:00:00Z","result":"sent"}` + "\n\n{\"communication_id\":\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := devsink.ReadOutbox(path)
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("err = %v, want error naming line 3", err)
	}
	if _, err := devsink.ReadOutbox(filepath.Join(t.TempDir(), "missing.jsonl")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file err = %v", err)
	}
}

// TestAFailedWriteIsOursNotTheProviders: when the outbox cannot be written
// (a full disk), every channel's send fails with dispatch.ErrNotSent — not a
// *comms.SendError, which would count as the provider failing — and leaves
// no line; once writes work again, sends are recorded as before.
func TestAFailedWriteIsOursNotTheProviders(t *testing.T) {
	o, path := open(t)
	ctx := context.Background()
	o.FailWrites(errors.New("no space left on device"))
	sends := map[string]func() (string, error){
		"email": func() (string, error) {
			return o.SendEmail(ctx, dispatch.Email{CommunicationID: "c1", Attempt: 1, To: "sarah@example.com", From: "a@example.com"})
		},
		"sms": func() (string, error) {
			return o.SendSMS(ctx, dispatch.SMS{CommunicationID: "c2", Attempt: 1, To: "+61412345678"})
		},
		"voice": func() (string, error) {
			return o.PlaceCall(ctx, dispatch.Call{CommunicationID: "c3", Attempt: 1, To: "+61412345678"})
		},
	}
	for name, send := range sends {
		_, err := send()
		var se *comms.SendError
		if !errors.Is(err, dispatch.ErrNotSent) || errors.As(err, &se) {
			t.Errorf("%s on a full disk: %v; want ErrNotSent and no SendError", name, err)
		}
	}
	if lines, err := devsink.ReadOutbox(path); err != nil || len(lines) != 0 {
		t.Fatalf("lines after failed writes: %+v, %v", lines, err)
	}
	o.FailWrites(nil)
	if _, err := sends["email"](); err != nil {
		t.Fatal(err)
	}
	if l := readOne(t, path); l.CommunicationID != "c1" || l.Result != devsink.ResultSent {
		t.Fatalf("line %+v", l)
	}
}
