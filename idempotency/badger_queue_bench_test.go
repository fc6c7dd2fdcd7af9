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
