// Package embedded is the whole product in one process on the embedded
// store: the SQLite file, the in-process timer, the dispatcher and sweeper,
// the dev senders and the dev voice simulator — what `dispatcher serve`
// (make dev) runs. The Lambda functions do not link it.
package embedded

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/channel/devsink"
	"github.com/dispatcherhq/dispatcher/internal/channel/retell"
	"github.com/dispatcherhq/dispatcher/internal/clock"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/feedback"
	"github.com/dispatcherhq/dispatcher/internal/httpapi"
	"github.com/dispatcherhq/dispatcher/internal/ratelimit"
	"github.com/dispatcherhq/dispatcher/internal/store/sqlite"
	"github.com/dispatcherhq/dispatcher/internal/timer/local"
	"github.com/dispatcherhq/dispatcher/internal/webhooks"
)

// OutboxFile is where the dev senders append every delivery attempt.
const OutboxFile = "outbox.jsonl"

// LocalConfig tunes the embedded mode.
type LocalConfig struct {
	DataDir string
	// SweepEvery is how often the sweeper runs (default 1 minute).
	SweepEvery time.Duration
	// Dispatch tunes retries and leases (zero: the defaults of docs/design.md §3).
	Dispatch dispatch.Config
	// Workers is how many batches of due fires are delivered at once
	// (default local.DefaultBatchWorkers, 8; each batch up to 32 fires).
	Workers int
	// TimerHorizon is how far ahead the timer holds fires in memory
	// (default local.DefaultHorizon, 5 minutes): rows due later stay on
	// disk until their time is that near (docs/design.md, the timers).
	TimerHorizon time.Duration
	// RateLimit limits each company's API requests (a token bucket in
	// this process's memory: one process owns the data directory). The
	// zero Policy limits nothing; `dispatcher serve` sets
	// --rate-limit/--rate-burst.
	RateLimit ratelimit.Policy
	// Clock is the time of the whole process: what the timer finds due,
	// when the sweeper runs and the simulator answers, the times rows and
	// outbox lines record. Default clock.System; tests pass a clock.Fake
	// and move it.
	Clock clock.Clock
	// Durability of the SQLite file's commits: sqlite.DurabilityFull (the
	// default: a 201 means the row is synced to disk) or
	// sqlite.DurabilityNormal (survives the process being killed, not power
	// loss).
	Durability sqlite.Durability
	// VoiceSecret signs the voice simulator's webhooks and is the only
	// secret the webhook path accepts. Empty: the one kept in
	// <data>/voice-webhook-secret, generated at random on first start.
	VoiceSecret string
}

// VoiceSecretFile holds, inside a data directory, the voice webhook secret
// generated on first start (mode 0600, like the dev API key).
const VoiceSecretFile = "voice-webhook-secret"

