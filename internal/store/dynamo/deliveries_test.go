package dynamo_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
)

// TestDeliveriesStayOutOfRowQueries checks that webhook deliveries, which
// reuse the by_due and by_company indexes under key prefixes of their own,
// are never seen by the row sweeper nor by a company's row listing.
func TestDeliveriesStayOutOfRowQueries(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	company := "co_deliveries"
	d := webhooks.Delivery{
		ID: webhooks.DeliveryID("we_1", "ev_1"), CompanyID: company, EndpointID: "we_1", EventID: "ev_1",
		EventType: comms.EventCreated, CommunicationID: "c1", Payload: json.RawMessage(`{}`),
		State: webhooks.DeliveryPending, NextAttemptAt: at, CreatedAt: at, UpdatedAt: at,
	}
	if err := s.FanOut(ctx, company, "", "feed-1", []webhooks.Delivery{d}); err != nil {
		t.Fatal(err)
	}
	rows, err := s.DueCommunications(ctx, at.Add(time.Hour), 10)
	if err != nil || len(rows) != 0 {
		t.Fatalf("DueCommunications = %d rows, %v; want none", len(rows), err)
	}
	listed, _, err := s.ListCommunications(ctx, company, comms.ListFilter{Limit: 10})
	if err != nil || len(listed) != 0 {
		t.Fatalf("ListCommunications = %d rows, %v; want none", len(listed), err)
	}
	due, err := s.DueDeliveries(ctx, at, 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("DueDeliveries = %d, %v; want the delivery", len(due), err)
	}
}
