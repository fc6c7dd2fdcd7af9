package guard_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/guard"
)

// flakyStore is an in-memory Badger store whose Get fails while fail is
// set.
type flakyStore struct {
	idempotency.Store
	fail atomic.Bool
	gets atomic.Int64
}

var errUnreachable = errors.New("dial tcp: connection refused")

func (s *flakyStore) Get(ctx context.Context, key idempotency.Key) (idempotency.Record, bool, error) {
	s.gets.Add(1)
	if s.fail.Load() {
		return idempotency.Record{}, false, errUnreachable
	}
	return s.Store.Get(ctx, key)
}

func newFlaky(t *testing.T) *flakyStore {
	t.Helper()
	st, err := idempotency.OpenBadger(idempotency.BadgerOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return &flakyStore{Store: st}
}

// healthLog records what OnHealth was told, in order.
type healthLog struct {
	mu  sync.Mutex
	ups []bool
}

func (h *healthLog) hook(up bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ups = append(h.ups, up)
}

func (h *healthLog) last() (bool, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.ups) == 0 {
		return false, 0
	}
	return h.ups[len(h.ups)-1], len(h.ups)
}

// The health follows the calls, and the probe moves it while no call is
// made; OnHealth hears of every change, once.
func TestHealthFollowsCallsAndProbe(t *testing.T) {
	st := newFlaky(t)
	var h healthLog
	s := guard.New(st, guard.Options{Name: "flaky", Open: func(context.Context) (idempotency.Store, error) { return st, nil },
		ProbeEvery: 20 * time.Millisecond, OnHealth: h.hook})
	t.Cleanup(func() { _ = s.Close() })
	if up, n := h.last(); !up || n != 1 || !s.Up() {
		t.Fatalf("at the start: told %v (%d times), Up %v; want up, once", up, n, s.Up())
	}

	st.fail.Store(true)
	if _, _, err := s.Get(t.Context(), guardKey); !errors.Is(err, errUnreachable) {
		t.Fatalf("get: %v", err)
	}
	if up, n := h.last(); up || n != 2 || s.Up() {
		t.Fatalf("after a failed call: told %v (%d times), Up %v; want down", up, n, s.Up())
	}
	// A lost lease is the store's answer: it is up.
	if err := s.Complete(t.Context(), guardKey, 42, idempotency.Answer{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeAccepted, BackendStatus: 200}, time.Hour); !errors.Is(err, idempotency.ErrLeaseLost) {
		t.Fatalf("complete without a claim: %v", err)
	}
	if !s.Up() {
		t.Fatal("a lost lease took the store for down")
	}
	waitUntil(t, "the probe to find the store down without a call", func() bool { up, _ := h.last(); return !up })
	st.fail.Store(false)
	waitUntil(t, "the probe to find the store up again", func() bool { up, _ := h.last(); return up })

	// Closed: the probe stops.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	gets := st.gets.Load()
	time.Sleep(100 * time.Millisecond)
	if st.gets.Load() != gets {
		t.Error("the probe went on after Close")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := 1; i < len(h.ups); i++ {
		if h.ups[i] == h.ups[i-1] {
			t.Errorf("OnHealth was told %v twice in a row: %v", h.ups[i], h.ups)
		}
	}
}

// A store that could not be opened at first is opened in the background;
// calls fail with ErrUnavailable meanwhile. Close ends the loop.
func TestConnectingOpensInTheBackground(t *testing.T) {
	st := newFlaky(t)
	var reachable atomic.Bool
	var attempts atomic.Int64
	open := func(context.Context) (idempotency.Store, error) {
		attempts.Add(1)
		if !reachable.Load() {
			return nil, errUnreachable
		}
		return st, nil
	}
	var h healthLog
	s := guard.Connecting(errUnreachable, guard.Options{Name: "later", Open: open, ReopenRetry: 10 * time.Millisecond, OnHealth: h.hook})
	t.Cleanup(func() { _ = s.Close() })
	_, _, err := s.Get(t.Context(), guardKey)
	if !errors.Is(err, guard.ErrUnavailable) || !errors.Is(err, errUnreachable) {
		t.Fatalf("get before the store is reached: %v, want ErrUnavailable and the cause", err)
	}
	if up, _ := h.last(); up {
		t.Fatal("told up before the store was reached")
	}
	waitUntil(t, "a few attempts", func() bool { return attempts.Load() >= 3 })
	reachable.Store(true)
	waitUntil(t, "the store to be reached", func() bool { _, err := s.Current(); return err == nil })
	if up, _ := h.last(); !up {
		t.Fatal("not told up once reached")
	}
	if _, _, err := s.Get(t.Context(), guardKey); err != nil {
		t.Fatalf("get once reached: %v", err)
	}

	// Closed while connecting: the loop ends, nothing is opened.
	reachable.Store(false)
	s2 := guard.Connecting(errUnreachable, guard.Options{Name: "never", Open: open, ReopenRetry: 10 * time.Millisecond})
	waitUntil(t, "an attempt", func() bool { return attempts.Load() > 0 })
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	n := attempts.Load()
	time.Sleep(50 * time.Millisecond)
	if attempts.Load() != n {
		t.Error("still connecting after Close")
	}
}

// A deferred store fails with its cause until OpenDeferred opens it; a
// failed OpenDeferred leaves it deferred.
func TestDeferredOpensOnDemand(t *testing.T) {
	st := newFlaky(t)
	errHeld := errors.New("the directory is held by another process")
	var free atomic.Bool
	open := func(context.Context) (idempotency.Store, error) {
		if !free.Load() {
			return nil, errHeld
		}
		return st, nil
	}
	s := guard.Deferred(errHeld, guard.Options{Name: "deferred", Open: open})
	t.Cleanup(func() { _ = s.Close() })
	if !s.IsDeferred() {
		t.Fatal("not deferred")
	}
	if _, _, err := s.Get(t.Context(), guardKey); !errors.Is(err, errHeld) {
		t.Fatalf("get while deferred: %v", err)
	}
	if opened, err := s.OpenDeferred(); opened || !errors.Is(err, errHeld) {
		t.Fatalf("OpenDeferred while held: %v %v", opened, err)
	}
	if !s.IsDeferred() {
		t.Fatal("a failed OpenDeferred ended the deferral")
	}
	free.Store(true)
	if opened, err := s.OpenDeferred(); !opened || err != nil {
		t.Fatalf("OpenDeferred once free: %v %v", opened, err)
	}
	if _, _, err := s.Get(t.Context(), guardKey); err != nil {
		t.Fatalf("get once opened: %v", err)
	}
	if opened, err := s.OpenDeferred(); opened || err != nil {
		t.Fatalf("OpenDeferred on an open store: %v %v, want nothing done", opened, err)
	}
}

// A duplicate waiting for a claim tracked in this process wakes when it
// is done, not at the next poll; one waiting past the deadline gets the
// record as it is.
func TestAwaitOutcome(t *testing.T) {
	st := newFlaky(t)
	s, _ := guarded(t, st, guard.DefaultCallTimeout, guard.DefaultMaxWorkers, nil)
	ctx := t.Context()
	c, err := s.Claim(ctx, guardKey, idempotency.Fingerprint{1}, time.Minute, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	finish := s.Track(guardKey)
	go func() {
		time.Sleep(50 * time.Millisecond)
		_ = s.Complete(ctx, guardKey, c.Token, idempotency.Answer{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeAccepted, BackendStatus: 200}, time.Hour)
		finish()
	}()
	gets := st.gets.Load()
	rec, found, err := s.AwaitOutcome(ctx, guardKey, time.Now().Add(10*time.Second))
	if err != nil || !found || rec.State != idempotency.StateDone {
		t.Fatalf("await: %+v %v %v", rec, found, err)
	}
	if n := st.gets.Load() - gets; n != 1 {
		t.Errorf("the tracked wait read the store %d times, want once (when woken)", n)
	}

	other := idempotency.Key{ClientID: "c", API: "addPaymentMethod", RequestID: "untracked"}
	if _, err := s.Claim(ctx, other, idempotency.Fingerprint{1}, time.Minute, time.Hour); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rec, found, err = s.AwaitOutcome(ctx, other, start.Add(100*time.Millisecond))
	if err != nil || !found || rec.State != idempotency.StateInFlight {
		t.Fatalf("await past the deadline: %+v %v %v", rec, found, err)
	}
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("returned after %v, before the deadline", took)
	}
}

// Context ends with the Store.
func TestContextEndsWithTheStore(t *testing.T) {
	s, _ := guarded(t, newFlaky(t), guard.DefaultCallTimeout, guard.DefaultMaxWorkers, nil)
	ctx, cancel := s.Context(t.Context())
	defer cancel()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the context outlived the Store")
	}
}

