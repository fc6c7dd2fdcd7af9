// Package cputime reads the process's CPU time for the benchmarks, which
// report it per operation: on a machine shared with other jobs it measures
// what an operation costs better than the wall clock, which also counts the
// time spent waiting for a CPU. It is pure Go and imports nothing of Caddy.
package cputime
