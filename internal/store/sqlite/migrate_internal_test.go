package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// schemaAt creates a file at schema version v (the first v migrations) and
// runs seed on it.
func schemaAt(t *testing.T, v int, seed string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", path+"?"+pragmas(DurabilityFull))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, m := range migrations[:v] {
		if _, err := db.Exec(m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(seed + fmt.Sprintf("; PRAGMA user_version = %d", v)); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestMigration3 upgrades a schema-2 file: its rows read back with no
// delivery status, and its phone numbers become claims.
func TestMigration3(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const seed = `INSERT INTO companies VALUES ('co_a', 5, '{}', 0), ('co_b', 5, '{}', 0);
		INSERT INTO phone_numbers VALUES ('co_a', 'p1', '+61400000001', '["sms"]', '', 0, 0);
		INSERT INTO communications (company_id, id, channel, status, scheduled_for, next_attempt_at, lease_until,
			timezone, respect_business_hours, contact_id, customer_id, deal_id, related_entity_type, related_entity_id,
			attempt_count, max_attempts, source, provider_message_id, token, created_at, updated_at, version)
		VALUES ('co_a', 'r1', 'sms', 'sent', 1, 1, 0, 'UTC', 0, '', '', '', '', '', 1, 3, 'api', 'sns-1', 't', 1, 1, 4)`
	s, err := Open(ctx, schemaAt(t, 2, seed))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := s.CommunicationByProviderMessageID(ctx, "sns-1")
	if err != nil || c.ID != "r1" || c.Delivery != (comms.Delivery{}) {
		t.Fatalf("row from schema 2: %+v, %v", c, err)
	}
	err = s.PutPhoneNumber(ctx, comms.PhoneNumber{ID: "p9", CompanyID: "co_b", E164: "+61400000001"})
	if !errors.Is(err, comms.ErrPhoneNumberTaken) {
		t.Fatalf("a number held before the upgrade: %v, want taken", err)
	}
}

// TestMigration3RefusesDuplicateNumbers: a schema-2 file where two
// resources hold one number is not migrated (nothing is deleted), and says
// which ones; once they are told apart it is.
func TestMigration3RefusesDuplicateNumbers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := schemaAt(t, 2, `INSERT INTO companies VALUES ('co_a', 5, '{}', 0), ('co_b', 5, '{}', 0);
		INSERT INTO phone_numbers VALUES ('co_a', 'p1', '+61400000001', '[]', '', 0, 0),
			('co_b', 'p2', '+61400000001', '[]', '', 0, 0), ('co_b', 'p3', '+61400000003', '[]', '', 0, 0)`)
	_, err := Open(ctx, path)
	if err == nil || !strings.Contains(err.Error(), "migration 3") || !strings.Contains(err.Error(), "+61400000001 (held by co_a/p1, co_b/p2)") {
		t.Fatalf("Open = %v; want migration 3 refused, naming the number and its holders", err)
	}
	db, err := sql.Open("sqlite", path+"?"+pragmas(DurabilityFull))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v, n int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != 2 {
		t.Fatalf("user_version = %d, %v; want 2 (nothing migrated)", v, err)
	}
	if err := db.QueryRow("SELECT count(*) FROM phone_numbers").Scan(&n); err != nil || n != 3 {
		t.Fatalf("%d phone numbers, %v; want all 3 kept", n, err)
	}
	if _, err := db.Exec(`DELETE FROM phone_numbers WHERE company_id = 'co_b' AND id = 'p2'`); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("after removing the duplicate: %v", err)
	}
	s.Close()
}

// TestMigrationZones upgrades a schema-7 file (through migration 10, the
// recipient's zones): its rows read back with no
// zones recorded (ZoneSource then reads their timezone), and keep them
// once written.
func TestMigrationZones(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const seed = `INSERT INTO companies VALUES ('co_a', 5, '{"timezone":"Europe/Paris"}', 0);
		INSERT INTO communications (company_id, id, channel, status, scheduled_for, next_attempt_at, lease_until,
			timezone, respect_business_hours, contact_id, customer_id, deal_id, related_entity_type, related_entity_id,
			attempt_count, max_attempts, source, provider_message_id, token, created_at, updated_at, version)
		VALUES ('co_a', 'r1', 'sms', 'pending', 1, 1, 0, '', 0, '', '', '', '', '', 0, 3, 'api', '', 't', 1, 1, 1),
		       ('co_a', 'r2', 'sms', 'pending', 1, 1, 0, 'Asia/Tokyo', 0, '', '', '', '', '', 0, 3, 'api', '', 't', 1, 1, 1)`
	s, err := Open(ctx, schemaAt(t, 7, seed))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r1, err := s.GetCommunication(ctx, "co_a", "r1")
	if err != nil || r1.TimezoneSource != "" || r1.Timezones != nil || r1.ZoneSource() != comms.TimezoneFromCompany {
		t.Fatalf("r1 from schema 7: %q %v (%s), %v", r1.TimezoneSource, r1.Timezones, r1.ZoneSource(), err)
	}
	r2, err := s.GetCommunication(ctx, "co_a", "r2")
	if err != nil || r2.ZoneSource() != comms.TimezoneFromRequest {
		t.Fatalf("r2 from schema 7: %s, %v", r2.ZoneSource(), err)
	}
	next := r1
	next.TimezoneSource, next.Timezones = comms.TimezoneFromPhoneNumber, []string{"America/Boise", "America/Los_Angeles"}
	if _, _, err := s.UpdateCommunication(ctx, comms.Change{Row: next}, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetCommunication(ctx, "co_a", "r1"); got.TimezoneSource != comms.TimezoneFromPhoneNumber || len(got.Timezones) != 2 {
		t.Fatalf("after a write: %q %v", got.TimezoneSource, got.Timezones)
	}
}
