package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// UserAgent names the product on every webhook request.
const UserAgent = "Dispatcher-Webhooks/1 (+https://github.com/dispatcherhq/dispatcher)"

// AttemptTimeout bounds one delivery attempt, connection to last byte of
// the response: the "a 2xx within a timeout (≤ 15 s) is success".
const AttemptTimeout = 15 * time.Second

// Result is the outcome class of one attempt.
type Result string

// The attempt results.
const (
	// Succeeded: a 2xx within AttemptTimeout.
	Succeeded Result = "succeeded"
	// Retry: anything else a later attempt may fix (a non-2xx status, a
	// timeout, a refused connection, a redirect: redirects are not
	// followed, as the spec advises).
	Retry Result = "retry"
	// Gone: 410 Gone — the receiver says the endpoint no longer exists;
	// it is disabled at once.
	Gone Result = "gone"
)

// Attempt is what one delivery attempt did, as GET …/deliveries shows it.
type Attempt struct {
	At time.Time `json:"at"`
	// StatusCode is the receiver's HTTP status, 0 when none came.
	StatusCode int     `json:"status_code"`
	DurationMS float64 `json:"duration_ms"`
	// Error says why an attempt that got no 2xx failed ("" on success).
	Error  string `json:"error"`
	Result Result `json:"result"`
}

// Request is one message to send: the body and the headers signed for it.
type Request struct {
	URL     string
	MsgID   string
	Body    []byte
	Secrets []string
}

// Send makes one attempt: it signs the body at now (Sign), POSTs it with
// client (whose transport must be netguard's, so that the connection is
// checked at connect time) and classifies the answer. The response body is
// read (at most 64 KiB, to reuse the connection) and ignored.
func Send(ctx context.Context, client *http.Client, r Request, now time.Time) Attempt {
	a := Attempt{At: now}
	h, err := Sign(r.Secrets, r.MsgID, now, r.Body)
	if err != nil {
		a.Result, a.Error = Retry, err.Error()
		return a
	}
	ctx, cancel := context.WithTimeout(ctx, AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		a.Result, a.Error = Retry, fmt.Sprintf("request: %v", err)
		return a
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(HeaderID, h.ID)
	req.Header.Set(HeaderTimestamp, h.Timestamp)
	req.Header.Set(HeaderSignature, h.Signature)
	start := time.Now()
	resp, err := client.Do(req)
	a.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		a.Result, a.Error = Retry, describe(err)
		return a
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	a.StatusCode = resp.StatusCode
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		a.Result = Succeeded
	case resp.StatusCode == http.StatusGone:
		a.Result, a.Error = Gone, "410 Gone: the receiver says this endpoint no longer exists"
	default:
		a.Result, a.Error = Retry, fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	return a
}

// describe says why a request got no response, in words, without Go's
// wrapping ("Post \"…\": …").
func describe(err error) string {
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("no response within %v", AttemptTimeout)
	case errors.Is(err, context.Canceled):
		return "cancelled (the process stopped)"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the connection was closed before a response"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "the connection was reset"
	case errors.As(err, &oe) && oe.Op == "dial":
		return "could not connect: " + strings.TrimPrefix(oe.Err.Error(), "dial tcp: ")
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// NewClient returns the client deliveries are made with: transport (from
// netguard.Transport), no redirects followed (a 3xx is a failed attempt,
// as the spec advises), AttemptTimeout overall.
func NewClient(transport http.RoundTripper) *http.Client {
	return &http.Client{
		Transport:     transport,
		Timeout:       AttemptTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// RetrySchedule is the delay before each retry after the first attempt:
// eight attempts over about 27.6 hours, the schedule Svix documents ("5s,
// 5m, 30m, 2h, 5h, 10h, 10h" after an immediate one), so that a receiver
// down for a day still gets every message. Jitter (NextRetry) spreads
// retries of many messages.
var RetrySchedule = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
	5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// NextRetry returns when the attempt after attempt n (1-based) is due,
// with up to 10 % jitter (jitter in [0, 1)); ok is false when n was the
// last attempt.
func NextRetry(n int, last time.Time, jitter float64) (time.Time, bool) {
	if n < 1 || n > len(RetrySchedule) {
		return time.Time{}, false
	}
	d := RetrySchedule[n-1]
	// Milliseconds, like every time the API shows.
	return last.Add(d + time.Duration(float64(d)*0.1*jitter)).Truncate(time.Millisecond), true
}
