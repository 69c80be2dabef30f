package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// concurrency is how many goroutines the race tests start.
const concurrency = 20

func (s suite) createCommunication(t *testing.T) {
	t.Run("DebitsOneCreditAndStoresVersion1", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		c := b.comm(b.company.ID, b.now.Add(time.Hour))
		c.Version = 9
		credits, err := b.store.CreateCommunication(b.ctx, comms.Change{Row: c}, nil)
		requireNoError(t, err)
		if credits != startCredits-1 {
			t.Fatalf("credits remaining = %d, want %d", credits, startCredits-1)
		}
		if got := b.credits(t, b.company.ID); got != startCredits-1 {
			t.Fatalf("stored balance = %d, want %d", got, startCredits-1)
		}
		got, err := b.store.GetCommunication(b.ctx, b.company.ID, c.ID)
		requireNoError(t, err)
		c.Version = 1
		requireEqual(t, c, got)
	})

	t.Run("EveryFieldRoundTrips", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		c := b.fullComm(b.company.ID)
		_, err := b.store.CreateCommunication(b.ctx, comms.Change{Row: c}, nil)
		requireNoError(t, err)
		got, err := b.store.GetCommunication(b.ctx, b.company.ID, c.ID)
		requireNoError(t, err)
		c.Version = 1
		requireEqual(t, c, got)
	})

	t.Run("AbsentFieldsStayAbsent", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		c := comms.Communication{
			ID:           uuid.NewString(),
			CompanyID:    b.company.ID,
			Channel:      comms.ChannelSMS,
			Status:       comms.StatusPending,
			ScheduledFor: b.now,
			Source:       comms.SourceAPI,
		}
		_, err := b.store.CreateCommunication(b.ctx, comms.Change{Row: c}, nil)
		requireNoError(t, err)
		got, err := b.store.GetCommunication(b.ctx, b.company.ID, c.ID)
		requireNoError(t, err)
		c.Version = 1
		requireEqual(t, c, got)
		if !got.LeaseUntil.IsZero() || !got.NextAttemptAt.IsZero() || !got.CreatedAt.IsZero() {
			t.Fatalf("zero times came back non-zero: %+v", got)
		}
	})

	t.Run("InsufficientCreditsWritesNothing", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		broke := b.newCompany(t, 0)
		c := b.comm(broke.ID, b.now.Add(time.Hour))
		_, err := b.store.CreateCommunication(b.ctx, comms.Change{Row: c}, idem(c, "key-1", b.now))
		requireErrorIs(t, err, comms.ErrInsufficientCredits)

		_, err = b.store.GetCommunication(b.ctx, broke.ID, c.ID)
		requireErrorIs(t, err, comms.ErrNotFound)
		_, err = b.store.GetIdempotency(b.ctx, broke.ID, "key-1", b.now)
		requireErrorIs(t, err, comms.ErrNotFound)
		if got := b.credits(t, broke.ID); got != 0 {
			t.Fatalf("balance = %d, want 0", got)
		}
	})

	t.Run("DrainsToZeroThenRefuses", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		co := b.newCompany(t, 2)
		for want := int64(1); want >= 0; want-- {
			credits, err := b.store.CreateCommunication(b.ctx, comms.Change{Row: b.comm(co.ID, b.now)}, nil)
			requireNoError(t, err)
			if credits != want {
				t.Fatalf("credits remaining = %d, want %d", credits, want)
			}
		}
		_, err := b.store.CreateCommunication(b.ctx, comms.Change{Row: b.comm(co.ID, b.now)}, nil)
		requireErrorIs(t, err, comms.ErrInsufficientCredits)
	})

	t.Run("DuplicateID", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		first := b.create(t, b.comm(b.company.ID, b.now.Add(time.Hour)))

		dup := b.fullComm(b.company.ID)
		dup.ID = first.ID
		_, err := b.store.CreateCommunication(b.ctx, comms.Change{Row: dup}, idem(dup, "dup-key", b.now))
		requireErrorIs(t, err, comms.ErrAlreadyExists)

		got, err := b.store.GetCommunication(b.ctx, b.company.ID, first.ID)
		requireNoError(t, err)
		requireEqual(t, first, got)
		if got := b.credits(t, b.company.ID); got != startCredits-1 {
			t.Fatalf("balance = %d after a duplicate, want %d", got, startCredits-1)
		}
		_, err = b.store.GetIdempotency(b.ctx, b.company.ID, "dup-key", b.now)
		requireErrorIs(t, err, comms.ErrNotFound)
	})

	t.Run("UnknownCompany", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		c := b.comm("co_"+uuid.NewString(), b.now)
		_, err := b.store.CreateCommunication(b.ctx, comms.Change{Row: c}, idem(c, "k", b.now))
		requireErrorIs(t, err, comms.ErrNotFound)
	})

	t.Run("ConcurrentCreatesDrainExactly", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		const credits = 5
		co := b.newCompany(t, credits)
		rows := make([]comms.Communication, concurrency)
		for i := range rows {
			rows[i] = b.comm(co.ID, b.now.Add(time.Duration(i)*time.Second))
		}
		errs := parallel(concurrency, func(i int) error {
			_, err := b.store.CreateCommunication(b.ctx, comms.Change{Row: rows[i]}, nil)
			return err
		})
		ok, refused, other := count(errs, comms.ErrInsufficientCredits)
		if ok != credits || refused != concurrency-credits || len(other) > 0 {
			t.Fatalf("%d created, %d refused, other errors %v; want %d created", ok, refused, other, credits)
		}
		if got := b.credits(t, co.ID); got != 0 {
			t.Fatalf("balance = %d, want 0", got)
		}
		listed, _, err := b.store.ListCommunications(b.ctx, co.ID, comms.ListFilter{Limit: 100})
		requireNoError(t, err)
		if len(listed) != credits {
			t.Fatalf("%d rows stored, want %d", len(listed), credits)
		}
		for _, r := range listed {
			i := int(r.ScheduledFor.Sub(b.now) / time.Second)
			if errs[i] != nil {
				t.Fatalf("row %s stored although its create failed with %v", r.ID, errs[i])
			}
		}
	})
}

