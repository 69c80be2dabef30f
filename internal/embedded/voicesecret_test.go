package embedded_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/dispatcherhq/dispatcher/internal/embedded"
)

// TestVoiceSecret: without a configured secret the first start writes a
// random one to <data>/voice-webhook-secret (0600) and later starts reuse
// it; a configured secret wins and leaves the file alone.
func TestVoiceSecret(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	start := func(secret string) string {
		t.Helper()
		l, err := embedded.NewLocal(ctx, embedded.LocalConfig{DataDir: dir, VoiceSecret: secret}, slog.New(slog.NewJSONHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.VoiceSecret()
	}
	first := start("")
	path := filepath.Join(dir, embedded.VoiceSecretFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if string(b) != first || len(first) < 32 {
		t.Errorf("the file holds %q, the process used %q", b, first)
	}
	if again := start(""); again != first {
		t.Errorf("a restart used %q, want the kept %q", again, first)
	}
	if got := start("from-the-flag"); got != "from-the-flag" {
		t.Errorf("a configured secret was not used: %q", got)
	}
	if b2, _ := os.ReadFile(path); string(b2) != first {
		t.Errorf("a configured secret rewrote the file: %q", b2)
	}
	other := t.TempDir()
	s2, err := embedded.EnsureVoiceSecret(other)
	if err != nil || s2 == first {
		t.Errorf("a second data directory got %q (%v), want its own random secret", s2, err)
	}
}

// TestVoiceSecretRace: processes starting at once on a fresh directory
// agree on one secret.
func TestVoiceSecretRace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	got := make([]string, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			s, err := embedded.EnsureVoiceSecret(dir)
			if err != nil {
				t.Error(err)
			}
			got[i] = s
		})
	}
	wg.Wait()
	for _, s := range got[1:] {
		if s != got[0] || s == "" {
			t.Fatalf("concurrent starts got different secrets: %q", got)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files were left behind: %v", entries)
	}
}
