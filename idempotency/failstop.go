package idempotency

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"
)

// A Badger DB can break for good while it is open, and then takes the
// process down unless nothing calls into it any more. When it cannot
// create the log file of its next memtable (the directory became
// unwritable or read-only, or the process ran out of file descriptors),
// the commit that needed the room fails with "cannot create new mem
// table" and the DB is left without a memtable (badger v4.9.6,
// ensureRoomForWrite): every later read panics on it, and the next write
// that reaches Badger's write goroutine fails an assertion that calls
// log.Fatal, which exits the process. No recover can catch that, because
// it runs on Badger's goroutine and is not a panic.
//
// The store therefore fails stop:
//
//   - Commits run one at a time (commitMu), from the moment they are
//     handed to Badger until Badger answered. When a commit fails, no other
//     write is queued in Badger behind it, and from then on the store is
//     failed: every operation returns an error wrapping ErrFailed without
//     calling Badger (a commit that conflicted is not a failure; it is
//     retried as before).
//   - A panic inside a Badger call (a read that races with the failure
//     finds no memtable) fails the store the same way and becomes the
//     operation's error.
//   - The value-log GC, the only other writer, runs under commitMu too, and
//     the group-commit sync recovers from a panic of db.Sync.
//   - A group-commit fsync that fails fails the store too (groupSync): the
//     kernel may have dropped the pages it could not write, so what was
//     committed may be readable but not on disk, and no duplicate may be
//     answered from it.
//
// Not covered: Backup streams on goroutines of Badger's own, and one that
// opens an iterator just after the failure panics where nothing can
// recover it (a backup running at the moment the directory fails).
//
// One commit at a time costs Badger's batching of concurrent commits: 11 %
// fewer claim+complete pairs per second at 32 writers in the store's own
// benchmark, nothing visible in the gateway, whose commits are far apart
// next to HTTP and the RSA verify (BENCHMARKS.md, idempotency, "One commit
// at a time"). Nothing acknowledged is lost: what was
// committed before the failure is in the memtable logs, the next open
// replays them, and Close flushes them as soon as the directory can take
// new files. The caller (the gateway's store guard) closes a failed store
// and opens it again.

// commit commits txn unless the store failed; a commit that fails other
// than by a conflict fails the store.
func (s *BadgerStore) commit(txn *badger.Txn) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if err := s.failure(); err != nil {
		return err
	}
	err := s.guard("commit", txn.Commit)
	if err == nil || errors.Is(err, badger.ErrConflict) || errors.Is(err, ErrFailed) {
		return err
	}
	return s.fail(err)
}

// failure returns the error every operation of a failed store returns,
// nil while the store works.
func (s *BadgerStore) failure() error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// fail marks the store failed by cause (once; the first cause stays) and
// returns the error operations return from now on.
func (s *BadgerStore) fail(cause error) error {
	err := fmt.Errorf("%w (%s): %w", ErrFailed, s.dir, cause)
	if s.failed.CompareAndSwap(nil, &err) {
		s.log.Error("idempotency: the store failed; every operation fails until it is closed and opened again",
			zap.String("dir", s.dir), zap.Error(cause))
		return err
	}
	return *s.failed.Load()
}

// guard runs f, which calls into Badger, and turns a panic into a failure
// of the store.
func (s *BadgerStore) guard(op string, f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = s.fail(fmt.Errorf("%s: badger failed: %v", op, p))
		}
	}()
	return f()
}

// view runs fn in a read-only transaction, guarded.
func (s *BadgerStore) view(op string, fn func(*badger.Txn) error) error {
	return s.guard(op, func() error { return s.db.View(fn) })
}

// runGCOnce is one RunValueLogGC: it rewrites value-log entries, so it is
// a writer like a commit.
func (s *BadgerStore) runGCOnce() error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if err := s.failure(); err != nil {
		return err
	}
	return s.guard("value log GC", func() error { return s.db.RunValueLogGC(gcDiscardRatio) })
}
