package caddymodule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/config"
	"github.com/dwsnotify/dws_notify/idempotency"
)

// The dedupe step: the first copy of a notification is forwarded, with
// exactly the headers and body the gateway vouches for, and its outcome
// recorded; duplicates replay, wait or are refused; backend and store
// failures answer U and release or retry.

// An upstream may answer any three-digit status (Go's client accepts 799):
// one outside the business-status table is a backend failure, answered U
// with the claim released, never a panic.
func TestBackendStatusOutsideTheUsualRange(t *testing.T) {
	for _, code := range []int{599, 600, 799, 999} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			h := baseHandler(t)
			logs := provisioned(t, newContext(t), h)
			odd := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				w.WriteHeader(code)
				return nil
			})
			n := unitNotice(t, addPath, addSample(t, fmt.Sprintf("odd-%d", code)))
			w, _ := serve(t, h, n, odd)
			if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"resultStatus":"U"`) {
				t.Fatalf("backend %d: answer HTTP %d %s, want 200 with U", code, w.Code, w.Body)
			}
			if got := logs.FilterField(zap.Int("backend_status", code)).Len(); got != 1 {
				t.Errorf("backend %d: %d log lines with backend_status %d, want 1", code, got, code)
			}
			// Released: DWS's resend goes through.
			n.time = ""
			if w, _ := serve(t, h, n, okBackend); !strings.Contains(w.Body.String(), `"resultStatus":"S"`) {
				t.Fatalf("resend after backend %d: %s, want S", code, w.Body)
			}
		})
	}
}

// A backend whose 2xx comes at forward_timeout's end (the next handler
// returns without an error just as the deadline passes) took the
// notification: it is acknowledged and recorded, so DWS's resend is
// replayed, not forwarded a second time, as a queued delivery's status
// settles its try at the deadline too.
func TestSuccessAtTheDeadlineIsAcknowledged(t *testing.T) {
	h := baseHandler(t)
	h.ForwardTimeout = config.Duration(100 * time.Millisecond)
	provisioned(t, newContext(t), h)
	var calls atomic.Int32
	late := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		calls.Add(1)
		w.WriteHeader(http.StatusOK)
		<-r.Context().Done() // answered, then still busy when the deadline passes
		return nil
	})
	n := unitNotice(t, addPath, addSample(t, "late-ok"))
	if w, _ := serve(t, h, n, late); !strings.Contains(w.Body.String(), `"resultStatus":"S"`) {
		t.Fatalf("backend answered 200 at the deadline: %s, want S", w.Body)
	}
	n.time = ""
	if w, _ := serve(t, h, n, late); !strings.Contains(w.Body.String(), `"resultStatus":"S"`) {
		t.Fatalf("resend: %s, want S", w.Body)
	}
	if c := calls.Load(); c != 1 {
		t.Fatalf("the backend got the notification %d times, want once", c)
	}
}

// The backend took the notification but the store failed to record it: DWS
// gets U, and the completion is retried in the background, so that once the
// store is back DWS's resend is replayed, not forwarded a second time.
func TestFailedCompletionIsRetried(t *testing.T) {
	b := newBackend(t)
	storage := t.TempDir()
	faulty := installFaultyStore(t, storage)
	g := startGateway(t, b, gatewayConfig{storage: storage})

	faulty.failComplete.Store(true)
	n := g.notice(addPath, addSample(t, "retry-1"))
	g.send(n).expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
	time.Sleep(300 * time.Millisecond) // a few failed retries
	faulty.failComplete.Store(false)

	st := storeFor(t, g)
	deadline := time.Now().Add(5 * time.Second)
	for {
		rec, found, err := st.Get(t.Context(), keyOf("addPaymentMethod", "retry-1"))
		if err == nil && found && rec.State == idempotency.StateDone {
			if rec.Answer.ResultCode != "SUCCESS" || rec.Answer.BackendStatus != http.StatusOK {
				t.Fatalf("retried completion stored %+v", rec.Answer)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("completion not stored 5s after the store came back: %+v found=%v err=%v", rec, found, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.time = ""
	g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")
	if got := len(b.hits()); got != 1 {
		t.Fatalf("backend got %d copies, want 1: the resend must be replayed", got)
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

// The backend gets exactly the gateway's X-Dws-* headers, the exact body
// with a Content-Length and no trailers, whatever Connection, Trailer, TE,
// Upgrade or look-alike headers the sender adds. Each trick goes through a
// real Caddy and reverse_proxy to a recording backend, once as a DWS
// notification and once as an Antom one (which gets no X-Dws-Request-Id:
// a sender's must not get through either); the backend's view of it must
// be the view of a plain notification of its family, header by header
// (only the headers that differ per notification aside).
//
// Caddy drops header names with "_" or "." unless the operator allows
// them; this gateway allows the X-Dws-* look-alikes, so that they reach
// dws_notify.
func TestBackendGetsExactlyTheGatewaysDwsHeaders(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{globals: "servers {\n\t\texpected_underscore_headers x_dws_* x_dws-* x-dws_*\n\t\texpected_dot_headers x.dws.* x.dws-*\n\t}",
		extra: "api notifyPayment " + paymentPath})
	tricks := []struct {
		name, extra string
		chunked     bool
		trailers    string
	}{
		{name: "plain (the reference view)"},
		{name: "Connection names the X-Dws-* headers", extra: "Connection: keep-alive, X-Dws-Verified, X-Dws-Request-Id, X-Dws-Api, X-Dws-Idempotency-Key\r\n"},
		{name: "Connection names every X-Dws-* header in lower case, on two lines", extra: "Connection: x-dws-verified, x-dws-request-id\r\nConnection: x-dws-api, x-dws-client-id, x-dws-key-version, x-dws-idempotency-key\r\n"},
		{name: "Proxy-Connection names them", extra: "Proxy-Connection: X-Dws-Verified, X-Dws-Api\r\n"},
		{name: "chunked with trailers shadowing X-Dws-*", chunked: true,
			extra:    "Trailer: X-Dws-Verified, X-Dws-Request-Id, X-Dws-Idempotency-Key\r\n",
			trailers: "X-Dws-Verified: false\r\nX-Dws-Request-Id: evil\r\nX-Dws-Idempotency-Key: evil\r\n"},
		{name: "chunked, trailers, Connection and TE combined", chunked: true,
			extra:    "Connection: keep-alive, X-Dws-Verified, X-Dws-Request-Id, X-Dws-Api, TE\r\nTE: trailers\r\nTrailer: X-Dws-Verified, X-Dws-Request-Id, X-Dws-Api\r\n",
			trailers: "X-Dws-Verified: false\r\nX-Dws-Request-Id: evil\r\nX-Dws-Api: evil\r\n"},
		{name: "TE: trailers", extra: "TE: trailers\r\n"},
		{name: "Upgrade: websocket", extra: "Connection: Upgrade\r\nUpgrade: websocket\r\n"},
		{name: "Upgrade: h2c", extra: "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"},
		{name: "Keep-Alive", extra: "Connection: Keep-Alive\r\nKeep-Alive: timeout=5, max=1000\r\n"},
		{name: "underscore, dot and case look-alikes", extra: "X_Dws_Verified: false\r\nx_dws_request_id: evil\r\nX-DWS-API: evil\r\nx-dws_client-id: evil\r\nX_dws-Key-Version: 9\r\nX.Dws.Verified: false\r\nx.dws-request-id: evil\r\nx_dws_idempotency_key: evil\r\nX.Dws-Idempotency.Key: evil\r\n"},
		{name: "forged X-Dws-* twice", extra: "X-Dws-Verified: false\r\nX-Dws-Verified: true\r\nX-Dws-Extra: 1\r\n"},
		{name: "forged X-Dws-Request-Id and X-Dws-Idempotency-Key", extra: "X-Dws-Request-Id: evil\r\nX-Dws-Idempotency-Key: evil\r\nX-Dws-Idempotency-Key: evil-2\r\n"},
		{name: "Expect: 100-continue", extra: "Expect: 100-continue\r\n"},
	}
	// Headers whose values differ from one notification to the next.
	perNotification := []string{"Request-Time", "Signature", "X-Dws-Request-Id", "X-Dws-Idempotency-Key", "Content-Length"}
	families := []struct {
		name, path string
		body       func(id string) []byte
		want       func(id string) map[string]string
		reference  http.Header
	}{
		{name: "DWS", path: addPath, body: func(id string) []byte { return addSample(t, id) },
			want: func(id string) map[string]string {
				return map[string]string{"X-Dws-Api": "addPaymentMethod", "X-Dws-Request-Id": id, "X-Dws-Idempotency-Key": id}
			}},
		{name: "Antom", path: paymentPath, body: func(id string) []byte { return payment(t, id, "PAYMENT_RESULT", "S") },
			want: func(id string) map[string]string {
				return map[string]string{"X-Dws-Api": "notifyPayment", "X-Dws-Idempotency-Key": id + ":PAYMENT_RESULT:S"}
			}},
	}
	sent := 0
	for i, tr := range tricks {
		for f := range families {
			fam := &families[f]
			id := fmt.Sprintf("hop-%02d-%s", i, fam.name)
			req, body := signedRawAt(t, g, fam.path, fam.body(id), tr.extra, tr.chunked, tr.trailers)
			a := rawExchange(t, req)
			a.expect(t, http.StatusOK, "S", "SUCCESS")
			sent++
			hits := b.hits()
			if len(hits) != sent {
				t.Fatalf("%s (%s): backend got %d requests in all, want %d", tr.name, fam.name, len(hits), sent)
			}
			checkBackendView(t, tr.name+" ("+fam.name+")", hits[sent-1], body, fam.want(id), perNotification, &fam.reference)
		}
	}
}

// checkBackendView checks one forwarded notification: the gateway's
// X-Dws-* headers exactly (want, with Client-Id, Key-Version and Verified
// added) and no other X-Dws-* or look-alike, the body sent with its
// Content-Length and no trailers, and every other header as in
// *reference (set from the first call), perNotification aside.
func checkBackendView(t *testing.T, name string, got received, body []byte, want map[string]string, perNotification []string, reference *http.Header) {
	t.Helper()
	want["X-Dws-Client-Id"] = testClientID
	want["X-Dws-Key-Version"] = "1"
	want["X-Dws-Verified"] = "true"
	for h, vals := range got.header {
		if isLookalike(h) {
			if w, ok := want[h]; !ok || len(vals) != 1 || vals[0] != w {
				t.Errorf("%s: backend header %s: %q, want %q", name, h, vals, w)
			}
		}
	}
	for h, w := range want {
		if vals := got.header.Values(h); len(vals) != 1 || vals[0] != w {
			t.Errorf("%s: backend header %s: %q, want exactly %q", name, h, vals, w)
		}
	}
	if got.bodyErr != nil || !bytes.Equal(got.body, body) {
		t.Errorf("%s: backend body differs from the bytes sent (read error %v)", name, got.bodyErr)
	}
	if got.length != int64(len(body)) || got.header.Get("Content-Length") != fmt.Sprint(len(body)) || len(got.chunked) != 0 {
		t.Errorf("%s: backend framing: Content-Length %d (%q), Transfer-Encoding %q; want Content-Length %d, not chunked",
			name, got.length, got.header.Get("Content-Length"), got.chunked, len(body))
	}
	if len(got.trailer) != 0 {
		t.Errorf("%s: backend got trailers %v", name, got.trailer)
	}
	view := got.header.Clone()
	for _, h := range perNotification {
		view.Del(h)
	}
	if *reference == nil {
		*reference = view
		return
	}
	for h := range mergedNames(*reference, view) {
		if r, v := reference.Values(h), view.Values(h); !slices.Equal(r, v) {
			t.Errorf("%s: backend header %s: %q, the plain notification's: %q", name, h, v, r)
		}
	}
}

// isLookalike reports whether a header name reads as X-Dws-* to a server
// that folds case and maps "_" and "." to "-".
func isLookalike(name string) bool {
	return strings.HasPrefix(strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(name)), "x-dws-")
}

func mergedNames(a, b http.Header) map[string]bool {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return m
}

// DWS's Signature header is not forwarded: the backend trusts
// X-Dws-Verified, and a forwarded signature would reach reverse_proxy's
// debug log ("upstream roundtrip" logs the request headers). With
// forward_signature the backend gets it unchanged, to verify it itself.
func TestSignatureIsForwardedOnlyWhenAskedFor(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("forward_signature %v", keep), func(t *testing.T) {
			b := newBackend(t)
			cfg := gatewayConfig{globals: "debug"}
			if keep {
				cfg.extra = "forward_signature"
			}
			g := startGateway(t, b, cfg)
			n := g.notice(addPath, addSample(t, fmt.Sprintf("fwd-sig-%v", keep)))
			req := n.request(t)
			g.do(req).expect(t, http.StatusOK, "S", "SUCCESS")
			hits := b.hits()
			if len(hits) != 1 {
				t.Fatalf("backend got %d requests, want 1", len(hits))
			}
			got := hits[0].header.Values("Signature")
			switch {
			case keep && (len(got) != 1 || got[0] != req.Header.Get("Signature")):
				t.Errorf("with forward_signature the backend got Signature %q, want DWS's", got)
			case !keep && len(got) != 0:
				t.Errorf("the backend got DWS's Signature %q", got)
			}
			if hits[0].header.Get("Client-Id") != testClientID || hits[0].header.Get("Request-Time") != n.time {
				t.Errorf("Client-Id / Request-Time not forwarded: %q / %q", hits[0].header.Get("Client-Id"), hits[0].header.Get("Request-Time"))
			}
		})
	}
}

func TestForwardedAndAcknowledged(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{})

	body := addSample(t, "")
	n := g.notice(addPath, body)
	n.mutate = func(h http.Header) {
		h.Set("X-Dws-Verified", "forged")
		h.Set("X-Dws-Request-Id", "forged")
		h.Set("X-Dws-Idempotency-Key", "forged")
		h.Set("X-Dws-Anything", "forged")
	}
	a := g.send(n)
	a.expect(t, http.StatusOK, "S", "SUCCESS")
	if string(a.raw) != `{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMsg":"success"}}` {
		t.Errorf("envelope bytes = %s", a.raw)
	}
	if got := a.header.Get("Client-Id"); got != testClientID {
		t.Errorf("Client-Id echo = %q", got)
	}
	if a.header.Get("Signature") != "" {
		t.Error("answer is signed although no merchant_private_key is configured")
	}
	if _, err := time.Parse("2006-01-02T15:04:05-07:00", a.header.Get("Response-Time")); err != nil {
		t.Errorf("Response-Time %q: %v", a.header.Get("Response-Time"), err)
	}

	hits := b.hits()
	if len(hits) != 1 {
		t.Fatalf("backend got %d requests, want 1", len(hits))
	}
	got := hits[0]
	if !bytes.Equal(got.body, body) {
		t.Errorf("backend body differs from the bytes DWS sent:\n%s\n%s", got.body, body)
	}
	if got.length != int64(len(body)) {
		t.Errorf("backend Content-Length = %d, want %d", got.length, len(body))
	}
	want := map[string]string{
		"X-Dws-Api":             "addPaymentMethod",
		"X-Dws-Client-Id":       testClientID,
		"X-Dws-Request-Id":      "20990501203220303032821078591",
		"X-Dws-Idempotency-Key": "20990501203220303032821078591",
		"X-Dws-Key-Version":     "1",
		"X-Dws-Verified":        "true",
	}
	for k, v := range want {
		if vals := got.header.Values(k); len(vals) != 1 || vals[0] != v {
			t.Errorf("backend header %s = %q, want %q", k, vals, v)
		}
	}
	if v := got.header.Get("X-Dws-Anything"); v != "" {
		t.Errorf("incoming X-Dws-Anything reached the backend: %q", v)
	}
	if got.path != addPath {
		t.Errorf("backend path = %q", got.path)
	}
}

