package embedded_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/embedded"
	"github.com/dispatcherhq/dispatcher/internal/store/sqlite"
)

// BenchmarkCreateHTTP measures POST /v1/scheduled-communications over real
// HTTP (loopback, keep-alive) against the whole embedded process — the
// SQLite file with the durability `serve` uses, and the timer armed for
// each row as `serve` arms it — with 2, 8 and 32 clients at once. Each
// create is an email due a day later (so nothing is dispatched while it
// runs). It reports creates/s and the p50 and p99 of one request's
// latency, for each durability `serve --durability` offers (full, the
// default: every commit synced to disk; normal). The dev company has 50,000
// credits: run it with a fixed count,
//
//	go test -run '^$' -bench CreateHTTP -benchtime 3000x ./internal/embedded/
func BenchmarkCreateHTTP(b *testing.B) {
	for _, d := range []sqlite.Durability{sqlite.DurabilityFull, sqlite.DurabilityNormal} {
		b.Run(string(d), func(b *testing.B) { benchmarkCreateHTTP(b, d) })
	}
}

func benchmarkCreateHTTP(b *testing.B, durability sqlite.Durability) {
	for _, clients := range []int{2, 8, 32} {
		b.Run(fmt.Sprintf("c=%d", clients), func(b *testing.B) {
			if b.N > 45000 {
				b.Fatalf("%d creates exceed the dev company's credits: use -benchtime Nx with N ≤ 45000", b.N)
			}
			n := startNodeWith(b, embedded.LocalConfig{DataDir: b.TempDir(), Durability: durability}, nil) // the rest: serve's defaults
			defer n.stop()
			srv := httptest.NewServer(n.l.API)
			defer srv.Close()
			tr := &http.Transport{MaxIdleConnsPerHost: clients}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			body := emailAt(time.Now().Add(24*time.Hour), "success@simulator.amazonses.com")
			post := func() error {
				req, _ := http.NewRequest("POST", srv.URL+"/v1/scheduled-communications", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+n.key)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					return err
				}
				if resp.StatusCode != http.StatusCreated {
					return fmt.Errorf("status %d", resp.StatusCode)
				}
				return nil
			}
			for range clients { // warm the connections
				if err := post(); err != nil {
					b.Fatal(err)
				}
			}
			lat := make([][]time.Duration, clients)
			var next sync.WaitGroup
			work := make(chan struct{}, b.N)
			for range b.N {
				work <- struct{}{}
			}
			close(work)
			errs := make(chan error, clients)
			b.ResetTimer()
			start := time.Now()
			for i := range clients {
				next.Go(func() {
					for range work {
						t0 := time.Now()
						if err := post(); err != nil {
							errs <- err
							return
						}
						lat[i] = append(lat[i], time.Since(t0))
					}
				})
			}
			next.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			all := slices.Concat(lat...)
			slices.Sort(all)
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			b.ReportMetric(float64(len(all))/elapsed.Seconds(), "creates/s")
			b.ReportMetric(ms(all[len(all)/2]), "p50_ms")
			b.ReportMetric(ms(all[len(all)*99/100]), "p99_ms")
		})
	}
}
