package inbox

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// fakeClock is a manual clock: After fires when Advance passes its time.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{c.now.Add(d), ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

// queueStore is a store with the queue.
type queueStore interface {
	idempotency.Store
	idempotency.Queue
}

// recorder is a fake backend: it answers each delivery with the status
// its script gives for the request id and attempt, and records the
// deliveries.
type recorder struct {
	mu     sync.Mutex
	got    []Delivery
	answer func(d Delivery) (int, error)
}

func (r *recorder) deliver(ctx context.Context, d Delivery) (int, error) {
	r.mu.Lock()
	r.got = append(r.got, d)
	answer := r.answer
	r.mu.Unlock()
	if answer == nil {
		return 200, nil
	}
	return answer(d)
}

// ids returns the request ids delivered so far, in order.
func (r *recorder) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, d := range r.got {
		out = append(out, d.Key.RequestID)
	}
	return out
}

type harness struct {
	t     *testing.T
	clock *fakeClock
	store queueStore
	ib    *Inbox
	rec   *recorder
	mu    sync.Mutex
	tries []Attempt
}

func openBadger(t *testing.T, clock *fakeClock, dir string) *idempotency.BadgerStore {
	t.Helper()
	opts := idempotency.BadgerOptions{Dir: dir, Now: clock.Now}
	if dir == "" {
		opts = idempotency.BadgerOptions{InMemory: true, Now: clock.Now}
	}
	s, err := idempotency.OpenBadger(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newHarness makes an inbox on a Badger store running on a fake clock.
func newHarness(t *testing.T, cfg Config) *harness {
	h := &harness{t: t, clock: newFakeClock(), rec: &recorder{}}
	h.store = openBadger(t, h.clock, "")
	if cfg.Keys == nil {
		ring, err := NewKeyring(mustKey(t))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Keys = ring
	}
	cfg.Queue = h.store
	cfg.Deliver = h.rec.deliver
	cfg.OrderSecret = testSecret
	cfg.Clock = h.clock
	if cfg.Rand == nil {
		cfg.Rand = func() float64 { return 0 }
	}
	cfg.Hooks.Tried = func(a Attempt) {
		h.mu.Lock()
		h.tries = append(h.tries, a)
		h.mu.Unlock()
	}
	ib, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.ib = ib
	return h
}

func body(requestID, customer string) []byte {
	return []byte(fmt.Sprintf(`{"requestId":"%s","referenceCustomerId":"%s","paymentMethodDetail":{"card":{"cardToken":"tok-%s"}}}`, requestID, customer, requestID))
}

// enqueue claims requestID and enqueues it through the inbox.
func (h *harness) enqueue(requestID, customer string) {
	h.t.Helper()
	if err := h.tryEnqueue(requestID, customer); err != nil {
		h.t.Fatalf("Enqueue(%s): %v", requestID, err)
	}
}

func (h *harness) tryEnqueue(requestID, customer string) error {
	k := idempotency.Key{ClientID: "2188120000000000", API: "addPaymentMethod", RequestID: requestID}
	c, err := h.store.Claim(context.Background(), k, idempotency.Fingerprint{1}, time.Minute, time.Hour)
	if err != nil || c.Status != idempotency.Claimed {
		h.t.Fatalf("Claim(%s) = %v, %v", requestID, c.Status, err)
	}
	return h.ib.Enqueue(context.Background(), k, c.Token, Message{
		Header: http.Header{"X-Dws-Request-Id": {requestID}, "Content-Type": {"application/json; charset=UTF-8"}},
		Body:   body(requestID, customer),
	})
}

func (h *harness) start() {
	h.t.Helper()
	if err := h.ib.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { h.ib.Stop(context.Background()) })
}

// eventually waits (real time) for cond, waking the workers meanwhile.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s; delivered %v", what, h.rec.ids())
		}
		h.ib.Notify()
		time.Sleep(2 * time.Millisecond)
	}
}

func (h *harness) item(requestID string) idempotency.Item {
	h.t.Helper()
	it, ok, err := h.store.Item(context.Background(), idempotency.Key{ClientID: "2188120000000000", API: "addPaymentMethod", RequestID: requestID})
	if err != nil || !ok {
		h.t.Fatalf("Item(%s): %v %v", requestID, ok, err)
	}
	return it
}

