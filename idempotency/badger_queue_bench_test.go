package idempotency_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/storetest"
)

// BenchmarkClaimEnqueue: claim + durable (group-commit) enqueue of a
// 2 KiB payload (a sealed notification is about 1.3 KiB) at concurrency 1
// and 32: the store's share of answering S in acknowledge on_receipt,
// beside BenchmarkClaimComplete's for on_delivery.
func BenchmarkClaimEnqueue(b *testing.B) {
	for _, c := range []int{1, 32} {
		b.Run(fmt.Sprintf("c%d", c), func(b *testing.B) {
			s, err := idempotency.OpenBadger(idempotency.BadgerOptions{Dir: b.TempDir(), GCInterval: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			prefix := fmt.Sprintf("bench-%d-", time.Now().UnixNano())
			before := s.Stats()
			cpu0, cpuOK := idempotency.ProcessCPU()
			storetest.ClaimEnqueue(b, s, c, 2048, func(i int64) string { return prefix + fmt.Sprint(i) })
			if cpu1, ok := idempotency.ProcessCPU(); ok && cpuOK {
				b.ReportMetric(float64(cpu1-cpu0)/1e3/float64(b.N), "cpu-µs/notification")
			}
			after := s.Stats()
			b.ReportMetric(float64(after.SyncRounds-before.SyncRounds)/float64(max(after.SyncedCompletions-before.SyncedCompletions, 1)), "syncs/enqueue")
		})
	}
}

// BenchmarkDrain measures what delivering a backlog costs the Badger
// queue: 20,000 items of 200 customers are queued, then leased 4 at a time
// and acknowledged until none is left; one op is one whole drain, and
// µs/delivery is the figure to compare. Deliveries leave deleted entries in
// the due index until compaction, so a Lease that scanned the index from
// its start cost more with every delivery. Sync is off: the figure is the
// queue's own work, not the disk's.
func BenchmarkDrain(b *testing.B) {
	const items, customers = 20_000, 200
	payload := make([]byte, 1300)
	for b.Loop() {
		b.StopTimer()
		s, err := idempotency.OpenBadger(idempotency.BadgerOptions{Dir: b.TempDir(), GCInterval: -1, Sync: idempotency.SyncNone})
		if err != nil {
			b.Fatal(err)
		}
		ctx := b.Context()
		for i := range items {
			k := storetest.K(fmt.Sprintf("drain-%d", i))
			c, err := s.Claim(ctx, k, storetest.FP(1), time.Minute, time.Hour)
			if err == nil {
				err = s.Enqueue(ctx, k, c.Token, idempotency.NewItem{OrderKey: fmt.Sprintf("customer-%d", i%customers), Payload: payload},
					idempotency.EnqueueOptions{Retention: time.Hour})
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start := time.Now()
		delivered := 0
		for delivered < items {
			its, err := s.Lease(ctx, 4, time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			if len(its) == 0 {
				b.Fatalf("nothing due with %d of %d delivered", delivered, items)
			}
			for _, it := range its {
				if err := s.Ack(ctx, it.Ref(), 200, time.Hour); err != nil {
					b.Fatal(err)
				}
				delivered++
			}
		}
		b.ReportMetric(float64(time.Since(start).Microseconds())/items, "µs/delivery")
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}
