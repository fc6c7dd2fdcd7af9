package dwsmetrics

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// StoreHealth publishes the gauge caddy_dws_notify_store_up{kind, store}
// from each store's health as its guard reports it
// (guard.Options.OnHealth): up while its calls get answers, down while
// they do not (being opened or reopened, deferred to the config's start,
// or its last call failed for a reason other than the answer itself) and
// while its writes are not confirmed as durable (wait_aof, wait_replicas).
//
// The store label is StoreID: a short hash of the store's description
// (the Badger directory, or the Redis server, database and prefix; never
// a credential), logged with it when a handler is provisioned. Two stores
// can share a description (a reload that changes only the Redis password
// opens a second client beside the first for a moment): the series is
// then down if either is, and goes away with the last of them.
type StoreHealth struct {
	gauge   *prometheus.GaugeVec
	mu      sync.Mutex
	byLabel map[[2]string]map[*HealthMember]bool
}

// HealthMember is one store's place in a StoreHealth.
type HealthMember struct {
	kind, id string
	dropped  bool // it left; guarded by the StoreHealth's lock
}

// StoreID is the store label of a store with the given description.
func StoreID(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:4])
}

// NewStoreHealth returns a StoreHealth that sets gauge (store_up).
func NewStoreHealth(gauge *prometheus.GaugeVec) *StoreHealth {
	return &StoreHealth{gauge: gauge, byLabel: map[[2]string]map[*HealthMember]bool{}}
}

// NewHealthMember returns the place of a store with the store_up labels
// kind and id.
func NewHealthMember(kind, id string) *HealthMember {
	return &HealthMember{kind: kind, id: id}
}

// Publish records m's new health and publishes its label's. The guard
// reports changes in order, one at a time; a report after Drop (a call
// that ended after the store left) is ignored.
func (h *StoreHealth) Publish(m *HealthMember, up bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m.dropped {
		return
	}
	l := [2]string{m.kind, m.id}
	set := h.byLabel[l]
	if set == nil {
		set = map[*HealthMember]bool{}
		h.byLabel[l] = set
	}
	set[m] = up
	h.set(l, set)
}

// Drop removes a store that left; the series goes with the last store of
// its label.
func (h *StoreHealth) Drop(m *HealthMember) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m.dropped = true
	l := [2]string{m.kind, m.id}
	set := h.byLabel[l]
	delete(set, m)
	if len(set) == 0 {
		delete(h.byLabel, l)
		h.gauge.DeleteLabelValues(l[0], l[1])
		return
	}
	h.set(l, set)
}

// set sets the gauge of l: up when every store with it is. h.mu is held.
func (h *StoreHealth) set(l [2]string, set map[*HealthMember]bool) {
	v := 1.0
	for _, up := range set {
		if !up {
			v = 0
		}
	}
	h.gauge.WithLabelValues(l[0], l[1]).Set(v)
}
