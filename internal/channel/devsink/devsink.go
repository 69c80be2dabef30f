// Package devsink holds the dev senders of the embedded mode (`make dev`):
// nothing leaves the machine. Every delivery attempt, successful or not, is
// appended as one JSON line (see [Line]) to <data>/outbox.jsonl, so a
// newcomer can run
//
//	tail -f .data/outbox.jsonl
//
// and watch Dispatcher deliver. One [Outbox] implements all three sender
// ports (email, SMS, voice). Failures are *comms.SendError values, classified
// exactly as the real adapters classify theirs, so retries and terminal
// failures can be demonstrated end to end.
//
// # Email
//
// Only the To address decides (CC is ignored); comparison is
// case-insensitive. As in SES, the send itself succeeds for every valid
// address, and what became of it arrives later as SES events (see
// [EmailReports]), which the embedded mode records as the AWS events
// function does. The mailbox-simulator addresses behave as in SES (a
// "+label" in their local part is allowed, as SES allows it):
//
//	success@simulator.amazonses.com          delivered
//	ooto@simulator.amazonses.com             delivered (SES also sends an automatic reply)
//	bounce@simulator.amazonses.com           bounced (permanent): suppressed for the company
//	complaint@simulator.amazonses.com        delivered, then complained: suppressed
//	suppressionlist@simulator.amazonses.com  bounced (OnAccountSuppressionList): suppressed
//
// An address whose local part ends in "+transient" (for example
// sarah+transient@example.com) fails transiently on every attempt with code
// "throttled", so retries with backoff can be watched. Any other address is
// delivered.
//
// # SMS
//
// A number ending in "9999" (for example +61412349999) fails transiently on
// every attempt with code "throttled". Every other number is sent, and its
// SNS delivery-status log line follows (see [SMSReports]):
// +61455944039 (AWS's failure simulator number) is undeliverable, a number
// ending in "8888" has opted out (suppressed for SMS), any other number —
// such as +61455944038, AWS's success simulator number — is delivered.
//
// # Voice
//
// A call whose Metadata["simulate"] is the string "fail" fails transiently
// with code "provider_unavailable". Every other call is placed (result
// "sent"); the dev caller only records it.
//
// # Provider ids
//
// A sent email returns devmail_<uuid>, an SMS devsms_<uuid>, a call
// devcall_<uuid>; the same id is in the line's provider_message_id.
//
// A context that is already cancelled makes a send return ctx.Err() without
// writing a line.
package devsink

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/mailaddr"
)

// Channels, as written in [Line.Channel].
const (
	ChannelEmail = "email"
	ChannelSMS   = "sms"
	ChannelVoice = "voice_call"
)

// Results, as written in [Line.Result].
const (
	ResultSent             = "sent"
	ResultTransientFailure = "transient_failure"
	ResultPermanentFailure = "permanent_failure"
)

// Magic addresses and numbers; see the package documentation.
const (
	SimulatorDomain     = "simulator.amazonses.com"
	SimulatorSuccess    = "success@" + SimulatorDomain
	SimulatorBounce     = "bounce@" + SimulatorDomain
	SimulatorComplaint  = "complaint@" + SimulatorDomain
	SimulatorOOTO       = "ooto@" + SimulatorDomain
	SimulatorSuppressed = "suppressionlist@" + SimulatorDomain
	// TransientSuffix ends the local part of an email address that always
	// fails transiently.
	TransientSuffix = "+transient"
	// TransientSMSSuffix ends a phone number whose SMS always fails transiently.
	TransientSMSSuffix = "9999"
	// SimulateKey is the Call.Metadata key read by the dev caller;
	// SimulateFail as its value makes the call fail transiently.
	SimulateKey  = "simulate"
	SimulateFail = "fail"
)

