package caddymodule

import (
	"sync"

	"github.com/dwsnotify/dws_notify/dwsmetrics"
)

// Store health: the gauge caddy_dws_notify_store_up{kind, store}
// (dwsmetrics.StoreHealth) shows each pooled store's health as its guard
// reports it, probed while no notification arrives. The store label is
// storeID, logged with the store's description when a handler is
// provisioned.

// storeID is the store label of a store with the given description.
func storeID(name string) string { return dwsmetrics.StoreID(name) }

// storeHealth publishes store_up into the process-wide collectors.
var storeHealth = sync.OnceValue(func() *dwsmetrics.StoreHealth {
	return dwsmetrics.NewStoreHealth(processMetrics().StoreUp)
})

// publishHealth records a pooled store's new health (its guard's OnHealth).
func (s *sharedStore) publishHealth(up bool) { storeHealth().Publish(s.health, up) }

// dropHealth removes a destroyed store.
func (s *sharedStore) dropHealth() { storeHealth().Drop(s.health) }
