package embedded_test

import (
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/channel/devsink"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/embedded"
)

// BenchmarkDispatchLag schedules 1,000 emails spread evenly over 10 s on
// the embedded stack (API → SQLite → local timer → dispatcher → outbox) and
// reports the lag from scheduled_for to the sink's send call. Run it once:
// go test -run '^$' -bench DispatchLag -benchtime 1x ./internal/embedded/
func BenchmarkDispatchLag(b *testing.B) {
	for b.Loop() {
		dir := b.TempDir()
		n := startNode(b, dir, dispatch.Config{}, nil) // the wall clock: lag is what is measured
		start := time.Now().Add(6 * time.Second)
		want := map[string]time.Time{}
		bodies := make([]string, 1000)
		for i := range bodies {
			bodies[i] = emailAt(start.Add(time.Duration(i)*10*time.Millisecond), "success@simulator.amazonses.com")
		}
		ids := createMany(b, n, bodies)
		if time.Now().After(start) {
			b.Fatalf("creating the rows took past the first one's due time; raise the lead time")
		}
		for i, id := range ids {
			want[id] = start.Add(time.Duration(i) * 10 * time.Millisecond).UTC().Truncate(time.Millisecond)
		}
		waitSent(b, n, len(ids), 60*time.Second)
		n.stop()
		lines, err := devsink.ReadOutbox(filepath.Join(dir, embedded.OutboxFile))
		if err != nil {
			b.Fatal(err)
		}
		var lags []time.Duration
		for _, l := range lines {
			lags = append(lags, l.At.Sub(want[l.CommunicationID]))
		}
		if len(lags) != 1000 {
			b.Fatalf("%d sends for 1000 rows", len(lags))
		}
		slices.Sort(lags)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(lags[len(lags)/2]), "p50_ms")
		b.ReportMetric(ms(lags[len(lags)*99/100]), "p99_ms")
		b.ReportMetric(ms(lags[len(lags)-1]), "max_ms")
	}
}

// BenchmarkBurst schedules 10,000 emails due in the same second and
// reports how long after that second all of them are terminal, and the
// process's peak RSS. Run it once:
// go test -run '^$' -bench Burst -benchtime 1x ./internal/embedded/
func BenchmarkBurst(b *testing.B) {
	for b.Loop() {
		dir := b.TempDir()
		n := startNode(b, dir, dispatch.Config{}, nil) // the wall clock: lag is what is measured
		due := time.Now().Add(30 * time.Second).Truncate(time.Second)
		bodies := make([]string, 10000)
		for i := range bodies {
			bodies[i] = emailAt(due.Add(time.Duration(i%1000)*time.Millisecond), "success@simulator.amazonses.com")
		}
		ids := createMany(b, n, bodies)
		if time.Now().After(due) {
			b.Fatalf("creating the rows took past their due second; raise the lead time")
		}
		time.Sleep(time.Until(due))
		cpu0 := cpuSeconds()
		stopProfile := func() {}
		if path := os.Getenv("DISPATCHER_BURST_CPUPROFILE"); path != "" {
			// The dispatch phase alone (-cpuprofile also covers the creates).
			stopProfile = startCPUProfile(b, path)
		}
		waitSent(b, n, len(ids), 120*time.Second)
		stopProfile()
		b.ReportMetric(time.Since(due).Seconds(), "s_to_all_terminal")
		// The process's CPU (user + system, every thread) from the due
		// second to the last row terminal: the dispatch phase alone, not
		// the creates before it.
		b.ReportMetric(cpuSeconds()-cpu0, "cpu_s")
		waitTerminal(b, n, ids, time.Second) // the counters agree with the store
		n.stop()
		b.ReportMetric(peakRSSMiB(), "peak_rss_MiB")
	}
}

// createMany creates the rows over the API from 16 concurrent clients (so
// that group commit shares the creates' fsyncs, as under real load) and
// returns their ids in the order of bodies.
func createMany(b *testing.B, n *node, bodies []string) []string {
	b.Helper()
	ids := make([]string, len(bodies))
	errs := make(chan error, 16)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(bodies); i = int(next.Add(1) - 1) {
				id, err := n.tryCreate(bodies[i])
				if err != nil {
					errs <- err
					return
				}
				ids[i] = id
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return ids
}

// startCPUProfile writes a CPU profile to path until stop is called.
func startCPUProfile(b *testing.B, path string) (stop func()) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// waitSent waits on the dispatcher's in-memory counters (polling the
// store would compete with the dispatcher being measured).
func waitSent(b *testing.B, n *node, want int, within time.Duration) {
	b.Helper()
	deadline := time.Now().Add(within)
	st := n.l.Dispatcher.Stats()
	for st.Sent.Load()+st.Failed.Load() < int64(want) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d rows terminal after %v", st.Sent.Load()+st.Failed.Load(), want, within)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// peakRSSMiB is the process's high-water resident set (VmHWM), Linux only.
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}
