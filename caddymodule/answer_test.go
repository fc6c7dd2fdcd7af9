package caddymodule

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dwsnotify/dws_notify/config"
	"github.com/dwsnotify/dws_notify/dwshttp"
	"github.com/dwsnotify/dws_notify/dwsmetrics"
	"github.com/dwsnotify/dws_notify/signature"
)

// The answer: the envelope, its headers and signature, the connection's
// fate, and the one log line per notification (with no card data, body,
// key or signature value).

// Every answer to a configured Client-Id echoes it, the early refusals
// (404, 405, Encrypt, Content-Encoding, a missing Signature) included; they
// are not signed, since their request never passed verification. An
// unknown Client-Id is echoed but never signed.
func TestEarlyRefusalsAreEchoedButNotSigned(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{sign: true})
	ring := signature.NewKeyRing()
	if err := ring.Add(testClientID, 2, &g.keys.merchant.PublicKey); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		edit   func(n *notice)
		status int
		code   string
	}{
		{"404", func(n *notice) { n.path = "/dws/notify/unknownApi" }, http.StatusNotFound, "PARAM_ILLEGAL"},
		{"405", func(n *notice) { n.method = http.MethodPut }, http.StatusMethodNotAllowed, "PARAM_ILLEGAL"},
		{"Encrypt", func(n *notice) { n.mutate = func(h http.Header) { h.Set("Encrypt", "algorithm=RSA_AES") } }, http.StatusOK, "PARAM_ILLEGAL"},
		{"Content-Encoding", func(n *notice) { n.mutate = func(h http.Header) { h.Set("Content-Encoding", "gzip") } }, http.StatusOK, "PARAM_ILLEGAL"},
		{"Signature missing", func(n *notice) { n.mutate = func(h http.Header) { h.Del("Signature") } }, http.StatusOK, "INVALID_SIGNATURE"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := g.notice(addPath, addSample(t, "early-"+c.name))
			c.edit(n)
			a := g.send(n)
			a.expect(t, c.status, "F", c.code)
			if got := a.header.Get("Client-Id"); got != testClientID {
				t.Errorf("Client-Id echoed = %q, want %q", got, testClientID)
			}
			if sig := a.header.Get("Signature"); sig != "" {
				t.Errorf("answer to an unverified request is signed: %q", sig)
			}
		})
	}
	t.Run("verified, refused by the field rules: signed", func(t *testing.T) {
		n := g.notice(addPath, bytes.Replace(addSample(t, "early-fields"), []byte(`"expiryYear": "**"`), []byte(`"expiryYear": 2031`), 1))
		a := g.send(n)
		a.expect(t, http.StatusOK, "F", "PARAM_ILLEGAL")
		v, err := ring.Verify(testClientID, n.uri(), a.header.Get("Response-Time"), a.raw, a.header.Get("Signature"))
		if err != nil || v != 2 {
			t.Errorf("answer signature: version %d, %v (Signature %q)", v, err, a.header.Get("Signature"))
		}
	})
	t.Run("unknown Client-Id", func(t *testing.T) {
		n := g.notice(addPath, addSample(t, "early-unknown"))
		n.clientID = "9999000000000000"
		a := g.send(n)
		a.expect(t, http.StatusOK, "F", "ACCESS_DENIED")
		if got := a.header.Get("Client-Id"); got != n.clientID {
			t.Errorf("Client-Id echoed = %q, want %q", got, n.clientID)
		}
		if sig := a.header.Get("Signature"); sig != "" {
			t.Errorf("answer to an unknown Client-Id is signed: %q", sig)
		}
	})
	if hits := b.hits(); len(hits) != 0 {
		t.Fatalf("backend got %d requests, want none", len(hits))
	}
}

