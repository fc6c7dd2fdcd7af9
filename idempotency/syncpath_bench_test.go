package idempotency

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkGroupCommitSyncPath compares the group-commit syncs at 32
// writers on the same profile: fsync of the memtable logs through
// descriptors kept open between rounds (fd-cached, the default on Linux),
// the same with fdatasync (fd-cached-datasync), the directory listed and
// each log opened, fsynced and closed every round (fd-list, the default
// before issue 17), and db.Sync, which holds Badger's DB lock during the
// fsync. It reports throughput, the process's CPU time per notification,
// and the mean latency of the Claim transaction, which needs no sync itself
// and shows how much the sync stalls other writes.
func BenchmarkGroupCommitSyncPath(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("the descriptor path is Linux-only")
	}
	for _, path := range []string{"fd-cached", "fd-cached-datasync", "fd-list", "dbsync"} {
		b.Run(path+"/c32", func(b *testing.B) {
			s, err := OpenBadger(BadgerOptions{Dir: b.TempDir(), GCInterval: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			// Before any write: the syncer reads these per round.
			s.syncLogsByFD.Store(path != "dbsync")
			if path == "fd-list" || path == "dbsync" {
				s.memLogs.close()
				s.memLogs = nil
			}
			if path == "fd-cached-datasync" {
				orig := syncLogFile
				syncLogFile = func(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
				defer func() { syncLogFile = orig }()
			}
			ctx := context.Background()
			prefix := fmt.Sprintf("sp-%d-", time.Now().UnixNano())
			answer := Answer{ResultCode: "SUCCESS", Outcome: OutcomeAccepted, BackendStatus: 200}
			var next, claimNanos atomic.Int64
			var wg sync.WaitGroup
			var failed atomic.Pointer[error]
			b.ResetTimer()
			cpu0, cpuOK := processCPU()
			start := time.Now()
			for range 32 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						k := Key{"2188120000000000", "addPaymentMethod", prefix + strconv.FormatInt(i, 10)}
						t0 := time.Now()
						c, err := s.Claim(ctx, k, Fingerprint{1}, time.Minute, time.Hour)
						claimNanos.Add(int64(time.Since(t0)))
						if err == nil {
							err = s.Complete(ctx, k, c.Token, answer, time.Hour)
						}
						if err != nil {
							failed.CompareAndSwap(nil, &err)
							return
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			cpu1, cpuOK1 := processCPU()
			b.StopTimer()
			if p := failed.Load(); p != nil {
				b.Fatal(*p)
			}
			if cpuOK && cpuOK1 {
				b.ReportMetric(float64(cpu1-cpu0)/1e3/float64(b.N), "cpu-µs/notification")
			}
			st := s.Stats()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "notifications/s")
			b.ReportMetric(float64(claimNanos.Load())/float64(b.N)/1e3, "claim-µs")
			b.ReportMetric(float64(st.SyncRounds)/float64(max(st.SyncedCompletions, 1)), "syncs/completion")
		})
	}
}

// BenchmarkGroupCommitRound is one group-commit round's own work over the
// memtable logs of a real store with nothing new to write back, on one
// goroutine: what keeping the descriptors open saves per round, apart from
// the fsync of the written pages (which both paths do). path=list is the
// path before issue 17 (list the directory, then open, fsync and close each
// log), path=cached the descriptors kept open (read the inotify watch,
// fsync each log); compare them with benchstat -col /path.
func BenchmarkGroupCommitRound(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("the descriptor path is Linux-only")
	}
	dir := b.TempDir()
	s, err := OpenBadger(BadgerOptions{Dir: dir, GCInterval: -1, PageOutInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	k := Key{"2188120000000000", "addPaymentMethod", "round"}
	c, err := s.Claim(ctx, k, Fingerprint{1}, time.Minute, time.Hour)
	if err == nil {
		err = s.Complete(ctx, k, c.Token, Answer{ResultCode: "SUCCESS", Outcome: OutcomeAccepted, BackendStatus: 200}, time.Hour)
	}
	if err != nil {
		b.Fatal(err)
	}
	// cpuPerOp reports the process's CPU time per round: the wall time
	// is mostly the disk's answer to the cache flush each fsync sends.
	cpuPerOp := func(b *testing.B, round func() (int, error)) {
		b.ReportAllocs()
		cpu0, ok0 := processCPU()
		for b.Loop() {
			if n, err := round(); err != nil || n == 0 {
				b.Fatal(n, err)
			}
		}
		if cpu1, ok1 := processCPU(); ok0 && ok1 {
			b.ReportMetric(float64(cpu1-cpu0)/1e3/float64(b.N), "cpu-µs/round")
		}
	}
	b.Run("path=list", func(b *testing.B) {
		cpuPerOp(b, func() (int, error) { return syncMemtableLogs(dir, true) })
	})
	b.Run("path=cached", func(b *testing.B) {
		m := newMemLogFiles(dir)
		defer m.close()
		cpuPerOp(b, m.sync)
	})
}
