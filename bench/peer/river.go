package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// benchArgs is the one job kind: the stand-in for "send this email at T".
type benchArgs struct {
	N int `json:"n"`
}

func (benchArgs) Kind() string { return "bench" }

// lagRecorder is what every River job does: note how late it started after
// its scheduled_at (the dispatcher's benchmarks measure the same thing, due
// time to the sink's send call).
type lagRecorder struct {
	mu   sync.Mutex
	lags []time.Duration
}

func (r *lagRecorder) add(d time.Duration) { r.mu.Lock(); r.lags = append(r.lags, d); r.mu.Unlock() }

func (r *lagRecorder) sorted() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]time.Duration(nil), r.lags...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

type benchWorker struct {
	river.WorkerDefaults[benchArgs]
	rec *lagRecorder
}

func (w *benchWorker) Work(_ context.Context, job *river.Job[benchArgs]) error {
	w.rec.add(time.Since(job.ScheduledAt))
	return nil
}

// riverSide is one River client over the benchmark's Postgres.
type riverSide struct {
	pool *pgxpool.Pool
	rec  *lagRecorder
}

func openRiver(ctx context.Context, dsn string) (*riverSide, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("pgxpool.New: %w", err)
	}
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return nil, fmt.Errorf("rivermigrate.New: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return nil, fmt.Errorf("rivermigrate.Migrate: %w", err)
	}
	return &riverSide{pool: pool, rec: &lagRecorder{}}, nil
}

// client is a fresh River client as shipped: 32 workers on the default
// queue, fetch cooldown and poll interval at River's 1 ms minimum. A job
// inserted with a future ScheduledAt is stored 'scheduled'; River's
// scheduler (every 5 s) promotes those due within its next interval to
// 'available' ahead of time, and the 1 ms fetch (`state = 'available' AND
// scheduled_at <= now()`) takes each when it is due.
func (r *riverSide) client() (*river.Client[pgx.Tx], error) {
	workers := river.NewWorkers()
	river.AddWorker(workers, &benchWorker{rec: r.rec})
	c, err := river.NewClient(riverpgxv5.New(r.pool), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 32}},
		Workers:           workers,
		FetchCooldown:     river.FetchCooldownMin,
		FetchPollInterval: river.FetchPollIntervalMin,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return nil, fmt.Errorf("river.NewClient: %w", err)
	}
	return c, nil
}

// reset empties River's job table and the lag record between workloads.
func (r *riverSide) reset(ctx context.Context) error {
	r.rec = &lagRecorder{}
	if _, err := r.pool.Exec(ctx, "TRUNCATE river_job"); err != nil {
		return fmt.Errorf("truncate river_job: %w", err)
	}
	_, err := r.pool.Exec(ctx, "VACUUM ANALYZE river_job")
	return err
}

// analyze refreshes the planner's statistics of river_job once the jobs are
// in (setup, not measured). Without it the table was analyzed empty (by
// reset) and whether autovacuum re-analyzed it before the jobs were due
// was chance: with the stale plan River's 1 ms fetch cost Postgres 6–9
// CPU-s and the burst 24–40 s, with fresh statistics ~1 CPU-s and ~1 s.
func (r *riverSide) analyze(ctx context.Context) error {
	if _, err := r.pool.Exec(ctx, "ANALYZE river_job"); err != nil {
		return fmt.Errorf("analyze river_job: %w", err)
	}
	return nil
}

// run starts a client, calls body with it and a channel of completed
// events, and stops the client.
func (r *riverSide) run(ctx context.Context, body func(c *river.Client[pgx.Tx], completed <-chan *river.Event) error) error {
	if err := r.reset(ctx); err != nil {
		return err
	}
	c, err := r.client()
	if err != nil {
		return err
	}
	events, cancel := c.SubscribeConfig(&river.SubscribeConfig{ChanSize: 20000, Kinds: []river.EventKind{river.EventKindJobCompleted}})
	defer cancel()
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("river Start: %w", err)
	}
	berr := body(c, events)
	stopCtx, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	if err := c.Stop(stopCtx); err != nil && berr == nil {
		berr = fmt.Errorf("river Stop: %w", err)
	}
	return berr
}

// waitCompleted counts completed events until n arrived.
func waitCompleted(completed <-chan *river.Event, n int, within time.Duration) error {
	deadline := time.After(within)
	for got := 0; got < n; {
		select {
		case ev := <-completed:
			if ev.Kind == river.EventKindJobCompleted {
				got++
			}
		case <-deadline:
			return fmt.Errorf("%d of %d jobs completed after %v", got, n, within)
		}
	}
	return nil
}

