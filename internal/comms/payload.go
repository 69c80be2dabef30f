package comms

import "encoding/json"

// FollowUps is the cadence of a voice call: how many calls in all and how
// long after each call's start the next one is due.
type FollowUps struct {
	MaxAttempts                int               `json:"max_attempts"`
	FollowUpDelays             []float64         `json:"follow_up_delays"`
	VoiceAgentOutboundConfigID string            `json:"voice_agent_outbound_config_id"`
	ToNumber                   string            `json:"to_number"`
	RespectBusinessHours       bool              `json:"respect_business_hours,omitempty"`
	DynamicVariables           map[string]string `json:"dynamic_variables,omitempty"`
	ContactID                  string            `json:"contact_id,omitempty"`
	CustomerID                 string            `json:"customer_id,omitempty"`
	DealID                     string            `json:"deal_id,omitempty"`
}

// EmailPayload is the payload of an email row.
type EmailPayload struct {
	ToEmail      string   `json:"to_email"`
	Subject      string   `json:"subject"`
	HTMLBody     string   `json:"html_body"`
	FromEmail    string   `json:"from_email,omitempty"`
	SenderUserID string   `json:"sender_user_id,omitempty"`
	Mode         string   `json:"mode,omitempty"`
	ContactID    string   `json:"contact_id,omitempty"`
	DealID       string   `json:"deal_id,omitempty"`
	CustomerID   string   `json:"customer_id,omitempty"`
	CC           []string `json:"cc,omitempty"`
	ToName       string   `json:"to_name,omitempty"`
}

// SMSPayload is the payload of an SMS row.
type SMSPayload struct {
	PhoneNumberID string `json:"phone_number_id"`
	ToNumber      string `json:"to_number"`
	MessageBody   string `json:"message_body"`
}

// VoicePayload is the payload of a voice-call row.
type VoicePayload struct {
	VoiceAgentOutboundConfigID string            `json:"voice_agent_outbound_config_id"`
	ToNumber                   string            `json:"to_number"`
	DynamicVariables           map[string]string `json:"dynamic_variables,omitempty"`
	Metadata                   map[string]any    `json:"metadata,omitempty"`
	FollowUps                  *FollowUps        `json:"follow_ups,omitempty"`
}

// ToNumberOf returns the recipient's number of an SMS or voice payload, ""
// for email or a payload that does not decode.
func ToNumberOf(ch Channel, payload json.RawMessage) string {
	if ch != ChannelSMS && ch != ChannelVoice {
		return ""
	}
	var p struct {
		ToNumber string `json:"to_number"`
	}
	if json.Unmarshal(payload, &p) != nil {
		return ""
	}
	return p.ToNumber
}
