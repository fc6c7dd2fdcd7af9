// Package followlog makes loggers whose output follows the newest of a
// set of live loggers: for lines written by parts that outlive the config
// whose logger they were given (a shared store and its background loops,
// process-wide client loggers), so that they go where the running
// config's lines go. It knows nothing of Caddy: the logger used while no
// logger is live is given to New.
package followlog

import (
	"slices"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Follower holds the live loggers, in the order they were registered;
// the last one is current.
type Follower struct {
	mu       sync.Mutex
	list     []*zap.Logger
	current  atomic.Pointer[zap.Logger]
	fallback func() zapcore.Core
}

// New returns a Follower that writes to fallback's core while no logger
// is live.
func New(fallback func() zapcore.Core) *Follower {
	return &Follower{fallback: fallback}
}

// Follow registers l as the newest live logger; the returned function
// unregisters it (it may be called more than once).
func (f *Follower) Follow(l *zap.Logger) func() {
	f.mu.Lock()
	f.list = append(f.list, l)
	f.current.Store(l)
	f.mu.Unlock()
	return sync.OnceFunc(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if i := slices.Index(f.list, l); i >= 0 {
			f.list = slices.Delete(f.list, i, i+1)
		}
		var cur *zap.Logger
		if n := len(f.list); n > 0 {
			cur = f.list[n-1]
		}
		f.current.Store(cur)
	})
}

// Logger returns a logger writing through the current live logger's core,
// looked up at every entry. Its entries carry its own name (Named), so the
// target's include and exclude rules see that name.
func (f *Follower) Logger() *zap.Logger {
	return zap.New(core{f: f})
}

// core writes through the core of the current live logger (or the
// fallback).
type core struct {
	f      *Follower
	fields []zapcore.Field
}

func (c core) target() zapcore.Core {
	if l := c.f.current.Load(); l != nil {
		return l.Core()
	}
	return c.f.fallback()
}

func (c core) Enabled(lvl zapcore.Level) bool { return c.target().Enabled(lvl) }

func (c core) With(fields []zapcore.Field) zapcore.Core {
	return core{f: c.f, fields: append(slices.Clip(c.fields), fields...)}
}

func (c core) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	t := c.target()
	if len(c.fields) > 0 {
		t = t.With(c.fields)
	}
	return t.Check(e, ce)
}

// Write is only reached by callers that skip Check; Check hands the entry
// to the target core itself.
func (c core) Write(e zapcore.Entry, fields []zapcore.Field) error {
	return c.target().Write(e, append(slices.Clip(c.fields), fields...))
}

func (c core) Sync() error { return c.target().Sync() }
