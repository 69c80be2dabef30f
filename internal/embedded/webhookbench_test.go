package embedded_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// slowReceiver answers every message after delay and records, per
// message, the lag from its event's time to its arrival.
type slowReceiver struct {
	delay time.Duration
	mu    sync.Mutex
	lags  []time.Duration
	first time.Time
	last  time.Time
}

func (r *slowReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	arrived := time.Now()
	var msg struct {
		Data struct {
			Event struct {
				At time.Time `json:"at"`
			} `json:"event"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &msg)
	time.Sleep(r.delay) // the receiver's own work: what is measured is how the product copes with it
	r.mu.Lock()
	r.lags = append(r.lags, arrived.Sub(msg.Data.Event.At))
	if r.first.IsZero() {
		r.first = arrived
	}
	r.last = time.Now()
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *slowReceiver) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.lags) }

// BenchmarkWebhookDelivery pushes 10,000 events (the created events of
// 10,000 emails due next week, so that nothing else runs) to one endpoint
// that answers in 200 ms, and reports deliveries per second (first event
// to last answer) and the event→arrival lag. "beside_a_hanging_endpoint"
// does the same while another company's endpoint never answers (each of
// its 1,000 messages holds a connection for the 15 s timeout): the ratio
// of the two rates says how much a dead endpoint slows the others. Run it
// once: go test -run '^$' -bench WebhookDelivery -benchtime 1x ./internal/embedded/
func BenchmarkWebhookDelivery(b *testing.B) {
	for _, hang := range []bool{false, true} {
		name := "alone"
		if hang {
			name = "beside_a_hanging_endpoint"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				benchWebhooks(b, 10000, hang, 0)
			}
		})
	}
	// Below the receiver's capacity (100 events a second for 10 s against
	// 160 a second): the lag is the product's own, not a queue's.
	b.Run("paced_100_per_s", func(b *testing.B) {
		for b.Loop() {
			benchWebhooks(b, 1000, false, 10*time.Millisecond)
		}
	})
}

// benchWebhooks creates events rows (one created event each), every pace
// (0: as fast as the API takes them), and measures their delivery.
func benchWebhooks(b *testing.B, events int, hang bool, pace time.Duration) {
	dir := b.TempDir()
	n := startServeNode(b, dir) // the wall clock: lag is what is measured
	defer n.stop()
	rc := &slowReceiver{delay: 200 * time.Millisecond}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	register(b, n, n.key, srv.URL)
	due := time.Now().Add(7 * 24 * time.Hour)
	if hang {
		stop := make(chan struct{})
		dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-stop:
			case <-r.Context().Done():
			}
		}))
		defer dead.Close()
		defer close(stop)
		ctx := context.Background()
		if err := app.CreateCompany(ctx, n.l.Store, "other", 100000, "UTC"); err != nil {
			b.Fatal(err)
		}
		key, err := app.CreateKey(ctx, n.l.Store, "other", comms.AllScopes)
		if err != nil {
			b.Fatal(err)
		}
		register(b, n, key, dead.URL)
		other := &node{l: n.l, key: key}
		for range events / 10 {
			other.create(b, emailAt(due, "sarah@example.com"))
		}
	}
	start := time.Now()
	for i := range events {
		if pace > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * pace)))
		}
		n.create(b, emailAt(due, "sarah@example.com"))
	}
	deadline := time.Now().Add(10 * time.Minute)
	for rc.count() < events {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d messages arrived", rc.count(), events)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
	rc.mu.Lock()
	lags := slices.Clone(rc.lags)
	last := rc.last
	rc.mu.Unlock()
	slices.Sort(lags)
	s := func(d time.Duration) float64 { return d.Seconds() }
	b.ReportMetric(float64(events)/last.Sub(start).Seconds(), "deliveries/s")
	b.ReportMetric(s(lags[len(lags)/2]), "lag_p50_s")
	b.ReportMetric(s(lags[len(lags)*99/100]), "lag_p99_s")
	b.ReportMetric(s(last.Sub(start)), "s_total")
}

// register makes a webhook endpoint at url for the key's company, for the
// created events only.
func register(b *testing.B, n *node, key, url string) {
	b.Helper()
	req := httptest.NewRequest("POST", "/v1/webhook-endpoints", strings.NewReader(fmt.Sprintf(`{"url":%q,"event_types":["created"]}`, url)))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	n.l.API.ServeHTTP(rec, req)
	if rec.Code != 201 {
		b.Fatalf("register: %d %s", rec.Code, rec.Body)
	}
}
