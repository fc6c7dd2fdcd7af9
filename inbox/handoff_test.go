package inbox

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
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
	}, func(ctx context.Context, r *runner) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("stop without a deadline")
		}
		log.add("stop " + r.name)
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
