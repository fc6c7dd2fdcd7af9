//go:build !linux

package idempotency

// pageOutTables is only implemented on Linux (MADV_PAGEOUT).
func pageOutTables(string) (int, error) { return 0, errPageOutUnsupported }
