package idempotency_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/storetest"
)

// benchClaimComplete runs b.N claim+complete pairs on unique keys from
// exactly conc goroutines against a fresh on-disk store, and reports
// throughput, the process's CPU time per notification (user + system, all
// goroutines: the store's share of the gateway's CPU per notification) and,
// for group commit, the syncs per completion.
func benchClaimComplete(b *testing.B, mode idempotency.SyncMode, conc int) {
	s, err := idempotency.OpenBadger(idempotency.BadgerOptions{Dir: b.TempDir(), Sync: mode, GCInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	prefix := fmt.Sprintf("bench-%d-", time.Now().UnixNano())
	before := s.Stats()
	cpu0, cpuOK := idempotency.ProcessCPU()
	storetest.ClaimComplete(b, s, conc, func(i int64) string { return prefix + fmt.Sprint(i) })
	if cpu1, ok := idempotency.ProcessCPU(); ok && cpuOK {
		b.ReportMetric(float64(cpu1-cpu0)/1e3/float64(b.N), "cpu-µs/notification")
	}
	if mode == idempotency.SyncGroupCommit {
		after := s.Stats()
		rounds := after.SyncRounds - before.SyncRounds
		done := after.SyncedCompletions - before.SyncedCompletions
		b.ReportMetric(float64(rounds)/float64(max(done, 1)), "syncs/completion")
	}
}

// BenchmarkClaimComplete: claim + durable (group-commit) complete at
// concurrency 1 and 32.
func BenchmarkClaimComplete(b *testing.B) {
	for _, c := range []int{1, 32} {
		b.Run(fmt.Sprintf("c%d", c), func(b *testing.B) { benchClaimComplete(b, idempotency.SyncGroupCommit, c) })
	}
}

// BenchmarkClaimCompleteSyncWrites: the same with Badger's SyncWrites (one
// fsync per commit, claims included), for comparison.
func BenchmarkClaimCompleteSyncWrites(b *testing.B) {
	for _, c := range []int{1, 32} {
		b.Run(fmt.Sprintf("c%d", c), func(b *testing.B) { benchClaimComplete(b, idempotency.SyncEachCommit, c) })
	}
}

// BenchmarkClaimCompleteNoSync: the same without any fsync (survives a
// process crash, not a power cut): the ceiling the fsyncs are measured
// against.
func BenchmarkClaimCompleteNoSync(b *testing.B) {
	for _, c := range []int{1, 32} {
		b.Run(fmt.Sprintf("c%d", c), func(b *testing.B) { benchClaimComplete(b, idempotency.SyncNone, c) })
	}
}

// BenchmarkReplay: a resend of a completed notification (Claim finds the
// record done) at concurrency 1 and 32, on a store that has just completed
// 1,000 notifications. With the group commit a replay waits for a sync
// round, as a completion does (syncs/replay); without fsync it does not.
func BenchmarkReplay(b *testing.B) {
	for _, mode := range []struct {
		name string
		sync idempotency.SyncMode
	}{{"group", idempotency.SyncGroupCommit}, {"nosync", idempotency.SyncNone}} {
		for _, c := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/c%d", mode.name, c), func(b *testing.B) {
				s, err := idempotency.OpenBadger(idempotency.BadgerOptions{Dir: b.TempDir(), Sync: mode.sync, GCInterval: -1})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				keys := make([]string, 1000)
				for i := range keys {
					keys[i] = fmt.Sprintf("replay-%d", i)
					k := storetest.K(keys[i])
					cl, err := s.Claim(b.Context(), k, storetest.FP(1), time.Minute, time.Hour)
					if err != nil {
						b.Fatal(err)
					}
					if err := s.Complete(b.Context(), k, cl.Token, idempotency.Answer{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeAccepted, BackendStatus: 200}, time.Hour); err != nil {
						b.Fatal(err)
					}
				}
				before := s.Stats()
				storetest.Replays(b, s, c, keys)
				b.ReportMetric(float64(s.Stats().SyncRounds-before.SyncRounds)/float64(b.N), "syncs/replay")
			})
		}
	}
}
