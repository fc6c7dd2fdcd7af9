package idempotency

import (
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapBadgerLogger implements badger.Logger on a zap logger.
//
// Badger's levels are mapped down so it cannot flood the host's log: errors
// stay errors, warnings stay warnings, Badger's informational chatter (table
// replay, compaction, "Lifetime L0 stalled" ...) goes to debug, and Badger's
// own debug lines, which it writes for every write batch, are dropped unless
// verbose is set. Messages are formatted only when the level is enabled and
// have their trailing newlines trimmed.
type zapBadgerLogger struct {
	l       *zap.Logger
	verbose bool
}

var _ badger.Logger = zapBadgerLogger{}

func newBadgerLogger(l *zap.Logger, verbose bool) zapBadgerLogger {
	if l == nil {
		l = zap.NewNop()
	}
	return zapBadgerLogger{l: l.Named("badger"), verbose: verbose}
}

func (z zapBadgerLogger) log(lvl zapcore.Level, format string, args []any) {
	if !z.l.Core().Enabled(lvl) {
		return
	}
	msg := strings.TrimRight(fmt.Sprintf(format, args...), "\r\n")
	z.l.Log(lvl, msg)
}

// Errorf logs at error level.
func (z zapBadgerLogger) Errorf(format string, args ...any) {
	z.log(zapcore.ErrorLevel, format, args)
}

// Warningf logs at warn level.
func (z zapBadgerLogger) Warningf(format string, args ...any) {
	z.log(zapcore.WarnLevel, format, args)
}

// Infof logs at debug level.
func (z zapBadgerLogger) Infof(format string, args ...any) {
	z.log(zapcore.DebugLevel, format, args)
}

// Debugf logs at debug level when verbose, and drops the line otherwise.
func (z zapBadgerLogger) Debugf(format string, args ...any) {
	if z.verbose {
		z.log(zapcore.DebugLevel, format, args)
	}
}
