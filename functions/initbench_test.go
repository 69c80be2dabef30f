// Package functions_test measures the Lambda functions as Lambda runs them:
// the size of each bootstrap (linux/arm64, the flags of `make
// build-functions`) and the time from exec to the function's first request
// for an invocation (start → ready), against a stub of the Lambda Runtime
// API. `make bench-init` runs it; BENCHMARKS.md ("Lambda binaries") keeps
// the numbers.
package functions_test

import (
	"bytes"
	"compress/gzip"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// Functions are the Lambda functions, each built from functions/<name>.
var Functions = []string{"api", "dispatch", "sweeper", "events", "webhooks"}

// Ceilings of the linux/arm64 bootstraps (issue 14): the API, which
// validates phone numbers with libphonenumber, ≤ 18 MiB; the functions
// behind it, which link neither the API nor libphonenumber, ≤ 15 MiB.
var ceilings = map[string]int64{"api": 18 << 20, "dispatch": 15 << 20, "sweeper": 15 << 20, "events": 15 << 20, "webhooks": 15 << 20}

// phoneless are the functions that must not link libphonenumber: its init
// parses all its metadata (~16 ms here, ~29 ms on a small Lambda).
var phoneless = []string{"dispatch", "sweeper", "events", "webhooks"}

// TestBootstrapSizes builds each function as `make build-functions` does
// and holds it under its ceiling, and checks that only the api function
// links libphonenumber or the HTTP API. (Skipped with -short: it links
// five binaries, a few seconds with a warm build cache.)
func TestBootstrapSizes(t *testing.T) {
	if testing.Short() {
		t.Skip("links every function")
	}
	for _, fn := range phoneless {
		out, err := exec.Command("go", "list", "-tags", "lambda.norpc", "-deps", "./"+fn).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", fn, err)
		}
		for _, pkg := range strings.Fields(string(out)) {
			if pkg == "github.com/nyaruka/phonenumbers" || strings.HasSuffix(pkg, "/internal/httpapi") || strings.HasSuffix(pkg, "/internal/contract") {
				t.Errorf("%s links %s", fn, pkg)
			}
		}
	}
	dir := t.TempDir()
	for _, fn := range Functions {
		raw, _ := sizes(t, build(t, dir, fn, "linux", "arm64"))
		if int64(raw) > ceilings[fn] {
			t.Errorf("%s bootstrap is %.1f MiB, over its ceiling of %d MiB", fn, float64(raw)/(1<<20), ceilings[fn]>>20)
		}
		t.Logf("%s: %.1f MiB", fn, float64(raw)/(1<<20))
	}
}

// initRuns is how many cold starts each function's median is taken over.
const initRuns = 5

// fakeEnv is the environment of every function: fake resource names (the
// SDK calls nothing at init) and static credentials, so no credential
// provider is asked. HOME points at an empty directory: no shared config.
func fakeEnv(runtimeAPI, home string) []string {
	return []string{
		"AWS_LAMBDA_RUNTIME_API=" + runtimeAPI,
		"AWS_LAMBDA_FUNCTION_NAME=bench", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512",
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "HOME=" + home,
		"_X_AMZN_TRACE_ID=Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0",
		"DISPATCHER_TABLE_NAME=bench", "DISPATCHER_QUEUE_URL=https://sqs.us-east-1.amazonaws.com/123456789012/bench",
		"DISPATCHER_WEBHOOK_QUEUE_URL=https://sqs.us-east-1.amazonaws.com/123456789012/bench-webhooks",
		"DISPATCHER_SCHEDULE_GROUP=bench", "DISPATCHER_SCHEDULER_ROLE_ARN=arn:aws:iam::123456789012:role/bench",
		"DISPATCHER_DISPATCH_FUNCTION_ARN=arn:aws:lambda:us-east-1:123456789012:function:bench-dispatch",
		"DISPATCHER_SCHEDULER_DLQ_ARN=arn:aws:sqs:us-east-1:123456789012:bench-dlq",
		"DISPATCHER_DEFAULT_FROM_EMAIL=team@example.com",
		"DISPATCHER_VOICE_SECRET_ARN=arn:aws:secretsmanager:us-east-1:123456789012:secret:bench",
		"DISPATCHER_VOICE_PROVIDER_URL=https://api.retellai.com",
	}
}