func TestRemoveSampleAndDuplicateReplay(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{})

	n := g.notice(removePath, removeSample(t, ""))
	g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")
	// A DWS retry: re-signed with a fresh Request-Time, same body.
	n.time = ""
	g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")
	if got := len(b.hits()); got != 1 {
		t.Fatalf("backend got %d requests, want exactly 1 (the duplicate must be replayed)", got)
	}
}

func TestBusinessRejectIsAcknowledgedAndReplayed(t *testing.T) {
	for _, code := range []int{400, 409, 422} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			b := newBackend(t)
			g := startGateway(t, b, gatewayConfig{})
			b.status(code)
			n := g.notice(addPath, addSample(t, "biz-"+strconv.Itoa(code)))
			a := g.send(n)
			a.expect(t, http.StatusOK, "S", "SUCCESS")
			if a.header.Get("Content-Length") != strconv.Itoa(len(a.raw)) {
				t.Errorf("Content-Length %q does not describe the envelope (%d bytes)", a.header.Get("Content-Length"), len(a.raw))
			}
			b.status(http.StatusOK)
			n.time = ""
			g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")
			if got := len(b.hits()); got != 1 {
				t.Fatalf("backend got %d requests, want 1 (stored answer replayed)", got)
			}
			rec, found, err := storeFor(t, g).Get(t.Context(), keyOf("addPaymentMethod", "biz-"+strconv.Itoa(code)))
			if err != nil || !found {
				t.Fatalf("record: found=%v err=%v", found, err)
			}
			if rec.Answer.Outcome != "business_rejected" || rec.Answer.BackendStatus != code {
				t.Errorf("record answer = %+v, want business_rejected/%d", rec.Answer, code)
			}
		})
	}
}

