package awstest

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// Counter counts the AWS API calls made through every client built from a
// config it is attached to: one per operation call, however many HTTP
// attempts the SDK's retryer makes (those are counted as Attempts).
type Counter struct {
	mu       sync.Mutex
	calls    map[string]int
	attempts map[string]int
}

// NewCounter returns an empty counter.
func NewCounter() *Counter { return &Counter{calls: map[string]int{}, attempts: map[string]int{}} }

// Attach adds the counting middleware to cfg's clients.
func (c *Counter) Attach(cfg *aws.Config) {
	cfg.APIOptions = append(cfg.APIOptions, func(stack *middleware.Stack) error {
		if err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("dispatcher.count.calls",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				c.add(c.calls, ctx)
				return next.HandleInitialize(ctx, in)
			}), middleware.After); err != nil {
			return err
		}
		return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("dispatcher.count.attempts",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				c.add(c.attempts, ctx)
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	})
}

func (c *Counter) add(m map[string]int, ctx context.Context) {
	key := awsmiddleware.GetServiceID(ctx) + "." + awsmiddleware.GetOperationName(ctx)
	c.mu.Lock()
	m[key]++
	c.mu.Unlock()
}

// Snapshot returns the calls so far by "Service.Operation".
func (c *Counter) Snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.calls))
	for k, v := range c.calls {
		out[k] = v
	}
	return out
}

// ByService sums the calls so far by service ("DynamoDB", "Scheduler", "SQS", "SESv2", "SNS").
func (c *Counter) ByService() map[string]int {
	out := map[string]int{}
	for k, v := range c.Snapshot() {
		svc, _, _ := strings.Cut(k, ".")
		out[svc] += v
	}
	return out
}

// Exclude runs f and takes the calls it made back out of the counts: for
// a test's own inspection reads in the middle of a measured lifecycle.
// Nothing else may call AWS through the counted clients meanwhile.
func (c *Counter) Exclude(f func()) {
	before := c.Snapshot()
	f()
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.calls {
		if b, ok := before[k]; ok {
			c.calls[k] = b
		} else {
			delete(c.calls, k)
		}
	}
}

// Reset forgets every count.
func (c *Counter) Reset() {
	c.mu.Lock()
	c.calls, c.attempts = map[string]int{}, map[string]int{}
	c.mu.Unlock()
}

// String lists the calls, one "Service.Operation=n" per entry, sorted.
func (c *Counter) String() string {
	snap := c.Snapshot()
	keys := make([]string, 0, len(snap))
	for k := range snap {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%d", k, snap[k])
	}
	return b.String()
}

// Faults makes a fraction of the HTTP requests of every client built from
// a config fail before they reach the emulator, as AWS does under load:
// throttling (HTTP 400 with a ThrottlingException error type) and server
// errors (HTTP 500 and 503). A failed request has no effect on the
// emulator, so a retry is always safe — exactly the failures the SDK's
// retryer and the dispatcher must absorb without losing or duplicating.
type Faults struct {
	mu       sync.Mutex
	rate     float64
	rnd      *rand.Rand
	injected map[string]int
}

// NewFaults fails the given fraction (0–1) of requests, deterministically
// for a seed.
func NewFaults(rate float64, seed uint64) *Faults {
	return &Faults{rate: rate, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), injected: map[string]int{}}
}

// Attach wraps cfg's HTTP client.
func (f *Faults) Attach(cfg *aws.Config) {
	next := cfg.HTTPClient
	if next == nil {
		next = http.DefaultClient
	}
	cfg.HTTPClient = faultyClient{f: f, next: next}
}

// Injected returns how many faults were injected, by kind.
func (f *Faults) Injected() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for k, v := range f.injected {
		out[k] = v
	}
	return out
}

// SetRate changes the fraction of failed requests (0 stops faults).
func (f *Faults) SetRate(rate float64) { f.mu.Lock(); f.rate = rate; f.mu.Unlock() }

func (f *Faults) pick() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rnd.Float64() >= f.rate {
		return ""
	}
	kind := []string{"throttle", "500", "503"}[f.rnd.IntN(3)]
	f.injected[kind]++
	return kind
}

type faultyClient struct {
	f    *Faults
	next aws.HTTPClient
}

func (c faultyClient) Do(req *http.Request) (*http.Response, error) {
	kind := c.f.pick()
	if kind == "" {
		return c.next.Do(req)
	}
	if kind == "throttle" && !strings.Contains(req.Header.Get("Content-Type"), "json") {
		kind = "503" // query/XML protocols (SNS) parse errors from XML: use a status they all retry
	}
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	res := &http.Response{Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}, Request: req}
	switch kind {
	case "throttle":
		res.StatusCode = http.StatusBadRequest
		res.Header.Set("X-Amzn-ErrorType", "ThrottlingException")
		res.Header.Set("Content-Type", "application/x-amz-json-1.0")
		res.Body = io.NopCloser(bytes.NewBufferString(`{"__type":"ThrottlingException","message":"Rate exceeded (injected)"}`))
	case "500":
		res.StatusCode = http.StatusInternalServerError
		res.Body = io.NopCloser(bytes.NewBufferString(`{"message":"internal error (injected)"}`))
	default:
		res.StatusCode = http.StatusServiceUnavailable
		res.Body = io.NopCloser(bytes.NewBufferString(`{"message":"service unavailable (injected)"}`))
	}
	res.Status = fmt.Sprintf("%d %s", res.StatusCode, http.StatusText(res.StatusCode))
	// DynamoDB checks the body against this header; a real error carries it too.
	body, _ := io.ReadAll(res.Body)
	res.Header.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	res.Body = io.NopCloser(bytes.NewReader(body))
	res.ContentLength = int64(len(body))
	return res, nil
}
