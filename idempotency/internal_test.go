package idempotency

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// countingStringer counts how often it is formatted.
type countingStringer struct{ n *atomic.Int32 }

func (c countingStringer) String() string { c.n.Add(1); return "x" }

func TestBadgerLoggerLevels(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := newBadgerLogger(zap.New(core), false)
	l.Errorf("disk %s\n", "full")
	l.Warningf("slow %d\n\n", 3)
	l.Infof("replaying %s\n", "00001.mem")
	l.Debugf("writeRequests called\n")

	want := []struct {
		lvl zapcore.Level
		msg string
	}{{zapcore.ErrorLevel, "disk full"}, {zapcore.WarnLevel, "slow 3"}, {zapcore.DebugLevel, "replaying 00001.mem"}}
	got := logs.AllUntimed()
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Level != w.lvl || got[i].Message != w.msg || got[i].LoggerName != "badger" {
			t.Errorf("entry %d = %v %q (%s), want %v %q (badger)", i, got[i].Level, got[i].Message, got[i].LoggerName, w.lvl, w.msg)
		}
	}

	core, logs = observer.New(zapcore.DebugLevel)
	newBadgerLogger(zap.New(core), true).Debugf("verbose %d\n", 1)
	if e := logs.AllUntimed(); len(e) != 1 || e[0].Message != "verbose 1" || e[0].Level != zapcore.DebugLevel {
		t.Errorf("verbose debug line = %+v", e)
	}

	// At info level Badger's info and debug lines are neither logged nor formatted.
	var n atomic.Int32
	core, logs = observer.New(zapcore.InfoLevel)
	l = newBadgerLogger(zap.New(core), true)
	l.Infof("%v", countingStringer{&n})
	l.Debugf("%v", countingStringer{&n})
	if logs.Len() != 0 || n.Load() != 0 {
		t.Errorf("info-level logger: %d entries, %d formattings; want none", logs.Len(), n.Load())
	}
	newBadgerLogger(nil, false).Errorf("no logger") // must not panic
}

// TestGroupCommitWaitsForLaterSync checks the group-commit ordering: a
// waiter is released only by a sync that started after it joined, and the
// waiters that gather while a sync runs share the next one.
func TestGroupCommitWaitsForLaterSync(t *testing.T) {
	var calls atomic.Int32
	started := make(chan int32, 10)
	release := make(chan error)
	g := newGroupSyncer(func() error {
		n := calls.Add(1)
		started <- n
		return <-release
	})
	defer g.close()
	ctx := context.Background()

	first := make(chan error, 1)
	go func() { first <- g.wait(ctx) }()
	if n := <-started; n != 1 {
		t.Fatalf("first sync is call %d", n)
	}
	// Sync 1 is running. These waiters joined after it started, so it must
	// not release them.
	const late = 5
	lateDone := make(chan error, late)
	for range late {
		go func() { lateDone <- g.wait(ctx) }()
	}
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.next.waiters == late })
	release <- nil
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-lateDone:
		t.Fatalf("a late waiter was released by the sync that started before it (err %v)", err)
	case n := <-started:
		if n != 2 {
			t.Fatalf("second sync is call %d", n)
		}
	}
	boom := errors.New("boom")
	release <- boom
	for range late {
		if err := <-lateDone; !errors.Is(err, boom) {
			t.Errorf("late waiter got %v, want the second sync's error", err)
		}
	}
	if r, w := g.rounds.Load(), g.waiters.Load(); r != 2 || w != 1+late {
		t.Errorf("rounds %d waiters %d, want 2 and %d", r, w, 1+late)
	}

	// A canceled wait returns at once with ctx's error, while its sync is
	// still running (the sync is released only after wait returned, so the
	// round cannot finish first and win wait's select).
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	returned := make(chan struct{})
	synced := make(chan struct{})
	go func() { <-started; <-returned; release <- nil; close(synced) }()
	if err := g.wait(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled wait = %v", err)
	}
	close(returned)
	<-synced
}

