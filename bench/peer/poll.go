package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// pollSide is the design most schedulers start as: a table with a due
// index, and one loop that wakes every interval and claims what is due
// (in batches of 1,000, FOR UPDATE SKIP LOCKED, so several pollers could
// share it). Handling a job is noting its lag, as River's worker does.
type pollSide struct {
	pool  *pgxpool.Pool
	every time.Duration
}

const pollSchema = `
CREATE TABLE IF NOT EXISTS poll_job (
	id      bigserial PRIMARY KEY,
	due     timestamptz NOT NULL,
	done_at timestamptz
);
CREATE INDEX IF NOT EXISTS poll_job_due ON poll_job (due) WHERE done_at IS NULL;`

const pollClaim = `
UPDATE poll_job SET done_at = clock_timestamp()
WHERE id IN (SELECT id FROM poll_job WHERE done_at IS NULL AND due <= now() ORDER BY due LIMIT 1000 FOR UPDATE SKIP LOCKED)
RETURNING due`

func (p *pollSide) reset(ctx context.Context) error {
	if _, err := p.pool.Exec(ctx, pollSchema); err != nil {
		return fmt.Errorf("poll schema: %w", err)
	}
	_, err := p.pool.Exec(ctx, "TRUNCATE poll_job")
	return err
}

// loop polls every p.every until ctx ends, recording each job's lag, and
// counts the jobs it handled on done.
func (p *pollSide) loop(ctx context.Context, rec *lagRecorder, done chan<- int) {
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for {
			rows, err := p.pool.Query(ctx, pollClaim)
			if err != nil {
				return
			}
			n := 0
			for rows.Next() {
				var due time.Time
				if err := rows.Scan(&due); err != nil {
					rows.Close()
					return
				}
				rec.add(time.Since(due))
				n++
			}
			rows.Close()
			if n > 0 {
				done <- n
			}
			if n < 1000 {
				break
			}
		}
	}
}

func (p *pollSide) insert(ctx context.Context, dues []time.Time) error {
	for b := 0; b < len(dues); b += 1000 {
		end := min(b+1000, len(dues))
		if _, err := p.pool.Exec(ctx, "INSERT INTO poll_job (due) SELECT unnest($1::timestamptz[])", dues[b:end]); err != nil {
			return fmt.Errorf("poll insert: %w", err)
		}
	}
	return nil
}

func waitCount(done <-chan int, n int, within time.Duration) error {
	deadline := time.After(within)
	for got := 0; got < n; {
		select {
		case k := <-done:
			got += k
		case <-deadline:
			return fmt.Errorf("%d of %d polled jobs handled after %v", got, n, within)
		}
	}
	return nil
}

// lag: 1,000 jobs due over 10 s, the first 6 s after inserting starts.
func (p *pollSide) lag(ctx context.Context) (metrics, error) {
	if err := p.reset(ctx); err != nil {
		return nil, err
	}
	start := time.Now().Add(6 * time.Second)
	dues := make([]time.Time, 1000)
	for i := range dues {
		dues[i] = start.Add(time.Duration(i) * 10 * time.Millisecond)
	}
	if err := p.insert(ctx, dues); err != nil {
		return nil, err
	}
	if _, err := p.pool.Exec(ctx, "ANALYZE poll_job"); err != nil {
		return nil, err
	}
	if !time.Now().Before(start) {
		return nil, fmt.Errorf("inserting ended after the first job was due")
	}
	rec, done := &lagRecorder{}, make(chan int, 100)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go p.loop(ctx, rec, done)
	if err := waitCount(done, 1000, 60*time.Second); err != nil {
		return nil, err
	}
	lags := rec.sorted()
	return metrics{"p50_ms": ms(lags[len(lags)/2]), "p99_ms": ms(lags[len(lags)*99/100])}, nil
}

// burst: 10,000 due in one second; time after the last due instant until
// all are handled, and CPU (this process + Postgres) over that phase.
func (p *pollSide) burst(ctx context.Context, pg *postgres) (metrics, error) {
	if err := p.reset(ctx); err != nil {
		return nil, err
	}
	due := time.Now().Add(20 * time.Second).Truncate(time.Second)
	dues := make([]time.Time, 10000)
	for i := range dues {
		dues[i] = due.Add(time.Duration(i%1000) * time.Millisecond)
	}
	if err := p.insert(ctx, dues); err != nil {
		return nil, err
	}
	if _, err := p.pool.Exec(ctx, "VACUUM ANALYZE poll_job"); err != nil {
		return nil, err
	}
	if time.Now().After(due) {
		return nil, fmt.Errorf("inserting took past the due second")
	}
	rec, done := &lagRecorder{}, make(chan int, 100)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go p.loop(ctx, rec, done)
	time.Sleep(time.Until(due))
	cpu0, pg0 := selfCPU(), pg.cpu()
	if err := waitCount(done, 10000, 60*time.Second); err != nil {
		return nil, err
	}
	out := metrics{"s_after_last_due": time.Since(due.Add(999 * time.Millisecond)).Seconds()}
	out["cpu_s"] = (selfCPU() - cpu0).Seconds() + (pg.cpu() - pg0).Seconds()
	return out, nil
}
