package caddymodule

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dwsnotify/dws_notify/config"
	"github.com/dwsnotify/dws_notify/dwsmetrics"
)

// The collectors: every series a handler can touch exists at zero once it
// is provisioned, and counts survive reloads and are shared by handlers.

func TestMetricsSurviveReloadAndShareAcrossHandlers(t *testing.T) {
	first, second := newContext(t), newContext(t)
	a, b := baseHandler(t), baseHandler(t)
	provisioned(t, first, a)
	provisioned(t, first, b) // two handlers, one registry: no duplicate-registration failure
	before := counterValue(t, first.GetMetricsRegistry(), "caddy_dws_notify_notifications_total",
		map[string]string{"api": "addPaymentMethod", "result_code": "SUCCESS", "outcome": "forwarded"})
	serve(t, a, unitNotice(t, addPath, addSample(t, "m-1")), okBackend)

	// A reload: a new config with a new registry.
	c := baseHandler(t)
	provisioned(t, second, c)
	serve(t, c, unitNotice(t, addPath, addSample(t, "m-2")), okBackend)
	bad := unitNotice(t, addPath, addSample(t, "m-3"))
	bad.keyVersion = 4
	serve(t, c, bad, okBackend)

	got := counterValue(t, second.GetMetricsRegistry(), "caddy_dws_notify_notifications_total",
		map[string]string{"api": "addPaymentMethod", "result_code": "SUCCESS", "outcome": "forwarded"})
	if got != before+2 {
		t.Errorf("notifications_total in the new registry = %v, want %v (counts kept across the reload)", got, before+2)
	}
	if v := counterValue(t, second.GetMetricsRegistry(), "caddy_dws_notify_signature_failures_total", map[string]string{"reason": "unknown_key_version"}); v < 1 {
		t.Errorf("signature_failures_total{reason=unknown_key_version} = %v", v)
	}
	if v := counterValue(t, second.GetMetricsRegistry(), "caddy_dws_notify_backend_responses_total", map[string]string{"api": "addPaymentMethod", "status": "204"}); v < 2 {
		t.Errorf("backend_responses_total{status=204} = %v", v)
	}
}

// counterValue gathers reg (a pedantic registry in Caddy's contexts, so
// this also checks the collectors are consistent) and returns the counter
// with exactly these labels, 0 when absent.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	if reg == nil {
		t.Fatal("context has no metrics registry")
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// isolatedMetrics gives h collectors of its own, registered in a fresh
// registry and pre-created for h, so a test sees exactly the series its
// own requests make (the process-wide collectors carry every other
// test's).
func isolatedMetrics(t *testing.T, h *Handler) *prometheus.Registry {
	t.Helper()
	m := &metrics{dwsmetrics.New()}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m.All()...)
	h.metrics = m
	m.precreate(h)
	return reg
}

