package ses_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	"github.com/dispatcherhq/dispatcher/internal/channel/ses"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
)

// fakeAPI is a hand-written ses.API: it records every input and answers
// with id or err.
type fakeAPI struct {
	mu     sync.Mutex
	inputs []*sesv2.SendEmailInput
	id     string
	err    error
}

func (f *fakeAPI) SendEmail(_ context.Context, in *sesv2.SendEmailInput, _ ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inputs = append(f.inputs, in)
	if f.err != nil {
		return nil, f.err
	}
	return &sesv2.SendEmailOutput{MessageId: aws.String(f.id)}, nil
}

func (f *fakeAPI) calls() []*sesv2.SendEmailInput {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*sesv2.SendEmailInput(nil), f.inputs...)
}

func email() dispatch.Email {
	return dispatch.Email{
		CommunicationID: "0b7c3a5e-8f7a-4d0e-9a51-3f8f2b1c4d11",
		CompanyID:       "acme",
		Attempt:         2,
		From:            "team@example.com",
		FromName:        "Example Team",
		To:              "sarah@example.com",
		ToName:          "Sarah O'Brien",
		CC:              []string{"boss@example.com", "ops@example.org"},
		Subject:         "Your demo, Thursday — 10:00",
		HTMLBody:        `<h1>Hi Sarah</h1><p>See <a href="https://example.com/demo?a=1&amp;b=2">the agenda</a>.</p>`,
	}
}

