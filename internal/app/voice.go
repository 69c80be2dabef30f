package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/channel/retell"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/contract"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/httpapi"
)

// VoiceHooks verifies provider webhooks and records call outcomes.
type VoiceHooks struct {
	// Secret is the provider's signing key (Retell signs with the API key).
	Secret string
	// Key, when set, returns the signing key instead of Secret, when a
	// webhook arrives (on AWS: VoiceSecret.WebhookKey, read lazily and
	// cached). An error refuses the delivery as unavailable (503), so the
	// provider retries it; it changes nothing.
	Key        func(ctx context.Context) (string, error)
	Dispatcher *dispatch.Dispatcher
	Now        func() time.Time
	Log        *slog.Logger
}

var _ httpapi.VoiceWebhooks = (*VoiceHooks)(nil)

// VoiceEvent handles one webhook delivery: a bad signature changes nothing
// (401); events other than a call's end are acknowledged and ignored; an
// event for an unknown row or call is acknowledged (the provider would
// otherwise retry it forever) and logged.
func (v *VoiceHooks) VoiceEvent(ctx context.Context, provider string, body []byte, header http.Header) error {
	if provider != "retell" {
		return fmt.Errorf("voice provider %q: %w", provider, comms.ErrNotFound)
	}
	secret := v.Secret
	if v.Key != nil {
		k, err := v.Key(ctx)
		if err != nil {
			v.Log.ErrorContext(ctx, "voice webhook key unavailable", "error", err.Error())
			return fmt.Errorf("voice webhook key: %w", err)
		}
		secret = k
	}
	if secret == "" {
		return fmt.Errorf("voice webhooks are not configured: %w", httpapi.ErrBadSignature)
	}
	// API Gateway (payload v2) joins repeated headers with commas and the
	// Lambda proxy splits them again: "v=…,d=…" arrives as two values.
	sig := strings.Join(header.Values(retell.SignatureHeader), ",")
	if err := retell.Verify(body, sig, secret, v.Now(), retell.DefaultTolerance); err != nil {
		v.Log.WarnContext(ctx, "voice webhook refused", "error", err.Error())
		return fmt.Errorf("retell.Verify: %v: %w", err, httpapi.ErrBadSignature)
	}
	// The signed body goes through the API's one JSON rule too (UTF-8, no
	// duplicate keys): a proxy must not read another event than we do.
	if _, err := contract.DecodeJSON(body); err != nil {
		return err
	}
	ev, err := retell.ParseEvent(body)
	if err != nil {
		v.Log.WarnContext(ctx, "voice webhook unreadable", "error", err.Error())
		return &comms.ValidationError{Fields: []comms.FieldError{{Field: "body",
			Message: "is not a Retell webhook event this API can read (an object with event and call)"}}}
	}
	if !ev.Ended || ev.CommunicationID == "" {
		return nil
	}
	var res dispatch.OutcomeResult
	if ev.Kind == retell.EventCallEnded {
		// The decision waits for call_analyzed, for AnalysisGrace at most.
		res, err = v.Dispatcher.RecordCallEnded(ctx, ev.CompanyID, ev.CommunicationID, ev.CallID, ev.Outcome)
	} else {
		res, err = v.Dispatcher.RecordOutcome(ctx, ev.CompanyID, ev.CommunicationID, ev.CallID, ev.Outcome)
	}
	if errors.Is(err, comms.ErrNotFound) {
		v.Log.WarnContext(ctx, "voice outcome for an unknown call; acknowledged", "call_id", ev.CallID, "communication_id", ev.CommunicationID)
		return nil
	}
	if err != nil {
		return err
	}
	v.Log.InfoContext(ctx, "voice outcome", "event", ev.Kind, "communication_id", ev.CommunicationID,
		"talk_seconds_source", string(ev.Outcome.TalkSecondsSource), "decision", string(ev.Outcome.Decision),
		"ended_reason", ev.Outcome.EndedReason, "recorded", res.Recorded, "waiting", res.Waiting, "follow_up_id", res.FollowUpID,
		"cancelled_by", res.CancelledBy)
	return nil
}
