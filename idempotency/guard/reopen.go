package guard

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// markBroken takes st out of service after it panicked or failed
// (idempotency.ErrFailed) and starts reopening it, once.
func (s *Store) markBroken(st idempotency.Store, cause error) {
	s.stateMu.Lock()
	if s.down != nil || s.destroyed || s.st != st {
		s.stateMu.Unlock()
		return
	}
	s.down = ErrBroken
	s.looping = make(chan struct{})
	s.stateMu.Unlock()
	s.setHealth(false)
	s.log.Error("the store failed; notifications are answered U until it is reopened",
		zap.String("storage", s.opts.Name), zap.Error(cause))
	go s.openLoop(st, 1)
}

// retired reports whether st was taken out of service (markBroken) while
// the guard itself is still open: a call on st that then fails with
// idempotency.ErrClosed met the guard's own Close of the failed store.
func (s *Store) retired(st idempotency.Store) bool {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	return !s.destroyed && (s.down != nil || s.st != st)
}

// openLoop opens the store until that works or the Store is closed, then
// puts it in service. With old (a store that failed) it first closes old.
// Badger's flush on close can only finish once its directory is writable
// again; its Close gives up waiting after idempotency.DefaultCloseTimeout
// and the flush goes on in the background, holding the directory lock, so
// the opening attempts succeed once it is done. first is the number of the first attempt: Connecting's caller
// made attempt 1 itself.
func (s *Store) openLoop(old idempotency.Store, first int) {
	s.stateMu.Lock()
	looping := s.looping
	s.stateMu.Unlock()
	defer close(looping)
	log := s.log
	reopening := old != nil
	if reopening {
		func() {
			defer func() {
				if p := recover(); p != nil {
					log.Error("closing the failed store panicked", zap.String("storage", s.opts.Name), zap.Any("panic", p))
				}
			}()
			if err := old.Close(); err != nil {
				log.Warn("closing the failed store", zap.String("storage", s.opts.Name), zap.Error(err))
			}
		}()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for attempt := first; ; attempt++ {
		if attempt > 1 {
			select {
			case <-s.stop:
				return
			case <-time.After(s.opts.ReopenRetry):
			}
		}
		select {
		case <-s.stop:
			return
		default:
		}
		st, err := s.opts.Open(ctx)
		if err == nil {
			s.stateMu.Lock()
			if s.destroyed {
				s.stateMu.Unlock()
				_ = st.Close()
				return
			}
			s.st, s.down = st, nil
			s.stateMu.Unlock()
			s.setHealth(true)
			if reopening {
				log.Info("the store was reopened; notifications are served again", zap.String("storage", s.opts.Name), zap.Int("attempts", attempt))
			} else {
				log.Info("the store is reachable; notifications are served again", zap.String("store", s.opts.Name), zap.Int("attempts", attempt))
			}
			return
		}
		if attempt == 1 || attempt%60 == 0 {
			if reopening {
				log.Warn("reopening the failed store; retrying", zap.String("storage", s.opts.Name), zap.Int("attempt", attempt), zap.Error(err))
			} else {
				log.Warn("the store is still not reachable; notifications are answered U; retrying", zap.String("store", s.opts.Name), zap.Int("attempt", attempt), zap.Error(err))
			}
		}
	}
}

// OpenDeferred opens a Deferred store with Options.Open and puts it in
// service; opened reports whether it did. For any other Store, or one
// closed meanwhile, it does nothing. A failure leaves the Store deferred.
func (s *Store) OpenDeferred() (opened bool, err error) {
	if !s.IsDeferred() {
		return false, nil
	}
	st, err := s.opts.Open(s.life)
	if err != nil {
		return false, err
	}
	s.stateMu.Lock()
	if s.destroyed || !s.deferred {
		s.stateMu.Unlock()
		return false, st.Close()
	}
	s.st, s.down, s.deferred = st, nil, false
	s.stateMu.Unlock()
	s.setHealth(true)
	return true, nil
}