func TestSendEmail(t *testing.T) {
	t.Parallel()

	type bundle struct {
		api    *fakeAPI
		sender *ses.Sender
	}
	setup := func(t *testing.T, opts ses.Options) bundle {
		t.Helper()
		api := &fakeAPI{id: "0100018f-msg"}
		return bundle{api: api, sender: ses.New(api, opts)}
	}

	t.Run("Input", func(t *testing.T) {
		t.Parallel()
		b := setup(t, ses.Options{ConfigurationSet: "dispatcher-events"})

		id, err := b.sender.SendEmail(context.Background(), email())
		if err != nil {
			t.Fatalf("SendEmail: %v", err)
		}
		if id != "0100018f-msg" {
			t.Errorf("id = %q, want the SES MessageId", id)
		}
		calls := b.api.calls()
		if len(calls) != 1 {
			t.Fatalf("%d SendEmail calls, want 1", len(calls))
		}
		in := calls[0]
		if got, want := aws.ToString(in.FromEmailAddress), `"Example Team" <team@example.com>`; got != want {
			t.Errorf("FromEmailAddress = %s, want %s", got, want)
		}
		if got, want := in.Destination.ToAddresses, []string{`"Sarah O'Brien" <sarah@example.com>`}; !equal(got, want) {
			t.Errorf("ToAddresses = %q, want %q", got, want)
		}
		if got, want := in.Destination.CcAddresses, []string{"boss@example.com", "ops@example.org"}; !equal(got, want) {
			t.Errorf("CcAddresses = %q, want %q", got, want)
		}
		if in.Destination.BccAddresses != nil {
			t.Errorf("BccAddresses = %q, want none", in.Destination.BccAddresses)
		}
		if got := aws.ToString(in.ConfigurationSetName); got != "dispatcher-events" {
			t.Errorf("ConfigurationSetName = %q", got)
		}
		if in.Content.Raw != nil || in.Content.Template != nil || in.Content.Simple == nil {
			t.Fatalf("Content = %+v, want Simple only", in.Content)
		}
		msg := in.Content.Simple
		checkContent(t, "Subject", msg.Subject, "Your demo, Thursday — 10:00")
		checkContent(t, "Html", msg.Body.Html, email().HTMLBody)
		checkContent(t, "Text", msg.Body.Text, "Hi Sarah\n\nSee the agenda (https://example.com/demo?a=1&b=2).")

		headers := map[string]string{}
		for _, h := range msg.Headers {
			headers[aws.ToString(h.Name)] = aws.ToString(h.Value)
		}
		want := map[string]string{
			"X-Dispatcher-Communication-Id": "0b7c3a5e-8f7a-4d0e-9a51-3f8f2b1c4d11",
			"X-Dispatcher-Attempt":          "2",
		}
		if !equalMaps(headers, want) {
			t.Errorf("Headers = %v, want %v", headers, want)
		}
		tags := map[string]string{}
		for _, tg := range in.EmailTags {
			tags[aws.ToString(tg.Name)] = aws.ToString(tg.Value)
		}
		want = map[string]string{"communication_id": "0b7c3a5e-8f7a-4d0e-9a51-3f8f2b1c4d11", "company_id": "acme", "attempt": "2"}
		if !equalMaps(tags, want) {
			t.Errorf("EmailTags = %v, want %v", tags, want)
		}
	})

	t.Run("NoConfigurationSet", func(t *testing.T) {
		t.Parallel()
		b := setup(t, ses.Options{})
		if _, err := b.sender.SendEmail(context.Background(), email()); err != nil {
			t.Fatalf("SendEmail: %v", err)
		}
		if in := b.api.calls()[0]; in.ConfigurationSetName != nil {
			t.Errorf("ConfigurationSetName = %q, want nil", *in.ConfigurationSetName)
		}
	})

	t.Run("AddressEncoding", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name, addr, display, want string
		}{
			{"NoName", "sarah@example.com", "", "sarah@example.com"},
			{"Plain", "sarah@example.com", "Sarah Jones", `"Sarah Jones" <sarah@example.com>`},
			{"Comma", "jane@example.com", "Doe, Jane", `"Doe, Jane" <jane@example.com>`},
			{"Quote", "jane@example.com", `Jane "JJ" Doe`, `"Jane \"JJ\" Doe" <jane@example.com>`},
			{"NonASCII", "zoe@example.com", "Zoë Müller", "=?utf-8?q?Zo=C3=AB_M=C3=BCller?= <zoe@example.com>"},
			{"NonASCIISpecials", "zoe@example.com", "Müller, Zoë", "=?utf-8?b?TcO8bGxlciwgWm/Dqw==?= <zoe@example.com>"},
			{"IDNDomain", "info@bücher.example", "", "info@xn--bcher-kva.example"},
			{"NameInAddress", "Sarah <sarah@example.com>", "", `"Sarah" <sarah@example.com>`},
			{"NameOverridesAddressName", "Sarah <sarah@example.com>", "Sarah Jones", `"Sarah Jones" <sarah@example.com>`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, ses.Options{})
				m := email()
				m.To, m.ToName = tc.addr, tc.display
				if _, err := b.sender.SendEmail(context.Background(), m); err != nil {
					t.Fatalf("SendEmail: %v", err)
				}
				if got := b.api.calls()[0].Destination.ToAddresses; !equal(got, []string{tc.want}) {
					t.Errorf("ToAddresses = %q, want [%q]", got, tc.want)
				}
			})
		}
	})

	t.Run("InvalidAddress", func(t *testing.T) {
		t.Parallel()
		for name, mutate := range map[string]func(*dispatch.Email){
			"To":        func(m *dispatch.Email) { m.To = "not an address" },
			"EmptyTo":   func(m *dispatch.Email) { m.To = "" },
			"From":      func(m *dispatch.Email) { m.From = "team@" },
			"EmptyFrom": func(m *dispatch.Email) { m.From = "" },
			"CC":        func(m *dispatch.Email) { m.CC = []string{"ok@example.com", "bad@@example.com"} },
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, ses.Options{})
				m := email()
				mutate(&m)
				_, err := b.sender.SendEmail(context.Background(), m)
				var se *comms.SendError
				if !errors.As(err, &se) || se.Transient || se.Code != "invalid_address" {
					t.Fatalf("err = %v, want a permanent invalid_address SendError", err)
				}
				if n := len(b.api.calls()); n != 0 {
					t.Errorf("SES was called %d times for an invalid address", n)
				}
			})
		}
	})

	t.Run("OptionalParts", func(t *testing.T) {
		t.Parallel()
		b := setup(t, ses.Options{})
		m := email()
		m.CommunicationID, m.CompanyID, m.Attempt, m.CC = "", "", 0, nil
		m.HTMLBody = "<img src=x>"
		if _, err := b.sender.SendEmail(context.Background(), m); err != nil {
			t.Fatalf("SendEmail: %v", err)
		}
		in := b.api.calls()[0]
		if in.Content.Simple.Body.Text != nil {
			t.Errorf("Text = %q, want no text part for a body without text", aws.ToString(in.Content.Simple.Body.Text.Data))
		}
		if in.Content.Simple.Headers != nil || in.EmailTags != nil || in.Destination.CcAddresses != nil {
			t.Errorf("headers %v, tags %v, cc %v: want none", in.Content.Simple.Headers, in.EmailTags, in.Destination.CcAddresses)
		}
	})

	t.Run("TagValueSanitised", func(t *testing.T) {
		t.Parallel()
		b := setup(t, ses.Options{})
		m := email()
		m.CompanyID = "acme corp/eu:1"
		m.CommunicationID = strings.Repeat("a", 300)
		if _, err := b.sender.SendEmail(context.Background(), m); err != nil {
			t.Fatalf("SendEmail: %v", err)
		}
		tags := map[string]string{}
		for _, tg := range b.api.calls()[0].EmailTags {
			tags[aws.ToString(tg.Name)] = aws.ToString(tg.Value)
		}
		if tags["company_id"] != "acme_corp_eu_1" || tags["communication_id"] != strings.Repeat("a", 256) {
			t.Errorf("tags = %v", tags)
		}
	})

	t.Run("ErrorClassified", func(t *testing.T) {
		t.Parallel()
		b := setup(t, ses.Options{})
		b.api.err = &types.MessageRejected{Message: aws.String("Email address is not verified.")}
		_, err := b.sender.SendEmail(context.Background(), email())
		var se *comms.SendError
		if !errors.As(err, &se) || se.Transient || se.Code != "message_rejected" {
			t.Fatalf("err = %v, want permanent message_rejected", err)
		}
		if !strings.Contains(se.Message, "sesv2.SendEmail: ") || !strings.Contains(se.Message, "not verified") {
			t.Errorf("message = %q, want the callee and SES's words", se.Message)
		}
	})
}

func checkContent(t *testing.T, what string, c *types.Content, want string) {
	t.Helper()
	if c == nil {
		t.Errorf("%s: missing", what)
		return
	}
	if got := aws.ToString(c.Data); got != want {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
	if got := aws.ToString(c.Charset); got != "UTF-8" {
		t.Errorf("%s charset = %q, want UTF-8", what, got)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
