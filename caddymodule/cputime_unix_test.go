//go:build unix

package caddymodule

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user + system) the process has used so
// far, every goroutine included. On a machine shared with other jobs it
// measures what a notification costs better than the wall clock, which
// also counts the time the benchmark waited for a CPU.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
