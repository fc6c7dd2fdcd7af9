package caddymodule

import (
	"context"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/inbox"
)

// deliveries runs the deliveries of one pooled store's inbox: the inbox of
// the newest started handler with acknowledge on_receipt that uses the
// store (its keys, timeouts and backoff), chosen by inbox.Handoff, so the
// deliveries go on across config reloads and follow the newest config.
// While an inbox delivers, the queue's figures are read into the metrics.
// It lives as long as the store is pooled.
type deliveries struct {
	*inbox.Handoff[*Handler]
	store *sharedStore

	stats   chan struct{} // guarded by the Handoff's lock (switchTo)
	statsWG sync.WaitGroup
}

// deliveryStopWait (or the stopping handler's forward_timeout and a
// second, if longer) bounds how long a stopping inbox waits for the tries
// under way before it cancels them (each is then given back, due at once).
const deliveryStopWait = 5 * time.Second

// statsEvery is how often the queue's figures are read for the metrics.
const statsEvery = 5 * time.Second

func newDeliveries(s *sharedStore) *deliveries {
	d := &deliveries{store: s}
	d.Handoff = inbox.NewHandoff(d.switchTo, func(ctx context.Context, h *Handler) { h.inbox.Stop(ctx) }, stopWait)
	return d
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
	h.logger.Warn("no running config delivers this storage's inbox: notifications answered S wait until a config with acknowledge on_receipt on this storage runs again",
		zap.String("storage", d.store.name), zap.Int64("queued", st.Queued), zap.Time("oldest", st.Oldest))
}

// switchTo starts h's inbox (nil: none delivers) and watches the queue's
// figures while one delivers.
func (d *deliveries) switchTo(h *Handler) {
	if h == nil {
		d.unwatchStats()
		return
	}
	if err := h.inbox.Start(); err != nil {
		h.logger.Error("starting the inbox's deliveries", zap.Error(err))
	}
	d.watchStats(h)
}

// notify wakes the running inbox's workers: a notification was queued.
func (d *deliveries) notify() {
	if h := d.Running(); h != nil {
		h.inbox.Notify()
	}
}

// watchStats reads the queue's figures into the metrics every statsEvery
// while an inbox delivers.
func (d *deliveries) watchStats(h *Handler) {
	if d.stats != nil {
		return
	}
	stop := make(chan struct{})
	d.stats = stop
	m := h.metrics
	m.PrecreateQueue(d.store.id)
	d.statsWG.Add(1)
	go func() {
		defer d.statsWG.Done()
		t := time.NewTicker(statsEvery)
		defer t.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), statsEvery)
			st, err := d.store.QueueStats(ctx)
			cancel()
			if err == nil {
				m.ObserveQueue(d.store.id, st, time.Now())
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
}

// unwatchStats stops watchStats.
func (d *deliveries) unwatchStats() {
	if d.stats == nil {
		return
	}
	close(d.stats)
	d.stats = nil
}

// close stops every delivery of the store: it leaves the pool.
func (d *deliveries) close() {
	d.Close()
	d.statsWG.Wait()
}