// lag is the lag workload: 1,000 jobs due over 10 s, the first 6 s after
// inserting starts (inserted in batches of 100; it fails if the last was
// in after the first was due).
func (r *riverSide) lag(ctx context.Context) (metrics, error) {
	out := metrics{}
	err := r.run(ctx, func(c *river.Client[pgx.Tx], completed <-chan *river.Event) error {
		start := time.Now().Add(6 * time.Second)
		for b := 0; b < 1000; b += 100 { // batches: setup, not measured, and one by one took past 6 s on a busy disk
			params := make([]river.InsertManyParams, 100)
			for i := range params {
				params[i] = river.InsertManyParams{Args: benchArgs{N: b + i}, InsertOpts: &river.InsertOpts{ScheduledAt: start.Add(time.Duration(b+i) * 10 * time.Millisecond)}}
			}
			if _, err := c.InsertMany(ctx, params); err != nil {
				return fmt.Errorf("river InsertMany: %w", err)
			}
		}
		if err := r.analyze(ctx); err != nil {
			return err
		}
		if !time.Now().Before(start) {
			return fmt.Errorf("inserting ended %v after the first job was due", time.Since(start))
		}
		if err := waitCompleted(completed, 1000, 60*time.Second); err != nil {
			return err
		}
		lags := r.rec.sorted()
		out["p50_ms"] = ms(lags[len(lags)/2])
		out["p99_ms"] = ms(lags[len(lags)*99/100])
		return nil
	})
	return out, err
}

// burst is the burst workload: 10,000 jobs due in one second (inserted in
// batches beforehand, not measured); the time from the last due instant
// until all are completed, and the CPU of this process and of every
// Postgres process over the dispatch phase.
func (r *riverSide) burst(ctx context.Context, pg *postgres) (metrics, error) {
	out := metrics{}
	err := r.run(ctx, func(c *river.Client[pgx.Tx], completed <-chan *river.Event) error {
		due := time.Now().Add(20 * time.Second).Truncate(time.Second)
		for b := 0; b < 10000; b += 1000 {
			params := make([]river.InsertManyParams, 1000)
			for i := range params {
				params[i] = river.InsertManyParams{Args: benchArgs{N: b + i}, InsertOpts: &river.InsertOpts{ScheduledAt: due.Add(time.Duration((b+i)%1000) * time.Millisecond)}}
			}
			if _, err := c.InsertMany(ctx, params); err != nil {
				return fmt.Errorf("river InsertMany: %w", err)
			}
		}
		if err := r.analyze(ctx); err != nil {
			return err
		}
		if time.Now().After(due) {
			return fmt.Errorf("inserting took past the due second")
		}
		time.Sleep(time.Until(due))
		cpu0, pg0 := selfCPU(), pg.cpu()
		if err := waitCompleted(completed, 10000, 120*time.Second); err != nil {
			return err
		}
		out["s_after_last_due"] = time.Since(due.Add(999 * time.Millisecond)).Seconds()
		out["cpu_s_process"] = (selfCPU() - cpu0).Seconds()
		out["cpu_s_postgres"] = (pg.cpu() - pg0).Seconds()
		out["cpu_s"] = out["cpu_s_process"] + out["cpu_s_postgres"]
		return nil
	})
	return out, err
}

// inserts is the insert workload: n single-job inserts (each its own
// transaction, committed with fsync) from each number of clients, due a
// day later, the client not started (nothing is worked).
func (r *riverSide) inserts(ctx context.Context, n int, concurrencies []int) (metrics, error) {
	out := metrics{}
	if err := r.reset(ctx); err != nil {
		return nil, err
	}
	c, err := r.client()
	if err != nil {
		return nil, err
	}
	for _, k := range concurrencies {
		due := time.Now().Add(24 * time.Hour)
		res, err := hammer(n, k, func() error {
			_, err := c.Insert(ctx, benchArgs{}, &river.InsertOpts{ScheduledAt: due})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("river Insert: %w", err)
		}
		for name, v := range res {
			out[fmt.Sprintf("c=%d/%s", k, name)] = v
		}
	}
	return out, nil
}

// hammer runs op n times from k goroutines (after k warm-up calls) and
// reports ops per second and the p50 and p99 of one call.
func hammer(n, k int, op func() error) (metrics, error) {
	for range k {
		if err := op(); err != nil {
			return nil, err
		}
	}
	work := make(chan struct{}, n)
	for range n {
		work <- struct{}{}
	}
	close(work)
	lat := make([][]time.Duration, k)
	errs := make([]error, k)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range k {
		wg.Go(func() {
			for range work {
				t0 := time.Now()
				if err := op(); err != nil {
					errs[i] = err
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for i := range k {
		if errs[i] != nil {
			return nil, errs[i]
		}
		all = append(all, lat[i]...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return metrics{
		"creates/s": float64(len(all)) / elapsed.Seconds(),
		"p50_ms":    ms(all[len(all)/2]),
		"p99_ms":    ms(all[len(all)*99/100]),
	}, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