// waitingStore is an in-memory Badger store that waits for a replica as
// Redis with WAIT does: while missing is set, Complete applies the
// completion and fails with ErrUnconfirmed, and ProbeDurability fails the
// same way; claims and reads are answered.
type waitingStore struct {
	idempotency.Store
	missing atomic.Bool
	probes  atomic.Int64
}

var _ idempotency.DurabilityProber = (*waitingStore)(nil)

func (s *waitingStore) Complete(ctx context.Context, key idempotency.Key, token uint64, answer idempotency.Answer, retention time.Duration) error {
	if err := s.Store.Complete(ctx, key, token, answer, retention); err != nil {
		return err
	}
	if s.missing.Load() {
		return fmt.Errorf("0 of 1 replicas confirmed it: %w", idempotency.ErrUnconfirmed)
	}
	return nil
}

func (s *waitingStore) ProbeDurability(context.Context) error {
	s.probes.Add(1)
	if s.missing.Load() {
		return fmt.Errorf("probe: 0 of 1 replicas: %w", idempotency.ErrUnconfirmed)
	}
	return nil
}

// A store whose writes are not confirmed (a replica missing) is down: the
// probe writes and waits every period, so it shows without a notification
// and while reads that are answered keep coming (the inbox polls); the
// claims it still answers do not bring it back up, or store_up would
// alternate with every notification while each is answered U; a
// confirmed probe does, while claims go on.
func TestUnconfirmedDurabilityIsDown(t *testing.T) {
	mem, err := idempotency.OpenBadger(idempotency.BadgerOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mem.Close() })
	st := &waitingStore{Store: mem}
	var h healthLog
	const every = 20 * time.Millisecond
	s := guard.New(st, guard.Options{Name: "waiting", Open: func(context.Context) (idempotency.Store, error) { return st, nil },
		ProbeEvery: every, OnHealth: h.hook})
	t.Cleanup(func() { _ = s.Close() })
	if !s.Up() {
		t.Fatal("down at the start")
	}
	waitUntil(t, "an idle probe to write and wait", func() bool { return st.probes.Load() > 0 })
	if !s.Up() {
		t.Fatal("a confirmed probe took the store for down")
	}

	// The replica goes missing while reads keep coming, each answered.
	st.missing.Store(true)
	stopReads := make(chan struct{})
	readsDone := make(chan struct{})
	go func() {
		defer close(readsDone)
		for {
			select {
			case <-stopReads:
				return
			case <-time.After(every / 4):
			}
			_, _, _ = s.Get(t.Context(), guardKey)
		}
	}()
	waitUntil(t, "the probe to find the replica missing while answered reads go on", func() bool { return !s.Up() })
	close(stopReads)
	<-readsDone
	_, told := h.last()

	// Notifications keep coming: each claim is answered, each completion
	// is not confirmed. The health stays down throughout, also across
	// probe periods with calls in them.
	ctx := t.Context()
	for i := range 30 {
		k := guardKey
		k.RequestID = fmt.Sprintf("unconfirmed-%d", i)
		c, err := s.Claim(ctx, k, idempotency.Fingerprint{}, time.Minute, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if s.Up() {
			t.Fatalf("claim %d, answered, took the store for up while its writes are unconfirmed", i)
		}
		if err := s.Complete(ctx, k, c.Token, idempotency.Answer{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeAccepted, BackendStatus: 200}, time.Hour); !errors.Is(err, idempotency.ErrUnconfirmed) {
			t.Fatalf("complete %d: %v, want ErrUnconfirmed", i, err)
		}
		time.Sleep(every / 4)
	}
	if _, n := h.last(); n != told || s.Up() {
		t.Fatalf("OnHealth was told %d changes while every completion was unconfirmed, Up %v: %v", n-told, s.Up(), h.ups)
	}

	// The replica is back. Claims keep coming (every probe period has a
	// call), yet the probe runs and brings the store up.
	st.missing.Store(false)
	stop := make(chan struct{})
	claimed := make(chan struct{})
	go func() {
		defer close(claimed)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(every / 4):
			}
			k := guardKey
			k.RequestID = fmt.Sprintf("after-%d", i)
			_, _ = s.Claim(ctx, k, idempotency.Fingerprint{}, time.Minute, time.Hour)
		}
	}()
	waitUntil(t, "a confirmed probe to bring the store up while claims go on", func() bool { return s.Up() })
	close(stop)
	<-claimed
	h.mu.Lock()
	defer h.mu.Unlock()
	if want := []bool{true, false, true}; !slices.Equal(h.ups, want) {
		t.Errorf("OnHealth was told %v, want %v: up, down once the replica went missing, up once it was back", h.ups, want)
	}
}