func (s suite) idempotency(t *testing.T) {
	t.Run("RecordStoredWithCreditsRemaining", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		c := b.comm(b.company.ID, b.now.Add(time.Hour))
		rec := idem(c, "order-42", b.now)
		credits, err := b.store.CreateCommunication(b.ctx, comms.Change{Row: c}, rec)
		requireNoError(t, err)

		got, err := b.store.GetIdempotency(b.ctx, b.company.ID, "order-42", b.now.Add(time.Minute))
		requireNoError(t, err)
		want := *rec
		want.CreditsRemaining = credits
		requireEqual(t, want, got)
	})

	t.Run("SecondCreateWithSameKeyWritesNothing", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		first := b.comm(b.company.ID, b.now.Add(time.Hour))
		rec := idem(first, "k", b.now)
		credits, err := b.store.CreateCommunication(b.ctx, comms.Change{Row: first}, rec)
		requireNoError(t, err)

		second := b.comm(b.company.ID, b.now.Add(2*time.Hour))
		_, err = b.store.CreateCommunication(b.ctx, comms.Change{Row: second}, idem(second, "k", b.now.Add(time.Hour)))
		requireErrorIs(t, err, comms.ErrIdempotencyKeyExists)

		_, err = b.store.GetCommunication(b.ctx, b.company.ID, second.ID)
		requireErrorIs(t, err, comms.ErrNotFound)
		if got := b.credits(t, b.company.ID); got != credits {
			t.Fatalf("balance = %d, want %d (no second debit)", got, credits)
		}
		got, err := b.store.GetIdempotency(b.ctx, b.company.ID, "k", b.now.Add(time.Hour))
		requireNoError(t, err)
		want := *rec
		want.CreditsRemaining = credits
		requireEqual(t, want, got)
	})

	t.Run("ExpiredRecordIsReplaced", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		for name, gap := range map[string]time.Duration{"After": time.Millisecond, "AtExpiresAt": 0} {
			first := b.comm(b.company.ID, b.now.Add(time.Hour))
			firstRec := idem(first, "k-"+name, b.now)
			_, err := b.store.CreateCommunication(b.ctx, comms.Change{Row: first}, firstRec)
			requireNoError(t, err)

			second := b.comm(b.company.ID, b.now.Add(time.Hour))
			secondRec := idem(second, "k-"+name, firstRec.ExpiresAt.Add(gap))
			credits, err := b.store.CreateCommunication(b.ctx, comms.Change{Row: second}, secondRec)
			if err != nil {
				t.Fatalf("%s: create after expiry: %v", name, err)
			}
			got, err := b.store.GetIdempotency(b.ctx, b.company.ID, "k-"+name, secondRec.CreatedAt)
			requireNoError(t, err)
			want := *secondRec
			want.CreditsRemaining = credits
			requireEqual(t, want, got)
			_, err = b.store.GetCommunication(b.ctx, b.company.ID, second.ID)
			requireNoError(t, err)
		}
	})

	t.Run("GetExpiredOrUnknown", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		c := b.comm(b.company.ID, b.now.Add(time.Hour))
		rec := idem(c, "k", b.now)
		_, err := b.store.CreateCommunication(b.ctx, comms.Change{Row: c}, rec)
		requireNoError(t, err)

		_, err = b.store.GetIdempotency(b.ctx, b.company.ID, "k", rec.ExpiresAt.Add(-time.Millisecond))
		requireNoError(t, err)
		_, err = b.store.GetIdempotency(b.ctx, b.company.ID, "k", rec.ExpiresAt)
		requireErrorIs(t, err, comms.ErrNotFound)
		_, err = b.store.GetIdempotency(b.ctx, b.company.ID, "k", rec.ExpiresAt.Add(time.Hour))
		requireErrorIs(t, err, comms.ErrNotFound)
		_, err = b.store.GetIdempotency(b.ctx, b.company.ID, "other", b.now)
		requireErrorIs(t, err, comms.ErrNotFound)
	})

	t.Run("KeysArePerCompany", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		other := b.newCompany(t, 10)
		mine := b.comm(b.company.ID, b.now)
		theirs := b.comm(other.ID, b.now)
		_, err := b.store.CreateCommunication(b.ctx, comms.Change{Row: mine}, idem(mine, "shared", b.now))
		requireNoError(t, err)
		_, err = b.store.CreateCommunication(b.ctx, comms.Change{Row: theirs}, idem(theirs, "shared", b.now))
		requireNoError(t, err)

		for _, c := range []comms.Communication{mine, theirs} {
			got, err := b.store.GetIdempotency(b.ctx, c.CompanyID, "shared", b.now)
			requireNoError(t, err)
			if got.CommunicationID != c.ID || got.CompanyID != c.CompanyID {
				t.Fatalf("company %s: record %+v, want communication %s", c.CompanyID, got, c.ID)
			}
		}
		_, err = b.store.GetIdempotency(b.ctx, b.newCompany(t, 0).ID, "shared", b.now)
		requireErrorIs(t, err, comms.ErrNotFound)
	})

	t.Run("ConcurrentCreatesWithSameKey", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		rows := make([]comms.Communication, concurrency)
		for i := range rows {
			rows[i] = b.comm(b.company.ID, b.now.Add(time.Hour))
		}
		errs := parallel(concurrency, func(i int) error {
			_, err := b.store.CreateCommunication(b.ctx, comms.Change{Row: rows[i]}, idem(rows[i], "race", b.now))
			return err
		})
		ok, refused, other := count(errs, comms.ErrIdempotencyKeyExists)
		if ok != 1 || refused != concurrency-1 || len(other) > 0 {
			t.Fatalf("%d created, %d refused, other errors %v; want exactly 1 created", ok, refused, other)
		}
		if got := b.credits(t, b.company.ID); got != startCredits-1 {
			t.Fatalf("balance = %d, want %d", got, startCredits-1)
		}
		rec, err := b.store.GetIdempotency(b.ctx, b.company.ID, "race", b.now)
		requireNoError(t, err)
		for i, r := range rows {
			_, err := b.store.GetCommunication(b.ctx, b.company.ID, r.ID)
			switch {
			case errs[i] == nil && (err != nil || rec.CommunicationID != r.ID):
				t.Fatalf("winner %s: get %v, record points at %s", r.ID, err, rec.CommunicationID)
			case errs[i] != nil:
				requireErrorIs(t, err, comms.ErrNotFound)
			}
		}
	})
}