// EnsureVoiceSecret returns the voice webhook secret kept in
// <data>/voice-webhook-secret, first writing a random one (32 bytes,
// base64url, mode 0600) when the file does not exist. It is what signs
// and verifies the simulator's webhooks unless LocalConfig.VoiceSecret
// says otherwise, so a person or a test can sign an outcome by hand.
func EnsureVoiceSecret(dataDir string) (string, error) {
	path := filepath.Join(dataDir, VoiceSecretFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		secret := strings.TrimSpace(string(b))
		if secret == "" {
			return "", fmt.Errorf("%s is empty: remove it to have a new secret generated", path)
		}
		return secret, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("os.ReadFile: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("os.MkdirAll: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("rand.Read: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(raw[:])
	// Written whole to a temporary file, then linked into place: link fails
	// if the name exists, so two processes starting on one fresh directory
	// agree on one secret, and neither ever reads a half-written file.
	tmp, err := os.CreateTemp(dataDir, VoiceSecretFile+".*")
	if err != nil {
		return "", fmt.Errorf("os.CreateTemp: %w", err)
	}
	defer os.Remove(tmp.Name()) // CreateTemp makes it 0600
	if _, err := tmp.WriteString(secret); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return EnsureVoiceSecret(dataDir)
	} else if err != nil {
		return "", fmt.Errorf("os.Link: %w", err)
	}
	return secret, nil
}

// simulatedCallLength is how long after a call is placed the dev voice
// simulator has reported its outcome: call_ended at the call's end
// (simulatedAnalysisLag earlier), then call_analyzed, as Retell sends them.
const simulatedCallLength = 500 * time.Millisecond

// simulatedAnalysisLag is how long after call_ended the simulator posts
// call_analyzed.
const simulatedAnalysisLag = 100 * time.Millisecond

// Local is the whole product in one process on the embedded store: the
// API, the in-process timer, the dispatcher, the sweeper and the dev
// senders writing to <data>/outbox.jsonl.
type Local struct {
	Store      *sqlite.Store
	Outbox     *devsink.Outbox
	Timer      *local.Timer
	Dispatcher *dispatch.Dispatcher
	API        *httpapi.API
	cfg        LocalConfig // VoiceSecret filled in
	clock      clock.Clock
	voice      *simulatedVoice
	reports    *reportingSenders
	// Feedback records delivery reports (the dev senders' SES events and
	// SNS delivery-status lines) as the AWS events function does.
	Feedback *feedback.Recorder
	// Webhooks fans events out to the companies' endpoints and delivers them.
	Webhooks *webhooks.Engine
	// Instance is this process's id on the leases it takes: claims of
	// another id found at start are its predecessor's (SettleOrphans).
	Instance string
	log      *slog.Logger
	unlock   func() // releases the data directory's lock
}

// NewLocal opens the data directory and wires everything with app.Build
// over the embedded adapters. Call Run to start delivering, Close when done.
func NewLocal(ctx context.Context, cfg LocalConfig, log *slog.Logger) (*Local, error) {
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = time.Minute
	}
	clk := clock.OrSystem(cfg.Clock)
	if cfg.VoiceSecret == "" {
		secret, err := EnsureVoiceSecret(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		cfg.VoiceSecret = secret
	}
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	store, err := OpenStoreWith(ctx, cfg.DataDir, sqlite.Options{Durability: cfg.Durability})
	if err != nil {
		unlock()
		return nil, err
	}
	outbox, err := devsink.Open(filepath.Join(cfg.DataDir, OutboxFile), clk.Now)
	if err != nil {
		store.Close()
		unlock()
		return nil, fmt.Errorf("devsink.Open: %w", err)
	}
	l := &Local{Store: store, Outbox: outbox, cfg: cfg, clock: clk, log: log, unlock: unlock, Instance: uuid.NewString()}
	l.reports = &reportingSenders{outbox: outbox, recorder: func() *feedback.Recorder { return l.Feedback },
		clock: clk, log: log, stop: make(chan struct{})}
	g, err := app.Build(app.Ports{
		Store: store,
		Timer: func(deliver app.Deliver) comms.Timer {
			l.Timer = local.New(local.Handler(deliver), local.Options{Workers: cfg.Workers, Logger: log, Clock: clk,
				Load: storeFires(store), Loads: loadedKind, Horizon: cfg.TimerHorizon,
				Batch: func(ctx context.Context, fs []comms.Fire) []error { return l.deliverBatch(ctx, fs, deliver) }})
			return l.Timer
		},
		Email:  l.reports,
		SMS:    l.reports,
		Ledger: outbox,
		// Nothing leaves the machine: any sending domain may be declared.
		Identities: app.AnyDomain{},
		// A local receiver may take status webhooks over http: loopback is
		// the one non-public address allowed (internal/netguard).
		WebhookURLs:         app.WebhookURLs(true, nil),
		WebhookFanOut:       true,
		WebhookLoopbackHTTP: true,
		Voice: func(webhooks http.Handler) dispatch.VoiceCaller {
			l.voice = &simulatedVoice{calls: outbox, webhooks: webhooks, secret: cfg.VoiceSecret, after: simulatedCallLength,
				clock: clk, stop: make(chan struct{}), log: log}
			return l.voice
		},
		VoiceSecret: cfg.VoiceSecret,
		Clock:       clk.Now,
		Logger:      log,
		Dispatch:    cfg.Dispatch,
		Instance:    l.Instance,
	})
	if err != nil {
		defer unlock()
		return nil, errors.Join(err, outbox.Close(), store.Close())
	}
	l.Dispatcher, l.API, l.Feedback, l.Webhooks = g.Dispatcher, g.API, g.Feedback, g.WebhookDeliveries
	if cfg.RateLimit.Enabled() {
		l.API.SetRateLimiter(ratelimit.New(ratelimit.NewMemory(), cfg.RateLimit, clk.Now))
	}
	return l, nil
}

// storeFires is the timer's loader: the fires of the pending rows and of the
// pending webhook deliveries due in [from, to), read by their due indexes.
func storeFires(store *sqlite.Store) func(ctx context.Context, from, to time.Time) ([]local.Armed, error) {
	return func(ctx context.Context, from, to time.Time) ([]local.Armed, error) {
		rows, err := store.PendingFires(ctx, from, to)
		if err != nil {
			return nil, err
		}
		ds, err := store.PendingDeliveryFires(ctx, from, to)
		if err != nil {
			return nil, err
		}
		out := make([]local.Armed, 0, len(rows)+len(ds))
		for _, f := range rows {
			out = append(out, local.Armed{Fire: f, At: f.DueAt})
		}
		for _, f := range ds {
			out = append(out, local.Armed{Fire: f, At: f.DueAt})
		}
		return out, nil
	}
}

// deliverBatch hands the fires due together to the dispatcher's batched
// path (HandleBatch: one read, one claim write, sends in parallel, results
// through the completer) and every other kind of fire (a webhook
// delivery's) to deliver, one goroutine each.
func (l *Local) deliverBatch(ctx context.Context, fs []comms.Fire, deliver app.Deliver) []error {
	errs := make([]error, len(fs))
	var (
		rows []comms.Fire
		at   []int
		wg   sync.WaitGroup
	)
	for i, f := range fs {
		if f.Kind != "" {
			wg.Go(func() { errs[i] = deliver(ctx, f) })
			continue
		}
		rows, at = append(rows, f), append(at, i)
	}
	if len(rows) > 0 {
		for j, err := range l.Dispatcher.HandleBatch(ctx, rows) {
			errs[at[j]] = err
		}
	}
	wg.Wait()
	return errs
}

// loadedKind reports whether storeFires reads the fires of a kind: a row's
// and a webhook delivery's. Others (a webhook fan-out) have no row to be
// read from and are always held.
func loadedKind(kind string) bool { return kind == "" || kind == webhooks.FireKind }

// VoiceSecret is the secret the webhook path verifies voice outcomes with:
// LocalConfig.VoiceSecret, or the one kept in the data directory.
func (l *Local) VoiceSecret() string { return l.cfg.VoiceSecret }

// Run starts the timer, which re-arms from the store every pending row and
// webhook delivery due within its horizon (so a restart loses nothing; later
// ones are read as their time nears), then delivers fires and sweeps every
// SweepEvery until ctx ends.
func (l *Local) Run(ctx context.Context) error {
	timerDone := make(chan error, 1)
	go func() { timerDone <- l.Timer.Run(ctx) }()
	select {
	case <-l.Timer.Ready():
	case <-ctx.Done(): // stopped while starting: nothing was lost, the store still has every row
		return <-timerDone
	}
	l.log.InfoContext(ctx, "timer re-armed from the store", "fires_held", l.Timer.Len())
	// This process holds the data directory's lock: every claim of another
	// instance is a dead predecessor's, settled now rather than after its
	// lease and the sweeper's grace.
	res, err := l.Dispatcher.SettleOrphans(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		l.log.ErrorContext(ctx, "settling the previous process's attempts failed; the sweeper retries", "error", err.Error())
	}
	if res != (dispatch.SweepResult{}) {
		l.log.InfoContext(ctx, "settled the previous process's attempts", "given_back", res.Released, "settled", res.Settled,
			"outcome_unknown", res.Unknown, "exhausted", res.Exhausted)
	}
	l.catchUpWebhooks(ctx)
	if n, err := l.reports.replay(); err != nil {
		l.log.ErrorContext(ctx, "replaying the dev providers' last reports failed", "error", err.Error())
	} else if n > 0 {
		l.log.InfoContext(ctx, "replayed the dev providers' last reports", "reports", n)
	}
	for {
		ring, release := l.clock.Alarm(l.clock.Now().Add(l.cfg.SweepEvery))
		select {
		case <-ctx.Done():
			release()
			return <-timerDone
		case <-ring:
		}
		if _, err := l.Webhooks.Sweep(ctx, l.clock.Now().Add(-l.cfg.SweepEvery), 500); err != nil && !errors.Is(err, context.Canceled) {
			l.log.ErrorContext(ctx, "webhook sweep failed", "error", err.Error())
		}
		res, err := l.Dispatcher.Sweep(ctx)
		if err != nil && !errors.Is(err, context.Canceled) {
			l.log.ErrorContext(ctx, "sweep failed", "error", err.Error())
		}
		if res != (dispatch.SweepResult{}) {
			l.log.InfoContext(ctx, "sweep repaired rows", "refired", res.Refired, "released", res.Released,
				"outcome_unknown", res.Unknown, "exhausted", res.Exhausted, "settled", res.Settled, "waiting", res.Waiting)
		}
	}
}

// catchUpWebhooks fans out what a stop left behind — events committed
// before their fan-out ran. The pending webhook deliveries are the timer's
// to re-arm: its loader reads them with the rows.
func (l *Local) catchUpWebhooks(ctx context.Context) {
	companies, err := l.Store.WebhookCompanies(ctx)
	if err != nil {
		l.log.ErrorContext(ctx, "webhook catch-up: listing companies failed", "error", err.Error())
	}
	for _, co := range companies {
		l.Webhooks.Notify(co)
	}
}

// Close stops the voice simulator (outcomes not yet due are dropped; one
// being posted is waited for) and releases the outbox and the store. Call
// it after Run has returned.
func (l *Local) Close() error {
	l.voice.close()
	l.reports.close()
	l.Webhooks.Close()
	defer l.unlock()
	return errors.Join(l.Outbox.Close(), l.Store.Close())
}

// DBFile is the SQLite file inside a data directory.
const DBFile = "dispatcher.db"

// OpenStore opens (creating if needed) the embedded store of a data
// directory, with commits synced to disk.
func OpenStore(ctx context.Context, dataDir string) (*sqlite.Store, error) {
	return OpenStoreWith(ctx, dataDir, sqlite.Options{})
}

// OpenStoreWith is OpenStore with the store's options.
func OpenStoreWith(ctx context.Context, dataDir string, opts sqlite.Options) (*sqlite.Store, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("os.MkdirAll: %w", err)
	}
	s, err := sqlite.OpenWith(ctx, filepath.Join(dataDir, DBFile), opts)
	if err != nil {
		return nil, fmt.Errorf("sqlite.Open: %w", err)
	}
	return s, nil
}

// simulatedVoice is the dev voice caller: it "places" the call through the
// outbox and posts signed webhooks to the real webhook path in Retell's
// order — call_started (for a call that connects) at once, call_ended once
// the call has lasted `after` − simulatedAnalysisLag on the clock, then
// call_analyzed at `after` — as payload.metadata.simulate says
// (conversation, short, no_answer, voicemail; default conversation). With
// "manual" it posts nothing: a person or a test posts them by hand.
type simulatedVoice struct {
	calls    dispatch.VoiceCaller
	webhooks http.Handler
	secret   string
	after    time.Duration
	clock    clock.Clock
	stop     chan struct{} // closed by close: outcomes not yet due are dropped
	stopOnce sync.Once
	calling  sync.WaitGroup // a goroutine per call until its outcome is posted or dropped
	log      *slog.Logger
	posted   atomic.Int64 // outcomes posted and answered
}

func (s *simulatedVoice) close() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.calling.Wait()
}