// An unconfirmed write reported while a probe waits is not wiped out by
// the probe's success: the probe's wait says nothing of that write.
func TestUnconfirmedDuringProbe(t *testing.T) {
	mem, err := idempotency.OpenBadger(idempotency.BadgerOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mem.Close() })
	st := &slowProbeStore{waitingStore: waitingStore{Store: mem}, probing: make(chan struct{}), release: make(chan struct{}), quit: make(chan struct{})}
	t.Cleanup(func() { close(st.quit) })
	st.missing.Store(true)
	s := guard.New(st, guard.Options{Name: "slow probe", Open: func(context.Context) (idempotency.Store, error) { return st, nil },
		ProbeEvery: 20 * time.Millisecond})
	t.Cleanup(func() { _ = s.Close() })
	<-st.probing // the first probe is unconfirmed
	st.release <- struct{}{}
	waitUntil(t, "the store to go down", func() bool { return !s.Up() })

	// A probe starts and waits. Meanwhile a completion reports its write
	// unconfirmed; then the replica is back and the probe returns nil.
	<-st.probing
	c, err := s.Claim(t.Context(), guardKey, idempotency.Fingerprint{}, time.Minute, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(t.Context(), guardKey, c.Token, idempotency.Answer{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeAccepted, BackendStatus: 200}, time.Hour); !errors.Is(err, idempotency.ErrUnconfirmed) {
		t.Fatalf("complete: %v", err)
	}
	st.missing.Store(false)
	st.release <- struct{}{} // the probe returns nil
	<-st.probing             // and the next one has begun: the first one's outcome is recorded
	if s.Up() {
		t.Fatal("a probe that began before an unconfirmed write brought the store up")
	}
	st.release <- struct{}{}
	waitUntil(t, "the next probe to bring the store up", func() bool { return s.Up() })
}

// slowProbeStore is a waitingStore whose ProbeDurability announces itself
// on probing, returns only when release is sent to (or quit is closed),
// and then reads missing.
type slowProbeStore struct {
	waitingStore
	probing, release, quit chan struct{}
}

func (s *slowProbeStore) ProbeDurability(ctx context.Context) error {
	select {
	case s.probing <- struct{}{}:
	case <-s.quit:
		return idempotency.ErrClosed
	}
	select {
	case <-s.release:
	case <-s.quit:
		return idempotency.ErrClosed
	}
	if s.missing.Load() {
		return fmt.Errorf("probe: 0 of 1 replicas: %w", idempotency.ErrUnconfirmed)
	}
	return nil
}
