package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEntryPoints runs the commands scripts depend on, as a user would.
func TestEntryPoints(t *testing.T) {
	data := t.TempDir()
	ctx := context.Background()
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := realMain(ctx, args, &out, io.Discard)
		return out.String(), err
	}
	if _, err := run("companies", "create", "--data", data, "--id", "acme", "--credits", "10", "--timezone", "Europe/London"); err != nil {
		t.Fatal(err)
	}
	if _, err := run("companies", "create", "--data", data, "--id", "acme", "--credits", "10"); err == nil {
		t.Error("a duplicate company was created")
	}
	if _, err := run("companies", "create", "--data", data, "--id", "x", "--credits", "1", "--timezone", "Local"); err == nil {
		t.Error("timezone Local was accepted")
	}
	key, err := run("keys", "create", "--data", data, "--company", "acme", "--scopes", "dispatcher:read,email:send")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, "dk_live_") || strings.Count(key, "\n") != 1 {
		t.Errorf("keys create must print only the key, printed %q", key)
	}
	if _, err := run("keys", "create", "--data", data, "--company", "acme", "--scopes", "root"); err == nil {
		t.Error("an unknown scope was accepted")
	}
	if _, err := run("keys", "create", "--data", data, "--company", "nobody", "--scopes", "dispatcher:read"); err == nil {
		t.Error("a key of an unknown company was issued")
	}
	if _, err := run("keys", "create", "--data", data, "--scopes", "dispatcher:read"); err == nil || !strings.Contains(err.Error(), "--company") {
		t.Errorf("missing --company: %v", err)
	}
	list, err := run("keys", "list", "--data", data, "--company", "acme")
	if err != nil || !strings.Contains(list, key[:14]) || strings.Contains(list, strings.TrimSpace(key)) {
		t.Errorf("keys list shows the prefix only: %v\n%s", err, list)
	}
	if _, err := run("bogus"); err == nil {
		t.Error("an unknown command succeeded")
	}
}

// TestServe starts `serve` on a free port: it prints the dev key and
// "listening on", answers with that key, delivers a row due now to the
// outbox, and stops on cancel.
func TestServe(t *testing.T) {
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- realMain(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data", data}, pw, io.Discard)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	var addr string
	for lines.Scan() {
		if a, ok := strings.CutPrefix(lines.Text(), "listening on "); ok {
			addr = a
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if addr == "" {
		t.Fatal("serve never printed 'listening on'")
	}
	key, err := os.ReadFile(filepath.Join(data, "dev-api-key"))
	if err != nil {
		t.Fatal(err)
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
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
}
