//go:build !linux

package redistest

import "syscall"

// sysProcAttr has nothing to add outside Linux: there the tests' cleanup
// alone stops the server.
func sysProcAttr() *syscall.SysProcAttr { return nil }
