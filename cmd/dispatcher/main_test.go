package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/channel/retell"
	"github.com/dispatcherhq/dispatcher/internal/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/embedded"
)

// run runs the CLI as a user would, returning stdout, stderr and the error
// main would print.
func run(args ...string) (stdout, stderr string, err error) {
	var out, errs bytes.Buffer
	err = realMain(context.Background(), args, &out, &errs)
	return out.String(), errs.String(), err
}

// newDataDir is a data directory with a database, as `serve` leaves it.
func newDataDir(t *testing.T) string {
	t.Helper()
	data := t.TempDir()
	s, err := embedded.OpenStore(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return data
}

// oneLine fails unless err is a single line containing want.
func oneLine(t *testing.T, what string, err error, want string) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s: succeeded, want an error saying %q", what, want)
	case strings.Contains(err.Error(), "\n"):
		t.Errorf("%s: the error is more than one line:\n%v", what, err)
	case !strings.Contains(err.Error(), want):
		t.Errorf("%s: error %q, want it to say %q", what, err, want)
	}
}

// TestHelp: --help on every command and subcommand exits 0 and lists each
// of its flags, with the default where it has one.
func TestHelp(t *testing.T) {
	root := newRoot(io.Discard, io.Discard)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			walk(sub, append(append([]string(nil), path...), sub.Name()))
		}
	}
	walk(root, nil)
	for _, want := range []string{"serve", "companies create", "keys create", "keys list", "keys revoke", "dlq inspect", "dlq redrive", "completion bash"} {
		found := false
		for _, p := range paths {
			found = found || strings.Join(p, " ") == want
		}
		if !found {
			t.Errorf("the command tree has no %q", want)
		}
	}
	for _, path := range paths {
		t.Run(strings.Join(append([]string{"dispatcher"}, path...), " "), func(t *testing.T) {
			out, _, err := run(append(append([]string(nil), path...), "--help")...)
			if err != nil {
				t.Fatalf("--help: %v", err)
			}
			c, _, err := root.Find(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "Usage:") {
				t.Errorf("no usage:\n%s", out)
			}
			c.NonInheritedFlags().VisitAll(func(f *pflag.Flag) {
				var line string
				_, flagsPart, _ := strings.Cut(out, "\nFlags:\n")
				for _, l := range strings.Split(flagsPart, "\n") {
					if strings.Contains(l, "--"+f.Name+" ") || strings.HasSuffix(l, "--"+f.Name) {
						line = l
						break
					}
				}
				if line == "" {
					t.Errorf("--%s is not listed:\n%s", f.Name, out)
					return
				}
				if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" && !strings.Contains(line, "(default ") {
					t.Errorf("--%s does not show its default %s: %q", f.Name, f.DefValue, line)
				}
			})
		})
	}
	serveHelp, _, _ := run("serve", "--help")
	for _, want := range []string{`--addr string`, `(default "127.0.0.1:8080")`, "--retry-base duration", "(default 30s)",
		"--sweep-every duration", "(default 1m0s)", "--voice-webhook-secret", EnvVoiceWebhookSecret,
		"--lease-email duration", "--lease-sms duration", "--lease-voice duration", "(default 2m0s)", "--sweep-grace duration"} {
		if !strings.Contains(serveHelp, want) {
			t.Errorf("serve --help lacks %q", want)
		}
	}
	if out, _, err := run("completion", "bash"); err != nil || !strings.Contains(out, "bash completion") {
		t.Errorf("completion bash: %v\n%.200s", err, out)
	}
}

// TestServeLeases: --lease-<channel> sets its channel's lease, --lease
// those not given their own, and the defaults are the dispatcher's.
func TestServeLeases(t *testing.T) {
	for _, c := range []struct {
		args              []string
		email, sms, voice time.Duration
		err               string
	}{
		{nil, 30 * time.Second, 30 * time.Second, 2 * time.Minute, ""},
		{[]string{"--lease-email", "5s", "--lease-voice", "3m"}, 5 * time.Second, 30 * time.Second, 3 * time.Minute, ""},
		{[]string{"--lease", "8s"}, 8 * time.Second, 8 * time.Second, 8 * time.Second, ""},
		{[]string{"--lease", "8s", "--lease-voice", "1m"}, 8 * time.Second, 8 * time.Second, time.Minute, ""},
		{[]string{"--lease-sms", "0s"}, 0, 0, 0, "--lease-sms must be positive"},
		{[]string{"--lease", "-1s"}, 0, 0, 0, "--lease must be positive"},
	} {
		cmd := serveCmd(io.Discard)
		var got dispatch.Config
		var err error
		cmd.RunE = func(cmd *cobra.Command, _ []string) error {
			var f serveFlags
			f.leaseEmail, _ = cmd.Flags().GetDuration("lease-email")
			f.leaseSMS, _ = cmd.Flags().GetDuration("lease-sms")
			f.leaseVoice, _ = cmd.Flags().GetDuration("lease-voice")
			f.lease, _ = cmd.Flags().GetDuration("lease")
			got, err = serveLeases(cmd, f)
			return nil
		}
		cmd.SetArgs(c.args)
		if e := cmd.Execute(); e != nil {
			t.Fatalf("%v: %v", c.args, e)
		}
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%v: %v, want %q", c.args, err, c.err)
		case c.err == "" && (err != nil || got.EmailLease != c.email || got.SMSLease != c.sms || got.VoiceLease != c.voice):
			t.Errorf("%v: email %v sms %v voice %v (%v), want %v %v %v", c.args, got.EmailLease, got.SMSLease, got.VoiceLease, err, c.email, c.sms, c.voice)
		}
	}
}

