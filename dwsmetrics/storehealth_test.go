package dwsmetrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestStoreHealth(t *testing.T) {
	gauge := New().StoreUp
	h := NewStoreHealth(gauge)
	id := StoreID("redis 127.0.0.1:6379 prefix x:")
	if len(id) != 8 || id == StoreID("redis 127.0.0.1:6379 prefix y:") {
		t.Fatalf("StoreID = %q: want 8 hex digits that differ by description", id)
	}
	value := func() (float64, bool) {
		t.Helper()
		ch := make(chan prometheus.Metric, 10)
		gauge.Collect(ch)
		close(ch)
		if len(ch) == 0 {
			return 0, false
		}
		return value(t, <-ch), true
	}
	a, b := NewHealthMember("redis", id), NewHealthMember("redis", id)
	h.Publish(a, true)
	if v, ok := value(); !ok || v != 1 {
		t.Fatalf("one store up: %v %v", v, ok)
	}
	h.Publish(b, false)
	if v, _ := value(); v != 0 {
		t.Error("a series is not down while one of its stores is")
	}
	h.Drop(b)
	if v, _ := value(); v != 1 {
		t.Error("the series does not follow the remaining store")
	}
	h.Drop(a)
	if _, ok := value(); ok {
		t.Error("the series outlived its last store")
	}
	h.Publish(a, true) // a call that ended after the store left
	if _, ok := value(); ok {
		t.Error("a late report brought the series back")
	}
}
