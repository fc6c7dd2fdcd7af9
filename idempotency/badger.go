package idempotency

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"go.uber.org/zap"
)

// SyncMode chooses how BadgerStore makes writes durable.
type SyncMode uint8

const (
	// SyncGroupCommit (the default) commits without fsync and makes Complete
	// wait for a shared sync round (group commit): one fsync covers every
	// completion that committed before the round started. Claims and releases
	// are not synced; losing one to a power cut only makes the key claimable
	// again.
	SyncGroupCommit SyncMode = iota
	// SyncEachCommit sets Badger's SyncWrites: every commit (claims and
	// releases too) pays its own fsync. For comparison benchmarks.
	SyncEachCommit
	// SyncNone never fsyncs. Writes survive a crash of the process (they are
	// in the page cache) but not a power cut or kernel crash. For tests and
	// benchmarks; Complete is then not durable in the sense of Store.
	SyncNone
)

// String returns "group_commit", "each_commit", "none" or "SyncMode(n)".
func (m SyncMode) String() string {
	switch m {
	case SyncGroupCommit:
		return "group_commit"
	case SyncEachCommit:
		return "each_commit"
	case SyncNone:
		return "none"
	}
	return "SyncMode(" + strconv.Itoa(int(m)) + ")"
}

// DefaultGCInterval is how often the value-log GC runs when
// BadgerOptions.GCInterval is zero.
const DefaultGCInterval = 10 * time.Minute

// DefaultPageOutInterval is how often the store asks the kernel to page out
// its memory-mapped tables when BadgerOptions.PageOutInterval is zero.
const DefaultPageOutInterval = 10 * time.Second

// errPageOutUnsupported: the platform or kernel has no MADV_PAGEOUT.
var errPageOutUnsupported = errors.New("idempotency: MADV_PAGEOUT is not supported here")

// DefaultCloseTimeout is how long Close waits for Badger to flush and
// close (see BadgerOptions.CloseTimeout). A healthy store closes in well
// under a second.
const DefaultCloseTimeout = 10 * time.Second

// closePoll is how often a Close waiting for room on the filesystem
// checks again.
const closePoll = time.Second

// gcDiscardRatio is the share of garbage a value-log file must hold before
// RunValueLogGC rewrites it.
const gcDiscardRatio = 0.5

// maxGCRewritesPerTick bounds the work of one GC tick.
const maxGCRewritesPerTick = 16

// maxTxnAttempts bounds the retries of a transaction that hit ErrConflict.
// A claim conflicts at most once per competing writer in practice: after the
// winner committed, the re-read sees its record.
const maxTxnAttempts = 10

// BadgerOptions configures OpenBadger.
type BadgerOptions struct {
	// Dir is the database directory; it is created when missing. Required
	// unless InMemory is set. One directory can be open once per process
	// (Badger holds a directory lock): share the store, do not reopen it.
	Dir string
	// InMemory keeps everything in memory; nothing is written to disk and
	// nothing survives Close. For tests. Dir must be empty.
	InMemory bool
	// Logger receives the store's and Badger's log lines; nil discards them.
	// Badger's info lines are logged at debug level.
	Logger *zap.Logger
	// VerboseBadgerLogs passes Badger's debug lines (several per write) to
	// Logger at debug level; by default they are dropped.
	VerboseBadgerLogs bool
	// GCInterval is the period of the value-log GC; 0 means
	// DefaultGCInterval and a negative value disables the GC.
	GCInterval time.Duration
	// PageOutInterval is how often the store advises the kernel to reclaim
	// the resident pages of its memory-mapped tables (Linux 5.4+,
	// MADV_PAGEOUT; elsewhere nothing is done). Badger writes every table
	// through a shared memory map and keeps it mapped, so without this each
	// table the process wrote stays resident and the process's RSS grows
	// with the store (about 100 MiB per million records); the store reads
	// its tables rarely (lookups of absent keys stop at the Bloom filters,
	// which live in the index cache), and a page that is read again faults
	// back in from the file. 0 means DefaultPageOutInterval and a negative
	// value disables it.
	PageOutInterval time.Duration
	// Sync is the durability policy; the zero value is SyncGroupCommit.
	Sync SyncMode
	// Now is the clock for leases and the times in records; nil means
	// time.Now. Retention always follows the real clock, because Badger
	// evaluates entry TTLs against it.
	Now func() time.Time
	// CloseTimeout bounds Close: past it, Close gives up waiting for
	// Badger to flush its memtables (which it retries forever when the
	// directory was removed or the filesystem fails), logs what was not
	// flushed and returns an error wrapping ErrNotFlushed; the flush goes
	// on in the background. 0 means DefaultCloseTimeout; a negative value
	// waits as long as it takes.
	CloseTimeout time.Duration
	// Tune, when set, may adjust the Badger options derived from
	// BadgerProfile before the DB is opened. DetectConflicts must stay on
	// (claims rely on it); Logger and SyncWrites are set by the store.
	Tune func(*badger.Options)
}

