package caddymodule

import (
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/buildinfo"
	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/guard"
	"github.com/dwsnotify/dws_notify/inbox"
	"github.com/dwsnotify/dws_notify/notification"
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
	refusals          *prometheus.CounterVec
	backendSlow       *prometheus.CounterVec
	storeUp           *prometheus.GaugeVec
	buildInfo         *prometheus.GaugeVec
	// The inbox of acknowledge on_receipt.
	inboxDeliveries *prometheus.CounterVec
	inboxQueued     *prometheus.GaugeVec
	inboxOldest     *prometheus.GaugeVec
	inboxDead       *prometheus.GaugeVec
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
			Help:    "Time the backend took to answer a forwarded notification (a forward cut off at forward_timeout counts as that long).",
			Buckets: durationBuckets,
		}, []string{"api"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "request_duration_seconds",
			Help:    "Time from receipt to answer, by api.",
			Buckets: durationBuckets,
		}, []string{"api"}),
		completionRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "completion_retries_total",
			Help: "Failed completions retried in the background: started, and how each ended (stored, taken_over, closed, expired).",
		}, []string{"result"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "refusals_total",
			Help: "Requests refused by the checks, by api and stage: before_signature (path, method, Client-Id, encoding or size refused before any signature check: scanners, misrouted or misconfigured senders), signature (answered INVALID_SIGNATURE), field_rules (the signature verified but the body broke the field rules: DWS sent it, so DWS's format changed).",
		}, []string{"api", "stage"}),
		backendSlow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "backend_slow_total",
			Help: "Forwarded notifications whose backend took at least 80% of the handler's forward_timeout, cut off ones included.",
		}, []string{"api"}),
		storeUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "store_up",
			Help: "1 while the idempotency store answers, 0 while it does not (notifications are answered U), by store kind (badger, redis) and store id (logged with the store's description at provisioning).",
		}, []string{"kind", "store"}),
		inboxDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "inbox_deliveries_total",
			Help: "Tries to deliver a queued notification (acknowledge on_receipt), by result: delivered (2xx), business_rejected, retry (failed, tried again later), undecryptable (no configured key opens it; retried), dead (failed at its max_age: dead-lettered), stopped (cut short by a stop; due again at once).",
		}, []string{"result"}),
		inboxQueued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "inbox_queued",
			Help: "Notifications queued and not yet delivered (pending or being delivered), by store (as store_up's), read every few seconds by the gateway that delivers.",
		}, []string{"store"}),
		inboxOldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "inbox_oldest_age_seconds",
			Help: "Age of the oldest queued notification (0 when none), by store.",
		}, []string{"store"}),
		inboxDead: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "inbox_dead_letters",
			Help: "Dead letters whose payload is still kept (they can be redelivered), by store.",
		}, []string{"store"}),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "build_info",
			Help: "Always 1: the dws_notify build that runs (module version, commit when known, Go version).",
		}, []string{"version", "revision", "goversion"}),
	}
}

// durationBuckets are the upper bounds (seconds) of both latency
// histograms. The collectors are process-wide (shared by every handler and
// kept across reloads) and a histogram's buckets are fixed when it is
// created, so they cannot follow each handler's forward_timeout. Instead
// they bracket the timeouts people configure: for each of 1, 2, 5, 10, 15,
// 20, 30 and 60 seconds there is a bound at the timeout and one at 80% of
// it (0.8, 1.6, 4, 8, 12, 16, 24, 48), so the share of forwards near the
// timeout and of those cut off by it can be read off the buckets (with the
// default 10s: le="8" and le="10"). Below a second they are fine enough
// for a local backend and the store's fsync. A forward cut off at the
// timeout is observed a little over it, in the next bucket up.
// backend_slow_total counts forwards past 80% of their own handler's
// timeout whatever it is.
var durationBuckets = []float64{
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	0.8, 1, 1.6, 2, 4, 5, 8, 10, 12, 15, 16, 20, 24, 30, 48, 60,
}

// slowShare is the share of forward_timeout from which a forward counts in
// backend_slow_total.
const slowShare = 0.8

func (m *metrics) all() []prometheus.Collector {
	return []prometheus.Collector{m.notifications, m.signatureFailures, m.verifications, m.duplicates, m.backendResponses, m.backendDuration, m.duration, m.completionRetries, m.refusals, m.backendSlow, m.storeUp, m.buildInfo,
		m.inboxDeliveries, m.inboxQueued, m.inboxOldest, m.inboxDead}
}

