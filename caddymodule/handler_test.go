package caddymodule

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dwsnotify/dws_notify/config"
)

// newContext returns a Caddy context (with its own metrics registry, as
// every config load has) that is cancelled when the test ends.
func newContext(t *testing.T) caddy.Context {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}

// baseHandler is a complete configuration with literal keys and a fresh
// storage directory.
func baseHandler(t *testing.T) *Handler {
	k := keys(t)
	return &Handler{
		Handler: config.Handler{
			ClientID:     []string{testClientID},
			DWSPublicKey: []config.Key{{Key: bareBase64(t, &k.dws.PublicKey)}},
			API:          []config.API{{Name: "addPaymentMethod", Path: addPath}, {Name: "removePaymentMethod", Path: removePath}},
			Storage:      t.TempDir(),
		},
	}
}

// provisioned provisions h in ctx, checks Validate, and cleans it up when
// the test ends. Its log goes to the returned observer.
func provisioned(t *testing.T, ctx caddy.Context, h *Handler) *observer.ObservedLogs {
	t.Helper()
	if err := h.Provision(ctx); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	t.Cleanup(func() { _ = h.Cleanup() })
	if err := h.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	core, logs := observer.New(zap.DebugLevel)
	h.logger = zap.New(core)
	return logs
}

// serve runs one signed notification through h with next as the backend.
func serve(t *testing.T, h *Handler, n *notice, next caddyhttp.Handler) (*httptest.ResponseRecorder, *caddy.Replacer) {
	t.Helper()
	req := n.request(t)
	r := httptest.NewRequest(req.Method, n.uri(), bytes.NewReader(n.body))
	r.Header = req.Header
	repl := caddy.NewReplacer()
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, r, next); err != nil {
		t.Fatalf("ServeHTTP returned %v; the handler writes its own answers", err)
	}
	return w, repl
}

func unitNotice(t *testing.T, path string, body []byte) *notice {
	return &notice{path: path, body: body, clientID: testClientID, key: keys(t).dws, keyVersion: 1, method: http.MethodPost}
}

var okBackend = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
})

func TestProvisionResolvesSecretPlaceholders(t *testing.T) {
	k := keys(t)
	t.Setenv("DWS_TEST_PUBLIC_KEY", bareBase64(t, &k.dws.PublicKey))
	h := baseHandler(t)
	h.DWSPublicKey = []config.Key{{Key: "{env.DWS_TEST_PUBLIC_KEY}"}}
	h.MerchantPrivateKey = &config.Key{Key: "{file." + filepath.Join(k.dir, "merchant_private.pem") + "}"}
	provisioned(t, newContext(t), h)
	w, _ := serve(t, h, unitNotice(t, addPath, addSample(t, "env")), okBackend)
	if !strings.Contains(w.Body.String(), `"resultStatus":"S"`) || w.Header().Get("Signature") == "" {
		t.Fatalf("answer %d %s, Signature %q", w.Code, w.Body, w.Header().Get("Signature"))
	}
}

