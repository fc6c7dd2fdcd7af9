package redisstore_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore/redistest"
	"github.com/dwsnotify/dws_notify/idempotency/storetest"
)

// benchClaimComplete runs b.N claim+complete pairs on unique keys from
// exactly conc goroutines, like the Badger store's BenchmarkClaimComplete,
// and reports throughput and (from 10,000 records on) the server's
// used_memory growth per stored record.
func benchClaimComplete(b *testing.B, srv *redistest.Server, conc int) {
	// The server is the benchmark's own: the default prefix, an empty
	// database, and 32-character request ids (as DWS sends), so that the
	// memory per record is what a gateway's records take.
	s := open(b, srv, redisstore.Options{Prefix: redisstore.DefaultPrefix})
	ctx := b.Context()
	if err := srv.Client(0).FlushDB(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	memBefore := usedMemory(b, srv)
	prefix := fmt.Sprintf("%013d", time.Now().UnixMilli()%1e13)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				k := storetest.K(fmt.Sprintf("%s%019d", prefix, i))
				c, err := s.Claim(ctx, k, storetest.FP(1), time.Minute, 168*time.Hour)
				if err == nil && c.Status != idempotency.Claimed {
					err = fmt.Errorf("claim of a unique key: %v", c.Status)
				}
				if err == nil {
					err = s.Complete(ctx, k, c.Token, accepted, 168*time.Hour)
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
	b.StopTimer()
	if p := failed.Load(); p != nil {
		b.Fatal(*p)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "notifications/s")
	if b.N >= 10000 {
		b.ReportMetric(float64(usedMemory(b, srv)-memBefore)/float64(b.N), "server-bytes/record")
	}
}

// usedMemory returns the server's used_memory (INFO memory).
func usedMemory(b *testing.B, srv *redistest.Server) int64 {
	info, err := srv.Client(0).Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no used_memory in INFO memory")
	return 0
}

// BenchmarkClaimComplete: claim + complete at concurrency 1 and 32 against
// a local redis-server without persistence, with the append-only file
// fsynced every second (the recommended setting), and fsynced on every
// write. One server per persistence setting, started by the benchmark.
func BenchmarkClaimComplete(b *testing.B) {
	for _, p := range []struct {
		name string
		cfg  redistest.Config
	}{
		{"aof-off", redistest.Config{}},
		{"aof-everysec", redistest.Config{AppendOnly: true, AppendFsync: "everysec"}},
		{"aof-always", redistest.Config{AppendOnly: true, AppendFsync: "always"}},
	} {
		b.Run(p.name, func(b *testing.B) {
			srv := redistest.Start(b, p.cfg)
			for _, c := range []int{1, 32} {
				b.Run(fmt.Sprintf("c%d", c), func(b *testing.B) { benchClaimComplete(b, srv, c) })
			}
		})
	}
}
