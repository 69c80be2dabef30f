// Package retell is the adapter for the Retell AI voice platform: a
// dispatch.VoiceCaller that places outbound calls through Retell's
// "Create Phone Call" API, and the webhook side that authenticates and reads
// the call events Retell posts back (call_started, call_ended,
// call_analyzed) into a call [Event] with the outcome the voice cadence acts
// on. It also builds webhook bodies in Retell's shape for the dev voice
// simulator ([BuildEvent], [SimulatedEvent]).
//
// # Placing a call
//
// [Client.PlaceCall] sends POST {base}/v2/create-phone-call with
// "Authorization: Bearer <api key>" and the JSON body
//
//	from_number                   Call.From (E.164, a number bought from or imported to Retell)
//	to_number                     Call.To (E.164)
//	override_agent_id             Call.AgentID (omitted when empty: the number's bound agent talks)
//	metadata                      Call.Metadata plus dispatcher_communication_id,
//	                              dispatcher_company_id, dispatcher_attempt (strings; ours win)
//	retell_llm_dynamic_variables  Call.DynamicVariables (omitted when empty)
//	idempotency_key               "dispatcher-<communication id>-<12 hex of sha256(from, to, agent)>"
//
// and returns the call_id of the 201 answer. The idempotency key is the
// same for every attempt of one row while its numbers and agent are
// unchanged, so a retry after an answer that was lost (a 5xx, a dropped
// connection) cannot ring the contact a second time: Retell documents the
// field as "Optional key to retry the same request for up to one hour
// without creating another call". A row edited in between gets a new key.
//
// Failures are *comms.SendError values (see [Client.PlaceCall] for the
// table). Any failure after which the call may exist although no call id
// came back is reported as transient "timeout" (a deadline, or the
// connection lost after the request was written) or permanent
// "outcome_unknown" (a 2xx answer without a readable call_id): the
// dispatcher treats a voice "timeout" as outcome unknown and never redials.
//
// # Webhooks
//
// Retell signs every webhook with the header x-retell-signature:
// "v=<unix milliseconds>,d=<hex HMAC-SHA256>" where the HMAC key is the
// Retell API key (the one with the webhook badge) and the message is the
// raw request body immediately followed by the decimal timestamp. [Verify]
// checks that in constant time and rejects a timestamp more than the
// tolerance (default 5 minutes, as Retell's SDK) away from now; [Sign]
// produces such a header. [ParseEvent] reads the payload
// {"event": "...", "call": {...}}, where "call" is the call object of the
// get-call API.
//
// The outcome of an ended call (call_ended, and call_analyzed, which
// carries the same final call object plus call_analysis):
//
//   - Connected: a person answered. True when the call object has both
//     start_timestamp and end_timestamp (end not before start), its
//     call_status is not "not_connected" (nor "registered"), its
//     disconnection_reason is none of the reasons Retell lists as "not
//     connected" or pre-dial errors (dial_busy, dial_failed, dial_no_answer,
//     invalid_destination, telephony_provider_permission_denied,
//     telephony_provider_unavailable, sip_routing_error, marked_as_spam,
//     user_declined, concurrency_limit_reached, no_valid_payment,
//     scam_detected, registered_call_timeout, error_user_not_joined) and
//     none of the machine answers (voicemail_reached, ivr_reached,
//     machine_detected), and call_analysis.in_voicemail is not true. A
//     voicemail is therefore NOT connected: the line picked up but no human
//     did, and for a cadence that must count as "try again". Any other
//     reason, including agent- or user-hangup, call_transfer, inactivity,
//     max_duration_reached and mid-call errors (error_llm_websocket_*,
//     error_asr…), is connected. Reasons Retell adds later count as
//     connected when the timestamps are there.
//   - TalkSeconds: the contact's own speaking time, never the call length:
//     the union of the [start, end] intervals (seconds of call audio) of
//     the words of every transcript_object utterance with role "user",
//     overlapping words merged, rounded to 0.1 s. Agent and transfer_target
//     speech is not counted; an utterance without word timestamps counts 0.
//     When the call is not connected TalkSeconds is 0: what Retell
//     transcribes as "user" there is a machine (a voicemail greeting, an
//     IVR prompt), not the contact.
//   - EndedReason: disconnection_reason as Retell sends it
//     (voicemail_reached stays voicemail_reached).
//
// Our ids come back in call.metadata (Retell echoes the metadata given at
// creation in every webhook). call_started is sent only for calls that
// connected; its Outcome is left zero because nothing is final yet.
// Retell waits 10 s for a 2xx and retries a webhook up to 3 times, so
// handlers must be idempotent and quick.
//
// # Sources
//
// Facts above come from Retell's public documentation and SDKs (read
// through the stored copies of the search tool):
//
//   - "Create Phone Call", https://docs.retellai.com/api-references/create-phone-call
//     (POST /v2/create-phone-call, body fields, Bearer auth, response
//     call_id / call_status), and Retell's OpenAPI spec "Retell SDK" 3.0.0
//     (revision 2026-10-04, mirrored in github.com/tryAGI/RetellAI
//     src/libs/RetellAI/openapi.yaml): status 201 on success; 400, 401,
//     402, 422, 429, 500 as errors with body {"status": "error",
//     "message": "..."}; the idempotency_key field (5–255 of
//     [A-Za-z0-9_-], one hour).
//   - "Webhook Overview", https://docs.retellai.com/features/webhook-overview
//     and "Webhook", https://docs.retellai.com/features/webhook: the
//     events, payload {event, call}, the 10 s timeout and 3 retries, no
//     call_started for unconnected calls, metadata omitted when not given.
//   - "Secure the webhook", https://docs.retellai.com/features/secure-webhook:
//     x-retell-signature verified with the API key through the SDK's verify.
//   - The SDKs' verify: github.com/RetellAI/retell-typescript-sdk
//     src/lib/webhook_auth.ts, github.com/RetellAI/retell-python-sdk
//     src/retell/lib/webhook_auth.py, and retell-sdk 5.66.1 on npm
//     (lib/webhook_auth.js: header regex ^v=(\d+),d=([0-9a-f]+)$ case-
//     insensitive, 64 hex digits, timestamp a safe integer, message
//     body + String(Number(timestamp)), |now − timestamp| ≤ 5 min). The test
//     vector in webhook_test.go was produced with that npm package.
//   - "Debug call disconnection", https://docs.retellai.com/reliability/debug-call-disconnect:
//     every disconnection_reason with the call_status it comes with
//     (ended / not_connected / error); the DisconnectionReason enum and
//     the transcript_object shape (role agent | user | transfer_target,
//     words {word, start, end} in seconds of call audio) from the Python
//     SDK's src/retell/types/phone_call_response.py.
package retell
