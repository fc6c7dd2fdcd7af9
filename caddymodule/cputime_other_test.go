//go:build !unix

package caddymodule

import "time"

// processCPU is not available here; the benchmarks then report no CPU time.
func processCPU() (time.Duration, bool) { return 0, false }