// BadgerProfile returns the Badger options the store uses for dir, sized for
// a sidecar that keeps small records (see the package documentation for the
// reasoning and the measured footprint). Logger and SyncWrites are set by
// OpenBadger.
func BadgerProfile(dir string) badger.Options {
	return badger.DefaultOptions(dir).
		WithMemTableSize(4 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(4).
		WithCompression(options.None).
		WithBlockCacheSize(0).
		WithIndexCacheSize(16 << 20).
		WithValueLogFileSize(64 << 20).
		WithValueThreshold(512 << 10).
		WithNumCompactors(2).
		WithDetectConflicts(true).
		WithMetricsEnabled(false)
}

// BadgerStore is the Store on an embedded Badger v4 database. Create it with
// OpenBadger; it is safe for concurrent use.
type BadgerStore struct {
	db  *badger.DB
	dir string
	log *zap.Logger
	now func() time.Time

	// mu guards closed. Every operation registers in ops while the store is
	// open; Close marks the store closed and waits for ops to drain before it
	// touches the DB, so no operation ever runs on a closed DB.
	mu        sync.RWMutex
	closed    bool
	ops       sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	// commitMu makes commits (and the value-log GC) run one at a time,
	// and failed is set for good when Badger broke; see failstop.go.
	commitMu sync.Mutex
	failed   atomic.Pointer[error]

	syncer       *groupSyncer // nil unless SyncGroupCommit on disk
	syncRound    func() error // the group commit's fsync: syncDurable (tests replace it before any write)
	syncLogsByFD atomic.Bool  // see syncDurable
	memLogs      *memLogFiles // the descriptor path's open logs; nil: list every round

	closeTimeout time.Duration // see BadgerOptions.CloseTimeout; < 0: unbounded
	dirInfo      os.FileInfo   // Dir when it was opened; nil in memory
	memTableSize int64

	gcStop chan struct{}
	gcDone chan struct{} // nil when the GC is disabled

	mapsDir     string        // canonical Dir, as /proc/self/maps names the files
	pageOutDone chan struct{} // nil when page-out is disabled

	// The queue's in-process state (badger_queue.go), made on first use.
	qOnce sync.Once
	q     *badgerQueue
	qErr  error

	txnConflicts atomic.Uint64
	completions  atomic.Uint64
	gcRuns       atomic.Uint64
	gcRewrites   atomic.Uint64
	pageOuts     atomic.Uint64
	pagedOut     atomic.Uint64
}

var _ Store = (*BadgerStore)(nil)

// OpenBadger opens (or creates) the store described by opts and starts its
// background work: the group-commit syncer and the value-log GC. Both stop in
// Close.
func OpenBadger(opts BadgerOptions) (*BadgerStore, error) {
	if opts.InMemory && opts.Dir != "" {
		return nil, fmt.Errorf("%w: Dir must be empty with InMemory", ErrInvalidArgument)
	}
	if !opts.InMemory && opts.Dir == "" {
		return nil, fmt.Errorf("%w: Dir is required", ErrInvalidArgument)
	}
	switch opts.Sync {
	case SyncGroupCommit, SyncEachCommit, SyncNone:
	default:
		return nil, fmt.Errorf("%w: unknown sync mode %d", ErrInvalidArgument, opts.Sync)
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}

	bo := BadgerProfile(opts.Dir)
	if opts.InMemory {
		bo = bo.WithDir("").WithValueDir("").WithInMemory(true)
	}
	if opts.Tune != nil {
		opts.Tune(&bo)
	}
	// Badger refuses a value threshold above its batch size (15% of a
	// memtable): a Tune that shrinks the memtables shrinks the threshold
	// (queued payloads are then bounded by it, see Enqueue).
	if batch := 15 * bo.MemTableSize / 100; bo.ValueThreshold > batch {
		bo.ValueThreshold = batch
	}
	if !bo.DetectConflicts {
		return nil, fmt.Errorf("%w: DetectConflicts must stay enabled", ErrInvalidArgument)
	}
	bo.Logger = newBadgerLogger(log, opts.VerboseBadgerLogs)
	bo.SyncWrites = opts.Sync == SyncEachCommit

	db, err := badger.Open(bo)
	if err != nil {
		if !opts.InMemory && dirLocked(opts.Dir) {
			// Another process (or another open in this one) holds the
			// database.
			return nil, fmt.Errorf("idempotency: open badger in %q: %w: %w", opts.Dir, ErrLocked, err)
		}
		return nil, fmt.Errorf("idempotency: open badger in %q: %w", opts.Dir, err)
	}
	s := &BadgerStore{
		db:           db,
		dir:          bo.Dir,
		log:          log,
		now:          now,
		gcStop:       make(chan struct{}),
		closeTimeout: opts.CloseTimeout,
		memTableSize: bo.MemTableSize,
	}
	if s.closeTimeout == 0 {
		s.closeTimeout = DefaultCloseTimeout
	}
	if !opts.InMemory {
		if s.dirInfo, err = os.Stat(bo.Dir); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("idempotency: open badger in %q: %w", opts.Dir, err)
		}
	}
	if opts.Sync == SyncGroupCommit && !opts.InMemory {
		// fsync through descriptors only where it is known to cover writes
		// made through shared mappings, and only while no record can reach
		// the value log (whose writes it would not cover).
		s.syncLogsByFD.Store(runtime.GOOS == "linux" && bo.ValueThreshold > maxValueLen)
		if s.syncLogsByFD.Load() {
			s.memLogs = newMemLogFiles(bo.Dir)
		}
		s.syncRound = s.syncDurable
		s.syncer = newGroupSyncer(s.groupSync)
	}
	interval := opts.GCInterval
	if interval == 0 {
		interval = DefaultGCInterval
	}
	if interval > 0 && !opts.InMemory {
		s.gcDone = make(chan struct{})
		go s.gcLoop(interval)
	}
	pageOut := opts.PageOutInterval
	if pageOut == 0 {
		pageOut = DefaultPageOutInterval
	}
	if !opts.InMemory {
		s.mapsDir = canonicalDir(bo.Dir)
	}
	if pageOut > 0 && !opts.InMemory {
		s.pageOutDone = make(chan struct{})
		go s.pageOutLoop(pageOut)
	}
	log.Debug("idempotency store opened",
		zap.String("dir", bo.Dir), zap.Bool("in_memory", opts.InMemory),
		zap.Stringer("sync", opts.Sync), zap.Duration("gc_interval", interval))
	return s, nil
}

