package guard_test

import (
	"context"
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

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/guard"
)

// These tests drive the guard with a stand-in store whose calls block or
// panic on demand (the real failures, a frozen filesystem and an
// unwritable directory under Badger, are in e2e/storefail_test.go).

// stallStore is an idempotency.Store whose every call blocks while stall is
// set, panics while panicking is set, and otherwise succeeds.
type stallStore struct {
	name       string
	stall      chan struct{} // non-nil: calls wait until it is closed
	panicking  atomic.Bool
	calls      atomic.Int64
	closeGate  chan struct{} // non-nil: Close waits until it is closed
	closed     atomic.Bool
	closeCalls atomic.Int64
}

func (s *stallStore) enter() {
	s.calls.Add(1)
	if s.panicking.Load() {
		var m map[string]int
		//lint:ignore SA5000 a real runtime panic, like Badger's nil memtable
		m["nil map"]++
	}
	if s.stall != nil {
		<-s.stall
	}
}

func (s *stallStore) Claim(ctx context.Context, key idempotency.Key, fp idempotency.Fingerprint, lease, retention time.Duration) (idempotency.ClaimResult, error) {
	s.enter()
	return idempotency.ClaimResult{Status: idempotency.Claimed, Token: 7}, nil
}

func (s *stallStore) Complete(ctx context.Context, key idempotency.Key, token uint64, a idempotency.Answer, retention time.Duration) error {
	s.enter()
	return nil
}

func (s *stallStore) Release(ctx context.Context, key idempotency.Key, token uint64) error {
	s.enter()
	return nil
}

func (s *stallStore) Get(ctx context.Context, key idempotency.Key) (idempotency.Record, bool, error) {
	s.enter()
	return idempotency.Record{Key: key}, true, nil
}

func (s *stallStore) Scan(ctx context.Context, fn func(idempotency.Record) bool) error {
	s.enter()
	fn(idempotency.Record{})
	return nil
}

func (s *stallStore) Close() error {
	s.closeCalls.Add(1)
	if s.closeGate != nil {
		<-s.closeGate
	}
	s.closed.Store(true)
	return nil
}

// guarded returns st behind a guard whose calls give up after timeout and
// that reopens with open (every 10ms), on a worker pool of its own of at
// most workers; the guard is closed at the end of the test.
func guarded(t *testing.T, st idempotency.Store, timeout time.Duration, workers int, open func(context.Context) (idempotency.Store, error)) (*guard.Store, *guard.Workers) {
	t.Helper()
	if open == nil {
		open = func(context.Context) (idempotency.Store, error) { return nil, errors.New("no reopening in this test") }
	}
	pool := guard.NewWorkers(workers)
	g := guard.New(st, guard.Options{
		Name:        "/nonexistent/dws-guard-test",
		Open:        open,
		CallTimeout: timeout,
		ReopenRetry: 10 * time.Millisecond,
		ProbeEvery:  time.Hour, // no probe call among the test's own
		Workers:     pool,
	})
	t.Cleanup(func() { _ = g.Close() })
	return g, pool
}

var guardKey = idempotency.Key{ClientID: "c", API: "addPaymentMethod", RequestID: "r"}

// waitUntil polls cond for up to 30s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStoreCallsGiveUpOnAStalledStore(t *testing.T) {
	st := &stallStore{stall: make(chan struct{})}
	s, pool := guarded(t, st, 200*time.Millisecond, guard.DefaultMaxWorkers, nil)
	ctx := context.Background()

	calls := []struct {
		op string
		do func() error
	}{
		{"claim", func() error {
			_, err := s.Claim(ctx, guardKey, idempotency.Fingerprint{}, time.Minute, time.Hour)
			return err
		}},
		{"complete", func() error {
			return s.Complete(ctx, guardKey, 7, idempotency.Answer{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeAccepted, BackendStatus: 200}, time.Hour)
		}},
		{"release", func() error { return s.Release(ctx, guardKey, 7) }},
		{"get", func() error { _, _, err := s.Get(ctx, guardKey); return err }},
	}
	for i, c := range calls {
		began := time.Now()
		err := c.do()
		took := time.Since(began)
		if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), c.op) {
			t.Errorf("%s on a stalled store: %v, want a deadline error naming the call", c.op, err)
		}
		// Generous: the point is that it returns at all.
		if took > 20*time.Second {
			t.Errorf("%s took %s to give up", c.op, took)
		}
		if got := pool.Busy(); got != int64(i+1) {
			t.Errorf("after %s: %d calls stranded, want %d", c.op, got, i+1)
		}
	}
	// The storage answers again: the stranded calls end, nothing leaks.
	close(st.stall)
	waitUntil(t, "the stranded calls to end", func() bool { return pool.Busy() == 0 })
	if _, err := s.Claim(ctx, guardKey, idempotency.Fingerprint{}, time.Minute, time.Hour); err != nil {
		t.Fatalf("claim after the store recovered: %v", err)
	}
}

