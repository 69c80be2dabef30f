package sqlite

import (
	"context"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

var _ comms.EntityEventStore = (*Store)(nil)

// migrationEntityEvents creates entity_events: the events companies posted
// to cancel-by-event, kept per entity so that a row created or dispatched
// later is cancelled by them (docs/design.md §12). Keyed (company_id,
// entity_type, entity_id, at, id), which is the order EntityEventsSince
// reads one entity's events in. Self-contained, renumber freely at a merge.
const migrationEntityEvents = `
CREATE TABLE entity_events (
	company_id  TEXT    NOT NULL,
	entity_type TEXT    NOT NULL,
	entity_id   TEXT    NOT NULL,
	at          INTEGER NOT NULL,
	id          TEXT    NOT NULL,
	name        TEXT    NOT NULL,
	PRIMARY KEY (company_id, entity_type, entity_id, at, id)
) STRICT, WITHOUT ROWID;
`

// PutEntityEvent records the event; the same event (entity, time and id)
// again replaces it.
func (s *Store) PutEntityEvent(ctx context.Context, e comms.EntityEvent) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO entity_events (company_id, entity_type, entity_id, at, id, name)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (company_id, entity_type, entity_id, at, id) DO UPDATE SET name = excluded.name`,
		e.CompanyID, string(e.EntityType), e.EntityID, ts(e.At), e.ID, e.Name)
	return wrap("PutEntityEvent", err)
}

// EntityEventsSince returns the entity's events recorded at or after
// since, oldest first.
func (s *Store) EntityEventsSince(ctx context.Context, companyID string, entityType comms.EntityType, entityID string, since time.Time) ([]comms.EntityEvent, error) {
	const op = "EntityEventsSince"
	from, ok := tsInRange(since)
	if !ok {
		if since.After(maxTS) {
			return []comms.EntityEvent{}, nil
		}
		from = ts(minTS)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT company_id, entity_type, entity_id, at, id, name FROM entity_events
		WHERE company_id = ? AND entity_type = ? AND entity_id = ? AND at >= ?
		ORDER BY at, id`, companyID, string(entityType), entityID, from)
	if err != nil {
		return nil, wrap(op, err)
	}
	evs, err := collect(rows, func(row scanner) (comms.EntityEvent, error) {
		var (
			e  comms.EntityEvent
			at int64
		)
		if err := row.Scan(&e.CompanyID, &e.EntityType, &e.EntityID, &at, &e.ID, &e.Name); err != nil {
			return comms.EntityEvent{}, err
		}
		e.At = fromTS(at)
		return e, nil
	})
	if err != nil {
		return nil, wrap(op, err)
	}
	if evs == nil {
		evs = []comms.EntityEvent{}
	}
	return evs, nil
}
