package caddymodule

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/dwsmetrics"
	"github.com/dwsnotify/dws_notify/notification"
)

// BenchmarkHotPathPieces measures, each alone, the pieces of a forwarded
// notification that the handler's own cost is made of and that
// BenchmarkServeHTTP cannot resolve on a shared machine (a change of a
// fraction of a microsecond in 60). Each pair is the way chosen and the
// way it replaced or the alternative that was measured and dropped
// (BENCHMARKS.md, "issue 17, part 2"); dwshttp's BenchmarkPrepareForward
// covers the forwarded request's headers.
func BenchmarkHotPathPieces(b *testing.B) {
	m := processMetrics()
	api := "addPaymentMethod"
	x := &exchange{api: mustAPI(b, api), code: notification.Success, outcome: outcomeForwarded}
	b.Run("metrics=by-labels", func(b *testing.B) {
		for b.Loop() {
			m.Verifications.WithLabelValues(dwsmetrics.KeyVersionLabel(1, nil), dwsmetrics.VerificationResult(nil)).Inc()
			m.BackendResponses.WithLabelValues(api, dwsmetrics.StatusLabel(http.StatusOK)).Inc()
			m.BackendDuration.WithLabelValues(api).Observe(0.002)
			m.Notifications.WithLabelValues(api, string(x.code), x.outcome).Inc()
			m.Duration.WithLabelValues(api).Observe(0.003)
		}
	})
	b.Run("metrics=resolved", func(b *testing.B) {
		h := &Handler{apis: []route{{path: addPath, api: x.api}}}
		m.resolveSeries(h)
		x := *x
		x.series = h.apis[0].series
		for b.Loop() {
			m.ObserveVerification(1, nil)
			m.observeBackend(api, x.series, http.StatusOK, 2*time.Millisecond, 10*time.Second)
			m.observeNotification(api, &x, 3*time.Millisecond)
		}
	})
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.Run("forward-context=timeout", func(b *testing.B) {
		for b.Loop() {
			ctx, cancel := context.WithTimeout(parent, 10*time.Second)
			_ = ctx
			cancel()
		}
	})
	b.Run("forward-context=cancel-only", func(b *testing.B) {
		for b.Loop() {
			ctx, cancel := context.WithCancel(parent)
			_ = ctx
			cancel()
		}
	})
}

func mustAPI(b *testing.B, name string) *notification.API {
	b.Helper()
	a, ok := notification.Lookup(name)
	if !ok {
		b.Fatalf("no API %s", name)
	}
	return a
}
