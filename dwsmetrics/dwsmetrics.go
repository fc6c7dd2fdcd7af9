// Package dwsmetrics holds the gateway's Prometheus collectors without
// Caddy: their names, help texts, labels and buckets, the bounded label
// values, the series created at zero for what a handler serves, and the
// observations of a notification, a forward, a signature check and the
// inbox. caddymodule registers them into each config's registry
// (Register) and feeds them; nothing here knows of Caddy.
package dwsmetrics

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

// Outcomes, as logged and as the outcome label of the metrics.
const (
	OutcomeForwarded        = "forwarded"         // backend accepted (2xx)
	OutcomeBusinessRejected = "business_rejected" // backend refused for a business reason; acknowledged
	OutcomeBackendFailed    = "backend_failed"    // backend failed, timed out or wrote nothing; released
	OutcomeReplayed         = "replayed"          // duplicate of a completed notification
	OutcomeInFlight         = "in_flight"         // duplicate whose first copy did not finish in time
	OutcomeConflict         = "conflict"          // same requestId, other content
	OutcomeRejected         = "rejected"          // failed a check before the store was touched
	OutcomeStoreFailed      = "store_failed"      // the store could not claim or complete
	OutcomeReadFailed       = "read_failed"       // the body could not be read (client gone); DWS retries
	OutcomeQueued           = "queued"            // durably queued in the inbox (acknowledge on_receipt)
	OutcomeQueueFull        = "queue_full"        // the inbox holds max_queued notifications; released
)

// Stages of a refusal (refusals_total's stage label and the refused_at log
// field).
const (
	StageBeforeSignature = "before_signature"
	StageSignature       = "signature"
	StageFieldRules      = "field_rules"
)

// UnknownAPI is the api label of requests on a path no API is served at.
const UnknownAPI = "unknown"

// Collectors are the gateway's collectors. They are created once per
// process (Process) and registered into each config's registry on every
// Provision (Register), so counters keep their values across reloads and
// several dws_notify handlers share them. Labels are bounded: never a
// requestId or a client address.
type Collectors struct {
	Notifications     *prometheus.CounterVec
	SignatureFailures *prometheus.CounterVec
	Verifications     *prometheus.CounterVec
	Duplicates        *prometheus.CounterVec
	BackendResponses  *prometheus.CounterVec
	BackendDuration   *prometheus.HistogramVec
	Duration          *prometheus.HistogramVec
	CompletionRetries *prometheus.CounterVec
	Refusals          *prometheus.CounterVec
	BackendSlow       *prometheus.CounterVec
	StoreUp           *prometheus.GaugeVec
	BuildInfo         *prometheus.GaugeVec
	// The inbox of acknowledge on_receipt.
	InboxDeliveries *prometheus.CounterVec
	InboxQueued     *prometheus.GaugeVec
	InboxOldest     *prometheus.GaugeVec
	InboxDead       *prometheus.GaugeVec
	InboxDelivering *prometheus.GaugeVec
}

var (
	processOnce sync.Once
	process     *Collectors
)