func (s *simulatedVoice) PlaceCall(ctx context.Context, c dispatch.Call) (string, error) {
	id, err := s.calls.PlaceCall(ctx, c)
	if err != nil {
		return id, err
	}
	scenario, _ := c.Metadata["simulate"].(string)
	if scenario == "" {
		scenario = retell.ScenarioConversation
	}
	if scenario == retell.ScenarioManual {
		s.log.Info("voice simulator: manual call placed; post its webhooks by hand", "call_id", id,
			"communication_id", c.CommunicationID, "attempt", c.Attempt)
		return id, nil
	}
	meta := map[string]string{retell.MetaCommunicationID: c.CommunicationID, retell.MetaCompanyID: c.CompanyID,
		retell.MetaAttempt: strconv.Itoa(c.Attempt)}
	start := s.clock.Now()
	// The alarms are set before the call counts as placed, so whoever sees
	// it placed can move a fake clock past the call's end and get both
	// reports.
	ended, releaseEnded := s.clock.Alarm(start.Add(s.after - simulatedAnalysisLag))
	analyzed, releaseAnalyzed := s.clock.Alarm(start.Add(s.after))
	s.calling.Go(func() {
		defer s.posted.Add(1)
		if scenario != retell.ScenarioNoAnswer {
			s.post(retell.EventCallStarted, id, meta, scenario, start)
		}
		for _, step := range []struct {
			kind    string
			ring    <-chan time.Time
			release func()
		}{{retell.EventCallEnded, ended, releaseEnded}, {retell.EventCallAnalyzed, analyzed, releaseAnalyzed}} {
			select {
			case <-step.ring:
			case <-s.stop:
				releaseEnded()
				releaseAnalyzed()
				return
			}
			s.post(step.kind, id, meta, scenario, start)
		}
	})
	return id, nil
}

// post delivers one signed webhook of the call to the webhook path.
func (s *simulatedVoice) post(kind, callID string, meta map[string]string, scenario string, start time.Time) {
	body, err := retell.SimulatedEvent(kind, callID, meta, scenario, start)
	if err != nil {
		s.log.Warn("voice simulator", "error", err.Error())
		return
	}
	req := httptest.NewRequest(http.MethodPost, "/v1/webhooks/voice/retell", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(retell.SignatureHeader, retell.Sign(body, s.secret, s.clock.Now()))
	rec := httptest.NewRecorder()
	s.webhooks.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		s.log.Warn("voice simulator: webhook refused", "status", rec.Code, "body", rec.Body.String())
	}
}
