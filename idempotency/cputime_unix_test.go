package idempotency

import (
	"time"

	"github.com/dwsnotify/dws_notify/internal/cputime"
)

// processCPU returns the CPU time (user + system) the process has used so
// far, all goroutines and Badger's background work included: what a
// notification costs the gateway, which throughput on a shared machine
// does not show (cputime.Process).
func processCPU() (time.Duration, bool) { return cputime.Process() }
