package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/idempotency"
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
	// open opens the store (again).
	open func(ctx context.Context) (idempotency.Store, error)
	// retryable reports whether a failure of open may pass by itself (an
	// unreachable server): the handler is then provisioned anyway, answers
	// U, and the store is opened in the background. nil: every failure is
	// a provisioning error (Badger).
	retryable func(error) bool
}

// badgerSpec is the spec of the Badger store in the canonical directory dir.
func badgerSpec(dir string) storeSpec {
	return storeSpec{key: dir, name: dir, kind: "badger", open: func(context.Context) (idempotency.Store, error) { return openStore(dir) }}
}

// sharedStore is the pooled value: the store plus the in-process registry
// that lets concurrent duplicates wait for the first copy's outcome. Its
// Claim, Complete, Release, Get and Scan bound and guard the calls into the
// store (storeguard.go); Store is read and replaced under stateMu.
type sharedStore struct {
	idempotency.Store
	name string                                               // see storeSpec.name
	open func(ctx context.Context) (idempotency.Store, error) // see storeSpec.open

	mu      sync.Mutex
	waiters map[idempotency.Key]chan struct{}

	stateMu   sync.Mutex
	down      error         // non-nil while there is no store to call: calls fail with it
	deferred  bool          // another process held the directory at provisioning: opened at start (openDeferred)
	destroyed bool          // Destruct ran
	stop      chan struct{} // closed by Destruct: ends the opening loop
	looping   chan struct{} // non-nil while an opening loop runs; closed when it ends

	// life is cancelled by Destruct before the store is closed, so that
	// admin scans (whose context derives from it too) end at once instead
	// of holding up the Close, and with it a config reload or shutdown.
	// nil for stores built by tests without newSharedStore.
	life    context.Context
	endLife context.CancelFunc

	servedMu sync.Mutex
	served   map[servedKey]int // see serve

	// Health (storehealth.go): the store_up labels, the state, whether a
	// bounded call was made since the probe last looked, and whether the
	// store left the pool (guarded by storeHealth).
	kind, id      string
	health        atomic.Int32
	called        atomic.Bool
	healthDropped bool
}

// servedKey is a Client-Id and notify API that a handler using the store
// accepts: the admin API looks the records of a requestId up by these
// keys (point reads) instead of scanning the store.
type servedKey struct {
	clientID, api string
}

