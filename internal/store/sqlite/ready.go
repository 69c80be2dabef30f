package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrNoRoom is Ready's answer when the file has too little room left to
// grow into (a full disk, or a full page limit).
var ErrNoRoom = errors.New("no room left to write")

// migrationReadinessProbe holds the one row Ready rewrites.
const migrationReadinessProbe = `
CREATE TABLE readiness_probe (
	id     INTEGER PRIMARY KEY CHECK (id = 1),
	probes INTEGER NOT NULL
) STRICT;
`

// ReadyHeadroom is the room the store must have left to be ready: free
// bytes on the file system that holds the file (and, when a page limit is
// set on the file, pages left under it). A commit that needs new pages
// fails once the room is gone, while one that rewrites pages it already
// has may still pass, so a write probe alone would call a full disk ready.
const ReadyHeadroom = 8 << 20

// Ready reports whether the store can commit now, for the readiness
// endpoint: it commits a write (rewriting readiness_probe's one row, on the
// writer connection, synced like every commit — so a read-only file, a
// failing disk or a lock held elsewhere fail it) and checks that the file
// has ReadyHeadroom left to grow into. It returns nil when ready.
func (s *Store) Ready(ctx context.Context) error {
	var pageSize, pages, maxPages, free int64
	err := inTx(ctx, s.w, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO readiness_probe (id, probes) VALUES (1, 1)
			ON CONFLICT (id) DO UPDATE SET probes = probes + 1`); err != nil {
			return fmt.Errorf("write probe: %w", err)
		}
		for _, p := range []struct {
			pragma string
			v      *int64
		}{{"page_size", &pageSize}, {"page_count", &pages}, {"max_page_count", &maxPages}, {"freelist_count", &free}} {
			if err := tx.QueryRowContext(ctx, "PRAGMA "+p.pragma).Scan(p.v); err != nil {
				return fmt.Errorf("PRAGMA %s: %w", p.pragma, err)
			}
		}
		return nil
	})
	if err != nil {
		return wrap("Ready", err)
	}
	if left := (maxPages - pages + free) * pageSize; left < ReadyHeadroom {
		return wrap("Ready", fmt.Errorf("%w: %d bytes left under the page limit, want %d", ErrNoRoom, left, ReadyHeadroom))
	}
	if avail, ok := freeBytes(s.path); ok && avail < ReadyHeadroom {
		return wrap("Ready", fmt.Errorf("%w: %d bytes free on the file system of %s, want %d", ErrNoRoom, avail, s.path, ReadyHeadroom))
	}
	return nil
}

// LimitGrowth caps the file at its current size plus pages more (PRAGMA
// max_page_count on the writer): once they are used, every write that needs
// a new page fails with SQLITE_FULL and Ready reports ErrNoRoom, as on a
// full disk. A negative pages lifts the cap. For tests and fault drills.
func (s *Store) LimitGrowth(ctx context.Context, pages int64) error {
	limit := int64(4294967294) // SQLite's largest
	if pages >= 0 {
		var n int64
		if err := s.w.QueryRowContext(ctx, "PRAGMA page_count").Scan(&n); err != nil {
			return wrap("LimitGrowth", err)
		}
		limit = n + pages
	}
	// PRAGMA takes no bound parameters; the value is our own integer.
	_, err := s.w.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", limit))
	return wrap("LimitGrowth", err)
}

// RefuseWrites makes the store refuse every write, as a read-only database
// file does (PRAGMA query_only on the writer), or take them again. For tests
// and fault drills.
func (s *Store) RefuseWrites(ctx context.Context, refuse bool) error {
	_, err := s.w.ExecContext(ctx, fmt.Sprintf("PRAGMA query_only = %t", refuse))
	return wrap("RefuseWrites", err)
}
