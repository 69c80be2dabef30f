// Package sqlite is the embedded comms.Store: one SQLite file, opened through
// modernc.org/sqlite (pure Go, no cgo), for the single-process mode of
// Dispatcher and for tests.
//
// # Schema
//
// Open creates the schema, or brings an older file up to date, by running the
// statements of migrations that PRAGMA user_version says have not run yet, in
// one transaction. The tables are:
//
//   - companies (id, credits, settings JSON, created_at)
//   - api_keys (id, company_id, hash UNIQUE, prefix, scopes JSON, created_at, revoked_at)
//   - phone_numbers and voice_agents, keyed (company_id, id); e164 is
//     UNIQUE across companies (phone_numbers_by_e164), which is how a number
//     is claimed by one resource. Migration 3 added that index; it refuses
//     to run while a number is held by several resources, naming them, and
//     deletes nothing (checkPhoneNumbersUnique)
//   - communications, keyed (company_id, id), with a real column for every
//     field that is filtered or sorted on (delivery_status, delivery_at and
//     delivery_detail hold Delivery) and JSON text for payload,
//     cancel_policy, last_error, cadence, outcome and timezones (the
//     recipient's zones, with timezone_source, migration 8); a partial index on
//     provider_message_id serves CommunicationByProviderMessageID
//   - sending_domain_claims (domain_rev, company_id), keyed by the domain
//     with its labels reversed (com.example.mail): each sending domain
//     declared in a company's settings, claimed by that company alone
//     with its subdomains (domains.go). Migration 4 added it and claims
//     what stored settings declare; it refuses to run while two companies
//     declare overlapping domains, naming them, and changes nothing
//   - idempotency, keyed (company_id, key)
//   - suppressions, keyed (company_id, channel, recipient) WITHOUT ROWID,
//     which is also their listing order; lifted ones are kept (lifted_at set)
//   - sms_receipts (migration 5), keyed (destination, accepted_at,
//     provider_message_id) WITHOUT ROWID: SMS delivery reports no row
//     claimed when they arrived, found by number and time (FindSMSReceipts)
//   - webhook_endpoints (migration 6), keyed (company_id, id) WITHOUT
//     ROWID, the listing order: each company's status-webhook endpoints,
//     event_types and signing secrets as JSON, version for conditional
//     replaces (webhooks.go)
//   - webhook_deliveries, keyed (company_id, endpoint_id, id), and
//     webhook_fanout_cursors, keyed company_id (migration 7,
//     deliveries.go): the messages of status webhooks with their
//     attempts, and how far each company's event feed has been fanned out;
//     migration 8 adds the endpoints' disabled_at and failing_since
//   - entity_events (migration 9, entityevents.go): the events posted to
//     cancel-by-event, per company and entity, for the steps created later
//   - events, keyed (company_id, feed_pos) WITHOUT ROWID, where feed_pos
//     numbers a company's events 1, 2, 3… in commit order (see
//     ListCompanyEvents); unique by (company_id, communication_id, sequence),
//     which also makes the id (derived from both) unique. Events are written
//     only with their row, in its transaction, so they carry no foreign key.
//
// Times are INTEGER unix nanoseconds in UTC: 0 for a zero time.Time, NULL for
// a nil *time.Time. Times outside the years 1678–2262 cannot be stored. JSON
// given as json.RawMessage is stored as TEXT exactly as given (NULL when empty)
// and read back byte for byte. Listing uses the index (company_id,
// scheduled_for, id); DueCommunications uses one partial index on
// next_attempt_at of pending rows and one on lease_until of processing rows.
//
// # Concurrency
//
// The file is in WAL mode, so readers never block the writer nor the writer
// readers. The Store holds two pools: a writer of exactly one connection,
// whose transactions begin with BEGIN IMMEDIATE (so a transaction that reads
// before it writes can never fail to upgrade its lock), and a pool of
// read-only connections for queries. Writes of this process therefore queue in
// database/sql for the one writer connection and run one at a time; another
// process writing to the same file waits up to busy_timeout (10 s). Every
// check-then-write (idempotency, credit debit, compare-and-swap on version) runs
// inside one write transaction, which makes it atomic.
//
// # Durability
//
// By default (DurabilityFull, synchronous=FULL) a COMMIT returns only once
// the WAL is synced to disk, so whatever a caller was told is stored — a 201
// of the API — survives an OS crash or power loss. Concurrent
// CreateCommunication calls share one transaction and its sync (group
// commit, groupcommit.go). DurabilityNormal trades that for speed: commits
// survive the process being killed, not the machine losing power.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/dispatcherhq/dispatcher/internal/backoff"
	"github.com/dispatcherhq/dispatcher/internal/comms"
)

