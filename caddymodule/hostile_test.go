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
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/dwsnotify/dws_notify/config"
	"github.com/dwsnotify/dws_notify/signature"
)

// Tests of what a hostile sender can try (issue 13): each header trick,
// body trick and log trick must leave the backend's view, the gateway's
// memory and CPU, and its logs as they would be without it.

// Every line of Content-Encoding and Encrypt is checked, not only the
// first: `Content-Encoding: identity` followed by `Content-Encoding: gzip`
// (or an empty Encrypt followed by `Encrypt: x`) must be refused and
// nothing forwarded.
func TestEveryContentEncodingAndEncryptLineIsChecked(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{})
	cases := []struct {
		name   string
		header string
		values []string
		code   string
	}{
		{"Content-Encoding identity then gzip", "Content-Encoding", []string{"identity", "gzip"}, "PARAM_ILLEGAL"},
		{"Content-Encoding empty then gzip", "Content-Encoding", []string{"", "gzip"}, "PARAM_ILLEGAL"},
		{"Content-Encoding identity, gzip in one line", "Content-Encoding", []string{"identity, gzip"}, "PARAM_ILLEGAL"},
		{"Content-Encoding IDENTITY then br", "Content-Encoding", []string{"IDENTITY", "br"}, "PARAM_ILLEGAL"},
		{"Encrypt empty then x", "Encrypt", []string{"", "x"}, "PARAM_ILLEGAL"},
		{"Encrypt empty, empty, then true", "Encrypt", []string{"", "", "true"}, "PARAM_ILLEGAL"},
		// Controls: only identity, or only empty lines.
		{"Content-Encoding identity twice", "Content-Encoding", []string{"identity", "Identity"}, "SUCCESS"},
		{"Encrypt empty", "Encrypt", []string{""}, "SUCCESS"},
	}
	forwarded := 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := g.notice(addPath, addSample(t, "lines-"+strings.ReplaceAll(c.name, " ", "-")))
			n.mutate = func(h http.Header) {
				for _, v := range c.values {
					h.Add(c.header, v)
				}
			}
			a := g.send(n)
			if c.code == "SUCCESS" {
				a.expect(t, http.StatusOK, "S", "SUCCESS")
				forwarded++
				return
			}
			a.expect(t, http.StatusOK, "F", c.code)
		})
	}
	if hits := b.hits(); len(hits) != forwarded {
		t.Fatalf("backend got %d requests, want only the %d controls", len(hits), forwarded)
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

// rawExchange writes req (a complete HTTP/1.1 request) on a new connection
// to the gateway and reads the answer's envelope.
func rawExchange(t *testing.T, req string) answer {
	t.Helper()
	conn, err := net.Dial("tcp", "127.0.0.1:9080")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	for err == nil && res.StatusCode < 200 { // 100 Continue
		res, err = http.ReadResponse(br, nil)
	}
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	a, err := readAnswer(res)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// signedRaw is an add notification with requestId id as DWS sends it, on
// the wire: extra header lines (each ending in CRLF) after the signed ones;
// with chunked, the body goes in two chunks followed by the trailer lines.
func signedRaw(t *testing.T, g *gateway, id, extra string, chunked bool, trailers string) (string, []byte) {
	t.Helper()
	body := addSample(t, id)
	rt := fmt.Sprint(time.Now().UnixMilli())
	sig, err := signature.SignatureHeader(g.keys.dws, 1, addPath, testClientID, rt, body)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: localhost:9080\r\nContent-Type: application/json; charset=UTF-8\r\nClient-Id: %s\r\nRequest-Time: %s\r\nSignature: %s\r\n%s",
		addPath, testClientID, rt, sig, extra)
	if !chunked {
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
		return b.String(), body
	}
	half := len(body) / 2
	fmt.Fprintf(&b, "Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n%x\r\n%s\r\n0\r\n%s\r\n", half, body[:half], len(body)-half, body[half:], trailers)
	return b.String(), body
}

// The backend gets exactly the gateway's X-Dws-* headers, the exact body
// with a Content-Length and no trailers, whatever Connection, Trailer, TE,
// Upgrade or look-alike headers the sender adds. Each trick goes through a
// real Caddy and reverse_proxy to a recording backend; the backend's view
// of it must be the view of a plain notification, header by header (only
// the headers that differ per notification aside).
//
// Caddy drops header names with "_" or "." unless the operator allows
// them; this gateway allows the X-Dws-* look-alikes, so that they reach
// dws_notify.
func TestBackendGetsExactlyTheGatewaysDwsHeaders(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{globals: "servers {\n\t\texpected_underscore_headers x_dws_* x_dws-* x-dws_*\n\t\texpected_dot_headers x.dws.* x.dws-*\n\t}"})
	tricks := []struct {
		name, extra string
		chunked     bool
		trailers    string
	}{
		{name: "plain (the reference view)"},
		{name: "Connection names the X-Dws-* headers", extra: "Connection: keep-alive, X-Dws-Verified, X-Dws-Request-Id, X-Dws-Api\r\n"},
		{name: "Connection names every X-Dws-* header in lower case, on two lines", extra: "Connection: x-dws-verified, x-dws-request-id\r\nConnection: x-dws-api, x-dws-client-id, x-dws-key-version\r\n"},
		{name: "Proxy-Connection names them", extra: "Proxy-Connection: X-Dws-Verified, X-Dws-Api\r\n"},
		{name: "chunked with trailers shadowing X-Dws-*", chunked: true,
			extra:    "Trailer: X-Dws-Verified, X-Dws-Request-Id\r\n",
			trailers: "X-Dws-Verified: false\r\nX-Dws-Request-Id: evil\r\n"},
		{name: "chunked, trailers, Connection and TE combined", chunked: true,
			extra:    "Connection: keep-alive, X-Dws-Verified, X-Dws-Request-Id, X-Dws-Api, TE\r\nTE: trailers\r\nTrailer: X-Dws-Verified, X-Dws-Request-Id, X-Dws-Api\r\n",
			trailers: "X-Dws-Verified: false\r\nX-Dws-Request-Id: evil\r\nX-Dws-Api: evil\r\n"},
		{name: "TE: trailers", extra: "TE: trailers\r\n"},
		{name: "Upgrade: websocket", extra: "Connection: Upgrade\r\nUpgrade: websocket\r\n"},
		{name: "Upgrade: h2c", extra: "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"},
		{name: "Keep-Alive", extra: "Connection: Keep-Alive\r\nKeep-Alive: timeout=5, max=1000\r\n"},
		{name: "underscore, dot and case look-alikes", extra: "X_Dws_Verified: false\r\nx_dws_request_id: evil\r\nX-DWS-API: evil\r\nx-dws_client-id: evil\r\nX_dws-Key-Version: 9\r\nX.Dws.Verified: false\r\nx.dws-request-id: evil\r\n"},
		{name: "forged X-Dws-* twice", extra: "X-Dws-Verified: false\r\nX-Dws-Verified: true\r\nX-Dws-Extra: 1\r\n"},
		{name: "Expect: 100-continue", extra: "Expect: 100-continue\r\n"},
	}
	// Headers whose values differ from one notification to the next.
	perNotification := []string{"Request-Time", "Signature", "X-Dws-Request-Id", "Content-Length"}
	var reference http.Header
	for i, tr := range tricks {
		id := fmt.Sprintf("hop-%02d", i)
		req, body := signedRaw(t, g, id, tr.extra, tr.chunked, tr.trailers)
		a := rawExchange(t, req)
		a.expect(t, http.StatusOK, "S", "SUCCESS")
		hits := b.hits()
		if len(hits) != i+1 {
			t.Fatalf("%s: backend got %d requests in all, want %d", tr.name, len(hits), i+1)
		}
		got := hits[i]
		want := map[string]string{
			"X-Dws-Api":         "addPaymentMethod",
			"X-Dws-Client-Id":   testClientID,
			"X-Dws-Request-Id":  id,
			"X-Dws-Key-Version": "1",
			"X-Dws-Verified":    "true",
		}
		for name, vals := range got.header {
			if isLookalike(name) {
				if w, ok := want[name]; !ok || len(vals) != 1 || vals[0] != w {
					t.Errorf("%s: backend header %s: %q, want %q", tr.name, name, vals, w)
				}
			}
		}
		for name, w := range want {
			if vals := got.header.Values(name); len(vals) != 1 || vals[0] != w {
				t.Errorf("%s: backend header %s: %q, want exactly %q", tr.name, name, vals, w)
			}
		}
		if got.bodyErr != nil || !bytes.Equal(got.body, body) {
			t.Errorf("%s: backend body differs from the bytes sent (read error %v)", tr.name, got.bodyErr)
		}
		if got.length != int64(len(body)) || got.header.Get("Content-Length") != fmt.Sprint(len(body)) || len(got.chunked) != 0 {
			t.Errorf("%s: backend framing: Content-Length %d (%q), Transfer-Encoding %q; want Content-Length %d, not chunked",
				tr.name, got.length, got.header.Get("Content-Length"), got.chunked, len(body))
		}
		if len(got.trailer) != 0 {
			t.Errorf("%s: backend got trailers %v", tr.name, got.trailer)
		}
		view := got.header.Clone()
		for _, name := range perNotification {
			view.Del(name)
		}
		if reference == nil {
			reference = view
			continue
		}
		for name := range mergedNames(reference, view) {
			if r, v := reference.Values(name), view.Values(name); !slices.Equal(r, v) {
				t.Errorf("%s: backend header %s: %q, the plain notification's: %q", tr.name, name, v, r)
			}
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

// stingyBody announces nothing by itself: it hands out sent, then fails as
// a connection that went away would, so the body never completes.
type stingyBody struct {
	sent []byte
	read int
}

func (b *stingyBody) Read(p []byte) (int, error) {
	if b.read == len(b.sent) {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, b.sent[b.read:])
	b.read += n
	return n, nil
}

func (b *stingyBody) Close() error { return nil }

// Memory is reserved as bytes arrive, not as Content-Length announces:
// with max_body_size 16MiB, a request announcing 16 MiB that sends 210
// bytes and goes away costs a few KiB of heap, not 16 MiB. Measured as the
// bytes the handler allocates (runtime.MemStats.TotalAlloc), not by time.
func TestBodyMemoryFollowsTheBytesReceived(t *testing.T) {
	h := baseHandler(t)
	h.MaxBodySize = config.MaxMaxBodySize
	provisioned(t, newContext(t), h)
	headers := unitNotice(t, addPath, addSample(t, "mem")).request(t).Header
	serveStingy := func() string {
		r := httptest.NewRequest(http.MethodPost, addPath, &stingyBody{sent: bytes.Repeat([]byte("x"), 210)})
		r.Header = headers.Clone()
		r.ContentLength = config.MaxMaxBodySize
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, r, okBackend); err != nil {
			t.Fatal(err)
		}
		return w.Body.String()
	}
	serveStingy() // warm up pools and lazily built state
	const rounds = 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range rounds {
		if got := serveStingy(); !strings.Contains(got, "UNKNOWN_EXCEPTION") {
			t.Fatalf("answer %s, want U", got)
		}
	}
	runtime.ReadMemStats(&after)
	perRequest := (after.TotalAlloc - before.TotalAlloc) / rounds
	// The body buffer starts at 4 KiB; the log line, envelope and request
	// plumbing add a few KiB more. Background goroutines of the store may
	// allocate meanwhile, hence the margin.
	if perRequest > 256<<10 {
		t.Fatalf("%d bytes allocated per request that announced %d bytes and sent 210, want a few KiB", perRequest, config.MaxMaxBodySize)
	}
	t.Logf("%d bytes allocated per request announcing %d bytes and sending 210", perRequest, config.MaxMaxBodySize)
}

// A body that arrives in small pieces still arrives whole, announced or
// chunked, up to and beyond the first buffer.
func TestBodyGrowsToTheWholeBody(t *testing.T) {
	h := baseHandler(t)
	provisioned(t, newContext(t), h)
	for _, size := range []int{800, 4095, 4096, 4097, 20000, config.DefaultMaxBodySize} {
		for _, chunked := range []bool{false, true} {
			id := fmt.Sprintf("grow-%d-%v", size, chunked)
			body := addSample(t, id)
			body = append([]byte(`{"pad":"`+strings.Repeat("p", size-len(body)-len(`{"pad":"",`)+1)+`",`), body[1:]...)
			if len(body) != size {
				t.Fatalf("padded body is %d bytes, want %d", len(body), size)
			}
			var got []byte
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				got, _ = io.ReadAll(r.Body)
				w.WriteHeader(http.StatusOK)
				return nil
			})
			n := unitNotice(t, addPath, body)
			r := httptest.NewRequest(http.MethodPost, addPath, iotest.OneByteReader(bytes.NewReader(body)))
			r.Header = n.request(t).Header
			if chunked {
				r.ContentLength = -1
			}
			w := httptest.NewRecorder()
			if err := h.ServeHTTP(w, r, next); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(w.Body.String(), `"SUCCESS"`) || !bytes.Equal(got, body) {
				t.Errorf("%d bytes, chunked %v: answer %s, backend got %d bytes", size, chunked, w.Body.String(), len(got))
			}
		}
	}
}