func newSharedStore(spec storeSpec, st idempotency.Store) *sharedStore {
	life, endLife := context.WithCancel(context.Background())
	return &sharedStore{
		Store:   st,
		name:    spec.name,
		open:    spec.open,
		waiters: map[idempotency.Key]chan struct{}{},
		stop:    make(chan struct{}),
		life:    life,
		endLife: endLife,
	}
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

// Destruct closes the store when the last handler using it is cleaned up.
// Requests still running then get idempotency.ErrClosed and answer U. While
// the store is being opened in the background (a broken Badger store being
// reopened, or a Redis server not reachable yet), Destruct ends that loop;
// it waits for a loop that is only connecting (it ends within moments),
// so that nothing is left behind, but not for one closing a broken Badger
// store, which may wait for its directory. Closing a Badger store is
// bounded (idempotency.BadgerOptions.CloseTimeout): a store whose
// directory was removed, or whose filesystem is full or hung, does not
// hold up a reload or the stop of the process; what it could not flush is
// logged.
func (s *sharedStore) Destruct() error {
	s.stateMu.Lock()
	if s.destroyed {
		s.stateMu.Unlock()
		return nil
	}
	s.destroyed = true
	if s.stop != nil {
		close(s.stop)
	}
	if s.endLife != nil {
		// Ends running admin scans: Close waits for them.
		s.endLife()
	}
	st, down, looping := s.Store, s.down, s.looping
	s.stateMu.Unlock()
	s.dropHealth()
	if down == nil {
		return st.Close()
	}
	if looping != nil && !errors.Is(down, errStoreBroken) {
		select {
		case <-looping:
		case <-time.After(destructWait):
			storeLog.Warn("the background connection attempt did not end in time", zap.String("store", s.name))
		}
	}
	return nil
}

// destructWait bounds Destruct's wait for a connecting loop.
const destructWait = 10 * time.Second

// openStore is how the pool opens a Badger directory; tests may swap it.
var openStore = func(dir string) (idempotency.Store, error) {
	return idempotency.OpenBadger(idempotency.BadgerOptions{
		Dir:    dir,
		Logger: storeLog.With(zap.String("storage", dir)),
	})
}

// acquireStore takes a reference to the Badger store in dir.
func acquireStore(dir string) (*sharedStore, error) {
	return acquire(badgerSpec(dir))
}

// acquire takes a reference to the store of spec, opening it if no handler
// holds it yet. When the store cannot be opened for a reason that may pass
// (spec.retryable: Redis unreachable), the handler gets the store anyway,
// its calls fail (U) until a background loop has opened it.
func acquire(spec storeSpec) (*sharedStore, error) {
	v, loaded, err := storePool.LoadOrNew(spec.key, func() (caddy.Destructor, error) {
		st, err := spec.open(context.Background())
		if err == nil {
			return newSharedStore(spec, st), nil
		}
		if errors.Is(err, idempotency.ErrLocked) {
			// Another process holds the Badger directory: most likely
			// `caddy validate` on a host where the gateway runs. Nothing
			// more can be checked without the lock; the store is opened
			// when this config's apps start (startgate.go), which fails
			// then if the directory is still held.
			s := newSharedStore(spec, nil)
			s.down = describeOpenError(spec, err)
			s.deferred = true
			storeLog.Info("the storage is in use by another process (a running Caddy?): not opened by this provisioning; it is opened when the config starts, which fails if the other process still holds it",
				zap.String("storage", spec.name))
			return s, nil
		}
		if spec.retryable == nil || !spec.retryable(err) {
			return nil, describeOpenError(spec, err)
		}
		s := newSharedStore(spec, nil)
		s.down = fmt.Errorf("%w (%s): %w", errStoreUnavailable, spec.name, err)
		s.looping = make(chan struct{})
		storeLog.Warn("the store is not reachable: notifications are answered U (DWS resends them) until it is; connecting in the background",
			zap.String("store", spec.name), zap.Error(err))
		go s.openLoop(nil, 2)
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	s := v.(*sharedStore)
	if !loaded {
		s.startHealth(spec.kind)
	}
	return s, nil
}

func releaseStore(key string) error {
	_, err := storePool.Delete(key)
	return err
}

// describeOpenError turns Badger's directory-lock failure into advice.
func describeOpenError(spec storeSpec, err error) error {
	if errors.Is(err, idempotency.ErrLocked) {
		return fmt.Errorf("dws_notify: storage %s is locked by another process (a running Caddy?): one directory serves one Caddy process; stop the other or point storage at another directory: %w", spec.name, err)
	}
	if spec.retryable != nil {
		return fmt.Errorf("dws_notify: opening the store (%s): %w", spec.name, err)
	}
	return fmt.Errorf("dws_notify: opening storage %s: %w", spec.name, err)
}

// track registers an in-flight claim held by this process; the returned
// function wakes every duplicate waiting for it.
func (s *sharedStore) track(key idempotency.Key) func() {
	ch := make(chan struct{})
	s.mu.Lock()
	s.waiters[key] = ch
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		if s.waiters[key] == ch {
			delete(s.waiters, key)
		}
		s.mu.Unlock()
		close(ch)
	}
}

// pollInterval is how often a waiting duplicate re-reads the store when the
// claim it waits for is not tracked in this process (a claim taken just now,
// or left by a previous run whose lease has not expired).
const pollInterval = 25 * time.Millisecond

// awaitOutcome waits until the in-flight claim on key is done, released, or
// the deadline passes, and returns the record then (found reports whether
// one exists).
func (s *sharedStore) awaitOutcome(ctx context.Context, key idempotency.Key, deadline time.Time) (idempotency.Record, bool, error) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		wait := time.Until(deadline)
		if wait <= 0 {
			return s.Get(ctx, key)
		}
		s.mu.Lock()
		ch := s.waiters[key]
		s.mu.Unlock()
		if ch == nil && wait > pollInterval {
			wait = pollInterval
		}
		timer.Reset(wait)
		select {
		case <-ch: // a nil channel blocks: poll on the timer
			if !timer.Stop() {
				<-timer.C
			}
		case <-timer.C:
		case <-ctx.Done():
			return idempotency.Record{}, false, ctx.Err()
		}
		rec, found, err := s.Get(ctx, key)
		if err != nil || !found || rec.State != idempotency.StateInFlight {
			return rec, found, err
		}
	}
}

// errStoreUnavailable is wrapped by the error of calls made while the store
// has not been opened yet (Redis unreachable since the handler was
// provisioned).
var errStoreUnavailable = errors.New("dws_notify: the store is not reachable yet; connecting in the background")

// errNoStore is reported when a request reaches a handler whose store
// reference was already given back.
var errNoStore = errors.New("dws_notify: store is not available")