func (h *harness) state(requestID string) idempotency.ItemState { return h.item(requestID).State }

func (h *harness) attempts() []Attempt {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.tries)
}

func TestDelivers(t *testing.T) {
	h := newHarness(t, Config{})
	h.enqueue("n1", "cust-1")
	h.enqueue("n2", "cust-2")
	h.start()
	h.eventually("both delivered", func() bool {
		return h.state("n1") == idempotency.ItemDelivered && h.state("n2") == idempotency.ItemDelivered
	})
	for _, d := range h.rec.got {
		if string(d.Body) != string(body(d.Key.RequestID, map[string]string{"n1": "cust-1", "n2": "cust-2"}[d.Key.RequestID])) ||
			d.Header.Get("X-Dws-Request-Id") != d.Key.RequestID || d.Attempt != 1 {
			t.Errorf("delivery %+v", d)
		}
	}
	if it := h.item("n1"); it.HasPayload || it.LastStatus != 200 {
		t.Errorf("delivered item %+v", it)
	}
	for _, a := range h.attempts() {
		if a.Result != Delivered || a.Status != 200 || a.StoreErr != nil {
			t.Errorf("attempt %+v", a)
		}
	}
	// An item enqueued while running is delivered without waiting for the
	// poll: Enqueue wakes the workers.
	h.enqueue("n3", "cust-1")
	h.eventually("n3 delivered", func() bool { return h.state("n3") == idempotency.ItemDelivered })
}

func TestBusinessRejectNotRetried(t *testing.T) {
	h := newHarness(t, Config{BusinessReject: func(s int) bool { return s == 409 }})
	h.rec.answer = func(Delivery) (int, error) { return 409, nil }
	h.enqueue("rej", "c")
	h.start()
	h.eventually("rejected", func() bool { return h.state("rej") == idempotency.ItemBusinessRejected })
	h.clock.Advance(time.Hour)
	h.ib.Notify()
	time.Sleep(20 * time.Millisecond)
	if n := len(h.rec.ids()); n != 1 {
		t.Fatalf("a business rejection was delivered %d times", n)
	}
	if it := h.item("rej"); it.HasPayload || it.LastStatus != 409 {
		t.Fatalf("rejected item %+v", it)
	}
}

// TestRetryBackoffAndOrder: a customer's add fails (503, then a transport
// error, then a timeout) and is retried with growing pauses; the same
// customer's remove waits until the add is delivered, while another
// customer's notification goes through at once.
func TestRetryBackoffAndOrder(t *testing.T) {
	h := newHarness(t, Config{FirstBackoff: time.Second, MaxBackoff: 3 * time.Second, DeliverTimeout: 50 * time.Millisecond, Lease: time.Minute})
	fails := 0
	h.rec.answer = func(d Delivery) (int, error) {
		if d.Key.RequestID != "add" || fails == 3 {
			return 200, nil
		}
		fails++
		switch fails {
		case 1:
			return 503, nil
		case 2:
			return 0, errors.New("connection refused")
		}
		time.Sleep(100 * time.Millisecond) // past DeliverTimeout
		return 0, errors.New("context deadline exceeded")
	}
	h.enqueue("add", "alice")
	h.enqueue("remove", "alice")
	h.enqueue("bob", "bob")
	h.start()
	wantPauses := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}
	wantReasons := []string{"status", "error", "timeout"}
	for i := range 3 {
		var last Attempt
		h.eventually(fmt.Sprintf("failed try %d", i+1), func() bool {
			n := 0
			for _, a := range h.attempts() {
				if a.Key.RequestID == "add" {
					n++
					last = a
				}
			}
			return n == i+1
		})
		if last.Result != Retrying || last.RetryIn != wantPauses[i] || last.Reason != wantReasons[i] || last.Attempt != i+1 {
			t.Fatalf("try %d: %+v, want a retry in %v for %q", i+1, last, wantPauses[i], wantReasons[i])
		}
		if it := h.item("add"); it.State != idempotency.ItemPending || !it.DueAt.Equal(h.clock.Now().Add(wantPauses[i])) {
			t.Fatalf("after try %d the add is %v due %v", i+1, it.State, it.DueAt)
		}
		if i == 0 {
			h.eventually("bob delivered", func() bool { return h.state("bob") == idempotency.ItemDelivered })
		}
		if h.state("remove") != idempotency.ItemPending || slices.Contains(h.rec.ids(), "remove") {
			t.Fatalf("the remove was delivered while the add was retried: %v", h.rec.ids())
		}
		// Not due a moment before the pause ends.
		h.clock.Advance(wantPauses[i] - time.Millisecond)
		h.ib.Notify()
		time.Sleep(10 * time.Millisecond)
		if h.state("add") != idempotency.ItemPending {
			t.Fatalf("the add was tried before its pause ended")
		}
		h.clock.Advance(time.Millisecond)
	}
	h.eventually("remove delivered", func() bool { return h.state("remove") == idempotency.ItemDelivered })
	ids := h.rec.ids()
	lastAdd := -1
	for i, id := range ids {
		if id == "add" {
			lastAdd = i
		}
	}
	if lastAdd > slices.Index(ids, "remove") {
		t.Fatalf("the remove reached the backend before the add's last try: %v", ids)
	}
}

