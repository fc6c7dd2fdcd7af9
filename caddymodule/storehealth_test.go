package caddymodule

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/guard"
)

// The store_up gauge, fed by the guarded stores' health.

// healthStore is an in-memory Badger store whose Get fails while fail is
// set.
type healthStore struct {
	idempotency.Store
	fail atomic.Bool
}

func newHealthStore(t *testing.T) *healthStore {
	t.Helper()
	st, err := idempotency.OpenBadger(idempotency.BadgerOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return &healthStore{Store: st}
}

var errUnreachable = errors.New("dial tcp: connection refused")

func (s *healthStore) Get(ctx context.Context, key idempotency.Key) (idempotency.Record, bool, error) {
	if s.fail.Load() {
		return idempotency.Record{}, false, errUnreachable
	}
	return s.Store.Get(ctx, key)
}

// gaugeValue returns the store_up series of (kind, id) and whether it
// exists.
func gaugeValue(t *testing.T, kind, id string) (float64, bool) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(processMetrics().StoreUp)
	v, ok := seriesSet(t, reg)[series("caddy_dws_notify_store_up", "kind", kind, "store", id)]
	return v, ok
}

func TestStoreUpGauge(t *testing.T) {
	const name = "health-test 127.0.0.1:1 prefix x:"
	kind, id := "test", storeID(name)
	a, b := newHealthStore(t), newHealthStore(t)
	spec := func(key string, st idempotency.Store) storeSpec {
		return storeSpec{key: key, name: name, kind: kind, open: func(context.Context) (idempotency.Store, error) { return st, nil },
			guard: guard.Options{ProbeEvery: 20 * time.Millisecond}}
	}
	want := func(what string, v float64) {
		t.Helper()
		waitUntil(t, what, func() bool { got, ok := gaugeValue(t, kind, id); return ok && got == v })
	}

	sa, err := acquire(spec(t.Name()+"-a", a))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := gaugeValue(t, kind, id); !ok || v != 1 {
		t.Fatalf("store_up after opening = %v (present %v), want 1", v, ok)
	}
	a.fail.Store(true)
	if _, _, err := sa.Get(context.Background(), keyOf("addPaymentMethod", "health")); !errors.Is(err, errUnreachable) {
		t.Fatalf("get: %v", err)
	}
	if v, _ := gaugeValue(t, kind, id); v != 0 {
		t.Errorf("store_up after a failed call = %v, want 0", v)
	}
	a.fail.Store(false)
	want("the probe to find the store up again without a request", 1)
	a.fail.Store(true)
	want("the probe to find the store down without a request", 0)
	a.fail.Store(false)
	want("store a up", 1)

	// A second pooled store with the same description: down if either is.
	if _, err := acquire(spec(t.Name()+"-b", b)); err != nil {
		t.Fatal(err)
	}
	b.fail.Store(true)
	want("store b down", 0)
	if err := releaseStore(t.Name() + "-b"); err != nil {
		t.Fatal(err)
	}
	want("the series to follow the remaining store", 1)
	if err := releaseStore(t.Name() + "-a"); err != nil {
		t.Fatal(err)
	}
	if v, ok := gaugeValue(t, kind, id); ok {
		t.Errorf("store_up = %v after the last store closed, want no series", v)
	}
	// A call that ends after the store left the pool brings nothing back.
	sa.publishHealth(true)
	if _, ok := gaugeValue(t, kind, id); ok {
		t.Error("a late call brought the series back")
	}
}
