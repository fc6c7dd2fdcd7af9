package redisstore

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// go-redis writes its own log lines (a failed dial, a connection it had to
// drop, a pool problem) through one logger for the whole process,
// redis.SetLogger, and by default to standard error in its own format.
// RouteClientLog sends them to zap instead, with every password the store
// knows of taken out.

// ClientLogEvery is how often one kind of go-redis log line (one format
// string) is written at most; the repeats in between are counted and the
// count is given with the next line written. While Redis is down every
// store call's failed dial logs a line, so without this an outage under
// load would write one per notification.
const ClientLogEvery = 10 * time.Second

// RouteClientLog makes go-redis log through zap: each line goes at WARN
// level to the logger that logger returns at that moment (so it follows a
// program that replaces its loggers, as Caddy does on a config reload),
// with the message as go-redis formatted it, "redis: " prefix and all.
// Before a line is written, every password that a URL given to Open or
// Check carried (or that a client given to Open was configured with) is
// replaced by "[redacted]", and so is the user information of anything
// that looks like a URL. Lines of the same kind are limited to one per
// ClientLogEvery. It replaces the process-wide go-redis logger: call it
// once, from the program that owns the process's logging.
func RouteClientLog(logger func() *zap.Logger) {
	redis.SetLogger(&clientLogger{logger: logger, seen: map[string]*logKind{}})
}

// clientLogger implements go-redis's logging interface.
type clientLogger struct {
	logger func() *zap.Logger

	mu   sync.Mutex
	seen map[string]*logKind
	now  func() time.Time // tests; nil means time.Now
}

// logKind is the rate-limit state of one format string.
type logKind struct {
	last       time.Time
	suppressed int
}

// Printf implements go-redis's internal.Logging.
func (l *clientLogger) Printf(_ context.Context, format string, args ...any) {
	now := time.Now()
	if l.now != nil {
		now = l.now()
	}
	l.mu.Lock()
	k := l.seen[format]
	if k == nil {
		if len(l.seen) >= 1024 { // bounded: go-redis has a few hundred formats
			clear(l.seen)
		}
		k = &logKind{}
		l.seen[format] = k
	} else if now.Sub(k.last) < ClientLogEvery {
		k.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := k.suppressed
	k.last, k.suppressed = now, 0
	l.mu.Unlock()

	log := l.logger()
	if log == nil {
		return
	}
	fields := []zap.Field{zap.String("source", "go-redis")}
	if suppressed > 0 {
		fields = append(fields, zap.Int("repeated", suppressed), zap.Duration("repeated_within", ClientLogEvery))
	}
	log.Warn(Redact(strings.TrimSpace(fmt.Sprintf(format, args...))), fields...)
}

// secrets holds every password the package has seen, for Redact.
var secrets = struct {
	sync.RWMutex
	list []string // longest first, so a password containing another is redacted whole
}{}

// rememberSecret adds a password to those Redact removes.
func rememberSecret(pw string) {
	if pw == "" {
		return
	}
	secrets.Lock()
	defer secrets.Unlock()
	if slices.Contains(secrets.list, pw) {
		return
	}
	secrets.list = append(secrets.list, pw)
	slices.SortFunc(secrets.list, func(a, b string) int { return len(b) - len(a) })
}

// userinfo matches the user information of a URL: scheme://user:password@.
var userinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@`)

// Redact returns s with every password the package has seen (in a URL
// given to Open or Check, or in a client given to Open) replaced by
// "[redacted]", and the user information of anything that looks like a URL
// too. It is what RouteClientLog applies to go-redis's lines; callers may
// use it on any text that could hold a Redis URL.
func Redact(s string) string {
	s = userinfo.ReplaceAllString(s, "${1}[redacted]@")
	secrets.RLock()
	defer secrets.RUnlock()
	for _, pw := range secrets.list {
		s = strings.ReplaceAll(s, pw, "[redacted]")
	}
	return s
}
