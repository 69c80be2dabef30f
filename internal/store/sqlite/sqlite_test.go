package sqlite_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/store/sqlite"
	"github.com/dispatcherhq/dispatcher/internal/store/storetest"
)

func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) comms.Store {
		return open(t, filepath.Join(t.TempDir(), "dispatcher.db"))
	})
}

func TestOpenCreatesParentDirectory(t *testing.T) {
	t.Parallel()
	open(t, filepath.Join(t.TempDir(), "a", "b", "dispatcher.db"))
}

func TestOpenRejectsAPathWithAQuery(t *testing.T) {
	t.Parallel()
	if s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "x.db?mode=ro")); err == nil {
		s.Close()
		t.Fatal("Open accepted a path holding '?'")
	}
}

func TestDataSurvivesReopen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "dispatcher.db")
	now := time.Now().UTC().Truncate(time.Millisecond)
	c := comms.Communication{
		ID: uuid.NewString(), CompanyID: "co_1", Channel: comms.ChannelEmail, Status: comms.StatusPending,
		ScheduledFor: now, NextAttemptAt: now, Payload: json.RawMessage(`{"to_email":"a@example.com"}`),
		Source: comms.SourceAPI, CreatedAt: now, UpdatedAt: now,
	}

	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateCompany(ctx, comms.Company{ID: "co_1", Credits: 3, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateCommunication(ctx, comms.Change{Row: c}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	co, err := s.GetCompany(ctx, "co_1")
	if err != nil || co.Credits != 2 {
		t.Fatalf("after reopen: company %+v, %v; want 2 credits", co, err)
	}
	got, err := s.GetCommunication(ctx, "co_1", c.ID)
	if err != nil || string(got.Payload) != string(c.Payload) || !got.ScheduledFor.Equal(now) {
		t.Fatalf("after reopen: row %+v, %v", got, err)
	}
}

func TestMigrationIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "dispatcher.db")
	first := open(t, path)
	if err := first.CreateCompany(ctx, comms.Company{ID: "co_1", Credits: 1}); err != nil {
		t.Fatal(err)
	}
	// A second Open of the same file, while the first is still open,
	// migrates nothing and sees the same data.
	second := open(t, path)
	if _, err := second.GetCompany(ctx, "co_1"); err != nil {
		t.Fatal(err)
	}

	// Opens racing on a fresh file migrate it exactly once.
	path = filepath.Join(t.TempDir(), "race.db")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			s, err := sqlite.Open(ctx, path)
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	s := open(t, path)
	if err := s.CreateCompany(ctx, comms.Company{ID: "co_1", Credits: 1}); err != nil {
		t.Fatal(err)
	}
}

func TestErrorsNameTheAdapter(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "dispatcher.db"))
	_, err := s.GetCompany(t.Context(), "nope")
	if !errors.Is(err, comms.ErrNotFound) || err.Error() != "sqlite.GetCompany: not found" {
		t.Fatalf("error = %q", err)
	}
}

func BenchmarkCreateCommunication(b *testing.B) {
	setup := func(b *testing.B) (*sqlite.Store, comms.Communication) {
		s := open(b, filepath.Join(b.TempDir(), "dispatcher.db"))
		if err := s.CreateCompany(context.Background(), comms.Company{ID: "co_bench", Credits: 1 << 62}); err != nil {
			b.Fatal(err)
		}
		now := time.Now().UTC()
		return s, comms.Communication{
			CompanyID: "co_bench", Channel: comms.ChannelEmail, Status: comms.StatusPending,
			ScheduledFor: now.Add(time.Hour), NextAttemptAt: now.Add(time.Hour), Timezone: "UTC",
			Payload:     json.RawMessage(`{"to_email":"ada@example.com","subject":"Hello","html_body":"<p>Hello, Ada</p>"}`),
			MaxAttempts: 3, Source: comms.SourceAPI, CreatedAt: now, UpdatedAt: now, Token: "t",
		}
	}
	// create stores c under a new id with its created event and an
	// idempotency key, as the API does.
	create := func(s *sqlite.Store, c comms.Communication) error {
		c.ID = uuid.NewString()
		idem := &comms.Idempotency{Key: c.ID, RequestHash: "h", CreatedAt: c.CreatedAt, ExpiresAt: c.CreatedAt.Add(comms.IdempotencyTTL)}
		_, err := s.CreateCommunication(context.Background(), comms.Create(c, c.CreatedAt), idem)
		return err
	}

	b.Run("Serial", func(b *testing.B) {
		s, c := setup(b)
		for b.Loop() {
			if err := create(s, c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		s, c := setup(b)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := create(s, c); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// TestFeedCursorIsPerCompany: a company's feed positions count its own
// events only, so a cursor tells nothing of another tenant's activity.
func TestFeedCursorIsPerCompany(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "feed.db"))
	ctx := t.Context()
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for _, co := range []string{"busy", "quiet"} {
		if err := s.CreateCompany(ctx, comms.Company{ID: co, Credits: 100, Settings: comms.DefaultSettings(), CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	create := func(co, id string) {
		row := comms.Communication{ID: id, CompanyID: co, Channel: comms.ChannelEmail, ScheduledFor: at, NextAttemptAt: at, MaxAttempts: 3, Source: comms.SourceAPI}
		if _, err := s.CreateCommunication(ctx, comms.Create(row, at), nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		create("busy", fmt.Sprintf("00000000-0000-4000-8000-00000000000%d", i))
	}
	create("quiet", "00000000-0000-4000-8000-0000000000aa")
	_, next, _, err := s.ListCompanyEvents(ctx, "quiet", comms.EventFilter{Limit: 10})
	if err != nil || next != "1" {
		t.Fatalf("quiet's first cursor = %q, %v; want 1 whatever other companies wrote", next, err)
	}
}
