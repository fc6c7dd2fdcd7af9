package caddymodule

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/dwsmetrics"
	"github.com/dwsnotify/dws_notify/inbox"
)

// metrics are the process-wide collectors (dwsmetrics) as a handler uses
// them; registered into each config's registry on every Provision.
type metrics struct {
	*dwsmetrics.Collectors
}

// apiSeries are the hot-path series of one API (dwsmetrics.Series).
type apiSeries = dwsmetrics.Series

// registerMetrics registers the process-wide collectors into reg (this
// config's registry); see dwsmetrics.Register.
func registerMetrics(reg *prometheus.Registry, logger *zap.Logger) *metrics {
	return &metrics{dwsmetrics.Register(reg, logger)}
}

// processMetrics returns the process-wide collectors.
func processMetrics() *metrics {
	return &metrics{dwsmetrics.Process()}
}

// precreate makes at zero every series the handler h can touch whose
// labels are known in advance (dwsmetrics.Collectors.Precreate), then
// resolves the hot-path series of h's routes from m, so that they count
// into these collectors.
func (m *metrics) precreate(h *Handler) {
	sv := dwsmetrics.Served{AnyPath: h.anyPath != nil, Inbox: h.inbox != nil}
	if h.anyPath != nil {
		sv.APIs = append(sv.APIs, h.anyPath.api.Name())
	}
	for _, r := range h.apis {
		sv.APIs = append(sv.APIs, r.api.Name())
	}
	for s, on := range h.settings.BusinessReject {
		if on {
			sv.BusinessReject = append(sv.BusinessReject, s)
		}
	}
	for _, kc := range h.DWSPublicKey {
		sv.KeyVersions = append(sv.KeyVersions, kc.Version())
	}
	m.Precreate(sv)
	m.resolveSeries(h)
}

// resolveSeries looks up the hot-path series of every API h serves.
func (m *metrics) resolveSeries(h *Handler) {
	if h.anyPath != nil {
		h.anyPath.series = m.Resolve(h.anyPath.api.Name())
	}
	for i := range h.apis {
		h.apis[i].series = m.Resolve(h.apis[i].api.Name())
	}
}

// observeBackend counts a forward (dwsmetrics.Collectors.ObserveBackend).
func (m *metrics) observeBackend(api string, s *apiSeries, status int, took, limit time.Duration) {
	m.ObserveBackend(api, s, status, took, limit)
}

// observeNotification counts the answered notification x of api.
func (m *metrics) observeNotification(api string, x *exchange, took time.Duration) {
	m.ObserveNotification(api, dwsmetrics.Answered{Series: x.series, Code: x.code, Outcome: x.outcome, SigReason: x.sigReason, Stage: x.stage}, took)
}

// observeDelivery counts a try of the inbox (its Tried hook).
func (m *metrics) observeDelivery(a inbox.Attempt) {
	m.ObserveDelivery(a)
}
