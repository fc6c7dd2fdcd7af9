package guard

import (
	"context"
	"errors"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// A store is up while its calls get answers, down while they do not: it is
// being opened or reopened (unreachable at first, failed, or deferred), or
// its last call failed for a reason other than the answer itself (a
// timeout, a lost connection, a storage error). Every bounded call updates
// it (atomic loads unless the state changes), and a store that has had no
// call for Options.ProbeEvery is read once (a point read of
// Options.ProbeKey), so the health also moves while no request arrives.

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
	case err == nil,
		errors.Is(err, idempotency.ErrLeaseLost),
		errors.Is(err, idempotency.ErrInvalidArgument),
		errors.Is(err, idempotency.ErrCorruptRecord):
		s.setHealth(true)
	case errors.Is(err, idempotency.ErrClosed),
		errors.Is(err, context.Canceled):
	default:
		s.setHealth(false)
	}
}

// probe reads the store once whenever it has had no call for
// Options.ProbeEvery, until the Store is closed.
func (s *Store) probe() {
	tick := time.NewTicker(s.opts.ProbeEvery)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		if s.called.Swap(false) {
			continue // a call in the last period told the state
		}
		_, _, _ = s.Get(context.Background(), s.opts.ProbeKey)
		s.called.Store(false)
	}
}
