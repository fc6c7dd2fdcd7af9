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
// updates it (atomic loads unless the state changes), and a store that
// has had no call for Options.ProbeEvery is probed once: with
// idempotency.DurabilityProber when the store implements it (a write and
// its wait, so a missing replica shows before any notification), with a
// point read of Options.ProbeKey otherwise. So the health also moves while
// no request arrives.
//
// Unconfirmed durability is sticky: the claims and reads the store still
// answers do not bring it back up, or the health would alternate with
// every notification (up at its claim, down at its completion) while every
// one is answered U. Only a probe whose write is confirmed does; while
// unconfirmed, the store is probed every Options.ProbeEvery whatever the
// traffic.

// Up reports whether the store answers.
func (s *Store) Up() bool { return s.health.Load() == healthUp }

// setHealth records whether the store answers and, when that changed,
// reports it to Options.OnHealth. Changes are serialised, so the hook sees
// them in order.
func (s *Store) setHealth(up bool) {
	want := healthDown
	if up {
		want = healthUp
	}
	if s.health.Load() == want {
		return
	}
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	if s.health.Swap(want) == want {
		return
	}
	if s.opts.OnHealth != nil {
		s.opts.OnHealth(up)
	}
}

// observe records the outcome of a bounded call. An error that is the
// store's answer (a lost lease, a bad argument, a corrupt record) means it
// is up; one about the call's own end (the store being closed, the caller
// gone) says nothing; any other means it is down.
func (s *Store) observe(err error) {
	if !s.called.Load() {
		s.called.Store(true)
	}
	switch {
	case errors.Is(err, idempotency.ErrUnconfirmed):
		s.unconfirmed.Store(true)
		s.setHealth(false)
	case err == nil,
		errors.Is(err, idempotency.ErrLeaseLost),
		errors.Is(err, idempotency.ErrInvalidArgument),
		errors.Is(err, idempotency.ErrCorruptRecord):
		if !s.unconfirmed.Load() {
			s.setHealth(true)
		}
	case errors.Is(err, idempotency.ErrClosed),
		errors.Is(err, context.Canceled):
	default:
		s.setHealth(false)
	}
}

// probe probes the store whenever it has had no call for
// Options.ProbeEvery, and every Options.ProbeEvery while its durability is
// unconfirmed, until the Store is closed.
func (s *Store) probe() {
	tick := time.NewTicker(s.opts.ProbeEvery)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		if s.called.Swap(false) && !s.unconfirmed.Load() {
			continue // a call in the last period told the state
		}
		s.probeOnce()
		s.called.Store(false)
	}
}

// probeOnce probes the store in service: a write and its wait through
// idempotency.DurabilityProber, or a read of Options.ProbeKey. A confirmed
// write ends an unconfirmed durability.
func (s *Store) probeOnce() {
	durable := false
	_, err := boundedCall(s, context.Background(), "probe", func(ctx context.Context, st idempotency.Store) (struct{}, error) {
		if p, ok := st.(idempotency.DurabilityProber); ok {
			durable = true
			return struct{}{}, p.ProbeDurability(ctx)
		}
		_, _, err := st.Get(ctx, s.opts.ProbeKey)
		return struct{}{}, err
	})
	// durable is read only after the call returned nil, which it does
	// once the function has returned.
	if err == nil && (durable || s.unconfirmed.Load()) {
		s.unconfirmed.Store(false)
		s.setHealth(true)
	}
}