func TestStoreCallsAreBoundedWhileStalled(t *testing.T) {
	st := &stallStore{stall: make(chan struct{})}
	s, pool := guarded(t, st, 50*time.Millisecond, 3, nil)
	ctx := context.Background()
	before := runtime.NumGoroutine()

	for range 3 {
		if _, _, err := s.Get(ctx, guardKey); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("stalled get: %v", err)
		}
	}
	for range 20 {
		_, _, err := s.Get(ctx, guardKey)
		if !errors.Is(err, guard.ErrBusy) {
			t.Fatalf("get with %d calls stranded: %v, want ErrBusy", pool.Busy(), err)
		}
	}
	if n := st.calls.Load(); n != 3 {
		t.Errorf("the store saw %d calls, want 3 (the rest must not start a goroutine)", n)
	}
	if grew := runtime.NumGoroutine() - before; grew > 3+2 {
		t.Errorf("%d more goroutines with 3 calls stranded", grew)
	}
	close(st.stall)
	waitUntil(t, "the stranded calls to end", func() bool { return pool.Busy() == 0 })
	if _, _, err := s.Get(ctx, guardKey); err != nil {
		t.Fatalf("get after the store recovered: %v", err)
	}
	if n := pool.Count(); n > 3 {
		t.Errorf("%d workers, want at most 3", n)
	}
}

