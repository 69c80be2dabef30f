package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/auth"
	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/config"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/embedded"
	"github.com/dispatcherhq/dispatcher/internal/ratelimit"
	"github.com/dispatcherhq/dispatcher/internal/store/dynamo"
	"github.com/dispatcherhq/dispatcher/internal/store/sqlite"
	"github.com/dispatcherhq/dispatcher/internal/timer/local"
)

// EnvVoiceWebhookSecret sets the embedded voice simulator's webhook secret
// when `serve --voice-webhook-secret` is not given.
const EnvVoiceWebhookSecret = "DISPATCHER_VOICE_WEBHOOK_SECRET"

// newRoot builds the command tree. Help goes to stdout; errors are
// returned to realMain, which prints them once.
func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "dispatcher",
		Short: "Schedule emails, SMS and voice calls: run the product locally and administer it",
		Long: `dispatcher runs Dispatcher as one local process (serve) and administers the
companies and API keys of a store: the embedded SQLite file in --data, or with
--backend aws the DynamoDB table named by ` + config.EnvTableName + `.`,
		SilenceErrors: true, // realMain prints the error, once
		SilenceUsage:  true, // an error is one line, not the error and the whole usage
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%s: %s (see %s --help)", name(c), flagMessage(err), c.CommandPath())
	})
	root.AddCommand(serveCmd(stderr), companiesCmd(), keysCmd(), dlqCmd(), retentionCmd())
	return root
}

// flagMessage is pflag's error without the Go parser's words: `invalid
// argument "abc" for "--credits" flag: strconv.ParseInt: parsing "abc":
// invalid syntax` becomes `invalid argument "abc" for "--credits" flag: not
// a valid number`.
func flagMessage(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, ": strconv."); i >= 0 {
		return msg[:i] + ": not a valid number"
	}
	if i := strings.Index(msg, ": time: "); i >= 0 {
		return msg[:i] + ": not a valid duration (such as 30s, 2m)"
	}
	return msg
}

// goStyleFlags rewrites -name and -name=v, which the CLI accepted before
// it moved to cobra (Go's flag package takes one dash or two), to --name,
// for the long flags the CLI has; anything else is left as it is.
func goStyleFlags(root *cobra.Command, args []string) []string {
	long := map[string]bool{}
	var collect func(c *cobra.Command)
	collect = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) { long[f.Name] = true })
		for _, sub := range c.Commands() {
			collect(sub)
		}
	}
	collect(root)
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if a == "--" {
			copy(out[i:], args[i:])
			break
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "-"), "=")
		if strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && len(name) > 1 && long[name] {
			out[i] = "-" + a
		}
	}
	return out
}

// group is a command that only holds subcommands: run bare or with an
// unknown subcommand it is an error that names the subcommands.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			var names []string
			for _, s := range c.Commands() {
				names = append(names, s.Name())
			}
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q for %q: choose %s (see %s --help)", args[0], c.CommandPath(), strings.Join(names, ", "), c.CommandPath())
			}
			return fmt.Errorf("%s needs a command: %s (see %s --help)", name(c), strings.Join(names, ", "), c.CommandPath())
		},
	}
	c.AddCommand(subs...)
	return c
}

// name is a command's path without the program's name, for error
// messages that realMain's caller already prefixes with it.
func name(c *cobra.Command) string {
	if !c.HasParent() {
		return c.Name()
	}
	return strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" ")
}

// required reports the first of names that was not given.
func required(c *cobra.Command, names ...string) error {
	for _, n := range names {
		if !c.Flags().Changed(n) {
			return fmt.Errorf("%s: --%s is required (see %s --help)", name(c), n, c.CommandPath())
		}
	}
	return nil
}

// storeFlags are the flags that choose the store an admin command acts on.
type storeFlags struct{ data, backend string }

func addStoreFlags(fs *pflag.FlagSet) *storeFlags {
	sf := &storeFlags{}
	fs.StringVar(&sf.data, "data", ".data", "data directory of the embedded store (dispatcher serve --data DIR creates one)")
	fs.StringVar(&sf.backend, "backend", "embedded", "embedded (the SQLite file in --data) or aws (the DynamoDB table named by "+config.EnvTableName+")")
	return sf
}

