package inbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore/redistest"
	"github.com/dwsnotify/dws_notify/notification"
)

// seedSecrets are strings of the seed samples that must never be readable
// in a store's files: card data, the customer reference and the body text
// that carries the requestId.
var seedSecrets = []string{
	"ALIPAYpwBScbbHru3DE3CY5gvUVo4rNiaOibl1UmIR+AHKh9CpZFl0Wv/Co7iGaHHSXKR4yWCloE4MwfmN48sP1+rSPQ==",
	"85246e15131d44feb36c80e1a1e39",
	"523945******1949",
	"3caa419cf22c6567047c15d82e3ad644d9cb539fb9da5ae37eeff80d2000d53d",
	"cardToken",
	`"requestId"`,
	"paymentMethodDetail",
	"300005538591",
	"216610000006358131449",
}

// enqueueSeeds enqueues the two seed samples through an inbox on s.
func enqueueSeeds(t *testing.T, s queueStore) *Inbox {
	t.Helper()
	ring, err := NewKeyring(mustKey(t))
	if err != nil {
		t.Fatal(err)
	}
	ib, err := New(Config{Queue: s, Keys: ring, OrderSecret: testSecret, Deliver: (&recorder{}).deliver})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, api := range []string{"addPaymentMethod", "removePaymentMethod"} {
		raw, ok := notification.Sample(api)
		if !ok {
			t.Fatalf("no sample for %s", api)
		}
		a, _ := notification.LookupAPI(api)
		res, err := a.Validate(raw, notification.Options{})
		if err != nil {
			t.Fatal(err)
		}
		k := idempotency.Key{ClientID: "2188120000000000", API: api, RequestID: res.Key}
		c, err := s.Claim(ctx, k, idempotency.Fingerprint(res.Fingerprint), time.Minute, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		msg := Message{Header: http.Header{"X-Dws-Request-Id": {res.Key}, "Content-Type": {"application/json"}}, Body: raw}
		if err := ib.Enqueue(ctx, k, c.Token, msg); err != nil {
			t.Fatal(err)
		}
	}
	return ib
}

// grepFiles fails t for every secret found in a file under dir.
func grepFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&fs.ModeSocket != 0 {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		for _, s := range seedSecrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds %q", path, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestNothingReadableAtRest enqueues the seed samples and greps every file
// of the Badger directory (while open and after Close), and the RDB dump
// and append-only files of a redis-server, for their card data, customer
// references and body text: nothing is found, while the same grep finds
// the plaintext in a control file.
func TestNothingReadableAtRest(t *testing.T) {
	// The control: the same strings are all in the plaintext samples.
	var plain []byte
	for _, api := range []string{"addPaymentMethod", "removePaymentMethod"} {
		raw, _ := notification.Sample(api)
		plain = append(plain, raw...)
	}
	for _, sec := range seedSecrets {
		if !bytes.Contains(plain, []byte(sec)) {
			t.Fatalf("the control grep does not find %q in the samples", sec)
		}
	}

	t.Run("Badger", func(t *testing.T) {
		dir := t.TempDir()
		s, err := idempotency.OpenBadger(idempotency.BadgerOptions{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		ib := enqueueSeeds(t, s)
		items := 0
		s.ScanItems(context.Background(), func(it idempotency.Item) bool { items++; return true })
		if items != 2 {
			t.Fatalf("%d items queued", items)
		}
		if n := grepFiles(t, dir); n == 0 {
			t.Fatal("no files to grep")
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		grepFiles(t, dir)
		// The payloads are there, sealed: reopened, the queue opens them.
		s, err = idempotency.OpenBadger(idempotency.BadgerOptions{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		leased, err := s.Lease(context.Background(), 5, time.Minute)
		if err != nil || len(leased) != 2 {
			t.Fatalf("after reopening: %d items, %v", len(leased), err)
		}
		for _, it := range leased {
			m, err := ib.Open(it)
			if err != nil || !bytes.Contains(m.Body, []byte(`"requestId"`)) {
				t.Fatalf("opening %v: %v", it.Key, err)
			}
		}
	})

	t.Run("Redis", func(t *testing.T) {
		srv := redistest.Start(t, redistest.Config{AppendOnly: true, AppendFsync: "always"})
		s, err := redisstore.Open(context.Background(), redisstore.Options{URL: srv.URL(0)})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		enqueueSeeds(t, s)
		c := srv.Client(0)
		defer c.Close()
		if err := c.Save(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(srv.Dir(), "dump.rdb")); err != nil {
			t.Fatalf("no RDB dump: %v", err)
		}
		if n := grepFiles(t, srv.Dir()); n < 2 {
			t.Fatalf("only %d files (want the dump and the append-only files)", n)
		}
		// And every value as the server returns it.
		keys, err := c.Keys(context.Background(), "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			d, err := c.Dump(context.Background(), k).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, sec := range seedSecrets {
				if bytes.Contains([]byte(k+d), []byte(sec)) {
					t.Errorf("key %q holds %q", k, sec)
				}
			}
		}
	})
}

// TestRestartKeepsQueue: what Enqueue acknowledged is delivered after the
// store is closed and reopened (the gateway restarted), in order.
func TestRestartKeepsQueue(t *testing.T) {
	clock := newFakeClock()
	dir := t.TempDir()
	s, err := idempotency.OpenBadger(idempotency.BadgerOptions{Dir: dir, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, clock: clock, store: s, rec: &recorder{}}
	ring, _ := NewKeyring(mustKey(t))
	h.ib, _ = New(Config{Queue: s, Keys: ring, OrderSecret: testSecret, Deliver: h.rec.deliver, Clock: clock})
	for i := range 20 {
		h.enqueue(fmt.Sprintf("r%02d", i), fmt.Sprintf("cust-%d", i%3))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	h.store = openBadger(t, clock, dir)
	h.ib, _ = New(Config{Queue: h.store, Keys: ring, OrderSecret: testSecret, Deliver: h.rec.deliver, Clock: clock, Concurrency: 3})
	h.start()
	h.eventually("all 20 delivered", func() bool { return len(h.rec.ids()) == 20 })
	last := map[string]string{}
	for _, d := range h.rec.got {
		c := OrderKey(testSecret, d.Key.ClientID, d.Key.API, d.Key.RequestID, d.Body)
		if prev := last[c]; prev >= d.Key.RequestID {
			t.Errorf("%s delivered after %s of the same customer", d.Key.RequestID, prev)
		}
		last[c] = d.Key.RequestID
	}
}

// TestFleetOnRedis: two inboxes (two gateways) on one Redis deliver 60
// notifications of 20 customers with a backend that fails every first
// try: each is delivered once, each customer's in arrival order. Then a
// gateway hangs mid-delivery (as if killed): after its lease the other
// takes the notification over, and the hung one's late result is refused.
func TestFleetOnRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{AppendOnly: true})
	ring, _ := NewKeyring(mustKey(t))
	prefix := fmt.Sprintf("fleet-%d:", time.Now().UnixNano())
	var mu sync.Mutex
	tries := map[string]int{}
	var delivered []string
	backend := func(ctx context.Context, d Delivery) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		tries[d.Key.RequestID]++
		if tries[d.Key.RequestID] == 1 {
			return 503, nil
		}
		delivered = append(delivered, d.Key.RequestID)
		return 200, nil
	}
	var stores [2]*redisstore.Store
	var ibs [2]*Inbox
	var hang sync.Mutex // held by the hung gateway's delivery
	released := make(chan struct{})
	var lateErr []error
	for i := range stores {
		s, err := redisstore.Open(context.Background(), redisstore.Options{URL: srv.URL(0), Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
		deliver := backend
		if i == 0 {
			deliver = func(ctx context.Context, d Delivery) (int, error) {
				if d.Key.RequestID == "stuck" {
					hang.Lock() // blocks until the test lets go, ignoring ctx
					//lint:ignore SA2001 the lock is only waited for
					hang.Unlock()
					<-released
					return 200, nil
				}
				return backend(ctx, d)
			}
		}
		ibs[i], err = New(Config{Queue: s, Keys: ring, OrderSecret: testSecret, Deliver: deliver, FirstBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
			DeliverTimeout: 100 * time.Millisecond, Lease: 400 * time.Millisecond, PollInterval: 10 * time.Millisecond, Concurrency: 4,
			Hooks: Hooks{Tried: func(a Attempt) {
				if a.Key.RequestID == "stuck" && a.StoreErr != nil {
					mu.Lock()
					lateErr = append(lateErr, a.StoreErr)
					mu.Unlock()
				}
			}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	enqueue := func(id, customer string) {
		k := idempotency.Key{ClientID: "2188120000000000", API: "addPaymentMethod", RequestID: id}
		c, err := stores[0].Claim(context.Background(), k, idempotency.Fingerprint{2}, time.Minute, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := ibs[0].Enqueue(context.Background(), k, c.Token, Message{Body: body(id, customer)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		for c := range 20 {
			enqueue(fmt.Sprintf("c%02d-%d", c, i), fmt.Sprintf("cust-%02d", c))
		}
	}
	for _, ib := range ibs {
		if err := ib.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ib.Stop(context.Background()) })
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("60 deliveries", func() bool { mu.Lock(); defer mu.Unlock(); return len(delivered) == 60 })
	mu.Lock()
	seen := map[string]bool{}
	last := map[string]int{}
	for _, id := range delivered {
		if seen[id] {
			t.Errorf("%s delivered twice", id)
		}
		seen[id] = true
		var c, i int
		fmt.Sscanf(id, "c%02d-%d", &c, &i)
		if prev, ok := last[fmt.Sprint(c)]; ok && prev >= i {
			t.Errorf("customer %d: item %d delivered after item %d", c, i, prev)
		}
		last[fmt.Sprint(c)] = i
	}
	mu.Unlock()

	// Takeover: only gateway 0 runs while "stuck" is enqueued, so it takes
	// it and hangs.
	ibs[1].Stop(context.Background())
	hang.Lock()
	enqueue("stuck", "dora")
	enqueue("after-stuck", "dora")
	waitFor("gateway 0 holding the stuck delivery", func() bool {
		it, ok, _ := stores[0].Item(context.Background(), idempotency.Key{ClientID: "2188120000000000", API: "addPaymentMethod", RequestID: "stuck"})
		return ok && it.State == idempotency.ItemLeased
	})
	held, _, _ := stores[1].Item(context.Background(), idempotency.Key{ClientID: "2188120000000000", API: "addPaymentMethod", RequestID: "stuck"})
	if err := ibs[1].Start(); err != nil {
		t.Fatal(err)
	}
	waitFor("the takeover's delivery of stuck and after-stuck", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return tries["after-stuck"] == 2
	})
	if time.Now().Before(held.LeaseExpiry) {
		t.Fatalf("taken over before the lease ended (%v)", held.LeaseExpiry)
	}
	mu.Lock()
	if tries["stuck"] != 2 {
		t.Errorf("the taking-over gateway tried stuck %d times, want 2 (a 503, then delivered)", tries["stuck"])
	}
	mu.Unlock()
	hang.Unlock()
	close(released)
	waitFor("the hung gateway's late result", func() bool { mu.Lock(); defer mu.Unlock(); return len(lateErr) >= 1 })
	mu.Lock()
	defer mu.Unlock()
	for _, err := range lateErr {
		if !errors.Is(err, idempotency.ErrLeaseLost) {
			t.Fatalf("the hung gateway's late Ack = %v, want ErrLeaseLost", err)
		}
	}
}
