package storetest

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// fullSettings is a settings document using every feature of the type.
func fullSettings() comms.Settings {
	return comms.Settings{
		Timezone: "Australia/Sydney",
		BusinessHours: map[string][][2]string{
			"mon": {{"09:00", "12:00"}, {"13:00", "17:30"}},
			"tue": {{"08:00", "12:00"}, {"12:30", "16:00"}, {"18:00", "24:00"}},
			"wed": {{"09:00", "17:00"}},
			"thu": {{"00:00", "24:00"}},
			"fri": {{"09:00", "15:00"}},
			"sat": {},
			"sun": {},
		},
		Holidays:         []string{"2026-12-25", "2026-12-26", "2027-01-26"},
		DefaultFromEmail: "team@example.com",
		DefaultFromName:  "Example Team — Sydney",
		QuietHours: comms.QuietHours{
			VoiceCall: &comms.ClockWindow{Start: "08:00", End: "21:00"},
			SMS:       &comms.ClockWindow{Start: "22:00", End: "06:00"},
		},
		TimezoneFromPhoneNumber: true,
	}
}

func (s suite) companies(t *testing.T) {
	t.Run("CreateAndGet", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		want := comms.Company{ID: "co_" + uuid.NewString(), Credits: 7, Settings: fullSettings(), CreatedAt: b.now}
		requireNoError(t, b.store.CreateCompany(b.ctx, want))
		got, err := b.store.GetCompany(b.ctx, want.ID)
		requireNoError(t, err)
		requireEqual(t, want, got)
	})

	t.Run("EmptySettingsReadBackAsStored", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		c := comms.Company{ID: "co_" + uuid.NewString(), Credits: 1, CreatedAt: b.now}
		requireNoError(t, b.store.CreateCompany(b.ctx, c))
		got, err := b.store.GetCompany(b.ctx, c.ID)
		requireNoError(t, err)
		requireEqual(t, comms.DefaultSettings(), got.Settings.WithDefaults())
	})

	t.Run("DuplicateID", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		dup := b.company
		dup.Credits = 99
		requireErrorIs(t, b.store.CreateCompany(b.ctx, dup), comms.ErrAlreadyExists)
		if got := b.credits(t, b.company.ID); got != startCredits {
			t.Fatalf("credits = %d after a failed duplicate create, want %d", got, startCredits)
		}
	})

	t.Run("GetUnknown", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		_, err := b.store.GetCompany(b.ctx, "co_"+uuid.NewString())
		requireErrorIs(t, err, comms.ErrNotFound)
	})

	t.Run("PutSettingsRoundTrip", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		requireNoError(t, b.store.PutSettings(b.ctx, b.company.ID, fullSettings()))
		got, err := b.store.GetCompany(b.ctx, b.company.ID)
		requireNoError(t, err)
		requireEqual(t, fullSettings(), got.Settings)
		if got.Credits != startCredits {
			t.Fatalf("credits = %d after PutSettings, want %d", got.Credits, startCredits)
		}
	})

	t.Run("PutSettingsReplacesTheWholeDocument", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		requireNoError(t, b.store.PutSettings(b.ctx, b.company.ID, fullSettings()))
		second := comms.Settings{
			Timezone:      "Europe/Paris",
			BusinessHours: map[string][][2]string{"mon": {{"10:00", "11:00"}}},
		}
		requireNoError(t, b.store.PutSettings(b.ctx, b.company.ID, second))
		got, err := b.store.GetCompany(b.ctx, b.company.ID)
		requireNoError(t, err)
		requireEqual(t, second, got.Settings)
	})

	t.Run("PutSettingsUnknownCompany", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		requireErrorIs(t, b.store.PutSettings(b.ctx, "co_"+uuid.NewString(), fullSettings()), comms.ErrNotFound)
	})
}

func (b *bundle) apiKey(companyID string, createdAt time.Time) comms.APIKey {
	id := uuid.NewString()
	return comms.APIKey{
		ID:        "key_" + id,
		CompanyID: companyID,
		Hash:      "sha256-" + id,
		Prefix:    "dsp_" + id[:6],
		Scopes:    []comms.Scope{comms.ScopeRead, comms.ScopeWrite, comms.ScopeSMSSend},
		CreatedAt: createdAt,
	}
}

