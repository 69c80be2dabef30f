package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/auth"
	"github.com/dispatcherhq/dispatcher/internal/channel/devsink"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/httpapi"
	"github.com/dispatcherhq/dispatcher/internal/store/sqlite"
	"github.com/dispatcherhq/dispatcher/internal/timer/local"
)

// OutboxFile is where the dev senders append every delivery attempt.
const OutboxFile = "outbox.jsonl"

// LocalConfig tunes the embedded mode.
type LocalConfig struct {
	DataDir string
	// SweepEvery is how often the sweeper runs (default 1 minute).
	SweepEvery time.Duration
	// Dispatch tunes retries and leases (zero: DESIGN.md defaults).
	Dispatch dispatch.Config
	// Workers is how many fires are delivered at once (default 32).
	Workers int
}

// Local is the whole product in one process on the embedded store: the
// API, the in-process timer, the dispatcher, the sweeper and the dev
// senders writing to <data>/outbox.jsonl.
type Local struct {
	Store      *sqlite.Store
	Outbox     *devsink.Outbox
	Timer      *local.Timer
	Dispatcher *dispatch.Dispatcher
	API        *httpapi.API
	cfg        LocalConfig
	log        *slog.Logger
}

// NewLocal opens the data directory and wires everything. Call Run to
// start delivering, Close when done.
func NewLocal(ctx context.Context, cfg LocalConfig, log *slog.Logger) (*Local, error) {
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = time.Minute
	}
	store, err := OpenStore(ctx, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	outbox, err := devsink.Open(filepath.Join(cfg.DataDir, OutboxFile), nil)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("devsink.Open: %w", err)
	}
	l := &Local{Store: store, Outbox: outbox, cfg: cfg, log: log}
	l.Timer = local.New(func(ctx context.Context, f comms.Fire) error { return l.Dispatcher.Handle(ctx, f) },
		local.Options{Workers: cfg.Workers, Logger: log})
	voice := &simulatedVoice{calls: outbox, secret: DevVoiceSecret, delay: 500 * time.Millisecond, log: log}
	l.Dispatcher = dispatch.New(store, l.Timer, dispatch.Senders{Email: outbox, SMS: outbox, Voice: voice}, cfg.Dispatch,
		dispatch.WithLogger(log))
	svc := comms.NewService(store, comms.WithTimer(l.Timer), comms.WithLogger(log))
	l.API = httpapi.New(svc, auth.NewAuthenticator(store), log)
	l.API.SetVoiceWebhooks(&VoiceHooks{Secret: DevVoiceSecret, Dispatcher: l.Dispatcher, Now: time.Now, Log: log})
	voice.api = l.API
	return l, nil
}

// Run re-arms every pending row from the store (so a restart loses
// nothing), then delivers fires and sweeps every SweepEvery until ctx ends.
func (l *Local) Run(ctx context.Context) error {
	timerDone := make(chan error, 1)
	go func() { timerDone <- l.Timer.Run(ctx) }()
	n, err := l.Dispatcher.Rearm(ctx)
	if err != nil {
		if ctx.Err() != nil { // stopped while starting: nothing was lost, the store still has every row
			return <-timerDone
		}
		return err
	}
	l.log.InfoContext(ctx, "timer re-armed from the store", "pending_rows", n)
	tick := time.NewTicker(l.cfg.SweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return <-timerDone
		case <-tick.C:
			res, err := l.Dispatcher.Sweep(ctx)
			if err != nil && !errors.Is(err, context.Canceled) {
				l.log.ErrorContext(ctx, "sweep failed", "error", err.Error())
			}
			if res != (dispatch.SweepResult{}) {
				l.log.InfoContext(ctx, "sweep repaired rows", "refired", res.Refired, "released", res.Released,
					"outcome_unknown", res.Unknown, "exhausted", res.Exhausted)
			}
		}
	}
}

// Close releases the outbox and the store.
func (l *Local) Close() error {
	return errors.Join(l.Outbox.Close(), l.Store.Close())
}
