package caddymodule

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

// Calls into the store are bounded and guarded, because the storage can fail
// in two ways that would otherwise leave DWS without an answer:
//
//   - It stops completing writes (a frozen or hung filesystem): Badger's
//     commit, and the group-commit fsync, then wait forever, and so would
//     the request. Every call made while answering a notification therefore
//     runs on a worker goroutine, and the caller gives up after
//     storeCallTimeout and answers U. The worker is stranded until the
//     storage answers; there are at most maxPendingStoreCalls workers, and
//     beyond that calls fail at once, so a storage that never comes back
//     costs a bounded number of goroutines.
//   - Badger cannot create a file (the directory became unwritable or
//     read-only, or the process ran out of descriptors) when it rotates its
//     memtable: it is then left without a memtable for good (badger
//     v4.9.6). The Badger store fails stop (idempotency/failstop.go): from
//     then on every call returns an error wrapping idempotency.ErrFailed
//     and none reaches Badger, whose next write would exit the process.
//     Such an error, or a panic in a store call, is answered U, the store
//     is marked broken so that no further call reaches it, and one
//     goroutine closes and reopens it.
//     Badger's flush on close can only finish once the directory is
//     writable again; the store's Close gives up waiting after
//     idempotency.DefaultCloseTimeout and the flush goes on in the
//     background, holding the directory lock, so the reopening attempts
//     succeed once it is done. The reopened store then serves.
var (
	// storeCallTimeout bounds one store call made while answering a
	// notification. Normal calls take milliseconds.
	storeCallTimeout = 5 * time.Second
	// maxPendingStoreCalls bounds the store calls running at once, the
	// ones whose callers gave up waiting included (it is the number of
	// worker goroutines).
	maxPendingStoreCalls int64 = 1024
	// reopenRetry is the pause between attempts to reopen a broken store.
	reopenRetry = time.Second
)

var (
	errStoreBroken = errors.New("dws_notify: the store failed and is being reopened")
	errStoreBusy   = errors.New("dws_notify: too many store calls are waiting for the storage")
)

// current returns the store to call, or the reason there is none: the
// store broke and is being reopened (errStoreBroken), or it has not been
// reached yet (errStoreUnavailable).
func (s *sharedStore) current() (idempotency.Store, error) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if s.down != nil {
		return nil, s.down
	}
	return s.Store, nil
}

type callResult[T any] struct {
	v   T
	err error
}

// boundedCall runs f on the current store on a worker goroutine and waits
// at most storeCallTimeout (or until ctx ends) for it. A panic in f is
// turned into an error and, like an error wrapping idempotency.ErrFailed,
// takes the store out of service (markBroken).
func boundedCall[T any](s *sharedStore, ctx context.Context, op string, f func(context.Context, idempotency.Store) (T, error)) (T, error) {
	var zero T
	st, err := s.current()
	if err != nil {
		s.observe(err)
		return zero, err
	}
	done := make(chan callResult[T], 1)
	ok := storeWorkers.run(func() {
		var r callResult[T]
		defer func() {
			if p := recover(); p != nil {
				r = callResult[T]{err: fmt.Errorf("dws_notify: %s: the store failed: %v", op, p)}
				s.markBroken(st, r.err)
			}
			done <- r
		}()
		r.v, r.err = f(ctx, st)
		if errors.Is(r.err, idempotency.ErrFailed) {
			s.markBroken(st, r.err)
		}
	})
	if !ok {
		s.observe(errStoreBusy)
		return zero, errStoreBusy
	}
	var r callResult[T]
	select {
	case r = <-done:
	case <-deadlineAfter(storeCallTimeout):
		r.err = fmt.Errorf("dws_notify: %s: no answer from the store within %s: %w", op, storeCallTimeout, context.DeadlineExceeded)
	case <-ctx.Done():
		r.err = fmt.Errorf("dws_notify: %s: %w", op, context.Cause(ctx))
	}
	s.observe(r.err)
	return r.v, r.err
}

