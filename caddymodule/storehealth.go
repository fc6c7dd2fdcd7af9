package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// Store health: the gauge caddy_dws_notify_store_up{kind, store}.
//
// A store is up while its calls get answers, down while they do not: it
// is being opened or reopened (unreachable at provisioning, broken, or held
// by another process until start), or its last call failed for a reason
// other than the answer itself (a timeout, a lost connection, a storage
// error). Every bounded call updates it (atomic loads unless the state
// changes), and a store that has had no call for storeProbeEvery is read
// once (a point read of a key no notification uses), so the gauge
// also moves while no notification arrives.
//
// The store label is storeID: a short hash of the store's description
// (storeSpec.name: the Badger directory, or the Redis server, database and
// prefix; never a credential), logged with it when a handler is
// provisioned. Two pooled stores can share a description (a reload that
// changes only the Redis password opens a second client beside the first
// for a moment): the series is then down if either is, and goes away
// with the last of them.

// storeProbeEvery is how long a store may go without a call before it is
// probed.
var storeProbeEvery = 5 * time.Second

// storeProbeKey is what the probe reads: a Client-Id and API no handler
// serves.
var storeProbeKey = idempotency.Key{ClientID: "dws_notify", API: "health", RequestID: "probe"}

// Health states of a sharedStore (its health field).
const (
	healthUnknown int32 = iota
	healthUp
	healthDown
)

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

// startHealth publishes a store just put in the pool and starts its probe.
func (s *sharedStore) startHealth(kind string) {
	s.kind, s.id = kind, storeID(s.name)
	s.stateMu.Lock()
	up, stop := s.down == nil, s.stop
	s.stateMu.Unlock()
	s.setHealth(up)
	go s.probe(stop)
}

// setHealth records whether the store answers and, when that changed,
// publishes it. Stores not made by acquire (tests) have no label and
// publish nothing.
func (s *sharedStore) setHealth(up bool) {
	want := healthDown
	if up {
		want = healthUp
	}
	if s.health.Load() == want || s.health.Swap(want) == want || s.kind == "" {
		return
	}
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
	// The state read under the lock, not want: of two racing changes the
	// one published last publishes the latest state.
	m[s] = s.health.Load() == healthUp
	publishHealth(l, m)
}

// dropHealth removes a destroyed store; the series goes with the last
// store of its label.
func (s *sharedStore) dropHealth() {
	if s.kind == "" {
		return
	}
	storeHealth.Lock()
	defer storeHealth.Unlock()
	s.healthDropped = true
	l := storeLabel{s.kind, s.id}
	m := storeHealth.byLabel[l]
	delete(m, s)
	if len(m) == 0 {
		delete(storeHealth.byLabel, l)
		processMetrics().storeUp.DeleteLabelValues(l.kind, l.id)
		return
	}
	publishHealth(l, m)
}

// publishHealth sets the gauge of l: up when every store with it is.
// storeHealth must be locked.
func publishHealth(l storeLabel, m map[*sharedStore]bool) {
	v := 1.0
	for _, up := range m {
		if !up {
			v = 0
		}
	}
	processMetrics().storeUp.WithLabelValues(l.kind, l.id).Set(v)
}

// observe records the outcome of a bounded store call. An error that is
// the store's answer (a lost lease, a bad argument, a corrupt record)
// means it is up; one about the call's own end (the store being closed,
// the caller gone) says nothing; any other means it is down.
func (s *sharedStore) observe(err error) {
	if !s.called.Load() {
		s.called.Store(true)
	}
	switch {
	case err == nil,
		errors.Is(err, idempotency.ErrLeaseLost),
		errors.Is(err, idempotency.ErrInvalidArgument),
		errors.Is(err, idempotency.ErrCorruptRecord):
		s.setHealth(true)
	case errors.Is(err, idempotency.ErrClosed),
		errors.Is(err, errNoStore),
		errors.Is(err, context.Canceled):
	default:
		s.setHealth(false)
	}
}

// probe reads the store once whenever it has had no call for
// storeProbeEvery, until stop is closed (Destruct).
func (s *sharedStore) probe(stop <-chan struct{}) {
	tick := time.NewTicker(storeProbeEvery)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if s.called.Swap(false) {
			continue // a call in the last period told the state
		}
		_, _, _ = s.Get(context.Background(), storeProbeKey)
		s.called.Store(false)
	}
}
