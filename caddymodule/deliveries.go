package caddymodule

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/inbox"
)

// deliveries runs the deliveries of one pooled store's inbox: the inbox of
// the newest started handler with acknowledge on_receipt that uses the
// store (its keys, timeouts and backoff), chosen by inbox.Handoff, so the
// deliveries go on across config reloads and follow the newest config.
// It lives as long as the store is pooled, and so does its watch of the
// queue (watch): its figures go into the metrics while an inbox delivers,
// and also while none does but the store still holds notifications
// answered S (a reload or a start with acknowledge on_delivery after
// on_receipt), which then wait.
type deliveries struct {
	*inbox.Handoff[*Handler]
	store *sharedStore

	stop      chan struct{} // closed by close: ends watch
	watchWG   sync.WaitGroup
	published atomic.Bool // the store's queue gauges exist: watch keeps them current

	warnMu sync.Mutex
	warned bool // the stranded queue was reported; cleared when an inbox delivers
}

// deliveryStopWait (or the stopping handler's forward_timeout and a
// second, if longer) bounds how long a stopping inbox waits for the tries
// under way before it cancels them (each is then given back, due at once).
const deliveryStopWait = 5 * time.Second

// statsEvery is how often the queue's figures are read for the metrics
// (a variable for the tests; read when a store is pooled).
var statsEvery = 5 * time.Second

func newDeliveries(s *sharedStore) *deliveries {
	d := &deliveries{store: s, stop: make(chan struct{})}
	d.Handoff = inbox.NewHandoff(d.switchTo, func(ctx context.Context, h *Handler) { h.inbox.Stop(ctx) }, stopWait)
	return d
}

// startWatch starts watch, once the pooled store has its guarded store.
func (d *deliveries) startWatch() {
	d.watchWG.Add(1)
	go d.watch(processMetrics(), statsEvery)
}

// stopWait is how long h's tries under way may run on when its inbox
// stops: a try cut short after the backend took the notification would
// be sent again, so each gets its whole forward_timeout.
func stopWait(h *Handler) time.Duration {
	return max(deliveryStopWait, h.settings.ForwardTimeout+time.Second)
}

// leave takes h's inbox out of the deliveries (inbox.Handoff.Leave) and,
// when no running config delivers the store's inbox any more (its last
// on_receipt handler stopped: a reload to on_delivery, or the site
// removed), says how many notifications answered S still wait: they are
// delivered only once a config with on_receipt on this storage runs.
func (d *deliveries) leave(h *Handler) {
	wasRunning := d.Running() == h
	d.Leave(h)
	if !wasRunning || d.Running() != nil || caddy.Exiting() {
		return // another inbox delivers, or Caddy stops: nothing is stranded
	}
	ctx, cancel := context.WithTimeout(context.Background(), statsEvery)
	defer cancel()
	st, err := d.store.QueueStats(ctx)
	if err != nil || st.Queued == 0 {
		return
	}
	d.warnStranded(h.logger, st)
}

// warnStranded says, once until an inbox delivers again, that no running
// config of this gateway delivers the store's inbox while st.Queued
// notifications wait (in a fleet, another gateway may).
func (d *deliveries) warnStranded(l *zap.Logger, st idempotency.QueueStats) {
	d.warnMu.Lock()
	defer d.warnMu.Unlock()
	if d.warned {
		return
	}
	d.warned = true
	l.Warn("no running config of this gateway delivers this storage's inbox: notifications answered S wait until a config with acknowledge on_receipt on this storage runs, here or on another gateway of the fleet",
		zap.String("storage", d.store.name), zap.Int64("queued", st.Queued), zap.Time("oldest", st.Oldest))
}

// switchTo starts h's inbox (nil: none delivers); the queue's gauges
// exist from then on.
func (d *deliveries) switchTo(h *Handler) {
	if h == nil {
		return
	}
	d.warnMu.Lock()
	d.warned = false
	d.warnMu.Unlock()
	h.metrics.PrecreateQueue(d.store.id)
	h.metrics.ObserveDelivering(d.store.id, true)
	d.published.Store(true)
	if err := h.inbox.Start(); err != nil {
		h.logger.Error("starting the inbox's deliveries", zap.Error(err))
	}
}

// notify wakes the running inbox's workers: a notification was queued.
func (d *deliveries) notify() {
	if h := d.Running(); h != nil {
		h.inbox.Notify()
	}
}

// watch reads the queue's figures every period until close. While an
// inbox delivers they go into the metrics with inbox_delivering 1; while
// none does, once the store holds queued notifications or dead letters,
// with inbox_delivering 0 (and the series stay from then on). Queued
// notifications seen twice in a row with no inbox delivering are
// reported once (warnStranded): a start with acknowledge on_delivery on a
// storage an on_receipt config left notifications in.
func (d *deliveries) watch(m *metrics, period time.Duration) {
	defer d.watchWG.Done()
	t := time.NewTicker(period)
	defer t.Stop()
	strandedBefore := false
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		delivering := d.Running() != nil
		ctx, cancel := context.WithTimeout(context.Background(), period)
		st, err := d.store.QueueStats(ctx)
		cancel()
		if err != nil {
			continue // no queue (Redis Cluster), or the store is down: store_up says so
		}
		if delivering || st.Queued > 0 || st.Dead > 0 || d.published.Load() {
			d.published.Store(true)
			m.ObserveQueue(d.store.id, st, time.Now())
			m.ObserveDelivering(d.store.id, delivering)
		}
		stranded := !delivering && st.Queued > 0
		if stranded && strandedBefore && !caddy.Exiting() {
			d.warnStranded(storeLog, st)
		}
		strandedBefore = stranded
	}
}

// close stops every delivery of the store and the watch: it leaves the
// pool. Its queue gauges, if any, keep their last figures with
// inbox_delivering 0: nothing here delivers that storage any more.
func (d *deliveries) close() {
	d.Close()
	close(d.stop)
	d.watchWG.Wait()
	if d.published.Load() {
		processMetrics().ObserveDelivering(d.store.id, false)
	}
}
