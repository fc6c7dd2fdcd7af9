package redisstore_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

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
	storetest.ClaimComplete(b, s, conc, func(i int64) string { return fmt.Sprintf("%s%019d", prefix, i) })
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