// build builds functions/<fn> for goos/goarch with the flags of `make
// build-functions` into dir and returns the binary's path.
func build(tb testing.TB, dir, fn, goos, goarch string) string {
	tb.Helper()
	out := filepath.Join(dir, fn+"-"+goos+"-"+goarch)
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", out, "./"+fn)
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build %s: %v\n%s", fn, err, b)
	}
	return out
}

// sizes returns the size of the file at path and of its gzip -9.
func sizes(tb testing.TB, path string) (raw, gz int) {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	w.Write(b)
	w.Close()
	return len(b), buf.Len()
}

// runtimeStub is the part of the Lambda Runtime API a function calls
// first: GET /2018-06-01/runtime/invocation/next, which it calls when its
// init is done. The stub notes when that came and never answers it (the
// process is killed); an init error is reported on initErr.
type runtimeStub struct {
	ready   chan time.Time
	initErr chan string
}

func (s *runtimeStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/2018-06-01/runtime/invocation/next":
		select {
		case s.ready <- time.Now():
		default:
		}
		<-r.Context().Done()
	case "/2018-06-01/runtime/init/error":
		var b bytes.Buffer
		b.ReadFrom(r.Body)
		select {
		case s.initErr <- b.String():
		default:
		}
		w.WriteHeader(http.StatusAccepted)
	default:
		http.NotFound(w, r)
	}
}

// startToReady execs bin once against the stub and returns the time from
// exec to its first GET …/invocation/next.
func startToReady(tb testing.TB, bin, addr, home string, stub *runtimeStub) time.Duration {
	tb.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Env = fakeEnv(addr, home)
	cmd.Stderr = &stderr
	exited := make(chan error, 1)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	select {
	case at := <-stub.ready:
		return at.Sub(start)
	case msg := <-stub.initErr:
		tb.Fatalf("%s: init error: %s", filepath.Base(bin), msg)
	case err := <-exited:
		exited <- err
		tb.Fatalf("%s exited before asking for an invocation: %v\n%s", filepath.Base(bin), err, stderr.String())
	case <-time.After(30 * time.Second):
		tb.Fatalf("%s: no invocation asked for in 30 s\n%s", filepath.Base(bin), stderr.String())
	}
	return 0
}

// BenchmarkInit reports, per function: bootstrap-MiB and gzip9-MiB (the
// linux/arm64 bootstrap and its gzip -9), and init-ms, the median over
// initRuns cold starts of the host-arch build from exec to ready.
//
//	go test -run '^$' -bench Init -benchtime 1x ./functions/
func BenchmarkInit(b *testing.B) {
	dir := b.TempDir()
	home := b.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	stub := &runtimeStub{ready: make(chan time.Time, 1), initErr: make(chan string, 1)}
	srv := &http.Server{Handler: stub}
	go srv.Serve(ln)
	defer srv.Close()
	for _, fn := range Functions {
		b.Run(fn, func(b *testing.B) {
			raw, gz := sizes(b, build(b, dir, fn, "linux", "arm64"))
			host := build(b, dir, fn, runtime.GOOS, runtime.GOARCH)
			startToReady(b, host, ln.Addr().String(), home, stub) // warm the page cache
			var runs []time.Duration
			for b.Loop() {
				runs = runs[:0]
				for range initRuns {
					runs = append(runs, startToReady(b, host, ln.Addr().String(), home, stub))
				}
			}
			slices.Sort(runs)
			b.ReportMetric(float64(raw)/(1<<20), "bootstrap-MiB")
			b.ReportMetric(float64(gz)/(1<<20), "gzip9-MiB")
			b.ReportMetric(float64(runs[len(runs)/2].Microseconds())/1000, "init-ms")
			b.ReportMetric(0, "ns/op")
			b.Logf("%s: bootstrap %.1f MiB, gzip -9 %.1f MiB, init runs %v", fn, float64(raw)/(1<<20), float64(gz)/(1<<20), runs)
		})
	}
}
