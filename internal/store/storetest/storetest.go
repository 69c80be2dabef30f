// Package storetest is the conformance suite of comms.Store: every adapter
// (SQLite, DynamoDB) runs it from its own tests with
//
//	storetest.Run(t, func(t *testing.T) comms.Store { … })
//
// in the style of River's riverdrivertest. Each behaviour is a subtest that
// runs in parallel with the others on a store of its own. The suite tests
// only what the port's doc comments promise, never how an adapter keeps it.
//
// Where the port is silent, the suite pins down these conventions, which
// callers may therefore rely on:
//   - times round-trip to at least millisecond precision and come back in
//     UTC (the suite uses millisecond-truncated UTC times, compares them with
//     time.Time.Equal and checks their location);
//   - JSON held as json.RawMessage (Payload, CancelPolicy) comes back byte
//     for byte as given, and nil when given nil;
//   - an idempotency record is live while now < ExpiresAt: a record whose
//     ExpiresAt equals the new create's CreatedAt is replaced, and
//     GetIdempotency at ExpiresAt finds nothing;
//   - revoking a revoked key succeeds and keeps the first RevokedAt;
//   - PutSettings of an unknown company is ErrNotFound;
//   - a company's sending domains are claimed only by PutSettings: a
//     CreateCompany whose settings declare any is refused;
//   - a phone number or voice agent id is scoped to its company: another
//     company putting the same id gets its own resource;
//   - a row's delivery status filters only sent rows;
//   - a suppression put for an unknown company is ErrNotFound, and a
//     malformed ListSuppressions cursor ErrBadCursor;
//   - FindSMSReceipts returns an empty, non-nil list when nothing matches;
//   - a webhook endpoint's empty EventTypes comes back nil, and an id is
//     scoped to its company (another company putting the same id gets an
//     endpoint of its own); an empty listing is a non-nil list.
//   - a store implements webhooks.DeliveryStore too; a fan-out of no
//     delivery still moves the cursor, and a delivery given twice in one
//     fan-out is written once.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// Run runs the suite. newStore must return a store that no other call of it
// shares (DueCommunications looks across every company), closed by a
// t.Cleanup that newStore registers.
func Run(t *testing.T, newStore func(t *testing.T) comms.Store) {
	t.Helper()
	s := suite{newStore: newStore}
	for _, g := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"Company", s.companies},
		{"APIKey", s.apiKeys},
		{"PhoneNumber", s.phoneNumbers},
		{"VoiceAgent", s.voiceAgents},
		{"CreateCommunication", s.createCommunication},
		{"Idempotency", s.idempotency},
		{"GetCommunication", s.getCommunication},
		{"UpdateCommunication", s.updateCommunication},
		{"Batch", s.batch},
		{"ListCommunications", s.listCommunications},
		{"DueCommunications", s.dueCommunications},
		{"Events", s.events},
		{"CompanyEvents", s.companyEvents},
		{"Errors", s.errors},
		{"Delivery", s.delivery},
		{"SuppressWithChange", s.suppressWithChange},
		{"Suppressions", s.suppressions},
		{"SuppressionsKeepActive", s.suppressionsKeepActive},
		{"ProviderMessageID", s.providerMessageID},
		{"PhoneNumberClaims", s.phoneNumberClaims},
		{"SendingDomains", s.sendingDomains},
		{"SMSReceipts", s.smsReceipts},
		{"EntityEvents", s.entityEvents},
		{"WebhookEndpoints", s.webhookEndpoints},
		{"WebhookDeliveries", s.deliveries},
	} {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			g.run(t)
		})
	}
}

type suite struct {
	newStore func(t *testing.T) comms.Store
}

// bundle is what most subtests start from: a fresh store holding one
// company with credits.
type bundle struct {
	ctx     context.Context
	store   comms.Store
	company comms.Company
	// now is a millisecond-truncated UTC time to build fixtures around.
	now time.Time
}

// fixtureNow is the time fixtures are built around: fixed, so that no test
// depends on the day it runs.
var fixtureNow = time.Date(2026, 12, 1, 9, 30, 15, 123_000_000, time.UTC)

// startCredits is the balance of the bundle's company.
const startCredits = 1000

func (s suite) setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{
		ctx:   t.Context(),
		store: s.newStore(t),
		now:   fixtureNow,
	}
	b.company = b.newCompany(t, startCredits)
	return b
}

// newCompany stores a company with a unique id and the given balance.
func (b *bundle) newCompany(t *testing.T, credits int64) comms.Company {
	t.Helper()
	c := comms.Company{
		ID:        "co_" + uuid.NewString(),
		Credits:   credits,
		Settings:  comms.DefaultSettings(),
		CreatedAt: b.now,
	}
	requireNoError(t, b.store.CreateCompany(b.ctx, c))
	return c
}

// credits returns the company's balance.
func (b *bundle) credits(t *testing.T, companyID string) int64 {
	t.Helper()
	c, err := b.store.GetCompany(b.ctx, companyID)
	requireNoError(t, err)
	return c.Credits
}

// comm returns a pending email row of the company scheduled at at.
func (b *bundle) comm(companyID string, at time.Time) comms.Communication {
	return comms.Communication{
		ID:            uuid.NewString(),
		CompanyID:     companyID,
		Channel:       comms.ChannelEmail,
		Status:        comms.StatusPending,
		ScheduledFor:  at,
		NextAttemptAt: at,
		Timezone:      "UTC",
		Payload:       json.RawMessage(`{"to_email":"ada@example.com","subject":"Hi","html_body":"<p>Hi</p>"}`),
		MaxAttempts:   3,
		Source:        comms.SourceAPI,
		CreatedAt:     b.now,
		UpdatedAt:     b.now,
		Token:         uuid.NewString(),
	}
}

