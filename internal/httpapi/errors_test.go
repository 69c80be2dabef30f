package httpapi

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// TestClassifyHidesGoInternals: whatever an upstream layer wraps, a Go
// library's error text never reaches the client through classify, the one
// place errors become responses.
func TestClassifyHidesGoInternals(t *testing.T) {
	t.Parallel()
	var v struct{ N int }
	unmarshalErr := json.Unmarshal([]byte(`{"N":1e400}`), &v)
	_, parseErr := strconv.ParseFloat("1e400", 64)
	_, timeErr := time.Parse(time.DateOnly, "2026-13-01")
	for _, err := range []error{
		&comms.ValidationError{Fields: []comms.FieldError{{Field: "payload", Message: "cannot be read: " + unmarshalErr.Error()}}},
		&comms.ValidationError{Fields: []comms.FieldError{{Field: "body", Message: "retell payload: " + unmarshalErr.Error()}}},
		&comms.ValidationError{Fields: []comms.FieldError{{Field: "x", Message: parseErr.Error()}}},
		&comms.ValidationError{Fields: []comms.FieldError{{Field: "holidays[0]", Message: timeErr.Error()}}},
		&comms.ValidationError{Fields: []comms.FieldError{{Field: "business_hours", Message: `bizhours: clock "9am": want HH:MM`}}},
		fmt.Errorf("%w: %v", comms.ErrInvalidJSON, unmarshalErr),
		comms.ErrInvalidJSON,
	} {
		status, body := classify(err)
		b, _ := json.Marshal(body)
		for _, bad := range []string{"Go struct", "Go value", "json:", "strconv", "unmarshal", "parsing time", "bizhours", "retell"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%v → %d %s: carries %q", err, status, b, bad)
			}
		}
		if status != 422 && status != 400 {
			t.Errorf("%v → %d", err, status)
		}
	}
	// A message of our own passes unchanged.
	_, body := classify(&comms.ValidationError{Fields: []comms.FieldError{{Field: "payload.subject", Message: "must not contain control characters (U+0000 at character 3)"}}})
	if body.Details[0].Message != "must not contain control characters (U+0000 at character 3)" {
		t.Errorf("own message changed: %q", body.Details[0].Message)
	}
	if _, body := classify(comms.ErrInvalidJSON); body.Message != "The body is not valid JSON." {
		t.Errorf("bare ErrInvalidJSON: %q", body.Message)
	}
}

// TestClassifyProviderErrors: the store's ErrPhoneNumberTaken, however
// wrapped, is a 409 that names neither the resource nor the company
// holding the number; ErrUnavailable is a 503 without the provider's text.
func TestClassifyProviderErrors(t *testing.T) {
	t.Parallel()
	status, body := classify(fmt.Errorf("store.PutPhoneNumber: %w", comms.ErrPhoneNumberTaken))
	if status != 409 || body.Code != "phone_number_taken" || strings.Contains(body.Message, "store") {
		t.Errorf("ErrPhoneNumberTaken → %d %+v", status, body)
	}
	status, body = classify(fmt.Errorf("verifying sending domain example.com: %w: %w", comms.ErrUnavailable, fmt.Errorf("sesv2.GetEmailIdentity: throttled")))
	if status != 503 || body.Code != "provider_unavailable" || strings.Contains(body.Message, "sesv2") || strings.Contains(body.Message, "throttled") {
		t.Errorf("ErrUnavailable → %d %+v", status, body)
	}
}