// TestEntryPoints runs the commands scripts depend on, as a user would,
// and the mistakes a user makes, each answered in one line.
func TestEntryPoints(t *testing.T) {
	data := newDataDir(t)
	if _, _, err := run("companies", "create", "--data", data, "--id", "acme", "--credits", "10", "--timezone", "Europe/London"); err != nil {
		t.Fatal(err)
	}
	_, _, err := run("companies", "create", "--data", data, "--id", "acme", "--credits", "10")
	oneLine(t, "a duplicate company", err, `company "acme" already exists`)
	if err != nil && (strings.Contains(err.Error(), "UNIQUE") || strings.Contains(err.Error(), "sqlite")) {
		t.Errorf("a duplicate company shows the driver's error: %v", err)
	}
	_, _, err = run("companies", "create", "--data", data, "--id", "x", "--credits", "1", "--timezone", "Local")
	oneLine(t, "timezone Local", err, "Local")

	key, keyErr, err := run("keys", "create", "--data", data, "--company", "acme", "--scopes", "dispatcher:read,email:send")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, "dk_live_") || strings.Count(key, "\n") != 1 {
		t.Errorf("keys create must print only the key on stdout, printed %q", key)
	}
	list, _, err := run("keys", "list", "--data", data, "--company", "acme")
	if err != nil || !strings.Contains(list, key[:14]) || strings.Contains(list, strings.TrimSpace(key)) {
		t.Errorf("keys list shows the prefix only: %v\n%s", err, list)
	}
	fields := strings.Fields(strings.Split(list, "\n")[1])
	if len(fields) == 0 || !strings.Contains(keyErr, "key id "+fields[0]) {
		t.Fatalf("keys create did not print the key id of keys list (%v): %q", fields, keyErr)
	}
	keyID := fields[0]

	_, _, err = run("keys", "create", "--data", data, "--company", "acme", "--scopes", "root")
	oneLine(t, "an unknown scope", err, "root")
	_, _, err = run("keys", "create", "--data", data, "--company", "nope", "--scopes", "dispatcher:read")
	oneLine(t, "keys create of an unknown company", err, `company "nope" not found`)
	_, _, err = run("keys", "list", "--data", data, "--company", "nope")
	oneLine(t, "keys list of an unknown company", err, `company "nope" not found`)
	_, _, err = run("keys", "revoke", "--data", data, "--company", "nope", "--id", keyID)
	oneLine(t, "keys revoke of an unknown company", err, `company "nope" not found`)
	_, _, err = run("keys", "revoke", "--data", data, "--company", "acme", "--id", "no-such-key")
	oneLine(t, "keys revoke of an unknown key", err, `no key with id "no-such-key"`)
	_, _, err = run("keys", "create", "--data", data, "--scopes", "dispatcher:read")
	oneLine(t, "missing --company", err, "--company is required")

	typo := filepath.Join(t.TempDir(), "typo")
	for _, args := range [][]string{
		{"keys", "list", "--data", typo, "--company", "acme"},
		{"keys", "create", "--data", typo, "--company", "acme", "--scopes", "dispatcher:read"},
		{"keys", "revoke", "--data", typo, "--company", "acme", "--id", keyID},
		{"companies", "create", "--data", typo, "--id", "acme", "--credits", "1"},
	} {
		_, _, err = run(args...)
		oneLine(t, strings.Join(args[:2], " ")+" on a mistyped --data", err, "no database in --data "+typo)
		if _, serr := os.Stat(typo); serr == nil {
			t.Fatalf("%s created %s", strings.Join(args[:2], " "), typo)
		}
	}

	out, _, err := run("keys", "revoke", "--data", data, "--company", "acme", "--id", keyID)
	if err != nil || !strings.Contains(out, "revoked key "+keyID) || !strings.Contains(out, "60 seconds") {
		t.Errorf("keys revoke must say how long warm processes may accept the key (auth.CacheTTL): %v %q", err, out)
	}
	if list, _, _ := run("keys", "list", "--data", data, "--company", "acme"); strings.Contains(list, "\t-\n") || !strings.Contains(list, time.Now().UTC().Format("2006-01-02")) {
		t.Errorf("the revoked key is not listed as revoked:\n%s", list)
	}

	// Go's flag package took -name as well as --name; scripts written so still work.
	if out, _, err := run("keys", "list", "-data", data, "-company=acme"); err != nil || !strings.Contains(out, keyID) {
		t.Errorf("single-dash flags: %v\n%s", err, out)
	}

	_, _, err = run("bogus")
	oneLine(t, "an unknown command", err, `unknown command "bogus"`)
	_, _, err = run("keys", "bogus")
	oneLine(t, "an unknown subcommand", err, `unknown command "bogus"`)
	_, _, err = run("keys")
	oneLine(t, "a group without a subcommand", err, "create, list, revoke")
	_, _, err = run("serve", "--bogus")
	oneLine(t, "an unknown flag", err, "unknown flag: --bogus")
	_, _, err = run("serve", "--backend", "cloud")
	oneLine(t, "an unknown backend", err, `--backend must be embedded or aws, not "cloud"`)
	_, _, err = run("serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--durability", "off")
	oneLine(t, "an unknown durability", err, `--durability must be full or normal, not "off"`)
	_, _, err = run("serve", "--addr", "127.0.0.1:0", "--backend", "aws", "--durability", "normal")
	oneLine(t, "--durability with aws", err, "--durability is for the embedded backend")
	_, _, err = run("serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--timer-horizon", "0s")
	oneLine(t, "a zero timer horizon", err, "--timer-horizon must be positive")
	_, _, err = run("serve", "--addr", "127.0.0.1:0", "--backend", "aws", "--timer-horizon", "1m")
	oneLine(t, "--timer-horizon with aws", err, "--timer-horizon is for the embedded backend")
	_, _, err = run("serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--rate-limit", "-1")
	oneLine(t, "a negative rate limit", err, "--rate-limit/--rate-burst: rate -1")
	_, _, err = run("serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--rate-burst", "0")
	oneLine(t, "a zero burst", err, "--rate-limit/--rate-burst: burst 0")
	_, _, err = run("serve", "--addr", "127.0.0.1:0", "--backend", "aws", "--rate-limit", "5")
	oneLine(t, "--rate-limit with aws", err, "--rate-limit and --rate-burst are for the embedded backend")
}

