package guard_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/guard"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore/redistest"
	"github.com/dwsnotify/dws_notify/idempotency/storetest"
)

// The guard is a Queue like the stores it guards: the queue's conformance
// suite passes through it, over Badger and over Redis (with a second
// guarded store on the same prefix as the fleet's other gateway).

func TestQueueConformanceBadger(t *testing.T) {
	storetest.RunQueue(t, func(t *testing.T) storetest.QueueStore { return guardedBadger(t) }, nil)
}

func TestQueueConformanceRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{AppendOnly: true})
	var n atomic.Int64
	storetest.RunQueue(t,
		func(t *testing.T) storetest.QueueStore { return guardedRedis(t, srv, fmt.Sprintf("gq:%d:", n.Add(1))) },
		func(t *testing.T, s storetest.QueueStore) storetest.QueueStore {
			st, err := s.(*guard.Store).Current()
			if err != nil {
				t.Fatal(err)
			}
			return guardedRedis(t, srv, st.(*redisstore.Store).Prefix())
		})
}

// failingQueue is a queue whose Lease fails stop (idempotency.ErrFailed),
// as a Badger store that cannot rotate its memtable does.
type failingQueue struct {
	stallStore
	leases atomic.Int64
	fail   bool
}

func (q *failingQueue) Enqueue(context.Context, idempotency.Key, uint64, idempotency.NewItem, idempotency.EnqueueOptions) error {
	return nil
}

func (q *failingQueue) Lease(context.Context, int, time.Duration) ([]idempotency.Item, error) {
	q.leases.Add(1)
	if q.fail {
		return nil, fmt.Errorf("lease: %w", idempotency.ErrFailed)
	}
	return []idempotency.Item{{Key: guardKey}}, nil
}

func (q *failingQueue) Ack(context.Context, idempotency.ItemRef, int, time.Duration) error {
	return nil
}
func (q *failingQueue) Reject(context.Context, idempotency.ItemRef, int, time.Duration) error {
	return nil
}
func (q *failingQueue) Retry(context.Context, idempotency.ItemRef, time.Duration, int, string) error {
	return nil
}
func (q *failingQueue) DeadLetter(context.Context, idempotency.ItemRef, int, string, time.Duration, time.Duration) error {
	return nil
}
func (q *failingQueue) Unlease(context.Context, idempotency.ItemRef) error           { return nil }
func (q *failingQueue) Redeliver(context.Context, idempotency.Key, ...string) error  { return nil }
func (q *failingQueue) RedeliverDead(context.Context) (int, error)                   { return 0, nil }
func (q *failingQueue) ScanItems(context.Context, func(idempotency.Item) bool) error { return nil }
func (q *failingQueue) Item(context.Context, idempotency.Key) (idempotency.Item, bool, error) {
	return idempotency.Item{}, false, nil
}
func (q *failingQueue) QueueStats(context.Context) (idempotency.QueueStats, error) {
	return idempotency.QueueStats{}, nil
}

// A queue call that fails stop takes the store out of service and has it
// reopened, and the next queue call reaches the reopened store: a user of
// the queue (the inbox) holds the guard, never the store that failed.
func TestQueueFailureReopensTheStore(t *testing.T) {
	broken := &failingQueue{fail: true}
	fresh := &failingQueue{}
	s, _ := guarded(t, broken, 10*time.Second, guard.DefaultMaxWorkers, func(context.Context) (idempotency.Store, error) {
		return fresh, nil
	})
	ctx := context.Background()
	if _, err := s.Lease(ctx, 1, time.Minute); !errors.Is(err, idempotency.ErrFailed) {
		t.Fatalf("lease on a failing store: %v, want ErrFailed", err)
	}
	waitUntil(t, "the store to be reopened", func() bool { st, err := s.Current(); return err == nil && st == fresh })
	if !broken.closed.Load() {
		t.Error("the failed store was not closed")
	}
	items, err := s.Lease(ctx, 1, time.Minute)
	if err != nil || len(items) != 1 {
		t.Fatalf("lease after reopening: %v, %v", items, err)
	}
	if broken.leases.Load() != 1 || fresh.leases.Load() != 1 {
		t.Errorf("leases: %d on the failed store, %d on the reopened one; want 1 and 1", broken.leases.Load(), fresh.leases.Load())
	}
}

// A store without a queue answers every queue call with ErrNoQueue.
func TestQueueCallsOnAStoreWithoutQueue(t *testing.T) {
	s, _ := guarded(t, &stallStore{}, time.Second, 8, nil)
	if err := s.Enqueue(context.Background(), guardKey, 1, idempotency.NewItem{}, idempotency.EnqueueOptions{}); !errors.Is(err, guard.ErrNoQueue) {
		t.Fatalf("enqueue: %v, want ErrNoQueue", err)
	}
	if err := s.ScanItems(context.Background(), func(idempotency.Item) bool { return true }); !errors.Is(err, guard.ErrNoQueue) {
		t.Fatalf("scan items: %v, want ErrNoQueue", err)
	}
}
