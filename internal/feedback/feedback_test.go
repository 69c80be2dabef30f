package feedback_test

import (
	"context"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/feedback"
)

// refusingStore fails the test on any call: a report that names no row
// Dispatcher could have made must not reach the store.
type refusingStore struct{ t *testing.T }

func (s refusingStore) GetCommunication(context.Context, string, string) (comms.Communication, error) {
	s.t.Error("GetCommunication called")
	return comms.Communication{}, comms.ErrNotFound
}

func (s refusingStore) CommunicationByProviderMessageID(context.Context, string) (comms.Communication, error) {
	s.t.Error("CommunicationByProviderMessageID called")
	return comms.Communication{}, comms.ErrNotFound
}

func (s refusingStore) GetSuppression(context.Context, string, comms.SuppressionChannel, string) (comms.Suppression, error) {
	s.t.Error("GetSuppression called")
	return comms.Suppression{}, comms.ErrNotFound
}

func (s refusingStore) UpdateCommunication(context.Context, comms.Change, bool) (comms.Communication, int64, error) {
	s.t.Error("UpdateCommunication called")
	return comms.Communication{}, 0, comms.ErrConflict
}

// TestForgedTargetsNameNoRow: tags Dispatcher never sets (an id that is not
// a UUID, a company id outside the rule) and an outsized provider message id
// are Unknown without a store call — never a store error retried forever.
func TestForgedTargetsNameNoRow(t *testing.T) {
	rc := feedback.New(refusingStore{t}, nil, nil)
	r := comms.DeliveryReport{Status: comms.DeliveryDelivered}
	for _, target := range []feedback.Target{
		{CompanyID: "acme", CommunicationID: "not-a-uuid"},
		{CompanyID: strings.Repeat("a", 5000), CommunicationID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"},
		{CompanyID: "acme corp", CommunicationID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"},
		{ProviderMessageID: strings.Repeat("x", 5000)},
		{},
	} {
		out, err := rc.Record(context.Background(), target, r)
		if out != feedback.Unknown || err != nil {
			t.Errorf("%.40v: %s, %v; want unknown", target, out, err)
		}
	}
}
