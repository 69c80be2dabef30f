package sqlite

import (
	"errors"
	"path/filepath"
	"testing"
)

// TestReady: a store that can commit is ready; one whose writes are refused
// (a read-only database) or that has no room left to grow (a full disk,
// simulated with a page limit) is not, and is ready again once that ends.
func TestReady(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "dispatcher.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("a fresh store: %v", err)
	}
	if err := s.RefuseWrites(ctx, true); err != nil { // as a read-only file does
		t.Fatal(err)
	}
	if err := s.Ready(ctx); err == nil {
		t.Fatal("a store that cannot write is ready")
	}
	if err := s.RefuseWrites(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("writable again: %v", err)
	}

	if err := s.LimitGrowth(ctx, 2); err != nil { // two pages short of a full disk
		t.Fatal(err)
	}
	if err := s.Ready(ctx); !errors.Is(err, ErrNoRoom) {
		t.Fatalf("a full store: %v, want ErrNoRoom", err)
	}
	if err := s.LimitGrowth(ctx, -1); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("room again: %v", err)
	}
}
