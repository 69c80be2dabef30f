// Package awstest is the harness of the tests that run against a real AWS
// emulator (moto server, or LocalStack): it builds SDK configs aimed at
// AWS_ENDPOINT_URL, names resources uniquely so test packages can share
// one emulator in parallel, and reads back what the emulator recorded.
//
// Endpoints come from AWS_ENDPOINT_URL only, so the same tests run against
// moto (what `make test` starts on 127.0.0.1:4566), LocalStack, or nothing:
// without an emulator they skip with a loud message — except when CI is set
// (or DISPATCHER_REQUIRE_EMULATOR=1), where a missing emulator fails them.
// The same holds for the tests that read moto's records: against an
// emulator that is not moto they skip, or fail when the emulator is
// required.
package awstest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/dispatcherhq/dispatcher/internal/testrand"
)

// Region is the region the tests use when AWS_REGION is unset.
const Region = "us-east-1"

// Required reports whether a missing emulator must fail the tests rather
// than skip them (in CI, or when DISPATCHER_REQUIRE_EMULATOR=1).
func Required() bool {
	return os.Getenv("CI") != "" || os.Getenv("DISPATCHER_REQUIRE_EMULATOR") == "1"
}

// Endpoint returns AWS_ENDPOINT_URL after checking something listens
// there; otherwise it skips the test loudly (or fails it, see Required).
func Endpoint(t testing.TB) string {
	t.Helper()
	ep := os.Getenv("AWS_ENDPOINT_URL")
	if ep == "" {
		absent(t, "AWS_ENDPOINT_URL is not set")
		return ""
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" {
		t.Fatalf("AWS_ENDPOINT_URL=%q is not a URL", ep)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		absent(t, fmt.Sprintf("nothing listens at AWS_ENDPOINT_URL=%s (%v)", ep, err))
		return ""
	}
	conn.Close()
	return strings.TrimSuffix(ep, "/")
}

func absent(t testing.TB, why string) {
	t.Helper()
	msg := "AWS EMULATOR ABSENT — " + why + ". Start one with `make moto` (or set AWS_ENDPOINT_URL to LocalStack)."
	if Required() {
		t.Fatal(msg + " CI requires the emulator tests to run.")
	}
	t.Skip("SKIPPED: " + msg)
}

// Config returns an SDK config for the emulator: static test credentials,
// AWS_REGION or us-east-1, endpoint from AWS_ENDPOINT_URL. It skips or
// fails like Endpoint when there is no emulator.
func Config(t testing.TB, opts ...func(*config.LoadOptions) error) aws.Config {
	t.Helper()
	Endpoint(t)
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = Region
	}
	base := []func(*config.LoadOptions) error{
		config.WithRegion(region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")),
		// A new connection per request: moto's server can close a kept-alive
		// connection under a response it already processed, and the retry of a
		// conditional write then fails against its own first attempt.
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.DisableKeepAlives = true
		})),
	}
	cfg, err := config.LoadDefaultConfig(context.Background(), append(base, opts...)...)
	if err != nil {
		t.Fatalf("config.LoadDefaultConfig: %v", err)
	}
	return cfg
}

var (
	unsafeName = regexp.MustCompile(`[^0-9A-Za-z-]+`)
	uniques    atomic.Uint64
)

// Unique returns a resource name unique to this test binary's run, made of
// [0-9A-Za-z-] and at most 60 characters: prefix, the test's name, the run's
// seed (testrand.Seed, so another run on the same emulator gets other
// names) and a counter.
func Unique(t testing.TB, prefix string) string {
	t.Helper()
	name := unsafeName.ReplaceAllString(prefix+"-"+t.Name(), "-")
	if len(name) > 45 {
		name = name[:45]
	}
	return fmt.Sprintf("%s-%08x-%d", strings.Trim(name, "-"), uint32(testrand.Seed()), uniques.Add(1))
}

// Data is the part of moto's /moto-api/data.json the tests read.
type Data map[string]map[string][]map[string]any

// MotoData returns what moto recorded (sent SES messages, SNS publishes…).
// It is moto-only: when the emulator does not answer /moto-api/data.json
// with 200 (another emulator, or moto failing) the test calling it is
// skipped loudly — or, when the emulator is Required (CI), failed: CI runs
// against moto, and a test that cannot read its records has not passed.
func MotoData(t testing.TB) Data {
	t.Helper()
	res, err := http.Get(Endpoint(t) + "/moto-api/data.json")
	if err != nil {
		t.Fatalf("moto data: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		absent(t, fmt.Sprintf("GET /moto-api/data.json answered %s: the emulator at AWS_ENDPOINT_URL is not moto, or failed", res.Status))
		return nil
	}
	var d Data
	if err := json.NewDecoder(res.Body).Decode(&d); err != nil {
		t.Fatalf("moto data: %v", err)
	}
	return d
}
