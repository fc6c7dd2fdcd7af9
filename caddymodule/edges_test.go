package caddymodule

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/signature"
)

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

// Two Signature (or Request-Time) headers are malformed, not missing.
func TestRepeatedSignatureHeadersAreMalformed(t *testing.T) {
	h := baseHandler(t)
	logs := provisioned(t, newContext(t), h)
	for _, name := range []string{"Signature", "Request-Time"} {
		n := unitNotice(t, addPath, addSample(t, "twice-"+name))
		n.mutate = func(hd http.Header) { hd.Add(name, hd.Get(name)) }
		w, _ := serve(t, h, n, okBackend)
		want := `{"result":{"resultStatus":"F","resultCode":"INVALID_SIGNATURE","resultMsg":"` + name + ` header appears more than once"}}`
		if w.Body.String() != want {
			t.Errorf("two %s headers: %s, want %s", name, w.Body, want)
		}
	}
	if got := logs.FilterField(zap.String("signature_failure", "malformed")).Len(); got != 2 {
		t.Errorf("%d log lines with signature_failure=malformed, want 2", got)
	}
}

// The api placeholder is set as soon as the path names an api, so
// log_append sees it on early refusals (405, 413, signature failures).
func TestAPIPlaceholderOnEarlyRefusal(t *testing.T) {
	h := baseHandler(t)
	provisioned(t, newContext(t), h)
	n := unitNotice(t, removePath, removeSample(t, "ph-early"))
	n.method = http.MethodPut
	w, repl := serve(t, h, n, okBackend)
	if w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("PUT: HTTP %d, want 405", w.Code)
	}
	if got := repl.ReplaceAll("{http.dws_notify.api} {http.dws_notify.result_code}", "-"); got != "removePaymentMethod PARAM_ILLEGAL" {
		t.Errorf("placeholders after a 405 = %q", got)
	}
	n = unitNotice(t, "/not/an/api", addSample(t, "ph-404"))
	_, repl = serve(t, h, n, okBackend)
	if got := repl.ReplaceAll("{http.dws_notify.api}", "-"); got != "-" {
		t.Errorf("api placeholder on a 404 = %q, want unset", got)
	}
}

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
		{"413 from Content-Length", addPath, "Client-Id: " + testClientID + "\r\nRequest-Time: " + fmt.Sprint(time.Now().UnixMilli()) + "\r\nSignature: signature=x\r\n", http.StatusRequestEntityTooLarge},
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