// enter registers an operation; it fails with ErrClosed once Close began,
// and with the store's failure (ErrFailed) once it failed. A successful
// enter must be paired with s.ops.Done().
func (s *BadgerStore) enter() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.failure(); err != nil {
		return err
	}
	s.ops.Add(1)
	return nil
}

// Claim implements Store.
func (s *BadgerStore) Claim(ctx context.Context, key Key, fp Fingerprint, lease, retention time.Duration) (ClaimResult, error) {
	if err := ValidateKey(key); err != nil {
		return ClaimResult{}, err
	}
	if err := ValidateClaim(lease, retention); err != nil {
		return ClaimResult{}, err
	}
	if err := s.enter(); err != nil {
		return ClaimResult{}, err
	}
	defer s.ops.Done()

	k := appendKey(make([]byte, 0, 64), key)
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return ClaimResult{}, err
		}
		var res ClaimResult
		err := s.guard("claim", func() (err error) {
			res, err = s.tryClaim(k, key, fp, lease, retention)
			return err
		})
		if !errors.Is(err, badger.ErrConflict) {
			if err == nil && res.Status == Done {
				// A done record is replayed only once it (and, for a
				// queued notification, its queue item) is on disk: wait
				// for a group-commit round that started after this read
				// (the completion or enqueue that wrote the record may
				// still be waiting for its own).
				if err := s.durable(ctx, "claim", key); err != nil {
					return ClaimResult{}, err
				}
			}
			return res, err
		}
		s.txnConflicts.Add(1)
		if attempt == maxTxnAttempts {
			return ClaimResult{}, fmt.Errorf("idempotency: claim %v: %d conflicting attempts: %w", key, attempt, err)
		}
	}
}

