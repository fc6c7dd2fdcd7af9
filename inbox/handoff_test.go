package inbox

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// runner is a fake runner: it records the switches and stops it sees.
type runner struct{ name string }

type handoffLog struct {
	mu     sync.Mutex
	events []string
}

func (l *handoffLog) add(e string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *handoffLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.events
	l.events = nil
	return e
}

func newTestHandoff(t *testing.T, log *handoffLog, stopWait time.Duration) *Handoff[*runner] {
	t.Helper()
	return NewHandoff(func(r *runner) {
		if r == nil {
			log.add("none")
			return
		}
		log.add("run " + r.name)
	}, func(r *runner) func(context.Context) {
		return func(ctx context.Context) {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("stop without a deadline")
			}
			log.add("stop " + r.name)
		}
	}, func(*runner) time.Duration { return stopWait })
}

// waitFor waits until the background stops have logged want.
func waitFor(t *testing.T, log *handoffLog, want ...string) {
	t.Helper()
	var got []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		got = append(got, log.take()...)
		if slices.Equal(got, want) {
			return
		}
	}
	t.Fatalf("events %q, want %q", got, want)
}

func TestHandoffNewestStartedDelivers(t *testing.T) {
	var log handoffLog
	d := newTestHandoff(t, &log, time.Second)
	a, b, c := &runner{"a"}, &runner{"b"}, &runner{"c"}
	if d.Running() != nil {
		t.Fatal("a runner delivers before any started")
	}
	d.Start(a)
	waitFor(t, &log, "run a")
	d.Start(b) // a reload: b's config starts before a's is cleaned up
	waitFor(t, &log, "run b", "stop a")
	d.Start(b) // again: nothing changes
	d.Start(c)
	waitFor(t, &log, "run c", "stop b")
	if d.Running() != c {
		t.Fatal("the newest started runner does not deliver")
	}
	// A runner that does not deliver leaves without a switch.
	d.Leave(a)
	if e := log.take(); len(e) != 0 || d.Running() != c {
		t.Fatalf("leaving a runner that does not deliver: %q", e)
	}
	// The one delivering leaves: the newest other started takes over, and
	// Leave returns once the leaving one stopped.
	d.Leave(c)
	if e := log.take(); !slices.Equal(e, []string{"run b", "stop c"}) {
		t.Fatalf("leaving the runner that delivers: %q", e)
	}
	d.Close()
	if e := log.take(); !slices.Equal(e, []string{"none", "stop b"}) || d.Running() != nil {
		t.Fatalf("closing: %q", e)
	}
	d.Close() // nothing runs: nothing to stop
	if e := log.take(); len(e) != 0 {
		t.Fatalf("closing twice: %q", e)
	}
}

func TestHandoffLastLeavesToNone(t *testing.T) {
	var log handoffLog
	d := newTestHandoff(t, &log, time.Second)
	a := &runner{"a"}
	d.Start(a)
	d.Leave(a)
	if e := log.take(); !slices.Equal(e, []string{"run a", "none", "stop a"}) || d.Running() != nil {
		t.Fatalf("the last runner leaving: %q", e)
	}
}

// A config that starts and at once fails to start (Caddy stops the apps it
// had started) hands the deliveries back to the inbox of the config it
// replaced. That inbox must deliver again: its leasing was stopped when it
// was replaced, before the hand-back, so Start finds it stopped. (When the
// replaced inbox stopped only in the background, Start failed with
// "already started" if the hand-back came first, the background stop then
// ended the old run, and nobody delivered although Running named it.)
func TestHandoffBackToTheReplacedInboxDelivers(t *testing.T) {
	a := newHarness(t, Config{})
	cfgB := a.ib.cfg
	cfgB.Hooks = Hooks{}
	b, err := New(cfgB)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var startErrs []error
	d := NewHandoff(func(ib *Inbox) {
		if ib == nil {
			return
		}
		if err := ib.Start(); err != nil { // as caddymodule's deliveries do
			mu.Lock()
			startErrs = append(startErrs, err)
			mu.Unlock()
		}
	}, func(ib *Inbox) func(context.Context) { return ib.Detach() }, func(*Inbox) time.Duration { return 5 * time.Second })
	t.Cleanup(d.Close)

	for range 20 { // the old, background stop lost this race about every time
		d.Start(a.ib) // the running config
		d.Start(b)    // a reload starts the new one ...
		d.Leave(b)    // ... which is stopped at once: back to the old one
		if d.Running() != a.ib {
			t.Fatal("the replaced inbox does not run again")
		}
	}
	a.enqueue("r1", "c1")
	a.eventually("the delivery by the inbox handed back to", func() bool {
		a.ib.Notify()
		return len(a.rec.ids()) == 1
	})
	mu.Lock()
	defer mu.Unlock()
	if len(startErrs) > 0 {
		t.Fatalf("starting an inbox failed: %v", startErrs)
	}
}

// gatedLease is a queue whose Lease waits for the test to let it go and
// counts its calls.
type gatedLease struct {
	idempotency.Queue
	calls   atomic.Int32
	entered chan struct{}
	release chan struct{}
}

func (g *gatedLease) Lease(ctx context.Context, max int, lease time.Duration) ([]idempotency.Item, error) {
	g.calls.Add(1)
	g.entered <- struct{}{}
	<-g.release
	return nil, nil
}

// A detached run leases no more, even when a wake-up is waiting beside
// its stop (every finishing worker leaves one): its loop used to pick
// either at random and lease again about half the time, so the replaced
// config's inbox went on delivering after the new one took over.
func TestDetachedRunLeasesNoMore(t *testing.T) {
	h := newHarness(t, Config{})
	g := &gatedLease{Queue: h.store, entered: make(chan struct{}), release: make(chan struct{})}
	cfg := h.ib.cfg
	cfg.Queue = g
	ib, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if err := ib.Start(); err != nil {
			t.Fatal(err)
		}
		<-g.entered // the loop is in Lease
		before := g.calls.Load()
		wait := ib.Detach()
		ib.Notify() // a wake-up waits beside the stop
		g.release <- struct{}{}
		waited := make(chan struct{})
		go func() { wait(context.Background()); close(waited) }()
		select {
		case <-waited:
		case <-g.entered:
			g.release <- struct{}{}
			<-waited
			t.Fatalf("round %d: the detached run leased again (%d calls after the stop)", i, g.calls.Load()-before)
		case <-time.After(5 * time.Second):
			t.Fatal("the detached run did not end")
		}
	}
}
