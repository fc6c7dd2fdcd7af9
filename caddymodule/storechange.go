package caddymodule

import (
	"maps"
	"slices"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// The stores that serve each Client-Id and API. A reload whose handler
// serves a Client-Id and API of the running config from another store (a
// new storage directory, a typo in it, Badger to Redis, another Redis
// prefix or database) starts that store's dedupe empty: a resend of a
// notification acknowledged before the reload is forwarded again. That is
// sometimes the intent, never obvious, so the handler says so at WARN
// once. Stores are compared by the records they hold (storeSpec.data),
// not by how they are reached: reordering sentinels or turning TLS on
// keeps the records and does not warn.
//
// The moves are found at Provision, while the running config's entries
// are still there, and logged when the config starts (the dws_notify
// app's Start, startgate.go): a reload that fails while it is loaded, or
// `caddy validate`, changes no store and says nothing. One that fails
// later, when an app Caddy starts after this one fails, has warned
// already (Caddy gives no hook once every app started; operations.md
// says so).
//
// servedBy holds, for each key, the handlers that serve it, in the order
// they were provisioned; a handler adds itself at Provision and removes
// itself (and only itself) at Cleanup, so the old config's cleanup never
// erases the new config's entries, and a config that failed to load takes
// its entries with it. A handler compares its store with the newest
// entries of another config: while a reload provisions, those are the
// running config's.
var servedBy = struct {
	sync.Mutex
	m map[servedKey][]storeUse
}{m: map[servedKey][]storeUse{}}

// storeUse is a handler's entry in servedBy.
type storeUse struct {
	h      *Handler
	config <-chan struct{} // the Done channel of the config's context: its identity
	data   string          // the store's records (sharedStore.data): one data, one dedupe
	name   string          // sharedStore.name: no secret
}

// storeMove is a store the running config serves some of a handler's
// Client-Ids and APIs from, which the handler serves from another one.
type storeMove struct {
	old  string   // the old store's name
	keys []string // Client-Id/API
}

// noteStore adds h to servedBy and keeps in h.storeMoves the Client-Ids
// and APIs it serves that another config served from another store, for
// warnStoreMoves.
func (h *Handler) noteStore(ctx caddy.Context) {
	use := storeUse{h: h, config: ctx.Done(), data: h.store.data, name: h.store.name}
	moved := map[string][]string{} // old store name: the keys that leave it
	servedBy.Lock()
	for _, k := range h.served {
		uses := servedBy.m[k]
		if old, ok := otherStore(uses, use); ok {
			moved[old] = append(moved[old], k.clientID+"/"+k.api)
		}
		servedBy.m[k] = append(uses, use)
	}
	servedBy.Unlock()
	h.storeMoves = nil
	for _, old := range slices.Sorted(maps.Keys(moved)) {
		h.storeMoves = append(h.storeMoves, storeMove{old: old, keys: moved[old]})
	}
}

// warnStoreMoves logs the moves noteStore found, once: the config runs.
func (h *Handler) warnStoreMoves() {
	moves := h.storeMoves
	h.storeMoves = nil
	for _, m := range moves {
		keys := m.keys
		if len(keys) > 8 {
			keys = append(keys[:8:8], "…")
		}
		h.logger.Warn("this config serves these Client-Ids and APIs from another store than the running config: records in the old store no longer deduplicate, so a notification acknowledged before the reload and resent afterwards is forwarded again; see docs/operations.md, \"Changing a handler's store\"",
			zap.Strings("served", keys), zap.String("old_store", m.old), zap.String("new_store", h.store.name))
	}
}

// otherStore returns the name of the store that the newest other config
// among uses serves a key from, if none of that config's handlers serves
// it from use's store (two sites of one config may serve one key from two
// stores).
func otherStore(uses []storeUse, use storeUse) (string, bool) {
	for i := len(uses) - 1; i >= 0; i-- {
		if uses[i].config == use.config {
			continue
		}
		for _, u := range uses {
			if u.config == uses[i].config && u.data == use.data {
				return "", false
			}
		}
		return uses[i].name, true
	}
	return "", false
}

// forgetStore removes h's entries from servedBy.
func (h *Handler) forgetStore() {
	servedBy.Lock()
	defer servedBy.Unlock()
	for _, k := range h.served {
		uses := servedBy.m[k]
		for i := range uses {
			if uses[i].h == h {
				uses = append(uses[:i:i], uses[i+1:]...)
				break
			}
		}
		if len(uses) == 0 {
			delete(servedBy.m, k)
		} else {
			servedBy.m[k] = uses
		}
	}
}