// tryClaim is one claim transaction. The Get records the key in the
// transaction's read set even when it is missing, so a concurrent commit
// that wrote the key makes this Commit fail with badger.ErrConflict: the
// check and the write are one atomic step.
func (s *BadgerStore) tryClaim(k []byte, key Key, fp Fingerprint, lease, retention time.Duration) (ClaimResult, error) {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()

	now := s.now()
	var prevToken uint64
	item, err := txn.Get(k)
	switch {
	case err == nil:
		rec, err := recordFromItem(item, key)
		if err != nil {
			return ClaimResult{}, err
		}
		switch {
		case rec.Fingerprint != fp:
			return ClaimResult{Status: Conflict, Record: rec}, nil
		case rec.State == StateDone:
			return ClaimResult{Status: Done, Record: rec}, nil
		case now.Before(rec.LeaseExpiry):
			return ClaimResult{Status: InFlight, Record: rec}, nil
		}
		prevToken = rec.Token // expired lease: take it over
	case errors.Is(err, badger.ErrKeyNotFound):
	default:
		return ClaimResult{}, fmt.Errorf("idempotency: claim %v: %w", key, err)
	}

	rec := Record{
		Key:         key,
		Fingerprint: fp,
		State:       StateInFlight,
		Token:       newToken(prevToken),
		ClaimedAt:   now,
		LeaseExpiry: now.Add(lease),
	}
	e := newEntry(k, appendValue(make([]byte, 0, inFlightValueLen), &rec), retention)
	rec.ExpiresAt = time.Unix(int64(e.ExpiresAt), 0)
	if err := txn.SetEntry(e); err != nil {
		return ClaimResult{}, fmt.Errorf("idempotency: claim %v: %w", key, err)
	}
	if err := s.commit(txn); err != nil {
		if errors.Is(err, badger.ErrConflict) {
			return ClaimResult{}, err
		}
		return ClaimResult{}, fmt.Errorf("idempotency: claim %v: %w", key, err)
	}
	return ClaimResult{Status: Claimed, Token: rec.Token, Record: rec}, nil
}

// Complete implements Store. With SyncGroupCommit it commits without fsync
// and then waits for a group-commit round. If ctx ends during that wait, or
// the round's fsync fails, it returns an error although the record is
// committed (it reaches the disk with a later round or when Badger flushes
// the memtable); the caller must then not report the notification as done.
func (s *BadgerStore) Complete(ctx context.Context, key Key, token uint64, answer Answer, retention time.Duration) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := ValidateAnswer(answer); err != nil {
		return err
	}
	if retention <= 0 {
		return fmt.Errorf("%w: retention %v must be positive", ErrInvalidArgument, retention)
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.ops.Done()

	k := appendKey(make([]byte, 0, 64), key)
	err := s.update(ctx, key, "complete", func(txn *badger.Txn) error {
		rec, held, err := heldRecord(txn, k, key, token)
		if err != nil {
			return err
		}
		if !held {
			return ErrLeaseLost
		}
		rec.State = StateDone
		rec.Answer = answer
		rec.CompletedAt = s.now()
		return txn.SetEntry(newEntry(k, appendValue(make([]byte, 0, 96), &rec), retention))
	})
	if err != nil {
		return err
	}
	s.completions.Add(1)
	if s.syncer != nil {
		if err := s.syncer.wait(ctx); err != nil {
			return fmt.Errorf("idempotency: complete %v: waiting for sync: %w", key, err)
		}
	}
	return nil
}