func TestBackoffJitter(t *testing.T) {
	ib, err := New(Config{Queue: fakeQueue{}, Keys: &Keyring{}, Deliver: (&recorder{}).deliver, OrderSecret: testSecret, FirstBackoff: time.Second, MaxBackoff: 15 * time.Minute, Rand: func() float64 { return 0.999999 }})
	if err != nil {
		t.Fatal(err)
	}
	for n, want := range map[int]time.Duration{1: time.Second, 2: time.Second, 3: 2 * time.Second, 11: 450 * time.Second, 30: 450 * time.Second} {
		if got := ib.Backoff(n); got < want || got > want+time.Millisecond {
			t.Errorf("Backoff(%d) with the most jitter = %v, want %v", n, got, want)
		}
	}
	ib.cfg.Rand = func() float64 { return 0 }
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 10: 512 * time.Second, 11: 15 * time.Minute, 64: 15 * time.Minute} {
		if got := ib.Backoff(n); got != want {
			t.Errorf("Backoff(%d) without jitter = %v, want %v", n, got, want)
		}
	}
}

// fakeQueue satisfies the interface for tests that never reach the store.
type fakeQueue struct{ idempotency.Queue }

// TestDeadLetterAtMaxAge: a notification the backend refuses for good is
// tried until its maximum age (the last try exactly at it), then
// dead-lettered with its payload kept; the next notification of the same
// customer is delivered then. Redelivered, it is delivered once the
// backend takes it.
func TestDeadLetterAtMaxAge(t *testing.T) {
	h := newHarness(t, Config{MaxAge: time.Hour, FirstBackoff: time.Minute, MaxBackoff: 20 * time.Minute})
	refuse := true
	var mu sync.Mutex
	h.rec.answer = func(d Delivery) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if d.Key.RequestID == "doomed" && refuse {
			return 500, nil
		}
		return 200, nil
	}
	h.enqueue("doomed", "carol")
	h.enqueue("next", "carol")
	start := h.clock.Now()
	h.start()
	for tries := 1; ; tries++ {
		h.eventually(fmt.Sprintf("try %d", tries), func() bool { return len(h.attempts()) >= tries })
		a := h.attempts()[tries-1]
		if a.Result == Dead {
			if !h.clock.Now().Equal(start.Add(time.Hour)) || a.Status != 500 {
				t.Fatalf("dead-lettered at %v (status %d), want at the maximum age %v", h.clock.Now().Sub(start), a.Status, time.Hour)
			}
			break
		}
		if a.Result != Retrying || tries > 20 {
			t.Fatalf("try %d: %+v", tries, a)
		}
		h.clock.Advance(a.RetryIn)
	}
	it := h.item("doomed")
	if it.State != idempotency.ItemDead || !it.HasPayload || it.LastStatus != 500 || it.LastReason != "status" {
		t.Fatalf("dead letter %+v", it)
	}
	h.eventually("next delivered", func() bool { return h.state("next") == idempotency.ItemDelivered })
	st, err := h.store.QueueStats(context.Background())
	if err != nil || st.Dead != 1 || st.Queued != 0 {
		t.Fatalf("stats %+v %v", st, err)
	}
	mu.Lock()
	refuse = false
	mu.Unlock()
	if err := h.store.Redeliver(context.Background(), it.Key); err != nil {
		t.Fatal(err)
	}
	h.eventually("redelivered", func() bool { return h.state("doomed") == idempotency.ItemDelivered })
}

