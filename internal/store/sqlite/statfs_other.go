//go:build !linux

package sqlite

// freeBytes is unknown off Linux: Ready relies on its write probe.
func freeBytes(string) (int64, bool) { return 0, false }