// A client that sends `Expect: 100-continue` waits for the 100 before it
// sends the body. An answer given without reading the body (404, 405,
// ACCESS_DENIED, a missing header, 413 from Content-Length) must reach it at
// once, with Connection: close, not only after Caddy's read timeout (one
// minute) while the server waits for a body that never comes.
func TestAnswerWithoutReadingTheBodyClosesTheConnection(t *testing.T) {
	b := newBackend(t)
	startGateway(t, b, gatewayConfig{extra: "max_body_size 1KiB"})
	cases := []struct {
		name, target, headers string
		status                int
	}{
		{"404", "/nope", "Client-Id: " + testClientID + "\r\n", http.StatusNotFound},
		{"405", addPath, "", http.StatusMethodNotAllowed},
		{"ACCESS_DENIED", addPath, "Client-Id: 1\r\n", http.StatusOK},
		{"Request-Time missing", addPath, "Client-Id: " + testClientID + "\r\n", http.StatusOK},
		{"413 from Content-Length", addPath, "Client-Id: " + testClientID + "\r\nRequest-Time: " + fmt.Sprint(time.Now().UnixMilli()) + "\r\nSignature: algorithm=RSA256,keyVersion=1,signature=AAAA\r\n", http.StatusRequestEntityTooLarge},
		// A malformed Signature is refused before the body size is looked at.
		{"Signature malformed", addPath, "Client-Id: " + testClientID + "\r\nRequest-Time: " + fmt.Sprint(time.Now().UnixMilli()) + "\r\nSignature: signature=x\r\n", http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method := http.MethodPost
			if c.status == http.StatusMethodNotAllowed {
				method = http.MethodPut
			}
			conn, err := net.Dial("tcp", "localhost:9080")
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			_ = conn.SetDeadline(start.Add(10 * time.Second))
			fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: localhost:9080\r\nContent-Type: application/json\r\n%sContent-Length: 4000\r\nExpect: 100-continue\r\n\r\n", method, c.target, c.headers)
			br := bufio.NewReader(conn)
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer after %s: %v", time.Since(start), err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("answer took %s", took)
			}
			if res.StatusCode != c.status {
				t.Errorf("HTTP %d, want %d", res.StatusCode, c.status)
			}
			// The client is told to close: it must not send the body.
			if !res.Close {
				t.Errorf("answer does not close the connection (Connection: %q)", res.Header.Get("Connection"))
			}
		})
	}
	t.Run("body read: connection kept", func(t *testing.T) {
		g := &gateway{t: t, keys: keys(t)}
		n := g.notice(addPath, addSample(t, "keepalive"))
		req := n.request(t)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.Close {
			t.Errorf("a notification whose body was read closes the connection")
		}
	})
	if hits := b.hits(); len(hits) != 1 {
		t.Fatalf("backend got %d requests, want 1 (the keep-alive control)", len(hits))
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

// Text the sender controls reaches the log and the answer cut short: a
// Content-Encoding of 16 KiB (its first 64 bytes, quoted), an unknown
// Client-Id of 16 KiB.
func TestSenderTextIsBoundedInLogsAndAnswers(t *testing.T) {
	h := baseHandler(t)
	logs := provisioned(t, newContext(t), h)
	long := strings.Repeat("x", 16<<10)

	n := unitNotice(t, addPath, addSample(t, "bound-1"))
	n.mutate = func(hd http.Header) { hd.Set("Content-Encoding", "gz"+long) }
	w, _ := serve(t, h, n, okBackend)
	if !strings.Contains(w.Body.String(), "PARAM_ILLEGAL") || w.Body.Len() > 300 {
		t.Errorf("answer to a 16 KiB Content-Encoding: %d bytes: %.300s", w.Body.Len(), w.Body.String())
	}

	n = unitNotice(t, addPath, addSample(t, "bound-2"))
	n.clientID = "9" + long
	w, _ = serve(t, h, n, okBackend)
	if !strings.Contains(w.Body.String(), "ACCESS_DENIED") {
		t.Errorf("answer to an unknown 16 KiB Client-Id: %.300s", w.Body.String())
	}
	if echo := w.Header().Get("Client-Id"); len(echo) > 64+len("…") {
		t.Errorf("echoed Client-Id is %d bytes", len(echo))
	}

	entries := logs.All()
	if len(entries) != 2 {
		t.Fatalf("got %d log entries, want 2", len(entries))
	}
	for _, e := range entries {
		for k, v := range e.ContextMap() {
			if s, ok := v.(string); ok && len(s) > 160 {
				t.Errorf("log field %s is %d bytes: %.120q", k, len(s), s)
			}
		}
	}
	if got := entries[0].ContextMap()["reason"]; got != `Content-Encoding "gz`+long[:62]+`…" is not supported` {
		t.Errorf("reason = %.120q", got)
	}
	if got := entries[1].ContextMap()["client_id"]; got != "9"+long[:63]+"…" {
		t.Errorf("client_id = %.120q", got)
	}
}

// A request that has not passed signature verification never costs an RSA
// signing: with merchant_private_key set, none of the refusals before
// verification (each with its own query string, which would defeat the
// signer's per-second cache) is signed, and the signer counts no signing
// for them. Only the answer to a verified notification is signed.
func TestUnverifiedRequestsCostNoSigning(t *testing.T) {
	h := baseHandler(t)
	h.MaxBodySize = 1 << 10
	k := keys(t)
	der, err := x509.MarshalPKCS8PrivateKey(k.merchant)
	if err != nil {
		t.Fatal(err)
	}
	h.MerchantPrivateKey = &config.Key{Key: base64Std(der)}
	provisioned(t, newContext(t), h)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		edit func(n *notice)
		code string
	}{
		{"404", func(n *notice) { n.path = "/dws/notify/other" }, "PARAM_ILLEGAL"},
		{"405", func(n *notice) { n.method = http.MethodPut }, "PARAM_ILLEGAL"},
		{"Encrypt", func(n *notice) { n.mutate = func(hd http.Header) { hd.Set("Encrypt", "x") } }, "PARAM_ILLEGAL"},
		{"Content-Encoding", func(n *notice) { n.mutate = func(hd http.Header) { hd.Set("Content-Encoding", "gzip") } }, "PARAM_ILLEGAL"},
		{"unknown Client-Id", func(n *notice) { n.clientID = "9999000000000000" }, "ACCESS_DENIED"},
		{"no Request-Time", func(n *notice) { n.mutate = func(hd http.Header) { hd.Del("Request-Time") } }, "INVALID_SIGNATURE"},
		{"no Signature", func(n *notice) { n.mutate = func(hd http.Header) { hd.Del("Signature") } }, "INVALID_SIGNATURE"},
		{"signed with another key", func(n *notice) { n.key = other }, "INVALID_SIGNATURE"},
		{"stale Request-Time", func(n *notice) { n.time = fmt.Sprint(time.Now().Add(-72 * time.Hour).UnixMilli()) }, "INVALID_SIGNATURE"},
		{"body over max_body_size", func(n *notice) { n.body = append(n.body, bytes.Repeat([]byte(" "), 2<<10)...) }, "PARAM_ILLEGAL"},
	}
	for i, c := range cases {
		for q := range 3 {
			n := unitNotice(t, addPath, addSample(t, "unverified"))
			c.edit(n)
			n.query = fmt.Sprintf("case=%d&q=%d", i, q)
			w, _ := serve(t, h, n, okBackend)
			if !strings.Contains(w.Body.String(), `"`+c.code+`"`) {
				t.Errorf("%s: answer %s, want %s", c.name, w.Body.String(), c.code)
			}
			if sig := w.Header().Get("Signature"); sig != "" {
				t.Errorf("%s: the answer is signed: %.60q", c.name, sig)
			}
		}
	}
	if got := h.signer.Signings(); got != 0 {
		t.Fatalf("%d RSA signings for %d unverified requests, want 0", got, 3*len(cases))
	}

	n := unitNotice(t, addPath, addSample(t, "verified"))
	w, _ := serve(t, h, n, okBackend)
	if !strings.Contains(w.Body.String(), `"SUCCESS"`) || w.Header().Get("Signature") == "" {
		t.Fatalf("verified notification: %s, Signature %q", w.Body.String(), w.Header().Get("Signature"))
	}
	if got := h.signer.Signings(); got != 1 {
		t.Fatalf("%d RSA signings after one verified notification, want 1", got)
	}
}

