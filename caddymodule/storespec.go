package caddymodule

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/config"
	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore"
)

// storeSpec resolves the handler's store settings (checked by Check) into
// the store to use: the placeholders of the Badger directory or of the
// Redis settings resolved, the directory created or the TLS files read,
// but nothing opened. A Badger store is identified by its resolved,
// canonical directory: {env.X} and X's value are one store.
func (h *Handler) storeSpec() (storeSpec, error) {
	if c := h.Store; c != nil && c.Backend != config.BackendBadger {
		return redisSpec(c)
	}
	dir, err := h.BadgerDir(placeholders())
	if err != nil {
		return storeSpec{}, err
	}
	return badgerDirSpec(dir)
}

// badgerDirSpec is the Badger spec of a resolved directory (empty: the
// default), which it creates.
func badgerDirSpec(dir string) (storeSpec, error) {
	canonical, err := storageDir(dir)
	if err != nil {
		return storeSpec{}, err
	}
	return badgerSpec(canonical), nil
}

// badgerSpec is the spec of the Badger store in the canonical directory dir.
func badgerSpec(dir string) storeSpec {
	return storeSpec{key: dir, name: dir, kind: "badger", data: "badger " + dir, open: func(context.Context) (idempotency.Store, error) {
		return idempotency.OpenBadger(idempotency.BadgerOptions{
			Dir:    dir,
			Logger: storeLog.With(zap.String("storage", dir)),
		})
	}}
}

// storageDir returns the canonical storage directory of a resolved absolute
// one ("": the default), creating it.
func storageDir(configured string) (string, error) {
	dir := configured
	if dir == "" {
		dir = filepath.Join(caddy.AppDataDir(), "dws_notify")
		if !filepath.IsAbs(dir) {
			// Caddy falls back to a relative data directory when neither
			// XDG_DATA_HOME nor HOME names one: the store would follow the
			// working directory, as a relative storage would (refused).
			return "", fmt.Errorf("the default storage directory %s is relative (XDG_DATA_HOME and HOME name no absolute directory), so it would follow the working directory: set storage to an absolute directory", dir)
		}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("storage %s: %w", configured, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating storage directory %s: %w", dir, err)
	}
	canonical, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("storage %s: %w", dir, err)
	}
	return canonical, nil
}

// redisSpec is the spec of a Redis store: pooled by a hash of its
// resolved settings (config.Redis.Shape), described by its server and
// prefix.
func redisSpec(c *config.Store) (storeSpec, error) {
	r, err := c.Redis(placeholders())
	if err != nil {
		return storeSpec{}, err
	}
	name := fmt.Sprintf("redis %s prefix %s", r.Addr, r.Options.Prefix)
	routeRedisLogs()
	return storeSpec{
		key:  "redis " + hex.EncodeToString(r.Shape[:]),
		name: name,
		kind: "redis",
		data: "redis " + r.Data,
		open: func(ctx context.Context) (idempotency.Store, error) {
			o := r.Options
			o.Logger = storeLog.With(zap.String("store", name))
			return redisstore.Open(ctx, o)
		},
		retryable: func(err error) bool {
			return !errors.Is(err, idempotency.ErrInvalidArgument) && !errors.Is(err, redisstore.ErrServerRefused)
		},
	}, nil
}

// routeRedisLogs sends go-redis's process-wide log lines to the module's
// logger (http.handlers.dws_notify.store.redis), without passwords, once a
// Redis store is configured.
var routeRedisLogs = sync.OnceFunc(func() {
	redisLog := storeLog.Named("redis")
	redisstore.RouteClientLog(func() *zap.Logger { return redisLog })
})
