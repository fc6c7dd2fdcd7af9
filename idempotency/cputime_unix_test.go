//go:build unix

package idempotency

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user + system) the process has used so
// far, all goroutines and Badger's background work included: what a
// notification costs the gateway, which throughput on a shared machine
// does not show.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
