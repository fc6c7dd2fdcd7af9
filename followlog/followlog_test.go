package followlog

import (
	"slices"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// Lines go where the newest live logger goes, at its level, with the
// following logger's name and fields; without a live logger, to the
// fallback.
func TestFollowsTheNewestLiveLogger(t *testing.T) {
	fallback, logsFallback := observer.New(zap.DebugLevel)
	f := New(func() zapcore.Core { return fallback })
	coreA, logsA := observer.New(zap.InfoLevel)
	coreB, logsB := observer.New(zap.WarnLevel)
	log := f.Logger().Named("mod").With(zap.String("storage", "/x"))
	log.Info("to the fallback")
	unfollowA := f.Follow(zap.New(coreA))
	log.Info("to A")
	unfollowB := f.Follow(zap.New(coreB))
	log.Info("dropped: B is at WARN")
	log.Named("redis").Warn("to B")
	unfollowB()
	unfollowB() // idempotent
	log.Warn("to A again")
	unfollowA()
	log.Debug("to the fallback again")

	names := func(logs *observer.ObservedLogs) []string {
		var got []string
		for _, e := range logs.All() {
			got = append(got, e.LoggerName+": "+e.Message)
			if e.ContextMap()["storage"] != "/x" {
				t.Errorf("%q lost the logger's field: %v", e.Message, e.ContextMap())
			}
		}
		return got
	}
	for _, tc := range []struct {
		logs *observer.ObservedLogs
		want []string
	}{
		{logsA, []string{"mod: to A", "mod: to A again"}},
		{logsB, []string{"mod.redis: to B"}},
		{logsFallback, []string{"mod: to the fallback", "mod: to the fallback again"}},
	} {
		if got := names(tc.logs); !slices.Equal(got, tc.want) {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

// A logger unregistered out of order leaves the newest one current.
func TestUnfollowOutOfOrder(t *testing.T) {
	f := New(func() zapcore.Core { return zapcore.NewNopCore() })
	coreA, logsA := observer.New(zap.InfoLevel)
	coreB, logsB := observer.New(zap.InfoLevel)
	unfollowA := f.Follow(zap.New(coreA))
	unfollowB := f.Follow(zap.New(coreB))
	unfollowA()
	f.Logger().Info("to B")
	unfollowB()
	f.Logger().Info("to nobody")
	if logsA.Len() != 0 || logsB.Len() != 1 {
		t.Errorf("A got %d lines, B %d; want 0 and 1", logsA.Len(), logsB.Len())
	}
}