// Where the response writer cannot set a read deadline, body_timeout is
// checked between reads: a trickling body is cut at the first read that
// ends past it. The handler's clock advances one second per read (no
// sleeping).
func TestBodyTimeoutBetweenReadsWithoutADeadline(t *testing.T) {
	h := baseHandler(t)
	h.BodyTimeout = config.Duration(3 * time.Second)
	provisioned(t, newContext(t), h)
	now := time.Now()
	h.clock = func() time.Time { return now }
	body := addSample(t, "trickle")
	reads := 0
	tick := readerFunc(func(p []byte) (int, error) {
		if reads == len(body) {
			return 0, io.EOF
		}
		now = now.Add(time.Second)
		p[0] = body[reads]
		reads++
		return 1, nil
	})
	r := httptest.NewRequest(http.MethodPost, addPath, tick)
	r.Header = unitNotice(t, addPath, body).request(t).Header
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, r, okBackend); err != nil {
		t.Fatal(err)
	}
	// Reads 1 to 3 end at or before the deadline; read 4 ends past it.
	if !strings.Contains(w.Body.String(), "UNKNOWN_EXCEPTION") || reads != 4 {
		t.Fatalf("answer %s after %d reads, want U after 4", w.Body.String(), reads)
	}
	if w.Header().Get("Connection") != "close" {
		t.Errorf("the answer to a cut-off body does not close the connection")
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// Through a real Caddy, a body that stalls or trickles is cut off by
// body_timeout and answered U at once (the connection then closed),
// nothing forwarded; with Caddy's own idle read timeout on (its default)
// and off. A slow body that arrives within body_timeout is served.
func TestSlowBodyIsCutOffByBodyTimeout(t *testing.T) {
	for _, mode := range []struct{ name, globals string }{
		{"Caddy's idle read timeout on", ""},
		{"Caddy's idle read timeout off", "servers {\n\t\ttimeouts {\n\t\t\tread_body_idle -1s\n\t\t}\n\t}"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			b := newBackend(t)
			g := startGateway(t, b, gatewayConfig{globals: mode.globals, extra: "body_timeout 1s\n\t\tmax_body_size 16MiB"})
			// send writes a notification's head announcing announce bytes
			// (0: its length), then its body in pieces, pace apart, until
			// the answer comes; it returns the answer, whether it closes
			// the connection, and when it came.
			send := func(t *testing.T, id string, announce int, pace time.Duration, pieces int) (answer, bool, time.Duration) {
				t.Helper()
				req, body := signedRaw(t, g, id, "", false, "")
				if announce <= 0 {
					announce = len(body)
				}
				head := req[:len(req)-len(body)]
				head = strings.Replace(head, fmt.Sprintf("Content-Length: %d\r\n", len(body)), fmt.Sprintf("Content-Length: %d\r\n", announce), 1)
				conn, err := net.Dial("tcp", "127.0.0.1:9080")
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
				start := time.Now()
				if _, err := io.WriteString(conn, head); err != nil {
					t.Fatal(err)
				}
				type reply struct {
					a     answer
					close bool
				}
				answered := make(chan reply, 1)
				go func() {
					br := bufio.NewReader(conn)
					res, err := http.ReadResponse(br, nil)
					if err != nil {
						close(answered)
						return
					}
					a, _ := readAnswer(res) // a bad envelope fails expect
					answered <- reply{a, res.Close}
				}()
				step := (len(body) + pieces - 1) / pieces
				for i := 0; i < len(body) && i < announce; i += step {
					select {
					case r, ok := <-answered:
						if !ok {
							t.Fatal("no answer")
						}
						return r.a, r.close, time.Since(start)
					case <-time.After(pace):
					}
					if _, err := conn.Write([]byte(body[i:min(i+step, len(body))])); err != nil {
						break
					}
				}
				r, ok := <-answered
				if !ok {
					t.Fatalf("no answer after %s", time.Since(start))
				}
				return r.a, r.close, time.Since(start)
			}

			// A stall: 16 MiB announced, 210 bytes sent.
			a, closes, took := send(t, "slow-stall", 16<<20, 10*time.Millisecond, 3)
			a.expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
			if !closes {
				t.Errorf("the answer to a stalled body keeps the connection")
			}
			if took > 6*time.Second {
				t.Errorf("stalled body answered after %s, body_timeout is 1s", took)
			}
			// A trickle: the whole body announced, a piece every 150 ms.
			a, _, took = send(t, "slow-trickle", 5000, 150*time.Millisecond, 100)
			a.expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
			if took > 6*time.Second {
				t.Errorf("trickled body answered after %s, body_timeout is 1s", took)
			}
			// Slow but within body_timeout (three pieces 100 ms apart): served.
			a, _, _ = send(t, "slow-ok", 0, 100*time.Millisecond, 3)
			a.expect(t, http.StatusOK, "S", "SUCCESS")
			if hits := b.hits(); len(hits) != 1 || hits[0].header.Get("X-Dws-Request-Id") != "slow-ok" {
				t.Fatalf("backend got %d requests, want only slow-ok", len(hits))
			}
		})
	}
}