func TestProvisionErrors(t *testing.T) {
	k := keys(t)
	cases := []struct {
		name   string
		mutate func(h *Handler)
		want   string
	}{
		{"no client", func(h *Handler) { h.ClientID = nil }, "client_id is required"},
		{"empty client", func(h *Handler) { h.ClientID = []string{""} }, "client_id must not be empty"},
		{"no key", func(h *Handler) { h.DWSPublicKey = nil }, "dws_public_key is required"},
		{"no api", func(h *Handler) { h.API = nil }, "at least one api is required"},
		{"unknown api", func(h *Handler) { h.API = []config.API{{Name: "notifyPayment"}} }, `unknown api "notifyPayment"`},
		{"api without path", func(h *Handler) { h.API[1].Path = "" }, "needs a path when more than one api is configured"},
		{"retention below tolerance", func(h *Handler) { h.Retention = config.Duration(24 * time.Hour) },
			"retention 24h0m0s is shorter than twice request_time_tolerance 48h0m0s"},
		{"retention equal to the tolerance", func(h *Handler) { h.Retention = config.Duration(48 * time.Hour) },
			"retention 48h0m0s is shorter than twice request_time_tolerance 48h0m0s"},
		{"retention just below twice the tolerance", func(h *Handler) {
			h.RequestTimeTolerance = "10s"
			h.Retention = config.Duration(20*time.Second - time.Millisecond)
		}, "make retention at least 20s"},
		{"retention below the lease", func(h *Handler) { h.RequestTimeTolerance = "off"; h.Retention = config.Duration(3 * time.Second) },
			"retention 3s is shorter than the claim lease 25s"},
		{"tolerance garbage", func(h *Handler) { h.RequestTimeTolerance = "soon" }, "request_time_tolerance"},
		{"body size", func(h *Handler) { h.MaxBodySize = 1 << 30 }, "max_body_size must be between"},
		{"negative forward timeout", func(h *Handler) { h.ForwardTimeout = config.Duration(-time.Second) }, "forward_timeout must be positive"},
		{"negative body timeout", func(h *Handler) { h.BodyTimeout = config.Duration(-time.Second) }, "body_timeout must be positive"},
		{"business status", func(h *Handler) { h.BusinessRejectStatus = []int{302} }, "302 is not an HTTP error status"},
		{"message field", func(h *Handler) { h.ResultMessageField = "msg" }, "result_message_field must be"},
		{"unset env", func(h *Handler) { h.DWSPublicKey[0].Key = "{env.DWS_TEST_UNSET_VARIABLE}" }, "dws_public_key #1: placeholder {env.DWS_TEST_UNSET_VARIABLE} resolves to nothing"},
		{"missing file", func(h *Handler) { h.DWSPublicKey[0].Key = "{file./nonexistent/dws.pem}" }, "dws_public_key #1: placeholder {file./nonexistent/dws.pem} resolves to nothing"},
		{"garbage key", func(h *Handler) { h.DWSPublicKey[0].Key = "bm90IGEga2V5" }, "dws_public_key #1: "},
		{"private key as public", func(h *Handler) {
			h.DWSPublicKey[0].Key = "{file." + filepath.Join(k.dir, "merchant_private.pem") + "}"
		}, "dws_public_key #1: "},
		{"public key as private", func(h *Handler) { h.MerchantPrivateKey = &config.Key{Key: bareBase64(t, &k.dws.PublicKey)} }, "merchant_private_key: "},
		{"storage is a file", func(h *Handler) {
			f := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(f, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			h.Storage = f
		}, "storage"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := baseHandler(t)
			tc.mutate(h)
			err := h.Provision(newContext(t))
			defer func() { _ = h.Cleanup() }()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Provision error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestStorePoolSharesOneDatabasePerDirectory(t *testing.T) {
	dir := t.TempDir()
	canonical, _ := filepath.EvalSymlinks(dir)
	a, b := baseHandler(t), baseHandler(t)
	a.Storage = dir
	b.Storage = dir + "/." // another spelling of the same directory
	if err := a.Provision(newContext(t)); err != nil {
		t.Fatal(err)
	}
	if err := b.Provision(newContext(t)); err != nil {
		t.Fatal(err)
	}
	if refs, _ := storePool.References(canonical); refs != 2 {
		t.Fatalf("references = %d, want 2 (one open database shared by both)", refs)
	}
	if a.store != b.store {
		t.Fatal("two handlers on one directory got different stores")
	}
	if err := a.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := a.Cleanup(); err != nil { // a second Cleanup must not release b's reference
		t.Fatal(err)
	}
	if refs, _ := storePool.References(canonical); refs != 1 {
		t.Fatalf("references after one cleanup = %d, want 1", refs)
	}
	if _, _, err := b.store.Get(context.Background(), keyOf("addPaymentMethod", "x")); err != nil {
		t.Fatalf("store closed while still referenced: %v", err)
	}
	if err := b.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, ok := storePool.References(canonical); ok {
		t.Fatal("database still pooled after the last handler was cleaned up")
	}
	if _, _, err := b.store.Get(context.Background(), keyOf("addPaymentMethod", "x")); err == nil {
		t.Fatal("database still open after the last reference was released")
	}
}

// Caddy cleans up the old config without waiting for its requests: one in
// flight when the database closes must answer U, never S and never panic.
func TestRequestInFlightWhenStoreCloses(t *testing.T) {
	h := baseHandler(t)
	if err := h.Provision(newContext(t)); err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	slow := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		close(entered)
		<-release
		w.WriteHeader(http.StatusOK)
		return nil
	})
	done := make(chan *httptest.ResponseRecorder)
	go func() {
		w, _ := serve(t, h, unitNotice(t, addPath, addSample(t, "closing")), slow)
		done <- w
	}()
	<-entered
	if err := h.Cleanup(); err != nil { // last reference: the database closes
		t.Fatal(err)
	}
	close(release)
	w := <-done
	if !strings.Contains(w.Body.String(), `"resultStatus":"U"`) {
		t.Fatalf("answer after the store closed = %s, want U", w.Body)
	}
	// New requests on the cleaned-up handler answer U too.
	w, _ = serve(t, h, unitNotice(t, addPath, addSample(t, "after")), okBackend)
	if !strings.Contains(w.Body.String(), `"resultStatus":"U"`) {
		t.Fatalf("answer on a closed store = %s, want U", w.Body)
	}
}

func TestPlaceholders(t *testing.T) {
	h := baseHandler(t)
	provisioned(t, newContext(t), h)
	var seenByBackend string
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		seenByBackend = repl.ReplaceAll("{http.dws_notify.api}/{http.dws_notify.request_id}", "-")
		w.WriteHeader(http.StatusOK)
		return nil
	})
	_, repl := serve(t, h, unitNotice(t, addPath, addSample(t, "ph-1")), next)
	if seenByBackend != "addPaymentMethod/ph-1" {
		t.Errorf("placeholders seen by the next handler = %q", seenByBackend)
	}
	if got := repl.ReplaceAll("{http.dws_notify.api} {http.dws_notify.request_id} {http.dws_notify.result_code}", "-"); got != "addPaymentMethod ph-1 SUCCESS" {
		t.Errorf("placeholders after the answer = %q", got)
	}
	bad := unitNotice(t, addPath, addSample(t, "ph-2"))
	bad.keyVersion = 5
	_, repl = serve(t, h, bad, next)
	if got := repl.ReplaceAll("{http.dws_notify.result_code}", "-"); got != "INVALID_SIGNATURE" {
		t.Errorf("result_code placeholder = %q", got)
	}
}

