package guard_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/guard"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore/redistest"
	"github.com/dwsnotify/dws_notify/idempotency/storetest"
)

// The guard is a Store like the ones it guards: the conformance suite
// passes through it, over Badger and over Redis, with the shared worker
// pool and the default times, as a gateway runs it.

func TestConformanceBadger(t *testing.T) {
	storetest.Run(t, func(t *testing.T) idempotency.Store { return guardedBadger(t) })
}

func TestConformanceRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{})
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) idempotency.Store {
		return guardedRedis(t, srv, fmt.Sprintf("guard:%d:", n.Add(1)))
	})
}

// guardedBadger is a new Badger store in a test directory behind a guard
// with the defaults, reopening the same directory.
func guardedBadger(t *testing.T) *guard.Store {
	dir := t.TempDir()
	open := func(context.Context) (idempotency.Store, error) {
		return idempotency.OpenBadger(idempotency.BadgerOptions{Dir: dir})
	}
	st, err := open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return guard.New(st, guard.Options{Name: "badger", Open: open})
}

// guardedRedis is a Redis store on srv with prefix behind a guard with the
// defaults.
func guardedRedis(t *testing.T, srv *redistest.Server, prefix string) *guard.Store {
	opts := redisstore.Options{URL: srv.URL(0), Prefix: prefix}
	open := func(ctx context.Context) (idempotency.Store, error) { return redisstore.Open(ctx, opts) }
	st, err := open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return guard.New(st, guard.Options{Name: "redis " + srv.Addr(), Open: open})
}
