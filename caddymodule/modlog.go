package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dwsnotify/dws_notify/followlog"
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
// up, in provisioning order; the last one is current. Without one, lines
// go to Caddy's default log.
var liveLoggers = followlog.New(func() zapcore.Core { return caddy.Log().Core() })

// followLogger registers the logger of a provisioned handler; the returned
// function (called at Cleanup) unregisters it.
func followLogger(l *zap.Logger) func() {
	return liveLoggers.Follow(l)
}

// moduleLog is the module's logger outside requests, named as the handler's;
// storeLog is its child for everything about the stores.
var (
	moduleLog = liveLoggers.Logger().Named("http.handlers.dws_notify")
	storeLog  = moduleLog.Named("store")
)