// The log line carries identifiers and outcomes, never card data, bodies,
// keys or signature values — on success, on rejection and on failure.
func TestLogLineHasNoCardDataBodyOrSignature(t *testing.T) {
	h := baseHandler(t)
	logs := provisioned(t, newContext(t), h)
	body := addSample(t, "log-1")
	notices := []*notice{unitNotice(t, addPath, body)}
	tampered := unitNotice(t, addPath, body)
	tampered.mutate = func(hd http.Header) { hd.Set("Signature", strings.Replace(hd.Get("Signature"), "%2B", "%2F", 1)) }
	notices = append(notices, tampered)
	badField := unitNotice(t, addPath, bytes.Replace(body, []byte(`"expiryYear": "**"`), []byte(`"expiryYear": 2031`), 1))
	notices = append(notices, badField)
	failing := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusBadGateway)
		return nil
	})
	var signatures []string
	for i, n := range notices {
		next := okBackend
		if i == 2 {
			next = failing
		}
		req := n.request(t)
		signatures = append(signatures, req.Header.Get("Signature"))
		serve(t, h, n, next)
	}
	serve(t, h, unitNotice(t, addPath, addSample(t, "log-2")), failing)

	entries := logs.All()
	if len(entries) != 4 {
		t.Fatalf("got %d log entries, want one per notification (4)", len(entries))
	}
	secrets := []string{
		"ALIPAYpwBScbbHru3DE3CY5gvUVo4rNiaOibl1UmIR", // cardToken
		"523945******1949",                           // mask
		"3caa419cf22c6567047c15d82e3ad644",           // hashCode
		"Tung", "isFirstBoundAssetForPayOrTopUp", "MASTERCARD", "2031",
		string(body[:40]),
	}
	for _, sig := range signatures {
		secrets = append(secrets, sig, sig[strings.Index(sig, "signature=")+10:][:40])
	}
	for _, e := range entries {
		line := e.Message
		for k, v := range e.ContextMap() {
			line += " " + k + "=" + fmt.Sprint(v)
		}
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("log line leaks %q: %s", s, line)
			}
		}
		if !strings.Contains(line, "request_id=") || !strings.Contains(line, "result_code=") {
			t.Errorf("log line lacks identifiers: %s", line)
		}
	}
	if got := entries[2].ContextMap()["reason"]; got != "paymentMethodDetail.card.expiryYear must be a JSON string" {
		t.Errorf("PARAM_ILLEGAL reason = %v", got)
	}
}

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

func TestLeaseOutlastsForward(t *testing.T) {
	for _, f := range []time.Duration{time.Second, 10 * time.Second, time.Minute} {
		if l := config.LeaseFor(f); l <= f {
			t.Errorf("lease %s does not outlast forward_timeout %s", l, f)
		}
	}
	if l := config.LeaseFor(config.DefaultForwardTimeout); l >= 2*time.Minute {
		t.Errorf("default lease %s would block DWS's first retry (2 min)", l)
	}
}
