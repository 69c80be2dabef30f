package sns_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/dispatcherhq/dispatcher/internal/awstest"
	chsns "github.com/dispatcherhq/dispatcher/internal/channel/sns"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/testrand"
)

// capturingClient is the HTTP client of a real sns.Client: it keeps a
// copy of every request body, then sends the request on.
type capturingClient struct {
	next   aws.HTTPClient
	mu     sync.Mutex
	bodies []string
}

func (c *capturingClient) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("capturingClient: read body: %w", err)
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		c.mu.Lock()
		c.bodies = append(c.bodies, string(b))
		c.mu.Unlock()
	}
	return c.next.Do(r)
}

func (c *capturingClient) captured() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.bodies...)
}

// TestEmulator publishes through a real SNS client against the emulator at
// AWS_ENDPOINT_URL (skipped loudly without one). Numbers and texts are
// unique to the run, so the shared emulator is never reset.
func TestEmulator(t *testing.T) {
	t.Parallel()

	// number returns a valid mobile number no other test of the run uses,
	// from the run's logged seed (moto delivers nothing; each test finds
	// its own publish by its unique text).
	number := func(t *testing.T) string { return testrand.New(t).PhoneNumber("GB") }

	t.Run("PublishRecorded", func(t *testing.T) {
		t.Parallel()
		client := sns.NewFromConfig(awstest.Config(t))
		sender := chsns.New(client, chsns.Options{})
		to := number(t)
		body := "Your demo is tomorrow at 10:00 " + awstest.Unique(t, "sms")

		id, err := sender.SendSMS(context.Background(), dispatch.SMS{
			CommunicationID: "5f0e9c1a-2b3c-4d5e-8f90-a1b2c3d4e5f6",
			From:            "+61412345678",
			To:              to,
			Body:            body,
		})
		if err != nil {
			t.Fatalf("SendSMS: %v", err)
		}
		if id == "" {
			t.Fatal("SendSMS returned an empty message id")
		}

		// moto keeps every SMS published to a phone number as an sns.SMS
		// model: message_id, phone_number, message. Message attributes are
		// not kept (see PublishOnTheWire).
		var found map[string]any
		for _, m := range awstest.MotoData(t)["sns"]["SMS"] {
			if m["message"] == body {
				found = m
			}
		}
		if found == nil {
			t.Fatalf("no sns.SMS with message %q in moto's data.json", body)
		}
		if found["message_id"] != id || found["phone_number"] != to {
			t.Errorf("recorded %v, want message_id %s and phone_number %s", found, id, to)
		}
	})

	t.Run("PublishOnTheWire", func(t *testing.T) {
		t.Parallel()
		cfg := awstest.Config(t)
		capture := &capturingClient{next: cfg.HTTPClient}
		cfg.HTTPClient = capture
		sender := chsns.New(sns.NewFromConfig(cfg), chsns.Options{SenderID: "ACME"})
		to := number(t)
		body := "On the wire " + awstest.Unique(t, "sms")

		if _, err := sender.SendSMS(context.Background(), dispatch.SMS{From: "+61412345678", To: to, Body: body}); err != nil {
			t.Fatalf("SendSMS: %v", err)
		}
		bodies := capture.captured()
		if len(bodies) != 1 {
			t.Fatalf("%d requests captured, want 1: %q", len(bodies), bodies)
		}
		// SNS speaks the AWS query protocol: a form-encoded POST, message
		// attributes as MessageAttributes.entry.N.{Name,Value.DataType,
		// Value.StringValue}, N from 1 in no particular order.
		form, err := url.ParseQuery(bodies[0])
		if err != nil {
			t.Fatalf("request body is not form-encoded: %v\n%s", err, bodies[0])
		}
		t.Logf("Publish request body: %s", bodies[0])
		for k, want := range map[string]string{"Action": "Publish", "Version": "2010-03-31", "PhoneNumber": to, "Message": body} {
			if got := form.Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		got := map[string]string{}
		for n := 1; ; n++ {
			p := fmt.Sprintf("MessageAttributes.entry.%d.", n)
			name := form.Get(p + "Name")
			if name == "" {
				break
			}
			got[name] = form.Get(p+"Value.DataType") + ":" + form.Get(p+"Value.StringValue")
		}
		want := map[string]string{
			"AWS.MM.SMS.OriginationNumber": "String:+61412345678",
			"AWS.SNS.SMS.SMSType":          "String:Transactional",
			"AWS.SNS.SMS.SenderID":         "String:ACME",
		}
		if !equalMaps(got, want) {
			t.Errorf("message attributes on the wire = %v, want exactly %v", got, want)
		}
		for k := range form {
			if strings.HasPrefix(k, "MessageAttributes.") && !strings.HasPrefix(k, "MessageAttributes.entry.") {
				t.Errorf("unexpected form key %s", k)
			}
		}
	})

	t.Run("EmulatorRejectionClassified", func(t *testing.T) {
		t.Parallel()
		// The sender refuses a malformed number before calling SNS, so the
		// SDK client is called directly: this checks that the query
		// protocol's InvalidParameter error decodes into the typed
		// *types.InvalidParameterException that Classify reads.
		client := sns.NewFromConfig(awstest.Config(t))
		_, err := client.Publish(context.Background(), &sns.PublishInput{
			PhoneNumber: aws.String("+0 not a number"),
			Message:     aws.String("x"),
		})
		if err == nil {
			t.Fatal("Publish to a malformed number succeeded")
		}
		var invalid *types.InvalidParameterException
		if !errors.As(err, &invalid) {
			t.Errorf("Publish error %T (%v) is not a *types.InvalidParameterException", err, err)
		}
		if se := chsns.Classify(fmt.Errorf("sns.Publish: %w", err)); se.Code != "invalid_address" || se.Transient {
			t.Errorf("Classify(%v) = %v, want permanent invalid_address", err, se)
		}
	})
}
