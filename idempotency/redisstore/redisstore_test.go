package redisstore_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore/redistest"
	"github.com/dwsnotify/dws_notify/idempotency/storetest"
)

// prefixes numbers the prefixes uniquePrefix hands out.
var prefixes atomic.Uint64

// uniquePrefix returns a key prefix no other store of this test process
// uses, so stores sharing one server never see each other's records.
func uniquePrefix(t testing.TB) string {
	name := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name())
	return fmt.Sprintf("test:%s:%d:", name, prefixes.Add(1))
}

// open opens a store on srv's database 0 with a unique prefix unless opts
// says otherwise, and closes it when the test ends.
func open(t testing.TB, srv *redistest.Server, opts redisstore.Options) *redisstore.Store {
	t.Helper()
	if opts.URL == "" && opts.Client == nil {
		opts.URL = srv.URL(0)
	}
	if opts.Prefix == "" {
		opts.Prefix = uniquePrefix(t)
	}
	s, err := redisstore.Open(t.Context(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformance runs the idempotency.Store conformance suite against a
// real redis-server, once per way of reaching it. Every store of a run gets
// its own key prefix on the shared server.
func TestConformance(t *testing.T) {
	t.Run("URL", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Start(t, redistest.Config{})
		storetest.Run(t, func(t *testing.T) idempotency.Store { return open(t, srv, redisstore.Options{}) })
	})
	t.Run("PasswordAndDatabase", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Start(t, redistest.Config{Password: "s3cret-conformance", AppendOnly: true})
		storetest.Run(t, func(t *testing.T) idempotency.Store {
			return open(t, srv, redisstore.Options{URL: srv.URL(5)})
		})
	})
	t.Run("RESP2", func(t *testing.T) {
		// go-redis speaks RESP3 by default (the other runs); this one
		// speaks RESP2.
		t.Parallel()
		srv := redistest.Start(t, redistest.Config{})
		storetest.Run(t, func(t *testing.T) idempotency.Store {
			return open(t, srv, redisstore.Options{URL: srv.URL(0) + "?protocol=2"})
		})
	})
	t.Run("SharedClient", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Start(t, redistest.Config{})
		// One client for every store of the run: the suite closes each
		// store, which must leave the shared client open for the next.
		client := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
		t.Cleanup(func() { client.Close() })
		storetest.Run(t, func(t *testing.T) idempotency.Store {
			return open(t, srv, redisstore.Options{Client: client})
		})
	})
	t.Run("TLS", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Start(t, redistest.Config{TLS: true, Password: "tls-secret"})
		storetest.Run(t, func(t *testing.T) idempotency.Store {
			return open(t, srv, redisstore.Options{URL: srv.URL(0), TLSConfig: srv.TLSConfig()})
		})
	})
	t.Run("UnixSocket", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Start(t, redistest.Config{UnixSocket: true})
		storetest.Run(t, func(t *testing.T) idempotency.Store {
			return open(t, srv, redisstore.Options{URL: "unix://" + srv.Socket()})
		})
	})
}

// TestCluster runs the conformance suite on a three-primary Redis Cluster
// through Options.Client: each script touches one key, so it runs on the
// key's node, and Scan walks every primary. The keys of the suite spread
// over all three nodes (checked).
func TestCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	client := cluster.Client(t)
	storetest.Run(t, func(t *testing.T) idempotency.Store {
		return open(t, nil, redisstore.Options{Client: client})
	})
	for i, n := range cluster.Nodes {
		if keys, err := n.Client(0).DBSize(t.Context()).Result(); err != nil || keys == 0 {
			t.Errorf("cluster node %d holds %d keys (%v): the suite did not spread over the nodes", i, keys, err)
		}
	}
}

// TestClaimRace: 50 goroutines claim the same key at once and exactly one
// wins; repeated over 1,000 keys, 8 keys at a time.
func TestClaimRace(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{})
	s := open(t, srv, redisstore.Options{PoolSize: 64})
	storetest.ClaimRace(t, s, 1000, 50, 8)
}
