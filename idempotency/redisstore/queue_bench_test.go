package redisstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency/redisstore"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore/redistest"
	"github.com/dwsnotify/dws_notify/idempotency/storetest"
)

// BenchmarkClaimEnqueue: claim + enqueue of a 2 KiB payload at
// concurrency 1 and 32 (and, from 10,000 on, the server's used_memory
// growth per queued notification) against a local redis-server with the append-only
// file fsynced every second and on every write, beside
// BenchmarkClaimComplete.
func BenchmarkClaimEnqueue(b *testing.B) {
	for _, p := range []struct {
		name string
		cfg  redistest.Config
	}{
		{"aof-everysec", redistest.Config{AppendOnly: true, AppendFsync: "everysec"}},
		{"aof-always", redistest.Config{AppendOnly: true, AppendFsync: "always"}},
	} {
		b.Run(p.name, func(b *testing.B) {
			srv := redistest.Start(b, p.cfg)
			for _, c := range []int{1, 32} {
				b.Run(fmt.Sprintf("c%d", c), func(b *testing.B) {
					s := open(b, srv, redisstore.Options{PoolSize: 64, Prefix: redisstore.DefaultPrefix})
					if err := srv.Client(0).FlushDB(b.Context()).Err(); err != nil {
						b.Fatal(err)
					}
					memBefore := usedMemory(b, srv)
					prefix := fmt.Sprintf("%013d", time.Now().UnixMilli()%1e13)
					storetest.ClaimEnqueue(b, s, c, 2048, func(i int64) string { return fmt.Sprintf("%s%019d", prefix, i) })
					if b.N >= 10000 {
						// The dedupe record, the item, its payload and index entries.
						b.ReportMetric(float64(usedMemory(b, srv)-memBefore)/float64(b.N), "server-bytes/notification")
					}
				})
			}
		})
	}
}