func (s suite) getCommunication(t *testing.T) {
	t.Run("Unknown", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		_, err := b.store.GetCommunication(b.ctx, b.company.ID, uuid.NewString())
		requireErrorIs(t, err, comms.ErrNotFound)
	})

	t.Run("OtherCompanysRow", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		other := b.newCompany(t, 0)
		c := b.create(t, b.comm(b.company.ID, b.now))
		_, err := b.store.GetCommunication(b.ctx, other.ID, c.ID)
		requireErrorIs(t, err, comms.ErrNotFound)
	})
}

func (s suite) updateCommunication(t *testing.T) {
	// claimed is c as a dispatcher claiming it would write it.
	claimed := func(b *bundle, c comms.Communication) comms.Communication {
		c.Status = comms.StatusProcessing
		c.AttemptCount++
		c.LeaseUntil = b.now.Add(2 * time.Minute)
		c.Token = uuid.NewString()
		c.UpdatedAt = b.now.Add(time.Second)
		return c
	}

	t.Run("InsertWithoutDebitIsIdempotentByID", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		parent := b.create(t, b.comm(b.company.ID, b.now.Add(time.Hour)))
		c := b.comm(b.company.ID, b.now.Add(time.Hour))
		stored, _, err := b.store.UpdateCommunication(b.ctx, comms.Change{Row: parent, Insert: &comms.Change{Row: c}}, false)
		requireNoError(t, err)
		_, _, err = b.store.UpdateCommunication(b.ctx, comms.Change{Row: stored, Insert: &comms.Change{Row: c}}, false)
		requireErrorIs(t, err, comms.ErrAlreadyExists)
		// The losing write wrote nothing: the parent kept its version.
		again, err := b.store.GetCommunication(b.ctx, b.company.ID, parent.ID)
		requireNoError(t, err)
		if again.Version != stored.Version {
			t.Fatalf("parent version %d after a failed insert, want %d", again.Version, stored.Version)
		}
		got, err := b.store.GetCommunication(b.ctx, b.company.ID, c.ID)
		requireNoError(t, err)
		c.Version = 1
		requireEqual(t, c, got)
		if credits := b.credits(t, b.company.ID); credits != startCredits-1 {
			t.Fatalf("credits = %d after a system insert, want %d (only the parent's create debits)", credits, startCredits-1)
		}
	})

	t.Run("CompareAndSwapBumpsVersion", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		c := b.create(t, b.comm(b.company.ID, b.now.Add(time.Hour)))
		next := claimed(b, c)
		stored, credits, err := b.store.UpdateCommunication(b.ctx, comms.Change{Row: next}, false)
		requireNoError(t, err)
		if credits != 0 {
			t.Fatalf("credits = %d; without a debit the balance is not read and 0 is reported", credits)
		}
		next.Version = 2
		requireEqual(t, next, stored)
		got, err := b.store.GetCommunication(b.ctx, b.company.ID, c.ID)
		requireNoError(t, err)
		requireEqual(t, next, got)

		again := claimed(b, got)
		stored, _, err = b.store.UpdateCommunication(b.ctx, comms.Change{Row: again}, false)
		requireNoError(t, err)
		if stored.Version != 3 {
			t.Fatalf("version = %d after the second update, want 3", stored.Version)
		}
	})

	t.Run("EveryFieldIsReplaced", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		c := b.create(t, b.comm(b.company.ID, b.now.Add(time.Hour)))
		full := b.fullComm(b.company.ID)
		full.ID, full.Version = c.ID, c.Version
		stored, _, err := b.store.UpdateCommunication(b.ctx, comms.Change{Row: full}, false)
		requireNoError(t, err)
		got, err := b.store.GetCommunication(b.ctx, b.company.ID, c.ID)
		requireNoError(t, err)
		full.Version = 2
		requireEqual(t, full, got)
		requireEqual(t, got, stored)

		// And back: optional fields are cleared.
		c.Version = 2
		_, _, err = b.store.UpdateCommunication(b.ctx, comms.Change{Row: c}, false)
		requireNoError(t, err)
		got, err = b.store.GetCommunication(b.ctx, b.company.ID, c.ID)
		requireNoError(t, err)
		c.Version = 3
		requireEqual(t, c, got)
	})

	t.Run("StaleVersion", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		c := b.create(t, b.comm(b.company.ID, b.now.Add(time.Hour)))
		winner, _, err := b.store.UpdateCommunication(b.ctx, comms.Change{Row: claimed(b, c)}, false)
		requireNoError(t, err)

		loser := c
		loser.Status = comms.StatusCancelled
		_, _, err = b.store.UpdateCommunication(b.ctx, comms.Change{Row: loser}, true)
		requireErrorIs(t, err, comms.ErrConflict)
		got, err := b.store.GetCommunication(b.ctx, b.company.ID, c.ID)
		requireNoError(t, err)
		requireEqual(t, winner, got)
		if got := b.credits(t, b.company.ID); got != startCredits-1 {
			t.Fatalf("balance = %d after a lost update, want %d", got, startCredits-1)
		}
	})

	t.Run("UnknownOrOtherCompany", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		other := b.newCompany(t, 10)
		c := b.create(t, b.comm(b.company.ID, b.now.Add(time.Hour)))

		unknown := b.comm(b.company.ID, b.now)
		unknown.Version = 1
		_, _, err := b.store.UpdateCommunication(b.ctx, comms.Change{Row: unknown}, false)
		requireErrorIs(t, err, comms.ErrNotFound)

		hijack := claimed(b, c)
		hijack.CompanyID = other.ID
		_, _, err = b.store.UpdateCommunication(b.ctx, comms.Change{Row: hijack}, true)
		requireErrorIs(t, err, comms.ErrNotFound)
		got, err := b.store.GetCommunication(b.ctx, b.company.ID, c.ID)
		requireNoError(t, err)
		requireEqual(t, c, got)
		if got := b.credits(t, other.ID); got != 10 {
			t.Fatalf("other company's balance = %d, want 10", got)
		}
	})

	t.Run("Debit", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		c := b.create(t, b.comm(b.company.ID, b.now.Add(time.Hour)))
		c.ScheduledFor = b.now.Add(3 * time.Hour)
		_, credits, err := b.store.UpdateCommunication(b.ctx, comms.Change{Row: c}, true)
		requireNoError(t, err)
		if credits != startCredits-2 {
			t.Fatalf("credits = %d, want %d", credits, startCredits-2)
		}
		if got := b.credits(t, b.company.ID); got != startCredits-2 {
			t.Fatalf("balance = %d, want %d", got, startCredits-2)
		}
	})

	t.Run("DebitAtZeroWritesNothing", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		co := b.newCompany(t, 1)
		c := b.create(t, b.comm(co.ID, b.now.Add(time.Hour)))
		edit := c
		edit.ScheduledFor = b.now.Add(3 * time.Hour)
		_, _, err := b.store.UpdateCommunication(b.ctx, comms.Change{Row: edit}, true)
		requireErrorIs(t, err, comms.ErrInsufficientCredits)
		got, err := b.store.GetCommunication(b.ctx, co.ID, c.ID)
		requireNoError(t, err)
		requireEqual(t, c, got)

		// Without a debit the same write goes through: cancelling is free.
		edit.Status = comms.StatusCancelled
		_, credits, err := b.store.UpdateCommunication(b.ctx, comms.Change{Row: edit}, false)
		requireNoError(t, err)
		if credits != 0 {
			t.Fatalf("credits = %d, want 0", credits)
		}
	})

	t.Run("ConcurrentCompareAndSwap", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		c := b.create(t, b.comm(b.company.ID, b.now.Add(time.Hour)))
		tokens := make([]string, concurrency)
		errs := parallel(concurrency, func(i int) error {
			next := claimed(b, c)
			tokens[i] = next.Token
			_, _, err := b.store.UpdateCommunication(b.ctx, comms.Change{Row: next}, true)
			return err
		})
		ok, lost, other := count(errs, comms.ErrConflict)
		if ok != 1 || lost != concurrency-1 || len(other) > 0 {
			t.Fatalf("%d won, %d lost, other errors %v; want exactly 1 winner", ok, lost, other)
		}
		got, err := b.store.GetCommunication(b.ctx, b.company.ID, c.ID)
		requireNoError(t, err)
		if got.Version != 2 {
			t.Fatalf("version = %d, want 2", got.Version)
		}
		for i, err := range errs {
			if err == nil && got.Token != tokens[i] {
				t.Fatalf("stored token %s is not the winner's %s", got.Token, tokens[i])
			}
		}
		if got := b.credits(t, b.company.ID); got != startCredits-2 {
			t.Fatalf("balance = %d, want %d (one create, one winning update)", got, startCredits-2)
		}
	})
}

func (s suite) errors(t *testing.T) {
	t.Run("NameTheMethod", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		unknown := uuid.NewString()
		for method, err := range map[string]error{
			"GetCompany":       second(b.store.GetCompany(b.ctx, unknown)),
			"GetCommunication": second(b.store.GetCommunication(b.ctx, b.company.ID, unknown)),
			"RevokeAPIKey":     b.store.RevokeAPIKey(b.ctx, b.company.ID, unknown, b.now),
			"GetPhoneNumber":   second(b.store.GetPhoneNumber(b.ctx, b.company.ID, unknown)),
		} {
			requireErrorIs(t, err, comms.ErrNotFound)
			if !strings.Contains(err.Error(), method) {
				t.Errorf("error %q does not name %s", err, method)
			}
		}
	})
}

func second[T any](_ T, err error) error { return err }