// TestGroupCommitBatches: concurrent completions on a real Badger store
// share sync rounds. The store's sync is slowed to what a disk whose fsync
// costs 2 ms does, so the result does not depend on how fast the test
// machine's disk (or tmpfs) syncs: on such a disk every completion that
// commits while a sync runs must wait for, and share, the next one.
func TestGroupCommitBatches(t *testing.T) {
	s, err := OpenBadger(BadgerOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.syncer == nil {
		t.Fatal("a Badger store on disk with the default sync mode has no group-commit syncer")
	}
	// Set before any wait: the syncer goroutine reads syncFn only after a
	// kick, which the first wait sends.
	realSync := s.syncer.syncFn
	s.syncer.syncFn = func() error { time.Sleep(2 * time.Millisecond); return realSync() }

	ctx := t.Context()
	const n = 256
	keys := make([]Key, n)
	tokens := make([]uint64, n)
	for i := range keys {
		keys[i] = Key{ClientID: "2188120000000000", API: "addPaymentMethod", RequestID: "batch-" + strconv.Itoa(i)}
		c, err := s.Claim(ctx, keys[i], Fingerprint{1}, time.Minute, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		tokens[i] = c.Token
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range keys {
		wg.Go(func() {
			errs <- s.Complete(ctx, keys[i], tokens[i], Answer{ResultCode: "SUCCESS", Outcome: OutcomeAccepted, BackendStatus: 200}, time.Hour)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	t.Logf("%d completions, %d sync rounds", st.SyncedCompletions, st.SyncRounds)
	if st.Completions != n || st.SyncedCompletions != n {
		t.Errorf("stats %+v, want %d completions synced", st, n)
	}
	if st.SyncRounds == 0 || st.SyncRounds >= n/4 {
		t.Errorf("%d sync rounds for %d concurrent completions: no batching", st.SyncRounds, n)
	}
}

func TestGroupCommitClose(t *testing.T) {
	var calls atomic.Int32
	g := newGroupSyncer(func() error { calls.Add(1); return nil })
	if err := g.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	g.close()
	if err := g.wait(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("wait after close = %v, want ErrClosed", err)
	}
	if calls.Load() != 1 {
		t.Errorf("%d syncs, want 1", calls.Load())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSyncMemtableLogs(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var synced []string
	orig := fsyncPath
	fsyncPath = func(p string) error {
		mu.Lock()
		synced = append(synced, filepath.Base(p))
		mu.Unlock()
		return orig(p)
	}
	defer func() { fsyncPath = orig }()

	touch := func(names ...string) {
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n, err := syncMemtableLogs(dir, true); err != nil || n != 0 {
		t.Fatalf("no memtable logs: found %d, err %v", n, err)
	}
	touch("00007.mem", "000001.sst", "MANIFEST", "000001.vlog", "notes.mem.bak")
	if _, err := syncMemtableLogs(dir, false); err != nil || len(synced) != 0 {
		t.Fatalf("one memtable log: synced %v, err %v; want nothing", synced, err)
	}
	if n, err := syncMemtableLogs(dir, true); err != nil || n != 1 || !slices.Equal(synced, []string{"00007.mem"}) {
		t.Fatalf("one memtable log, newest included: found %d, synced %v, err %v", n, synced, err)
	}
	synced = nil
	touch("00008.mem", "00010.mem", "123456.mem")
	if _, err := syncMemtableLogs(dir, false); err != nil {
		t.Fatal(err)
	}
	slices.Sort(synced)
	if want := []string{"00007.mem", "00008.mem", "00010.mem"}; !slices.Equal(synced, want) {
		t.Errorf("synced %v, want %v (all but the newest, 123456.mem)", synced, want)
	}
	synced = nil
	if _, err := syncMemtableLogs(dir, true); err != nil {
		t.Fatal(err)
	}
	slices.Sort(synced)
	if want := []string{"00007.mem", "00008.mem", "00010.mem", "123456.mem"}; !slices.Equal(synced, want) {
		t.Errorf("synced %v, want %v", synced, want)
	}
	// A log that vanished (flushed and deleted) is not an error.
	synced = nil
	fsyncPath = func(p string) error { return &os.PathError{Op: "open", Path: p, Err: os.ErrNotExist} }
	if _, err := syncMemtableLogs(dir, true); err != nil {
		t.Errorf("vanished log: %v", err)
	}
}

// TestCompleteSurvivesMemtableRotation writes enough to rotate small
// memtables many times while completions run, through both sync paths: the
// descriptor fsync of all memtable logs (Linux) and db.Sync plus the logs of
// rotated-out memtables (taken when the value threshold is lowered below the
// longest record, and on other systems).
func TestCompleteSurvivesMemtableRotation(t *testing.T) {
	for _, c := range []struct {
		name      string
		threshold int64
		byFD      bool
	}{
		{"descriptor fsync", 1 << 10, runtime.GOOS == "linux"},
		{"db.Sync", 128, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logSyncs atomic.Int32
			orig, origFile := fsyncPath, syncLogFile
			fsyncPath = func(p string) error { logSyncs.Add(1); return orig(p) }
			syncLogFile = func(f *os.File) error { logSyncs.Add(1); return origFile(f) }
			defer func() { fsyncPath, syncLogFile = orig, origFile }()

			s, err := OpenBadger(BadgerOptions{Dir: t.TempDir(), Tune: func(o *badger.Options) {
				o.MemTableSize = 256 << 10 // rotates every few hundred records
				o.ValueThreshold = c.threshold
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.syncLogsByFD.Load() != c.byFD {
				t.Fatalf("syncLogsByFD = %v, want %v", s.syncLogsByFD.Load(), c.byFD)
			}
			ctx := context.Background()
			const workers, per = 8, 500
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range per {
						k := Key{"c", "addPaymentMethod", strconv.Itoa(w) + "-" + strconv.Itoa(i)}
						res, err := s.Claim(ctx, k, Fingerprint{1}, time.Minute, time.Hour)
						if err == nil {
							err = s.Complete(ctx, k, res.Token, Answer{"SUCCESS", OutcomeAccepted, 200}, time.Hour)
						}
						if err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			n := 0
			if err := s.Scan(ctx, func(r Record) bool { n++; return r.State == StateDone }); err != nil {
				t.Fatal(err)
			}
			if n != workers*per {
				t.Errorf("scanned %d done records, want %d", n, workers*per)
			}
			st := s.Stats()
			t.Logf("stats %+v; memtable log fsyncs: %d", st, logSyncs.Load())
			if st.SyncedCompletions != workers*per || st.SyncRounds == 0 || st.SyncRounds > st.SyncedCompletions {
				t.Errorf("stats %+v", st)
			}
			if c.byFD && uint64(logSyncs.Load()) < st.SyncRounds {
				t.Errorf("%d log fsyncs for %d rounds: every round must fsync the active log", logSyncs.Load(), st.SyncRounds)
			}
		})
	}
}

// TestCorruptRecordSurfaces stores garbage under a record key: every read
// path must report ErrCorruptRecord rather than guess.
func TestCorruptRecordSurfaces(t *testing.T) {
	s, err := OpenBadger(BadgerOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k := Key{"c", "a", "r"}
	if err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(appendKey(nil, k), []byte{1, 1, 2, 3})
	}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, _, err := s.Get(ctx, k); !errors.Is(err, ErrCorruptRecord) {
		t.Errorf("Get = %v", err)
	}
	if _, err := s.Claim(ctx, k, Fingerprint{}, time.Second, time.Second); !errors.Is(err, ErrCorruptRecord) {
		t.Errorf("Claim = %v", err)
	}
	if err := s.Complete(ctx, k, 1, Answer{"SUCCESS", OutcomeAccepted, 200}, time.Second); !errors.Is(err, ErrCorruptRecord) {
		t.Errorf("Complete = %v", err)
	}
	if err := s.Release(ctx, k, 1); !errors.Is(err, ErrCorruptRecord) {
		t.Errorf("Release = %v", err)
	}
	if err := s.Scan(ctx, func(Record) bool { return true }); !errors.Is(err, ErrCorruptRecord) {
		t.Errorf("Scan = %v", err)
	}
}

// TestCompleteReportsSyncFailure: when the group-commit fsync fails, the
// completions of that round fail with its error (the caller answers U and
// the provider retries), the store fails (ErrFailed: nothing is answered
// from what may not be on disk), and the failure is logged. Reopened, the
// store replays what the disk holds.
func TestCompleteReportsSyncFailure(t *testing.T) {
	core, logs := observer.New(zapcore.ErrorLevel)
	dir := t.TempDir()
	s, err := OpenBadger(BadgerOptions{Dir: dir, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.syncLogsByFD.Load() {
		t.Skip("fault injection needs the descriptor fsync path")
	}
	eio := errors.New("input/output error")
	orig := syncLogFile
	syncLogFile = func(*os.File) error { return eio }
	defer func() { syncLogFile = orig }()

	ctx := context.Background()
	k := Key{"c", "a", "sync-failure"}
	c, err := s.Claim(ctx, k, Fingerprint{}, time.Minute, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, k, c.Token, Answer{"SUCCESS", OutcomeAccepted, 200}, time.Hour); !errors.Is(err, eio) || !errors.Is(err, ErrFailed) {
		t.Fatalf("Complete with a failing fsync = %v, want ErrFailed wrapping the fsync error", err)
	}
	if logs.FilterMessageSnippet("the store failed").Len() != 1 {
		t.Errorf("sync failure not logged: %+v", logs.AllUntimed())
	}
	syncLogFile = orig
	if res, err := s.Claim(ctx, k, Fingerprint{}, time.Minute, time.Hour); !errors.Is(err, ErrFailed) {
		t.Fatalf("retry on the failed store = %v, %v; want ErrFailed", res.Status, err)
	}
	// Reopened (as the guard does), the committed record is read back
	// from the disk and replayed.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenBadger(BadgerOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.Claim(ctx, k, Fingerprint{}, time.Minute, time.Hour)
	if err != nil || res.Status != Done {
		t.Errorf("retry after reopening = %v, %v; want done", res.Status, err)
	}
}

// TestDescriptorSyncFallsBackWhenNoLogsFound: an open database always has
// its active memtable log; if the descriptor path finds none (Badger's file
// layout changed), the store must switch to db.Sync instead of syncing
// nothing, and say so.
func TestDescriptorSyncFallsBackWhenNoLogsFound(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	s, err := OpenBadger(BadgerOptions{Dir: t.TempDir(), Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.syncLogsByFD.Load() {
		t.Skip("only the descriptor fsync path has a fallback")
	}
	if err := s.syncDurable(); err != nil || !s.syncLogsByFD.Load() {
		t.Fatalf("with the real layout: err %v, descriptor path kept %v", err, s.syncLogsByFD.Load())
	}
	realDir, realLogs := s.dir, s.memLogs
	s.dir = t.TempDir() // a directory without any *.mem file
	s.memLogs = newMemLogFiles(s.dir)
	defer func() { s.memLogs.close(); s.dir, s.memLogs = realDir, realLogs }()
	if err := s.syncDurable(); err != nil {
		t.Fatalf("fallback sync: %v", err)
	}
	if s.syncLogsByFD.Load() {
		t.Fatal("still on the descriptor path although it found nothing to fsync")
	}
	if logs.FilterMessageSnippet("using db.Sync").Len() != 1 {
		t.Errorf("fallback not logged: %v", logs.All())
	}
}

// TestGroupCommitFsyncFailureFailsStore: a failed group-commit fsync is a
// failure of the store (ErrFailed, which makes the guard reopen it), so a
// queued record that is committed but perhaps not on disk is never
// replayed: the enqueue reports it, and a resend's Claim gets ErrFailed
// instead of Done.
func TestGroupCommitFsyncFailureFailsStore(t *testing.T) {
	s, err := OpenBadger(BadgerOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.syncer == nil {
		t.Fatal("no group-commit syncer")
	}
	eio := errors.New("fsync: input/output error")
	s.syncRound = func() error { return eio } // before any write
	ctx := t.Context()
	key := Key{ClientID: "2188120000000000", API: "addPaymentMethod", RequestID: "fsync-fails"}
	c, err := s.Claim(ctx, key, Fingerprint{1}, time.Minute, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Enqueue(ctx, key, c.Token, NewItem{OrderKey: "o", Payload: []byte("p")}, EnqueueOptions{Retention: time.Hour})
	if !errors.Is(err, ErrFailed) || !errors.Is(err, eio) {
		t.Fatalf("Enqueue with a failing fsync = %v, want ErrFailed wrapping the fsync's error", err)
	}
	res, err := s.Claim(ctx, key, Fingerprint{1}, time.Minute, time.Hour)
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("the resend's Claim after a failed fsync = %v, %v: want ErrFailed, never a replay", res.Status, err)
	}
}

// TestReplayWaitsForSync: a resend that finds a done record while the
// group commit of the completion (or enqueue) that wrote it has not
// finished waits for it before it reports Done, and so does ConfirmDone
// (a duplicate that read the record while it waited for the first copy):
// the gateway replays S only for a record (and queue item) on disk.
func TestReplayWaitsForSync(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(ctx context.Context, s *BadgerStore, key Key, token uint64) error
	}{
		{"completed", func(ctx context.Context, s *BadgerStore, key Key, token uint64) error {
			return s.Complete(ctx, key, token, Answer{ResultCode: "SUCCESS", Outcome: OutcomeAccepted, BackendStatus: 200}, time.Hour)
		}},
		{"queued", func(ctx context.Context, s *BadgerStore, key Key, token uint64) error {
			return s.Enqueue(ctx, key, token, NewItem{OrderKey: "o", Payload: []byte("p")}, EnqueueOptions{Retention: time.Hour})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := OpenBadger(BadgerOptions{Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			gate := make(chan struct{})
			var gated atomic.Bool
			gated.Store(true)
			release := sync.OnceFunc(func() { gated.Store(false); close(gate) })
			defer release()
			real := s.syncRound
			s.syncRound = func() error {
				if gated.Load() {
					<-gate
				}
				return real()
			}
			ctx := t.Context()
			key := Key{ClientID: "2188120000000000", API: "addPaymentMethod", RequestID: "replay-waits-" + tc.name}
			c, err := s.Claim(ctx, key, Fingerprint{1}, time.Minute, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			written := make(chan error, 1)
			go func() { written <- tc.write(ctx, s, key, c.Token) }()
			// Wait until the record is committed (the writer now waits
			// for the gated sync).
			for {
				rec, ok, err := s.Get(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				if ok && rec.State == StateDone {
					break
				}
				time.Sleep(time.Millisecond)
			}
			claimed := make(chan ClaimResult, 1)
			go func() {
				res, err := s.Claim(ctx, key, Fingerprint{1}, time.Minute, time.Hour)
				if err != nil {
					t.Error(err)
				}
				claimed <- res
			}()
			confirmed := make(chan error, 1)
			go func() { confirmed <- s.ConfirmDone(ctx, key) }()
			select {
			case res := <-claimed:
				t.Fatalf("the resend's Claim answered %v before the record was synced", res.Status)
			case err := <-confirmed:
				t.Fatalf("ConfirmDone returned %v before the record was synced", err)
			case <-time.After(100 * time.Millisecond):
			}
			release()
			if res := <-claimed; res.Status != Done {
				t.Fatalf("Claim after the sync = %v, want Done", res.Status)
			}
			if err := <-confirmed; err != nil {
				t.Fatalf("ConfirmDone after the sync = %v", err)
			}
			if err := <-written; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCorruptFinishedRecord: a finished record of an order key that does
// not decode makes Redeliver's overtaker check report ErrCorruptRecord,
// whatever the damage: too short, a truncated entry, or an entry whose
// length prefix is near 2^64 (which must not pass a bounds check by
// overflowing). The dead letter stays dead.
func TestCorruptFinishedRecord(t *testing.T) {
	for name, v := range map[string][]byte{
		"short":     {0, 0, 0},
		"truncated": append(make([]byte, 8), 3, 'a', 'd'),
		"huge length": append(make([]byte, 8),
			0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 'a', 'd', 'd', 0, 0, 0, 0, 0, 0, 0, 1),
	} {
		t.Run(name, func(t *testing.T) {
			s, err := OpenBadger(BadgerOptions{Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx := t.Context()
			key := Key{ClientID: "2188120000000000", API: "addPaymentMethod", RequestID: "fin-corrupt"}
			c, err := s.Claim(ctx, key, Fingerprint{1}, time.Minute, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Enqueue(ctx, key, c.Token, NewItem{OrderKey: "o", Payload: []byte("p")}, EnqueueOptions{Retention: time.Hour}); err != nil {
				t.Fatal(err)
			}
			items, err := s.Lease(ctx, 1, time.Minute)
			if err != nil || len(items) != 1 {
				t.Fatalf("Lease: %v, %v", items, err)
			}
			if err := s.DeadLetter(ctx, items[0].Ref(), 503, "status", time.Hour, time.Hour); err != nil {
				t.Fatal(err)
			}
			if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(qFinKey("o"), v) }); err != nil {
				t.Fatal(err)
			}
			if err := s.Redeliver(ctx, key, "removePaymentMethod"); !errors.Is(err, ErrCorruptRecord) {
				t.Fatalf("Redeliver over a corrupt finished record = %v, want ErrCorruptRecord", err)
			}
		})
	}
}
