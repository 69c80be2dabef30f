package storetest

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// sendingDomains: a sending domain belongs to at most one company, with
// its subdomains; PutSettings claims and releases in the settings' write.
func (s suite) sendingDomains(t *testing.T) {
	// base returns a domain no other subtest uses.
	base := func() string { return "u" + strings.ReplaceAll(uuid.NewString(), "-", "") + ".example" }
	declaring := func(domains ...string) comms.Settings {
		set := comms.DefaultSettings()
		set.SendingDomains = domains
		return set
	}
	// requireTaken checks that PutSettings of set by companyID is refused
	// naming exactly the entries at indexes, and that it wrote nothing.
	requireTaken := func(t *testing.T, b *bundle, companyID string, set comms.Settings, indexes ...int) {
		t.Helper()
		before, err := b.store.GetCompany(b.ctx, companyID)
		requireNoError(t, err)
		err = b.store.PutSettings(b.ctx, companyID, set)
		requireErrorIs(t, err, comms.ErrSendingDomainTaken)
		if !strings.Contains(err.Error(), "PutSettings") {
			t.Errorf("error %q does not name PutSettings", err)
		}
		var taken *comms.SendingDomainTakenError
		if !errors.As(err, &taken) {
			t.Fatalf("error %v is not a *comms.SendingDomainTakenError", err)
		}
		if !slices.Equal(taken.Indexes, indexes) {
			t.Errorf("refused indexes = %v, want %v", taken.Indexes, indexes)
		}
		for k, i := range taken.Indexes {
			if k < len(taken.Domains) && i < len(set.SendingDomains) && taken.Domains[k] != set.SendingDomains[i] {
				t.Errorf("refused domain %d = %s, want %s", k, taken.Domains[k], set.SendingDomains[i])
			}
		}
		after, err := b.store.GetCompany(b.ctx, companyID)
		requireNoError(t, err)
		requireEqual(t, before.Settings, after.Settings)
	}
	// requireHeld checks that a new company cannot declare d.
	requireHeld := func(t *testing.T, b *bundle, d string) {
		t.Helper()
		requireTaken(t, b, b.newCompany(t, 0).ID, declaring(d), 0)
	}
	requireFree := func(t *testing.T, b *bundle, d string) {
		t.Helper()
		requireNoError(t, b.store.PutSettings(b.ctx, b.newCompany(t, 0).ID, declaring(d)))
	}

	t.Run("ExactParentAndSubdomainTaken", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		d := base()
		requireNoError(t, b.store.PutSettings(b.ctx, b.company.ID, declaring("mail."+d)))
		other := b.newCompany(t, 0)
		requireTaken(t, b, other.ID, declaring("mail."+d), 0)                        // the domain itself
		requireTaken(t, b, other.ID, declaring(d), 0)                                // a parent of it
		requireTaken(t, b, other.ID, declaring("eu.mail."+d), 0)                     // a subdomain of it
		requireTaken(t, b, other.ID, declaring(base(), "x.eu.mail."+d), 1)           // named by its index
		requireTaken(t, b, other.ID, declaring(d, base(), "mail."+d), 0, 2)          // every one named
		requireTaken(t, b, other.ID, declaring("example"), 0)                        // up to the top label
		requireNoError(t, b.store.PutSettings(b.ctx, other.ID, declaring("web."+d))) // a sibling is free
	})

	t.Run("LookalikesAreNotSubdomains", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		d := base()
		requireNoError(t, b.store.PutSettings(b.ctx, b.company.ID, declaring(d)))
		for _, free := range []string{"x" + d, d[:len(d)-len(".example")] + "-x.example", d + ".org", "a" + d + "-b.example"} {
			requireFree(t, b, free)
		}
	})

	t.Run("SameCompanyRedeclares", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		d := base()
		set := declaring(d, "mail."+d) // a domain and its own subdomain
		requireNoError(t, b.store.PutSettings(b.ctx, b.company.ID, set))
		requireNoError(t, b.store.PutSettings(b.ctx, b.company.ID, set))
		set = declaring("mail."+d, d, "eu."+d)
		set.Timezone = "Europe/Paris"
		requireNoError(t, b.store.PutSettings(b.ctx, b.company.ID, set))
		got, err := b.store.GetCompany(b.ctx, b.company.ID)
		requireNoError(t, err)
		requireEqual(t, set, got.Settings)
		requireHeld(t, b, "eu."+d)
		requireHeld(t, b, d)
	})

	t.Run("RemovalReleases", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		d, kept := base(), base()
		requireNoError(t, b.store.PutSettings(b.ctx, b.company.ID, declaring(d, "mail."+d, kept)))
		requireNoError(t, b.store.PutSettings(b.ctx, b.company.ID, declaring(kept)))
		other := b.newCompany(t, 0)
		requireNoError(t, b.store.PutSettings(b.ctx, other.ID, declaring("mail."+d)))
		requireHeld(t, b, d)    // now through other's subdomain
		requireHeld(t, b, kept) // still the first company's
		requireTaken(t, b, b.company.ID, declaring(kept, d), 1)
		// Releasing everything.
		requireNoError(t, b.store.PutSettings(b.ctx, other.ID, comms.DefaultSettings()))
		requireNoError(t, b.store.PutSettings(b.ctx, b.company.ID, declaring(kept, d)))
	})

	t.Run("RefusedPutKeepsOldClaims", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		mine, theirs := base(), base()
		other := b.newCompany(t, 0)
		requireNoError(t, b.store.PutSettings(b.ctx, b.company.ID, declaring(mine)))
		requireNoError(t, b.store.PutSettings(b.ctx, other.ID, declaring(theirs)))
		// other drops theirs and reaches for mine: refused, theirs still held.
		requireTaken(t, b, other.ID, declaring("www."+mine), 0)
		requireHeld(t, b, theirs)
	})

	t.Run("CreateCompanyWithDomainsRefused", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		c := comms.Company{ID: "co_" + uuid.NewString(), Credits: 1, Settings: declaring(base()), CreatedAt: b.now}
		if err := b.store.CreateCompany(b.ctx, c); err == nil {
			t.Fatal("CreateCompany stored a company with sending domains it did not claim")
		}
		_, err := b.store.GetCompany(b.ctx, c.ID)
		requireErrorIs(t, err, comms.ErrNotFound)
	})

	t.Run("ConcurrentParentAndSubdomainOneWins", func(t *testing.T) {
		t.Parallel()
		b := s.setup(t)
		d := base()
		cos := make([]string, 8)
		for i := range cos {
			cos[i] = b.newCompany(t, 0).ID
		}
		domainOf := func(i int) string {
			if i%2 == 0 {
				return d
			}
			return "mail." + d
		}
		errs := parallel(len(cos), func(i int) error {
			return b.store.PutSettings(b.ctx, cos[i], declaring(domainOf(i)))
		})
		ok, taken, others := count(errs, comms.ErrSendingDomainTaken)
		if ok != 1 || taken != 7 || len(others) > 0 {
			t.Fatalf("%d puts won, %d were refused as taken, other errors %v; want exactly one winner", ok, taken, others)
		}
		for i, co := range cos {
			got, err := b.store.GetCompany(b.ctx, co)
			requireNoError(t, err)
			want := []string{}
			if errs[i] == nil {
				want = []string{domainOf(i)}
			}
			if got.Settings.SendingDomains == nil {
				got.Settings.SendingDomains = []string{}
			}
			if !slices.Equal(got.Settings.SendingDomains, want) {
				t.Errorf("company %d declares %v, want %v", i, got.Settings.SendingDomains, want)
			}
		}
		requireHeld(t, b, d)
		requireHeld(t, b, "mail."+d)
	})
}