// TestConcurrencyBoundAndStop: never more deliveries at once than
// Concurrency; Stop waits for the tries under way until its context ends,
// then cancels them, and their items are due again at once.
func TestConcurrencyBoundAndStop(t *testing.T) {
	h := newHarness(t, Config{Concurrency: 2, DeliverTimeout: time.Hour, Lease: 2 * time.Hour})
	var mu sync.Mutex
	running, peak := 0, 0
	release := make(chan struct{})
	h.rec.answer = func(d Delivery) (int, error) {
		mu.Lock()
		running++
		peak = max(peak, running)
		mu.Unlock()
		defer func() { mu.Lock(); running--; mu.Unlock() }()
		<-release
		return 200, nil
	}
	for i := range 5 {
		h.enqueue(fmt.Sprintf("s%d", i), fmt.Sprintf("c%d", i))
	}
	h.start()
	h.eventually("two deliveries under way", func() bool { mu.Lock(); defer mu.Unlock(); return running == 2 })
	time.Sleep(20 * time.Millisecond)
	if len(h.rec.ids()) != 2 {
		t.Fatalf("started %v with two workers busy", h.rec.ids())
	}
	close(release)
	h.eventually("all delivered", func() bool {
		for i := range 5 {
			if h.state(fmt.Sprintf("s%d", i)) != idempotency.ItemDelivered {
				return false
			}
		}
		return true
	})
	h.ib.Stop(context.Background())

	hang := newHarness(t, Config{Concurrency: 2, DeliverTimeout: time.Hour, Lease: 2 * time.Hour})
	started := make(chan string, 10)
	hang.rec.answer = nil
	hang.ib.cfg.Deliver = func(ctx context.Context, d Delivery) (int, error) {
		started <- d.Key.RequestID
		<-ctx.Done()
		return 0, ctx.Err()
	}
	hang.enqueue("h1", "x")
	hang.enqueue("h2", "y")
	hang.start()
	<-started
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	stopped := make(chan struct{})
	go func() { hang.ib.Stop(ctx); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return after its context ended")
	}
	for _, id := range []string{"h1", "h2"} {
		it := hang.item(id)
		if it.State != idempotency.ItemPending || it.LastReason != "stopped" || it.DueAt.After(hang.clock.Now()) {
			t.Errorf("%s after Stop: %+v", id, it)
		}
	}
	for _, a := range hang.attempts() {
		if a.Result != Stopped || a.StoreErr != nil {
			t.Errorf("attempt %+v", a)
		}
	}
	if peak > 2 {
		t.Fatalf("%d deliveries at once with Concurrency 2", peak)
	}
	// Started again, the items go out without waiting for a lease.
	hang.ib.cfg.Deliver = hang.rec.deliver
	hang.start()
	hang.eventually("delivered after the restart", func() bool {
		return hang.state("h1") == idempotency.ItemDelivered && hang.state("h2") == idempotency.ItemDelivered
	})
}

// TestStopKeepsAnsweredTry: a try that the stop's cancellation cut short
// but that returned the backend's 2xx is delivered, not given back to be
// delivered again.
func TestStopKeepsAnsweredTry(t *testing.T) {
	h := newHarness(t, Config{DeliverTimeout: time.Hour, Lease: 2 * time.Hour})
	started := make(chan struct{})
	h.ib.cfg.Deliver = func(ctx context.Context, d Delivery) (int, error) {
		close(started)
		<-ctx.Done()
		return 200, nil // the backend had taken it when the stop came
	}
	h.enqueue("answered", "a")
	h.start()
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h.ib.Stop(ctx)
	if it := h.item("answered"); it.State != idempotency.ItemDelivered || it.LastStatus != 200 {
		t.Fatalf("a try answered 200 during Stop left the item %v (reason %q): it would be delivered again", it.State, it.LastReason)
	}
	if a := h.attempts(); len(a) != 1 || a[0].Result != Delivered {
		t.Fatalf("attempts %+v", a)
	}
}