var _ comms.Store = (*Store)(nil)

// Store is a comms.Store on one SQLite file. It is safe for concurrent use.
type Store struct {
	w *sql.DB // the one writer connection
	r *sql.DB // read-only connections
	// prepared holds txStatements, prepared on w.
	prepared map[string]*sql.Stmt
	// narrow holds the UPDATEs of the column sets transitions change
	// (narrow.go), prepared on w as they are first needed.
	narrow narrowStmts
	// creates gathers concurrent CreateCommunication calls into group
	// commits (groupcommit.go).
	creates group[*createReq]
	// updates gathers concurrent UpdateCommunication(s) calls the same
	// way (updates.go).
	updates group[*updateReq]
	// rstmts are the hot reads, prepared on r (updates.go).
	rstmts readerStmts
	// path is the database file, whose file system Ready checks for room.
	path string
}

// readers is the size of the read pool.
const readers = 4

// Durability says what a committed transaction survives: SQLite's
// synchronous setting, in WAL mode.
type Durability string

const (
	// DurabilityFull (synchronous=FULL, the default) syncs the WAL to disk
	// before every COMMIT returns: a committed write survives the process
	// being killed, the OS crashing and power loss. It costs one fsync per
	// transaction, which group commit (groupcommit.go) shares between the
	// creates that arrive together.
	DurabilityFull Durability = "full"
	// DurabilityNormal (synchronous=NORMAL) syncs only at checkpoints: a
	// committed write survives the process being killed, but the last
	// commits before an OS crash or power loss may be rolled back (the file
	// stays consistent). Faster on disks with slow fsync.
	DurabilityNormal Durability = "normal"
)

// ParseDurability reads a Durability by name ("" is DurabilityFull).
func ParseDurability(s string) (Durability, error) {
	switch Durability(strings.ToLower(s)) {
	case "", DurabilityFull:
		return DurabilityFull, nil
	case DurabilityNormal:
		return DurabilityNormal, nil
	}
	return "", fmt.Errorf("durability must be %s or %s, not %q", DurabilityFull, DurabilityNormal, s)
}

// Options tune Open.
type Options struct {
	// Durability of commits; zero: DurabilityFull.
	Durability Durability
}

// pragmas apply to every connection; the writer adds _txlock=immediate and
// the readers query_only.
func pragmas(d Durability) string {
	sync := "FULL"
	if d == DurabilityNormal {
		sync = "NORMAL"
	}
	return "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(" + sync + ")&_pragma=foreign_keys(1)"
}

// Open opens (creating it and its parent directory if missing) the database
// file at path and migrates its schema, with the default Options (commits
// synced to disk).
func Open(ctx context.Context, path string) (*Store, error) {
	return OpenWith(ctx, path, Options{})
}

// OpenWith is Open with options.
//
// Opening a fresh file switches it to WAL, which SQLite does under an
// exclusive lock without waiting on busy_timeout: a process opening the
// file at the same moment as another (make dev and a CLI command) can be
// told SQLITE_BUSY. Open retries that, with backoff, for up to ~5 seconds.
func OpenWith(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" || strings.ContainsRune(path, '?') || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite.Open: invalid database path %q", path)
	}
	d, err := ParseDurability(string(opts.Durability))
	if err != nil {
		return nil, fmt.Errorf("sqlite.Open: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("sqlite.Open: %w", err)
	}
	retry := backoff.Policy{Base: 20 * time.Millisecond, Cap: time.Second}
	for n := 1; ; n++ {
		s, err := open(ctx, path, d)
		if err == nil || !busy(err) || n == 10 {
			return s, err
		}
		if retry.Sleep(ctx, n) != nil {
			return nil, err
		}
	}
}

// busy reports whether err is SQLite's SQLITE_BUSY (or one of its extended codes).
func busy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

func open(ctx context.Context, path string, d Durability) (*Store, error) {
	w, err := sql.Open("sqlite", path+"?"+pragmas(d)+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite.Open: %w", err)
	}
	r, err := sql.Open("sqlite", path+"?"+pragmas(d)+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite.Open: %w", err)
	}
	w.SetMaxOpenConns(1)
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	s := &Store{w: w, r: r, prepared: make(map[string]*sql.Stmt, len(txStatements)), path: path}
	if err := s.init(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite.Open: %w", err)
	}
	return s, nil
}

