package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

func newRow(company string, now time.Time) comms.Change {
	return comms.Create(comms.Communication{
		ID: uuid.NewString(), CompanyID: company, Channel: comms.ChannelEmail,
		ScheduledFor: now.Add(time.Hour), NextAttemptAt: now.Add(time.Hour),
		Payload: json.RawMessage(`{"to_email":"a@example.com"}`), Source: comms.SourceAPI,
	}, now)
}

// waitQueued waits until n creates are queued behind the commit under way.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second) // a bound for a broken build, not a timing assertion
	for {
		s.creates.mu.Lock()
		got, leading := len(s.creates.queue), s.creates.leading
		s.creates.mu.Unlock()
		if leading && got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d creates queued (leading %v), want %d", got, leading, n)
		}
		runtime.Gosched()
	}
}

// TestGroupCommitKeepsEachCreatesOwnResult holds the writer so that a set
// of concurrent creates is committed as one group, and checks that each got
// the answer it would have had alone: credits run out for some, one
// idempotency key is taken once, an unknown company and a duplicate id are
// refused — and those refusals leave nothing behind while the others commit.
func TestGroupCommitKeepsEachCreatesOwnResult(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "dispatcher.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC().Truncate(time.Millisecond)
	for id, credits := range map[string]int64{"co_few": 3, "co_many": 100} {
		if err := s.CreateCompany(ctx, comms.Company{ID: id, Credits: credits, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}

	// Hold the one writer connection; the first create leads and waits for
	// it, the rest queue behind it.
	conn, err := s.w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		credits int64
		err     error
	}
	launch := func(ch comms.Change, idem *comms.Idempotency) chan result {
		out := make(chan result, 1)
		go func() {
			c, err := s.CreateCommunication(ctx, ch, idem)
			out <- result{c, err}
		}()
		return out
	}
	first := launch(newRow("co_many", now), nil)
	waitQueued(t, s, 0)

	few := make([]comms.Change, 6) // 6 creates for 3 credits, two of them with the key "k"
	fewOut := make([]chan result, len(few))
	for i := range few {
		few[i] = newRow("co_few", now)
		var idem *comms.Idempotency
		if i < 2 {
			idem = &comms.Idempotency{CompanyID: "co_few", Key: "k", RequestHash: "h", CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
		}
		fewOut[i] = launch(few[i], idem)
	}
	ghost := launch(newRow("co_ghost", now), nil)
	dup := newRow("co_many", now)
	dupOut := []chan result{launch(dup, nil), launch(dup, nil)}
	waitQueued(t, s, len(few)+3)
	groupsBefore := s.creates.groups.Load()
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}

	if r := <-first; r.err != nil || r.credits != 99 {
		t.Fatalf("the create that led: %+v", r)
	}
	created, noCredits, keyTaken, keyed := 0, 0, 0, 0
	for i, out := range fewOut {
		r := <-out
		_, getErr := s.GetCommunication(ctx, "co_few", few[i].Row.ID)
		switch {
		case r.err == nil:
			created++
			if getErr != nil {
				t.Fatalf("create %d answered ok but its row is missing: %v", i, getErr)
			}
			evs, _, err := s.ListEvents(ctx, "co_few", few[i].Row.ID, 0, 10)
			if err != nil || len(evs) != 1 || evs[0].Type != comms.EventCreated {
				t.Fatalf("create %d: events %+v, %v", i, evs, err)
			}
			if i < 2 {
				keyed++
			}
		case errors.Is(r.err, comms.ErrInsufficientCredits):
			noCredits++
		case errors.Is(r.err, comms.ErrIdempotencyKeyExists):
			keyTaken++
		default:
			t.Fatalf("create %d: %v", i, r.err)
		}
		if r.err != nil && !errors.Is(getErr, comms.ErrNotFound) {
			t.Fatalf("refused create %d left a row: %v", i, getErr)
		}
	}
	if created != 3 || noCredits+keyTaken != 3 || keyed > 1 || keyed+keyTaken > 2 {
		t.Fatalf("%d created, %d out of credits, %d key taken (%d keyed created); want 3 created, the key used once at most",
			created, noCredits, keyTaken, keyed)
	}
	if co, err := s.GetCompany(ctx, "co_few"); err != nil || co.Credits != 0 {
		t.Fatalf("co_few: %+v, %v; want 0 credits", co, err)
	}
	if r := <-ghost; !errors.Is(r.err, comms.ErrNotFound) {
		t.Fatalf("unknown company: %v, want not found", r.err)
	}
	a, b := <-dupOut[0], <-dupOut[1]
	if (a.err == nil) == (b.err == nil) || !errors.Is(errors.Join(a.err, b.err), comms.ErrAlreadyExists) {
		t.Fatalf("the same id twice: %v and %v; want one created, one already exists", a.err, b.err)
	}
	if co, err := s.GetCompany(ctx, "co_many"); err != nil || co.Credits != 98 {
		t.Fatalf("co_many: %+v, %v; want 98 credits (the leader and one of the duplicates)", co, err)
	}
	if got := s.creates.groups.Load() - groupsBefore; got != 1 {
		t.Fatalf("the queued creates took %d commits, want 1 group", got)
	}
}

// TestDurabilityPragma checks what each Durability sets on the writer.
func TestDurabilityPragma(t *testing.T) {
	t.Parallel()
	for d, want := range map[Durability]int{"": 2, DurabilityFull: 2, DurabilityNormal: 1} {
		s, err := OpenWith(t.Context(), filepath.Join(t.TempDir(), "dispatcher.db"), Options{Durability: d})
		if err != nil {
			t.Fatal(err)
		}
		var got int
		if err := s.w.QueryRowContext(t.Context(), "PRAGMA synchronous").Scan(&got); err != nil || got != want {
			t.Errorf("durability %q: synchronous = %d (%v), want %d", d, got, err, want)
		}
		s.Close()
	}
	if _, err := OpenWith(t.Context(), filepath.Join(t.TempDir(), "x.db"), Options{Durability: "off"}); err == nil {
		t.Error("durability off was accepted")
	}
}