// Line is one outbox line; exported so tests (here and in other packages)
// can read the outbox back.
type Line struct {
	CommunicationID   string    `json:"communication_id"`
	CompanyID         string    `json:"company_id,omitempty"`
	Channel           string    `json:"channel"` // email | sms | voice_call
	Attempt           int       `json:"attempt"`
	To                string    `json:"to"`
	At                time.Time `json:"at"`
	Result            string    `json:"result"` // sent | transient_failure | permanent_failure
	ProviderMessageID string    `json:"provider_message_id,omitempty"`
	ErrorCode         string    `json:"error_code,omitempty"`
	Subject           string    `json:"subject,omitempty"` // email
	Body              string    `json:"body,omitempty"`    // sms text, or nothing
	From              string    `json:"from,omitempty"`
	CC                []string  `json:"cc,omitempty"` // email: the cc addresses sent to
}

// Outbox is the dev sender of every channel: it appends each attempt to an
// outbox file. It is safe for concurrent use; lines never interleave.
type Outbox struct {
	now  func() time.Time
	path string

	mu sync.Mutex
	f  *os.File // nil once closed
	// failWrites, when set, is returned by every append instead of
	// writing (FailWrites).
	failWrites error

	// index serves FindAttempt (reports.go).
	index attemptIndex
}

var (
	_ dispatch.EmailSender = (*Outbox)(nil)
	_ dispatch.SMSSender   = (*Outbox)(nil)
	_ dispatch.VoiceCaller = (*Outbox)(nil)
)

// Open appends to path (created 0o600 with parent dirs if missing). now
// defaults to time.Now when nil.
func Open(path string, now func() time.Time) (*Outbox, error) {
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("devsink: create outbox dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("devsink: open outbox: %w", err)
	}
	if err := cutTornTail(path, f); err != nil {
		f.Close()
		return nil, err
	}
	return &Outbox{now: now, f: f, path: path}, nil
}

// cutTornTail truncates an outbox whose last line has no newline (a write
// a power loss cut short) back to its last complete line, as a write-ahead
// log drops a torn record: the send it began never completed, and the
// next line must not be glued onto it.
func cutTornTail(path string, f *os.File) error {
	r, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("devsink: open outbox: %w", err)
	}
	defer r.Close()
	st, err := r.Stat()
	if err != nil || st.Size() == 0 {
		return err
	}
	end := st.Size()
	last := make([]byte, 1)
	if _, err := r.ReadAt(last, end-1); err != nil {
		return fmt.Errorf("devsink: read outbox: %w", err)
	}
	if last[0] == '\n' {
		return nil
	}
	// Find the last newline, reading backwards.
	buf := make([]byte, 64<<10)
	for pos := end; pos > 0; {
		start := max(pos-int64(len(buf)), 0)
		n, err := r.ReadAt(buf[:pos-start], start)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("devsink: read outbox: %w", err)
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return f.Truncate(start + int64(i) + 1)
		}
		pos = start
	}
	return f.Truncate(0)
}

// Path is the outbox file's path.
func (o *Outbox) Path() string { return o.path }

// Close closes the outbox file. Sends after Close fail; a second Close is a
// no-op.
func (o *Outbox) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f == nil {
		return nil
	}
	err := o.f.Close()
	o.f = nil
	return err
}

// SendEmail records m and classifies it by its To address.
func (o *Outbox) SendEmail(ctx context.Context, m dispatch.Email) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	l := Line{
		CommunicationID: m.CommunicationID,
		CompanyID:       m.CompanyID,
		Channel:         ChannelEmail,
		Attempt:         m.Attempt,
		To:              m.To,
		CC:              m.CC,
		Subject:         m.Subject,
		From:            m.From,
	}
	serr := classifyEmail(m.To)
	for _, a := range append([]string{m.From, m.To}, m.CC...) {
		// The real sender's rule: dev mode never delivers what SES refuses.
		// (The dispatcher always gives a From; a test of the sink alone may not.)
		if _, err := mailaddr.ASCII(a); err != nil && !(a == m.From && a == "") {
			serr = comms.Permanent("invalid_address", "dev email: %v", err)
			break
		}
	}
	return o.record(l, "devmail_", serr)
}