func TestCustomBusinessRejectStatus(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{extra: "business_reject_status 418"})
	b.status(422) // no longer a business status: U
	g.send(g.notice(addPath, addSample(t, "c1"))).expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
	b.status(418)
	g.send(g.notice(addPath, addSample(t, "c2"))).expect(t, http.StatusOK, "S", "SUCCESS")
}

func TestBackendFailuresAnswerUAndRelease(t *testing.T) {
	t.Run("500", func(t *testing.T) {
		b := newBackend(t)
		g := startGateway(t, b, gatewayConfig{})
		b.status(http.StatusInternalServerError)
		n := g.notice(addPath, addSample(t, "fail-500"))
		g.send(n).expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
		// The claim was released: DWS's retry goes through once the backend recovers.
		b.status(http.StatusOK)
		n.time = ""
		g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")
		if got := len(b.hits()); got != 2 {
			t.Fatalf("backend got %d requests, want 2", got)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		b := newBackend(t)
		g := startGateway(t, b, gatewayConfig{})
		b.setRespond(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
			w.WriteHeader(http.StatusOK)
		})
		n := g.notice(addPath, addSample(t, "slow"))
		start := time.Now()
		g.send(n).expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
		if took := time.Since(start); took > 4*time.Second {
			t.Errorf("answer took %s; forward_timeout is 2s", took)
		}
		b.status(http.StatusOK)
		n.time = ""
		g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")
	})
	t.Run("unreachable", func(t *testing.T) {
		g := startGateway(t, nil, gatewayConfig{upstream: "127.0.0.1:1"})
		g.send(g.notice(addPath, addSample(t, "down"))).expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
	})
	t.Run("no handler", func(t *testing.T) {
		g := startGateway(t, nil, gatewayConfig{upstream: "none"})
		g.send(g.notice(addPath, addSample(t, "nobody"))).expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
	})
	// 300 is the first status past success: a backend failure like any
	// other, answered U with the claim released.
	t.Run("300", func(t *testing.T) {
		b := newBackend(t)
		g := startGateway(t, b, gatewayConfig{})
		b.status(http.StatusMultipleChoices)
		n := g.notice(addPath, addSample(t, "fail-300"))
		g.send(n).expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
		b.status(http.StatusOK)
		n.time = ""
		g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")
		if got := len(b.hits()); got != 2 {
			t.Fatalf("backend got %d requests, want 2: the claim was not released", got)
		}
	})
	t.Run("backend writes nothing but headers of a 302", func(t *testing.T) {
		b := newBackend(t)
		g := startGateway(t, b, gatewayConfig{})
		b.status(http.StatusFound)
		g.send(g.notice(addPath, addSample(t, "redirect"))).expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
	})
}