// Release implements Store.
func (s *BadgerStore) Release(ctx context.Context, key Key, token uint64) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.ops.Done()

	k := appendKey(make([]byte, 0, 64), key)
	return s.update(ctx, key, "release", func(txn *badger.Txn) error {
		_, held, err := heldRecord(txn, k, key, token)
		if err != nil || !held {
			return err
		}
		return txn.Delete(k)
	})
}

// heldRecord reads the record of key (stored at k) and reports whether it
// is in flight under token: the claim the caller holds.
func heldRecord(txn *badger.Txn, k []byte, key Key, token uint64) (Record, bool, error) {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, err
	}
	rec, err := recordFromItem(item, key)
	if err != nil {
		return Record{}, false, err
	}
	return rec, rec.State == StateInFlight && rec.Token == token, nil
}

// update runs fn in read-write transactions until one commits without
// conflict (at most maxTxnAttempts). Errors from fn are returned as they are;
// ErrLeaseLost and ErrCorruptRecord keep their identity for errors.Is.
func (s *BadgerStore) update(ctx context.Context, key Key, op string, fn func(*badger.Txn) error) error {
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := s.guard(op, func() error {
			txn := s.db.NewTransaction(true)
			defer txn.Discard()
			if err := fn(txn); err != nil {
				return err
			}
			return s.commit(txn)
		})
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrLeaseLost), errors.Is(err, ErrCorruptRecord):
			return err
		case errors.Is(err, badger.ErrConflict):
			s.txnConflicts.Add(1)
			if attempt == maxTxnAttempts {
				return fmt.Errorf("idempotency: %s %v: %d conflicting attempts: %w", op, key, attempt, err)
			}
		default:
			return fmt.Errorf("idempotency: %s %v: %w", op, key, err)
		}
	}
}

var _ DoneConfirmer = (*BadgerStore)(nil)

// ConfirmDone implements DoneConfirmer: with the group commit it waits for
// a round that started after the call, so every commit before it, the
// record's completion included, is on disk. Without it there is nothing
// to wait for.
func (s *BadgerStore) ConfirmDone(ctx context.Context, key Key) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.ops.Done()
	return s.durable(ctx, "confirm", key)
}

// Get implements Store.
func (s *BadgerStore) Get(ctx context.Context, key Key) (Record, bool, error) {
	if err := ValidateKey(key); err != nil {
		return Record{}, false, err
	}
	if err := ctx.Err(); err != nil {
		return Record{}, false, err
	}
	if err := s.enter(); err != nil {
		return Record{}, false, err
	}
	defer s.ops.Done()

	var rec Record
	var found bool
	err := s.view("get", func(txn *badger.Txn) error {
		item, err := txn.Get(appendKey(make([]byte, 0, 64), key))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		rec, err = recordFromItem(item, key)
		found = err == nil
		return err
	})
	if err != nil {
		if errors.Is(err, ErrCorruptRecord) {
			return Record{}, false, err
		}
		return Record{}, false, fmt.Errorf("idempotency: get %v: %w", key, err)
	}
	return rec, found, nil
}

// Scan implements Store. It reads one consistent snapshot. fn runs while the
// store is in use, so Close waits for a running Scan to end; fn may call the
// store's other methods except Close (which would wait for the Scan).
func (s *BadgerStore) Scan(ctx context.Context, fn func(Record) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.ops.Done()

	return s.db.View(func(txn *badger.Txn) error {
		iopt := badger.DefaultIteratorOptions
		iopt.Prefix = recordKeyPrefix
		// The iterator takes its memtables when it is created: later
		// steps cannot find them gone (failstop.go), and a panic of fn
		// is fn's own.
		var it *badger.Iterator
		if err := s.guard("scan", func() error { it = txn.NewIterator(iopt); return nil }); err != nil {
			return err
		}
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			item := it.Item()
			key, err := decodeKey(item.Key())
			if err != nil {
				return err
			}
			rec, err := recordFromItem(item, key)
			if err != nil {
				return err
			}
			if !fn(rec) {
				return nil
			}
		}
		return nil
	})
}

