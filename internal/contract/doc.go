// Package contract is the request layer of the API: it decodes JSON bodies
// (numbers kept exact) and checks them, and the query strings of listings,
// against the documented contract, reporting every offending field at once
// as a comms.ValidationError named by its JSON path. It holds the create
// body's bounds and shapes, the JSON Merge Patch (RFC 7396) a PATCH applies,
// the settings, phone-number, voice-agent and cancel-by-event bodies, and the
// opaque paging cursors.
//
// It imports the domain (internal/comms) and nothing that stores or sends.
// The use cases (internal/scheduling) and the HTTP transport call it; the
// domain never does.
package contract