func (s suite) apiKeys(t *testing.T) {
	t.Run("CreateAndByHash", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		k := b.apiKey(b.company.ID, b.now)
		requireNoError(t, b.store.CreateAPIKey(b.ctx, k))
		got, err := b.store.APIKeyByHash(b.ctx, k.Hash)
		requireNoError(t, err)
		requireEqual(t, k, got)
	})

	t.Run("ScopesRoundTrip", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		for _, scopes := range [][]comms.Scope{comms.AllScopes, {comms.ScopeCallsInitiate}} {
			k := b.apiKey(b.company.ID, b.now)
			k.Scopes = append([]comms.Scope(nil), scopes...)
			requireNoError(t, b.store.CreateAPIKey(b.ctx, k))
			got, err := b.store.APIKeyByHash(b.ctx, k.Hash)
			requireNoError(t, err)
			requireEqual(t, k, got)
		}
	})

	t.Run("DuplicateIDOrHash", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		other := b.newCompany(t, 0)
		k := b.apiKey(b.company.ID, b.now)
		requireNoError(t, b.store.CreateAPIKey(b.ctx, k))

		sameID := b.apiKey(b.company.ID, b.now)
		sameID.ID = k.ID
		requireErrorIs(t, b.store.CreateAPIKey(b.ctx, sameID), comms.ErrAlreadyExists)
		_, err := b.store.APIKeyByHash(b.ctx, sameID.Hash)
		requireErrorIs(t, err, comms.ErrNotFound)

		sameHash := b.apiKey(b.company.ID, b.now)
		sameHash.Hash = k.Hash
		requireErrorIs(t, b.store.CreateAPIKey(b.ctx, sameHash), comms.ErrAlreadyExists)

		sameHashOtherCompany := b.apiKey(other.ID, b.now)
		sameHashOtherCompany.Hash = k.Hash
		requireErrorIs(t, b.store.CreateAPIKey(b.ctx, sameHashOtherCompany), comms.ErrAlreadyExists)

		got, err := b.store.APIKeyByHash(b.ctx, k.Hash)
		requireNoError(t, err)
		requireEqual(t, k, got)
	})

	t.Run("ByHashUnknown", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		_, err := b.store.APIKeyByHash(b.ctx, "sha256-"+uuid.NewString())
		requireErrorIs(t, err, comms.ErrNotFound)
	})

	t.Run("ListOldestFirst", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		other := b.newCompany(t, 0)
		// Ids sort the other way round from creation times.
		k2 := b.apiKey(b.company.ID, b.now.Add(2*time.Second))
		k0 := b.apiKey(b.company.ID, b.now)
		k1 := b.apiKey(b.company.ID, b.now.Add(time.Second))
		k2.ID, k1.ID, k0.ID = "a-"+k2.ID, "b-"+k1.ID, "c-"+k0.ID
		for _, k := range []comms.APIKey{k2, b.apiKey(other.ID, b.now.Add(-time.Hour)), k0, k1} {
			requireNoError(t, b.store.CreateAPIKey(b.ctx, k))
		}
		got, err := b.store.ListAPIKeys(b.ctx, b.company.ID)
		requireNoError(t, err)
		if len(got) != 3 {
			t.Fatalf("listed %d keys, want 3: %+v", len(got), got)
		}
		for i, want := range []comms.APIKey{k0, k1, k2} {
			requireEqual(t, want, got[i])
		}

		none, err := b.store.ListAPIKeys(b.ctx, b.newCompany(t, 0).ID)
		requireNoError(t, err)
		if len(none) != 0 {
			t.Fatalf("a company without keys listed %d", len(none))
		}
	})

	t.Run("Revoke", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		k := b.apiKey(b.company.ID, b.now)
		requireNoError(t, b.store.CreateAPIKey(b.ctx, k))
		at := b.now.Add(time.Minute)
		requireNoError(t, b.store.RevokeAPIKey(b.ctx, b.company.ID, k.ID, at))

		want := k
		want.RevokedAt = &at
		got, err := b.store.APIKeyByHash(b.ctx, k.Hash)
		requireNoError(t, err)
		requireEqual(t, want, got)

		listed, err := b.store.ListAPIKeys(b.ctx, b.company.ID)
		requireNoError(t, err)
		if len(listed) != 1 {
			t.Fatalf("listed %d keys, want the revoked one", len(listed))
		}
		requireEqual(t, want, listed[0])
	})

	t.Run("RevokeIsIdempotent", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		k := b.apiKey(b.company.ID, b.now)
		requireNoError(t, b.store.CreateAPIKey(b.ctx, k))
		first := b.now.Add(time.Minute)
		requireNoError(t, b.store.RevokeAPIKey(b.ctx, b.company.ID, k.ID, first))
		requireNoError(t, b.store.RevokeAPIKey(b.ctx, b.company.ID, k.ID, first))
		requireNoError(t, b.store.RevokeAPIKey(b.ctx, b.company.ID, k.ID, first.Add(time.Hour)))
		got, err := b.store.APIKeyByHash(b.ctx, k.Hash)
		requireNoError(t, err)
		if got.RevokedAt == nil || !got.RevokedAt.Equal(first) {
			t.Fatalf("RevokedAt = %v, want the first revocation %v", got.RevokedAt, first)
		}
	})

	t.Run("RevokeUnknownOrOtherCompany", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		other := b.newCompany(t, 0)
		k := b.apiKey(b.company.ID, b.now)
		requireNoError(t, b.store.CreateAPIKey(b.ctx, k))

		requireErrorIs(t, b.store.RevokeAPIKey(b.ctx, b.company.ID, "key_"+uuid.NewString(), b.now), comms.ErrNotFound)
		requireErrorIs(t, b.store.RevokeAPIKey(b.ctx, other.ID, k.ID, b.now), comms.ErrNotFound)

		got, err := b.store.APIKeyByHash(b.ctx, k.Hash)
		requireNoError(t, err)
		if got.RevokedAt != nil {
			t.Fatalf("another company revoked the key: RevokedAt = %v", got.RevokedAt)
		}
	})
}