// withStore runs f on the chosen store: the embedded SQLite file, or the
// DynamoDB table of a deployment (credentials and region from the usual AWS
// environment, AWS_ENDPOINT_URL for an emulator). An embedded data
// directory must already hold a database: an admin command given a
// mistyped --data refuses rather than creating an empty one.
func withStore(ctx context.Context, sf *storeFlags, f func(comms.Store) error) error {
	switch sf.backend {
	case "embedded":
		db := filepath.Join(sf.data, embedded.DBFile)
		if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("no database in --data %s (no %s there): check --data, or run `dispatcher serve --data %s` once to create one", sf.data, embedded.DBFile, sf.data)
		} else if err != nil {
			return fmt.Errorf("--data %s: %w", sf.data, err)
		}
		store, err := embedded.OpenStore(ctx, sf.data)
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
		return f(dynamo.New(dynamodb.NewFromConfig(awsCfg), conf.TableName).WithRetention(conf.Retention))
	}
	return fmt.Errorf("--backend must be embedded or aws, not %q", sf.backend)
}

// DefaultRateLimit and DefaultRateBurst are `serve`'s limit of each
// company's API requests on the embedded backend: 100 requests/s with a
// burst of 200, more than one machine's clients of a company send in
// normal use (the AWS stack's own default is infra.DefaultCompanyRateLimit).
const (
	DefaultRateLimit = 100
	DefaultRateBurst = 200
)

type serveFlags struct {
	addr, data, backend string
	sweep, retryBase    time.Duration
	lease, sweepGrace   time.Duration
	leaseEmail          time.Duration
	leaseSMS            time.Duration
	leaseVoice          time.Duration
	analysisGrace       time.Duration
	timerHorizon        time.Duration
	create              bool
	voiceSecret         string
	durability          string
	rateLimit           float64
	rateBurst           int
}

func serveCmd(logTo io.Writer) *cobra.Command {
	var f serveFlags
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the whole product in one process: the API, the timer, the dispatcher and the dev senders",
		Long: `serve runs the API on --addr and delivers what is due. On the embedded backend
(the default) everything lives in --data: the SQLite file (created on first
start), outbox.jsonl (every delivery the dev senders make), dev-api-key (the
key of the company "dev", created on first start) and voice-webhook-secret.

The dev voice simulator signs the call outcomes it posts to
/v1/webhooks/voice/retell, and only outcomes signed with the same secret are
accepted: --voice-webhook-secret, else $` + EnvVoiceWebhookSecret + `, else
the random secret generated on first start into <data>/voice-webhook-secret
(mode 0600). Sign an outcome by hand with that secret.`,
		Example: `  dispatcher serve --addr 127.0.0.1:8080 --data .data
  dispatcher serve --backend aws --create-resources   # against an emulator at AWS_ENDPOINT_URL`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return serve(c.Context(), c, f, c.OutOrStdout(), logTo)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.addr, "addr", "127.0.0.1:8080", "listen address (host:port)")
	fl.StringVar(&f.data, "data", ".data", "data directory (created if missing)")
	fl.DurationVar(&f.sweep, "sweep-every", time.Minute, "how often the sweeper repairs lost fires and expired leases")
	fl.DurationVar(&f.retryBase, "retry-base", 30*time.Second, "backoff before the first retry of a transient failure (doubles each attempt, cap 15m; embedded backend)")
	fl.DurationVar(&f.leaseEmail, "lease-email", dispatch.DefaultEmailLease, "how long a claimed email attempt may run before the sweeper (--sweep-grace later) settles it from the outbox and, if it was not sent, sends it again; its send times out at a quarter of it, at most 30s (embedded backend; on AWS $"+config.EnvLeaseEmail+")")
	fl.DurationVar(&f.leaseSMS, "lease-sms", dispatch.DefaultSMSLease, "the same for an SMS attempt (embedded backend; on AWS $"+config.EnvLeaseSMS+")")
	fl.DurationVar(&f.leaseVoice, "lease-voice", dispatch.DefaultVoiceLease, "the same for a call placement: how long a claimed call may take to be placed; a claim that outlives it fails outcome_unknown, nobody is called twice (embedded backend; on AWS $"+config.EnvLeaseVoice+")")
	fl.DurationVar(&f.lease, "lease", 0, "the lease of every channel whose own --lease-<channel> is not given")
	fl.DurationVar(&f.sweepGrace, "sweep-grace", time.Minute, "how overdue a fire or an expired lease must be before the sweeper repairs it (embedded backend; on AWS $"+config.EnvSweepGrace+"). A restarted serve settles its dead predecessor's attempts at start-up, without waiting for their leases or this grace")
	fl.DurationVar(&f.analysisGrace, "analysis-grace", 2*time.Minute, "how long after a call's call_ended the decision waits for its call_analyzed before deciding without it (embedded backend)")
	fl.DurationVar(&f.timerHorizon, "timer-horizon", local.DefaultHorizon, "how far ahead the timer holds fires in memory; rows due later stay on disk and are read from the store as their time nears (embedded backend)")
	fl.StringVar(&f.durability, "durability", "full", "when the SQLite file's commits are synced to disk (embedded backend): full — before every answer, so a 201 survives power loss and OS crashes; normal — at checkpoints only: survives the process being killed, may lose the last writes on power loss, faster on slow disks")
	fl.Float64Var(&f.rateLimit, "rate-limit", DefaultRateLimit, "each company's API requests per second (a token bucket; 0: no limit; embedded backend — on AWS $"+config.EnvCompanyRateLimit+")")
	fl.IntVar(&f.rateBurst, "rate-burst", DefaultRateBurst, "each company's API burst: requests a full bucket admits at once (embedded backend — on AWS $"+config.EnvCompanyRateBurst+")")
	fl.StringVar(&f.backend, "backend", "embedded", "embedded (SQLite file in --data) or aws (DynamoDB, SQS, Scheduler, SES, SNS at AWS_ENDPOINT_URL or AWS)")
	fl.BoolVar(&f.create, "create-resources", false, "with --backend aws: create the table, queue, schedule group and sender identity first (for emulators)")
	fl.StringVar(&f.voiceSecret, "voice-webhook-secret", "", "secret the voice simulator signs call outcomes with and the webhook path verifies (embedded backend; default $"+EnvVoiceWebhookSecret+", else <data>/"+embedded.VoiceSecretFile+")")
	return c
}

