//go:build !unix

package embedded

// lockDataDir is a no-op off Unix: nothing stops two processes serving one
// data directory there, so do not.
func lockDataDir(string) (func(), error) { return func() {}, nil }
