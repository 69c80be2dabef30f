package embedded_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/channel/devsink"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
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
		want := map[string]time.Time{}
		var ids []string
		for i := range 1000 {
			at := start.Add(time.Duration(i) * 10 * time.Millisecond)
			id := n.create(b, emailAt(at, "success@simulator.amazonses.com"))
			want[id] = at.UTC().Truncate(time.Millisecond)
			ids = append(ids, id)
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

// BenchmarkBurst schedules 10,000 emails due in the same second and
// reports how long after that second all of them are terminal, and the
// process's peak RSS. Run it once:
// go test -run '^$' -bench Burst -benchtime 1x ./internal/embedded/
func BenchmarkBurst(b *testing.B) {
	for b.Loop() {
		dir := b.TempDir()
		n := startNode(b, dir, dispatch.Config{}, nil) // the wall clock: lag is what is measured
		due := time.Now().Add(8 * time.Second).Truncate(time.Second)
		ids := make([]string, 0, 10000)
		for i := range 10000 {
			ids = append(ids, n.create(b, emailAt(due.Add(time.Duration(i%1000)*time.Millisecond), "success@simulator.amazonses.com")))
		}
		if time.Now().After(due) {
			b.Fatalf("creating the rows took past their due second; raise the lead time")
		}
		time.Sleep(time.Until(due))
		waitSent(b, n, len(ids), 120*time.Second)
		b.ReportMetric(time.Since(due).Seconds(), "s_to_all_terminal")
		waitTerminal(b, n, ids, time.Second) // the counters agree with the store
		n.stop()
		b.ReportMetric(peakRSSMiB(), "peak_rss_MiB")
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