// resourceOps is what the suite needs of one kind of sender resource, so
// that phone numbers and voice agents share their tests.
type resourceOps[T any] struct {
	// make returns a resource of the company with the given id and times.
	make func(companyID, id string, created, updated time.Time) T
	// change returns r with every field other than its keys and times changed.
	change func(r T) T
	id     func(r T) string
	put    func(b *bundle, r T) error
	get    func(b *bundle, companyID, id string) (T, error)
	list   func(b *bundle, companyID string) ([]T, error)
	delete func(b *bundle, companyID, id string) error
}

func (s suite) phoneNumbers(t *testing.T) {
	runResourceTests(t, s, resourceOps[comms.PhoneNumber]{
		make: func(companyID, id string, created, updated time.Time) comms.PhoneNumber {
			return comms.PhoneNumber{
				// A number of its own: a number belongs to one resource.
				ID: id, CompanyID: companyID, E164: numberOf(companyID, id),
				Capabilities: []string{"sms", "voice"}, Label: "Sydney sales",
				CreatedAt: created, UpdatedAt: updated,
			}
		},
		change: func(p comms.PhoneNumber) comms.PhoneNumber {
			p.E164, p.Capabilities, p.Label = numberOf(p.CompanyID, p.ID+"/changed"), []string{"sms"}, "SF support"
			return p
		},
		id:  func(p comms.PhoneNumber) string { return p.ID },
		put: func(b *bundle, p comms.PhoneNumber) error { return b.store.PutPhoneNumber(b.ctx, p) },
		get: func(b *bundle, companyID, id string) (comms.PhoneNumber, error) {
			return b.store.GetPhoneNumber(b.ctx, companyID, id)
		},
		list: func(b *bundle, companyID string) ([]comms.PhoneNumber, error) {
			return b.store.ListPhoneNumbers(b.ctx, companyID)
		},
		delete: func(b *bundle, companyID, id string) error { return b.store.DeletePhoneNumber(b.ctx, companyID, id) },
	})
}

func (s suite) voiceAgents(t *testing.T) {
	runResourceTests(t, s, resourceOps[comms.VoiceAgent]{
		make: func(companyID, id string, created, updated time.Time) comms.VoiceAgent {
			return comms.VoiceAgent{
				ID: id, CompanyID: companyID, Provider: "retell", AgentID: "agent_123",
				PhoneNumberID: "6f1c2b9e-0000-4000-8000-000000000001", Label: "Outbound sales",
				CreatedAt: created, UpdatedAt: updated,
			}
		},
		change: func(a comms.VoiceAgent) comms.VoiceAgent {
			a.Provider, a.AgentID, a.PhoneNumberID, a.Label = "vapi", "agent_456", "6f1c2b9e-0000-4000-8000-000000000002", "Renewals"
			return a
		},
		id:  func(a comms.VoiceAgent) string { return a.ID },
		put: func(b *bundle, a comms.VoiceAgent) error { return b.store.PutVoiceAgent(b.ctx, a) },
		get: func(b *bundle, companyID, id string) (comms.VoiceAgent, error) {
			return b.store.GetVoiceAgent(b.ctx, companyID, id)
		},
		list: func(b *bundle, companyID string) ([]comms.VoiceAgent, error) {
			return b.store.ListVoiceAgents(b.ctx, companyID)
		},
		delete: func(b *bundle, companyID, id string) error { return b.store.DeleteVoiceAgent(b.ctx, companyID, id) },
	})
}

