package guard

import (
	"context"
	"errors"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// A store is up while its calls get answers and its writes are durable as
// configured, down otherwise: it is being opened or reopened (unreachable
// at first, failed, or deferred), its last call failed for a reason other
// than the answer itself (a timeout, a lost connection, a storage error),
// or a write's durability was not confirmed (idempotency.ErrUnconfirmed:
// Redis's WAIT or WAITAOF while a replica is missing). Every bounded call
// updates it (atomic loads unless the state changes), and a probe moves
// it while no request arrives: a store that implements
// idempotency.DurabilityProber is probed every Options.ProbeEvery with a
// write and its wait, whatever the traffic (reads that are answered, like
// the inbox's polling, say nothing of durability), so a missing replica
// shows before any notification; any other store is read at
// Options.ProbeKey when it has had no call for Options.ProbeEvery.
//
// Unconfirmed durability is sticky: the claims and reads the store still
// answers do not bring it back up, or the health would alternate with
// every notification (up at its claim, down at its completion) while every
// one is answered U. Only a probe whose write is confirmed does.

// Up reports whether the store answers and, as far as the last call or
// probe tells, confirms its writes.
func (s *Store) Up() bool { return s.health.Load() == healthUp }

// setHealth records whether the store answers and, when that changed,
// reports it to Options.OnHealth. Changes are serialised, so the hook sees
// them in order. While the store's durability is unconfirmed it stays
// down: only markConfirmed ends that.
func (s *Store) setHealth(up bool) {
	if s.health.Load() == healthState(up) {
		return
	}
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	if up && s.unconfirmed.Load() {
		return
	}
	s.swapHealth(up)
}

// swapHealth sets the health and tells Options.OnHealth of a change. The
// caller holds healthMu.
func (s *Store) swapHealth(up bool) {
	if want := healthState(up); s.health.Swap(want) == want {
		return
	}
	if s.opts.OnHealth != nil {
		s.opts.OnHealth(up)
	}
}

// healthState is the health state for up.
func healthState(up bool) int32 {
	if up {
		return healthUp
	}
	return healthDown
}

// markUnconfirmed records a write whose durability the store could not
// confirm: the store is down until markConfirmed.
func (s *Store) markUnconfirmed() {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	s.unconfirmedSeq.Add(1)
	s.unconfirmed.Store(true)
	s.swapHealth(false)
}

// markConfirmed records a probe that succeeded and brings the store up,
// unless a write was reported unconfirmed since the probe began (seq is
// unconfirmedSeq as it was then): the probe's wait says nothing of it.
func (s *Store) markConfirmed(seq uint64) {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	if s.unconfirmedSeq.Load() != seq {
		return
	}
	s.unconfirmed.Store(false)
	s.swapHealth(true)
}

// observe records the outcome of a bounded call. An error that is the
// store's answer (a lost lease, a bad argument, a corrupt record) means it
// is up, unless its durability is unconfirmed; one about the call's own
// end (the store being closed, the caller gone) or a queue call on a
// store without a queue says nothing; an unconfirmed write, and any other
// error, means it is down.
func (s *Store) observe(err error) {
	if !s.called.Load() {
		s.called.Store(true)
	}
	switch {
	case err == nil: // the usual case first: no error chain to walk
		s.setHealth(true)
	case errors.Is(err, idempotency.ErrUnconfirmed):
		s.markUnconfirmed()
	case errors.Is(err, idempotency.ErrLeaseLost),
		errors.Is(err, idempotency.ErrInvalidArgument),
		errors.Is(err, idempotency.ErrCorruptRecord):
		s.setHealth(true)
	case errors.Is(err, idempotency.ErrClosed),
		errors.Is(err, context.Canceled),
		errors.Is(err, ErrNoQueue):
	default:
		s.setHealth(false)
	}
}

// probe probes the store every Options.ProbeEvery when it is a
// DurabilityProber or its durability is unconfirmed, otherwise whenever
// it has had no call for that long, until the Store is closed.
func (s *Store) probe() {
	tick := time.NewTicker(s.opts.ProbeEvery)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		if s.called.Swap(false) && !s.unconfirmed.Load() && !s.isProber() {
			continue // a call in the last period told the state
		}
		s.probeOnce()
		s.called.Store(false)
	}
}

// isProber reports whether the store in service is an
// idempotency.DurabilityProber.
func (s *Store) isProber() bool {
	st, err := s.Current()
	if err != nil {
		return false
	}
	_, ok := st.(idempotency.DurabilityProber)
	return ok
}

// probeOnce probes the store in service: a write and its wait through
// idempotency.DurabilityProber, or a read of Options.ProbeKey. A confirmed
// write ends an unconfirmed durability; so does an answered read of a
// store that is no DurabilityProber (it has no better signal, and would
// otherwise stay down for good).
func (s *Store) probeOnce() {
	seq := s.unconfirmedSeq.Load()
	_, err := boundedCall(s, context.Background(), "probe", func(ctx context.Context, st idempotency.Store) (struct{}, error) {
		if p, ok := st.(idempotency.DurabilityProber); ok {
			return struct{}{}, p.ProbeDurability(ctx)
		}
		_, _, err := st.Get(ctx, s.opts.ProbeKey)
		return struct{}{}, err
	})
	if err == nil {
		s.markConfirmed(seq)
	}
}
