package guard

import (
	"context"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// Track registers an in-flight claim held by this process; the returned
// function wakes every duplicate waiting for it (AwaitOutcome).
func (s *Store) Track(key idempotency.Key) func() {
	ch := make(chan struct{})
	s.waitersMu.Lock()
	s.waiters[key] = ch
	s.waitersMu.Unlock()
	return func() {
		s.waitersMu.Lock()
		if s.waiters[key] == ch {
			delete(s.waiters, key)
		}
		s.waitersMu.Unlock()
		close(ch)
	}
}

// pollInterval is how often a waiting duplicate re-reads the store when the
// claim it waits for is not tracked in this process (a claim taken just now,
// or left by a previous run, or by another gateway sharing the store).
const pollInterval = 25 * time.Millisecond

// AwaitOutcome waits until the in-flight claim on key is done, released, or
// the deadline passes, and returns the record then (found reports whether
// one exists). A claim tracked in this process wakes it at once; any other
// is polled.
func (s *Store) AwaitOutcome(ctx context.Context, key idempotency.Key, deadline time.Time) (idempotency.Record, bool, error) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		wait := time.Until(deadline)
		if wait <= 0 {
			return s.Get(ctx, key)
		}
		s.waitersMu.Lock()
		ch := s.waiters[key]
		s.waitersMu.Unlock()
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
