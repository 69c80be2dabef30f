//go:build linux

package main_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/app"
	"github.com/dispatcherhq/dispatcher/internal/channel/devsink"
	"github.com/dispatcherhq/dispatcher/internal/embedded"
)

// fullDiskSize is the tmpfs the full-disk test runs on: room for the
// SQLite file, its WAL and the outbox, and above the store's readiness
// headroom (sqlite.ReadyHeadroom, 8 MiB) while not full.
const fullDiskSize = "64m"

// TestFullDisk is issue 15's full-disk test, on a real full file system:
// `dispatcher serve` (default settings) keeps its data on a small tmpfs; 200
// emails are created due a few seconds later; the file system is then
// filled to the last byte (ENOSPC) by another file and kept full for 20 s
// after the rows came due; then the file is deleted (space freed). It
// asserts what must hold whatever the machine's speed: every row sent
// exactly once (one outbox line), as attempt 1 — the disk errors of our own
// store and outbox used up no attempt — /readyz 503 throughout the fault
// once the fill is seen, /healthz 200 throughout, /readyz 200 again after.
// It logs, as a fulldisk_test line, the seconds from space freed to the
// last row out (the goal is ≤ 5 s; recorded in BENCHMARKS.md, not
// asserted) and the readiness codes seen.
//
// Mounting a tmpfs needs root (CAP_SYS_ADMIN): elsewhere the test skips,
// saying so. CI runs it only where `go test` runs as root in a container
// allowed to mount.
func TestFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs to fill (not a fake): run as root, e.g. sudo -E go test -run FullDisk ./cmd/dispatcher/")
	}
	data := t.TempDir()
	if err := syscall.Mount("tmpfs", data, "tmpfs", 0, "size="+fullDiskSize); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): the container does not allow mounts; skipped", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(data, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", data, err)
		}
	})
	bin := buildDispatcher(t)
	const rows = 200
	const fault = 20 * time.Second // full for this long after the rows came due
	srv := startServe(t, bin, data, "--sweep-every", "1m")
	defer srv.kill(t)
	key := strings.TrimSpace(readFile(t, filepath.Join(data, app.DevKeyFile)))
	due := time.Now().Add(5 * time.Second).UTC().Truncate(time.Second)
	ids := createEmails(t, srv.base, key, rows, due)

	filler := filepath.Join(data, "filler")
	if err := fill(filler); err != nil {
		t.Fatal(err)
	}
	filled := time.Now()
	if filled.After(due) {
		t.Fatalf("the disk was full only at %v, after the rows came due (%v)", filled.Format(time.RFC3339Nano), due)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(data, &st); err != nil {
		t.Fatal(err)
	}
	t.Logf("tmpfs of %s full: %d bytes free", fullDiskSize, st.Bavail*uint64(st.Bsize))
	// Readiness is computed at most once a second (httpapi.ReadyReuse)
	// within a 2 s bound (ReadyTimeout): a round begun before the fill may
	// still answer 200 that long after it.
	settle := filled.Add(3 * time.Second)
	ready := map[int]int{}
	var notReadyBefore []string
	for time.Now().Before(due.Add(fault)) {
		code, hcode := status(srv.base+"/readyz"), status(srv.base+"/healthz")
		if time.Now().After(settle) {
			ready[code]++
			if code != 503 {
				notReadyBefore = append(notReadyBefore, fmt.Sprint(code))
			}
		}
		if hcode != 200 {
			t.Errorf("/healthz = %d while the disk is full: the process is alive, want 200", hcode)
		}
		time.Sleep(100 * time.Millisecond)
	}
	sentDuring := countLines(filepath.Join(data, embedded.OutboxFile))
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	var readyAfter time.Duration
	waitFor(t, 5*time.Minute, func() bool {
		if readyAfter == 0 && status(srv.base+"/readyz") == 200 {
			readyAfter = time.Since(freed)
		}
		return readyAfter > 0 && unfinished(t, srv.base, key) == 0
	})
	givenBack := countEvents(t, srv.base, key, "attempt_failed", func(d map[string]any) bool { return d["counted"] == false })

	var lastOut time.Time
	attempts := map[int]int{}
	statuses := map[string]int{}
	for _, id := range ids {
		var out struct {
			Data struct {
				Status       string
				AttemptCount int        `json:"attempt_count"`
				SentAt       *time.Time `json:"sent_at"`
			}
		}
		if err := call(srv.base, key, "GET", "/v1/scheduled-communications/"+id, "", 200, &out); err != nil {
			t.Fatal(err)
		}
		statuses[out.Data.Status]++
		attempts[out.Data.AttemptCount]++
		if out.Data.SentAt != nil && out.Data.SentAt.After(lastOut) {
			lastOut = *out.Data.SentAt
		}
	}
	lines, err := devsink.ReadOutbox(filepath.Join(data, embedded.OutboxFile))
	if err != nil {
		t.Fatal(err)
	}
	dup, lost := sendCounts(lines, ids)
	t.Logf("fulldisk_test rows=%d full_s=%.1f (%.1f s after due) sent_while_full=%d freed_to_all_out_s=%.2f readyz_while_full=%s readyz_200_after_freed_s=%.1f given_back_unsent=%d attempts=%v statuses=%v outbox_lines=%d duplicates=%d lost=%d",
		rows, freed.Sub(filled).Seconds(), freed.Sub(due).Seconds(), sentDuring, lastOut.Sub(freed).Seconds(), codes(ready), readyAfter.Seconds(),
		givenBack, attempts, statuses, len(lines), dup, lost)
	if dir := os.Getenv("DISPATCHER_TEST_LOGS"); dir != "" { // the process's JSON log, to study a run
		srv.kill(t)
		if err := os.WriteFile(filepath.Join(dir, "fulldisk-serve.log"), srv.logs.Bytes(), 0o644); err != nil {
			t.Error(err)
		}
	}
	if statuses["sent"] != rows {
		t.Errorf("statuses %v, want all %d sent", statuses, rows)
	}
	if attempts[1] != rows {
		t.Errorf("attempt counts %v, want every row sent as attempt 1: our own disk errors are not delivery attempts", attempts)
	}
	if dup != 0 || lost != 0 || len(lines) != rows {
		t.Errorf("%d rows sent twice, %d never sent, %d outbox lines for %d rows", dup, lost, len(lines), rows)
	}
	if ready[503] == 0 || len(notReadyBefore) > 0 {
		t.Errorf("/readyz while the disk was full: %s, want only 503", codes(ready))
	}
}

// fill writes path until the file system has no byte left (ENOSPC), in
// 1 MiB writes and then 4 KiB ones.
func fill(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, size := range []int{1 << 20, 4 << 10, 1} {
		buf := make([]byte, size)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					return fmt.Errorf("fill %s: %w", path, err)
				}
				break
			}
		}
	}
	return nil
}

// status is the status code of a GET of url (0 when it could not be made).
func status(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// codes renders a count of status codes as "503×n 200×m", codes ascending.
func codes(m map[int]int) string {
	var ks []int
	for k := range m {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%d×%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}
