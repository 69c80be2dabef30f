package embedded_test

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/channel/devsink"
	"github.com/dispatcherhq/dispatcher/internal/embedded"
)

// BenchmarkDispatchLag schedules 1,000 emails spread evenly over 10 s on
// the embedded stack (API → SQLite → local timer → dispatcher → outbox,
// serve's defaults) and reports the lag from scheduled_for to the sink's
// send call. The first is due 6 s after the loop starts creating them and
// it fails if any was created after that, so the lag is never that of a
// row created late. Run it once:
// go test -run '^$' -bench DispatchLag -benchtime 1x ./internal/embedded/
func BenchmarkDispatchLag(b *testing.B) {
	for b.Loop() {
		dir := b.TempDir()
		n := startServeNode(b, dir) // the wall clock: lag is what is measured
		start := time.Now().Add(6 * time.Second)
		ats, bodies := make([]time.Time, 1000), make([]string, 1000)
		for i := range ats {
			ats[i] = start.Add(time.Duration(i) * 10 * time.Millisecond)
			bodies[i] = emailAt(ats[i], "success@simulator.amazonses.com")
		}
		ids := createAll(b, n, bodies, 8)
		want := map[string]time.Time{}
		for i, id := range ids {
			want[id] = ats[i].UTC().Truncate(time.Millisecond)
		}
		if !time.Now().Before(start) {
			b.Fatalf("creating the 1,000 rows ended %v after the first was due; raise the lead time", time.Since(start))
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

// BenchmarkBurst schedules 10,000 emails due in the same second (serve's
// defaults) and reports, for the dispatch phase alone: how long after the
// start of that second all of them are terminal (s_to_all_terminal) and
// after its last due instant (s_after_last_due), the CPU the process used
// from the first due instant to the last row terminal (cpu_s, user +
// system, getrusage), and the peak RSS in that phase (the create phase's
// garbage handed back to the OS and the high-water mark reset before the
// first row is due). Run it once:
// go test -run '^$' -bench Burst -benchtime 1x ./internal/embedded/
func BenchmarkBurst(b *testing.B) {
	for b.Loop() {
		dir := b.TempDir()
		n := startServeNode(b, dir) // the wall clock: lag is what is measured
		due := time.Now().Add(30 * time.Second).Truncate(time.Second)
		bodies := make([]string, 10000)
		for i := range bodies {
			bodies[i] = emailAt(due.Add(time.Duration(i%1000)*time.Millisecond), "success@simulator.amazonses.com")
		}
		ids := createAll(b, n, bodies, 8)
		if time.Now().After(due) {
			b.Fatalf("creating the rows took past their due second; raise the lead time")
		}
		resetPeakRSS()
		time.Sleep(time.Until(due))
		cpu0 := processCPU()
		stopProfile := func() {}
		if path := os.Getenv("DISPATCHER_BURST_CPUPROFILE"); path != "" {
			// The dispatch phase alone (-cpuprofile also covers the creates).
			stopProfile = startCPUProfile(b, path)
		}
		waitSent(b, n, len(ids), 120*time.Second)
		stopProfile()
		b.ReportMetric(time.Since(due).Seconds(), "s_to_all_terminal")
		b.ReportMetric(time.Since(due.Add(999*time.Millisecond)).Seconds(), "s_after_last_due")
		b.ReportMetric((processCPU() - cpu0).Seconds(), "cpu_s")
		b.ReportMetric(peakRSSMiB(), "peak_rss_MiB")
		waitTerminal(b, n, ids, time.Second) // the counters agree with the store
		n.stop()
	}
}

// startServeNode runs the embedded process on dir with the configuration
// `dispatcher serve` runs with by default (cmd/dispatcher: a sweep every
// minute, 32 workers, synchronous=FULL, the 5-minute timer horizon, the
// default leases), so a benchmark measures what an operator gets rather
// than a test's faster sweep.
func startServeNode(b *testing.B, dir string) *node {
	b.Helper()
	return startNodeWith(b, embedded.LocalConfig{DataDir: dir}, nil) // zero values: serve's defaults
}

// createAll creates the rows through the API from clients goroutines at
// once (so concurrent creates share the group commit, as serve's clients
// do) and returns their ids in the order of bodies.
func createAll(b *testing.B, n *node, bodies []string, clients int) []string {
	b.Helper()
	ids := make([]string, len(bodies))
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := c; i < len(bodies) && errs[c] == nil; i += clients {
				ids[i], errs[c] = n.tryCreate(bodies[i])
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
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

// resetPeakRSS hands the heap's free pages back to the OS and resets the
// process's high-water resident set (VmHWM) to what it holds now, so a
// later peakRSSMiB is the peak of what follows (Linux ≥ 4.0:
// /proc/self/clear_refs; elsewhere it does nothing but free).
func resetPeakRSS() {
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
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
