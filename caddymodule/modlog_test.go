package caddymodule

import (
	"slices"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// The module's log lines outside requests.

// The module's lines outside requests are named under the handler's logger
// and go where the newest live handler's logger goes.
func TestModuleLogFollowsHandlers(t *testing.T) {
	coreA, logsA := observer.New(zap.InfoLevel)
	coreB, logsB := observer.New(zap.WarnLevel)
	unfollowA := followLogger(zap.New(coreA))
	defer unfollowA()
	log := storeLog.With(zap.String("storage", "/x"))
	log.Info("to A")
	unfollowB := followLogger(zap.New(coreB))
	log.Info("dropped: B is at WARN")
	log.Named("redis").Warn("to B")
	unfollowB()
	unfollowB() // idempotent
	log.Warn("to A again")

	var gotA []string
	for _, e := range logsA.All() {
		gotA = append(gotA, e.LoggerName+": "+e.Message)
		if e.ContextMap()["storage"] != "/x" {
			t.Errorf("A's %q lost the logger's field: %v", e.Message, e.ContextMap())
		}
	}
	if want := []string{"http.handlers.dws_notify.store: to A", "http.handlers.dws_notify.store: to A again"}; !slices.Equal(gotA, want) {
		t.Errorf("A got %q, want %q", gotA, want)
	}
	if b := logsB.All(); len(b) != 1 || b[0].LoggerName != "http.handlers.dws_notify.store.redis" || b[0].Message != "to B" {
		t.Errorf("B got %v, want the one WARN line from http.handlers.dws_notify.store.redis", b)
	}
}
