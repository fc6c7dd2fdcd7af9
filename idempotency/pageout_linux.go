//go:build linux

package idempotency

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// madvPageout is MADV_PAGEOUT (Linux 5.4): reclaim the pages of a range,
// writing dirty file-backed pages back first. It never discards data, which
// makes it safe on a range read from /proc/self/maps a moment earlier even
// if Badger unmapped it meanwhile and the address was reused: at worst some
// other pages are reclaimed early and fault back in from their file (or,
// anonymous ones, stay: without swap they are not reclaimed).
const madvPageout = 21

// pageOutTables advises the kernel to reclaim the resident pages of every
// Badger table (*.sst directly in dir, which must be canonical: the path
// the kernel shows in /proc/self/maps) that this process has mapped, and
// returns how many mappings it advised. It returns errPageOutUnsupported on
// a kernel without MADV_PAGEOUT.
func pageOutTables(dir string) (int, error) {
	if !filepath.IsAbs(dir) {
		return 0, fmt.Errorf("idempotency: page-out needs an absolute directory, not %q", dir)
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	prefix := dir + string(filepath.Separator)
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "lo-hi perms offset dev inode   pathname", pathname possibly
		// followed by " (deleted)".
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 {
			continue
		}
		path := strings.TrimSuffix(strings.Join(fields[5:], " "), " (deleted)")
		name, ok := strings.CutPrefix(path, prefix)
		if !ok || !strings.HasSuffix(name, ".sst") || strings.ContainsRune(name, filepath.Separator) {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		_, _, errno := syscall.Syscall(syscall.SYS_MADVISE, uintptr(start), uintptr(end-start), madvPageout)
		switch errno {
		case 0:
			n++
		case syscall.ENOMEM: // unmapped since /proc/self/maps was read
		case syscall.EINVAL: // no MADV_PAGEOUT (or a locked range)
			return n, errPageOutUnsupported
		default:
			return n, errno
		}
	}
	return n, sc.Err()
}
