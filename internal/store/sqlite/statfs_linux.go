package sqlite

import (
	"path/filepath"
	"syscall"
)

// freeBytes is what an unprivileged process may still write on the file
// system holding path.
func freeBytes(path string) (int64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * st.Bsize, true
}
