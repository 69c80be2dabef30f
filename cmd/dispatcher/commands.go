package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/auth"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/config"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/embedded"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
)

func flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func required(fs *flag.FlagSet, names ...string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, n := range names {
		if !set[n] {
			return fmt.Errorf("%s: --%s is required", fs.Name(), n)
		}
	}
	return nil
}

func parse(fs *flag.FlagSet, args []string, req ...string) error {
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%s: %w", fs.Name(), err)
	}
	return required(fs, req...)
}

// storeFlags are the flags that choose the store an admin command acts on.
type storeFlags struct{ data, backend *string }

func addStoreFlags(fs *flag.FlagSet) storeFlags {
	return storeFlags{
		data:    fs.String("data", ".data", "data directory (embedded backend)"),
		backend: fs.String("backend", "embedded", "embedded (the SQLite file in --data) or aws (the DynamoDB table named by "+config.EnvTableName+")"),
	}
}

// withStore runs f on the chosen store: the embedded SQLite file, or the
// DynamoDB table of a deployment (credentials and region from the usual AWS
// environment, AWS_ENDPOINT_URL for an emulator).
func withStore(ctx context.Context, sf storeFlags, f func(comms.Store) error) error {
	switch *sf.backend {
	case "embedded":
		store, err := embedded.OpenStore(ctx, *sf.data)
		if err != nil {
			return err
		}
		defer store.Close()
		return f(store)
	case "aws":
		conf, err := config.LoadAWS(os.Getenv, config.Needs{Table: true})
		if err != nil {
			return err
		}
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return fmt.Errorf("config.LoadDefaultConfig: %w", err)
		}
		return f(dynamo.New(dynamodb.NewFromConfig(awsCfg), conf.TableName))
	}
	return fmt.Errorf("--backend must be embedded or aws, not %q", *sf.backend)
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flags("serve")
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	data := fs.String("data", ".data", "data directory")
	sweep := fs.Duration("sweep-every", time.Minute, "how often the sweeper repairs lost fires and expired leases")
	retryBase := fs.Duration("retry-base", 30*time.Second, "backoff before the first retry of a transient failure (doubles each attempt, cap 15m)")
	backend := fs.String("backend", "embedded", "embedded (SQLite file in --data) or aws (DynamoDB, SQS, Scheduler, SES, SNS at AWS_ENDPOINT_URL or AWS)")
	create := fs.Bool("create-resources", false, "with --backend aws: create the table, queue, schedule group and sender identity first (for emulators)")
	if err := parse(fs, args); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	switch *backend {
	case "embedded":
	case "aws":
		return serveAWS(ctx, *addr, *data, *create, *sweep, stdout, log)
	default:
		return fmt.Errorf("serve: --backend must be embedded or aws, not %q", *backend)
	}
	l, err := embedded.NewLocal(ctx, embedded.LocalConfig{DataDir: *data, SweepEvery: *sweep,
		Dispatch: dispatch.Config{BackoffBase: *retryBase}}, log)
	if err != nil {
		return err
	}
	defer l.Close()
	key, created, err := app.EnsureDevCompany(ctx, l.Store, *data)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(stdout, "created company %q with %d credits\n", app.DevCompany, app.DevCompanyCredits)
	}
	if key != "" {
		fmt.Fprintf(stdout, "dev API key (also in %s): %s\n", filepath.Join(*data, app.DevKeyFile), key)
	}
	fmt.Fprintf(stdout, "deliveries are appended to %s\n", filepath.Join(*data, embedded.OutboxFile))
	return listenAndRun(ctx, *addr, l.API, l.Run, stdout)
}

// listenAndRun serves h on addr and runs the background work until ctx
// ends, then shuts both down.
func listenAndRun(ctx context.Context, addr string, h http.Handler, run func(context.Context) error, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("net.Listen: %w", err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	runDone := make(chan error, 1)
	go func() { runDone <- run(runCtx) }()
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http.Serve: %w", err)
	case err := <-runDone:
		return fmt.Errorf("dispatcher: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http.Shutdown: %w", err)
	}
	stopRun()
	return <-runDone
}

func companiesCreate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flags("companies create")
	sf := addStoreFlags(fs)
	id := fs.String("id", "", "company id")
	credits := fs.Int64("credits", 0, "starting balance")
	tz := fs.String("timezone", "UTC", "default IANA timezone")
	if err := parse(fs, args, "id", "credits"); err != nil {
		return err
	}
	return withStore(ctx, sf, func(store comms.Store) error {
		if err := app.CreateCompany(ctx, store, *id, *credits, *tz); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created company %q with %d credits (timezone %s)\n", *id, *credits, *tz)
		return nil
	})
}

func keysCreate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flags("keys create")
	sf := addStoreFlags(fs)
	company := fs.String("company", "", "company id")
	scopeList := fs.String("scopes", "", "comma-separated scopes")
	if err := parse(fs, args, "company", "scopes"); err != nil {
		return err
	}
	scopes, err := auth.ParseScopes(*scopeList)
	if err != nil {
		return fmt.Errorf("keys create: %w", err)
	}
	return withStore(ctx, sf, func(store comms.Store) error {
		key, err := app.CreateKey(ctx, store, *company, scopes)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, key)
		return nil
	})
}

func keysRevoke(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flags("keys revoke")
	sf := addStoreFlags(fs)
	company := fs.String("company", "", "company id")
	id := fs.String("id", "", "key id (see keys list)")
	if err := parse(fs, args, "company", "id"); err != nil {
		return err
	}
	return withStore(ctx, sf, func(store comms.Store) error {
		if err := store.RevokeAPIKey(ctx, *company, *id, time.Now().UTC()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked key %s\n", *id)
		return nil
	})
}

func keysList(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flags("keys list")
	sf := addStoreFlags(fs)
	company := fs.String("company", "", "company id")
	if err := parse(fs, args, "company"); err != nil {
		return err
	}
	return withStore(ctx, sf, func(store comms.Store) error {
		keys, err := store.ListAPIKeys(ctx, *company)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tPREFIX\tSCOPES\tCREATED\tREVOKED")
		for _, k := range keys {
			revoked := "-"
			if k.RevokedAt != nil {
				revoked = k.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s…\t%v\t%s\t%s\n", k.ID, k.Prefix, k.Scopes, k.CreatedAt.Format(time.RFC3339), revoked)
		}
		return tw.Flush()
	})
}
