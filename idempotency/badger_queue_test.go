package idempotency_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/storetest"
)

// TestQueueConformance runs the queue suite on Badger, on disk with the
// group commit and in memory.
func TestQueueConformance(t *testing.T) {
	for _, c := range []struct {
		name string
		opts func(t *testing.T) idempotency.BadgerOptions
	}{
		{"GroupCommit", func(t *testing.T) idempotency.BadgerOptions { return idempotency.BadgerOptions{Dir: t.TempDir()} }},
		{"InMemory", func(*testing.T) idempotency.BadgerOptions { return idempotency.BadgerOptions{InMemory: true} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			storetest.RunQueue(t, func(t *testing.T) storetest.QueueStore { return openBadger(t, c.opts(t)) }, nil)
		})
	}
}

// TestBadgerBoundExact: concurrent enqueues never pass MaxQueued on
// Badger (one process counts exactly): of many racing into a queue with
// room for a few, exactly that many are queued and the rest are refused.
func TestBadgerBoundExact(t *testing.T) {
	s := openBadger(t, idempotency.BadgerOptions{InMemory: true})
	ctx := t.Context()
	const max, racers, rounds = 3, 24, 20
	for round := range rounds {
		var wg sync.WaitGroup
		var ok, full atomic.Int64
		for i := range racers {
			wg.Go(func() {
				id := fmt.Sprintf("bx%d-%d", round, i)
				c, err := s.Claim(ctx, storetest.K(id), storetest.FP(1), time.Minute, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				err = s.Enqueue(ctx, storetest.K(id), c.Token, idempotency.NewItem{OrderKey: id, Payload: []byte("p")},
					idempotency.EnqueueOptions{Retention: time.Hour, MaxQueued: max})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, idempotency.ErrQueueFull):
					full.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if ok.Load() != max || full.Load() != racers-max {
			t.Fatalf("round %d: %d queued and %d refused with MaxQueued %d", round, ok.Load(), full.Load(), max)
		}
		st, err := s.QueueStats(ctx)
		if err != nil || st.Queued != max {
			t.Fatalf("round %d: stats %+v, %v", round, st, err)
		}
		// Drain for the next round.
		items, err := s.Lease(ctx, max, time.Minute)
		if err != nil || len(items) != max {
			t.Fatalf("round %d: leased %d, %v", round, len(items), err)
		}
		for _, it := range items {
			if err := s.Ack(ctx, it.Ref(), 200, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestLeaseScanFloor: Lease scans the due index from where the previous
// scan found its first entry, not from the start (BenchmarkDrain), and
// still finds every due item:
//   - an item queued behind a head that was retried for a while is due as
//     soon as the head is acknowledged, although its own due time is older
//     than anything the scans have looked at since;
//   - after the wall clock steps back, an item due at the earlier time is
//     found at once.
func TestLeaseScanFloor(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
	t0 := clock()
	s := openBadger(t, idempotency.BadgerOptions{InMemory: true, Now: clock})
	ctx := t.Context()
	enqueue := func(id, order string) {
		t.Helper()
		c, err := s.Claim(ctx, storetest.K(id), storetest.FP(1), time.Minute, time.Hour)
		if err == nil {
			err = s.Enqueue(ctx, storetest.K(id), c.Token, idempotency.NewItem{OrderKey: order, Payload: []byte("p")}, idempotency.EnqueueOptions{Retention: time.Hour})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	lease := func(want ...string) []idempotency.Item {
		t.Helper()
		items, err := s.Lease(ctx, 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range items {
			got = append(got, it.Key.RequestID)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("at %s leased %v, want %v", clock().Sub(t0), got, want)
		}
		return items
	}

	enqueue("a", "x")
	a := lease("a") // a full scan: the first
	if err := s.Retry(ctx, a[0].Ref(), 20*time.Second, 503, "backend down"); err != nil {
		t.Fatal(err)
	}
	set(t0.Add(time.Second))
	enqueue("b", "x") // behind a, due since t0+1s
	set(t0.Add(20 * time.Second))
	a = lease("a") // the retry
	set(t0.Add(25 * time.Second))
	if err := s.Ack(ctx, a[0].Ref(), 200, time.Hour); err != nil {
		t.Fatal(err)
	}
	set(t0.Add(26 * time.Second))
	b := lease("b")
	if err := s.Ack(ctx, b[0].Ref(), 200, time.Hour); err != nil {
		t.Fatal(err)
	}

	// The clock steps back 10 s: an item queued now is due at a time
	// before every scan so far.
	set(t0.Add(16 * time.Second))
	enqueue("c", "y")
	lease("c")
}
