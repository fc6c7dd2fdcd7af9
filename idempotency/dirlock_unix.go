//go:build unix

package idempotency

import (
	"errors"
	"os"
	"syscall"
)

// dirLocked reports whether another open of dir holds Badger's directory
// lock (an exclusive flock on the directory). It is asked only after
// badger.Open failed: Badger's error text is all it reports otherwise (it
// formats the errno away), and a lock held elsewhere is a condition callers
// act on (a config check on a host where the gateway runs). The probe takes
// a shared lock without waiting and gives it back at once.
func dirLocked(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	fd := int(f.Fd())
	err = syscall.Flock(fd, syscall.LOCK_SH|syscall.LOCK_NB)
	if err == nil {
		_ = syscall.Flock(fd, syscall.LOCK_UN)
		return false
	}
	return errors.Is(err, syscall.EWOULDBLOCK)
}
