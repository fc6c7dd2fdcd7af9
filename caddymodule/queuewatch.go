package caddymodule

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/guard"
)

// The watch of a pooled store's inbox queue. Every queueStatsEvery it
// reads the queue's figures into the metrics (inbox_queued,
// inbox_oldest_age_seconds, inbox_dead_letters) while an inbox of this
// process delivers the storage, and also while none does but the storage
// holds queued notifications or dead letters; inbox_delivering says which.
// While notifications answered S wait with no inbox delivering them (a
// reload or a start with acknowledge on_delivery on a storage an
// on_receipt config left them in) it says so at WARN, once until an inbox
// delivers again. Pool entries that share a store id (a Redis reload that
// changes only the password or a timeout) are one storage: it is
// delivered when any of them delivers it. A store whose queue is refused
// (Redis Cluster) is not watched. The readings are store calls: like any
// other they tell the guard the store's health (and stand for its idle
// read of a store that is no durability prober).

const (
	// queueStatsEvery is how often the watch reads the queue.
	queueStatsEvery = 5 * time.Second
	// queueStatsTimeout bounds each reading.
	queueStatsTimeout = 5 * time.Second
)

// queueWatch is the watch of one pooled store's queue (its deliveries').
type queueWatch struct {
	d    *deliveries
	ctx  context.Context // ends with end: bounds the readings
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu             sync.Mutex
	published      bool   // the store's queue gauges exist: kept current from then on
	strandedBefore bool   // the last reading found queued notifications and no inbox delivering
	gen            uint64 // bumped when an inbox starts: a reading begun before writes nothing
}

// watches are the started watches by store id, and the ids whose
// stranded queue was reported (warn) since an inbox last delivered them.
var watches = struct {
	sync.Mutex
	m      map[string][]*queueWatch
	warned map[string]bool
}{m: map[string][]*queueWatch{}, warned: map[string]bool{}}

// start registers w under its store id and starts its readings, once the
// pooled store has its guarded store.
func (w *queueWatch) start() {
	id := w.d.store.id
	watches.Lock()
	watches.m[id] = append(watches.m[id], w)
	watches.Unlock()
	w.ctx, w.stop = context.WithCancel(context.Background())
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(queueStatsEvery)
		defer t.Stop()
		for {
			select {
			case <-w.ctx.Done():
				return
			case <-t.C:
			}
			if !w.read(processMetrics()) {
				return
			}
		}
	}()
}

// deliveredHere reports whether an inbox of this process delivers the
// storage of store id: a pool entry with that id has a running inbox.
func deliveredHere(id string) bool {
	watches.Lock()
	ws := slices.Clone(watches.m[id])
	watches.Unlock()
	for _, w := range ws {
		if w.d.Running() != nil {
			return true
		}
	}
	return false
}

// read reads the queue once into m and reports false when the store has
// no queue to watch. Queued notifications found twice in a row with no
// inbox delivering them are reported (warn).
func (w *queueWatch) read(m *metrics) bool {
	s := w.d.store
	if !queueWatchable(s) {
		return false
	}
	w.mu.Lock()
	gen := w.gen
	w.mu.Unlock()
	st, err := queueStats(w.ctx, s)
	if errors.Is(err, guard.ErrNoQueue) {
		return false
	}
	delivering := deliveredHere(s.id) // after the reading, which may take a while
	w.mu.Lock()
	if err != nil || w.gen != gen { // the store is down or not open yet (store_up says so), or an inbox started meanwhile
		w.strandedBefore = false
		w.mu.Unlock()
		return true
	}
	publish := delivering || st.Queued > 0 || st.Dead > 0 || w.published
	w.published = publish
	stranded := !delivering && st.Queued > 0
	report := stranded && w.strandedBefore
	w.strandedBefore = stranded
	w.mu.Unlock()
	if publish {
		m.ObserveQueue(s.id, st, time.Now())
		m.ObserveDelivering(s.id, delivering)
	}
	if report && !caddy.Exiting() {
		w.warn(storeLog, st)
	}
	return true
}