// TestServeBusyPort: a taken --addr is one line naming --addr, said before
// anything is created or a key printed.
func TestServeBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	data := filepath.Join(t.TempDir(), "data")
	out, _, err := run("serve", "--addr", ln.Addr().String(), "--data", data)
	oneLine(t, "serve on a busy port", err, ln.Addr().String()+" is already in use")
	oneLine(t, "serve on a busy port", err, "--addr")
	if out != "" {
		t.Errorf("serve printed before failing: %q", out)
	}
	if _, err := os.Stat(data); err == nil {
		t.Errorf("serve on a busy port created %s", data)
	}
}

// server is a `serve` running in the background.
type server struct {
	addr string
	out  []string // what it printed up to "listening on"
	stop func() error
}

func startServe(t *testing.T, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- realMain(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), pw, io.Discard)
		pw.Close()
	}()
	s := &server{}
	lines := bufio.NewScanner(pr)
	for lines.Scan() {
		s.out = append(s.out, lines.Text())
		if a, ok := strings.CutPrefix(lines.Text(), "listening on "); ok {
			s.addr = a
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	stopped := false
	s.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			t.Fatal("serve did not stop")
			return nil
		}
	}
	t.Cleanup(func() { _ = s.stop() })
	if s.addr == "" {
		t.Fatalf("serve never printed 'listening on': %v (%v)", s.out, s.stop())
	}
	return s
}