// New returns a fresh set of collectors, registered nowhere: Process
// returns the process-wide ones; tests take their own.
func New() *Collectors {
	return &Collectors{
		Notifications: counter("notifications_total",
			"Notifications answered, by api, result code and outcome.",
			"api", "result_code", "outcome"),
		SignatureFailures: counter("signature_failures_total",
			"Notifications answered INVALID_SIGNATURE, by reason.",
			"reason"),
		Verifications: counter("signature_verifications_total",
			"Signature checks of notifications, by key_version (the DWS key version that verified the signature; on a failure the configured version the notification named, else none) and result (verified, failed; signature_failures_total has the reasons).",
			"key_version", "result"),
		Duplicates: counter("duplicates_total",
			"Notifications whose requestId was already claimed, by api and kind (replayed, in_flight, conflict).",
			"api", "kind"),
		BackendResponses: counter("backend_responses_total",
			"Forwarded notifications by api and backend HTTP status (none when the backend wrote nothing).",
			"api", "status"),
		BackendDuration: histogram("backend_duration_seconds",
			"Time the backend took to answer a forwarded notification (a forward cut off at forward_timeout counts as that long).",
			"api"),
		Duration: histogram("request_duration_seconds",
			"Time from receipt to answer, by api.",
			"api"),
		CompletionRetries: counter("completion_retries_total",
			"Failed completions retried in the background: started, and how each ended (stored, taken_over, closed, expired).",
			"result"),
		Refusals: counter("refusals_total",
			"Requests refused by the checks, by api and stage: before_signature (path, method, Client-Id, encoding or size refused before any signature check: scanners, misrouted or misconfigured senders), signature (answered INVALID_SIGNATURE), field_rules (the signature verified but the body broke the field rules: DWS sent it, so DWS's format changed).",
			"api", "stage"),
		BackendSlow: counter("backend_slow_total",
			"Forwarded notifications whose backend took at least 80% of the handler's forward_timeout, cut off ones included.",
			"api"),
		StoreUp: gauge("store_up",
			"1 while the idempotency store answers and confirms its writes as configured (wait_aof, wait_replicas), 0 while it does not (notifications are answered U), by store kind (badger, redis) and store id (logged with the store's description at provisioning).",
			"kind", "store"),
		InboxDeliveries: counter("inbox_deliveries_total",
			"Tries to deliver a queued notification (acknowledge on_receipt), by result: delivered (2xx), business_rejected, retry (failed, tried again later), undecryptable (no configured key opens it; retried), dead (failed at its max_age: dead-lettered), stopped (cut short by a stop; due again at once).",
			"result"),
		InboxQueued: gauge("inbox_queued",
			"Notifications queued and not yet delivered (pending or being delivered), by store (as store_up's), read every few seconds by the gateway that delivers.",
			"store"),
		InboxOldest: gauge("inbox_oldest_age_seconds",
			"Age of the oldest queued notification (0 when none), by store.",
			"store"),
		InboxDead: gauge("inbox_dead_letters",
			"Dead letters whose payload is still kept (they can be redelivered), by store.",
			"store"),
		InboxDelivering: gauge("inbox_delivering",
			"1 while a running config of this gateway delivers the store's inbox (acknowledge on_receipt), 0 while none does although the store holds queued notifications or dead letters (they wait until one does), by store.",
			"store"),
		BuildInfo: gauge("build_info",
			"Always 1: the dws_notify build that runs (module version, commit when known, Go version).",
			"version", "revision", "goversion"),
	}
}

// The collectors' namespace and subsystem: every metric is
// caddy_dws_notify_<name>.
const metricNS, metricSub = "caddy", "dws_notify"

func counter(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricNS, Subsystem: metricSub, Name: name, Help: help}, labels)
}

func gauge(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: metricNS, Subsystem: metricSub, Name: name, Help: help}, labels)
}

// histogram buckets its observations by DurationBuckets.
func histogram(name, help string, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: metricNS, Subsystem: metricSub, Name: name, Help: help, Buckets: DurationBuckets}, labels)
}

// DurationBuckets are the upper bounds (seconds) of both latency
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
var DurationBuckets = []float64{
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	0.8, 1, 1.6, 2, 4, 5, 8, 10, 12, 15, 16, 20, 24, 30, 48, 60,
}

// SlowShare is the share of forward_timeout from which a forward counts in
// backend_slow_total.
const SlowShare = 0.8

// All returns every collector, to register.
func (c *Collectors) All() []prometheus.Collector {
	return []prometheus.Collector{c.Notifications, c.SignatureFailures, c.Verifications, c.Duplicates, c.BackendResponses, c.BackendDuration, c.Duration, c.CompletionRetries, c.Refusals, c.BackendSlow, c.StoreUp, c.BuildInfo,
		c.InboxDeliveries, c.InboxQueued, c.InboxOldest, c.InboxDead, c.InboxDelivering}
}

// Register registers the process-wide collectors into reg (a config's
// registry) and returns them. Already-registered collectors are fine; a
// nil registry (some derived contexts) just means no export.
func Register(reg *prometheus.Registry, logger *zap.Logger) *Collectors {
	Process()
	if reg == nil {
		return process
	}
	for _, c := range process.All() {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				logger.Warn("registering dws_notify metrics", zap.Error(err))
			}
		}
	}
	return process
}

// Process returns the process-wide collectors, creating them (and
// setting build_info) the first time.
func Process() *Collectors {
	processOnce.Do(func() {
		process = New()
		v := buildinfo.Plugin()
		process.BuildInfo.WithLabelValues(v.Version, v.Revision, v.GoVersion).Set(1)
	})
	return process
}

// Series are the series every forwarded notification of one API touches,
// looked up once at Provision (Resolve) instead of by their label values
// on every request (a hash of the values and a map lookup under a lock,
// about 0.1 µs each). The collectors are process-wide and never reset, so
// a series stays the one exported.
type Series struct {
	Forwarded       prometheus.Counter  // notifications_total{api, SUCCESS, forwarded}
	Duration        prometheus.Observer // request_duration_seconds{api}
	BackendOK       prometheus.Counter  // backend_responses_total{api, 200}
	BackendDuration prometheus.Observer // backend_duration_seconds{api}
}

// Resolve looks up the hot-path series of api.
func (c *Collectors) Resolve(api string) *Series {
	return &Series{
		Forwarded:       c.Notifications.WithLabelValues(api, string(notification.Success), OutcomeForwarded),
		Duration:        c.Duration.WithLabelValues(api),
		BackendOK:       c.BackendResponses.WithLabelValues(api, StatusLabel(http.StatusOK)),
		BackendDuration: c.BackendDuration.WithLabelValues(api),
	}
}