func runResourceTests[T any](t *testing.T, s suite, ops resourceOps[T]) {
	t.Run("PutAndGet", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		r := ops.make(b.company.ID, uuid.NewString(), b.now, b.now)
		requireNoError(t, ops.put(b, r))
		got, err := ops.get(b, b.company.ID, ops.id(r))
		requireNoError(t, err)
		requireEqual(t, r, got)
	})

	t.Run("PutReplacesKeepingCreatedAt", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		id := uuid.NewString()
		first := ops.make(b.company.ID, id, b.now, b.now)
		requireNoError(t, ops.put(b, first))
		later := b.now.Add(time.Hour)
		second := ops.change(ops.make(b.company.ID, id, later, later))
		requireNoError(t, ops.put(b, second))

		want := ops.change(ops.make(b.company.ID, id, b.now, later))
		got, err := ops.get(b, b.company.ID, id)
		requireNoError(t, err)
		requireEqual(t, want, got)
	})

	t.Run("GetUnknown", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		_, err := ops.get(b, b.company.ID, uuid.NewString())
		requireErrorIs(t, err, comms.ErrNotFound)
	})

	t.Run("ListOrderedByID", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		other := b.newCompany(t, 0)
		var want []T
		// Put, and created, in an order that is not the order of ids.
		for i, id := range []string{"b-" + uuid.NewString(), "c-" + uuid.NewString(), "a-" + uuid.NewString()} {
			at := b.now.Add(time.Duration(i) * time.Second)
			r := ops.make(b.company.ID, id, at, at)
			requireNoError(t, ops.put(b, r))
			want = append(want, r)
		}
		requireNoError(t, ops.put(b, ops.make(other.ID, "0-"+uuid.NewString(), b.now, b.now)))
		want = []T{want[2], want[0], want[1]}

		got, err := ops.list(b, b.company.ID)
		requireNoError(t, err)
		if len(got) != len(want) {
			t.Fatalf("listed %d, want %d", len(got), len(want))
		}
		for i := range want {
			requireEqual(t, want[i], got[i])
		}
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		keep := ops.make(b.company.ID, uuid.NewString(), b.now, b.now)
		gone := ops.make(b.company.ID, uuid.NewString(), b.now, b.now)
		requireNoError(t, ops.put(b, keep))
		requireNoError(t, ops.put(b, gone))

		requireNoError(t, ops.delete(b, b.company.ID, ops.id(gone)))
		_, err := ops.get(b, b.company.ID, ops.id(gone))
		requireErrorIs(t, err, comms.ErrNotFound)
		requireErrorIs(t, ops.delete(b, b.company.ID, ops.id(gone)), comms.ErrNotFound)
		requireErrorIs(t, ops.delete(b, b.company.ID, uuid.NewString()), comms.ErrNotFound)

		got, err := ops.list(b, b.company.ID)
		requireNoError(t, err)
		if len(got) != 1 || ops.id(got[0]) != ops.id(keep) {
			t.Fatalf("after delete listed %+v, want only %s", got, ops.id(keep))
		}
	})

	t.Run("TenantIsolation", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		other := b.newCompany(t, 0)
		r := ops.make(b.company.ID, uuid.NewString(), b.now, b.now)
		requireNoError(t, ops.put(b, r))

		_, err := ops.get(b, other.ID, ops.id(r))
		requireErrorIs(t, err, comms.ErrNotFound)
		requireErrorIs(t, ops.delete(b, other.ID, ops.id(r)), comms.ErrNotFound)
		listed, err := ops.list(b, other.ID)
		requireNoError(t, err)
		if len(listed) != 0 {
			t.Fatalf("another company listed %d resources", len(listed))
		}

		// Another company putting the same id gets a resource of its own.
		theirs := ops.change(ops.make(other.ID, ops.id(r), b.now.Add(time.Hour), b.now.Add(time.Hour)))
		requireNoError(t, ops.put(b, theirs))
		got, err := ops.get(b, other.ID, ops.id(r))
		requireNoError(t, err)
		requireEqual(t, theirs, got)

		got, err = ops.get(b, b.company.ID, ops.id(r))
		requireNoError(t, err)
		requireEqual(t, r, got)
	})
}
