package contract

import (
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// DecodePatch reads a PATCH body: a JSON Merge Patch (RFC 7396) of the
// create body, so a JSON object.
func DecodePatch(body []byte) (map[string]any, error) {
	doc, err := DecodeJSON(body)
	if err != nil {
		return nil, err
	}
	patch, ok := doc.(map[string]any)
	if !ok {
		return nil, &comms.ValidationError{Fields: []comms.FieldError{{Field: "body", Message: "must be a JSON object (a JSON Merge Patch of the create body)"}}}
	}
	return patch, nil
}

// ValidatePatch merges patch into the create body that row stands for and
// validates the result as a create: the channel cannot change, and
// scheduled_for's window is checked only when the patch moves it. As
// ValidateCreate, an error comes with the Refs of the fields that passed.
func ValidatePatch(row comms.Communication, patch map[string]any, now time.Time) (CreateRequest, error) {
	if ch, present := patch["channel"]; present && ch != string(row.Channel) {
		return CreateRequest{}, &comms.ValidationError{Fields: []comms.FieldError{{Field: "channel", Message: "cannot be changed; cancel this communication and create a new one"}}}
	}
	_, moved := patch["scheduled_for"]
	return ValidateCreate(MergePatch(createDoc(row), patch), now, ValidateOptions{SkipWindow: !moved})
}

// createDoc is the row written back as the create body it stands for, the
// document a PATCH merges into.
func createDoc(c comms.Communication) map[string]any {
	doc := map[string]any{
		"channel":                string(c.Channel),
		"scheduled_for":          c.ScheduledFor.Format(time.RFC3339Nano),
		"respect_business_hours": c.RespectBusinessHours,
	}
	if payload, err := DecodeJSON(c.Payload); err == nil {
		doc["payload"] = payload
	}
	if len(c.CancelPolicy) > 0 {
		if cp, err := DecodeJSON(c.CancelPolicy); err == nil {
			doc["cancel_policy"] = cp
		}
	}
	for k, v := range map[string]string{"timezone": c.Timezone, "contact_id": c.ContactID, "customer_id": c.CustomerID,
		"deal_id": c.DealID, "related_entity_type": c.RelatedEntityType, "related_entity_id": c.RelatedEntityID} {
		if v != "" {
			doc[k] = v
		}
	}
	return doc
}

// MergePatch applies an RFC 7396 JSON Merge Patch to target.
func MergePatch(target, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	tm, _ := target.(map[string]any)
	out := make(map[string]any, len(tm)+len(pm))
	for k, v := range tm {
		out[k] = v
	}
	for k, v := range pm {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = MergePatch(out[k], v)
		}
	}
	return out
}
