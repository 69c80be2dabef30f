package comms

import (
	"context"
	"time"
)

// EntityEvent is an event a company posted about one of its entities
// (POST /v1/scheduled-communications/cancel-by-event): kept so that a row
// that does not exist yet, or is busy when it arrives (a call in progress),
// is still cancelled by it later — a cadence's follow-up when it is
// created, any row when it is dispatched (docs/design.md §12).
type EntityEvent struct {
	ID        string `json:"id"`
	CompanyID string `json:"-"`
	// Name is the event's name, as cancel_policy.cancel_on lists it.
	Name string `json:"event"`
	// EntityType is contact, customer or deal; EntityID its uuid.
	EntityType EntityType `json:"entity_type"`
	EntityID   string     `json:"entity_id"`
	// At is when it was recorded (UTC, millisecond precision).
	At time.Time `json:"at"`
}

// EntityType names the kind of entity an event concerns.
type EntityType string

// The entity types a row links to.
const (
	EntityContact  EntityType = "contact"
	EntityCustomer EntityType = "customer"
	EntityDeal     EntityType = "deal"
)

// Entities returns the entities a row is linked to (contact, customer,
// deal), in that order, leaving out the ones it has not.
func (c Communication) Entities() [][2]string {
	var out [][2]string
	for _, e := range [][2]string{{string(EntityContact), c.ContactID}, {string(EntityCustomer), c.CustomerID}, {string(EntityDeal), c.DealID}} {
		if e[1] != "" {
			out = append(out, e)
		}
	}
	return out
}

// EntityEventStore keeps the events posted about a company's entities.
type EntityEventStore interface {
	// PutEntityEvent records e (its ID is unique; putting it again
	// replaces it).
	PutEntityEvent(ctx context.Context, e EntityEvent) error
	// EntityEventsSince returns the company's events about the entity
	// recorded at or after since, oldest first (by At, then ID).
	EntityEventsSince(ctx context.Context, companyID string, entityType EntityType, entityID string, since time.Time) ([]EntityEvent, error)
}

// EntityEventReader is the read half of EntityEventStore.
type EntityEventReader interface {
	EntityEventsSince(ctx context.Context, companyID string, entityType EntityType, entityID string, since time.Time) ([]EntityEvent, error)
}

// CancellingEvent returns the first event among those recorded about the
// row's entities since the row's cadence began (since: the root's
// creation) that the row's cancel_policy.cancel_on lists, and whether
// there is one. Nothing is read for a row whose policy lists no event or
// that has no entity.
func CancellingEvent(ctx context.Context, r EntityEventReader, row Communication, since time.Time) (EntityEvent, bool, error) {
	p := row.Policy()
	if len(p.CancelOn) == 0 {
		return EntityEvent{}, false, nil
	}
	var found *EntityEvent
	for _, ent := range row.Entities() {
		evs, err := r.EntityEventsSince(ctx, row.CompanyID, EntityType(ent[0]), ent[1], since)
		if err != nil {
			return EntityEvent{}, false, err
		}
		for _, e := range evs {
			if p.CancelsOn(e.Name) && (found == nil || e.At.Before(found.At)) {
				found = &e
				break
			}
		}
	}
	if found == nil {
		return EntityEvent{}, false, nil
	}
	return *found, true, nil
}