// voiceSecret picks the embedded voice webhook secret: the flag, else the
// environment, else "" (the process keeps one in the data directory). It
// also says where the secret came from, for the start banner.
func voiceSecret(c *cobra.Command, flag string, lookupEnv func(string) (string, bool), data string) (secret, from string, err error) {
	if c.Flags().Changed("voice-webhook-secret") {
		if flag == "" {
			return "", "", errors.New("serve: --voice-webhook-secret must not be empty")
		}
		return flag, "--voice-webhook-secret", nil
	}
	if v, ok := lookupEnv(EnvVoiceWebhookSecret); ok && v != "" {
		return v, "$" + EnvVoiceWebhookSecret, nil
	}
	return "", filepath.Join(data, embedded.VoiceSecretFile), nil
}

// listen opens addr, saying in one line which flag to change when it
// cannot.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("serve: %s is already in use (another dispatcher serve?): pass a free --addr", addr)
	case err != nil:
		return nil, fmt.Errorf("serve: cannot listen on --addr %s: %v", addr, err)
	}
	return ln, nil
}

func serve(ctx context.Context, c *cobra.Command, f serveFlags, stdout, stderr io.Writer) error {
	if f.backend != "embedded" && f.backend != "aws" {
		return fmt.Errorf("serve: --backend must be embedded or aws, not %q", f.backend)
	}
	if f.backend == "aws" && c.Flags().Changed("voice-webhook-secret") {
		return fmt.Errorf("serve: --voice-webhook-secret is for the embedded backend; the AWS wiring takes the Retell key from %s", config.EnvVoiceSecretARN)
	}
	if f.backend == "aws" && c.Flags().Changed("durability") {
		return fmt.Errorf("serve: --durability is for the embedded backend; DynamoDB acknowledges a write once it is durable")
	}
	if f.backend == "aws" && c.Flags().Changed("timer-horizon") {
		return fmt.Errorf("serve: --timer-horizon is for the embedded backend; on AWS the fires are held by SQS and EventBridge Scheduler")
	}
	if f.backend == "aws" && (c.Flags().Changed("rate-limit") || c.Flags().Changed("rate-burst")) {
		return fmt.Errorf("serve: --rate-limit and --rate-burst are for the embedded backend; on AWS the limit is read from %s and %s", config.EnvCompanyRateLimit, config.EnvCompanyRateBurst)
	}
	secret, secretFrom, err := voiceSecret(c, f.voiceSecret, os.LookupEnv, f.data)
	if err != nil {
		return err
	}
	// The port first: a busy one is the usual failure, and it is said
	// before any store is opened or key printed.
	ln, err := listen(f.addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	if f.backend == "aws" {
		return serveAWS(ctx, ln, f.data, f.create, f.sweep, stdout, stderr)
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	var rl ratelimit.Policy
	if f.rateLimit != 0 {
		rl.Default = ratelimit.Limit{Rate: f.rateLimit, Burst: f.rateBurst}
		if err := rl.Default.Valid(); err != nil {
			return fmt.Errorf("serve: --rate-limit/--rate-burst: %v", err)
		}
	}
	leases, err := serveLeases(c, f)
	if err != nil {
		return err
	}
	if f.sweepGrace <= 0 || f.analysisGrace <= 0 || f.timerHorizon <= 0 {
		return fmt.Errorf("serve: --sweep-grace, --analysis-grace and --timer-horizon must be positive")
	}
	durability, err := sqlite.ParseDurability(f.durability)
	if err != nil {
		return fmt.Errorf("serve: --%v", err)
	}
	l, err := embedded.NewLocal(ctx, embedded.LocalConfig{DataDir: f.data, SweepEvery: f.sweep, Durability: durability, TimerHorizon: f.timerHorizon,
		Dispatch: dispatch.Config{BackoffBase: f.retryBase, EmailLease: leases.EmailLease, SMSLease: leases.SMSLease, VoiceLease: leases.VoiceLease,
			SweepGrace: f.sweepGrace, AnalysisGrace: f.analysisGrace}, VoiceSecret: secret, RateLimit: rl}, log)
	if err != nil {
		return err
	}
	defer l.Close()
	if err := devBanner(ctx, l.Store, f.data, stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "deliveries are appended to %s\n", filepath.Join(f.data, embedded.OutboxFile))
	fmt.Fprintf(stdout, "voice webhooks are verified with the secret from %s\n", secretFrom)
	return listenAndRun(ctx, ln, l.API, l.Run, stdout)
}

// serveLeases reads the per-channel leases: --lease-<channel> when given,
// else --lease when given, else the channel's default. Each must be
// positive.
func serveLeases(c *cobra.Command, f serveFlags) (dispatch.Config, error) {
	var out dispatch.Config
	for _, l := range []struct {
		flag string
		v    time.Duration
		to   *time.Duration
	}{{"lease-email", f.leaseEmail, &out.EmailLease}, {"lease-sms", f.leaseSMS, &out.SMSLease}, {"lease-voice", f.leaseVoice, &out.VoiceLease}} {
		from := l.flag
		*l.to = l.v
		if !c.Flags().Changed(l.flag) && c.Flags().Changed("lease") {
			*l.to, from = f.lease, "lease"
		}
		if *l.to <= 0 {
			return out, fmt.Errorf("serve: --%s must be positive (a duration such as 30s), not %v", from, *l.to)
		}
	}
	return out, nil
}

// devBanner creates the dev company on first start and prints its key.
func devBanner(ctx context.Context, store comms.Store, data string, stdout io.Writer) error {
	key, created, err := app.EnsureDevCompany(ctx, store, data)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(stdout, "created company %q with %d credits\n", app.DevCompany, app.DevCompanyCredits)
	}
	if key != "" {
		fmt.Fprintf(stdout, "dev API key (also in %s): %s\n", filepath.Join(data, app.DevKeyFile), key)
	}
	return nil
}

// listenAndRun serves h on ln and runs the background work until ctx
// ends, then shuts both down.
func listenAndRun(ctx context.Context, ln net.Listener, h http.Handler, run func(context.Context) error, stdout io.Writer) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		// Above this net/http answers 431 in plain text before any handler;
		// below it, the API's own JSON 431 (httpapi.MaxHeaderBytes) applies.
		MaxHeaderBytes: 64 << 10,
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

func companiesCmd() *cobra.Command {
	var id, tz string
	var credits int64
	create := &cobra.Command{
		Use:     "create",
		Short:   "Create a company with a balance of credits and a default timezone",
		Example: "  dispatcher companies create --data .data --id acme --credits 1000 --timezone Europe/London",
		Args:    cobra.NoArgs,
	}
	sf := addStoreFlags(create.Flags())
	create.Flags().StringVar(&id, "id", "", "company id (required)")
	create.Flags().Int64Var(&credits, "credits", 0, "starting balance of credits (required)")
	create.Flags().StringVar(&tz, "timezone", "UTC", "default IANA timezone of the company's rows")
	create.RunE = func(c *cobra.Command, _ []string) error {
		if err := required(c, "id", "credits"); err != nil {
			return err
		}
		return withStore(c.Context(), sf, func(store comms.Store) error {
			if err := app.CreateCompany(c.Context(), store, id, credits, tz); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "created company %q with %d credits (timezone %s)\n", id, credits, tz)
			return nil
		})
	}
	return group("companies", "Administer companies", create)
}