// workerPool runs functions on goroutines it keeps: an idle worker takes the
// next function, and a new one is started when none is idle, up to
// maxPendingStoreCalls workers in all (busy, stranded or idle). A worker
// idle for workerIdle ends. Handing a call to a waiting worker costs a
// fraction of starting a goroutine and a timer per call.
type workerPool struct {
	work    chan func() // unbuffered: a send succeeds only to an idle worker
	workers atomic.Int64
	busy    atomic.Int64 // workers running a function
}

var storeWorkers = &workerPool{work: make(chan func())}

const workerIdle = 10 * time.Second

// run hands f to a worker; it reports false when every worker allowed is
// busy.
func (p *workerPool) run(f func()) bool {
	select {
	case p.work <- f:
		return true
	default:
	}
	if p.workers.Add(1) > maxPendingStoreCalls {
		p.workers.Add(-1)
		return false
	}
	go p.worker(f)
	return true
}

func (p *workerPool) worker(f func()) {
	defer p.workers.Add(-1)
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		p.busy.Add(1)
		f()
		p.busy.Add(-1)
		idle.Reset(workerIdle)
		select {
		case f = <-p.work:
		case <-idle.C:
			return
		}
	}
}

// deadlineAfter returns a channel that is closed at least d from now (and
// at most deadlineGrain later). Callers waiting for about the same moment
// share one channel and one timer, so a bounded call costs no timer of its
// own.
func deadlineAfter(d time.Duration) <-chan struct{} {
	slot := (time.Since(deadlineEpoch) + d + deadlineGrain) / deadlineGrain
	deadlines.mu.Lock()
	defer deadlines.mu.Unlock()
	ch, ok := deadlines.m[slot]
	if !ok {
		ch = make(chan struct{})
		deadlines.m[slot] = ch
		time.AfterFunc(time.Until(deadlineEpoch.Add(slot*deadlineGrain)), func() {
			deadlines.mu.Lock()
			delete(deadlines.m, slot)
			deadlines.mu.Unlock()
			close(ch)
		})
	}
	return ch
}

const deadlineGrain = 50 * time.Millisecond

var (
	deadlineEpoch = time.Now()
	deadlines     = struct {
		mu sync.Mutex
		m  map[time.Duration]chan struct{}
	}{m: map[time.Duration]chan struct{}{}}
)

// Claim implements idempotency.Store, bounded.
func (s *sharedStore) Claim(ctx context.Context, key idempotency.Key, fp idempotency.Fingerprint, lease, retention time.Duration) (idempotency.ClaimResult, error) {
	return boundedCall(s, ctx, "claim", func(ctx context.Context, st idempotency.Store) (idempotency.ClaimResult, error) {
		return st.Claim(ctx, key, fp, lease, retention)
	})
}

// Complete implements idempotency.Store, bounded.
func (s *sharedStore) Complete(ctx context.Context, key idempotency.Key, token uint64, answer idempotency.Answer, retention time.Duration) error {
	_, err := boundedCall(s, ctx, "complete", func(ctx context.Context, st idempotency.Store) (struct{}, error) {
		return struct{}{}, st.Complete(ctx, key, token, answer, retention)
	})
	return err
}

// Release implements idempotency.Store, bounded.
func (s *sharedStore) Release(ctx context.Context, key idempotency.Key, token uint64) error {
	_, err := boundedCall(s, ctx, "release", func(ctx context.Context, st idempotency.Store) (struct{}, error) {
		return struct{}{}, st.Release(ctx, key, token)
	})
	return err
}

// Get implements idempotency.Store, bounded.
func (s *sharedStore) Get(ctx context.Context, key idempotency.Key) (idempotency.Record, bool, error) {
	type got struct {
		rec   idempotency.Record
		found bool
	}
	g, err := boundedCall(s, ctx, "get", func(ctx context.Context, st idempotency.Store) (got, error) {
		rec, found, err := st.Get(ctx, key)
		return got{rec, found}, err
	})
	return g.rec, g.found, err
}