// Close implements Store: it waits for running operations, stops the
// group-commit syncer and the value-log GC, and closes the DB, which
// flushes the memtables to tables. Later calls return the first call's
// result; every other method returns ErrClosed from the moment Close
// begins.
//
// Close is bounded by BadgerOptions.CloseTimeout, because Badger's own
// Close never gives up on a flush: with the directory removed, or a
// filesystem that is full, read-only or hung, it retries every second
// forever, and so would a Caddy stopping or reloading. When the time is
// up Close logs an error naming what was not flushed and returns an error
// wrapping ErrNotFlushed; the close goes on in the background and logs
// when it ends. It does not even start the flush when the directory is
// gone (removed, or replaced by another one) or its filesystem has no
// room for it: Badger writes a new table through a memory map, which on
// a full filesystem kills the process with SIGBUS. Nothing acknowledged
// is lost either way while the memtable logs survive: every committed
// record is in them, and the next open replays them.
func (s *BadgerStore) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		done := make(chan error, 1)
		go func() { done <- s.shutdown() }()
		var timeout <-chan time.Time
		if s.closeTimeout > 0 {
			t := time.NewTimer(s.closeTimeout)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case err := <-done:
			s.closeErr = err
		case <-timeout:
			s.closeErr = fmt.Errorf("%w: closing %s did not finish within %s", ErrNotFlushed, s.dir, s.closeTimeout)
			s.logNotFlushed(s.closeErr)
			go func() {
				err := <-done
				if err == nil {
					s.log.Info("idempotency: the store closed after all", zap.String("dir", s.dir))
				}
			}()
			return
		}
		if errors.Is(s.closeErr, ErrNotFlushed) {
			s.logNotFlushed(s.closeErr)
			return
		}
		s.log.Debug("idempotency store closed", zap.String("dir", s.dir), zap.Error(s.closeErr))
	})
	return s.closeErr
}

// shutdown is Close's work. It returns an error wrapping ErrNotFlushed
// without closing the DB when the directory is gone.
func (s *BadgerStore) shutdown() error {
	s.ops.Wait()
	if s.syncer != nil {
		s.syncer.close()
	}
	if s.memLogs != nil {
		s.memLogs.close()
	}
	close(s.gcStop)
	if s.gcDone != nil {
		<-s.gcDone
	}
	if s.pageOutDone != nil {
		<-s.pageOutDone
	}
	for waited := false; ; waited = true {
		why, final := s.flushBlocked()
		if why == "" {
			break
		}
		if final {
			return fmt.Errorf("%w: %s", ErrNotFlushed, why)
		}
		if !waited {
			s.log.Warn("idempotency: waiting to flush the store before closing it", zap.String("dir", s.dir), zap.String("reason", why))
		}
		time.Sleep(closePoll)
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("idempotency: close badger: %w", err)
	}
	return nil
}

// flushBlocked says why Badger cannot flush its memtables now (empty when
// it can), and whether that is for good: the directory is gone, or is
// another directory than the one opened (a flush would write tables into
// a store that is not this one).
func (s *BadgerStore) flushBlocked() (why string, final bool) {
	if s.dirInfo == nil {
		return "", false
	}
	fi, err := os.Stat(s.dir)
	switch {
	case err != nil:
		return fmt.Sprintf("the directory is gone (%v)", err), true
	case !os.SameFile(fi, s.dirInfo):
		return "the directory was replaced by another one", true
	}
	mems := memtableLogs(s.dir)
	need := int64(len(mems))*s.memTableSize + 1<<20
	if free, ok := freeBytes(s.dir); ok && free < need {
		return fmt.Sprintf("the filesystem has %d bytes free, the flush needs up to %d", free, need), false
	}
	return "", false
}

// logNotFlushed logs, at error level, that the store was closed without
// flushing and which memtable logs hold what it did not flush.
func (s *BadgerStore) logNotFlushed(err error) {
	s.log.Error("idempotency: the store was closed without flushing its memtables; the records committed since the last flush are only in its memtable logs, which the next open replays (if the directory is gone, they are lost with it)",
		zap.String("dir", s.dir), zap.Strings("memtable_logs", memtableLogs(s.dir)), zap.Error(err))
}

// freeBytes returns the free space of the filesystem holding dir, if it is
// known; a variable so tests can report a full filesystem.
var freeBytes = statfsFree

// memtableLogs lists the memtable logs (*.mem) in dir, if it can be read.
func memtableLogs(dir string) []string {
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var mems []string
	for _, e := range names {
		if strings.HasSuffix(e.Name(), memFileSuffix) {
			mems = append(mems, e.Name())
		}
	}
	return mems
}

