// Package guard runs an idempotency.Store for a long-lived server that must
// always answer: it is a Store that decorates any other one (Badger, Redis)
// and keeps the storage's failures from leaving a request without an
// answer. It does not import Caddy.
//
//   - Every Claim, Complete, Release and Get runs on a worker goroutine and
//     the caller gives up after Options.CallTimeout: a storage that stops
//     completing writes (a frozen or hung filesystem, a Redis that stopped
//     answering) costs the caller that long, never more. The workers are
//     bounded (Workers); beyond the bound calls fail at once with ErrBusy,
//     so a storage that never comes back costs a bounded number of
//     goroutines.
//   - A call that panics, or whose error wraps idempotency.ErrFailed (the
//     Badger store fails stop when it cannot rotate its memtable), takes the
//     store out of service: later calls fail with ErrBroken without
//     reaching it, and one goroutine closes it and opens it again with
//     Options.Open until that works.
//   - A store that could not be opened at first for a reason that may pass
//     (a Redis server that is down) is opened in the background
//     (Connecting); calls fail with ErrUnavailable until then. A store that
//     must not be opened yet (its directory is held by another process) is
//     Deferred until OpenDeferred.
//   - Track and AwaitOutcome let a duplicate wait for the copy that holds a
//     claim in this process, instead of polling the storage.
//   - The store's health (Up): up while calls get answers and writes are
//     confirmed as durable, down while they are not, probed when no call
//     was made for a while (a write and its wait through
//     idempotency.DurabilityProber, or a Get), reported to
//     Options.OnHealth on every change.
//
// Retrier, beside it, retries a failed completion in the background.
package guard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// Defaults of Options.
const (
	// DefaultCallTimeout bounds one store call. Normal calls take
	// milliseconds.
	DefaultCallTimeout = 5 * time.Second
	// DefaultReopenRetry is the pause between attempts to open a store.
	DefaultReopenRetry = time.Second
	// DefaultProbeEvery is how long a store may go without a call before
	// the health probe looks at it.
	DefaultProbeEvery = 5 * time.Second
)

// DefaultProbeKey is what the health probe reads: a Client-Id and API no
// handler serves.
var DefaultProbeKey = idempotency.Key{ClientID: "dws_notify", API: "health", RequestID: "probe"}

var (
	// ErrBroken is returned by calls made while a store that failed is
	// being reopened.
	ErrBroken = errors.New("dws_notify: the store failed and is being reopened")
	// ErrBusy is returned by calls made while every worker is taken by a
	// call that waits for the storage.
	ErrBusy = errors.New("dws_notify: too many store calls are waiting for the storage")
	// ErrUnavailable is wrapped by the error of calls made while a store
	// that could not be opened at first is opened in the background.
	ErrUnavailable = errors.New("dws_notify: the store is not reachable yet; connecting in the background")
)

// Options configures a Store.
type Options struct {
	// Name describes the store in log lines and errors: a directory, or a
	// server and prefix; never a credential.
	Name string
	// Open opens the store again: after it failed, or when it could not be
	// opened at first (Connecting, Deferred). Required. Its context ends
	// when the Store is closed.
	Open func(ctx context.Context) (idempotency.Store, error)
	// Logger receives the store's lines (failures, reopening, connecting).
	// Default: none.
	Logger *zap.Logger
	// CallTimeout bounds each Claim, Complete, Release and Get. Default:
	// DefaultCallTimeout.
	CallTimeout time.Duration
	// ReopenRetry is the pause between attempts to open the store.
	// Default: DefaultReopenRetry.
	ReopenRetry time.Duration
	// ProbeEvery is how long the store may go without a call before the
	// health probe looks at it (health.go), and the probe's period while
	// its writes are unconfirmed. Default: DefaultProbeEvery.
	ProbeEvery time.Duration
	// ProbeKey is the key the probe reads from a store that is no
	// idempotency.DurabilityProber. Default: DefaultProbeKey.
	ProbeKey idempotency.Key
	// OnHealth, when set, is called with the new health every time it
	// changes (and with the first one when the Store is made). Calls are
	// serialised, in the order of the changes.
	OnHealth func(up bool)
	// Workers runs the bounded calls. Default: one pool of
	// DefaultMaxWorkers shared by every Store of the process that has
	// none of its own.
	Workers *Workers
}