// seriesSet returns every series of reg as "name{l1=v1,l2=v2}" (labels
// sorted) with its value (a histogram's sample count).
func seriesSet(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering: %v", err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			var v float64
			switch {
			case m.GetCounter() != nil:
				v = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				v = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				v = float64(m.GetHistogram().GetSampleCount())
			}
			out[f.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return out
}

// series names one series as seriesSet does.
func series(name string, labels ...string) string {
	var ls []string
	for i := 0; i+1 < len(labels); i += 2 {
		ls = append(ls, labels[i]+"="+labels[i+1])
	}
	sort.Strings(ls)
	return name + "{" + strings.Join(ls, ",") + "}"
}

// exercise sends h one request of every kind the unit tests can make and
// returns how many of each refusal stage it sent.
type exerciseCounts struct{ beforeSignature, signature, fieldRules int }

func exercise(t *testing.T, h *Handler, faulty *faultyStore) exerciseCounts {
	t.Helper()
	var c exerciseCounts
	k := keys(t)
	// Forwarded, replayed, business-rejected, backend failures.
	n := unitNotice(t, addPath, addSample(t, "ex-1"))
	serve(t, h, n, okBackend)
	serve(t, h, n, okBackend)
	serve(t, h, unitNotice(t, removePath, removeSample(t, "ex-2")), statusBackend(http.StatusConflict))
	serve(t, h, unitNotice(t, addPath, addSample(t, "ex-3")), statusBackend(http.StatusBadGateway))
	// A conflict: the same requestId with other content.
	serve(t, h, unitNotice(t, addPath, bytes.Replace(addSample(t, "ex-1"), []byte("Tung"), []byte("Tong"), 1)), okBackend)
	// Refused before the signature: path, method, Client-Id, encoding, size.
	serve(t, h, unitNotice(t, "/wp-login.php", addSample(t, "ex-4")), okBackend)
	get := unitNotice(t, addPath, addSample(t, "ex-5"))
	get.method = http.MethodGet
	serve(t, h, get, okBackend)
	stranger := unitNotice(t, addPath, addSample(t, "ex-6"))
	stranger.clientID = "9999999999999999"
	serve(t, h, stranger, okBackend)
	gzipped := unitNotice(t, addPath, addSample(t, "ex-7"))
	gzipped.mutate = func(hd http.Header) { hd.Set("Content-Encoding", "gzip") }
	serve(t, h, gzipped, okBackend)
	c.beforeSignature = 4
	// Signature failures: another key, a version not configured, stale, missing.
	forged := unitNotice(t, addPath, addSample(t, "ex-8"))
	forged.key = k.merchant
	serve(t, h, forged, okBackend)
	unknown := unitNotice(t, addPath, addSample(t, "ex-9"))
	unknown.keyVersion = 9
	serve(t, h, unknown, okBackend)
	stale := unitNotice(t, addPath, addSample(t, "ex-10"))
	stale.time = fmt.Sprint(time.Now().Add(-72 * time.Hour).UnixMilli())
	serve(t, h, stale, okBackend)
	unsigned := unitNotice(t, addPath, addSample(t, "ex-11"))
	unsigned.mutate = func(hd http.Header) { hd.Del("Signature") }
	serve(t, h, unsigned, okBackend)
	c.signature = 4
	// Verified, refused by the field rules.
	serve(t, h, unitNotice(t, addPath, bytes.Replace(addSample(t, "ex-12"), []byte(`"expiryYear": "**"`), []byte(`"expiryYear": 2031`), 1)), okBackend)
	serve(t, h, unitNotice(t, addPath, withRequestID(t, "true")), okBackend)
	c.fieldRules = 2
	// A body that cannot be read.
	broken := unitNotice(t, addPath, addSample(t, "ex-13"))
	req := broken.request(t)
	r := httptest.NewRequest(http.MethodPost, broken.uri(), io.MultiReader(bytes.NewReader(broken.body[:10]), failingReader{}))
	r.Header = req.Header
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	if err := h.ServeHTTP(httptest.NewRecorder(), r, okBackend); err != nil {
		t.Fatal(err)
	}
	// A store that fails.
	if faulty != nil {
		faulty.failClaim.Store(true)
		serve(t, h, unitNotice(t, addPath, addSample(t, "ex-14")), okBackend)
		faulty.failClaim.Store(false)
	}
	return c
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset by peer") }

// Every bounded series exists at zero once the handler is provisioned, and
// the requests of every kind the handler can answer add no series but
// those of backend statuses not named in advance.
func TestPrecreatedSeriesCoverEveryOutcome(t *testing.T) {
	k := keys(t)
	h := baseHandler(t)
	three := 3
	h.DWSPublicKey = append(h.DWSPublicKey, config.Key{Key: bareBase64(t, &k.dwsNext.PublicKey), KeyVersion: &three})
	faulty := installFaultyStore(t, h.Storage)
	provisioned(t, newContext(t), h)
	reg := isolatedMetrics(t, h)
	before := seriesSet(t, reg)

	const nt = "caddy_dws_notify_notifications_total"
	for _, want := range []string{
		series(nt, "api", "addPaymentMethod", "result_code", "SUCCESS", "outcome", "forwarded"),
		series(nt, "api", "removePaymentMethod", "result_code", "SUCCESS", "outcome", "business_rejected"),
		series(nt, "api", "addPaymentMethod", "result_code", "UNKNOWN_EXCEPTION", "outcome", "in_flight"),
		series(nt, "api", "unknown", "result_code", "PARAM_ILLEGAL", "outcome", "rejected"),
		series("caddy_dws_notify_refusals_total", "api", "addPaymentMethod", "stage", "field_rules"),
		series("caddy_dws_notify_refusals_total", "api", "unknown", "stage", "before_signature"),
		series("caddy_dws_notify_signature_failures_total", "reason", "stale"),
		series("caddy_dws_notify_signature_verifications_total", "key_version", "3", "result", "verified"),
		series("caddy_dws_notify_signature_verifications_total", "key_version", "1", "result", "failed"),
		series("caddy_dws_notify_signature_verifications_total", "key_version", "none", "result", "failed"),
		series("caddy_dws_notify_duplicates_total", "api", "removePaymentMethod", "kind", "conflict"),
		series("caddy_dws_notify_completion_retries_total", "result", "expired"),
		series("caddy_dws_notify_backend_slow_total", "api", "addPaymentMethod"),
		series("caddy_dws_notify_backend_responses_total", "api", "addPaymentMethod", "status", "422"),
		series("caddy_dws_notify_backend_responses_total", "api", "addPaymentMethod", "status", "none"),
		series("caddy_dws_notify_backend_duration_seconds", "api", "removePaymentMethod"),
		series("caddy_dws_notify_request_duration_seconds", "api", "unknown"),
	} {
		v, ok := before[want]
		if !ok {
			t.Errorf("not pre-created: %s", want)
		} else if v != 0 {
			t.Errorf("%s = %v before any request, want 0", want, v)
		}
	}
	if _, ok := before[series("caddy_dws_notify_signature_verifications_total", "key_version", "2", "result", "verified")]; ok {
		t.Error("a verifications series for key version 2, which is not configured")
	}

	c := exercise(t, h, faulty)
	after := seriesSet(t, reg)
	for s := range after {
		if _, ok := before[s]; !ok && !strings.HasPrefix(s, "caddy_dws_notify_backend_responses_total{") {
			t.Errorf("a series appeared that was not pre-created: %s", s)
		}
	}
	for stage, want := range map[string]int{"before_signature": c.beforeSignature, "signature": c.signature, "field_rules": c.fieldRules} {
		var got float64
		for _, api := range []string{"addPaymentMethod", "removePaymentMethod", "unknown"} {
			got += after[series("caddy_dws_notify_refusals_total", "api", api, "stage", stage)]
		}
		if got != float64(want) {
			t.Errorf("refusals_total{stage=%q} = %v, want %d", stage, got, want)
		}
	}
	for s, want := range map[string]float64{
		series(nt, "api", "addPaymentMethod", "result_code", "SUCCESS", "outcome", "replayed"):                 1,
		series(nt, "api", "addPaymentMethod", "result_code", "UNKNOWN_EXCEPTION", "outcome", "read_failed"):    1,
		series(nt, "api", "addPaymentMethod", "result_code", "UNKNOWN_EXCEPTION", "outcome", "store_failed"):   1,
		series(nt, "api", "addPaymentMethod", "result_code", "REPEAT_REQ_INCONSISTENT", "outcome", "conflict"): 1,
		series(nt, "api", "removePaymentMethod", "result_code", "SUCCESS", "outcome", "business_rejected"):     1,
		series("caddy_dws_notify_signature_failures_total", "reason", "unknown_key_version"):                   1,
		series("caddy_dws_notify_backend_duration_seconds", "api", "addPaymentMethod"):                         2, // replays are no backend calls
		series("caddy_dws_notify_backend_responses_total", "api", "addPaymentMethod", "status", "502"):         1,
		series("caddy_dws_notify_signature_verifications_total", "key_version", "none", "result", "failed"):    1, // keyVersion 9
		series("caddy_dws_notify_signature_verifications_total", "key_version", "1", "result", "failed"):       1, // another key
		series("caddy_dws_notify_signature_verifications_total", "key_version", "1", "result", "verified"):     9, // the stale one too
		series("caddy_dws_notify_duplicates_total", "api", "addPaymentMethod", "kind", "conflict"):             1,
		series("caddy_dws_notify_backend_responses_total", "api", "removePaymentMethod", "status", "409"):      1,
		series("caddy_dws_notify_backend_slow_total", "api", "addPaymentMethod"):                               0,
		series(nt, "api", "unknown", "result_code", "PARAM_ILLEGAL", "outcome", "rejected"):                    1,
		series(nt, "api", "addPaymentMethod", "result_code", "PARAM_ILLEGAL", "outcome", "rejected"):           4, // GET, gzip, two field rules
		series(nt, "api", "addPaymentMethod", "result_code", "INVALID_SIGNATURE", "outcome", "rejected"):       4,
		series(nt, "api", "addPaymentMethod", "result_code", "ACCESS_DENIED", "outcome", "rejected"):           1,
		series(nt, "api", "addPaymentMethod", "result_code", "UNKNOWN_EXCEPTION", "outcome", "backend_failed"): 1,
		series("caddy_dws_notify_duplicates_total", "api", "addPaymentMethod", "kind", "replayed"):             1,
		series("caddy_dws_notify_refusals_total", "api", "unknown", "stage", "before_signature"):               1,
		series("caddy_dws_notify_refusals_total", "api", "addPaymentMethod", "stage", "field_rules"):           2,
	} {
		if got := after[s]; got != want {
			t.Errorf("%s = %v, want %v", s, got, want)
		}
	}
}
