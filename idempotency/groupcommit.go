package idempotency

import (
	"context"
	"sync"
	"sync/atomic"
)

// groupSyncer makes committed writes durable in batches (group commit).
//
// A writer commits its transaction without fsync and then calls wait. wait
// joins the round that has not started yet and wakes the syncer goroutine.
// The syncer takes rounds one after the other: it detaches the pending round
// (later waiters join a fresh one), runs syncFn once, and releases every
// waiter of that round with its result. Because a waiter joins only after its
// commit returned, and a round's syncFn starts only after the round was
// detached, every commit released by a round happened before that round's
// sync started. While one sync runs, the next round fills up, so under load
// one fsync covers many completions.
type groupSyncer struct {
	syncFn func() error

	mu      sync.Mutex
	next    *syncRound
	stopped bool

	kick   chan struct{} // capacity 1: "a round has waiters"
	stop   chan struct{}
	exited chan struct{}

	rounds  atomic.Uint64 // syncFn calls
	waiters atomic.Uint64 // waits released by those calls
}

type syncRound struct {
	done    chan struct{}
	err     error
	waiters uint64
}

func newSyncRound() *syncRound { return &syncRound{done: make(chan struct{})} }

func newGroupSyncer(syncFn func() error) *groupSyncer {
	g := &groupSyncer{
		syncFn: syncFn,
		next:   newSyncRound(),
		kick:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	go g.run()
	return g
}

// wait blocks until a sync that started after the call began has finished,
// and returns its error. It returns ErrClosed after close and ctx's error if
// ctx ends first (the write is then made durable by a later round, but the
// caller may not rely on it).
func (g *groupSyncer) wait(ctx context.Context) error {
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		return ErrClosed
	}
	r := g.next
	r.waiters++
	g.mu.Unlock()

	select {
	case g.kick <- struct{}{}:
	default: // a kick is already pending; it will detach r or a later round
	}

	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *groupSyncer) run() {
	defer close(g.exited)
	for {
		select {
		case <-g.kick:
			g.round()
		case <-g.stop:
			g.round() // release anyone who joined before close
			return
		}
	}
}

func (g *groupSyncer) round() {
	g.mu.Lock()
	r := g.next
	if r.waiters == 0 {
		g.mu.Unlock()
		return
	}
	g.next = newSyncRound()
	g.mu.Unlock()

	r.err = g.syncFn()
	g.rounds.Add(1)
	g.waiters.Add(r.waiters)
	close(r.done)
}

// close runs a last round for pending waiters, stops the goroutine and makes
// later waits return ErrClosed. It must be called once.
func (g *groupSyncer) close() {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
	close(g.stop)
	<-g.exited
}