// TestUndecryptable: a payload sealed with a key the ring lacks is
// retried (never delivered garbled); with the key back it goes out.
func TestUndecryptable(t *testing.T) {
	oldKey := mustKey(t)
	oldRing, _ := NewKeyring(oldKey)
	h := newHarness(t, Config{Keys: oldRing, FirstBackoff: time.Second, MaxBackoff: time.Second})
	h.enqueue("enc", "d")
	newKey := mustKey(t)
	newRing, _ := NewKeyring(newKey)
	h.ib.cfg.Keys = newRing
	h.start()
	h.eventually("a failed try", func() bool { return len(h.attempts()) >= 1 })
	if a := h.attempts()[0]; a.Result != Undecryptable || a.Reason != "decrypt" || len(h.rec.ids()) != 0 {
		t.Fatalf("attempt %+v, deliveries %v", a, h.rec.ids())
	}
	h.ib.Stop(context.Background())
	rotated, _ := NewKeyring(newKey, oldKey)
	h.ib.cfg.Keys = rotated
	h.start()
	h.clock.Advance(time.Second)
	h.eventually("delivered with the key back", func() bool { return h.state("enc") == idempotency.ItemDelivered })
}

func TestBound(t *testing.T) {
	h := newHarness(t, Config{MaxQueued: 2})
	h.enqueue("b1", "x")
	h.enqueue("b2", "y")
	if err := h.tryEnqueue("b3", "z"); !errors.Is(err, idempotency.ErrQueueFull) {
		t.Fatalf("third enqueue = %v, want ErrQueueFull", err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	ring, _ := NewKeyring(mustKey(t))
	ok := Config{Queue: fakeQueue{}, Keys: ring, Deliver: (&recorder{}).deliver, OrderSecret: testSecret}
	for name, mod := range map[string]func(*Config){
		"no queue":           func(c *Config) { c.Queue = nil },
		"backoff order":      func(c *Config) { c.FirstBackoff, c.MaxBackoff = time.Minute, time.Second },
		"short lease":        func(c *Config) { c.DeliverTimeout, c.Lease = time.Minute, time.Second },
		"dead retention":     func(c *Config) { c.Retention, c.DeadRetention = time.Hour, 2*time.Hour },
		"concurrency":        func(c *Config) { c.Concurrency = -1 },
		"negative bound":     func(c *Config) { c.MaxQueued = -1 },
		"no order secret":    func(c *Config) { c.OrderSecret = nil },
		"short order secret": func(c *Config) { c.OrderSecret = testSecret[:MinOrderSecretLen-1] },
	} {
		c := ok
		mod(&c)
		if _, err := New(c); !errors.Is(err, idempotency.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := New(ok); err != nil {
		t.Fatal(err)
	}
}

// TestLogKeyField: the inbox's own lines name an item's key with the
// caller's KeyField (an Antom key is logged as key, not as a requestId),
// and as request_id without one.
func TestLogKeyField(t *testing.T) {
	for _, tc := range []struct {
		name     string
		keyField func(idempotency.Key) zap.Field
		want     string
	}{
		{"default", nil, "request_id"},
		{"the caller's", func(k idempotency.Key) zap.Field { return zap.String("key", k.RequestID) }, "key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zap.DebugLevel)
			oldRing, _ := NewKeyring(mustKey(t))
			h := newHarness(t, Config{Keys: oldRing, FirstBackoff: time.Second, MaxBackoff: time.Second, Logger: zap.New(core), KeyField: tc.keyField})
			h.enqueue("enc-log", "d")
			newRing, _ := NewKeyring(mustKey(t))
			h.ib.cfg.Keys = newRing
			h.start()
			h.eventually("a failed try", func() bool { return len(h.attempts()) >= 1 })
			lines := logs.FilterMessageSnippet("does not open").All()
			if len(lines) == 0 {
				t.Fatal("no line for the payload that does not open")
			}
			fields := lines[0].ContextMap()
			if fields[tc.want] != "enc-log" {
				t.Errorf("fields %v, want %s=enc-log", fields, tc.want)
			}
			for _, other := range []string{"request_id", "key"} {
				if _, ok := fields[other]; ok && other != tc.want {
					t.Errorf("fields %v also name the key %s", fields, other)
				}
			}
		})
	}
}
