//go:build linux

package idempotency

import "syscall"

// statfsFree returns the bytes an unprivileged writer may still use on the
// filesystem holding dir.
func statfsFree(dir string) (int64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * st.Bsize, true
}
