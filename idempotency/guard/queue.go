package guard

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// ErrNoQueue is returned by the queue calls of a Store whose store does
// not implement idempotency.Queue.
var ErrNoQueue = errors.New("dws_notify: the store has no queue")

var _ idempotency.Queue = (*Store)(nil)

// queueCall is boundedCall for a queue operation: it reaches the queue of
// the store in service at the time of the call, so a store reopened after
// a failure is the one used from then on, and a call failing with
// idempotency.ErrFailed (or panicking) takes the store out of service
// like any other call.
func queueCall[T any](s *Store, ctx context.Context, op string, f func(context.Context, idempotency.Queue) (T, error)) (T, error) {
	return boundedCall(s, ctx, op, func(ctx context.Context, st idempotency.Store) (T, error) {
		q, ok := st.(idempotency.Queue)
		if !ok {
			var zero T
			return zero, fmt.Errorf("%w (%s)", ErrNoQueue, s.opts.Name)
		}
		return f(ctx, q)
	})
}

// queueCall0 is queueCall for an operation with no result but its error.
func queueCall0(s *Store, ctx context.Context, op string, f func(context.Context, idempotency.Queue) error) error {
	_, err := queueCall(s, ctx, op, func(ctx context.Context, q idempotency.Queue) (struct{}, error) {
		return struct{}{}, f(ctx, q)
	})
	return err
}

// Enqueue implements idempotency.Queue, bounded.
func (s *Store) Enqueue(ctx context.Context, key idempotency.Key, token uint64, item idempotency.NewItem, opts idempotency.EnqueueOptions) error {
	return queueCall0(s, ctx, "enqueue", func(ctx context.Context, q idempotency.Queue) error {
		return q.Enqueue(ctx, key, token, item, opts)
	})
}

// Lease implements idempotency.Queue, bounded. Items the store leases
// after the call gave up are taken over once their lease ends.
func (s *Store) Lease(ctx context.Context, max int, lease time.Duration) ([]idempotency.Item, error) {
	return queueCall(s, ctx, "lease", func(ctx context.Context, q idempotency.Queue) ([]idempotency.Item, error) {
		return q.Lease(ctx, max, lease)
	})
}

// Ack implements idempotency.Queue, bounded.
func (s *Store) Ack(ctx context.Context, ref idempotency.ItemRef, status int, retention time.Duration) error {
	return queueCall0(s, ctx, "ack", func(ctx context.Context, q idempotency.Queue) error {
		return q.Ack(ctx, ref, status, retention)
	})
}

// Reject implements idempotency.Queue, bounded.
func (s *Store) Reject(ctx context.Context, ref idempotency.ItemRef, status int, retention time.Duration) error {
	return queueCall0(s, ctx, "reject", func(ctx context.Context, q idempotency.Queue) error {
		return q.Reject(ctx, ref, status, retention)
	})
}

// Retry implements idempotency.Queue, bounded.
func (s *Store) Retry(ctx context.Context, ref idempotency.ItemRef, after time.Duration, status int, reason string) error {
	return queueCall0(s, ctx, "retry", func(ctx context.Context, q idempotency.Queue) error {
		return q.Retry(ctx, ref, after, status, reason)
	})
}

// DeadLetter implements idempotency.Queue, bounded.
func (s *Store) DeadLetter(ctx context.Context, ref idempotency.ItemRef, status int, reason string, keep, retention time.Duration) error {
	return queueCall0(s, ctx, "dead letter", func(ctx context.Context, q idempotency.Queue) error {
		return q.DeadLetter(ctx, ref, status, reason, keep, retention)
	})
}

// Unlease implements idempotency.Queue, bounded.
func (s *Store) Unlease(ctx context.Context, ref idempotency.ItemRef) error {
	return queueCall0(s, ctx, "unlease", func(ctx context.Context, q idempotency.Queue) error {
		return q.Unlease(ctx, ref)
	})
}

// Redeliver implements idempotency.Queue, bounded.
func (s *Store) Redeliver(ctx context.Context, key idempotency.Key, overtakers ...string) error {
	return queueCall0(s, ctx, "redeliver", func(ctx context.Context, q idempotency.Queue) error {
		return q.Redeliver(ctx, key, overtakers...)
	})
}

// RedeliverDead implements idempotency.Queue, bounded.
func (s *Store) RedeliverDead(ctx context.Context) (int, error) {
	return queueCall(s, ctx, "redeliver dead letters", func(ctx context.Context, q idempotency.Queue) (int, error) {
		return q.RedeliverDead(ctx)
	})
}

// Item implements idempotency.Queue, bounded.
func (s *Store) Item(ctx context.Context, key idempotency.Key) (idempotency.Item, bool, error) {
	type got struct {
		it    idempotency.Item
		found bool
	}
	g, err := queueCall(s, ctx, "item", func(ctx context.Context, q idempotency.Queue) (got, error) {
		it, found, err := q.Item(ctx, key)
		return got{it, found}, err
	})
	return g.it, g.found, err
}

// QueueStats implements idempotency.Queue, bounded.
func (s *Store) QueueStats(ctx context.Context) (idempotency.QueueStats, error) {
	return queueCall(s, ctx, "queue stats", func(ctx context.Context, q idempotency.Queue) (idempotency.QueueStats, error) {
		return q.QueueStats(ctx)
	})
}

// ScanItems implements idempotency.Queue like Scan: guarded, not bounded
// in time, ended when ctx ends or the Store is closed.
func (s *Store) ScanItems(ctx context.Context, fn func(idempotency.Item) bool) error {
	return s.scanWith(ctx, "scan items", func(ctx context.Context, st idempotency.Store, call func(func() bool) bool) error {
		q, ok := st.(idempotency.Queue)
		if !ok {
			return fmt.Errorf("%w (%s)", ErrNoQueue, s.opts.Name)
		}
		return q.ScanItems(ctx, func(it idempotency.Item) bool { return call(func() bool { return fn(it) }) })
	})
}