// BadgerStats are counters of a BadgerStore since it was opened.
type BadgerStats struct {
	// Completions counts Complete calls that committed.
	Completions uint64
	// SyncRounds counts group-commit syncs (each one db.Sync plus, rarely,
	// fsyncs of memtable logs that were rotated out).
	SyncRounds uint64
	// SyncedCompletions counts the Complete calls released by those rounds;
	// SyncRounds/SyncedCompletions is the number of syncs per completion.
	SyncedCompletions uint64
	// TxnConflicts counts transactions retried after badger.ErrConflict.
	TxnConflicts uint64
	// GCRuns counts value-log GC ticks; GCRewrites the files rewritten.
	GCRuns, GCRewrites uint64
	// PageOuts counts the page-out passes over the memory-mapped tables;
	// PagedOutMappings the table mappings they advised.
	PageOuts, PagedOutMappings uint64
}

// Stats returns the store's counters. It works after Close too.
func (s *BadgerStore) Stats() BadgerStats {
	st := BadgerStats{
		Completions:  s.completions.Load(),
		TxnConflicts: s.txnConflicts.Load(),
		GCRuns:       s.gcRuns.Load(),
		GCRewrites:   s.gcRewrites.Load(),

		PageOuts:         s.pageOuts.Load(),
		PagedOutMappings: s.pagedOut.Load(),
	}
	if s.syncer != nil {
		st.SyncRounds = s.syncer.rounds.Load()
		st.SyncedCompletions = s.syncer.waiters.Load()
	}
	return st
}

// syncDurable is the group-commit sync.
//
// On Linux it fsyncs Badger's memtable logs (the *.mem files) through file
// descriptors, which it keeps open between rounds (memLogFiles). Badger writes those logs through shared memory maps, and on
// Linux fsync on the file writes back pages dirtied through a mapping exactly
// like msync does. The detour matters: db.Sync holds Badger's DB lock while
// it msyncs the log, and every write batch takes that lock, so each round of
// db.Sync stalls all commits, claims included, for the whole fsync
// (measured at 32 writers: claim latency 0.6 to 1.2 ms instead of 0.15 to
// 0.3 ms, and a third less throughput). All logs are synced, not just the
// active one: a commit may have landed in a memtable that was rotated out
// before the round began, and such a log is only synced by Badger when its
// memtable is flushed to a table. The value log needs no sync because
// records are always shorter than the value threshold (see syncLogsByFD).
//
// Elsewhere it calls db.Sync, which covers the active log and the value log,
// and then fsyncs the logs of rotated-out memtables.
//
// An open database always has the active memtable's log, so when the
// descriptor path finds no log at all, Badger's file layout is not what this
// code expects (a Badger upgrade renamed the files?): it then falls back to
// db.Sync for good rather than silently syncing nothing.
func (s *BadgerStore) syncDurable() error {
	if s.syncLogsByFD.Load() {
		var n int
		var err error
		if s.memLogs != nil {
			n, err = s.memLogs.sync()
		} else {
			n, err = syncMemtableLogs(s.dir, true)
		}
		if err != nil || n > 0 {
			return err
		}
		s.syncLogsByFD.Store(false)
		s.log.Warn("idempotency: no Badger memtable logs (*" + memFileSuffix + ") found to fsync; using db.Sync from now on")
	}
	if err := s.db.Sync(); err != nil {
		return err
	}
	_, err := syncMemtableLogs(s.dir, false)
	return err
}

// groupSync is one group-commit round. A failed fsync fails the store
// (failstop.go): after it, the kernel may have dropped the dirty pages it
// could not write, so a committed record may be readable while it is not
// on disk, and a duplicate must not be answered from it (nor from
// anything else this store holds) until the store was closed and opened
// again from what the disk really has.
func (s *BadgerStore) groupSync() error {
	if err := s.failure(); err != nil {
		return err
	}
	if err := s.guard("sync", s.syncRound); err != nil {
		return s.fail(fmt.Errorf("group-commit fsync: %w", err))
	}
	return nil
}

// memFileSuffix is the extension of Badger's memtable write-ahead logs.
const memFileSuffix = ".mem"

