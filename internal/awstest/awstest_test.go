package awstest_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher/internal/awstest"
)

// recorder is a testing.TB that records Fatal and Skip instead of acting
// on the test, and ends the goroutine as they do.
type recorder struct {
	testing.TB
	failed, skipped bool
	msg             string
}

func (r *recorder) Fatal(args ...any)                 { r.failed, r.msg = true, fmt.Sprint(args...); runtime.Goexit() }
func (r *recorder) Fatalf(format string, args ...any) { r.Fatal(fmt.Sprintf(format, args...)) }
func (r *recorder) Skip(args ...any)                  { r.skipped, r.msg = true, fmt.Sprint(args...); runtime.Goexit() }
func (r *recorder) Skipf(format string, args ...any)  { r.Skip(fmt.Sprintf(format, args...)) }

// run calls f with a recorder in its own goroutine, so Goexit ends only f.
func run(t *testing.T, f func(testing.TB)) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

// TestMotoDataFailsInCI: an emulator that does not serve moto's records
// (LocalStack, or moto failing) skips the tests that read them — but in CI,
// where the emulator is required, it fails them. So does a missing
// emulator.
func TestMotoDataFailsInCI(t *testing.T) {
	notMoto := httptest.NewServer(http.NotFoundHandler())
	defer notMoto.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	defer broken.Close()
	moto := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/moto-api/data.json" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `{"sns": {"SMS": [{"phone_number": "+61412345678"}]}}`)
	}))
	defer moto.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nobody := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now

	for _, tc := range []struct {
		name, endpoint, ci string
		failed, skipped    bool
	}{
		{"not moto, CI", notMoto.URL, "true", true, false},
		{"not moto, no CI", notMoto.URL, "", false, true},
		{"moto failing, CI", broken.URL, "true", true, false},
		{"moto failing, no CI", broken.URL, "", false, true},
		{"no emulator, CI", nobody, "true", true, false},
		{"no emulator, no CI", nobody, "", false, true},
		{"moto, CI", moto.URL, "true", false, false},
		{"moto, no CI", moto.URL, "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AWS_ENDPOINT_URL", tc.endpoint)
			t.Setenv("CI", tc.ci)
			t.Setenv("DISPATCHER_REQUIRE_EMULATOR", "")
			var data awstest.Data
			r := run(t, func(tb testing.TB) { data = awstest.MotoData(tb) })
			if r.failed != tc.failed || r.skipped != tc.skipped {
				t.Fatalf("MotoData: failed %v, skipped %v (%q); want failed %v, skipped %v", r.failed, r.skipped, r.msg, tc.failed, tc.skipped)
			}
			if (r.failed || r.skipped) && !strings.Contains(r.msg, "EMULATOR ABSENT") {
				t.Errorf("the message does not say loudly why: %q", r.msg)
			}
			if !r.failed && !r.skipped && data["sns"]["SMS"][0]["phone_number"] != "+61412345678" {
				t.Errorf("MotoData = %v", data)
			}
		})
	}
}

// TestUnique: names are valid for every resource type the tests create,
// and never repeat within a run.
func TestUnique(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		n := awstest.Unique(t, "q/with spaces")
		if len(n) > 60 || strings.Trim(n, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-") != "" || !strings.HasPrefix(n, "q-with-spaces-TestUnique-") {
			t.Fatalf("Unique = %q", n)
		}
		if seen[n] {
			t.Fatalf("Unique repeated %q", n)
		}
		seen[n] = true
	}
}
