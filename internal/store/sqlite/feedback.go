package sqlite

// PLACEHOLDER: replaced by the real implementation (suppressions, provider
// message ids); every method fails so nothing can mistake it for done.

import (
	"context"
	"errors"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

var errTODO = errors.New("sqlite: not implemented yet")

// PutSuppression is not implemented yet.
func (s *Store) PutSuppression(ctx context.Context, x comms.Suppression) error { return errTODO }

// GetSuppression is not implemented yet.
func (s *Store) GetSuppression(ctx context.Context, companyID string, channel comms.SuppressionChannel, recipient string) (comms.Suppression, error) {
	return comms.Suppression{}, comms.ErrNotFound
}

// ListSuppressions is not implemented yet.
func (s *Store) ListSuppressions(ctx context.Context, companyID string, f comms.SuppressionFilter) ([]comms.Suppression, bool, error) {
	return nil, false, errTODO
}

// LiftSuppression is not implemented yet.
func (s *Store) LiftSuppression(ctx context.Context, companyID string, channel comms.SuppressionChannel, recipient, by string, at time.Time) (comms.Suppression, error) {
	return comms.Suppression{}, errTODO
}

// CommunicationByProviderMessageID is not implemented yet.
func (s *Store) CommunicationByProviderMessageID(ctx context.Context, id string) (comms.Communication, error) {
	return comms.Communication{}, errTODO
}