// init migrates the schema, prepares txStatements and connects a reader.
func (s *Store) init(ctx context.Context) error {
	if err := migrate(ctx, s.w); err != nil {
		return err
	}
	for _, q := range txStatements {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		s.prepared[q] = st
	}
	// Readers connect only now that the writer has put the file in WAL mode.
	return s.r.PingContext(ctx)
}

// stmt returns the prepared statement q, for use in tx. As the writer has one
// connection, tx runs on the connection q was prepared on and database/sql
// reuses it as is.
func (s *Store) stmt(ctx context.Context, tx *sql.Tx, q string) *sql.Stmt {
	return tx.StmtContext(ctx, s.prepared[q])
}

// Close closes both pools.
func (s *Store) Close() error {
	var errs []error
	for _, st := range s.prepared {
		errs = append(errs, st.Close())
	}
	errs = append(errs, s.narrow.close()...)
	s.rstmts.mu.Lock()
	for _, st := range s.rstmts.m {
		errs = append(errs, st.Close())
	}
	s.rstmts.m = nil
	s.rstmts.mu.Unlock()
	errs = append(errs, s.r.Close(), s.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite.Close: %w", err)
	}
	return nil
}

// migrations are applied in order; PRAGMA user_version counts those applied.
// Never edit one that has shipped: append a new one.
var migrations = []string{
	`
CREATE TABLE companies (
	id         TEXT    NOT NULL PRIMARY KEY,
	credits    INTEGER NOT NULL,
	settings   TEXT    NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE api_keys (
	id         TEXT    NOT NULL PRIMARY KEY,
	company_id TEXT    NOT NULL REFERENCES companies (id),
	hash       TEXT    NOT NULL UNIQUE,
	prefix     TEXT    NOT NULL,
	scopes     TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	revoked_at INTEGER
) STRICT;
CREATE INDEX api_keys_by_company ON api_keys (company_id, created_at, id);

CREATE TABLE phone_numbers (
	company_id   TEXT    NOT NULL REFERENCES companies (id),
	id           TEXT    NOT NULL,
	e164         TEXT    NOT NULL,
	capabilities TEXT    NOT NULL,
	label        TEXT    NOT NULL,
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL,
	PRIMARY KEY (company_id, id)
) STRICT;

CREATE TABLE voice_agents (
	company_id      TEXT    NOT NULL REFERENCES companies (id),
	id              TEXT    NOT NULL,
	provider        TEXT    NOT NULL,
	agent_id        TEXT    NOT NULL,
	phone_number_id TEXT    NOT NULL,
	label           TEXT    NOT NULL,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	PRIMARY KEY (company_id, id)
) STRICT;

CREATE TABLE communications (
	company_id             TEXT    NOT NULL REFERENCES companies (id),
	id                     TEXT    NOT NULL,
	channel                TEXT    NOT NULL,
	status                 TEXT    NOT NULL,
	scheduled_for          INTEGER NOT NULL,
	next_attempt_at        INTEGER NOT NULL,
	lease_until            INTEGER NOT NULL,
	timezone               TEXT    NOT NULL,
	respect_business_hours INTEGER NOT NULL,
	payload                TEXT,
	contact_id             TEXT    NOT NULL,
	customer_id            TEXT    NOT NULL,
	deal_id                TEXT    NOT NULL,
	related_entity_type    TEXT    NOT NULL,
	related_entity_id      TEXT    NOT NULL,
	cancel_policy          TEXT,
	attempt_count          INTEGER NOT NULL,
	max_attempts           INTEGER NOT NULL,
	last_error             TEXT,
	source                 TEXT    NOT NULL,
	cadence                TEXT,
	cadence_root_id        TEXT,
	outcome                TEXT,
	provider_message_id    TEXT    NOT NULL,
	token                  TEXT    NOT NULL,
	created_at             INTEGER NOT NULL,
	updated_at             INTEGER NOT NULL,
	sent_at                INTEGER,
	cancelled_at           INTEGER,
	version                INTEGER NOT NULL,
	PRIMARY KEY (company_id, id)
) STRICT;
CREATE INDEX communications_by_schedule ON communications (company_id, scheduled_for, id);
CREATE INDEX communications_by_cadence ON communications (company_id, cadence_root_id, scheduled_for, id)
	WHERE cadence_root_id IS NOT NULL;
CREATE INDEX communications_due_pending ON communications (next_attempt_at, company_id, id)
	WHERE status = 'pending';
CREATE INDEX communications_due_processing ON communications (lease_until, company_id, id)
	WHERE status = 'processing';

CREATE TABLE idempotency (
	company_id        TEXT    NOT NULL REFERENCES companies (id),
	key               TEXT    NOT NULL,
	request_hash      TEXT    NOT NULL,
	communication_id  TEXT    NOT NULL,
	credits_remaining INTEGER NOT NULL,
	created_at        INTEGER NOT NULL,
	expires_at        INTEGER NOT NULL,
	PRIMARY KEY (company_id, key)
) STRICT;
`,
	// 2: the lifecycle's events, and the row's cancel reason and last event sequence.
	`
ALTER TABLE communications ADD COLUMN cancel_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE communications ADD COLUMN event_seq INTEGER NOT NULL DEFAULT 0;

CREATE TABLE events (
	company_id       TEXT    NOT NULL,
	feed_pos         INTEGER NOT NULL,
	communication_id TEXT    NOT NULL,
	sequence         INTEGER NOT NULL,
	id               TEXT    NOT NULL,
	type             TEXT    NOT NULL,
	at               INTEGER NOT NULL,
	data             TEXT    NOT NULL,
	PRIMARY KEY (company_id, feed_pos),
	UNIQUE (company_id, communication_id, sequence)
) STRICT, WITHOUT ROWID;
`,
	// 3: delivery feedback — the row's delivery status, the lookup by
	// provider message id, suppressions, and each E.164 number held by one
	// phone-number resource at most (checkPhoneNumbersUnique runs first).
	`
ALTER TABLE communications ADD COLUMN delivery_status TEXT NOT NULL DEFAULT '';
ALTER TABLE communications ADD COLUMN delivery_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE communications ADD COLUMN delivery_detail TEXT NOT NULL DEFAULT '';
CREATE INDEX communications_by_provider_message_id ON communications (provider_message_id)
	WHERE provider_message_id <> '';

CREATE TABLE suppressions (
	company_id       TEXT    NOT NULL REFERENCES companies (id),
	channel          TEXT    NOT NULL,
	recipient        TEXT    NOT NULL,
	reason           TEXT    NOT NULL,
	detail           TEXT    NOT NULL,
	communication_id TEXT    NOT NULL,
	created_at       INTEGER NOT NULL,
	created_by       TEXT    NOT NULL,
	lifted_at        INTEGER,
	lifted_by        TEXT    NOT NULL,
	lifts            TEXT    NOT NULL DEFAULT '[]',
	PRIMARY KEY (company_id, channel, recipient)
) STRICT, WITHOUT ROWID;

CREATE UNIQUE INDEX phone_numbers_by_e164 ON phone_numbers (e164);
`,
	// 4: each sending domain claimed by one company, with its subdomains
	// (domains.go; claimStoredSendingDomains runs after it).
	migrationSendingDomainClaims,
	// 5: SMS delivery reports no row claimed when they arrived (the AWS
	// SMS ledger; docs/design.md §8.5), by number and acceptance time.
	`
CREATE TABLE sms_receipts (
	destination         TEXT    NOT NULL,
	accepted_at         INTEGER NOT NULL,
	provider_message_id TEXT    NOT NULL,
	status              TEXT    NOT NULL,
	detail              TEXT    NOT NULL,
	at                  INTEGER NOT NULL,
	PRIMARY KEY (destination, accepted_at, provider_message_id)
) STRICT, WITHOUT ROWID;
`,
	// 6: the companies' webhook endpoints and their signing secrets
	// (webhooks.go).
	migrationWebhookEndpoints,
	// 7: status-webhook deliveries and each company's fan-out cursor
	// (deliveries.go; self-contained, renumber freely at a merge).
	migrationWebhookDeliveries,
	// 8: endpoints' disabled_at and failing_since (webhooks.go).
	migrationEndpointHealth,
	// 9: events posted to cancel-by-event, kept per entity
	// (entityevents.go; self-contained, renumber freely at a merge).
	migrationEntityEvents,
	// 10: where a row's recipient is — the source of its zones and the
	// zones (JSON array). Rows stored before have '' and NULL, which
	// comms.Communication.ZoneSource reads (self-contained, renumber freely
	// at a merge).
	`
ALTER TABLE communications ADD COLUMN timezone_source TEXT NOT NULL DEFAULT '';
ALTER TABLE communications ADD COLUMN timezones TEXT;
`,
	// 11: the one row Ready writes to prove the file takes commits
	// (ready.go; self-contained, renumber freely at a merge).
	migrationReadinessProbe,
	// 12: the instance id of the process whose claim a processing row
	// holds (comms.Communication.LeaseOwner; self-contained, renumber
	// freely at a merge).
	`ALTER TABLE communications ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';`,
}

