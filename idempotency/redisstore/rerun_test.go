package redisstore_test

import (
	"errors"
	"fmt"
	"hash/fnv"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore/redistest"
	"github.com/dwsnotify/dws_notify/idempotency/storetest"
)

// The queue's scripts run twice when Redis stalls (a slow fsync, a fork)
// for longer than the read timeout but less than the operation timeout:
// go-redis sends the call again after the read timeout, and the first
// attempt, already in Redis's socket buffer, runs when Redis resumes, its
// reply lost. Each script must recognise its own earlier run. The stall
// here is a SIGSTOP of a real redis-server for 750 ms against a 500 ms
// read timeout.

// stalledCall runs call while the server is stopped for longer than the
// store's read timeout, so that go-redis sends it a second time.
func stalledCall[T any](srv *redistest.Server, call func() T) T {
	srv.Pause()
	done := make(chan T, 1)
	go func() { done <- call() }()
	time.Sleep(750 * time.Millisecond)
	srv.Resume()
	return <-done
}

func rerunStore(t *testing.T) (*redistest.Server, *redisstore.Store) {
	srv := redistest.Start(t, redistest.Config{AppendOnly: true})
	return srv, open(t, srv, redisstore.Options{ReadTimeout: 500 * time.Millisecond, OperationTimeout: 3 * time.Second})
}

// queued claims and enqueues key under order key o.
func queued(t *testing.T, s *redisstore.Store, id, o string) idempotency.Key {
	t.Helper()
	k := storetest.K(id)
	cl, err := s.Claim(t.Context(), k, storetest.FP(1), time.Minute, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(t.Context(), k, cl.Token, idempotency.NewItem{OrderKey: o, Payload: []byte("p")}, idempotency.EnqueueOptions{Retention: time.Hour}); err != nil {
		t.Fatal(err)
	}
	return k
}

// A Lease run again reports the items its lost run leased, under the
// same tokens, instead of finding them busy: before, it returned nothing
// and left the item leased under a token nobody held until the lease
// ran out, its attempts counted twice.
func TestLeaseRunTwice(t *testing.T) {
	srv, s := rerunStore(t)
	ctx := t.Context()
	// An order key of shard 1: a fresh store's first Lease, which loads
	// the script and finds nothing, asks every shard from 0, so the next
	// one starts at shard 1 and its first script call is the one stalled.
	o := ""
	for i := 0; o == ""; i++ {
		h := fnv.New32a()
		h.Write(fmt.Appendf(nil, "o%d", i))
		if h.Sum32()%redisstore.QueueShards == 1 {
			o = fmt.Sprintf("o%d", i)
		}
	}
	if _, err := s.Lease(ctx, 1, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	k := queued(t, s, "lease-twice", o)
	type leased struct {
		items []idempotency.Item
		err   error
	}
	r := stalledCall(srv, func() leased {
		items, err := s.Lease(ctx, 1, 30*time.Second)
		return leased{items, err}
	})
	it, _, err := s.Item(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if r.err != nil || len(r.items) != 1 || r.items[0].Key != k {
		t.Fatalf("Lease = %d items, %v; want the one item (it is %v, attempts %d)", len(r.items), r.err, it.State, it.Attempts)
	}
	if it.State != idempotency.ItemLeased || it.LeaseToken != r.items[0].LeaseToken || it.Attempts != 1 {
		t.Fatalf("item %v under token %x, attempts %d; want leased under the token reported (%x), one attempt",
			it.State, it.LeaseToken, it.Attempts, r.items[0].LeaseToken)
	}
	// The holder can settle it.
	if err := s.Ack(ctx, r.items[0].Ref(), 200, time.Hour); err != nil {
		t.Fatalf("Ack: %v", err)
	}
}

// A settlement run again is the same settlement: ok, not ErrLeaseLost
// (the inbox took that for another deliverer's lease, and with a
// durability wait the ack was never waited for).
func TestSettleRunTwice(t *testing.T) {
	srv, s := rerunStore(t)
	ctx := t.Context()
	k := queued(t, s, "ack-twice", "o")
	items, err := s.Lease(ctx, 1, 30*time.Second)
	if err != nil || len(items) != 1 {
		t.Fatalf("Lease = %v, %v", items, err)
	}
	// Load the settle script (an Unlease), then lease again.
	if err := s.Unlease(ctx, items[0].Ref()); err != nil {
		t.Fatal(err)
	}
	if items, err = s.Lease(ctx, 1, 30*time.Second); err != nil || len(items) != 1 {
		t.Fatalf("Lease = %v, %v", items, err)
	}
	if err := stalledCall(srv, func() error { return s.Ack(ctx, items[0].Ref(), 200, time.Hour) }); err != nil {
		it, _, _ := s.Item(ctx, k)
		t.Fatalf("Ack = %v; the item is %v", err, it.State)
	}
	if it, _, _ := s.Item(ctx, k); it.State != idempotency.ItemDelivered {
		t.Fatalf("item %v after Ack, want delivered", it.State)
	}
}

// A lease that expired and was taken back by another Lease is no lease
// of its holder's any more: its late settlement is lost, not taken for a
// run of the same call again.
func TestSettleAfterTakeBackIsLost(t *testing.T) {
	_, s := rerunStore(t)
	ctx := t.Context()
	k := queued(t, s, "taken-back", "o")
	items, err := s.Lease(ctx, 1, 50*time.Millisecond)
	if err != nil || len(items) != 1 {
		t.Fatalf("Lease = %v, %v", items, err)
	}
	time.Sleep(100 * time.Millisecond)
	// The next Lease takes the expired lease back and, the item being
	// due, leases it again under a new token.
	again, err := s.Lease(ctx, 1, time.Minute)
	if err != nil || len(again) != 1 || again[0].Key != k || again[0].LeaseToken == items[0].LeaseToken {
		t.Fatalf("Lease after expiry = %v, %v", again, err)
	}
	if err := s.Ack(ctx, items[0].Ref(), 200, time.Hour); !errors.Is(err, idempotency.ErrLeaseLost) {
		t.Fatalf("late Ack under the taken-back token = %v, want ErrLeaseLost", err)
	}
	if err := s.Ack(ctx, again[0].Ref(), 200, time.Hour); err != nil {
		t.Fatalf("Ack of the new lease: %v", err)
	}
}