func TestRepeatRequestInconsistent(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{})
	g.send(g.notice(addPath, addSample(t, "same-id"))).expect(t, http.StatusOK, "S", "SUCCESS")
	changed := bytes.Replace(addSample(t, "same-id"), []byte(`"300005538591"`), []byte(`"300005538592"`), 1)
	a := g.send(g.notice(addPath, changed))
	a.expect(t, http.StatusOK, "F", "REPEAT_REQ_INCONSISTENT")
	// Same content with other spacing is not a conflict.
	respaced := bytes.ReplaceAll(addSample(t, "same-id"), []byte("\n"), []byte("\n  "))
	g.send(g.notice(addPath, respaced)).expect(t, http.StatusOK, "S", "SUCCESS")
	if got := len(b.hits()); got != 1 {
		t.Fatalf("backend got %d requests, want 1", got)
	}
}

func TestConcurrentDuplicatesForwardedOnce(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{})
	b.setRespond(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		w.WriteHeader(http.StatusOK)
	})
	n := g.notice(addPath, addSample(t, "dup"))
	const copies = 20
	var wg sync.WaitGroup
	answers := make([]answer, copies)
	reqs := make([]*http.Request, copies)
	for i := range reqs {
		n.time = ""
		reqs[i] = n.request(t)
	}
	for i := range copies {
		wg.Go(func() { answers[i] = g.do(reqs[i]) })
	}
	wg.Wait()
	for i, a := range answers {
		if a.result.ResultStatus != "S" {
			t.Errorf("copy %d answered %s/%s; with the first copy finishing in 300ms every duplicate should replay S", i, a.result.ResultStatus, a.result.ResultCode)
		}
	}
	if got := len(b.hits()); got != 1 {
		t.Fatalf("backend got %d requests, want exactly 1", got)
	}
}