func keysCmd() *cobra.Command {
	return group("keys", "Administer API keys: create, list, revoke", keysCreateCmd(), keysListCmd(), keysRevokeCmd())
}

func keysCreateCmd() *cobra.Command {
	var company, scopeList string
	c := &cobra.Command{
		Use:   "create",
		Short: "Issue an API key of a company",
		Long: `create issues an API key of a company. The secret is printed alone on stdout
(so KEY=$(dispatcher keys create …) works) and shown only this once; the key's
id, which keys revoke --id takes, is printed on stderr.

Scopes: ` + scopeNames() + `.`,
		Example: "  dispatcher keys create --data .data --company acme --scopes dispatcher:read,dispatcher:write,email:send",
		Args:    cobra.NoArgs,
	}
	sf := addStoreFlags(c.Flags())
	c.Flags().StringVar(&company, "company", "", "company id (required)")
	c.Flags().StringVar(&scopeList, "scopes", "", "comma-separated scopes (required): "+scopeNames())
	c.RunE = func(c *cobra.Command, _ []string) error {
		if err := required(c, "company", "scopes"); err != nil {
			return err
		}
		scopes, err := auth.ParseScopes(scopeList)
		if err != nil {
			return fmt.Errorf("keys create: --scopes: %w", err)
		}
		return withStore(c.Context(), sf, func(store comms.Store) error {
			secret, key, err := app.IssueKey(c.Context(), store, company, scopes)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), secret)
			where := "--data " + sf.data
			if sf.backend != "embedded" {
				where = "--backend " + sf.backend
			}
			fmt.Fprintf(c.ErrOrStderr(), "key id %s (revoke with: dispatcher keys revoke %s --company %s --id %s); the secret above is not shown again\n", key.ID, where, company, key.ID)
			return nil
		})
	}
	return c
}