// queueStats reads s's queue figures within queueStatsTimeout.
func queueStats(parent context.Context, s *sharedStore) (idempotency.QueueStats, error) {
	ctx, cancel := context.WithTimeout(parent, queueStatsTimeout)
	defer cancel()
	return s.QueueStats(ctx)
}

// queueWatchable reports false for a store whose queue is refused (a
// Redis Cluster). A store not open yet may be watchable: its readings
// fail until it is.
func queueWatchable(s *sharedStore) bool {
	st, err := s.Current()
	if err != nil {
		return true
	}
	q, ok := st.(idempotency.QueueChecker)
	return !ok || q.QueueSupported() == nil
}

// delivering records that an inbox of this process started delivering
// the store's inbox (switchTo, under the Handoff's lock).
func (w *queueWatch) delivering(m *metrics) {
	w.mu.Lock()
	w.published = true
	w.gen++
	w.mu.Unlock()
	watches.Lock()
	delete(watches.warned, w.d.store.id)
	watches.Unlock()
	m.PrecreateQueue(w.d.store.id)
	m.ObserveDelivering(w.d.store.id, true)
}

// reportStranded says, through l, how many notifications wait when no
// inbox of this process delivers the storage any more (leave).
func (w *queueWatch) reportStranded(l *zap.Logger) {
	s := w.d.store
	if deliveredHere(s.id) {
		return
	}
	st, err := queueStats(context.Background(), s)
	if err != nil || st.Queued == 0 {
		return
	}
	w.warn(l, st)
}

// warn says, once until an inbox delivers again, that no running config
// of this gateway delivers the storage's inbox while st.Queued
// notifications wait (in a fleet, another gateway may).
func (w *queueWatch) warn(l *zap.Logger, st idempotency.QueueStats) {
	id := w.d.store.id
	if deliveredHere(id) {
		return
	}
	watches.Lock()
	warned := watches.warned[id]
	watches.warned[id] = true
	watches.Unlock()
	if warned {
		return
	}
	l.Warn("no running config of this gateway delivers this storage's inbox: notifications answered S wait until a config with acknowledge on_receipt on this storage runs, here or on another gateway of the fleet",
		zap.String("storage", w.d.store.name), zap.Int64("queued", st.Queued), zap.Time("oldest", st.Oldest))
}

// end stops the readings and unregisters w: its store leaves the pool.
// When another pool entry has the same store id, it takes the gauges over
// (they exist: it keeps them current). Otherwise the store's queue gauges
// go when its queue is empty; when it is not, they keep a last reading
// with inbox_delivering 0: nothing here delivers that storage any more.
func (w *queueWatch) end() {
	if w.stop == nil {
		return
	}
	w.stop()
	w.wg.Wait()
	id := w.d.store.id
	watches.Lock()
	rest := slices.Clone(slices.DeleteFunc(watches.m[id], func(o *queueWatch) bool { return o == w }))
	if len(rest) == 0 {
		delete(watches.m, id)
		delete(watches.warned, id)
	} else {
		watches.m[id] = rest
	}
	watches.Unlock()
	w.mu.Lock()
	published := w.published
	w.mu.Unlock()
	if !published || caddy.Exiting() {
		return
	}
	m := processMetrics()
	if len(rest) > 0 {
		for _, o := range rest {
			o.mu.Lock()
			o.published = true
			o.mu.Unlock()
		}
		m.ObserveDelivering(id, deliveredHere(id))
		return
	}
	st, err := queueStats(context.Background(), w.d.store)
	if err == nil && st.Queued == 0 && st.Dead == 0 {
		m.DeleteQueue(id)
		return
	}
	if err == nil {
		m.ObserveQueue(id, st, time.Now())
	}
	m.ObserveDelivering(id, false)
}
