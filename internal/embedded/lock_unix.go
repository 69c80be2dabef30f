//go:build unix

package embedded

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// LockFile, inside a data directory, is held (flock, exclusive) by the
// process serving it: one process dispatches from a data directory at a
// time, so the claims another instance left are known to be a dead
// predecessor's. The kernel releases it when the process dies, kill -9
// included.
const LockFile = "serve.lock"

// lockDataDir takes the data directory's lock, or says who holds it.
func lockDataDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("os.MkdirAll: %w", err)
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another dispatcher serve is running on the data directory %s (it holds %s): stop it, or use another --data", dir, path)
		}
		return nil, fmt.Errorf("flock %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing the file releases the lock
}
