package caddymodule

import (
	"context"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/inbox"
)

// deliveries runs the deliveries of one pooled store's inbox: the inbox of
// the newest started handler with acknowledge on_receipt that uses the
// store (its keys, timeouts and backoff), chosen by inbox.Handoff, so the
// deliveries go on across config reloads and follow the newest config.
// It lives as long as the store is pooled, and so does its watch of the
// queue (queuewatch.go).
type deliveries struct {
	*inbox.Handoff[*Handler]
	store *sharedStore
	watch queueWatch
}

// deliveryStopWait (or the stopping handler's forward_timeout and a
// second, if longer) bounds how long a stopping inbox waits for the tries
// under way before it cancels them (each is then given back, due at once).
const deliveryStopWait = 5 * time.Second

func newDeliveries(s *sharedStore) *deliveries {
	d := &deliveries{store: s}
	d.Handoff = inbox.NewHandoff(d.switchTo, func(h *Handler) func(context.Context) { return h.inbox.Detach() }, stopWait)
	d.watch.d = d
	return d
}

// stopWait is how long h's tries under way may run on when its inbox
// stops: a try cut short after the backend took the notification would
// be sent again, so each gets its whole forward_timeout.
func stopWait(h *Handler) time.Duration {
	return max(deliveryStopWait, h.settings.ForwardTimeout+time.Second)
}

// leave takes h's inbox out of the deliveries (inbox.Handoff.Leave) and,
// when no running config of this process delivers the storage's inbox
// any more (its last on_receipt handler stopped: a reload to
// on_delivery, or the site removed), says how many notifications
// answered S still wait: they are delivered only once a config with
// on_receipt on this storage runs.
func (d *deliveries) leave(h *Handler) {
	wasRunning := d.Running() == h
	d.Leave(h)
	if !wasRunning || caddy.Exiting() {
		return
	}
	d.watch.reportStranded(h.logger)
}

// switchTo starts h's inbox (nil: none delivers); the queue's gauges then
// exist and say it delivers.
func (d *deliveries) switchTo(h *Handler) {
	if h == nil {
		return
	}
	if err := h.inbox.Start(); err != nil {
		h.logger.Error("starting the inbox's deliveries", zap.Error(err))
		return
	}
	d.watch.delivering(h.metrics)
}

// notify wakes the running inbox's workers: a notification was queued.
func (d *deliveries) notify() {
	if h := d.Running(); h != nil {
		h.inbox.Notify()
	}
}

// close stops every delivery of the store and its watch: it leaves the
// pool.
func (d *deliveries) close() {
	d.Close()
	d.watch.end()
}
