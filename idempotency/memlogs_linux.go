package idempotency

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// memLogFiles keeps the memtable logs (*.mem) of a store directory open
// between group-commit rounds, so that a round is one fsync per log instead
// of a directory listing plus an open, fsync and close per log (measured in
// BENCHMARKS.md, issue 17).
//
// The set of logs changes only when Badger rotates a memtable (a new log)
// or flushes one (its log is deleted). An inotify watch on the directory
// says when that happened: every round first drains the watch, and any
// event in it makes the round list the directory again before it syncs.
// That is enough for durability: a commit a round must cover returned
// before the round began, so the log it wrote to existed by then; if the
// log was created after the last listing, its creation event was queued
// before the round's drain, so the round lists again and syncs it. (An
// event drained by an earlier round made that round list after the log
// existed.) When the watch cannot be had, or stops (the directory itself
// was removed, moved or unmounted), every round lists the directory, as
// syncMemtableLogs does.
//
// Only the group-commit goroutine calls sync; close runs after it stopped.
type memLogFiles struct {
	dir   string
	watch int  // inotify descriptor; -1: none, list every round
	stale bool // list the directory before the next sync
	files map[string]*os.File
	buf   []byte
	lists int // directory listings so far, for tests
}

// Inotify event bits used here (linux/inotify.h).
const (
	inWatchMask = syscall.IN_CREATE | syscall.IN_DELETE | syscall.IN_MOVED_FROM | syscall.IN_MOVED_TO |
		syscall.IN_DELETE_SELF | syscall.IN_MOVE_SELF | syscall.IN_ONLYDIR
	// inWatchGone: after one of these the watch reports nothing more.
	inWatchGone = syscall.IN_IGNORED | syscall.IN_DELETE_SELF | syscall.IN_MOVE_SELF | syscall.IN_UNMOUNT
)

// newMemLogFiles returns the cache for dir; it lists dir at its first sync.
func newMemLogFiles(dir string) *memLogFiles {
	m := &memLogFiles{dir: dir, watch: -1, stale: true, files: map[string]*os.File{}}
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		return m
	}
	if _, err := syscall.InotifyAddWatch(fd, dir, inWatchMask); err != nil {
		syscall.Close(fd)
		return m
	}
	m.watch, m.buf = fd, make([]byte, 4096)
	return m
}

// sync makes every memtable log of the directory durable and returns how
// many logs there are. A log that was deleted since the last listing was
// flushed to a table, which Badger syncs itself.
func (m *memLogFiles) sync() (int, error) {
	m.drain()
	if m.stale || m.watch < 0 {
		if err := m.list(); err != nil {
			return 0, err
		}
	}
	for _, f := range m.files {
		if err := syncLogFile(f); err != nil {
			return len(m.files), err
		}
	}
	return len(m.files), nil
}

// drain reads every pending event of the watch; any event makes the
// directory stale, an event that ends the watch stops watching.
func (m *memLogFiles) drain() {
	for m.watch >= 0 {
		n, err := syscall.Read(m.watch, m.buf)
		switch {
		case errors.Is(err, syscall.EAGAIN):
			return
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil || n <= 0:
			m.stopWatching()
			return
		}
		m.stale = true
		// struct inotify_event: wd int32, mask uint32, cookie uint32,
		// len uint32, then len bytes of name.
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			mask := binary.NativeEndian.Uint32(m.buf[off+4:])
			if mask&inWatchGone != 0 {
				m.stopWatching()
				return
			}
			off += syscall.SizeofInotifyEvent + int(binary.NativeEndian.Uint32(m.buf[off+12:]))
		}
	}
}

func (m *memLogFiles) stopWatching() {
	if m.watch >= 0 {
		syscall.Close(m.watch)
		m.watch = -1
	}
	m.stale = true
}

// list opens the logs that appeared and closes those that are gone.
func (m *memLogFiles) list() error {
	m.lists++
	d, err := os.Open(m.dir)
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	present := make(map[string]bool, len(m.files)+1)
	for _, n := range names {
		id, ok := strings.CutSuffix(n, memFileSuffix)
		if !ok {
			continue
		}
		if _, err := strconv.ParseInt(id, 10, 64); err != nil {
			continue
		}
		present[n] = true
		if m.files[n] != nil {
			continue
		}
		f, err := os.Open(filepath.Join(m.dir, n))
		if errors.Is(err, os.ErrNotExist) {
			delete(present, n) // flushed and deleted meanwhile
			continue
		}
		if err != nil {
			return err
		}
		m.files[n] = f
	}
	for n, f := range m.files {
		if !present[n] {
			f.Close()
			delete(m.files, n)
		}
	}
	m.stale = false
	return nil
}

// close releases the watch and the descriptors.
func (m *memLogFiles) close() {
	m.stopWatching()
	for n, f := range m.files {
		f.Close()
		delete(m.files, n)
	}
}

// syncLogFile makes one open memtable log durable; a variable so tests can
// observe it or make it fail.
var syncLogFile = func(f *os.File) error { return f.Sync() }
