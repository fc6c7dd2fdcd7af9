package guard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// DefaultMaxWorkers bounds the store calls running at once in the process
// (the shared Workers), the ones whose callers gave up waiting included.
const DefaultMaxWorkers = 1024

// Workers runs functions on goroutines it keeps: an idle worker takes the
// next function, and a new one is started when none is idle, up to a bound
// of workers in all (busy, stranded or idle). A worker idle for workerIdle
// ends. Handing a call to a waiting worker costs a fraction of starting a
// goroutine and a timer per call.
type Workers struct {
	max     int64
	work    chan func() // unbuffered: a send succeeds only to an idle worker
	workers atomic.Int64
	busy    atomic.Int64 // workers running a function
}

// NewWorkers returns a pool of at most max workers.
func NewWorkers(max int) *Workers {
	return &Workers{max: int64(max), work: make(chan func())}
}

// Busy is the number of workers running a function: calls in progress,
// and calls whose callers gave up while the storage does not answer.
func (p *Workers) Busy() int64 { return p.busy.Load() }

// Count is the number of workers, busy or idle.
func (p *Workers) Count() int64 { return p.workers.Load() }

var sharedWorkers = NewWorkers(DefaultMaxWorkers)

const workerIdle = 10 * time.Second

// run hands f to a worker; it reports false when every worker allowed is
// busy.
func (p *Workers) run(f func()) bool {
	select {
	case p.work <- f:
		return true
	default:
	}
	if p.workers.Add(1) > p.max {
		p.workers.Add(-1)
		return false
	}
	go p.worker(f)
	return true
}

func (p *Workers) worker(f func()) {
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

type callResult[T any] struct {
	v   T
	err error
}

// boundedCall runs f on the current store on a worker goroutine and waits
// at most Options.CallTimeout (or until ctx ends) for it. A panic in f is
// turned into an error and, like an error wrapping idempotency.ErrFailed,
// takes the store out of service (markBroken).
func boundedCall[T any](s *Store, ctx context.Context, op string, f func(context.Context, idempotency.Store) (T, error)) (T, error) {
	var zero T
	st, err := s.Current()
	if err != nil {
		s.observe(err)
		return zero, err
	}
	done := make(chan callResult[T], 1)
	ok := s.opts.Workers.run(func() {
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
		s.observe(ErrBusy)
		return zero, ErrBusy
	}
	var r callResult[T]
	select {
	case r = <-done:
		if errors.Is(r.err, idempotency.ErrClosed) && s.retired(st) {
			// Not a shutdown: the guard closed st, which failed while
			// this call ran on it, to reopen it.
			r.err = fmt.Errorf("dws_notify: %s: the store was taken out of service during the call (%v): %w", op, r.err, ErrBroken)
		}
	case <-deadlineAfter(s.opts.CallTimeout):
		r.err = fmt.Errorf("dws_notify: %s: no answer from the store within %s: %w", op, s.opts.CallTimeout, context.DeadlineExceeded)
	case <-ctx.Done():
		r.err = fmt.Errorf("dws_notify: %s: %w", op, context.Cause(ctx))
	}
	s.observe(r.err)
	return r.v, r.err
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
func (s *Store) Claim(ctx context.Context, key idempotency.Key, fp idempotency.Fingerprint, lease, retention time.Duration) (idempotency.ClaimResult, error) {
	return boundedCall(s, ctx, "claim", func(ctx context.Context, st idempotency.Store) (idempotency.ClaimResult, error) {
		return st.Claim(ctx, key, fp, lease, retention)
	})
}

// Complete implements idempotency.Store, bounded.
func (s *Store) Complete(ctx context.Context, key idempotency.Key, token uint64, answer idempotency.Answer, retention time.Duration) error {
	_, err := boundedCall(s, ctx, "complete", func(ctx context.Context, st idempotency.Store) (struct{}, error) {
		return struct{}{}, st.Complete(ctx, key, token, answer, retention)
	})
	return err
}

// Release implements idempotency.Store, bounded.
func (s *Store) Release(ctx context.Context, key idempotency.Key, token uint64) error {
	_, err := boundedCall(s, ctx, "release", func(ctx context.Context, st idempotency.Store) (struct{}, error) {
		return struct{}{}, st.Release(ctx, key, token)
	})
	return err
}

// Get implements idempotency.Store, bounded.
func (s *Store) Get(ctx context.Context, key idempotency.Key) (idempotency.Record, bool, error) {
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

var _ idempotency.DoneConfirmer = (*Store)(nil)

// ConfirmDone implements idempotency.DoneConfirmer, bounded: it confirms
// through the store in service, and returns nil for a store that does not
// implement it (its Complete does not wait after the commit).
func (s *Store) ConfirmDone(ctx context.Context, key idempotency.Key) error {
	_, err := boundedCall(s, ctx, "confirm", func(ctx context.Context, st idempotency.Store) (struct{}, error) {
		c, ok := st.(idempotency.DoneConfirmer)
		if !ok {
			return struct{}{}, nil
		}
		return struct{}{}, c.ConfirmDone(ctx, key)
	})
	return err
}

// Scan implements idempotency.Store: guarded, not bounded in time (a scan
// of a large store may take long, and nobody waits for it but an operator,
// whose requests the caller bounds). It ends as soon as ctx ends or the
// Store is closed, whose store's Close would otherwise wait for it; it
// then fails with idempotency.ErrClosed. A panic of fn itself is passed on.
func (s *Store) Scan(ctx context.Context, fn func(idempotency.Record) bool) error {
	return s.scanWith(ctx, "scan", func(ctx context.Context, st idempotency.Store, call func(func() bool) bool) error {
		return st.Scan(ctx, func(rec idempotency.Record) bool { return call(func() bool { return fn(rec) }) })
	})
}

// scanWith runs a scan of the store in service (Scan, ScanItems): it ends
// when ctx ends or the Store is closed; a panic of the store or an error
// wrapping idempotency.ErrFailed takes the store out of service, a panic
// of the caller's callback (which run calls through call) is passed on.
func (s *Store) scanWith(ctx context.Context, op string, run func(ctx context.Context, st idempotency.Store, call func(func() bool) bool) error) (err error) {
	st, err := s.Current()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.life, cancel)()
	defer func() {
		if err != nil && s.life.Err() != nil && errors.Is(err, context.Canceled) {
			err = fmt.Errorf("dws_notify: %s of %s ended: the store is being closed: %w", op, s.opts.Name, idempotency.ErrClosed)
		}
	}()
	inFn := false
	defer func() {
		if inFn {
			return
		}
		if p := recover(); p != nil {
			err = fmt.Errorf("dws_notify: %s: the store failed: %v", op, p)
			s.markBroken(st, err)
		}
	}()
	err = run(ctx, st, func(fn func() bool) bool {
		inFn = true
		more := fn()
		inFn = false
		return more
	})
	if errors.Is(err, idempotency.ErrFailed) {
		s.markBroken(st, err)
	}
	return err
}