// fullComm returns a row with every field set to a non-zero value.
func (b *bundle) fullComm(companyID string) comms.Communication {
	sent := b.now.Add(3 * time.Minute)
	cancelled := b.now.Add(4 * time.Minute)
	return comms.Communication{
		ID:                   uuid.NewString(),
		CompanyID:            companyID,
		Channel:              comms.ChannelVoice,
		Status:               comms.StatusProcessing,
		ScheduledFor:         b.now.Add(time.Hour),
		NextAttemptAt:        b.now.Add(90 * time.Minute),
		Timezone:             "Australia/Sydney",
		RespectBusinessHours: true,
		TimezoneSource:       comms.TimezoneFromPhoneNumber,
		Timezones:            []string{"America/Boise", "America/Los_Angeles"},
		// Spacing and key order are not canonical on purpose: the bytes
		// must come back as given.
		Payload:           json.RawMessage("{\"voice_agent_outbound_config_id\": \"a1\",\n  \"to_number\":\"+61412345678\", \"dynamic_variables\": {\"z\": 1, \"a\": [true, null, 1.50]}}"),
		ContactID:         uuid.NewString(),
		CustomerID:        uuid.NewString(),
		DealID:            uuid.NewString(),
		RelatedEntityType: "ticket",
		RelatedEntityID:   uuid.NewString(),
		CancelPolicy:      json.RawMessage(`{"max_delay_minutes": 30, "cancel_on": ["reply"], "x_custom": {"k": "v"}}`),
		AttemptCount:      1,
		MaxAttempts:       2,
		LastError:         &comms.LastError{Code: "provider_timeout", Message: "no answer from provider — réessayer ✓"},
		Source:            comms.SourceCadence,
		Cadence:           &comms.Cadence{RootID: uuid.NewString(), Attempt: 2, MaxAttempts: 3},
		Outcome:           &comms.Outcome{Connected: true, TalkSeconds: comms.Seconds(12.5), TalkSecondsSource: comms.TalkFromTranscript, EndedReason: "customer_hangup"},
		ProviderMessageID: "call_" + uuid.NewString(),
		CreatedAt:         b.now,
		UpdatedAt:         b.now.Add(time.Second),
		SentAt:            &sent,
		CancelledAt:       &cancelled,
		CancelReason:      comms.CancelOnEvent("replied"),
		EventSeq:          7,
		Token:             uuid.NewString(),
		LeaseUntil:        b.now.Add(2 * time.Minute),
		Version:           42,
	}
}

// create stores c and returns it as the store should now hold it.
func (b *bundle) create(t *testing.T, c comms.Communication) comms.Communication {
	t.Helper()
	_, err := b.store.CreateCommunication(b.ctx, comms.Change{Row: c}, nil)
	requireNoError(t, err)
	c.Version = 1
	return c
}

// idem returns an idempotency record for c created at at.
func idem(c comms.Communication, key string, at time.Time) *comms.Idempotency {
	return &comms.Idempotency{
		CompanyID:       c.CompanyID,
		Key:             key,
		RequestHash:     "hash-of-" + c.ID,
		CommunicationID: c.ID,
		CreatedAt:       at,
		ExpiresAt:       at.Add(comms.IdempotencyTTL),
	}
}

// parallel runs fn(i) for i in [0, n) on n goroutines released at once and
// returns their errors.
func parallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// count tallies errs: how many are nil and how many match target.
func count(errs []error, target error) (ok, matched int, other []error) {
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, target):
			matched++
		default:
			other = append(other, err)
		}
	}
	return ok, matched, other
}

func requireNoError(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func requireErrorIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

// requireEqual compares two structs field by field: times with Equal, and
// got's must be in UTC (through pointers too), everything else with reflect.DeepEqual, so that a
// field added to a domain type is compared without touching the suite.
func requireEqual[T any](t *testing.T, want, got T) {
	t.Helper()
	wv, gv := reflect.ValueOf(want), reflect.ValueOf(got)
	typ := wv.Type()
	for i := range typ.NumField() {
		w, g := wv.Field(i).Interface(), gv.Field(i).Interface()
		if !fieldEqual(w, g) {
			t.Errorf("%s.%s = %s, want %s", typ.Name(), typ.Field(i).Name, show(g), show(w))
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

func fieldEqual(w, g any) bool {
	switch w := w.(type) {
	case time.Time:
		g := g.(time.Time)
		return w.Equal(g) && g.Location() == time.UTC
	case *time.Time:
		g := g.(*time.Time)
		if w == nil || g == nil {
			return w == nil && g == nil
		}
		return w.Equal(*g) && g.Location() == time.UTC
	}
	return reflect.DeepEqual(w, g)
}

func show(v any) string {
	switch v := v.(type) {
	case json.RawMessage:
		if v == nil {
			return "nil"
		}
		return fmt.Sprintf("%q", string(v))
	case time.Time:
		return v.Format(time.RFC3339Nano) + " (" + v.Location().String() + ")"
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return "nil"
		}
		return "&" + show(rv.Elem().Interface())
	}
	return fmt.Sprintf("%#v", v)
}

// ids returns the ids of rows, in order.
func ids(rows []comms.Communication) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.ID
	}
	return out
}

func requireIDs(t *testing.T, want, got []string) {
	t.Helper()
	if !slices.Equal(want, got) {
		t.Fatalf("ids =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