// Store is an idempotency.Store that guards another one (see the package
// documentation). Make it with New, Connecting or Deferred; Close ends it.
type Store struct {
	opts Options
	log  *zap.Logger

	stateMu   sync.Mutex
	st        idempotency.Store // the store called while down is nil
	down      error             // non-nil while there is no store to call: calls fail with it
	deferred  bool              // down until OpenDeferred
	destroyed bool              // Close ran
	stop      chan struct{}     // closed by Close: ends the opening loop and the probe
	looping   chan struct{}     // non-nil while an opening loop runs; closed when it ends

	// life is cancelled by Close before the store is closed, so that scans
	// and the contexts of Context end at once instead of holding up the
	// store's Close.
	life    context.Context
	endLife context.CancelFunc

	waitersMu sync.Mutex
	waiters   map[idempotency.Key]chan struct{}

	healthMu sync.Mutex
	health   atomic.Int32
	called   atomic.Bool // a bounded call was made since the probe last looked
	// unconfirmed is set by a call that failed with
	// idempotency.ErrUnconfirmed and cleared by a probe that succeeded;
	// unconfirmedSeq counts the failures (health.go). Both change under
	// healthMu.
	unconfirmed    atomic.Bool
	unconfirmedSeq atomic.Uint64
}

var _ idempotency.Store = (*Store)(nil)

// Health states of a Store.
const (
	healthUnknown int32 = iota
	healthUp
	healthDown
)

func newStore(st idempotency.Store, down error, opts Options) *Store {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	if opts.ReopenRetry <= 0 {
		opts.ReopenRetry = DefaultReopenRetry
	}
	if opts.ProbeEvery <= 0 {
		opts.ProbeEvery = DefaultProbeEvery
	}
	if opts.ProbeKey == (idempotency.Key{}) {
		opts.ProbeKey = DefaultProbeKey
	}
	if opts.Workers == nil {
		opts.Workers = sharedWorkers
	}
	life, endLife := context.WithCancel(context.Background())
	s := &Store{
		opts:    opts,
		log:     opts.Logger,
		st:      st,
		down:    down,
		stop:    make(chan struct{}),
		life:    life,
		endLife: endLife,
		waiters: map[idempotency.Key]chan struct{}{},
	}
	s.setHealth(down == nil)
	go s.probe()
	return s
}

// New returns st guarded: it serves at once.
func New(st idempotency.Store, opts Options) *Store {
	return newStore(st, nil, opts)
}

// Connecting returns a Store whose first attempt to open failed with cause,
// for a reason that may pass (an unreachable server): its calls fail with
// an error wrapping ErrUnavailable and cause, while Options.Open is tried
// again in the background until it works or the Store is closed.
func Connecting(cause error, opts Options) *Store {
	s := newStore(nil, fmt.Errorf("%w (%s): %w", ErrUnavailable, opts.Name, cause), opts)
	s.looping = make(chan struct{})
	s.log.Warn("the store is not reachable: notifications are answered U (DWS resends them) until it is; connecting in the background",
		zap.String("store", opts.Name), zap.Error(cause))
	go s.openLoop(nil, 2)
	return s
}

// Deferred returns a Store that must not be opened yet: its calls fail with
// cause until OpenDeferred opens it.
func Deferred(cause error, opts Options) *Store {
	s := newStore(nil, cause, opts)
	s.deferred = true
	return s
}

// Name is Options.Name.
func (s *Store) Name() string { return s.opts.Name }

// CallTimeout is the bound of each call (Options.CallTimeout, defaults
// applied).
func (s *Store) CallTimeout() time.Duration { return s.opts.CallTimeout }

// Current returns the store the calls go to, or the reason there is none:
// it failed and is being reopened (ErrBroken), it has not been reached yet
// (ErrUnavailable), or it is deferred (the cause given to Deferred).
func (s *Store) Current() (idempotency.Store, error) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if s.down != nil {
		return nil, s.down
	}
	return s.st, nil
}

// IsDeferred reports whether the Store waits for OpenDeferred.
func (s *Store) IsDeferred() bool {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	return s.deferred && !s.destroyed
}

// Context returns a copy of parent that is also cancelled when the Store
// is closed, for work on the store that nothing else bounds (a backup):
// the Close then ends it instead of waiting for it.
func (s *Store) Context(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	stop := context.AfterFunc(s.life, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// Close closes the store. Calls still running then fail (the store
// returns idempotency.ErrClosed), later ones too. While the store is being
// opened in the background Close ends that loop; it waits for a loop that
// is only connecting (it ends within moments), but not for one closing a
// failed store, which may wait for its storage. A second Close does
// nothing.
func (s *Store) Close() error {
	s.stateMu.Lock()
	if s.destroyed {
		s.stateMu.Unlock()
		return nil
	}
	s.destroyed = true
	close(s.stop)
	// Ends running scans: the store's Close waits for them.
	s.endLife()
	st, down, looping := s.st, s.down, s.looping
	s.stateMu.Unlock()
	if down == nil {
		return st.Close()
	}
	if looping != nil && !errors.Is(down, ErrBroken) {
		select {
		case <-looping:
		case <-time.After(closeWait):
			s.log.Warn("the background connection attempt did not end in time", zap.String("store", s.opts.Name))
		}
	}
	return nil
}

// closeWait bounds Close's wait for a connecting loop.
const closeWait = 10 * time.Second
