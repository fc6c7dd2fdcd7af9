package caddymodule

import (
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/signature"
)

// metrics are the gateway's collectors. They are created once per process
// and registered into each config's registry on every Provision, so
// counters keep their values across reloads and several dws_notify handlers
// share them. Labels are bounded: never a requestId or a client address.
type metrics struct {
	notifications     *prometheus.CounterVec
	signatureFailures *prometheus.CounterVec
	verifications     *prometheus.CounterVec
	duplicates        *prometheus.CounterVec
	backendResponses  *prometheus.CounterVec
	backendDuration   *prometheus.HistogramVec
	duration          *prometheus.HistogramVec
	completionRetries *prometheus.CounterVec
}

var (
	metricsOnce sync.Once
	collectors  *metrics
)

func newMetrics() *metrics {
	const ns, sub = "caddy", "dws_notify"
	return &metrics{
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "notifications_total",
			Help: "Notifications answered, by api, result code and outcome.",
		}, []string{"api", "result_code", "outcome"}),
		signatureFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "signature_failures_total",
			Help: "Notifications answered INVALID_SIGNATURE, by reason.",
		}, []string{"reason"}),
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "signature_verifications_total",
			Help: "Signature checks of notifications, by key_version (the DWS key version that verified the signature; on a failure the configured version the notification named, else none) and result (verified, failed; signature_failures_total has the reasons).",
		}, []string{"key_version", "result"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "duplicates_total",
			Help: "Notifications whose requestId was already claimed, by api and kind (replayed, in_flight, conflict).",
		}, []string{"api", "kind"}),
		backendResponses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "backend_responses_total",
			Help: "Forwarded notifications by api and backend HTTP status (none when the backend wrote nothing).",
		}, []string{"api", "status"}),
		backendDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "backend_duration_seconds",
			Help:    "Time the backend took to answer a forwarded notification.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"api"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "request_duration_seconds",
			Help:    "Time from receipt to answer, by api.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}, []string{"api"}),
		completionRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "completion_retries_total",
			Help: "Failed completions retried in the background: started, and how each ended (stored, taken_over, closed, expired).",
		}, []string{"result"}),
	}
}

func (m *metrics) all() []prometheus.Collector {
	return []prometheus.Collector{m.notifications, m.signatureFailures, m.verifications, m.duplicates, m.backendResponses, m.backendDuration, m.duration, m.completionRetries}
}

// registerMetrics registers the process-wide collectors into reg (this
// config's registry). Already-registered collectors are fine; a nil
// registry (some derived contexts) just means no export.
func registerMetrics(reg *prometheus.Registry, logger *zap.Logger) *metrics {
	metricsOnce.Do(func() { collectors = newMetrics() })
	if reg == nil {
		return collectors
	}
	for _, c := range collectors.all() {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				logger.Warn("registering dws_notify metrics", zap.Error(err))
			}
		}
	}
	return collectors
}

func (m *metrics) observeBackend(api string, status int, took time.Duration) {
	m.backendResponses.WithLabelValues(api, statusLabel(status)).Inc()
	m.backendDuration.WithLabelValues(api).Observe(took.Seconds())
}

func (m *metrics) observeNotification(api string, x *exchange, took time.Duration) {
	m.notifications.WithLabelValues(api, string(x.code), x.outcome).Inc()
	if x.sigReason != "" {
		m.signatureFailures.WithLabelValues(x.sigReason).Inc()
	}
	m.duration.WithLabelValues(api).Observe(took.Seconds())
}

// observeVerification counts one signature check: version and err are what
// KeyRing.VerifyNotification returned.
func (m *metrics) observeVerification(version int, err error) {
	m.verifications.WithLabelValues(keyVersionLabel(version, err), verificationResult(err)).Inc()
}

// keyVersionLabel bounds the key_version label to the configured versions
// plus "none": the version that verified, or, when the signature did not
// verify, the configured version the notification named. A version the
// sender named but that is not configured (ErrUnknownKeyVersion) is
// "none", as is a failure without a named version.
func keyVersionLabel(version int, err error) string {
	if version >= 0 && (err == nil || errors.Is(err, signature.ErrVerificationFailed)) {
		return strconv.Itoa(version)
	}
	return "none"
}

func verificationResult(err error) string {
	if err == nil {
		return "verified"
	}
	return "failed"
}

// statusLabel bounds the status label to real HTTP statuses.
func statusLabel(status int) string {
	switch {
	case status == 0:
		return "none"
	case status < 100 || status > 599:
		return "other"
	}
	return strconv.Itoa(status)
}
