package idempotency_test

import (
	"testing"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/storetest"
)

// TestQueueConformance runs the queue suite on Badger, on disk with the
// group commit and in memory.
func TestQueueConformance(t *testing.T) {
	for _, c := range []struct {
		name string
		opts func(t *testing.T) idempotency.BadgerOptions
	}{
		{"GroupCommit", func(t *testing.T) idempotency.BadgerOptions { return idempotency.BadgerOptions{Dir: t.TempDir()} }},
		{"InMemory", func(*testing.T) idempotency.BadgerOptions { return idempotency.BadgerOptions{InMemory: true} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			storetest.RunQueue(t, func(t *testing.T) storetest.QueueStore { return openBadger(t, c.opts(t)) }, nil)
		})
	}
}
