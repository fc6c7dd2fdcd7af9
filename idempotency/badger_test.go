package idempotency_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/storetest"
)

// TestMain lets the test binary double as the child process of the crash
// and footprint tests (see helperMain).
func TestMain(m *testing.M) {
	if helperMain() {
		return
	}
	os.Exit(m.Run())
}

func openBadger(t testing.TB, opts idempotency.BadgerOptions) *idempotency.BadgerStore {
	t.Helper()
	s, err := idempotency.OpenBadger(opts)
	if err != nil {
		t.Fatalf("OpenBadger: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	for _, c := range []struct {
		name string
		opts func(t *testing.T) idempotency.BadgerOptions
	}{
		{"GroupCommit", func(t *testing.T) idempotency.BadgerOptions {
			return idempotency.BadgerOptions{Dir: t.TempDir()}
		}},
		{"GroupCommitPageOut", func(t *testing.T) idempotency.BadgerOptions {
			// Page-out passes over the tables while every operation runs.
			return idempotency.BadgerOptions{Dir: t.TempDir(), PageOutInterval: time.Millisecond}
		}},
		{"SyncEachCommit", func(t *testing.T) idempotency.BadgerOptions {
			return idempotency.BadgerOptions{Dir: t.TempDir(), Sync: idempotency.SyncEachCommit}
		}},
		{"InMemory", func(*testing.T) idempotency.BadgerOptions {
			return idempotency.BadgerOptions{InMemory: true}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T) idempotency.Store { return openBadger(t, c.opts(t)) })
		})
	}
}

// TestClaimRace: 50 goroutines claim the same key at once, exactly one wins;
// repeated over 1,000 keys, 8 keys at a time.
func TestClaimRace(t *testing.T) {
	s := openBadger(t, idempotency.BadgerOptions{Dir: t.TempDir()})
	storetest.ClaimRace(t, s, 1000, 50, 8)
	st := s.Stats()
	t.Logf("transaction conflicts retried: %d", st.TxnConflicts)
}

// TestLeaseWithInjectedClock drives leases with a fake clock: long leases
// can be tested without waiting.
func TestLeaseWithInjectedClock(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s := openBadger(t, idempotency.BadgerOptions{InMemory: true, Now: clock})
	ctx := t.Context()
	k := storetest.K("fake-clock")

	first, err := s.Claim(ctx, k, storetest.FP(1), time.Hour, 24*time.Hour)
	if err != nil || first.Status != idempotency.Claimed {
		t.Fatalf("Claim = %v, %v", first.Status, err)
	}
	if !first.Record.ClaimedAt.Equal(clock()) || !first.Record.LeaseExpiry.Equal(clock().Add(time.Hour)) {
		t.Errorf("times %v / %v, want the injected clock's", first.Record.ClaimedAt, first.Record.LeaseExpiry)
	}
	advance(time.Hour - time.Nanosecond)
	if res, _ := s.Claim(ctx, k, storetest.FP(1), time.Hour, 24*time.Hour); res.Status != idempotency.InFlight {
		t.Fatalf("Claim 1ns before the lease ends = %v, want in_flight", res.Status)
	}
	advance(time.Nanosecond)
	res, err := s.Claim(ctx, k, storetest.FP(1), time.Hour, 24*time.Hour)
	if err != nil || res.Status != idempotency.Claimed || res.Token == first.Token {
		t.Fatalf("Claim when the lease ends = %v token %d, %v; want claimed with a new token", res.Status, res.Token, err)
	}
	advance(time.Minute)
	if err := s.Complete(ctx, k, res.Token, idempotency.Answer{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeAccepted, BackendStatus: 200}, time.Hour); err != nil {
		t.Fatal(err)
	}
	rec, _, _ := s.Get(ctx, k)
	if !rec.CompletedAt.Equal(clock()) {
		t.Errorf("CompletedAt %v, want %v", rec.CompletedAt, clock())
	}
}