func scopeNames() string {
	var s []string
	for _, sc := range comms.AllScopes {
		s = append(s, string(sc))
	}
	return strings.Join(s, ", ")
}

func keysRevokeCmd() *cobra.Command {
	var company, id string
	c := &cobra.Command{
		Use:   "revoke",
		Short: "Revoke an API key of a company",
		Long: fmt.Sprintf(`revoke marks a key revoked. A process that resolved the key in the last %s
keeps it in its cache (auth.CacheTTL): it may accept the key until then.`, cacheTTL()),
		Example: "  dispatcher keys revoke --data .data --company acme --id <key id from keys list>",
		Args:    cobra.NoArgs,
	}
	sf := addStoreFlags(c.Flags())
	c.Flags().StringVar(&company, "company", "", "company id (required)")
	c.Flags().StringVar(&id, "id", "", "key id, from keys create or keys list (required)")
	c.RunE = func(c *cobra.Command, _ []string) error {
		if err := required(c, "company", "id"); err != nil {
			return err
		}
		return withStore(c.Context(), sf, func(store comms.Store) error {
			if _, err := app.GetCompany(c.Context(), store, company); err != nil {
				return err
			}
			err := store.RevokeAPIKey(c.Context(), company, id, time.Now().UTC())
			if errors.Is(err, comms.ErrNotFound) {
				return fmt.Errorf("company %q has no key with id %q (see keys list)", company, id)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "revoked key %s; processes that already resolved it (a running serve, warm Lambda instances) may accept it for up to %s more\n", id, cacheTTL())
			return nil
		})
	}
	return c
}

// cacheTTL says auth.CacheTTL the way a person reads it.
func cacheTTL() string {
	if auth.CacheTTL%time.Minute == 0 && auth.CacheTTL >= 2*time.Minute {
		return fmt.Sprintf("%d minutes", auth.CacheTTL/time.Minute)
	}
	return fmt.Sprintf("%d seconds", auth.CacheTTL/time.Second)
}

func keysListCmd() *cobra.Command {
	var company string
	c := &cobra.Command{
		Use:     "list",
		Short:   "List the API keys of a company (ids and prefixes, never secrets)",
		Example: "  dispatcher keys list --data .data --company acme",
		Args:    cobra.NoArgs,
	}
	sf := addStoreFlags(c.Flags())
	c.Flags().StringVar(&company, "company", "", "company id (required)")
	c.RunE = func(c *cobra.Command, _ []string) error {
		if err := required(c, "company"); err != nil {
			return err
		}
		return withStore(c.Context(), sf, func(store comms.Store) error {
			if _, err := app.GetCompany(c.Context(), store, company); err != nil {
				return err
			}
			keys, err := store.ListAPIKeys(c.Context(), company)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
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
	return c
}