func TestReloadKeepsDedupe(t *testing.T) {
	b := newBackend(t)
	storage := t.TempDir()
	g := startGateway(t, b, gatewayConfig{storage: storage})
	n := g.notice(addPath, addSample(t, "reload"))
	g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")

	// A second config on the same storage directory: Caddy provisions it
	// while the first still holds the database.
	g = startGateway(t, b, gatewayConfig{storage: storage, extra: "retention 200h"})
	n.time = ""
	g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")
	if got := len(b.hits()); got != 1 {
		t.Fatalf("backend got %d requests after reload, want 1 (dedupe state lost)", got)
	}
	if refs, ok := storePool.References(storage); !ok || refs != 1 {
		t.Errorf("store references after reload = %d (%v), want 1", refs, ok)
	}
}

func TestStoreFailureAnswersU(t *testing.T) {
	b := newBackend(t)
	storage := t.TempDir()
	faulty := installFaultyStore(t, storage)
	g := startGateway(t, b, gatewayConfig{storage: storage})

	faulty.failClaim.Store(true)
	g.send(g.notice(addPath, addSample(t, "st-1"))).expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
	if got := len(b.hits()); got != 0 {
		t.Fatalf("forwarded %d notifications without a claim", got)
	}
	faulty.failClaim.Store(false)
	faulty.failComplete.Store(true)
	n := g.notice(addPath, addSample(t, "st-2"))
	g.send(n).expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
	faulty.failComplete.Store(false)
	// The store is back: the gateway serves again.
	g.send(g.notice(addPath, addSample(t, "st-3"))).expect(t, http.StatusOK, "S", "SUCCESS")
	if got := len(b.hits()); got != 2 {
		t.Fatalf("backend got %d requests, want 2 (st-2, whose completion failed, and st-3)", got)
	}
}

