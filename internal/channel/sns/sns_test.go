package sns_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	chsns "github.com/dispatcherhq/dispatcher/internal/channel/sns"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
)

// fakeAPI is a hand-written chsns.API: it records every input and answers
// with id or err.
type fakeAPI struct {
	mu     sync.Mutex
	inputs []*sns.PublishInput
	id     string
	err    error
}

func (f *fakeAPI) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inputs = append(f.inputs, in)
	if f.err != nil {
		return nil, f.err
	}
	return &sns.PublishOutput{MessageId: aws.String(f.id)}, nil
}

func (f *fakeAPI) calls() []*sns.PublishInput {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*sns.PublishInput(nil), f.inputs...)
}

func sms() dispatch.SMS {
	return dispatch.SMS{
		CommunicationID: "5f0e9c1a-2b3c-4d5e-8f90-a1b2c3d4e5f6",
		CompanyID:       "acme",
		Attempt:         1,
		From:            "+61412345678",
		To:              "+61498765432",
		Body:            "Hi Sarah, your demo is tomorrow at 10:00. Reply STOP to opt out.",
	}
}

// attrs flattens message attributes to name → "DataType:StringValue".
func attrs(in map[string]types.MessageAttributeValue) map[string]string {
	out := map[string]string{}
	for k, v := range in {
		out[k] = aws.ToString(v.DataType) + ":" + aws.ToString(v.StringValue)
		if v.BinaryValue != nil {
			out[k] += ":binary"
		}
	}
	return out
}

func TestSendSMS(t *testing.T) {
	t.Parallel()

	type bundle struct {
		api    *fakeAPI
		sender *chsns.Sender
	}
	setup := func(t *testing.T, opts chsns.Options) bundle {
		t.Helper()
		api := &fakeAPI{id: "8c2f0d9e-sns-msg"}
		return bundle{api: api, sender: chsns.New(api, opts)}
	}

	t.Run("Input", func(t *testing.T) {
		t.Parallel()
		b := setup(t, chsns.Options{})
		id, err := b.sender.SendSMS(context.Background(), sms())
		if err != nil {
			t.Fatalf("SendSMS: %v", err)
		}
		if id != "8c2f0d9e-sns-msg" {
			t.Errorf("id = %q, want the SNS MessageId", id)
		}
		calls := b.api.calls()
		if len(calls) != 1 {
			t.Fatalf("%d Publish calls, want 1", len(calls))
		}
		in := calls[0]
		if got := aws.ToString(in.PhoneNumber); got != "+61498765432" {
			t.Errorf("PhoneNumber = %q", got)
		}
		if got := aws.ToString(in.Message); got != sms().Body {
			t.Errorf("Message = %q", got)
		}
		if in.TopicArn != nil || in.TargetArn != nil || in.Subject != nil || in.MessageStructure != nil {
			t.Errorf("unexpected fields set: %+v", in)
		}
		want := map[string]string{
			"AWS.MM.SMS.OriginationNumber": "String:+61412345678",
			"AWS.SNS.SMS.SMSType":          "String:Transactional",
		}
		if got := attrs(in.MessageAttributes); !equalMaps(got, want) {
			t.Errorf("MessageAttributes = %v, want exactly %v", got, want)
		}
	})

	t.Run("SenderID", func(t *testing.T) {
		t.Parallel()
		b := setup(t, chsns.Options{SenderID: "ACME"})
		if _, err := b.sender.SendSMS(context.Background(), sms()); err != nil {
			t.Fatalf("SendSMS: %v", err)
		}
		want := map[string]string{
			"AWS.MM.SMS.OriginationNumber": "String:+61412345678",
			"AWS.SNS.SMS.SMSType":          "String:Transactional",
			"AWS.SNS.SMS.SenderID":         "String:ACME",
		}
		if got := attrs(b.api.calls()[0].MessageAttributes); !equalMaps(got, want) {
			t.Errorf("MessageAttributes = %v, want exactly %v", got, want)
		}
	})

	t.Run("InvalidNumbers", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name     string
			mutate   func(*dispatch.SMS)
			wantCode string
		}{
			{"ToNotE164", func(m *dispatch.SMS) { m.To = "0412 345 678" }, "invalid_address"},
			{"ToNoPlus", func(m *dispatch.SMS) { m.To = "61412345678" }, "invalid_address"},
			{"ToEmpty", func(m *dispatch.SMS) { m.To = "" }, "invalid_address"},
			{"ToTooLong", func(m *dispatch.SMS) { m.To = "+1234567890123456" }, "invalid_address"},
			{"FromEmpty", func(m *dispatch.SMS) { m.From = "" }, "invalid_origination_number"},
			{"FromNotE164", func(m *dispatch.SMS) { m.From = "ACME" }, "invalid_origination_number"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, chsns.Options{})
				m := sms()
				tc.mutate(&m)
				_, err := b.sender.SendSMS(context.Background(), m)
				var se *comms.SendError
				if !errors.As(err, &se) || se.Transient || se.Code != tc.wantCode {
					t.Fatalf("err = %v, want a permanent %s SendError", err, tc.wantCode)
				}
				if n := len(b.api.calls()); n != 0 {
					t.Errorf("SNS was called %d times", n)
				}
			})
		}
	})

	t.Run("ErrorClassified", func(t *testing.T) {
		t.Parallel()
		b := setup(t, chsns.Options{})
		b.api.err = &types.ThrottledException{Message: aws.String("Rate exceeded")}
		_, err := b.sender.SendSMS(context.Background(), sms())
		var se *comms.SendError
		if !errors.As(err, &se) || !se.Transient || se.Code != "throttled" {
			t.Fatalf("err = %v, want transient throttled", err)
		}
		if !strings.HasPrefix(se.Message, "sns.Publish: ") {
			t.Errorf("message = %q, want the callee named", se.Message)
		}
	})
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