// SendSMS records m and classifies it by its To number.
func (o *Outbox) SendSMS(ctx context.Context, m dispatch.SMS) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	l := Line{
		CommunicationID: m.CommunicationID,
		CompanyID:       m.CompanyID,
		Channel:         ChannelSMS,
		Attempt:         m.Attempt,
		To:              m.To,
		Body:            m.Body,
		From:            m.From,
	}
	var serr *comms.SendError
	if strings.HasSuffix(strings.TrimSpace(m.To), TransientSMSSuffix) {
		serr = comms.Transient("throttled", "dev sms: number %s ends in %s (simulated throttling)", m.To, TransientSMSSuffix)
	}
	return o.record(l, "devsms_", serr)
}

// PlaceCall records c; Metadata["simulate"] == "fail" fails transiently.
func (o *Outbox) PlaceCall(ctx context.Context, c dispatch.Call) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	l := Line{
		CommunicationID: c.CommunicationID,
		CompanyID:       c.CompanyID,
		Channel:         ChannelVoice,
		Attempt:         c.Attempt,
		To:              c.To,
		From:            c.From,
	}
	var serr *comms.SendError
	if s, ok := c.Metadata[SimulateKey].(string); ok && s == SimulateFail {
		serr = comms.Transient("provider_unavailable", "dev voice: metadata.simulate=fail")
	}
	return o.record(l, "devcall_", serr)
}

// classifyEmail applies the throttling rule to the To address; nil means
// sent (what becomes of it is reported later, by EmailReports).
func classifyEmail(to string) *comms.SendError {
	addr := strings.ToLower(strings.TrimSpace(to))
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return nil
	}
	if strings.HasSuffix(addr[:i], TransientSuffix) {
		return comms.Transient("throttled", "dev email: %s ends in %s (simulated throttling)", to, TransientSuffix)
	}
	return nil
}

// record completes l with the time, result and id (or error code), appends
// it, and returns what the port returns.
func (o *Outbox) record(l Line, idPrefix string, serr *comms.SendError) (string, error) {
	l.At = o.now().UTC()
	switch {
	case serr == nil:
		l.Result = ResultSent
		l.ProviderMessageID = idPrefix + uuid.NewString()
	case serr.Transient:
		l.Result = ResultTransientFailure
		l.ErrorCode = serr.Code
	default:
		l.Result = ResultPermanentFailure
		l.ErrorCode = serr.Code
	}
	b, err := json.Marshal(l)
	if err != nil {
		return "", fmt.Errorf("devsink: encode line: %w", err)
	}
	b = append(b, '\n')
	if err := o.append(b); err != nil {
		return "", err
	}
	if serr != nil {
		return "", serr
	}
	return l.ProviderMessageID, nil
}

// append writes b with a single Write under the mutex. A write that fails
// (a full disk) is an error of ours, not the provider's: it wraps
// dispatch.ErrNotSent, and what part of the line was written is cut off
// again, so the outbox never keeps a torn line that would swallow the next
// one, and a line exists exactly for the attempts that were "sent".
func (o *Outbox) append(b []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f == nil {
		return fmt.Errorf("devsink: write outbox: %w", os.ErrClosed)
	}
	if o.failWrites != nil {
		return fmt.Errorf("devsink: write outbox: %w (%w)", o.failWrites, dispatch.ErrNotSent)
	}
	end, err := o.f.Seek(0, io.SeekEnd) // where the line starts (writes append)
	if err != nil {
		return fmt.Errorf("devsink: write outbox: %w (%w)", err, dispatch.ErrNotSent)
	}
	n, err := o.f.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		if n > 0 {
			if terr := o.f.Truncate(end); terr != nil {
				err = errors.Join(err, fmt.Errorf("cutting off the torn line: %w", terr))
			}
		}
		return fmt.Errorf("devsink: write outbox: %w (%w)", err, dispatch.ErrNotSent)
	}
	return nil
}