func TestReopenKeepsRecords(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	ans := idempotency.Answer{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeBusinessRejected, BackendStatus: 422}
	s := openBadger(t, idempotency.BadgerOptions{Dir: dir})
	c, err := s.Claim(ctx, storetest.K("reopen-done"), storetest.FP(1), time.Minute, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, storetest.K("reopen-done"), c.Token, ans, time.Hour); err != nil {
		t.Fatal(err)
	}
	inflight, err := s.Claim(ctx, storetest.K("reopen-inflight"), storetest.FP(2), time.Minute, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// The directory is locked while open, and the error says so as a value
	// (caddymodule tells a config check on a live host from a real failure
	// by it).
	if _, err := idempotency.OpenBadger(idempotency.BadgerOptions{Dir: dir}); !errors.Is(err, idempotency.ErrLocked) {
		t.Fatalf("second OpenBadger of an open directory: %v, want ErrLocked", err)
	}
	if _, err := idempotency.OpenBadger(idempotency.BadgerOptions{Dir: filepath.Join(dir, "MANIFEST", "x")}); err == nil || errors.Is(err, idempotency.ErrLocked) {
		t.Fatalf("OpenBadger under a file: %v, want an error other than ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := openBadger(t, idempotency.BadgerOptions{Dir: dir})
	res, err := s2.Claim(ctx, storetest.K("reopen-done"), storetest.FP(1), time.Minute, time.Hour)
	if err != nil || res.Status != idempotency.Done || res.Record.Answer != ans || res.Record.Token != c.Token {
		t.Errorf("done record after reopen: %v %+v, %v", res.Status, res.Record, err)
	}
	res, err = s2.Claim(ctx, storetest.K("reopen-inflight"), storetest.FP(2), time.Minute, time.Hour)
	if err != nil || res.Status != idempotency.InFlight || res.Record.Token != inflight.Token {
		t.Errorf("in-flight record after reopen: %v %+v, %v", res.Status, res.Record, err)
	}
}

func TestOpenBadgerRejects(t *testing.T) {
	for name, o := range map[string]idempotency.BadgerOptions{
		"no dir":            {},
		"dir and in-memory": {Dir: t.TempDir(), InMemory: true},
		"unknown sync mode": {Dir: t.TempDir(), Sync: 9},
		"conflicts off": {Dir: t.TempDir(), Tune: func(o *badger.Options) {
			o.DetectConflicts = false
		}},
		"invalid badger option": {Dir: t.TempDir(), Tune: func(o *badger.Options) { o.ValueLogFileSize = 1 }},
	} {
		if s, err := idempotency.OpenBadger(o); err == nil {
			s.Close()
			t.Errorf("%s: OpenBadger succeeded", name)
		}
	}
}

// TestCloseRacesOperations closes the store while goroutines hammer it:
// every call returns nil, ErrClosed or a semantic error, never panics, and
// every call after Close returned gets ErrClosed.
func TestCloseRacesOperations(t *testing.T) {
	for round := range 3 {
		s, err := idempotency.OpenBadger(idempotency.BadgerOptions{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		var (
			wg       sync.WaitGroup
			stop     atomic.Bool
			okCalls  atomic.Int64
			badCalls atomic.Int64
		)
		check := func(err error) {
			switch {
			case err == nil:
				okCalls.Add(1)
			case errors.Is(err, idempotency.ErrClosed), errors.Is(err, idempotency.ErrLeaseLost):
			default:
				if badCalls.Add(1) < 5 {
					t.Errorf("unexpected error: %v", err)
				}
			}
		}
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; !stop.Load(); i++ {
					k := storetest.K(fmt.Sprintf("close-%d-%d", w, i))
					res, err := s.Claim(ctx, k, storetest.FP(1), time.Minute, time.Hour)
					check(err)
					if err == nil {
						if i%2 == 0 {
							check(s.Complete(ctx, k, res.Token, idempotency.Answer{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeAccepted, BackendStatus: 200}, time.Hour))
						} else {
							check(s.Release(ctx, k, res.Token))
						}
					}
					_, _, err = s.Get(ctx, k)
					check(err)
					if i%50 == 0 {
						n := 0
						check(s.Scan(ctx, func(idempotency.Record) bool { n++; return n < 100 }))
					}
				}
			}()
		}
		time.Sleep(time.Duration(20+round*20) * time.Millisecond)
		closeStart := time.Now()
		var closers sync.WaitGroup
		for range 3 { // concurrent Close calls are fine too
			closers.Add(1)
			go func() { defer closers.Done(); check(s.Close()) }()
		}
		closers.Wait()
		t.Logf("round %d: %d calls succeeded; Close took %v", round, okCalls.Load(), time.Since(closeStart))
		if _, err := s.Claim(ctx, storetest.K("after"), storetest.FP(1), time.Minute, time.Hour); !errors.Is(err, idempotency.ErrClosed) {
			t.Errorf("Claim after Close returned: %v", err)
		}
		stop.Store(true)
		wg.Wait()
		if okCalls.Load() == 0 {
			t.Errorf("round %d: no call succeeded before Close", round)
		}
	}
}

// TestCloseStopsBackground: the value-log GC runs on its ticker while the
// store is open and stops with Close, and Close leaves no goroutine behind.
func TestCloseStopsBackground(t *testing.T) {
	before := runtime.NumGoroutine()
	s, err := idempotency.OpenBadger(idempotency.BadgerOptions{Dir: t.TempDir(), GCInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().GCRuns < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("GC ran %d times in 5s with a 10ms interval", s.Stats().GCRuns)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	runs := s.Stats().GCRuns
	time.Sleep(100 * time.Millisecond)
	if got := s.Stats().GCRuns; got != runs {
		t.Errorf("GC ran %d more times after Close", got-runs)
	}
	deadline = time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBadgerLogsGoToZap: Badger's own lines reach the zap logger under the
// "badger" name, its info chatter at debug level only.
func TestBadgerLogsGoToZap(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	dir := t.TempDir()
	s, err := idempotency.OpenBadger(idempotency.BadgerOptions{Dir: dir, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	badgerLines := logs.FilterLoggerName("badger").AllUntimed()
	if len(badgerLines) == 0 {
		t.Fatal("no Badger log line reached zap")
	}
	for _, e := range badgerLines {
		if e.Level > zapcore.DebugLevel {
			t.Errorf("Badger line at %v: %q", e.Level, e.Message)
		}
		if strings.HasSuffix(e.Message, "\n") {
			t.Errorf("untrimmed line %q", e.Message)
		}
	}
}