func TestStoreCallsEndWithTheCallersContext(t *testing.T) {
	st := &stallStore{stall: make(chan struct{})}
	defer close(st.stall)
	s, _ := guarded(t, st, guard.DefaultCallTimeout, guard.DefaultMaxWorkers, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if _, _, err := s.Get(ctx, guardKey); !errors.Is(err, context.Canceled) {
		t.Fatalf("get with a cancelled context: %v, want context.Canceled", err)
	}
}

func TestBrokenStoreIsReopened(t *testing.T) {
	broken := &stallStore{name: "first", closeGate: make(chan struct{})}
	broken.panicking.Store(true)
	fresh := &stallStore{name: "reopened"}
	var opens atomic.Int64
	s, _ := guarded(t, broken, 10*time.Second, guard.DefaultMaxWorkers, func(context.Context) (idempotency.Store, error) {
		if opens.Add(1) < 3 {
			return nil, errors.New("directory still unwritable")
		}
		return fresh, nil
	})
	ctx := context.Background()

	// The panic becomes an error, not a dropped connection.
	_, err := s.Claim(ctx, guardKey, idempotency.Fingerprint{}, time.Minute, time.Hour)
	if err == nil || !strings.Contains(err.Error(), "the store failed") {
		t.Fatalf("claim on a panicking store: %v", err)
	}
	// From now on nothing reaches the broken store.
	seen := broken.calls.Load()
	for range 5 {
		if _, _, err := s.Get(ctx, guardKey); !errors.Is(err, guard.ErrBroken) {
			t.Fatalf("get on a broken store: %v, want ErrBroken", err)
		}
	}
	if err := s.Scan(ctx, func(idempotency.Record) bool { return true }); !errors.Is(err, guard.ErrBroken) {
		t.Fatalf("scan on a broken store: %v, want ErrBroken", err)
	}
	if broken.calls.Load() != seen {
		t.Error("calls reached the broken store")
	}
	// Closing the broken store waits (Badger waits for the directory); no
	// reopen is tried meanwhile.
	waitUntil(t, "Close of the broken store", func() bool { return broken.closeCalls.Load() == 1 })
	time.Sleep(50 * time.Millisecond)
	if opens.Load() != 0 {
		t.Fatalf("reopened before the broken store was closed")
	}
	close(broken.closeGate)
	waitUntil(t, "the store to be reopened", func() bool { _, err := s.Current(); return err == nil })
	if opens.Load() != 3 {
		t.Errorf("opened %d times, want 3 (two failures, then success)", opens.Load())
	}
	if _, err := s.Claim(ctx, guardKey, idempotency.Fingerprint{}, time.Minute, time.Hour); err != nil {
		t.Fatalf("claim after reopening: %v", err)
	}
	if fresh.calls.Load() != 1 {
		t.Errorf("the reopened store saw %d calls, want 1", fresh.calls.Load())
	}
	if err := s.Close(); err != nil || !fresh.closed.Load() {
		t.Errorf("Close: %v, reopened store closed: %v", err, fresh.closed.Load())
	}
}

// closingStore's Get blocks until the store is closed and then fails with
// idempotency.ErrClosed, as Badger's calls do when the store closes under
// them; its Claim fails the store (idempotency.ErrFailed).
type closingStore struct {
	gets   atomic.Int64
	closed chan struct{}
	once   sync.Once
}

func (s *closingStore) Claim(context.Context, idempotency.Key, idempotency.Fingerprint, time.Duration, time.Duration) (idempotency.ClaimResult, error) {
	return idempotency.ClaimResult{}, fmt.Errorf("rotating the memtable: %w", idempotency.ErrFailed)
}
func (s *closingStore) Complete(context.Context, idempotency.Key, uint64, idempotency.Answer, time.Duration) error {
	return nil
}
func (s *closingStore) Release(context.Context, idempotency.Key, uint64) error { return nil }
func (s *closingStore) Get(context.Context, idempotency.Key) (idempotency.Record, bool, error) {
	s.gets.Add(1)
	<-s.closed
	return idempotency.Record{}, false, idempotency.ErrClosed
}
func (s *closingStore) Scan(context.Context, func(idempotency.Record) bool) error { return nil }
func (s *closingStore) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

// TestCallOnAStoreClosedForReopeningIsBroken: a call running on a store
// when another call fails it meets the guard's own Close of that store.
// It reports ErrBroken (the store is out of service), like the calls made
// after it, not idempotency.ErrClosed, which means the guard was closed.
func TestCallOnAStoreClosedForReopeningIsBroken(t *testing.T) {
	failing := &closingStore{closed: make(chan struct{})}
	s, _ := guarded(t, failing, 30*time.Second, guard.DefaultMaxWorkers, nil)
	ctx := context.Background()
	got := make(chan error, 1)
	go func() { _, _, err := s.Get(ctx, guardKey); got <- err }()
	waitUntil(t, "the Get to reach the store", func() bool { return failing.gets.Load() == 1 })
	if _, err := s.Claim(ctx, guardKey, idempotency.Fingerprint{}, time.Minute, time.Hour); !errors.Is(err, idempotency.ErrFailed) {
		t.Fatalf("claim: %v, want the store's failure", err)
	}
	err := <-got
	if !errors.Is(err, guard.ErrBroken) || errors.Is(err, idempotency.ErrClosed) {
		t.Fatalf("the Get that ran while the guard closed the failed store: %v, want ErrBroken", err)
	}
	// Closing the guard itself still reports ErrClosed to a running call.
	open := &closingStore{closed: make(chan struct{})}
	g, _ := guarded(t, open, 30*time.Second, guard.DefaultMaxWorkers, nil)
	go func() { _, _, err := g.Get(ctx, guardKey); got <- err }()
	waitUntil(t, "the Get to reach the store", func() bool { return open.gets.Load() == 1 })
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; !errors.Is(err, idempotency.ErrClosed) {
		t.Fatalf("a Get running while the guard is closed: %v, want ErrClosed", err)
	}
}

func TestCloseStopsReopening(t *testing.T) {
	var opens atomic.Int64
	broken := &stallStore{}
	broken.panicking.Store(true)
	s, _ := guarded(t, broken, guard.DefaultCallTimeout, guard.DefaultMaxWorkers, func(context.Context) (idempotency.Store, error) {
		opens.Add(1)
		return nil, errors.New("directory still unwritable")
	})
	if _, _, err := s.Get(context.Background(), guardKey); err == nil {
		t.Fatal("get on a panicking store succeeded")
	}
	waitUntil(t, "a reopen attempt", func() bool { return opens.Load() > 0 })
	if err := s.Close(); err != nil {
		t.Fatalf("Close of a broken store: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	n := opens.Load()
	time.Sleep(100 * time.Millisecond)
	if opens.Load() != n {
		t.Error("still reopening after Close")
	}
	if broken.closeCalls.Load() != 1 {
		t.Errorf("the broken store was closed %d times, want 1", broken.closeCalls.Load())
	}
}

func TestScanPassesOnTheCallbacksPanic(t *testing.T) {
	st := &stallStore{}
	s, _ := guarded(t, st, guard.DefaultCallTimeout, guard.DefaultMaxWorkers, nil)
	var once sync.Once
	func() {
		defer func() {
			if p := recover(); p == nil || p != "from the callback" {
				t.Errorf("recovered %v, want the callback's own panic", p)
			}
		}()
		_ = s.Scan(context.Background(), func(idempotency.Record) bool {
			once.Do(func() { panic("from the callback") })
			return true
		})
	}()
	if _, err := s.Current(); err != nil {
		t.Errorf("a panic in the callback broke the store: %v", err)
	}
}

// TestFailedBadgerStoreIsReopened drives the guard over a real Badger
// store whose memtable rotation fails under load: the name of its next
// memtable log is taken (by a directory), which is what a storage
// directory made unwritable does to Badger. The store fails stop
// (idempotency.ErrFailed) instead of taking the process down; the guard
// must take it out of service at once, answer U, reopen it once the
// obstacle is gone, and lose nothing it acknowledged.
func TestFailedBadgerStoreIsReopened(t *testing.T) {
	dir := t.TempDir()
	open := func(context.Context) (idempotency.Store, error) {
		return idempotency.OpenBadger(idempotency.BadgerOptions{
			Dir:        dir,
			GCInterval: -1,
			Tune:       func(o *badger.Options) { o.MemTableSize = 256 << 10 },
		})
	}
	st, err := open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// A fresh store writes into 00001.mem; its first rotation creates
	// 00002.mem.
	if _, err := os.Stat(filepath.Join(dir, "00001.mem")); err != nil {
		t.Fatalf("badger's memtable logs are not named as this test expects: %v", err)
	}
	block := filepath.Join(dir, "00002.mem")
	if err := os.Mkdir(block, 0o755); err != nil {
		t.Fatal(err)
	}
	s, _ := guarded(t, st, 30*time.Second, guard.DefaultMaxWorkers, open)

	ctx := context.Background()
	answer := idempotency.Answer{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeAccepted, BackendStatus: 200}
	var (
		mu       sync.Mutex
		acked    []idempotency.Key
		failures = map[string]int{}
		failedAt atomic.Int64
		wg       sync.WaitGroup
	)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(time.Minute)
			for i := 0; time.Now().Before(deadline); i++ {
				if at := failedAt.Load(); at != 0 && time.Since(time.Unix(0, at)) > 200*time.Millisecond {
					return
				}
				k := idempotency.Key{ClientID: "c", API: "addPaymentMethod", RequestID: fmt.Sprintf("w%d-%d", w, i)}
				c, err := s.Claim(ctx, k, idempotency.Fingerprint{1}, time.Minute, time.Hour)
				if err == nil {
					err = s.Complete(ctx, k, c.Token, answer, time.Hour)
				}
				mu.Lock()
				switch {
				case err == nil:
					acked = append(acked, k)
				case errors.Is(err, idempotency.ErrFailed):
					failures["the store's failure"]++
				case errors.Is(err, guard.ErrBroken):
					failures["broken: not called"]++
				default:
					failures[err.Error()]++
				}
				mu.Unlock()
				if err != nil {
					failedAt.CompareAndSwap(0, time.Now().UnixNano())
				}
				if errors.Is(err, guard.ErrBroken) {
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d completions acknowledged before the rotation failed; errors: %v", len(acked), failures)
	if failedAt.Load() == 0 {
		t.Fatal("no call failed although badger could not rotate its memtable")
	}
	for msg := range failures {
		if msg != "the store's failure" && msg != "broken: not called" {
			t.Errorf("a call failed with another error: %s", msg)
		}
	}
	if _, err := s.Current(); !errors.Is(err, guard.ErrBroken) {
		t.Fatalf("after the store failed: %v, want it out of service (ErrBroken)", err)
	}

	// Reopening fails while the obstacle is there, and works once it is
	// gone.
	time.Sleep(100 * time.Millisecond)
	if _, err := s.Current(); !errors.Is(err, guard.ErrBroken) {
		t.Fatalf("the store came back while its directory was still broken: %v", err)
	}
	if err := os.Remove(block); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the store to be reopened", func() bool { _, err := s.Current(); return err == nil })
	for _, k := range acked {
		rec, ok, err := s.Get(ctx, k)
		if err != nil || !ok || rec.State != idempotency.StateDone {
			t.Errorf("%v was acknowledged before the failure; after reopening: %+v, found %v, %v", k, rec, ok, err)
		}
	}
	k := idempotency.Key{ClientID: "c", API: "addPaymentMethod", RequestID: "after"}
	if c, err := s.Claim(ctx, k, idempotency.Fingerprint{1}, time.Minute, time.Hour); err != nil || c.Status != idempotency.Claimed {
		t.Fatalf("claim after reopening: %v %v", c.Status, err)
	}
}
