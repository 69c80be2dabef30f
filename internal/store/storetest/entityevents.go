package storetest

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// This file is the suite of entity events (comms.EntityEventStore): the
// events posted to cancel-by-event, kept per company and entity for the
// rows that come after them.

func (s suite) entityEvents(t *testing.T) {
	event := func(b *bundle, co string, typ comms.EntityType, entity, name string, at time.Time) comms.EntityEvent {
		return comms.EntityEvent{ID: uuid.NewString(), CompanyID: co, Name: name, EntityType: typ, EntityID: entity, At: at}
	}
	require := func(t *testing.T, want, got []comms.EntityEvent) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("found %d events, want %d:\n got %+v\nwant %+v", len(got), len(want), got, want)
		}
		for i := range want {
			requireEqual(t, want[i], got[i])
			if got[i].At.Location() != time.UTC {
				t.Errorf("event %d at %v, not UTC", i, got[i].At)
			}
		}
	}

	t.Run("SinceAndOrder", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		co, contact := b.company.ID, uuid.NewString()
		before := event(b, co, comms.EntityContact, contact, "contact_replied", b.now.Add(-time.Millisecond))
		at := event(b, co, comms.EntityContact, contact, "contact_replied", b.now)
		later := event(b, co, comms.EntityContact, contact, "meeting_booked", b.now.Add(time.Hour))
		same := event(b, co, comms.EntityContact, contact, "contact_replied", b.now.Add(time.Hour))
		if same.ID < later.ID {
			later, same = same, later
		}
		for _, e := range []comms.EntityEvent{same, before, later, at} {
			requireNoError(t, b.store.PutEntityEvent(b.ctx, e))
		}
		got, err := b.store.EntityEventsSince(b.ctx, co, comms.EntityContact, contact, b.now)
		requireNoError(t, err)
		require(t, []comms.EntityEvent{at, later, same}, got)

		got, err = b.store.EntityEventsSince(b.ctx, co, comms.EntityContact, contact, b.now.Add(2*time.Hour))
		requireNoError(t, err)
		require(t, []comms.EntityEvent{}, got)
	})

	t.Run("ScopedByCompanyAndEntity", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		other := b.newCompany(t, 1)
		co, id := b.company.ID, uuid.NewString()
		mine := event(b, co, comms.EntityContact, id, "contact_replied", b.now)
		for _, e := range []comms.EntityEvent{
			mine,
			event(b, other.ID, comms.EntityContact, id, "contact_replied", b.now), // another tenant, same entity id
			event(b, co, comms.EntityDeal, id, "deal_won", b.now),                 // another kind of entity, same id
			event(b, co, comms.EntityContact, uuid.NewString(), "contact_replied", b.now),
		} {
			requireNoError(t, b.store.PutEntityEvent(b.ctx, e))
		}
		got, err := b.store.EntityEventsSince(b.ctx, co, comms.EntityContact, id, b.now.Add(-time.Hour))
		requireNoError(t, err)
		require(t, []comms.EntityEvent{mine}, got)
	})

	t.Run("PutAgainReplaces", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		e := event(b, b.company.ID, comms.EntityCustomer, uuid.NewString(), "churned", b.now)
		requireNoError(t, b.store.PutEntityEvent(b.ctx, e))
		requireNoError(t, b.store.PutEntityEvent(b.ctx, e))
		got, err := b.store.EntityEventsSince(b.ctx, b.company.ID, comms.EntityCustomer, e.EntityID, time.Time{})
		requireNoError(t, err)
		require(t, []comms.EntityEvent{e}, got)
	})

	t.Run("NoneRecorded", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		got, err := b.store.EntityEventsSince(b.ctx, b.company.ID, comms.EntityContact, uuid.NewString(), b.now)
		requireNoError(t, err)
		if got == nil || len(got) != 0 {
			t.Errorf("got %#v, want an empty, non-nil list", got)
		}
	})
}
