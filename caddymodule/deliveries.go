package caddymodule

import (
	"context"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
)

// deliveries runs the deliveries of one pooled store's inbox: the inbox of
// the newest started handler with acknowledge on_receipt that uses the
// store (its keys, timeouts and backoff), so the deliveries go on across
// config reloads, which start the new config's handlers before the old
// ones are cleaned up, and follow the newest config. It lives as long as
// the store is pooled.
type deliveries struct {
	store *sharedStore

	mu      sync.Mutex
	started []*Handler // handlers started (their config runs), oldest first
	running *Handler   // whose inbox delivers now; nil: none
	stats   chan struct{}
	statsWG sync.WaitGroup
}

// deliveryStopWait bounds how long a stopping inbox waits for the tries
// under way before it cancels them (each is then given back, due at once).
const deliveryStopWait = 5 * time.Second

// statsEvery is how often the queue's figures are read for the metrics.
var statsEvery = 5 * time.Second

// start makes h's inbox the one that delivers, once h's config runs (the
// dws_notify app's Start). The inbox it replaces stops in the background,
// finishing the tries under way.
func (d *deliveries) start(h *Handler) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !slices.Contains(d.started, h) {
		d.started = append(d.started, h)
	}
	d.switchTo(h)
}

// stop takes h out: when its inbox was delivering, the newest other
// started handler's takes over (a config that failed to start leaves the
// running one delivering), or none. It returns once h's inbox stopped.
func (d *deliveries) stop(h *Handler) {
	d.mu.Lock()
	d.started = slices.DeleteFunc(d.started, func(s *Handler) bool { return s == h })
	if d.running != h {
		d.mu.Unlock()
		return
	}
	var next *Handler
	if n := len(d.started); n > 0 {
		next = d.started[n-1]
	}
	stopped := d.switchTo(next)
	d.mu.Unlock()
	<-stopped
}

// switchTo makes h's inbox (nil: none) deliver, with d.mu held, and stops
// the one it replaces; the returned channel is closed once that stopped.
func (d *deliveries) switchTo(h *Handler) <-chan struct{} {
	done := make(chan struct{})
	old := d.running
	if old == h {
		close(done)
		return done
	}
	d.running = h
	if h != nil {
		if err := h.inbox.Start(); err != nil {
			h.logger.Error("starting the inbox's deliveries", zap.Error(err))
		}
		d.watchStats(h)
	} else {
		d.unwatchStats()
	}
	if old == nil {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), deliveryStopWait)
		defer cancel()
		old.inbox.Stop(ctx)
	}()
	return done
}

// notify wakes the running inbox's workers: a notification was queued.
func (d *deliveries) notify() {
	d.mu.Lock()
	h := d.running
	d.mu.Unlock()
	if h != nil {
		h.inbox.Notify()
	}
}

// watchStats reads the queue's figures into the metrics every statsEvery
// while an inbox delivers (d.mu held).
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

// unwatchStats stops watchStats (d.mu held).
func (d *deliveries) unwatchStats() {
	if d.stats == nil {
		return
	}
	close(d.stats)
	d.stats = nil
}

// close stops every delivery of the store: it leaves the pool.
func (d *deliveries) close() {
	d.mu.Lock()
	d.started = nil
	stopped := d.switchTo(nil)
	d.mu.Unlock()
	<-stopped
	d.statsWG.Wait()
}
