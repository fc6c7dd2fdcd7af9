package inbox

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Handoff chooses, of the runners started on one queue (each with an
// inbox of its own), the one whose inbox delivers: the newest started.
// A config reload starts the new config's runners before the old ones are
// cleaned up, so the deliveries go on across it and follow the newest
// config; a runner that leaves while it delivers hands over to the newest
// other started one (a config that failed to start leaves the running one
// delivering), or to none.
type Handoff[R comparable] struct {
	// switchTo makes r's inbox deliver, or, for the zero R, none; it is
	// called with the Handoff's lock held, each time the runner changes.
	switchTo func(r R)
	// stop stops r's leasing at once, with the Handoff's lock held, so
	// that r can be switched to again right away (a config that started
	// and failed hands back to the one it replaced), and returns the wait
	// for the tries under way, which runs in the background until ctx
	// ends; stopWait(r) is how long they are given.
	stop     func(r R) (wait func(ctx context.Context))
	stopWait func(r R) time.Duration

	mu      sync.Mutex
	started []R // runners started, oldest first
	running R   // whose inbox delivers now; the zero R: none
}

// NewHandoff returns a Handoff that calls switchTo when the runner that
// delivers changes (the zero R: none) and stop on the runner replaced,
// giving its tries under way stopWait(r) before they are cancelled.
func NewHandoff[R comparable](switchTo func(r R), stop func(r R) (wait func(ctx context.Context)), stopWait func(r R) time.Duration) *Handoff[R] {
	return &Handoff[R]{switchTo: switchTo, stop: stop, stopWait: stopWait}
}

// Start makes r the runner that delivers. The one it replaces stops in
// the background, finishing the tries under way.
func (d *Handoff[R]) Start(r R) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !slices.Contains(d.started, r) {
		d.started = append(d.started, r)
	}
	d.switchToLocked(r)
}

// Leave takes r out: when it was delivering, the newest other started
// runner takes over, or none. It returns once r's deliveries stopped.
func (d *Handoff[R]) Leave(r R) {
	d.mu.Lock()
	d.started = slices.DeleteFunc(d.started, func(s R) bool { return s == r })
	if d.running != r {
		d.mu.Unlock()
		return
	}
	var next R
	if n := len(d.started); n > 0 {
		next = d.started[n-1]
	}
	stopped := d.switchToLocked(next)
	d.mu.Unlock()
	<-stopped
}

// Running returns the runner that delivers now; the zero R: none.
func (d *Handoff[R]) Running() R {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running
}

// Close stops every runner's deliveries and returns once they stopped.
func (d *Handoff[R]) Close() {
	d.mu.Lock()
	d.started = nil
	var none R
	stopped := d.switchToLocked(none)
	d.mu.Unlock()
	<-stopped
}

// switchToLocked makes r deliver, with d.mu held, and stops the runner it
// replaces: its leasing at once, so it can be switched to again, and its
// tries under way in the background; the returned channel is closed once
// they ended.
func (d *Handoff[R]) switchToLocked(r R) <-chan struct{} {
	done := make(chan struct{})
	old := d.running
	if old == r {
		close(done)
		return done
	}
	d.running = r
	d.switchTo(r)
	var none R
	if old == none {
		close(done)
		return done
	}
	wait := d.stop(old)
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), d.stopWait(old))
		defer cancel()
		wait(ctx)
	}()
	return done
}
