package redisstore

import (
	"sync"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// clockMap translates times of the Redis server's clock into the local
// clock, for the records the store returns. The scripts decide everything
// on the server's clock (see "One clock" in the package documentation),
// but a caller compares a record's times with its own clock: a gateway
// whose clock runs 20 s ahead of Redis would otherwise see every lease end
// 20 s early (and stop waiting for the first copy of a duplicate at once).
//
// Every script reply that carries a record also carries the server's TIME
// read in that script run, and the store notes on the local clock when it
// sent the call and when the reply arrived: that TIME was read at some
// local instant between the two (whatever retries or NOSCRIPT fallbacks
// happened in between, the attempt that answered was sent after the first
// note). The map keeps one offset (local minus server) for the store. The
// first observation sets it to put the server's reading in the middle of
// its window; each later one leaves it alone when it puts the reading
// inside its window and otherwise moves it just enough to put it on the
// window's nearer edge. So the translation of a call's times is always
// consistent with that call's own window (wrong by less than its round
// trip, whatever the clocks did since: drift, a step of either clock), and
// reads of one record by successive calls give the same times unless the
// estimate had to move.
type clockMap struct {
	now func() time.Time // the local clock: time.Now, or a test's

	mu  sync.Mutex
	set bool
	off time.Duration // local minus server
}

func newClockMap(now func() time.Time) *clockMap {
	if now == nil {
		now = time.Now
	}
	return &clockMap{now: now}
}

// observe takes one observation: a call sent at sent and answered at recv
// (local clock) read server on the server's clock. It returns the offset
// to add to that call's server times.
func (c *clockMap) observe(sent, recv, server time.Time) time.Duration {
	window := recv.Sub(sent)
	if window < 0 {
		window = 0
	}
	sent = sent.Round(0) // wall clock from here on
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.set {
		c.off = sent.Add(window / 2).Sub(server)
		c.set = true
		return c.off
	}
	// Where the estimate puts the server's reading, from sent.
	switch x := server.Add(c.off).Sub(sent); {
	case x < 0:
		c.off -= x
	case x > window:
		c.off -= x - window
	}
	return c.off
}

// localRecord returns rec with its times moved by off (see observe): all
// four by the same amount, so that the durations between them (the lease,
// the retention) stay as the server recorded them. The times lose their
// monotonic clock reading (they never had one) and stay in time.Local.
func localRecord(rec idempotency.Record, off time.Duration) idempotency.Record {
	move := func(t *time.Time) {
		if !t.IsZero() {
			*t = t.Add(off)
		}
	}
	move(&rec.ClaimedAt)
	move(&rec.LeaseExpiry)
	move(&rec.CompletedAt)
	move(&rec.ExpiresAt)
	return rec
}
