package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
)

// This file is the suite of webhook endpoints (webhooks.EndpointStore).

func (s suite) webhookEndpoints(t *testing.T) {
	setup := func(t *testing.T) (*bundle, webhooks.EndpointStore) {
		t.Helper()
		b := s.setup(t)
		es, ok := b.store.(webhooks.EndpointStore)
		if !ok {
			t.Fatalf("%T does not implement webhooks.EndpointStore", b.store)
		}
		return b, es
	}
	endpoint := func(b *bundle, companyID string) webhooks.Endpoint {
		return webhooks.Endpoint{ID: uuid.NewString(), CompanyID: companyID, URL: "https://crm.example.com/hooks/" + uuid.NewString(),
			Secrets:   []webhooks.Secret{{Value: "whsec_" + uuid.NewString(), CreatedAt: b.now}},
			CreatedAt: b.now, UpdatedAt: b.now}
	}
	stored := func(e webhooks.Endpoint) webhooks.Endpoint { e.Version++; return e }

	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		b, es := setup(t)
		bare := endpoint(b, b.company.ID)
		requireNoError(t, es.PutWebhookEndpoint(b.ctx, bare))
		got, err := es.GetWebhookEndpoint(b.ctx, b.company.ID, bare.ID)
		requireNoError(t, err)
		requireEqual(t, stored(bare), got)

		expires := b.now.Add(24 * time.Hour)
		full := endpoint(b, b.company.ID)
		full.EventTypes = []comms.EventType{comms.EventSent, comms.EventCreated}
		full.Description = "CRM timeline — production ✓"
		full.Disabled, full.DisabledReason = true, webhooks.DisabledFailing
		full.FailingSince, full.DisabledAt = b.now.Add(-webhooks.FailingFor), b.now.Add(time.Minute)
		full.Secrets = []webhooks.Secret{{Value: "whsec_new", CreatedAt: b.now.Add(time.Hour)},
			{Value: "whsec_old", CreatedAt: b.now, ExpiresAt: &expires}}
		full.UpdatedAt = b.now.Add(time.Hour)
		requireNoError(t, es.PutWebhookEndpoint(b.ctx, full))
		got, err = es.GetWebhookEndpoint(b.ctx, b.company.ID, full.ID)
		requireNoError(t, err)
		requireEqual(t, stored(full), got)
		for _, sec := range got.Secrets {
			if sec.CreatedAt.Location() != time.UTC || sec.ExpiresAt != nil && sec.ExpiresAt.Location() != time.UTC {
				t.Errorf("secret times not in UTC: %+v", sec)
			}
		}
	})

	t.Run("Replace", func(t *testing.T) {
		t.Parallel()
		b, es := setup(t)
		e := endpoint(b, b.company.ID)
		requireNoError(t, es.PutWebhookEndpoint(b.ctx, e))
		e = stored(e)
		e.URL, e.EventTypes, e.Description = "https://crm.example.com/v2", []comms.EventType{comms.EventFailed}, "moved"
		e.UpdatedAt = b.now.Add(time.Minute)
		requireNoError(t, es.PutWebhookEndpoint(b.ctx, e))
		got, err := es.GetWebhookEndpoint(b.ctx, b.company.ID, e.ID)
		requireNoError(t, err)
		requireEqual(t, stored(e), got)

		// A write naming a version that is no longer stored changes nothing.
		stale := e
		stale.URL = "https://stale.example.com/"
		requireErrorIs(t, es.PutWebhookEndpoint(b.ctx, stale), comms.ErrConflict)
		// A create of a taken id neither.
		again := e
		again.Version = 0
		requireErrorIs(t, es.PutWebhookEndpoint(b.ctx, again), comms.ErrAlreadyExists)
		got, err = es.GetWebhookEndpoint(b.ctx, b.company.ID, e.ID)
		requireNoError(t, err)
		requireEqual(t, stored(e), got)

		// A replace of an endpoint that does not exist is not a create.
		ghost := endpoint(b, b.company.ID)
		ghost.Version = 3
		requireErrorIs(t, es.PutWebhookEndpoint(b.ctx, ghost), comms.ErrNotFound)
		_, err = es.GetWebhookEndpoint(b.ctx, b.company.ID, ghost.ID)
		requireErrorIs(t, err, comms.ErrNotFound)
	})

	t.Run("TenantIsolation", func(t *testing.T) {
		t.Parallel()
		b, es := setup(t)
		other := b.newCompany(t, 0)
		e := endpoint(b, b.company.ID)
		requireNoError(t, es.PutWebhookEndpoint(b.ctx, e))
		_, err := es.GetWebhookEndpoint(b.ctx, other.ID, e.ID)
		requireErrorIs(t, err, comms.ErrNotFound)
		requireErrorIs(t, es.DeleteWebhookEndpoint(b.ctx, other.ID, e.ID), comms.ErrNotFound)
		list, more, err := es.ListWebhookEndpoints(b.ctx, other.ID, "", 100)
		requireNoError(t, err)
		if len(list) != 0 || more || list == nil {
			t.Fatalf("other company lists %d endpoints (more %v, nil %v), want an empty list", len(list), more, list == nil)
		}
		// The same id in another company is another endpoint.
		theirs := endpoint(b, other.ID)
		theirs.ID = e.ID
		requireNoError(t, es.PutWebhookEndpoint(b.ctx, theirs))
		got, err := es.GetWebhookEndpoint(b.ctx, b.company.ID, e.ID)
		requireNoError(t, err)
		requireEqual(t, stored(e), got)
		// A company that does not exist has none.
		ghost := endpoint(b, "co_"+uuid.NewString())
		requireErrorIs(t, es.PutWebhookEndpoint(b.ctx, ghost), comms.ErrNotFound)
	})

	t.Run("Paging", func(t *testing.T) {
		t.Parallel()
		b, es := setup(t)
		other := b.newCompany(t, 0)
		var want []string
		for range 7 {
			e := endpoint(b, b.company.ID)
			requireNoError(t, es.PutWebhookEndpoint(b.ctx, e))
			want = append(want, e.ID)
			requireNoError(t, es.PutWebhookEndpoint(b.ctx, endpoint(b, other.ID)))
		}
		slices.Sort(want)
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			if pages > 4 {
				t.Fatal("paging does not end")
			}
			list, more, err := es.ListWebhookEndpoints(b.ctx, b.company.ID, after, 3)
			requireNoError(t, err)
			for _, e := range list {
				if e.CompanyID != b.company.ID {
					t.Fatalf("listed another company's endpoint: %+v", e)
				}
				got = append(got, e.ID)
			}
			if !more {
				break
			}
			if len(list) != 3 {
				t.Fatalf("a page with more after it has %d endpoints, want 3", len(list))
			}
			after = list[len(list)-1].ID
		}
		requireIDs(t, want, got)
		// An exact last page says there is no more.
		list, more, err := es.ListWebhookEndpoints(b.ctx, b.company.ID, want[3], 3)
		requireNoError(t, err)
		if len(list) != 3 || more {
			t.Errorf("last page: %d endpoints, more %v; want 3, false", len(list), more)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		b, es := setup(t)
		e, keep := endpoint(b, b.company.ID), endpoint(b, b.company.ID)
		requireNoError(t, es.PutWebhookEndpoint(b.ctx, e))
		requireNoError(t, es.PutWebhookEndpoint(b.ctx, keep))
		requireNoError(t, es.DeleteWebhookEndpoint(b.ctx, b.company.ID, e.ID))
		_, err := es.GetWebhookEndpoint(b.ctx, b.company.ID, e.ID)
		requireErrorIs(t, err, comms.ErrNotFound)
		requireErrorIs(t, es.DeleteWebhookEndpoint(b.ctx, b.company.ID, e.ID), comms.ErrNotFound)
		list, _, err := es.ListWebhookEndpoints(b.ctx, b.company.ID, "", 100)
		requireNoError(t, err)
		if len(list) != 1 || list[0].ID != keep.ID {
			t.Errorf("after delete the list holds %d endpoints, want only %s", len(list), keep.ID)
		}
		// The id can be used again.
		requireNoError(t, es.PutWebhookEndpoint(b.ctx, e))
	})

	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		b, es := setup(t)
		_, err := es.GetWebhookEndpoint(b.ctx, b.company.ID, uuid.NewString())
		requireErrorIs(t, err, comms.ErrNotFound)
		requireErrorIs(t, es.DeleteWebhookEndpoint(b.ctx, b.company.ID, uuid.NewString()), comms.ErrNotFound)
	})
}
