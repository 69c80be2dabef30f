package feedback

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// Errors of the parsers that mean "acknowledge and move on": neither is a
// malformed document, and redelivering it cannot change the answer.
var (
	// ErrNotTracked: an SES event type Dispatcher does not record (Open,
	// Click, Subscription).
	ErrNotTracked = errors.New("feedback: event type not tracked")
	// ErrNoRow: an SES event without the communication_id and company_id
	// tags: a message Dispatcher did not send (another sender of the
	// account, or an identity's feedback notification, which carries no tags).
	ErrNoRow = errors.New("feedback: event names no row")
)

// The SES message tags the sender sets (internal/channel/ses; repeated here
// so that this package does not import an AWS adapter).
const (
	tagCommunicationID = "communication_id"
	tagCompanyID       = "company_id"
	tagAttempt         = "attempt"
)

// maxUnwrap bounds how many envelopes (EventBridge, SNS) ParseSESEvent
// takes off a document.
const maxUnwrap = 3

// ParseSESEvent reads one SES event-publishing record
// (https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html)
// in any of the shapes it reaches Dispatcher in: an EventBridge event
// (source "aws.ses", the SES event in "detail"), an SNS notification whose
// Message is the SES event, or the bare SES event. It returns the row the
// event is about (from the message tags communication_id and company_id)
// and the report for RecordDelivery:
//
//	Send              accepted
//	Delivery          delivered
//	Bounce            bounced; Permanent ones (OnAccountSuppressionList
//	                  included) suppress the bounced recipients
//	Complaint         complained, suppressing the complaining recipients
//	Reject            undeliverable
//	Rendering Failure undeliverable
//	DeliveryDelay     delayed
//
// Open, Click and Subscription return an error wrapping ErrNotTracked; an
// event without both tags one wrapping ErrNoRow. Anything malformed returns
// an error naming what is wrong.
func ParseSESEvent(body []byte) (Target, comms.DeliveryReport, error) {
	raw, err := unwrapSES(body)
	if err != nil {
		return Target{}, comms.DeliveryReport{}, err
	}
	var ev sesEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return Target{}, comms.DeliveryReport{}, fmt.Errorf("feedback: SES event: %w", err)
	}
	eventType := ev.EventType
	if eventType == "" {
		eventType = ev.NotificationType // identity feedback notifications (no tags: not ours below)
	}
	var r comms.DeliveryReport
	var at string
	switch eventType {
	case "":
		return Target{}, comms.DeliveryReport{}, errors.New("feedback: SES event: missing eventType")
	case "Open", "Click", "Subscription":
		return Target{}, comms.DeliveryReport{}, fmt.Errorf("%w: SES %s event", ErrNotTracked, eventType)
	case "Send":
		r.Status = comms.DeliveryAccepted
		r.Recipients = ev.Mail.Destination
	case "Delivery":
		if ev.Delivery == nil {
			return missing(eventType, "delivery")
		}
		r.Status = comms.DeliveryDelivered
		r.Recipients = ev.Delivery.Recipients
		r.Detail = ev.Delivery.SMTPResponse
		at = ev.Delivery.Timestamp
	case "Bounce":
		b := ev.Bounce
		if b == nil {
			return missing(eventType, "bounce")
		}
		if b.BounceType == "" {
			return missing(eventType, "bounce.bounceType")
		}
		r.Status = comms.DeliveryBounced
		r.Detail = b.BounceType
		if b.BounceSubType != "" {
			r.Detail += "/" + b.BounceSubType
		}
		if b.BounceType == "Permanent" {
			r.Suppress = comms.SuppressBounce
		}
		r.Recipients = addresses(b.BouncedRecipients)
		at = b.Timestamp
	case "Complaint":
		c := ev.Complaint
		if c == nil {
			return missing(eventType, "complaint")
		}
		r.Status = comms.DeliveryComplained
		r.Suppress = comms.SuppressComplaint
		r.Detail = c.ComplaintFeedbackType
		if r.Detail == "" {
			r.Detail = c.ComplaintSubType
		}
		r.Recipients = addresses(c.ComplainedRecipients)
		at = c.Timestamp
	case "Reject":
		r.Status = comms.DeliveryUndeliverable
		r.Recipients = ev.Mail.Destination
		if ev.Reject != nil {
			r.Detail = ev.Reject.Reason
		}
	case "Rendering Failure":
		r.Status = comms.DeliveryUndeliverable
		r.Recipients = ev.Mail.Destination
		if ev.Failure != nil {
			r.Detail = ev.Failure.ErrorMessage
		}
	case "DeliveryDelay":
		d := ev.DeliveryDelay
		if d == nil {
			return missing(eventType, "deliveryDelay")
		}
		r.Status = comms.DeliveryDelayed
		r.Detail = d.DelayType
		r.Recipients = addresses(d.DelayedRecipients)
		at = d.Timestamp
	default:
		return Target{}, comms.DeliveryReport{}, fmt.Errorf("feedback: SES event: unknown eventType %q", eventType)
	}

	t := Target{CompanyID: tag(ev.Mail.Tags, tagCompanyID), CommunicationID: tag(ev.Mail.Tags, tagCommunicationID)}
	if t.CompanyID == "" || t.CommunicationID == "" {
		return Target{}, comms.DeliveryReport{}, fmt.Errorf("%w: SES %s event of message %q without the %s and %s tags",
			ErrNoRow, eventType, ev.Mail.MessageID, tagCompanyID, tagCommunicationID)
	}
	if ev.Mail.MessageID == "" {
		return missing(eventType, "mail.messageId")
	}
	r.ProviderMessageID = ev.Mail.MessageID
	if a := tag(ev.Mail.Tags, tagAttempt); a != "" {
		n, err := strconv.Atoi(a)
		if err != nil || n <= 0 {
			return Target{}, comms.DeliveryReport{}, fmt.Errorf("feedback: SES %s event: tag %s = %q is not a positive decimal", eventType, tagAttempt, a)
		}
		r.Attempt = n
	}
	if at == "" {
		at = ev.Mail.Timestamp
	}
	if at != "" {
		if r.At, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return Target{}, comms.DeliveryReport{}, fmt.Errorf("feedback: SES %s event: timestamp %q is not RFC 3339", eventType, at)
		}
		r.At = r.At.UTC()
	}
	return t, r, nil
}