func TestSignedAnswerVerifies(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{sign: true, extra: "result_message_field resultMessage"})
	n := g.notice(addPath, addSample(t, "signed"))
	n.query = "merchant=7&x=a+b"
	a := g.send(n)
	a.expect(t, http.StatusOK, "S", "SUCCESS")
	if string(a.raw) != `{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"success"}}` {
		t.Errorf("envelope = %s", a.raw)
	}
	ring := signature.NewKeyRing()
	if err := ring.Add(testClientID, 2, &g.keys.merchant.PublicKey); err != nil {
		t.Fatal(err)
	}
	v, err := ring.Verify(testClientID, n.uri(), a.header.Get("Response-Time"), a.raw, a.header.Get("Signature"))
	if err != nil || v != 2 {
		t.Fatalf("answer signature does not verify with the merchant public key: version %d, %v (Signature %q)", v, err, a.header.Get("Signature"))
	}
	// Failures of verified notifications are signed too.
	b.status(http.StatusInternalServerError)
	failed := g.notice(addPath, addSample(t, "signed-3"))
	ua := g.send(failed)
	ua.expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
	if _, err := ring.Verify(testClientID, failed.uri(), ua.header.Get("Response-Time"), ua.raw, ua.header.Get("Signature")); err != nil {
		t.Errorf("failure answer signature: %v", err)
	}
	// An answer to a request that did not verify is not signed.
	bad := g.notice(addPath, addSample(t, "signed-2"))
	bad.keyVersion = 9
	fa := g.send(bad)
	fa.expect(t, http.StatusOK, "F", "INVALID_SIGNATURE")
	if sig := fa.header.Get("Signature"); sig != "" {
		t.Errorf("INVALID_SIGNATURE answer is signed: %q", sig)
	}
}