// postOutcome posts a call outcome signed with secret to the voice
// webhook path and returns the status: 200 if the secret is the one the
// process verifies with (the call is unknown, so it is acknowledged and
// changes nothing), 401 if not.
func (s *server) postOutcome(t *testing.T, secret string) int {
	t.Helper()
	meta := map[string]string{retell.MetaCommunicationID: "01J0000000000000000000NONE", retell.MetaCompanyID: app.DevCompany, retell.MetaAttempt: "1"}
	body, err := retell.SimulatedEvent(retell.EventCallEnded, "call_by_hand", meta, retell.ScenarioShort, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("POST", s.addr+"/v1/webhooks/voice/retell", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(retell.SignatureHeader, retell.Sign(body, secret, time.Now()))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestServeVoiceSecret: without a flag or the environment the secret is
// generated into <data>/voice-webhook-secret (0600) and kept across
// restarts; the environment overrides the file, the flag both; the old
// compiled-in secret verifies nothing.
func TestServeVoiceSecret(t *testing.T) {
	data := t.TempDir()
	file := filepath.Join(data, embedded.VoiceSecretFile)
	t.Setenv(EnvVoiceWebhookSecret, "")

	s := startServe(t, "--data", data)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	fileSecret := string(b)
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, want mode 0600", file, fi.Mode().Perm())
	}
	if code := s.postOutcome(t, fileSecret); code != 200 {
		t.Errorf("an outcome signed with the file's secret: %d, want 200", code)
	}
	if code := s.postOutcome(t, "dev-voice-webhook-secret"); code != 401 {
		t.Errorf("an outcome signed with the old compiled-in secret: %d, want 401", code)
	}
	if !strings.Contains(strings.Join(s.out, "\n"), "secret from "+file) {
		t.Errorf("serve did not say where the secret is: %q", s.out)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	s = startServe(t, "--data", data)
	if code := s.postOutcome(t, fileSecret); code != 200 {
		t.Errorf("after a restart, the kept secret: %d, want 200", code)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	t.Setenv(EnvVoiceWebhookSecret, "from-the-env")
	s = startServe(t, "--data", data)
	if code := s.postOutcome(t, "from-the-env"); code != 200 {
		t.Errorf("%s set: an outcome signed with it: %d, want 200", EnvVoiceWebhookSecret, code)
	}
	if code := s.postOutcome(t, fileSecret); code != 401 {
		t.Errorf("%s set: an outcome signed with the file's secret: %d, want 401", EnvVoiceWebhookSecret, code)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	s = startServe(t, "--data", data, "--voice-webhook-secret", "from-the-flag")
	if code := s.postOutcome(t, "from-the-flag"); code != 200 {
		t.Errorf("--voice-webhook-secret: an outcome signed with it: %d, want 200", code)
	}
	if code := s.postOutcome(t, "from-the-env"); code != 401 {
		t.Errorf("--voice-webhook-secret and %s: the env's secret: %d, want 401", EnvVoiceWebhookSecret, code)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(file); string(b) != fileSecret {
		t.Errorf("the env or flag rewrote %s", file)
	}
	_, _, err = run("serve", "--data", data, "--addr", "127.0.0.1:0", "--voice-webhook-secret", "")
	oneLine(t, "an empty --voice-webhook-secret", err, "must not be empty")
}

// TestServe starts `serve` on a free port: it prints the dev key and
// "listening on", answers with that key, delivers a row due now to the
// outbox, and stops on cancel.
func TestServe(t *testing.T) {
	data := t.TempDir()
	s := startServe(t, "--data", data)
	addr := s.addr
	key, err := os.ReadFile(filepath.Join(data, "dev-api-key"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(s.out, "\n"), string(key)) {
		t.Errorf("serve did not print the dev key: %q", s.out)
	}
	call := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, addr+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+string(key))
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var r struct{ Data map[string]any }
		if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
			t.Fatalf("%s %s: %d, %v", method, path, res.StatusCode, err)
		}
		return res.StatusCode, r.Data
	}
	if code, _ := call("GET", "/v1/settings", ""); code != 200 {
		t.Errorf("GET /v1/settings with the dev key: %d", code)
	}

	// A row due now is delivered by the process's own timer and dispatcher.
	code, row := call("POST", "/v1/scheduled-communications", `{"channel":"email","scheduled_for":"`+
		time.Now().UTC().Format(time.RFC3339Nano)+`","payload":{"to_email":"sarah@example.com","subject":"Hi","html_body":"<p>Hi</p>"}}`)
	id, _ := row["id"].(string)
	if code != 201 || id == "" {
		t.Fatalf("create: %d %v", code, row)
	}
	deadline := time.Now().Add(15 * time.Second) // a bound for a broken build, not a latency check
	for row["status"] != "sent" {
		if time.Now().After(deadline) {
			t.Fatalf("row %s is %v after 15 s, want sent", id, row["status"])
		}
		time.Sleep(20 * time.Millisecond) // poll interval
		_, row = call("GET", "/v1/scheduled-communications/"+id, "")
	}
	outbox, err := os.ReadFile(filepath.Join(data, "outbox.jsonl"))
	if err != nil || !strings.Contains(string(outbox), `"communication_id":"`+id+`"`) {
		t.Errorf("outbox.jsonl lacks row %s (%v):\n%s", id, err, outbox)
	}
	if err := s.stop(); err != nil {
		t.Errorf("serve returned %v", err)
	}
}