func missing(eventType, field string) (Target, comms.DeliveryReport, error) {
	return Target{}, comms.DeliveryReport{}, fmt.Errorf("feedback: SES %s event: missing %s", eventType, field)
}

// unwrapSES takes the EventBridge or SNS envelopes off body and returns the
// SES event.
func unwrapSES(body []byte) ([]byte, error) {
	for range maxUnwrap {
		var env struct {
			// EventBridge
			Source     string          `json:"source"`
			DetailType string          `json:"detail-type"`
			Detail     json.RawMessage `json:"detail"`
			// SNS notification
			Type    string  `json:"Type"`
			Message *string `json:"Message"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			return nil, fmt.Errorf("feedback: SES event is not a JSON object: %w", err)
		}
		switch {
		case env.Detail != nil && !bytes.Equal(env.Detail, []byte("null")):
			if env.Source != "aws.ses" {
				return nil, fmt.Errorf("feedback: EventBridge event from source %q, not aws.ses", env.Source)
			}
			body = env.Detail
		case env.Message != nil:
			if env.Type != "Notification" {
				return nil, fmt.Errorf("feedback: SNS message of Type %q, not Notification", env.Type)
			}
			body = []byte(*env.Message)
		default:
			return body, nil
		}
	}
	return nil, errors.New("feedback: SES event nested in too many envelopes")
}

// sesEvent is the part of an SES event record Dispatcher reads.
type sesEvent struct {
	EventType        string `json:"eventType"`
	NotificationType string `json:"notificationType"`
	Mail             struct {
		Timestamp   string              `json:"timestamp"`
		MessageID   string              `json:"messageId"`
		Destination []string            `json:"destination"`
		Tags        map[string][]string `json:"tags"`
	} `json:"mail"`
	Bounce *struct {
		BounceType        string      `json:"bounceType"`
		BounceSubType     string      `json:"bounceSubType"`
		BouncedRecipients []recipient `json:"bouncedRecipients"`
		Timestamp         string      `json:"timestamp"`
	} `json:"bounce"`
	Complaint *struct {
		ComplainedRecipients  []recipient `json:"complainedRecipients"`
		ComplaintFeedbackType string      `json:"complaintFeedbackType"`
		ComplaintSubType      string      `json:"complaintSubType"`
		Timestamp             string      `json:"timestamp"`
	} `json:"complaint"`
	Delivery *struct {
		Timestamp    string   `json:"timestamp"`
		Recipients   []string `json:"recipients"`
		SMTPResponse string   `json:"smtpResponse"`
	} `json:"delivery"`
	DeliveryDelay *struct {
		Timestamp         string      `json:"timestamp"`
		DelayType         string      `json:"delayType"`
		DelayedRecipients []recipient `json:"delayedRecipients"`
	} `json:"deliveryDelay"`
	Reject *struct {
		Reason string `json:"reason"`
	} `json:"reject"`
	Failure *struct {
		ErrorMessage string `json:"errorMessage"`
	} `json:"failure"`
}

type recipient struct {
	EmailAddress string `json:"emailAddress"`
}

func addresses(rs []recipient) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		if r.EmailAddress != "" {
			out = append(out, r.EmailAddress)
		}
	}
	return out
}

// tag returns the first value of an SES message tag.
func tag(tags map[string][]string, name string) string {
	if v := tags[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// smsTimeLayout is how SNS SMS delivery-status logs write
// notification.timestamp: UTC, a space, milliseconds ("2016-06-28 00:40:34.558").
const smsTimeLayout = "2006-01-02 15:04:05.999999999"

// ParseSMSDeliveryLog reads one SNS SMS delivery-status log line, as SNS
// writes it to CloudWatch Logs (the log groups
// sns/<region>/<account>/DirectPublishToPhoneNumber and …/Failure):
// {"notification": {"messageId", "timestamp"}, "delivery": {"destination",
// "providerResponse", "priceInUSD", "smsType", …}, "status": "SUCCESS" |
// "FAILURE"}. SUCCESS is delivered; FAILURE is opted_out (suppressing the
// number) when the provider response says the number opted out, and
// undeliverable otherwise. The row is named by the SNS message id alone.
// notification.timestamp (when SNS accepted the Publish) is both the
// report's At and its AcceptedAt.
func ParseSMSDeliveryLog(message []byte) (Target, comms.DeliveryReport, error) {
	var l struct {
		Notification struct {
			MessageID string `json:"messageId"`
			Timestamp string `json:"timestamp"`
		} `json:"notification"`
		Delivery struct {
			Destination      string `json:"destination"`
			ProviderResponse string `json:"providerResponse"`
		} `json:"delivery"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(message, &l); err != nil {
		return Target{}, comms.DeliveryReport{}, fmt.Errorf("feedback: SMS delivery log: %w", err)
	}
	if l.Notification.MessageID == "" {
		return Target{}, comms.DeliveryReport{}, errors.New("feedback: SMS delivery log: missing notification.messageId")
	}
	r := comms.DeliveryReport{ProviderMessageID: l.Notification.MessageID, Detail: l.Delivery.ProviderResponse}
	if l.Delivery.Destination != "" {
		r.Recipients = []string{l.Delivery.Destination}
	}
	switch l.Status {
	case "SUCCESS":
		r.Status = comms.DeliveryDelivered
	case "FAILURE":
		r.Status = comms.DeliveryUndeliverable
		if optedOut(l.Delivery.ProviderResponse) {
			r.Status, r.Suppress = comms.DeliveryOptedOut, comms.SuppressOptOut
		}
	case "":
		return Target{}, comms.DeliveryReport{}, errors.New("feedback: SMS delivery log: missing status")
	default:
		return Target{}, comms.DeliveryReport{}, fmt.Errorf("feedback: SMS delivery log: unknown status %q", l.Status)
	}
	if ts := l.Notification.Timestamp; ts != "" {
		at, err := time.Parse(smsTimeLayout, ts)
		if err != nil {
			if at, err = time.Parse(time.RFC3339Nano, ts); err != nil {
				return Target{}, comms.DeliveryReport{}, fmt.Errorf("feedback: SMS delivery log: notification.timestamp %q is neither %q nor RFC 3339", ts, smsTimeLayout)
			}
		}
		r.At = at.UTC()
		r.AcceptedAt = r.At
	}
	return Target{ProviderMessageID: l.Notification.MessageID}, r, nil
}

// optedOut reports whether an SNS provider response says the number opted
// out ("Phone is currently opted out", "Phone number is opted out", …).
func optedOut(providerResponse string) bool {
	s := strings.ToLower(providerResponse)
	return strings.Contains(s, "opted out") || strings.Contains(s, "opted-out")
}