// migrationChecks run inside the migration transaction just before the
// migration of the same index (0-based), and stop it with an error that
// says what to fix.
var migrationChecks = map[int]func(context.Context, *sql.Tx) error{
	2: checkPhoneNumbersUnique,
}

// checkPhoneNumbersUnique refuses migration 3 while one E.164 number is held
// by several phone-number resources (possible before it): which one should
// keep it is the operator's call, not the binary's, so nothing is deleted
// and the file stays at schema 2 until they are told apart.
func checkPhoneNumbersUnique(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT e164, group_concat(company_id || '/' || id, ', ')
		FROM phone_numbers GROUP BY e164 HAVING count(*) > 1 ORDER BY e164`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var dups []string
	for rows.Next() {
		var e164, holders string
		if err := rows.Scan(&e164, &holders); err != nil {
			return err
		}
		dups = append(dups, e164+" (held by "+holders+")")
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(dups) > 0 {
		return fmt.Errorf("a phone number may now belong to one phone-number resource only, and these are held by several "+
			"(company/id): %s; delete or change all but one of each (e.g. with the sqlite3 shell: "+
			"DELETE FROM phone_numbers WHERE company_id = '…' AND id = '…'), then open the file again", strings.Join(dups, "; "))
	}
	return nil
}

// migrationAfter run inside the migration transaction just after the
// migration of the same index (0-based), to fill what it created; an error
// stops the migration as a check's does.
var migrationAfter = map[int]func(context.Context, *sql.Tx) error{
	3: claimStoredSendingDomains,
}

// migrate runs the migrations the file has not seen, in one write
// transaction, so that concurrent Opens of one file migrate it once.
func migrate(ctx context.Context, db *sql.DB) error {
	return inTx(ctx, db, func(tx *sql.Tx) error {
		var v int
		if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if v > len(migrations) {
			return fmt.Errorf("migrate: database schema version %d is newer than this binary's %d", v, len(migrations))
		}
		for i := v; i < len(migrations); i++ {
			if check := migrationChecks[i]; check != nil {
				if err := check(ctx, tx); err != nil {
					return fmt.Errorf("migrate: migration %d: %w", i+1, err)
				}
			}
			if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migrate: migration %d: %w", i+1, err)
			}
			if fill := migrationAfter[i]; fill != nil {
				if err := fill(ctx, tx); err != nil {
					return fmt.Errorf("migrate: migration %d: %w", i+1, err)
				}
			}
		}
		if v == len(migrations) {
			return nil
		}
		// PRAGMA takes no bound parameters; the value is our own integer.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		return nil
	})
}

// inTx runs fn in a transaction of db, committing if fn returns nil.
func inTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// wrap names the method an error comes from and translates driver errors into
// the sentinels of comms, keeping the driver's message after them.
func wrap(method string, err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	switch {
	case errors.Is(err, sql.ErrNoRows):
		err = comms.ErrNotFound
	case errors.As(err, &se):
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			err = fmt.Errorf("%w: %v", comms.ErrAlreadyExists, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			// The only foreign keys point at companies.
			err = fmt.Errorf("%w: no such company: %v", comms.ErrNotFound, err)
		default:
			// A full disk, a read-only or failing file: the request did
			// nothing and can be retried (503), not a bug of ours (500).
			switch se.Code() & 0xff {
			case sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN:
				err = fmt.Errorf("%w: %v", comms.ErrStoreUnavailable, err)
			}
		}
	}
	return fmt.Errorf("sqlite.%s: %w", method, err)
}

// ts encodes a time as unix nanoseconds, 0 for the zero time.
func ts(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// tsInRange encodes t as ts does, and reports false for a time outside
// what int64 nanoseconds hold (about 1678–2262), where ts would overflow.
func tsInRange(t time.Time) (int64, bool) {
	if t.Before(minTS) || t.After(maxTS) {
		return 0, false
	}
	return ts(t), true
}

// The range of times ts encodes.
var (
	minTS = time.Unix(0, math.MinInt64+1).UTC()
	maxTS = time.Unix(0, math.MaxInt64).UTC()
)

// tsPtr encodes an optional time: NULL for nil.
func tsPtr(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: ts(*t), Valid: true}
}

// fromTS decodes what ts encoded, in UTC.
func fromTS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// fromTSPtr decodes what tsPtr encoded.
func fromTSPtr(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromTS(n.Int64)
	return &t
}
