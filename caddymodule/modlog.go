package caddymodule

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// The module's log lines that belong to no request come from parts that
// outlive a config: the shared store and its background loops, Badger's and
// the Redis store's own lines, go-redis's process-wide logger, the start
// gate and the admin backup. They are written under the handler's logger
// name, http.handlers.dws_notify, as its children (http.handlers.dws_notify
// .store, .store.badger, .store.redis), so one `log` include or exclude of
// http.handlers.dws_notify covers every line of the module. Their output is
// that of the most recently provisioned handler still in use (a config
// reload provisions the new handlers before it cleans the old ones up, and
// a reload that fails cleans its own up), so they follow the running
// config's logging: its writers, encoders and include/exclude lists.
// Without a handler they go to Caddy's default log.

// liveLoggers are the loggers of the provisioned handlers not yet cleaned
// up, in provisioning order; current is the last one.
var liveLoggers struct {
	mu      sync.Mutex
	list    []*zap.Logger
	current atomic.Pointer[zap.Logger]
}

// followLogger registers the logger of a provisioned handler; the returned
// function (called at Cleanup) unregisters it.
func followLogger(l *zap.Logger) func() {
	liveLoggers.mu.Lock()
	liveLoggers.list = append(liveLoggers.list, l)
	liveLoggers.current.Store(l)
	liveLoggers.mu.Unlock()
	return sync.OnceFunc(func() {
		liveLoggers.mu.Lock()
		defer liveLoggers.mu.Unlock()
		if i := slices.Index(liveLoggers.list, l); i >= 0 {
			liveLoggers.list = slices.Delete(liveLoggers.list, i, i+1)
		}
		var cur *zap.Logger
		if n := len(liveLoggers.list); n > 0 {
			cur = liveLoggers.list[n-1]
		}
		liveLoggers.current.Store(cur)
	})
}

// moduleLog is the module's logger outside requests, named as the handler's;
// storeLog is its child for everything about the stores.
var (
	moduleLog = zap.New(followCore{}).Named("http.handlers.dws_notify")
	storeLog  = moduleLog.Named("store")
)

// followCore writes through the core of the current handler logger (or
// Caddy's default logger), looked up at every entry. The logger name of an
// entry is the one of the zap.Logger built on followCore, so the target's
// include and exclude rules see http.handlers.dws_notify.*.
type followCore struct {
	fields []zapcore.Field
}

func (followCore) target() zapcore.Core {
	if l := liveLoggers.current.Load(); l != nil {
		return l.Core()
	}
	return caddy.Log().Core()
}

func (c followCore) Enabled(lvl zapcore.Level) bool { return c.target().Enabled(lvl) }

func (c followCore) With(fields []zapcore.Field) zapcore.Core {
	return followCore{fields: append(slices.Clip(c.fields), fields...)}
}

func (c followCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	t := c.target()
	if len(c.fields) > 0 {
		t = t.With(c.fields)
	}
	return t.Check(e, ce)
}

// Write is only reached by callers that skip Check; Check hands the entry
// to the target core itself.
func (c followCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	return c.target().Write(e, append(slices.Clip(c.fields), fields...))
}

func (c followCore) Sync() error { return c.target().Sync() }