// ObserveBackend counts a forward of api (s its resolved series, or nil)
// that the backend answered status after took, limit being the handler's
// forward_timeout.
func (c *Collectors) ObserveBackend(api string, s *Series, status int, took, limit time.Duration) {
	if s != nil && status == http.StatusOK {
		s.BackendOK.Inc()
	} else {
		c.BackendResponses.WithLabelValues(api, StatusLabel(status)).Inc()
	}
	if s != nil {
		s.BackendDuration.Observe(took.Seconds())
	} else {
		c.BackendDuration.WithLabelValues(api).Observe(took.Seconds())
	}
	if took.Seconds() >= SlowShare*limit.Seconds() {
		c.BackendSlow.WithLabelValues(api).Inc()
	}
}

// Answered is what the metrics need of an answered notification.
type Answered struct {
	Series    *Series // the API's resolved series, or nil
	Code      notification.Code
	Outcome   string
	SigReason string // signature.Reason of a signature failure, else ""
	Stage     string // Stage* of a refusal, else ""
}

// ObserveNotification counts a notification of api answered after took.
func (c *Collectors) ObserveNotification(api string, a Answered, took time.Duration) {
	s := a.Series
	if s != nil && a.Code == notification.Success && a.Outcome == OutcomeForwarded {
		s.Forwarded.Inc()
	} else {
		c.Notifications.WithLabelValues(api, string(a.Code), a.Outcome).Inc()
	}
	if a.SigReason != "" {
		c.SignatureFailures.WithLabelValues(a.SigReason).Inc()
	}
	if a.Stage != "" {
		c.Refusals.WithLabelValues(api, a.Stage).Inc()
	}
	if s != nil {
		s.Duration.Observe(took.Seconds())
	} else {
		c.Duration.WithLabelValues(api).Observe(took.Seconds())
	}
}

// notificationSeries are the (result_code, outcome) pairs a served API can
// be answered with; Precreate makes each at zero.
var notificationSeries = []struct {
	code    notification.Code
	outcome string
}{
	{notification.Success, OutcomeForwarded},
	{notification.Success, OutcomeBusinessRejected},
	{notification.Success, OutcomeReplayed},
	{notification.ParamIllegal, OutcomeRejected},
	{notification.AccessDenied, OutcomeRejected},
	{notification.InvalidSignature, OutcomeRejected},
	{notification.RepeatReqInconsistent, OutcomeConflict},
	{notification.UnknownException, OutcomeBackendFailed},
	{notification.UnknownException, OutcomeInFlight},
	{notification.UnknownException, OutcomeStoreFailed},
	{notification.UnknownException, OutcomeReadFailed},
}

// signatureReasons are the reason labels signature.Reason gives.
var signatureReasons = []string{"missing", "malformed", "unsupported_algorithm", "unknown_key_version", "bad_encoding", "verification_failed", "bad_request_time", "stale", "other"}

// Served is what a handler serves, as Precreate needs it.
type Served struct {
	APIs           []string // the APIs served
	AnyPath        bool     // one API on any path (else fixed paths, and "unknown" for the others)
	BusinessReject []int    // the backend statuses taken as business rejections
	KeyVersions    []int    // the configured DWS key versions
	Inbox          bool     // acknowledge on_receipt
}

