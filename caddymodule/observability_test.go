package caddymodule

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dwsnotify/dws_notify/buildinfo"
	"github.com/dwsnotify/dws_notify/config"
	"github.com/dwsnotify/dws_notify/dwshttp"
	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/guard"
)

// isolatedMetrics gives h collectors of its own, registered in a fresh
// registry and pre-created for h, so a test sees exactly the series its
// own requests make (the process-wide collectors carry every other
// test's).
func isolatedMetrics(t *testing.T, h *Handler) *prometheus.Registry {
	t.Helper()
	m := newMetrics()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m.all()...)
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

// statusBackend answers every forward with code.
func statusBackend(code int) caddyhttp.Handler {
	return caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(code)
		return nil
	})
}

// withRequestID returns an add sample whose requestId member is replaced
// by raw (JSON text), or removed when raw is "".
func withRequestID(t *testing.T, raw string) []byte {
	t.Helper()
	body := addSample(t, "placeholder-id")
	old := []byte(`"requestId": "placeholder-id",`)
	if !bytes.Contains(body, old) {
		t.Fatalf("the add sample has no %s", old)
	}
	if raw == "" {
		return bytes.Replace(body, old, nil, 1)
	}
	return bytes.Replace(body, old, []byte(`"requestId": `+raw+`,`), 1)
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

// logOf returns the one "dws notification" entry logged since from.
func logOf(t *testing.T, logs *observer.ObservedLogs, from int) observer.LoggedEntry {
	t.Helper()
	var got []observer.LoggedEntry
	for _, e := range logs.All()[from:] {
		if e.Message == "dws notification" {
			got = append(got, e)
		}
	}
	if len(got) != 1 {
		t.Fatalf("%d notification log lines, want 1: %v", len(got), got)
	}
	return got[0]
}

// The notification log line: the requestId whenever the signature
// verified (read out of a body the field rules refused), the sender's
// address, where a refusal happened, replays as replays, and WARN for
// what someone must look at.
func TestNotificationLogFields(t *testing.T) {
	h := baseHandler(t)
	faulty := installFaultyStore(t, h.Storage)
	logs := provisioned(t, newContext(t), h)
	long := strings.Repeat("7", 100)

	type want struct {
		level      zapcore.Level
		outcome    string
		requestID  string
		refusedAt  string            // "" = absent
		unreadable string            // request_id_unavailable; "" = absent
		fields     map[string]any    // more fields that must be there
		absent     []string          // fields that must not be there
		before     func()            // run before the request
		after      func()            // run after it
		next       caddyhttp.Handler // nil: okBackend
	}
	badField := bytes.Replace(addSample(t, "lf-field"), []byte(`"expiryYear": "**"`), []byte(`"expiryYear": 2031`), 1)
	get := unitNotice(t, addPath, addSample(t, "lf-get"))
	get.method = http.MethodGet
	forged := unitNotice(t, addPath, addSample(t, "lf-forged"))
	forged.key = keys(t).merchant
	first := unitNotice(t, addPath, addSample(t, "lf-1"))
	rejected := unitNotice(t, removePath, removeSample(t, "lf-409"))
	cases := []struct {
		name string
		n    *notice
		want want
	}{
		{"forwarded", first, want{level: zapcore.InfoLevel, outcome: outcomeForwarded, requestID: "lf-1",
			fields: map[string]any{"backend_status": int64(204), "key_version": int64(1)}, absent: []string{"refused_at", "replayed_backend_status"}}},
		{"replayed", first, want{level: zapcore.InfoLevel, outcome: outcomeReplayed, requestID: "lf-1",
			fields: map[string]any{"replayed_backend_status": int64(204)}, absent: []string{"backend_status", "backend_duration"}}},
		{"business rejected", rejected, want{level: zapcore.WarnLevel, outcome: outcomeBusinessRejected, requestID: "lf-409",
			fields: map[string]any{"backend_status": int64(409)}, next: statusBackend(http.StatusConflict)}},
		{"replayed business rejection", rejected, want{level: zapcore.InfoLevel, outcome: outcomeReplayed, requestID: "lf-409",
			fields: map[string]any{"replayed_backend_status": int64(409)}, absent: []string{"backend_status"}}},
		{"conflict", unitNotice(t, addPath, bytes.Replace(addSample(t, "lf-1"), []byte("Tung"), []byte("Tong"), 1)),
			want{level: zapcore.WarnLevel, outcome: outcomeConflict, requestID: "lf-1", absent: []string{"refused_at"}}},
		{"backend failed", unitNotice(t, addPath, addSample(t, "lf-502")), want{level: zapcore.WarnLevel, outcome: outcomeBackendFailed,
			requestID: "lf-502", next: statusBackend(http.StatusBadGateway)}},
		{"store failed", unitNotice(t, addPath, addSample(t, "lf-store")), want{level: zapcore.WarnLevel, outcome: outcomeStoreFailed, requestID: "lf-store",
			before: func() { faulty.failClaim.Store(true) }, after: func() { faulty.failClaim.Store(false) }}},
		{"field rules", unitNotice(t, addPath, badField), want{level: zapcore.WarnLevel, outcome: outcomeRejected, requestID: "lf-field", refusedAt: stageFieldRules,
			fields: map[string]any{"reason": "paymentMethodDetail.card.expiryYear must be a JSON string", "key_version": int64(1)}}},
		{"field rules, requestId a number", unitNotice(t, addPath, withRequestID(t, "20990501")), want{level: zapcore.WarnLevel, outcome: outcomeRejected,
			requestID: "20990501", refusedAt: stageFieldRules, fields: map[string]any{"reason": "requestId must be a JSON string"}}},
		{"field rules, requestId too long", unitNotice(t, addPath, withRequestID(t, `"`+long+`"`)), want{level: zapcore.WarnLevel, outcome: outcomeRejected,
			requestID: long[:dwshttp.MaxSenderText] + "…", refusedAt: stageFieldRules}},
		{"field rules, no requestId", unitNotice(t, addPath, withRequestID(t, "")), want{level: zapcore.WarnLevel, outcome: outcomeRejected,
			refusedAt: stageFieldRules, unreadable: "requestId is absent"}},
		{"field rules, requestId an object", unitNotice(t, addPath, withRequestID(t, `{"id":"x"}`)), want{level: zapcore.WarnLevel, outcome: outcomeRejected,
			refusedAt: stageFieldRules, unreadable: "requestId is neither a JSON string nor a number"}},
		{"signature", forged, want{level: zapcore.InfoLevel, outcome: outcomeRejected, refusedAt: stageSignature,
			fields: map[string]any{"signature_failure": "verification_failed"}, absent: []string{"key_version", "request_id_unavailable"}}},
		{"before the signature", get, want{level: zapcore.InfoLevel, outcome: outcomeRejected, refusedAt: stageBeforeSignature,
			absent: []string{"key_version"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.want.before != nil {
				c.want.before()
			}
			from := logs.Len()
			next := c.want.next
			if next == nil {
				next = okBackend
			}
			serve(t, h, c.n, next)
			if c.want.after != nil {
				c.want.after()
			}
			e := logOf(t, logs, from)
			m := e.ContextMap()
			if e.Level != c.want.level {
				t.Errorf("level %s, want %s", e.Level, c.want.level)
			}
			if m["outcome"] != c.want.outcome || m["request_id"] != c.want.requestID {
				t.Errorf("outcome %v request_id %q, want %s %q", m["outcome"], m["request_id"], c.want.outcome, c.want.requestID)
			}
			// httptest's requests come from 192.0.2.1:1234.
			if m["remote_ip"] != "192.0.2.1" || m["remote_port"] != "1234" {
				t.Errorf("remote_ip %v remote_port %v, want 192.0.2.1 1234", m["remote_ip"], m["remote_port"])
			}
			check := map[string]any{}
			for k, v := range c.want.fields {
				check[k] = v
			}
			absent := c.want.absent
			if c.want.refusedAt != "" {
				check["refused_at"] = c.want.refusedAt
			} else {
				absent = append(absent, "refused_at")
			}
			if c.want.unreadable != "" {
				check["request_id_unavailable"] = c.want.unreadable
			} else {
				absent = append(absent, "request_id_unavailable")
			}
			for k, v := range check {
				if m[k] != v {
					t.Errorf("%s = %#v, want %#v", k, m[k], v)
				}
			}
			for _, k := range absent {
				if v, ok := m[k]; ok {
					t.Errorf("%s = %v, want no such field", k, v)
				}
			}
		})
	}
}

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

// healthStore is an in-memory Badger store whose Get fails while fail is
// set.
type healthStore struct {
	idempotency.Store
	fail atomic.Bool
}

func newHealthStore(t *testing.T) *healthStore {
	t.Helper()
	st, err := idempotency.OpenBadger(idempotency.BadgerOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return &healthStore{Store: st}
}

var errUnreachable = errors.New("dial tcp: connection refused")

func (s *healthStore) Get(ctx context.Context, key idempotency.Key) (idempotency.Record, bool, error) {
	if s.fail.Load() {
		return idempotency.Record{}, false, errUnreachable
	}
	return s.Store.Get(ctx, key)
}

// gaugeValue returns the store_up series of (kind, id) and whether it
// exists.
func gaugeValue(t *testing.T, kind, id string) (float64, bool) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(processMetrics().storeUp)
	v, ok := seriesSet(t, reg)[series("caddy_dws_notify_store_up", "kind", kind, "store", id)]
	return v, ok
}

func TestStoreUpGauge(t *testing.T) {
	const name = "health-test 127.0.0.1:1 prefix x:"
	kind, id := "test", storeID(name)
	a, b := newHealthStore(t), newHealthStore(t)
	spec := func(key string, st idempotency.Store) storeSpec {
		return storeSpec{key: key, name: name, kind: kind, open: func(context.Context) (idempotency.Store, error) { return st, nil },
			guard: guard.Options{ProbeEvery: 20 * time.Millisecond}}
	}
	want := func(what string, v float64) {
		t.Helper()
		waitUntil(t, what, func() bool { got, ok := gaugeValue(t, kind, id); return ok && got == v })
	}

	sa, err := acquire(spec(t.Name()+"-a", a))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := gaugeValue(t, kind, id); !ok || v != 1 {
		t.Fatalf("store_up after opening = %v (present %v), want 1", v, ok)
	}
	a.fail.Store(true)
	if _, _, err := sa.Get(context.Background(), keyOf("addPaymentMethod", "health")); !errors.Is(err, errUnreachable) {
		t.Fatalf("get: %v", err)
	}
	if v, _ := gaugeValue(t, kind, id); v != 0 {
		t.Errorf("store_up after a failed call = %v, want 0", v)
	}
	a.fail.Store(false)
	want("the probe to find the store up again without a request", 1)
	a.fail.Store(true)
	want("the probe to find the store down without a request", 0)
	a.fail.Store(false)
	want("store a up", 1)

	// A second pooled store with the same description: down if either is.
	if _, err := acquire(spec(t.Name()+"-b", b)); err != nil {
		t.Fatal(err)
	}
	b.fail.Store(true)
	want("store b down", 0)
	if err := releaseStore(t.Name() + "-b"); err != nil {
		t.Fatal(err)
	}
	want("the series to follow the remaining store", 1)
	if err := releaseStore(t.Name() + "-a"); err != nil {
		t.Fatal(err)
	}
	if v, ok := gaugeValue(t, kind, id); ok {
		t.Errorf("store_up = %v after the last store closed, want no series", v)
	}
	// A call that ends after the store left the pool brings nothing back.
	sa.publishHealth(true)
	if _, ok := gaugeValue(t, kind, id); ok {
		t.Error("a late call brought the series back")
	}
}

// The provision line: the build, the APIs and paths, each key's version and
// the SHA-256 of its DER SubjectPublicKeyInfo as openssl prints it, the
// store and the effective settings; no key material.
func TestProvisionLogLine(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	k := keys(t)
	h := baseHandler(t)
	three := 3
	h.DWSPublicKey = append(h.DWSPublicKey, config.Key{Key: "{file." + filepath.Join(k.dir, "dws_next_public.pem") + "}", KeyVersion: &three})
	h.MerchantPrivateKey = &config.Key{Key: "{file." + filepath.Join(k.dir, "merchant_private.pem") + "}", KeyVersion: &three}
	h.ForwardTimeout = config.Duration(3 * time.Second)
	logs := provisioned(t, newContext(t), h)
	h.logProvisioned()
	lines := logs.FilterMessage("dws_notify provisioned").All()
	if len(lines) != 1 {
		t.Fatalf("%d provision lines", len(lines))
	}
	e := lines[0]
	m := e.ContextMap()
	if e.Level != zapcore.InfoLevel || m["version"] != buildinfo.Plugin().Version || m["version"] == "" {
		t.Errorf("level %s version %v", e.Level, m["version"])
	}

	// The commands docs/operations.md gives.
	fingerprint := func(pemFile string, private bool) string {
		t.Helper()
		cmd := "openssl pkey -pubin -in \"$1\" -outform DER | sha256sum"
		if private {
			cmd = "openssl pkey -in \"$1\" -pubout -outform DER | sha256sum"
		}
		out, err := exec.Command("bash", "-c", "set -o pipefail; "+cmd, "bash", pemFile).Output()
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		sum, _, _ := strings.Cut(string(out), " ")
		if len(sum) != 64 {
			t.Fatalf("%s printed %q", cmd, out)
		}
		return sum
	}
	wantKeys := []keyPrint{
		{Version: 1, SHA256: fingerprint(filepath.Join(k.dir, "dws_public.pem"), false)},
		{Version: 3, SHA256: fingerprint(filepath.Join(k.dir, "dws_next_public.pem"), false)},
	}
	if got, _ := m["dws_public_keys"].([]keyPrint); !slices.Equal(got, wantKeys) {
		t.Errorf("dws_public_keys %v, want %v", m["dws_public_keys"], wantKeys)
	}
	wantMerchant := keyPrint{Version: 3, SHA256: fingerprint(filepath.Join(k.dir, "merchant_private.pem"), true)}
	if got, _ := m["merchant_key"].(*keyPrint); got == nil || *got != wantMerchant {
		t.Errorf("merchant_key %v, want %v", m["merchant_key"], wantMerchant)
	}
	wantPaths := []servedPath{{API: "addPaymentMethod", Path: addPath}, {API: "removePaymentMethod", Path: removePath}}
	if got, _ := m["apis"].([]servedPath); !slices.Equal(got, wantPaths) {
		t.Errorf("apis %v, want %v", m["apis"], wantPaths)
	}
	st, _ := m["store"].(storeInfo)
	if dir, _ := filepath.EvalSymlinks(h.Storage); st.Kind != "badger" || st.Description != dir || st.ID != storeID(dir) {
		t.Errorf("store %+v, want badger %s %s", st, dir, storeID(dir))
	}
	for k, v := range map[string]any{"forward_timeout": 3 * time.Second, "claim_lease": 11 * time.Second, "retention": config.DefaultRetention,
		"request_time_tolerance": "48h0m0s", "max_body_size": int64(config.DefaultMaxBodySize), "result_message_field": "resultMsg"} {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}

	// No key material: the line as Caddy would write it, in JSON.
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	buf, err := enc.EncodeEntry(e.Entry, e.Context)
	if err != nil {
		t.Fatal(err)
	}
	line := buf.String()
	for _, key := range []*struct{ der []byte }{{mustPKIX(t, &k.dws.PublicKey)}, {mustPKIX(t, &k.dwsNext.PublicKey)}, {mustPKIX(t, &k.merchant.PublicKey)}} {
		b64 := base64.StdEncoding.EncodeToString(key.der)
		for i := 0; i+24 <= len(b64); i += 24 {
			if strings.Contains(line, b64[i:i+24]) {
				t.Fatalf("the provision line carries key material: %s", line)
			}
		}
	}
	priv, err := os.ReadFile(filepath.Join(k.dir, "merchant_private.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(priv)
	if strings.Contains(line, base64.StdEncoding.EncodeToString(block.Bytes)[40:80]) {
		t.Fatalf("the provision line carries the private key: %s", line)
	}
}

func mustPKIX(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