// registerMetrics registers the process-wide collectors into reg (this
// config's registry). Already-registered collectors are fine; a nil
// registry (some derived contexts) just means no export.
func registerMetrics(reg *prometheus.Registry, logger *zap.Logger) *metrics {
	processMetrics()
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

// processMetrics returns the process-wide collectors, creating them (and
// setting build_info) the first time.
func processMetrics() *metrics {
	metricsOnce.Do(func() {
		collectors = newMetrics()
		v := buildinfo.Plugin()
		collectors.buildInfo.WithLabelValues(v.Version, v.Revision, v.GoVersion).Set(1)
	})
	return collectors
}

// apiSeries are the series every forwarded notification of one API
// touches, looked up once at Provision (precreate) instead of by their
// label values on every request (a hash of the values and a map lookup
// under a lock, about 0.1 µs each). The collectors are process-wide and
// never reset, so a series stays the one exported.
type apiSeries struct {
	forwarded       prometheus.Counter  // notifications_total{api, SUCCESS, forwarded}
	duration        prometheus.Observer // request_duration_seconds{api}
	backendOK       prometheus.Counter  // backend_responses_total{api, 200}
	backendDuration prometheus.Observer // backend_duration_seconds{api}
}

// resolveSeries looks up the hot-path series of every API h serves.
func (m *metrics) resolveSeries(h *Handler) {
	resolve := func(api string) *apiSeries {
		return &apiSeries{
			forwarded:       m.notifications.WithLabelValues(api, string(notification.Success), outcomeForwarded),
			duration:        m.duration.WithLabelValues(api),
			backendOK:       m.backendResponses.WithLabelValues(api, statusLabel(http.StatusOK)),
			backendDuration: m.backendDuration.WithLabelValues(api),
		}
	}
	if h.anyPath != nil {
		h.anyPath.series = resolve(h.anyPath.api.Name())
	}
	for i := range h.apis {
		h.apis[i].series = resolve(h.apis[i].api.Name())
	}
}

func (m *metrics) observeBackend(api string, s *apiSeries, status int, took, limit time.Duration) {
	if s != nil && status == http.StatusOK {
		s.backendOK.Inc()
	} else {
		m.backendResponses.WithLabelValues(api, statusLabel(status)).Inc()
	}
	if s != nil {
		s.backendDuration.Observe(took.Seconds())
	} else {
		m.backendDuration.WithLabelValues(api).Observe(took.Seconds())
	}
	if took.Seconds() >= slowShare*limit.Seconds() {
		m.backendSlow.WithLabelValues(api).Inc()
	}
}

func (m *metrics) observeNotification(api string, x *exchange, took time.Duration) {
	s := x.series
	if s != nil && x.code == notification.Success && x.outcome == outcomeForwarded {
		s.forwarded.Inc()
	} else {
		m.notifications.WithLabelValues(api, string(x.code), x.outcome).Inc()
	}
	if x.sigReason != "" {
		m.signatureFailures.WithLabelValues(x.sigReason).Inc()
	}
	if x.stage != "" {
		m.refusals.WithLabelValues(api, x.stage).Inc()
	}
	if s != nil {
		s.duration.Observe(took.Seconds())
	} else {
		m.duration.WithLabelValues(api).Observe(took.Seconds())
	}
}

// Stages of a refusal (refusals_total's stage label and the refused_at log
// field).
const (
	stageBeforeSignature = "before_signature"
	stageSignature       = "signature"
	stageFieldRules      = "field_rules"
)

// unknownAPI is the api label of requests on a path no API is served at.
const unknownAPI = "unknown"

// notificationSeries are the (result_code, outcome) pairs a served API can
// be answered with; precreate makes each at zero.
var notificationSeries = []struct {
	code    notification.Code
	outcome string
}{
	{notification.Success, outcomeForwarded},
	{notification.Success, outcomeBusinessRejected},
	{notification.Success, outcomeReplayed},
	{notification.ParamIllegal, outcomeRejected},
	{notification.AccessDenied, outcomeRejected},
	{notification.InvalidSignature, outcomeRejected},
	{notification.RepeatReqInconsistent, outcomeConflict},
	{notification.UnknownException, outcomeBackendFailed},
	{notification.UnknownException, outcomeInFlight},
	{notification.UnknownException, outcomeStoreFailed},
	{notification.UnknownException, outcomeReadFailed},
}

// signatureReasons are the reason labels signature.Reason gives.
var signatureReasons = []string{"missing", "malformed", "unsupported_algorithm", "unknown_key_version", "bad_encoding", "verification_failed", "bad_request_time", "stale", "other"}

// precreate makes, at zero, every series the handler h can touch whose
// labels are known in advance, so that rate() and increase() see the first
// event, and dashboards and alerts find their series before it: per served
// API every (result_code, outcome) it can be answered with, every refusal
// stage, every duplicate kind, the latency histograms, backend_slow_total
// and backend_responses_total for 200, none and each business status; the
// path-less "unknown" api when the handler serves fixed paths; every
// signature failure reason; the key_version series of
// signature_verifications_total for each configured version (and none);
// every completion retry result. Series of other backend statuses appear
// when first seen. Last, it resolves the hot-path series of h's routes
// (resolveSeries) from m, so that they count into these collectors.
func (m *metrics) precreate(h *Handler) {
	var apis []string
	if h.anyPath != nil {
		apis = append(apis, h.anyPath.api.Name())
	}
	for _, r := range h.apis {
		apis = append(apis, r.api.Name())
	}
	business := []string{statusLabel(http.StatusOK), statusLabel(0)}
	for s, on := range h.settings.BusinessReject {
		if on {
			business = append(business, statusLabel(s))
		}
	}
	for _, api := range apis {
		for _, s := range notificationSeries {
			m.notifications.WithLabelValues(api, string(s.code), s.outcome)
		}
		for _, stage := range []string{stageBeforeSignature, stageSignature, stageFieldRules} {
			m.refusals.WithLabelValues(api, stage)
		}
		for _, kind := range []string{outcomeReplayed, outcomeInFlight, outcomeConflict} {
			m.duplicates.WithLabelValues(api, kind)
		}
		for _, status := range business {
			m.backendResponses.WithLabelValues(api, status)
		}
		m.backendDuration.WithLabelValues(api)
		m.backendSlow.WithLabelValues(api)
		m.duration.WithLabelValues(api)
	}
	if h.anyPath == nil {
		m.notifications.WithLabelValues(unknownAPI, string(notification.ParamIllegal), outcomeRejected)
		m.refusals.WithLabelValues(unknownAPI, stageBeforeSignature)
		m.duration.WithLabelValues(unknownAPI)
	}
	for _, reason := range signatureReasons {
		m.signatureFailures.WithLabelValues(reason)
	}
	m.verifications.WithLabelValues("none", verificationResult(signature.ErrVerificationFailed))
	for _, kc := range h.DWSPublicKey {
		v := strconv.Itoa(kc.Version())
		m.verifications.WithLabelValues(v, verificationResult(nil))
		m.verifications.WithLabelValues(v, verificationResult(signature.ErrVerificationFailed))
	}
	m.completionRetries.WithLabelValues("started")
	for _, r := range guard.RetryResults {
		m.completionRetries.WithLabelValues(string(r))
	}
	m.resolveSeries(h)
	if h.inbox != nil {
		for _, api := range apis {
			m.notifications.WithLabelValues(api, string(notification.Success), outcomeQueued)
			m.notifications.WithLabelValues(api, string(notification.UnknownException), outcomeQueueFull)
		}
		for _, r := range deliveryResults {
			m.inboxDeliveries.WithLabelValues(string(r))
		}
	}
}

// deliveryResults are the result labels of inbox_deliveries_total.
var deliveryResults = []inbox.Result{inbox.Delivered, inbox.BusinessRejected, inbox.Retrying, inbox.Undecryptable, inbox.Dead, inbox.Stopped}

// observeDelivery counts a try of the inbox (its Tried hook).
func (m *metrics) observeDelivery(a inbox.Attempt) {
	m.inboxDeliveries.WithLabelValues(string(a.Result)).Inc()
}

// precreateQueue makes the queue gauges of a store at zero.
func (m *metrics) precreateQueue(store string) {
	m.inboxQueued.WithLabelValues(store)
	m.inboxOldest.WithLabelValues(store)
	m.inboxDead.WithLabelValues(store)
}

// observeQueue sets the queue gauges of a store.
func (m *metrics) observeQueue(store string, st idempotency.QueueStats, now time.Time) {
	m.inboxQueued.WithLabelValues(store).Set(float64(st.Queued))
	age := 0.0
	if !st.Oldest.IsZero() {
		age = max(now.Sub(st.Oldest).Seconds(), 0)
	}
	m.inboxOldest.WithLabelValues(store).Set(age)
	m.inboxDead.WithLabelValues(store).Set(float64(st.Dead))
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