// Precreate makes, at zero, every series a handler serving sv can touch
// whose labels are known in advance, so that rate() and increase() see the
// first event, and dashboards and alerts find their series before it: per
// served API every (result_code, outcome) it can be answered with, every
// refusal stage, every duplicate kind, the latency histograms,
// backend_slow_total and backend_responses_total for 200, none and each
// business status; the path-less "unknown" api when the handler serves
// fixed paths; every signature failure reason; the key_version series of
// signature_verifications_total for each configured version (and none);
// every completion retry result; with the inbox, its outcomes and every
// delivery result. Series of other backend statuses appear when first
// seen.
func (c *Collectors) Precreate(sv Served) {
	business := []string{StatusLabel(http.StatusOK), StatusLabel(0)}
	for _, s := range sv.BusinessReject {
		business = append(business, StatusLabel(s))
	}
	for _, api := range sv.APIs {
		for _, s := range notificationSeries {
			c.Notifications.WithLabelValues(api, string(s.code), s.outcome)
		}
		for _, stage := range []string{StageBeforeSignature, StageSignature, StageFieldRules} {
			c.Refusals.WithLabelValues(api, stage)
		}
		for _, kind := range []string{OutcomeReplayed, OutcomeInFlight, OutcomeConflict} {
			c.Duplicates.WithLabelValues(api, kind)
		}
		for _, status := range business {
			c.BackendResponses.WithLabelValues(api, status)
		}
		c.BackendDuration.WithLabelValues(api)
		c.BackendSlow.WithLabelValues(api)
		c.Duration.WithLabelValues(api)
	}
	if !sv.AnyPath {
		c.Notifications.WithLabelValues(UnknownAPI, string(notification.ParamIllegal), OutcomeRejected)
		c.Refusals.WithLabelValues(UnknownAPI, StageBeforeSignature)
		c.Duration.WithLabelValues(UnknownAPI)
	}
	for _, reason := range signatureReasons {
		c.SignatureFailures.WithLabelValues(reason)
	}
	c.Verifications.WithLabelValues("none", VerificationResult(signature.ErrVerificationFailed))
	for _, kv := range sv.KeyVersions {
		v := strconv.Itoa(kv)
		c.Verifications.WithLabelValues(v, VerificationResult(nil))
		c.Verifications.WithLabelValues(v, VerificationResult(signature.ErrVerificationFailed))
	}
	c.CompletionRetries.WithLabelValues("started")
	for _, r := range guard.RetryResults {
		c.CompletionRetries.WithLabelValues(string(r))
	}
	if sv.Inbox {
		for _, api := range sv.APIs {
			c.Notifications.WithLabelValues(api, string(notification.Success), OutcomeQueued)
			c.Notifications.WithLabelValues(api, string(notification.UnknownException), OutcomeQueueFull)
		}
		for _, r := range deliveryResults {
			c.InboxDeliveries.WithLabelValues(string(r))
		}
	}
}

// deliveryResults are the result labels of inbox_deliveries_total.
var deliveryResults = []inbox.Result{inbox.Delivered, inbox.BusinessRejected, inbox.Retrying, inbox.Undecryptable, inbox.Dead, inbox.Stopped}

// ObserveDelivery counts a try of the inbox (its Tried hook).
func (c *Collectors) ObserveDelivery(a inbox.Attempt) {
	c.InboxDeliveries.WithLabelValues(string(a.Result)).Inc()
}

// PrecreateQueue makes the queue gauges of a store at zero.
func (c *Collectors) PrecreateQueue(store string) {
	c.InboxQueued.WithLabelValues(store)
	c.InboxOldest.WithLabelValues(store)
	c.InboxDead.WithLabelValues(store)
	c.InboxDelivering.WithLabelValues(store)
}

// DeleteQueue removes the queue gauges of a store.
func (c *Collectors) DeleteQueue(store string) {
	c.InboxQueued.DeleteLabelValues(store)
	c.InboxOldest.DeleteLabelValues(store)
	c.InboxDead.DeleteLabelValues(store)
	c.InboxDelivering.DeleteLabelValues(store)
}

// ObserveDelivering sets whether a running config of this gateway
// delivers the store's inbox.
func (c *Collectors) ObserveDelivering(store string, delivering bool) {
	v := 0.0
	if delivering {
		v = 1
	}
	c.InboxDelivering.WithLabelValues(store).Set(v)
}

// ObserveQueue sets the queue gauges of a store.
func (c *Collectors) ObserveQueue(store string, st idempotency.QueueStats, now time.Time) {
	c.InboxQueued.WithLabelValues(store).Set(float64(st.Queued))
	age := 0.0
	if !st.Oldest.IsZero() {
		age = max(now.Sub(st.Oldest).Seconds(), 0)
	}
	c.InboxOldest.WithLabelValues(store).Set(age)
	c.InboxDead.WithLabelValues(store).Set(float64(st.Dead))
}

// ObserveVerification counts one signature check: version and err are
// what KeyRing.VerifyNotification returned.
func (c *Collectors) ObserveVerification(version int, err error) {
	c.Verifications.WithLabelValues(KeyVersionLabel(version, err), VerificationResult(err)).Inc()
}

// KeyVersionLabel bounds the key_version label to the configured versions
// plus "none": the version that verified, or, when the signature did not
// verify, the configured version the notification named. A version the
// sender named but that is not configured (ErrUnknownKeyVersion) is
// "none", as is a failure without a named version.
func KeyVersionLabel(version int, err error) string {
	if version >= 0 && (err == nil || errors.Is(err, signature.ErrVerificationFailed)) {
		return strconv.Itoa(version)
	}
	return "none"
}

// VerificationResult is the result label of a signature check.
func VerificationResult(err error) string {
	if err == nil {
		return "verified"
	}
	return "failed"
}

// StatusLabel bounds the status label to real HTTP statuses.
func StatusLabel(status int) string {
	switch {
	case status == 0:
		return "none"
	case status < 100 || status > 599:
		return "other"
	}
	return strconv.Itoa(status)
}
