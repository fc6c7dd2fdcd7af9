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
