package dwshttp

import (
	"sync/atomic"
	"time"

	"github.com/dwsnotify/dws_notify/signature"
)

// ResponseTime is the Response-Time header of an answer given at now
// (signature.FormatResponseTime), formatted once per second: the header
// has whole-second precision, so every answer within a second shares the
// string (and, with response signing on, the signature over identical
// content). The text depends only on the clock and the process's time
// zone, so one cache serves every handler.
func ResponseTime(now time.Time) string {
	sec := now.Unix()
	if f := responseTimes.Load(); f != nil && f.unix == sec {
		return f.text
	}
	f := &formattedSecond{unix: sec, text: signature.FormatResponseTime(now)}
	responseTimes.Store(f)
	return f.text
}

type formattedSecond struct {
	unix int64
	text string
}

var responseTimes atomic.Pointer[formattedSecond]
