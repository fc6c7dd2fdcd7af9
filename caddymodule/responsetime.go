package caddymodule

import (
	"sync/atomic"
	"time"

	"github.com/dwsnotify/dws_notify/signature"
)

// responseTimeCache formats the Response-Time header once per second: it has
// whole-second precision, so every answer within a second shares the string
// (and, with response signing on, the signature over identical content).
type responseTimeCache struct {
	cur atomic.Pointer[formattedSecond]
}

type formattedSecond struct {
	unix int64
	text string
}

// responseTimes is shared by every handler: the text depends only on the
// clock and the process's time zone.
var responseTimes responseTimeCache

func (c *responseTimeCache) format(now time.Time) string {
	sec := now.Unix()
	if f := c.cur.Load(); f != nil && f.unix == sec {
		return f.text
	}
	f := &formattedSecond{unix: sec, text: signature.FormatResponseTime(now)}
	c.cur.Store(f)
	return f.text
}
