package caddymodule

import (
	"time"

	"github.com/dwsnotify/dws_notify/internal/cputime"
)

// processCPU is the process's CPU time so far (cputime.Process).
func processCPU() (time.Duration, bool) { return cputime.Process() }