// TestResultMessageFieldBoth: `result_message_field both` writes the
// message as resultMsg and again as resultMessage, on every answer, and a
// signed answer verifies over those bytes.
func TestResultMessageFieldBoth(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{sign: true, extra: "result_message_field both"})
	ring := signature.NewKeyRing()
	if err := ring.Add(testClientID, 2, &g.keys.merchant.PublicKey); err != nil {
		t.Fatal(err)
	}
	check := func(n *notice, a answer, want string) {
		t.Helper()
		if string(a.raw) != want {
			t.Errorf("envelope\n%s\nwant\n%s", a.raw, want)
		}
		if _, err := ring.Verify(testClientID, n.uri(), a.header.Get("Response-Time"), a.raw, a.header.Get("Signature")); err != nil {
			t.Errorf("answer signature: %v", err)
		}
	}
	n := g.notice(addPath, addSample(t, "both"))
	a := g.send(n)
	a.expect(t, http.StatusOK, "S", "SUCCESS")
	check(n, a, `{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMsg":"success","resultMessage":"success"}}`)
	// The replay of the stored answer too.
	check(n, g.send(n), `{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMsg":"success","resultMessage":"success"}}`)
	bad := g.notice(addPath, addSample(t, "both-2"))
	bad.key = g.keys.merchant
	// A refusal of an unverified request carries both members too, and is
	// never signed (signing is spent only on verified notifications).
	ba := g.send(bad)
	if want := `{"result":{"resultStatus":"F","resultCode":"INVALID_SIGNATURE","resultMsg":"signature verification failed","resultMessage":"signature verification failed"}}`; string(ba.raw) != want {
		t.Errorf("envelope\n%s\nwant\n%s", ba.raw, want)
	}
	if sig := ba.header.Get("Signature"); sig != "" {
		t.Errorf("the refusal of an unverified request is signed: %q", sig)
	}
	if len(b.hits()) != 1 {
		t.Fatalf("backend got %d notifications, want 1", len(b.hits()))
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
		{"field rules", unitNotice(t, addPath, badField), want{level: zapcore.WarnLevel, outcome: outcomeRejected, requestID: "lf-field", refusedAt: dwsmetrics.StageFieldRules,
			fields: map[string]any{"reason": "paymentMethodDetail.card.expiryYear must be a JSON string", "key_version": int64(1)}}},
		{"field rules, requestId a number", unitNotice(t, addPath, withRequestID(t, "20990501")), want{level: zapcore.WarnLevel, outcome: outcomeRejected,
			requestID: "20990501", refusedAt: dwsmetrics.StageFieldRules, fields: map[string]any{"reason": "requestId must be a JSON string"}}},
		{"field rules, requestId too long", unitNotice(t, addPath, withRequestID(t, `"`+long+`"`)), want{level: zapcore.WarnLevel, outcome: outcomeRejected,
			requestID: long[:dwshttp.MaxSenderText] + "…", refusedAt: dwsmetrics.StageFieldRules}},
		{"field rules, no requestId", unitNotice(t, addPath, withRequestID(t, "")), want{level: zapcore.WarnLevel, outcome: outcomeRejected,
			refusedAt: dwsmetrics.StageFieldRules, unreadable: "requestId is absent"}},
		{"field rules, requestId an object", unitNotice(t, addPath, withRequestID(t, `{"id":"x"}`)), want{level: zapcore.WarnLevel, outcome: outcomeRejected,
			refusedAt: dwsmetrics.StageFieldRules, unreadable: "requestId is neither a JSON string nor a number"}},
		{"signature", forged, want{level: zapcore.InfoLevel, outcome: outcomeRejected, refusedAt: dwsmetrics.StageSignature,
			fields: map[string]any{"signature_failure": "verification_failed"}, absent: []string{"key_version", "request_id_unavailable"}}},
		{"before the signature", get, want{level: zapcore.InfoLevel, outcome: outcomeRejected, refusedAt: dwsmetrics.StageBeforeSignature,
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
