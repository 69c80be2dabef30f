package embedded_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/embedded"
	"github.com/dispatcherhq/dispatcher/internal/store/sqlite"
)

// rssChildEnv names the data directory a child process of
// BenchmarkPendingRSS starts on.
const rssChildEnv = "DISPATCHER_RSS_CHILD"

// BenchmarkPendingRSS writes DISPATCHER_BENCH_ROWS (default 200,000)
// pending emails due at random over the next 30 days straight into a data
// directory, then starts the embedded process on it in a fresh child
// process (so neither the writing nor another benchmark counts) and reports
// the child's resident set once it has re-armed from the store and settled
// (VmRSS after a GC), its peak (VmHWM), the Go heap in use and the fires
// the timer holds. Run it once:
// go test -run '^$' -bench PendingRSS -benchtime 1x ./internal/embedded/
func BenchmarkPendingRSS(b *testing.B) {
	rows := 200_000
	if v := os.Getenv("DISPATCHER_BENCH_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		rows = n
	}
	for b.Loop() {
		dir := b.TempDir()
		writeFarRows(b, dir, rows)
		cmd := exec.Command(os.Args[0], "-test.run", "^TestPendingRSSChild$", "-test.v")
		cmd.Env = append(os.Environ(), rssChildEnv+"="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("child: %v\n%s", err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			line = strings.TrimSpace(line)
			k, v, ok := strings.Cut(strings.TrimPrefix(line, "rss_bench "), "=")
			if !ok || !strings.HasPrefix(line, "rss_bench ") {
				continue
			}
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("child said %q", line)
			}
			b.ReportMetric(f, k)
		}
	}
}

// writeFarRows writes n pending emails of one company, due at random over
// the next 30 days, through the store (8 writers, group commit, commits not
// synced: this is setup, not what is measured).
func writeFarRows(b *testing.B, dir string, n int) {
	ctx := context.Background()
	s, err := embedded.OpenStoreWith(ctx, dir, sqlite.Options{Durability: sqlite.DurabilityNormal})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	if err := s.CreateCompany(ctx, comms.Company{ID: "co_bench", Credits: 1 << 40, CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 15))
			for i := w; i < n; i += 8 {
				at := now.Add(time.Minute + time.Duration(rng.Int64N(int64(30*24*time.Hour))))
				c := comms.Communication{
					ID: uuid.NewString(), CompanyID: "co_bench", Channel: comms.ChannelEmail, Status: comms.StatusPending,
					ScheduledFor: at, NextAttemptAt: at, Token: comms.NewToken(),
					Payload: json.RawMessage(fmt.Sprintf(`{"to_email":"user%d@example.com","subject":"Your appointment","html_body":"<p>See you soon</p>"}`, i)),
					Source:  comms.SourceAPI, CreatedAt: now, UpdatedAt: now,
				}
				if _, err := s.CreateCommunication(ctx, comms.Change{Row: c}, nil); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// TestPendingRSSChild is BenchmarkPendingRSS's child: it starts the
// embedded process on the directory it is given, waits until it has
// re-armed from the store and is past its start-up work, and prints its
// memory. Without the variable it does nothing.
func TestPendingRSSChild(t *testing.T) {
	dir := os.Getenv(rssChildEnv)
	if dir == "" {
		t.Skip("run by BenchmarkPendingRSS")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rearmed := make(chan struct{})
	var once sync.Once
	log := slog.New(&watchHandler{msg: "timer re-armed from the store", seen: func() { once.Do(func() { close(rearmed) }) }})
	start := time.Now()
	l, err := embedded.NewLocal(ctx, embedded.LocalConfig{DataDir: dir}, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	select {
	case <-rearmed:
	case <-time.After(5 * time.Minute):
		t.Fatal("not re-armed after 5 minutes")
	}
	ready := time.Since(start)
	time.Sleep(2 * time.Second) // the orphan and webhook catch-up after the re-arming; a benchmark on the wall clock
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("rss_bench rss_MiB=%.1f\n", procStatusMiB("VmRSS:"))
	fmt.Printf("rss_bench peak_rss_MiB=%.1f\n", procStatusMiB("VmHWM:"))
	fmt.Printf("rss_bench heap_inuse_MiB=%.1f\n", float64(ms.HeapInuse)/(1<<20))
	fmt.Printf("rss_bench fires_held=%d\n", l.Timer.Len())
	fmt.Printf("rss_bench s_to_rearmed=%.2f\n", ready.Seconds())
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
	if err := l.Close(); err != nil {
		t.Error(err)
	}
}

// procStatusMiB reads a kB line of /proc/self/status, Linux only.
func procStatusMiB(key string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// watchHandler discards logs and calls seen when a record's message is msg.
type watchHandler struct {
	msg  string
	seen func()
}

func (h *watchHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *watchHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.seen()
	}
	return nil
}
func (h *watchHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *watchHandler) WithGroup(string) slog.Handler      { return h }
