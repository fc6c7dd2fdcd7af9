package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/dwsmetrics"
	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/guard"
)

// storePool holds one open store per storage: a canonical Badger directory,
// or a Redis server, database, key prefix and client settings (see
// storeSpec). Caddy provisions a new config before it cleans up the old
// one, and `caddy validate` provisions too, so a store must never be
// opened per Provision: every handler takes a reference here and gives it
// back in Cleanup; the last one out closes the store. A config reload that
// keeps the storage therefore keeps the open database or the Redis
// connections.
var storePool = caddy.NewUsagePool()

// storeSpec says which store a handler uses and how to open it.
type storeSpec struct {
	// key identifies the store in storePool: the canonical directory for
	// Badger; for Redis "redis " and a hash of every setting that shapes
	// the client (URL, password, prefix, timeouts, pool size, WAITAOF), so
	// that the key holds no secret.
	key string
	// name describes the store in logs, errors and the admin API: the
	// directory, or the Redis server, database and prefix (never the
	// password). Stores with the same name hold the same records.
	name string
	// kind is the store_up gauge's kind label: badger or redis.
	kind string
	// data names the records the store holds, for the store-change
	// warning (storechange.go): the directory for Badger; for Redis the
	// server or primary, database and prefix (config.Redis.Data), the
	// same across changes of how it is reached (sentinels, TLS, timeouts)
	// that give another key and name.
	data string
	// open opens the store (again).
	open func(ctx context.Context) (idempotency.Store, error)
	// retryable reports whether a failure of open may pass by itself (an
	// unreachable server): the handler is then provisioned anyway, answers
	// U, and the store is opened in the background. nil: every failure is
	// a provisioning error (Badger).
	retryable func(error) bool
	// guard tunes the guarded store's times (zero: guard's defaults);
	// acquire sets its name, opener, logger and health hook.
	guard guard.Options
}

// sharedStore is the pooled value: the guarded store (idempotency/guard:
// bounded calls, reopening, background connection, the waiters of
// duplicates, health), the Client-Ids and APIs its handlers serve, and its
// store_up labels.
type sharedStore struct {
	*guard.Store
	name     string // see storeSpec.name
	data     string // see storeSpec.data
	kind, id string // the store_up labels (storehealth.go)

	servedMu sync.Mutex
	served   map[servedKey]int // see serve

	health *dwsmetrics.HealthMember // its place in store_up (storehealth.go)

	// deliveries runs the inbox of acknowledge on_receipt (deliveries.go).
	deliveries *deliveries
}

// servedKey is a Client-Id and notify API that a handler using the store
// accepts: the admin API looks the records of a requestId up by these
// keys (point reads) instead of scanning the store.
type servedKey struct {
	clientID, api string
}

// serve registers the Client-Ids and APIs a handler accepts; every handler
// using the store does so at Provision and calls unserve with the same keys
// at Cleanup. Keys are counted, so handlers sharing the store (several
// sites, or the old and new config during a reload) may register the same
// ones.
func (s *sharedStore) serve(keys []servedKey) {
	s.servedMu.Lock()
	defer s.servedMu.Unlock()
	if s.served == nil {
		s.served = map[servedKey]int{}
	}
	for _, k := range keys {
		s.served[k]++
	}
}

// unserve gives back keys registered with serve.
func (s *sharedStore) unserve(keys []servedKey) {
	s.servedMu.Lock()
	defer s.servedMu.Unlock()
	for _, k := range keys {
		if s.served[k] <= 1 {
			delete(s.served, k)
		} else {
			s.served[k]--
		}
	}
}

// servedKeys returns the keys registered with serve.
func (s *sharedStore) servedKeys() []servedKey {
	s.servedMu.Lock()
	defer s.servedMu.Unlock()
	keys := make([]servedKey, 0, len(s.served))
	for k := range s.served {
		keys = append(keys, k)
	}
	return keys
}

// Destruct closes the store when the last handler using it is cleaned up
// (guard.Store.Close: requests still running get idempotency.ErrClosed and
// answer U; a background opening loop ends). Closing a Badger store is
// bounded (idempotency.BadgerOptions.CloseTimeout): a store whose
// directory was removed, or whose filesystem is full or hung, does not
// hold up a reload or the stop of the process; what it could not flush is
// logged.
func (s *sharedStore) Destruct() error {
	s.deliveries.close()
	s.dropHealth()
	return s.Close()
}

// acquire takes a reference to the store of spec, opening it if no handler
// holds it yet. When the store cannot be opened for a reason that may pass
// (spec.retryable: Redis unreachable), the handler gets the store anyway,
// its calls fail (U) until a background loop has opened it. When another
// process holds the Badger directory, the store is deferred to the
// config's start (startgate.go).
func acquire(spec storeSpec) (*sharedStore, error) {
	v, _, err := storePool.LoadOrNew(spec.key, func() (caddy.Destructor, error) {
		s := &sharedStore{name: spec.name, kind: spec.kind, id: storeID(spec.name), data: spec.data}
		s.health = dwsmetrics.NewHealthMember(s.kind, s.id)
		s.deliveries = newDeliveries(s)
		opts := spec.guard
		opts.Name, opts.Open, opts.Logger = spec.name, spec.open, storeLog
		opts.OnHealth = func(up bool) { s.publishHealth(up) }
		st, err := spec.open(context.Background())
		switch {
		case err == nil:
			s.Store = guard.New(st, opts)
		case errors.Is(err, idempotency.ErrLocked):
			// Another process holds the Badger directory: most likely
			// `caddy validate` on a host where the gateway runs. Nothing
			// more can be checked without the lock; the store is opened
			// when this config's apps start (startgate.go), which fails
			// then if the directory is still held.
			s.Store = guard.Deferred(describeOpenError(spec, err), opts)
			storeLog.Info("the storage is in use by another process (a running Caddy?): not opened by this provisioning; it is opened when the config starts, which fails if the other process still holds it",
				zap.String("storage", spec.name))
		case spec.retryable != nil && spec.retryable(err):
			s.Store = guard.Connecting(err, opts)
		default:
			return nil, describeOpenError(spec, err)
		}
		s.deliveries.watch.start()
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*sharedStore), nil
}

func releaseStore(key string) error {
	_, err := storePool.Delete(key)
	return err
}

// describeOpenError turns Badger's directory-lock failure into advice. At
// provisioning, the handler names itself before it (Handler.named).
func describeOpenError(spec storeSpec, err error) error {
	if errors.Is(err, idempotency.ErrLocked) {
		return fmt.Errorf("storage %s is locked by another process (a running Caddy?): one directory serves one Caddy process; stop the other or point storage at another directory: %w", spec.name, err)
	}
	if spec.retryable != nil {
		return fmt.Errorf("opening the store (%s): %w", spec.name, err)
	}
	return fmt.Errorf("opening storage %s: %w", spec.name, err)
}
