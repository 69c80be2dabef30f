//go:build !unix

package embedded_test

import "time"

// processCPU is 0 off Unix: BenchmarkBurst's cpu_s reads getrusage.
func processCPU() time.Duration { return 0 }
