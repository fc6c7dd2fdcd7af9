package caddymodule

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
)

// Store health: the gauge caddy_dws_notify_store_up{kind, store}, which
// shows each pooled store's health as its guard reports it
// (guard.Options.OnHealth): up while its calls get answers, down while they
// do not (being opened or reopened, deferred to the config's start, or its
// last call failed for a reason other than the answer itself), probed while
// no notification arrives.
//
// The store label is storeID: a short hash of the store's description
// (storeSpec.name: the Badger directory, or the Redis server, database and
// prefix; never a credential), logged with it when a handler is
// provisioned. Two pooled stores can share a description (a reload that
// changes only the Redis password opens a second client beside the first
// for a moment): the series is then down if either is, and goes away
// with the last of them.

// storeID is the store label of a store with the given description.
func storeID(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:4])
}

type storeLabel struct{ kind, id string }

// storeHealth holds, per label, the health of every pooled store with it.
var storeHealth = struct {
	sync.Mutex
	byLabel map[storeLabel]map[*sharedStore]bool
}{byLabel: map[storeLabel]map[*sharedStore]bool{}}

// publishHealth records a pooled store's new health and publishes its
// label's. The guard reports changes in order, one at a time.
func (s *sharedStore) publishHealth(up bool) {
	storeHealth.Lock()
	defer storeHealth.Unlock()
	if s.healthDropped {
		return // a call that ended after Destruct
	}
	l := storeLabel{s.kind, s.id}
	m := storeHealth.byLabel[l]
	if m == nil {
		m = map[*sharedStore]bool{}
		storeHealth.byLabel[l] = m
	}
	m[s] = up
	setStoreUp(l, m)
}

// dropHealth removes a destroyed store; the series goes with the last
// store of its label.
func (s *sharedStore) dropHealth() {
	storeHealth.Lock()
	defer storeHealth.Unlock()
	s.healthDropped = true
	l := storeLabel{s.kind, s.id}
	m := storeHealth.byLabel[l]
	delete(m, s)
	if len(m) == 0 {
		delete(storeHealth.byLabel, l)
		processMetrics().StoreUp.DeleteLabelValues(l.kind, l.id)
		return
	}
	setStoreUp(l, m)
}

// setStoreUp sets the gauge of l: up when every store with it is.
// storeHealth must be locked.
func setStoreUp(l storeLabel, m map[*sharedStore]bool) {
	v := 1.0
	for _, up := range m {
		if !up {
			v = 0
		}
	}
	processMetrics().StoreUp.WithLabelValues(l.kind, l.id).Set(v)
}