// slowBodyAfterStatus answers 200 at once, then sends its body only
// after the gateway's forward_timeout (2s) has run out, so reverse_proxy
// aborts the copy after it wrote the status.
func slowBodyAfterStatus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	select {
	case <-time.After(2500 * time.Millisecond):
	case <-r.Context().Done():
	}
	_, _ = io.WriteString(w, "ok")
}

// The backend answered 200 before the deadline and its body came after
// it: the status settles the forward (S, recorded), so DWS's resend is a
// replay and the backend has the notification once. Before, reverse_proxy's
// abort of the body copy made it U, and the resend was forwarded again.
func TestStatusBeforeDeadlineSettlesDespiteSlowBody(t *testing.T) {
	b := newBackend(t)
	b.setRespond(slowBodyAfterStatus)
	g := startGateway(t, b, gatewayConfig{})
	body := addSample(t, "slow-body-1")
	g.send(g.notice(addPath, body)).expect(t, http.StatusOK, "S", "SUCCESS")
	b.setRespond(nil)
	g.send(g.notice(addPath, body)).expect(t, http.StatusOK, "S", "SUCCESS")
	if n := len(b.hits()); n != 1 {
		t.Errorf("the backend got the notification %d times, want once", n)
	}
}

// chainedSite is a site where a second dws_notify gets what the first
// forwards: inside an intercept's handle_response, whose routes the
// route-order check does not read (Caddy runs them with the request the
// first forwarded, once the backend answered 2xx). %[5]s is the log
// file, %[6]s the first handler's acknowledge setting, %[7]s the backend.
const chainedSite = `{
	admin localhost:2999
	http_port 9080
	https_port 9443
	grace_period 1ns
	skip_install_trust
	log {
		output file %[5]s
		format json
		level INFO
	}
}
http://localhost:9080 {
	route {
		dws_notify {
			client_id %[1]s
			dws_public_key {file.%[2]s}
			api addPaymentMethod /dws/notify/addPaymentMethod
			storage %[3]s
			forward_timeout 2s
			%[6]s
		}
		intercept {
			@ok status 2xx
			handle_response @ok {
				dws_notify {
					client_id %[1]s
					dws_public_key {file.%[2]s}
					api addPaymentMethod /dws/notify/addPaymentMethod
					storage %[3]s
				}
			}
		}
		reverse_proxy %[7]s
	}
}
`