// FailWrites makes every following outbox write fail with err, as on a full
// disk (nil: write again). For tests and fault drills.
func (o *Outbox) FailWrites(err error) {
	o.mu.Lock()
	o.failWrites = err
	o.mu.Unlock()
}

// ReadOutbox reads every line of an outbox file (for tests and tooling).
// Blank lines are skipped; a line that is not a JSON [Line] is an error
// naming its line number.
func ReadOutbox(path string) ([]Line, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("devsink: read outbox: %w", err)
	}
	defer f.Close()
	var lines []Line
	r := bufio.NewReader(f)
	for n := 1; ; n++ {
		raw, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(raw)) > 0 {
			var l Line
			dec := json.NewDecoder(bytes.NewReader(raw))
			if derr := dec.Decode(&l); derr != nil {
				return nil, fmt.Errorf("devsink: %s line %d: %w", path, n, derr)
			}
			if dec.More() {
				return nil, fmt.Errorf("devsink: %s line %d: trailing data after the JSON object", path, n)
			}
			lines = append(lines, l)
		}
		if errors.Is(err, io.EOF) {
			return lines, nil
		}
		if err != nil {
			return nil, fmt.Errorf("devsink: read outbox: %w", err)
		}
	}
}

// tailChunk is how much of an outbox ReadOutboxTail reads at a time, from
// the end backwards; tailOldRun how many lines older than its window in a
// row end its reading.
const (
	tailChunk  = 256 << 10
	tailOldRun = 64
)

// ReadOutboxTail returns the lines of an outbox written within window of
// its last line (by Line.At), in file order: what a restart replays the
// provider reports of. It reads the file from its end backwards, so its
// cost is that of the tail, not of the whole outbox, and stops after
// tailOldRun older lines in a row (one old line among new ones, written
// across a clock step, does not hide the new ones before it). A missing
// file has no lines; a line that is not a JSON [Line] (cut by a copy or a
// power loss) is skipped.
func ReadOutboxTail(path string, window time.Duration) ([]Line, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("devsink: read outbox tail: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("devsink: read outbox tail: %w", err)
	}
	var (
		end   = st.Size()
		carry []byte // the start of a line cut by the chunk before it
		rev   []Line // newest first
		old   int    // older lines in a row
	)
	for end > 0 {
		start := max(end-tailChunk, 0)
		buf := make([]byte, end-start, end-start+int64(len(carry)))
		if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("devsink: read outbox tail: %w", err)
		}
		buf = append(buf, carry...)
		// Unless this chunk starts the file, its first line may be cut:
		// keep it for the next (earlier) chunk.
		first := 0
		if start > 0 {
			i := bytes.IndexByte(buf, '\n')
			if i < 0 {
				carry, end = buf, start
				continue
			}
			first = i + 1
		}
		carry = buf[:first]
		lines := bytes.Split(buf[first:], []byte{'\n'})
		for i := len(lines) - 1; i >= 0; i-- {
			raw := bytes.TrimSpace(lines[i])
			if len(raw) == 0 {
				continue
			}
			var l Line
			if json.Unmarshal(raw, &l) != nil {
				continue // a line cut by a copy or a power loss: not a send to replay
			}
			if len(rev) > 0 && l.At.Before(rev[0].At.Add(-window)) {
				// Older than the window. Lines are appended in time order
				// but a clock step can put an old one among new ones: stop
				// only after a run of them.
				if old++; old >= tailOldRun {
					slices.Reverse(rev)
					return rev, nil
				}
				continue
			}
			old = 0
			rev = append(rev, l)
		}
		end = start
	}
	slices.Reverse(rev)
	return rev, nil
}
