package retell

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
)

// GetCallPath is the endpoint that returns one call object
// (GET /v2/get-call/{call_id}).
const GetCallPath = "/v2/get-call/"

var _ dispatch.CallLookup = (*Client)(nil)

// LookupCall asks Retell for its record of a call (get-call): the call
// object the webhooks carry. 404 → not found. call_status "ended",
// "not_connected" or "error" → ended, with the outcome ParseEvent would
// give its call_ended (plus the analysis when the object has one);
// "registered" or "ongoing" → found, not ended. Any other failure is an
// error (the sweeper asks again later).
func (c *Client) LookupCall(ctx context.Context, callID string) (dispatch.CallRecord, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.baseURL+GetCallPath+url.PathEscape(callID), nil)
	if err != nil {
		return dispatch.CallRecord{}, fmt.Errorf("retell.LookupCall: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return dispatch.CallRecord{}, fmt.Errorf("retell.LookupCall: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return dispatch.CallRecord{}, fmt.Errorf("retell.LookupCall: reading the answer: %w", err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return dispatch.CallRecord{}, nil
	}
	if resp.StatusCode != http.StatusOK {
		return dispatch.CallRecord{}, fmt.Errorf("retell.LookupCall: %w", statusError(resp, data))
	}
	return CallRecordOf(data)
}

// CallRecordOf reads a get-call answer (a call object) into a record.
func CallRecordOf(callObject []byte) (dispatch.CallRecord, error) {
	var call inCall
	if err := json.Unmarshal(callObject, &call); err != nil || call.CallID == "" {
		return dispatch.CallRecord{}, fmt.Errorf("retell.CallRecordOf: %w: not a call object with a call_id", ErrPayload)
	}
	rec := dispatch.CallRecord{Found: true}
	switch call.CallStatus {
	case "ended", "not_connected", "error":
		rec.Ended = true
		rec.Outcome = outcomeOf(&call, call.StartTimestamp.time(), call.EndTimestamp.time())
		rec.Outcome.Basis = comms.BasisProviderLookup
	}
	return rec, nil
}