// Scan implements idempotency.Store for the admin API: guarded, not bounded
// in time (a scan of a large store may take long, and nobody waits for it
// but an operator; the admin API bounds how many run at once). It ends as
// soon as ctx ends or the store is destroyed (Destruct), whose Close would
// otherwise wait for it; it then fails with idempotency.ErrClosed. A panic
// of fn itself is passed on.
func (s *sharedStore) Scan(ctx context.Context, fn func(idempotency.Record) bool) (err error) {
	st, err := s.current()
	if err != nil {
		return err
	}
	if s.life != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(s.life, cancel)()
		defer func() {
			if err != nil && s.life.Err() != nil && errors.Is(err, context.Canceled) {
				err = fmt.Errorf("dws_notify: scan of %s ended: the store is being closed: %w", s.name, idempotency.ErrClosed)
			}
		}()
	}
	inFn := false
	defer func() {
		if inFn {
			return
		}
		if p := recover(); p != nil {
			err = fmt.Errorf("dws_notify: scan: the store failed: %v", p)
			s.markBroken(st, err)
		}
	}()
	err = st.Scan(ctx, func(rec idempotency.Record) bool {
		inFn = true
		more := fn(rec)
		inFn = false
		return more
	})
	if errors.Is(err, idempotency.ErrFailed) {
		s.markBroken(st, err)
	}
	return err
}

// markBroken takes st out of service after it panicked or failed
// (idempotency.ErrFailed) and starts reopening it, once.
func (s *sharedStore) markBroken(st idempotency.Store, cause error) {
	s.stateMu.Lock()
	if s.down != nil || s.destroyed || s.Store != st {
		s.stateMu.Unlock()
		return
	}
	s.down = errStoreBroken
	s.looping = make(chan struct{})
	if s.stop == nil {
		s.stop = make(chan struct{})
	}
	s.stateMu.Unlock()
	s.setHealth(false)
	storeLog.Error("the store failed; notifications are answered U until it is reopened",
		zap.String("storage", s.name), zap.Error(cause))
	go s.openLoop(st, 1)
}

// openLoop opens the store until that works or the store is destroyed,
// then puts it in service. With old (a store that broke) it first closes
// old, which for Badger waits (boundedly) for the directory to be
// writable again.
// first is the number of the first attempt: acquire made attempt 1 itself
// when the store could not be reached at provisioning.
func (s *sharedStore) openLoop(old idempotency.Store, first int) {
	s.stateMu.Lock()
	looping, stop := s.looping, s.stop
	s.stateMu.Unlock()
	defer close(looping)
	log := storeLog
	retry := reopenRetry
	reopening := old != nil
	if reopening {
		func() {
			defer func() {
				if p := recover(); p != nil {
					log.Error("closing the failed store panicked", zap.String("storage", s.name), zap.Any("panic", p))
				}
			}()
			if err := old.Close(); err != nil {
				log.Warn("closing the failed store", zap.String("storage", s.name), zap.Error(err))
			}
		}()
	}
	open := s.open
	if open == nil {
		open = func(context.Context) (idempotency.Store, error) { return openStore(s.name) }
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for attempt := first; ; attempt++ {
		if attempt > 1 {
			select {
			case <-stop:
				return
			case <-time.After(retry):
			}
		}
		select {
		case <-stop:
			return
		default:
		}
		st, err := open(ctx)
		if err == nil {
			s.stateMu.Lock()
			if s.destroyed {
				s.stateMu.Unlock()
				_ = st.Close()
				return
			}
			s.Store, s.down = st, nil
			s.stateMu.Unlock()
			s.setHealth(true)
			if reopening {
				log.Info("the store was reopened; notifications are served again", zap.String("storage", s.name), zap.Int("attempts", attempt))
			} else {
				log.Info("the store is reachable; notifications are served again", zap.String("store", s.name), zap.Int("attempts", attempt))
			}
			return
		}
		if attempt == 1 || attempt%60 == 0 {
			if reopening {
				log.Warn("reopening the failed store; retrying", zap.String("storage", s.name), zap.Int("attempt", attempt), zap.Error(err))
			} else {
				log.Warn("the store is still not reachable; notifications are answered U; retrying", zap.String("store", s.name), zap.Int("attempt", attempt), zap.Error(err))
			}
		}
	}
}
