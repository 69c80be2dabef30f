// Command peer runs the same three workloads — lag, burst, inserts —
// against Dispatcher's embedded engine and against River (Go + Postgres
// job queue), interleaved in one run, and prints the medians and their
// ratios as a Markdown table. It is what `make bench-peer` runs
// (scripts/bench-peer.sh starts the Postgres it needs); see BENCHMARKS.md,
// "Side by side with River".
//
// Dispatcher's side is the repository's own benchmarks
// (internal/embedded: BenchmarkDispatchLag, BenchmarkBurst,
// BenchmarkCreateHTTP/full), run from a compiled test binary, one process
// per workload, so each measures its own process. This module is apart
// from the product's so the product's go.mod gains no Postgres driver.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// metrics are one workload's readings by name (units in the name).
type metrics map[string]float64

func main() {
	dsn := flag.String("dsn", "", "Postgres connection string (pgx) for River and the polling design")
	pgdata := flag.String("pgdata", "", "Postgres data directory (its postmaster.pid: whose CPU the burst counts)")
	embeddedTest := flag.String("embedded-test", "", "the compiled test binary of internal/embedded (go test -c)")
	embeddedDir := flag.String("embedded-dir", "", "the directory to run it in (internal/embedded)")
	runs := flag.Int("runs", 3, "runs of every workload; the table shows medians")
	creates := flag.Int("creates", 3000, "creates (inserts) per concurrency level")
	poll := flag.Duration("poll", time.Second, "interval of the polling design (0: leave it out)")
	only := flag.String("workloads", "lag,burst,inserts", "which workloads to run, comma-separated")
	flag.Parse()
	if *dsn == "" || *pgdata == "" || *embeddedTest == "" {
		log.Fatal("-dsn, -pgdata and -embedded-test are required")
	}
	ctx := context.Background()
	rv, err := openRiver(ctx, *dsn)
	if err != nil {
		log.Fatal(err)
	}
	pg := &postgres{dataDir: *pgdata}
	ps := &pollSide{pool: rv.pool, every: *poll}
	concurrencies := []int{2, 8, 32}

	// results[side][workload] holds one metrics per run.
	results := map[string]map[string][]metrics{"dispatcher": {}, "river": {}, "poll": {}}
	var failures []string
	record := func(side, workload string, m metrics, err error) {
		if err != nil { // a run that could not measure (rows created late on a busy machine) is left out, and said
			log.Printf("%-10s %-7s FAILED, left out of the medians: %v", side, workload, err)
			failures = append(failures, fmt.Sprintf("%s %s: %v", side, workload, strings.SplitN(err.Error(), "\n", 2)[0]))
			return
		}
		log.Printf("%-10s %-7s %v", side, workload, m)
		results[side][workload] = append(results[side][workload], m)
	}
	emb := func(bench, benchtime string) (map[string]metrics, error) {
		return runEmbedded(*embeddedTest, *embeddedDir, bench, benchtime)
	}
	want := map[string]bool{}
	for _, w := range strings.Split(*only, ",") {
		want[strings.TrimSpace(w)] = true
	}
	for r := range *runs {
		log.Printf("run %d of %d", r+1, *runs)
		if want["lag"] {
			d, err := emb("^BenchmarkDispatchLag$", "1x")
			record("dispatcher", "lag", d["BenchmarkDispatchLag"], err)
			m, err := rv.lag(ctx)
			record("river", "lag", m, err)
			if *poll > 0 {
				m, err = ps.lag(ctx)
				record("poll", "lag", m, err)
			}
		}
		if want["burst"] {
			d, err := emb("^BenchmarkBurst$", "1x")
			record("dispatcher", "burst", d["BenchmarkBurst"], err)
			m, err := rv.burst(ctx, pg)
			record("river", "burst", m, err)
			if *poll > 0 {
				m, err = ps.burst(ctx, pg)
				record("poll", "burst", m, err)
			}
		}
		if want["inserts"] {
			d, err := emb("^BenchmarkCreateHTTP$/^full$", strconv.Itoa(*creates)+"x")
			ins := metrics{}
			for name, mm := range d {
				for k, v := range mm {
					ins[strings.TrimPrefix(name, "BenchmarkCreateHTTP/full/")+"/"+k] = v
				}
			}
			record("dispatcher", "inserts", ins, err)
			m, err := rv.inserts(ctx, *creates, concurrencies)
			record("river", "inserts", m, err)
		}
	}

	med := func(side, workload, key string) (float64, bool) {
		var vs []float64
		for _, m := range results[side][workload] {
			if v, ok := m[key]; ok {
				vs = append(vs, v)
			}
		}
		if len(vs) == 0 {
			return 0, false
		}
		slices.Sort(vs)
		return vs[len(vs)/2], true
	}
	fmt.Printf("\nMedians of %d runs (Dispatcher: internal/embedded benchmarks, serve's defaults, synchronous=FULL; River v0.51.2 as shipped, 32 workers, 1 ms fetch; Postgres fsync=on, synchronous_commit=on).\n\n", *runs)
	pollCol := *poll > 0
	if pollCol {
		fmt.Printf("| workload | measure | Dispatcher | River | poll every %v | Dispatcher vs River |\n|---|---|---|---|---|---|\n", *poll)
	} else {
		fmt.Printf("| workload | measure | Dispatcher | River | Dispatcher vs River |\n|---|---|---|---|---|\n")
	}
	row := func(workload, label, key string, lowerBetter bool, format string) {
		d, okD := med("dispatcher", workload, key)
		rv, okR := med("river", workload, key)
		if !okD && !okR {
			return
		}
		cells := []string{workload, label, fmt.Sprintf(format, d), fmt.Sprintf(format, rv)}
		if pollCol {
			if p, ok := med("poll", workload, key); ok {
				cells = append(cells, fmt.Sprintf(format, p))
			} else {
				cells = append(cells, "")
			}
		}
		cells = append(cells, lead(d, rv, lowerBetter))
		fmt.Printf("| %s |\n", strings.Join(cells, " | "))
	}
	row("lag", "p50, due → handled (ms)", "p50_ms", true, "%.2f")
	row("lag", "p99 (ms)", "p99_ms", true, "%.2f")
	row("burst", "all done after the last due instant (s)", "s_after_last_due", true, "%.3f")
	row("burst", "CPU over the dispatch phase (CPU-s)", "cpu_s", true, "%.2f")
	for _, c := range concurrencies {
		row("inserts", fmt.Sprintf("c=%d creates/s", c), fmt.Sprintf("c=%d/creates/s", c), false, "%.0f")
		row("inserts", fmt.Sprintf("c=%d p50 (ms)", c), fmt.Sprintf("c=%d/p50_ms", c), true, "%.2f")
		row("inserts", fmt.Sprintf("c=%d p99 (ms)", c), fmt.Sprintf("c=%d/p99_ms", c), true, "%.2f")
	}
	fmt.Println()
	for side, ws := range results {
		for w, ms := range ws {
			if len(ms) != *runs {
				fmt.Printf("%s %s: median of %d runs, not %d.\n", side, w, len(ms), *runs)
			}
		}
	}
	for _, f := range failures {
		fmt.Println("failed run:", f)
	}
	fmt.Println("River's burst CPU is its process plus every Postgres process; Dispatcher's is its one process.")
	if v, ok := med("river", "burst", "cpu_s_postgres"); ok {
		p, _ := med("river", "burst", "cpu_s_process")
		fmt.Printf("River's burst CPU split (medians): process %.2f CPU-s, Postgres %.2f CPU-s.\n", p, v)
	}
	if d, ok := med("dispatcher", "burst", "peak_rss_MiB"); ok {
		fmt.Printf("Dispatcher's peak RSS in the burst's dispatch phase (median): %.1f MiB.\n", d)
	}
}

// lead says who is ahead and by how much ("Dispatcher 2.1×").
func lead(d, r float64, lowerBetter bool) string {
	if d <= 0 || r <= 0 {
		return "n/a"
	}
	x := r / d
	if !lowerBetter {
		x = d / r
	}
	if x >= 1 {
		return fmt.Sprintf("Dispatcher %.1f×", x)
	}
	return fmt.Sprintf("**River %.1f×**", 1/x)
}

// runEmbedded runs the compiled internal/embedded test binary on one
// benchmark pattern and returns each benchmark's reported metrics by name
// (without the -GOMAXPROCS suffix).
func runEmbedded(bin, dir, bench, benchtime string) (map[string]metrics, error) {
	cmd := exec.Command(bin, "-test.run", "^$", "-test.bench", bench, "-test.benchtime", benchtime, "-test.timeout", "30m")
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s -test.bench %s: %w\n%s", bin, bench, err, out)
	}
	res := map[string]metrics{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		m := metrics{}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", line, err)
			}
			m[f[i+1]] = v
		}
		res[name] = m
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("%s -test.bench %s printed no benchmark line:\n%s", bin, bench, out)
	}
	return res, nil
}
