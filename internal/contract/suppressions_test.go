package contract

import (
	"net/url"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// TestSuppressionCursorIsOpaqueAndURLSafe: a cursor survives being pasted
// into a query string unencoded (a "+" in a number or address must not
// become a space), and only cursors the API made are accepted.
func TestSuppressionCursorIsOpaqueAndURLSafe(t *testing.T) {
	for _, s := range []comms.Suppression{
		{Channel: comms.SuppressSMS, Recipient: "+61412340001"},
		{Channel: comms.SuppressEmail, Recipient: "sarah+news@example.com"},
	} {
		cur := SuppressionCursor(s, comms.SuppressionFilter{})
		q, err := url.ParseQuery("cursor=" + cur) // pasted raw
		if err != nil {
			t.Fatal(err)
		}
		f, err := ParseSuppressionQuery(q)
		if err != nil || f.After != string(s.Channel)+":"+s.Recipient {
			t.Errorf("%s: cursor %q read back as %q, %v", s.Recipient, cur, f.After, err)
		}
	}
	good := SuppressionCursor(comms.Suppression{Channel: comms.SuppressEmail, Recipient: "b@x.com"}, comms.SuppressionFilter{})
	for _, bad := range []string{"email:x@example.com", "ZW1haWw6", "c21zOiA2MTQxMjM0MDAwMQ", "!!!", "ZW1haWw6U0FSQUhAZXhhbXBsZS5jb20",
		"ZW1haWw6YkB4LmNvbQ", good[:15], good[:len(good)-1]} {
		if _, err := ParseSuppressionQuery(url.Values{"cursor": {bad}}); err == nil {
			t.Errorf("cursor %q accepted", bad)
		}
	}
}

func TestSuppressionCursorNamesARecipient(t *testing.T) {
	long := SuppressionCursor(comms.Suppression{Channel: comms.SuppressEmail, Recipient: strings.Repeat("a", 5000) + "@example.com"}, comms.SuppressionFilter{})
	notANumber := SuppressionCursor(comms.Suppression{Channel: comms.SuppressSMS, Recipient: "12"}, comms.SuppressionFilter{})
	for _, c := range []string{long, notANumber} {
		if _, err := ParseSuppressionQuery(url.Values{"cursor": {c}}); err == nil {
			t.Errorf("cursor of no recipient (%d bytes) accepted", len(c))
		}
	}
}

// TestSuppressionCursorIsTiedToItsFilters: a cursor pages the listing it
// came from; with another channel, recipient or include_lifted it is
// refused, naming cursor.
func TestSuppressionCursorIsTiedToItsFilters(t *testing.T) {
	last := comms.Suppression{Channel: comms.SuppressEmail, Recipient: "b@x.com"}
	cur := SuppressionCursor(last, comms.SuppressionFilter{Channel: comms.SuppressEmail})
	if f, err := ParseSuppressionQuery(url.Values{"channel": {"email"}, "cursor": {cur}}); err != nil || f.After != "email:b@x.com" {
		t.Fatalf("the cursor with its own filters: %+v %v", f, err)
	}
	for _, q := range []url.Values{
		{"channel": {"sms"}, "cursor": {cur}},
		{"cursor": {cur}},
		{"channel": {"email"}, "include_lifted": {"true"}, "cursor": {cur}},
		{"channel": {"email"}, "recipient": {"b@x.com"}, "cursor": {cur}},
	} {
		_, err := ParseSuppressionQuery(q)
		if err == nil || !strings.Contains(err.Error(), "cursor") {
			t.Errorf("%v: %v, want a validation error naming cursor", q, err)
		}
	}
}
