package ses_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"

	"github.com/dispatcherhq/dispatcher/internal/awstest"
	"github.com/dispatcherhq/dispatcher/internal/channel/ses"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
)

// TestEmulator sends through a real SES v2 client against the emulator at
// AWS_ENDPOINT_URL (skipped loudly without one). Every address and subject
// is unique to the run, so the shared emulator is never reset.
func TestEmulator(t *testing.T) {
	t.Parallel()

	type bundle struct {
		client *sesv2.Client
		sender *ses.Sender
	}
	setup := func(t *testing.T) bundle {
		t.Helper()
		client := sesv2.NewFromConfig(awstest.Config(t))
		return bundle{client: client, sender: ses.New(client, ses.Options{})}
	}
	// verified creates an email identity (moto verifies it at once, as
	// AWS does after the owner clicks the link) and deletes it afterwards.
	verified := func(t *testing.T, client *sesv2.Client, addr string) {
		t.Helper()
		ctx := context.Background()
		if _, err := client.CreateEmailIdentity(ctx, &sesv2.CreateEmailIdentityInput{EmailIdentity: aws.String(addr)}); err != nil {
			t.Fatalf("sesv2.CreateEmailIdentity: %v", err)
		}
		t.Cleanup(func() {
			_, _ = client.DeleteEmailIdentity(context.Background(), &sesv2.DeleteEmailIdentityInput{EmailIdentity: aws.String(addr)})
		})
	}
	addr := func(t *testing.T, prefix string) string {
		return strings.ToLower(awstest.Unique(t, prefix)) + "@dispatcher.test"
	}

	t.Run("SendRecorded", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		from, to, cc := addr(t, "from"), addr(t, "to"), addr(t, "cc")
		verified(t, b.client, from)
		subject := "Demo reminder " + awstest.Unique(t, "subj")
		html := `<p>Hi Sarah,</p><p>Join <a href="https://meet.example.com/x">here</a>.</p>`

		id, err := b.sender.SendEmail(context.Background(), dispatch.Email{
			CommunicationID: "0b7c3a5e-8f7a-4d0e-9a51-3f8f2b1c4d11",
			CompanyID:       "acme",
			Attempt:         1,
			From:            from,
			FromName:        "Example Team",
			To:              to,
			ToName:          "Sarah O'Brien",
			CC:              []string{cc},
			Subject:         subject,
			HTMLBody:        html,
		})
		if err != nil {
			t.Fatalf("SendEmail: %v", err)
		}
		if id == "" {
			t.Fatal("SendEmail returned an empty message id")
		}

		// moto keeps every sent message as a ses.Message model: id,
		// source, subject, body (the HTML part when there is one) and
		// destinations (the Destination object as sent).
		var found map[string]any
		for _, m := range awstest.MotoData(t)["ses"]["Message"] {
			if m["subject"] == subject {
				found = m
			}
		}
		if found == nil {
			t.Fatalf("no ses.Message with subject %q in moto's data.json", subject)
		}
		if found["id"] != id {
			t.Errorf("recorded id = %v, SendEmail returned %q", found["id"], id)
		}
		if want := `"Example Team" <` + from + `>`; found["source"] != want {
			t.Errorf("recorded source = %v, want %s", found["source"], want)
		}
		if found["body"] != html {
			t.Errorf("recorded body = %v, want the HTML part", found["body"])
		}
		dest, _ := found["destinations"].(map[string]any)
		if got := strs(dest["ToAddresses"]); len(got) != 1 || got[0] != `"Sarah O'Brien" <`+to+`>` {
			t.Errorf("recorded ToAddresses = %v", dest["ToAddresses"])
		}
		if got := strs(dest["CcAddresses"]); len(got) != 1 || got[0] != cc {
			t.Errorf("recorded CcAddresses = %v", dest["CcAddresses"])
		}
	})

	t.Run("UnverifiedSenderRejected", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		subject := "Never sent " + awstest.Unique(t, "subj")
		_, err := b.sender.SendEmail(context.Background(), dispatch.Email{
			From:     addr(t, "unverified"),
			To:       addr(t, "to"),
			Subject:  subject,
			HTMLBody: "<p>x</p>",
		})
		// Only a typed *types.MessageRejected from the SDK classifies as
		// message_rejected: this also checks the SDK decodes moto's error.
		var se *comms.SendError
		if !errors.As(err, &se) || se.Transient || se.Code != "message_rejected" {
			t.Fatalf("err = %v, want a permanent message_rejected SendError", err)
		}
		for _, m := range awstest.MotoData(t)["ses"]["Message"] {
			if m["subject"] == subject {
				t.Errorf("a rejected message was recorded: %v", m)
			}
		}
	})
}

func strs(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
