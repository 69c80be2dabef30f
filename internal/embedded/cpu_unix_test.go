//go:build unix

package embedded_test

import (
	"syscall"
	"time"
)

// cpuSeconds is the CPU time the process has used so far, user + system of
// every thread (getrusage RUSAGE_SELF), in seconds.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
