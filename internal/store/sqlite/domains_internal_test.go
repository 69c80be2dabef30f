package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// claimsMigration is the position of the sending-domain claims migration
// (found by its text, so that renumbering it at a merge needs no change here).
var claimsMigration = slices.Index(migrations, migrationSendingDomainClaims)

// TestMigrationClaimsStoredSendingDomains upgrades a file from the schema
// before the claims: the domains stored settings declare are claimed (a
// company's own domain and subdomain together are fine).
func TestMigrationClaimsStoredSendingDomains(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, schemaAt(t, claimsMigration, `INSERT INTO companies VALUES
		('co_a', 5, '{"timezone":"UTC","sending_domains":["example.com","mail.example.com"]}', 0),
		('co_b', 5, '{"timezone":"UTC","sending_domains":["example.org"]}', 0),
		('co_c', 5, '{}', 0)`))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, d := range []string{"eu.example.com", "example.org", "com"} {
		err := s.PutSettings(ctx, "co_c", comms.Settings{Timezone: "UTC", SendingDomains: []string{d}})
		if !errors.Is(err, comms.ErrSendingDomainTaken) {
			t.Errorf("declaring %s after the upgrade: %v, want taken", d, err)
		}
	}
	if err := s.PutSettings(ctx, "co_a", comms.Settings{Timezone: "UTC", SendingDomains: []string{"example.com"}}); err != nil {
		t.Fatalf("its owner re-declaring: %v", err)
	}
}

// TestMigrationRefusesOverlappingSendingDomains: a file where two
// companies declare overlapping domains is not migrated (nothing changes)
// and says which; once they are told apart it is.
func TestMigrationRefusesOverlappingSendingDomains(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := schemaAt(t, claimsMigration, `INSERT INTO companies VALUES
		('co_a', 5, '{"timezone":"UTC","sending_domains":["example.com"]}', 0),
		('co_b', 5, '{"timezone":"UTC","sending_domains":["example.org","mail.example.com"]}', 0)`)
	_, err := Open(ctx, path)
	want := fmt.Sprintf("migration %d", claimsMigration+1)
	if err == nil || !strings.Contains(err.Error(), want) ||
		!strings.Contains(err.Error(), "mail.example.com (company co_b) overlaps example.com (company co_a)") {
		t.Fatalf("Open = %v; want %s refused, naming the overlap and its companies", err, want)
	}
	db, err := sql.Open("sqlite", path+"?"+pragmas(DurabilityFull))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != claimsMigration {
		t.Fatalf("user_version = %d, %v; want %d (nothing migrated)", v, err, claimsMigration)
	}
	if _, err := db.Exec(`UPDATE companies SET settings = json_remove(settings, '$.sending_domains[1]') WHERE id = 'co_b'`); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("after removing the overlap: %v", err)
	}
	defer s.Close()
	err = s.PutSettings(ctx, "co_b", comms.Settings{Timezone: "UTC", SendingDomains: []string{"example.org", "www.example.com"}})
	var taken *comms.SendingDomainTakenError
	if !errors.As(err, &taken) || !slices.Equal(taken.Indexes, []int{1}) {
		t.Fatalf("co_b reaching for co_a's subdomain: %v, want taken at index 1", err)
	}
}
