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

// minSecretLen is the length below which Redact does not search text for
// a password. Taking out every occurrence of a password of one to three
// bytes ("r", "abc") would mangle every line ("connection [redacted]efused")
// and, worse, show the password by what it took out. Such a password is
// still taken out of anything that looks like a URL (userinfo below), and
// go-redis does not write passwords into its lines otherwise.
const minSecretLen = 4

// maxIdleSecrets bounds how many passwords Redact keeps that no open store
// uses: those of closed stores (a line about a client being shut down can
// come after its store closed) and those only Check saw. The oldest goes
// first.
const maxIdleSecrets = 8

// secrets holds the passwords Redact removes: those of the open stores,
// with how many open stores use each, and the most recent few others.
var secrets = struct {
	sync.RWMutex
	open map[string]int
	idle []string // oldest first, at most maxIdleSecrets
	list []string // all of them, longest first, so a password containing another is redacted whole
}{open: map[string]int{}}

// holdSecret adds a password of a store being opened to those Redact
// removes, until as many releaseSecret calls as holdSecret calls.
func holdSecret(pw string) {
	if len(pw) < minSecretLen {
		return
	}
	secrets.Lock()
	defer secrets.Unlock()
	secrets.open[pw]++
	secrets.idle = slices.DeleteFunc(secrets.idle, func(s string) bool { return s == pw })
	rebuildSecrets()
}

// releaseSecret is the counterpart of holdSecret when the store closes
// (or fails to open): the password stays among the recent idle ones.
func releaseSecret(pw string) {
	if len(pw) < minSecretLen {
		return
	}
	secrets.Lock()
	defer secrets.Unlock()
	if secrets.open[pw] > 1 {
		secrets.open[pw]--
		return
	}
	delete(secrets.open, pw)
	addIdle(pw)
	rebuildSecrets()
}

// rememberSecret adds a password seen by Check to the recent idle ones.
func rememberSecret(pw string) {
	if len(pw) < minSecretLen {
		return
	}
	secrets.Lock()
	defer secrets.Unlock()
	if secrets.open[pw] > 0 {
		return
	}
	addIdle(pw)
	rebuildSecrets()
}

// addIdle makes pw the newest idle password. secrets must be locked.
func addIdle(pw string) {
	secrets.idle = slices.DeleteFunc(secrets.idle, func(s string) bool { return s == pw })
	if len(secrets.idle) >= maxIdleSecrets {
		secrets.idle = slices.Delete(secrets.idle, 0, len(secrets.idle)-maxIdleSecrets+1)
	}
	secrets.idle = append(secrets.idle, pw)
}

// rebuildSecrets recomputes secrets.list. secrets must be locked.
func rebuildSecrets() {
	list := make([]string, 0, len(secrets.open)+len(secrets.idle))
	for pw := range secrets.open {
		list = append(list, pw)
	}
	list = append(list, secrets.idle...)
	slices.SortFunc(list, func(a, b string) int { return len(b) - len(a) })
	secrets.list = list
}

// userinfo matches the user information of a URL: scheme://user:password@.
var userinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@`)

// Redact returns s with the user information of anything that looks like
// a URL replaced by "[redacted]", and every occurrence of a password the
// package knows of too: that of every open store (from its URL, or from
// the client given to Open), and those of the last few closed stores and
// URLs given to Check (maxIdleSecrets). Passwords shorter than four bytes
// are only taken out of URLs, not searched for in the rest of the text
// (see minSecretLen). It is what RouteClientLog applies to go-redis's
// lines; callers may use it on any text that could hold a Redis URL.
func Redact(s string) string {
	s = userinfo.ReplaceAllString(s, "${1}[redacted]@")
	secrets.RLock()
	defer secrets.RUnlock()
	for _, pw := range secrets.list {
		s = strings.ReplaceAll(s, pw, "[redacted]")
	}
	return s
}