// chainedErrors returns the ERROR lines of the log that name two
// dws_notify handlers in one chain.
func chainedErrors(t *testing.T, logFile string) []map[string]any {
	t.Helper()
	raw, _ := os.ReadFile(logFile)
	var found []map[string]any
	for _, line := range bytes.Split(raw, []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) == nil && m["level"] == "error" && strings.Contains(fmt.Sprint(m["msg"]), "two dws_notify handlers in one chain") {
			found = append(found, m)
		}
	}
	return found
}

// A dws_notify that gets what another forwards answers 500, never a DWS
// envelope, and logs one ERROR naming both; the first counts the try as
// a backend failure and answers U, so DWS resends. Before, the second
// answered F INVALID_SIGNATURE (the first strips Signature) with HTTP
// 200, and the first took that for the backend's 200 and answered S: with
// reverse_proxy after both (the reviewer's config) nothing reached the
// backend and the notification was acknowledged.
func TestForwardIntoAnotherNotifyFails(t *testing.T) {
	b := newBackend(t)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	g := routeGateway(t, t.TempDir(), chainedSite, logFile, "", b.addr())
	g.send(g.notice(addPath, addSample(t, "chained-1"))).expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
	var errs []map[string]any
	waitUntil(t, "the ERROR line", func() bool { errs = chainedErrors(t, logFile); return len(errs) > 0 })
	if len(errs) != 1 {
		t.Fatalf("%d ERROR lines for one notification, want 1: %v", len(errs), errs)
	}
	for _, f := range []string{"handler", "forwarded_by"} {
		if s, _ := errs[0][f].(string); !strings.Contains(s, testClientID) {
			t.Errorf("the ERROR line's %s is %q, want the handler's description", f, s)
		}
	}
	raw, _ := os.ReadFile(logFile)
	if !bytes.Contains(raw, []byte(`"outcome":"backend_failed"`)) || !bytes.Contains(raw, []byte("went to another dws_notify handler")) {
		t.Errorf("the first handler logged no backend failure naming the other dws_notify:\n%s", raw)
	}
	// Its claim was released: the resend is forwarded again, not replayed.
	g.send(g.notice(addPath, addSample(t, "chained-1"))).expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
	if n := len(b.hits()); n != 2 {
		t.Errorf("the backend got %d requests, want the two tries", n)
	}
}