// fsyncPath opens path and fsyncs it; a variable so tests can observe it.
var fsyncPath = func(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncMemtableLogs fsyncs the memtable logs in dir: all of them, or all but
// the one with the highest file id (the active memtable's), and returns how
// many it found. A log that disappears meanwhile was flushed to a table,
// which Badger syncs itself.
func syncMemtableLogs(dir string, includeNewest bool) (int, error) {
	d, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return 0, err
	}
	newest, newestID := "", int64(-1)
	mems := names[:0]
	for _, n := range names {
		id, ok := strings.CutSuffix(n, memFileSuffix)
		if !ok {
			continue
		}
		fid, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			continue
		}
		mems = append(mems, n)
		if fid > newestID {
			newest, newestID = n, fid
		}
	}
	for _, n := range mems {
		if n == newest && !includeNewest {
			continue
		}
		if err := fsyncPath(filepath.Join(dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return len(mems), err
		}
	}
	return len(mems), nil
}

func (s *BadgerStore) gcLoop(interval time.Duration) {
	defer close(s.gcDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.gcStop:
			return
		case <-t.C:
			s.runGC()
		}
	}
}

// pageOutLoop advises the kernel to reclaim the tables' resident pages
// every interval (see BadgerOptions.PageOutInterval) until Close. It stops
// for good where MADV_PAGEOUT is not available.
func (s *BadgerStore) pageOutLoop(interval time.Duration) {
	defer close(s.pageOutDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	warned := false
	for {
		select {
		case <-s.gcStop:
			return
		case <-t.C:
		}
		n, err := pageOutTables(s.mapsDir)
		switch {
		case errors.Is(err, errPageOutUnsupported):
			s.log.Debug("idempotency: MADV_PAGEOUT unavailable; tables stay resident", zap.String("dir", s.dir))
			return
		case err != nil && !warned:
			s.log.Warn("idempotency: paging out tables failed", zap.String("dir", s.dir), zap.Error(err))
			warned = true
		case err == nil:
			s.pageOuts.Add(1)
			s.pagedOut.Add(uint64(n))
		}
	}
}

// canonicalDir is dir made absolute with symbolic links resolved, the form
// in which the kernel names mapped files; dir itself if that fails.
func canonicalDir(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return dir
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real
	}
	return abs
}

// runGC rewrites value-log files while Badger finds one worth rewriting.
// Records stay below the value threshold, so normally nothing is rewritten;
// the loop is there for values Badger moved to the value log anyway.
func (s *BadgerStore) runGC() {
	s.gcRuns.Add(1)
	for range maxGCRewritesPerTick {
		select {
		case <-s.gcStop:
			return
		default:
		}
		err := s.runGCOnce()
		if err == nil {
			s.gcRewrites.Add(1)
			continue
		}
		if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) && !errors.Is(err, ErrFailed) {
			s.log.Warn("idempotency: value log GC failed", zap.String("dir", s.dir), zap.Error(err))
		}
		return
	}
}

// newEntry builds the Badger entry for a record kept for retention. The
// expiry is rounded up to the next whole second (Badger's TTL granularity),
// so a record lives at least retention.
func newEntry(k, v []byte, retention time.Duration) *badger.Entry {
	e := badger.NewEntry(k, v)
	t := time.Now().Add(retention)
	sec := t.Unix()
	if t.Nanosecond() != 0 {
		sec++
	}
	e.ExpiresAt = uint64(sec)
	return e
}

// recordFromItem decodes item's value into a record of key.
func recordFromItem(item *badger.Item, key Key) (Record, error) {
	rec := Record{Key: key}
	err := item.Value(func(v []byte) error { return decodeValue(v, &rec) })
	if err != nil {
		if errors.Is(err, ErrCorruptRecord) {
			return Record{}, fmt.Errorf("record %v: %w", key, err)
		}
		return Record{}, err
	}
	if exp := item.ExpiresAt(); exp != 0 {
		rec.ExpiresAt = time.Unix(int64(exp), 0)
	}
	return rec, nil
}

// newToken returns a random non-zero token different from prev.
func newToken(prev uint64) uint64 {
	for {
		if t := rand.Uint64(); t != 0 && t != prev {
			return t
		}
	}
}
