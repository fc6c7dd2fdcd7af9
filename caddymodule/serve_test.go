package caddymodule

import (
	"bufio"
	"bytes"
	"crypto/rsa"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/config"
	"github.com/dwsnotify/dws_notify/signature"
)

// ServeHTTP's first steps, admit, authenticate and validate, through the
// handler: what is refused before the body is read, the body's limits,
// the signature (key choice and rotation, as Alipay's SDKs send it), the
// field rules, and what a hostile sender can try with headers and bodies
// (issue 13).

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

// malformedSignatures are Signature header values the parser refuses,
// each with the message and the signature_failure reason of its answer.
var malformedSignatures = []struct{ name, value, message, reason string }{
	{"garbage", "garbage", "Signature header is malformed", "malformed"},
	{"no signature part", "algorithm=RSA256,keyVersion=1", "Signature header is malformed", "malformed"},
	{"keyVersion not a version", "algorithm=RSA256,keyVersion=v1,signature=AAAA", "Signature header is malformed", "malformed"},
	{"duplicate part", "algorithm=RSA256,signature=AAAA,signature=AAAA", "Signature header is malformed", "malformed"},
	{"unsupported algorithm", "algorithm=ECC224,keyVersion=1,signature=AAAA", "Signature algorithm is not supported (only RSA256)", "unsupported_algorithm"},
	{"bad percent-encoding", "algorithm=RSA256,keyVersion=1,signature=AAA%3", "Signature value is not valid Base64", "bad_encoding"},
	{"bad Base64", "algorithm=RSA256,keyVersion=1,signature=AAAAA", "Signature value is not valid Base64", "bad_encoding"},
}

// A Signature header that does not parse is refused without reading the
// body, with the answer, log line and metrics its verification gave when
// it was refused after the body: INVALID_SIGNATURE, the reason in the log
// and in signature_failures_total, a failed verification with
// key_version none. A well-formed header whose keyVersion names no
// configured key is not malformed: its body is read and the verification
// refuses it.
func TestMalformedSignatureIsRefusedWithoutReadingTheBody(t *testing.T) {
	h := baseHandler(t)
	ctx := newContext(t)
	logs := provisioned(t, ctx, h)
	be := &recordingBackend{}
	type check struct{ name, value, message, reason string }
	cases := []check(nil)
	for _, c := range malformedSignatures {
		cases = append(cases, check(c))
	}
	cases = append(cases, check{"unknown keyVersion (control)", "", "Signature keyVersion is not configured", "unknown_key_version"})
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			malformed := c.value != ""
			n := unitNotice(t, addPath, addSample(t, fmt.Sprintf("sighdr-%d", i)))
			if malformed {
				n.mutate = func(hd http.Header) { hd.Set("Signature", c.value) }
			} else {
				n.keyVersion = 7
			}
			req := n.request(t)
			var reads atomic.Int32
			content := bytes.NewReader(n.body)
			r := httptest.NewRequest(req.Method, n.uri(), readerFunc(func(p []byte) (int, error) {
				reads.Add(1)
				return content.Read(p)
			}))
			r.Header, r.ContentLength = req.Header, int64(len(n.body))
			verified := verifications(t, ctx, "none", "failed")
			failures := counterValue(t, ctx.GetMetricsRegistry(), "caddy_dws_notify_signature_failures_total", map[string]string{"reason": c.reason})
			logs.TakeAll()

			w := httptest.NewRecorder()
			if err := h.ServeHTTP(w, r, be); err != nil {
				t.Fatal(err)
			}
			want := `{"result":{"resultStatus":"F","resultCode":"INVALID_SIGNATURE","resultMsg":"` + c.message + `"}}`
			if w.Code != http.StatusOK || w.Body.String() != want {
				t.Errorf("HTTP %d %s, want HTTP 200 %s", w.Code, w.Body, want)
			}
			if got := reads.Load(); malformed && got != 0 {
				t.Errorf("the body was read (%d reads) for a malformed Signature", got)
			} else if !malformed && got == 0 {
				t.Errorf("the body was not read for a well-formed Signature")
			}
			if got := w.Header().Get("Connection"); malformed && got != "close" {
				t.Errorf("Connection: %q, want close (the body was not read)", got)
			}
			if got := logs.FilterField(zap.String("signature_failure", c.reason)).FilterField(zap.String("result_code", "INVALID_SIGNATURE")).Len(); got != 1 {
				t.Errorf("%d log lines with signature_failure=%s, want 1: %v", got, c.reason, logs.All())
			}
			if got := verifications(t, ctx, "none", "failed") - verified; got != 1 {
				t.Errorf("signature_verifications_total{none,failed} rose by %v, want 1", got)
			}
			if got := counterValue(t, ctx.GetMetricsRegistry(), "caddy_dws_notify_signature_failures_total", map[string]string{"reason": c.reason}) - failures; got != 1 {
				t.Errorf("signature_failures_total{%s} rose by %v, want 1", c.reason, got)
			}
		})
	}
	if got := be.count(); got != 0 {
		t.Fatalf("backend got %d requests, want none", got)
	}
}

// Through a real Caddy, a malformed Signature header is answered at once
// while its body never comes, not after body_timeout (30s here) with U; a
// well-formed one still waits for its body and verifies.
func TestMalformedSignatureIsAnsweredBeforeABodyThatNeverComes(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{extra: "body_timeout 30s"})
	dial := func(t *testing.T, head string) (net.Conn, *bufio.Reader) {
		t.Helper()
		conn, err := net.Dial("tcp", "127.0.0.1:9080")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		// Far below body_timeout: an answer given only once the body
		// timed out fails here.
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, head); err != nil {
			t.Fatal(err)
		}
		return conn, bufio.NewReader(conn)
	}
	// The signed headers each stalled body carries: a Signature that does
	// not parse, or a Key-Version twice or, when it would name the key,
	// not a number.
	type stalled struct{ name, headers, message string }
	var cases []stalled
	for _, c := range malformedSignatures[:4:4] {
		cases = append(cases, stalled{c.name, "Signature: " + c.value + "\r\n", c.message})
	}
	cases = append(cases,
		stalled{"Key-Version twice", "Signature: algorithm=RSA256,signature=AAAA\r\nKey-Version: 1\r\nKey-Version: 1\r\n", "Key-Version header appears more than once"},
		stalled{"Key-Version not a number", "Signature: algorithm=RSA256,signature=AAAA\r\nKey-Version: v1\r\n", "Signature header is malformed"})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, br := dial(t, fmt.Sprintf("POST %s HTTP/1.1\r\nHost: localhost:9080\r\nContent-Type: application/json; charset=UTF-8\r\nClient-Id: %s\r\nRequest-Time: %d\r\n%sContent-Length: 4000\r\n\r\n",
				addPath, testClientID, time.Now().UnixMilli(), c.headers))
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer while the body stalls: %v", err)
			}
			a, err := readAnswer(res)
			if err != nil {
				t.Fatal(err)
			}
			a.expect(t, http.StatusOK, "F", "INVALID_SIGNATURE")
			if a.result.ResultMsg != c.message {
				t.Errorf("message %q, want %q", a.result.ResultMsg, c.message)
			}
			if !res.Close {
				t.Errorf("answer does not close the connection (Connection: %q)", res.Header.Get("Connection"))
			}
		})
	}
	t.Run("well-formed header waits for the body", func(t *testing.T) {
		req, body := signedRaw(t, g, "sighdr-wait", "", false, "")
		conn, br := dial(t, req[:len(req)-len(body)])
		_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := br.Peek(1); err == nil {
			t.Fatal("answered before the body was sent")
		} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			t.Fatalf("waiting for the body: %v", err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write(body); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, err := readAnswer(res)
		if err != nil {
			t.Fatal(err)
		}
		a.expect(t, http.StatusOK, "S", "SUCCESS")
	})
	if hits := b.hits(); len(hits) != 1 {
		t.Fatalf("backend got %d requests, want 1 (the well-formed control)", len(hits))
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

func TestPlaceholders(t *testing.T) {
	h := baseHandler(t)
	provisioned(t, newContext(t), h)
	var seenByBackend string
	next := placeholderBackend("{http.dws_notify.api}/{http.dws_notify.request_id}/{http.dws_notify.key}", &seenByBackend)
	_, repl := serve(t, h, unitNotice(t, addPath, addSample(t, "ph-1")), next)
	if seenByBackend != "addPaymentMethod/ph-1/ph-1" {
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

func TestSignatureFailures(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{})
	body := addSample(t, "sig")
	k := keys(t)

	cases := []struct {
		name string
		edit func(n *notice)
		code string
	}{
		{"missing Signature", func(n *notice) { n.mutate = func(h http.Header) { h.Del("Signature") } }, "INVALID_SIGNATURE"},
		{"missing Request-Time", func(n *notice) { n.mutate = func(h http.Header) { h.Del("Request-Time") } }, "INVALID_SIGNATURE"},
		{"malformed Request-Time", func(n *notice) { n.time = "yesterday" }, "INVALID_SIGNATURE"},
		{"stale Request-Time", func(n *notice) { n.time = strconv.FormatInt(time.Now().Add(-49*time.Hour).UnixMilli(), 10) }, "INVALID_SIGNATURE"},
		{"future Request-Time", func(n *notice) { n.time = time.Now().Add(49 * time.Hour).UTC().Format(time.RFC3339) }, "INVALID_SIGNATURE"},
		{"malformed header", func(n *notice) { n.mutate = func(h http.Header) { h.Set("Signature", "garbage") } }, "INVALID_SIGNATURE"},
		{"unsupported algorithm", func(n *notice) {
			n.mutate = func(h http.Header) { h.Set("Signature", strings.Replace(h.Get("Signature"), "RSA256", "ECC224", 1)) }
		}, "INVALID_SIGNATURE"},
		{"unknown keyVersion", func(n *notice) { n.keyVersion = 7 }, "INVALID_SIGNATURE"},
		{"wrong key", func(n *notice) { n.key = k.merchant }, "INVALID_SIGNATURE"},
		{"signature over a different URI", func(n *notice) {
			n.mutate = func(h http.Header) {
				sig, _ := signature.SignatureHeader(k.dws, 1, "/other", testClientID, h.Get("Request-Time"), body)
				h.Set("Signature", sig)
			}
		}, "INVALID_SIGNATURE"},
		{"form-decoded signature", func(n *notice) {
			n.mutate = func(h http.Header) {
				v := h.Get("Signature")
				v = strings.ReplaceAll(v, "%2B", " ")
				h.Set("Signature", v)
			}
		}, "INVALID_SIGNATURE"},
		{"unknown Client-Id", func(n *notice) { n.clientID = "2188999999999999" }, "ACCESS_DENIED"},
		{"missing Client-Id", func(n *notice) { n.mutate = func(h http.Header) { h.Del("Client-Id") } }, "ACCESS_DENIED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := g.notice(addPath, body)
			tc.edit(n)
			g.send(n).expect(t, http.StatusOK, "F", tc.code)
		})
	}
	t.Run("body tampered", func(t *testing.T) {
		n := g.notice(addPath, body)
		req := n.request(t)
		tampered := bytes.Replace(body, []byte("MASTERCARD"), []byte("VISA"), 1)
		req.Body = nopCloser(tampered)
		req.ContentLength = int64(len(tampered))
		g.do(req).expect(t, http.StatusOK, "F", "INVALID_SIGNATURE")
	})
	if got := len(b.hits()); got != 0 {
		t.Fatalf("backend got %d requests; signature failures must never reach it", got)
	}
	// Nothing was claimed: the genuine notification still goes through.
	g.send(g.notice(addPath, body)).expect(t, http.StatusOK, "S", "SUCCESS")
}

func TestKeyRotation(t *testing.T) {
	b := newBackend(t)
	k := keys(t)
	g := startGateway(t, b, gatewayConfig{extra: "dws_public_key " + bareBase64(t, &k.dwsNext.PublicKey) + " 2"})
	old := g.notice(addPath, addSample(t, "rot-1"))
	g.send(old).expect(t, http.StatusOK, "S", "SUCCESS")
	next := g.notice(addPath, addSample(t, "rot-2"))
	next.key, next.keyVersion = k.dwsNext, 2
	g.send(next).expect(t, http.StatusOK, "S", "SUCCESS")
	if v := b.hits()[1].header.Get("X-Dws-Key-Version"); v != "2" {
		t.Errorf("X-Dws-Key-Version = %q, want 2", v)
	}
	// Without keyVersion every configured key is tried, newest first: a
	// notification signed by either key goes through and the backend is
	// told which key verified it. (The old key's was refused before.)
	for i, tc := range []struct {
		key  *rsa.PrivateKey
		want string
	}{{k.dwsNext, "2"}, {k.dws, "1"}} {
		noVersion := g.notice(addPath, addSample(t, fmt.Sprintf("rot-%d", 3+i)))
		noVersion.key = tc.key
		noVersion.mutate = dropKeyVersion
		g.send(noVersion).expect(t, http.StatusOK, "S", "SUCCESS")
		if v := b.hits()[len(b.hits())-1].header.Get("X-Dws-Key-Version"); v != tc.want {
			t.Errorf("no keyVersion: X-Dws-Key-Version = %q, want %s", v, tc.want)
		}
	}
	// The Key-Version header names the key when the Signature does not.
	header := g.notice(addPath, addSample(t, "rot-5"))
	header.mutate = func(h http.Header) {
		dropKeyVersion(h)
		h.Set("Key-Version", "2")
	}
	g.send(header).expect(t, http.StatusOK, "F", "INVALID_SIGNATURE")
	header.mutate = func(h http.Header) {
		dropKeyVersion(h)
		h.Set("Key-Version", "1")
	}
	g.send(header).expect(t, http.StatusOK, "S", "SUCCESS")
	if got := len(b.hits()); got != 5 {
		t.Fatalf("backend got %d notifications, want 5", got)
	}
}

func TestParamIllegal(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{extra: "max_body_size 2KiB"})
	seedAdd := string(addSample(t, "p"))

	cases := []struct {
		name, body, message string
	}{
		{"not JSON", `requestId=1`, ""},
		{"invalid UTF-8", strings.Replace(seedAdd, "Tung", "T\xffng", 1), ""},
		{"duplicate key", strings.Replace(seedAdd, `"requestId": "p"`, `"requestId": "p", "requestId": "q"`, 1), "requestId"},
		{"too deep", `{"requestId":"x","a":` + strings.Repeat(`{"a":`, 40) + `"v"` + strings.Repeat("}", 40) + "}", ""},
		{"number", strings.Replace(seedAdd, `"expiryYear": "**"`, `"expiryYear": 27`, 1), "paymentMethodDetail.card.expiryYear must be a JSON string"},
		{"boolean in array", strings.Replace(seedAdd, `"requestId": "p"`, `"requestId": "p", "tags": ["a", true]`, 1), "tags[1]"},
		{"missing requestId", strings.Replace(seedAdd, `"requestId": "p",`, ``, 1), "requestId"},
		{"empty requestId", strings.Replace(seedAdd, `"requestId": "p"`, `"requestId": ""`, 1), "requestId"},
		{"requestId too long", strings.Replace(seedAdd, `"requestId": "p"`, `"requestId": "`+strings.Repeat("9", 65)+`"`, 1), "requestId"},
		{"both reference ids", strings.Replace(seedAdd, `"requestId": "p"`, `"requestId": "p", "referenceUserId": "u1"`, 1), "referenceUserId"},
		{"bad detail type", strings.Replace(seedAdd, `"paymentMethodDetailType": "CARD"`, `"paymentMethodDetailType": "WALLET"`, 1), "paymentMethodDetailType"},
		{"bad operateSource", strings.Replace(seedAdd, `"requestId": "p"`, `"requestId": "p", "operateSource": "USER"`, 1), "operateSource"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := g.send(g.notice(addPath, []byte(tc.body)))
			a.expect(t, http.StatusOK, "F", "PARAM_ILLEGAL")
			if !strings.Contains(a.result.ResultMsg, tc.message) {
				t.Errorf("message %q does not name %q", a.result.ResultMsg, tc.message)
			}
		})
	}
	t.Run("Encrypt header", func(t *testing.T) {
		n := g.notice(addPath, addSample(t, "enc"))
		n.mutate = func(h http.Header) { h.Set("Encrypt", "algorithm=AES256,keyVersion=0,symmetricKey=x") }
		g.send(n).expect(t, http.StatusOK, "F", "PARAM_ILLEGAL")
	})
	t.Run("413", func(t *testing.T) {
		big := strings.Replace(seedAdd, `"requestId": "p"`, `"requestId": "p", "pad": "`+strings.Repeat("x", 3000)+`"`, 1)
		g.send(g.notice(addPath, []byte(big))).expect(t, http.StatusRequestEntityTooLarge, "F", "PARAM_ILLEGAL")
	})
	t.Run("405", func(t *testing.T) {
		n := g.notice(addPath, nil)
		n.method = http.MethodGet
		a := g.send(n)
		a.expect(t, http.StatusMethodNotAllowed, "F", "PARAM_ILLEGAL")
		if a.header.Get("Allow") != "POST" {
			t.Errorf("Allow = %q", a.header.Get("Allow"))
		}
	})
	t.Run("404", func(t *testing.T) {
		g.send(g.notice("/dws/notify/other", addSample(t, "nf"))).expect(t, http.StatusNotFound, "F", "PARAM_ILLEGAL")
	})
	t.Run("strict off accepts a missing operateSource", func(t *testing.T) {
		g.send(g.notice(addPath, addSample(t, "lenient"))).expect(t, http.StatusOK, "S", "SUCCESS")
	})
	if got := len(b.hits()); got != 1 {
		t.Fatalf("backend got %d requests, want only the one valid notification", got)
	}
}

func TestStrictRequiresOperateSource(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{extra: "strict"})
	a := g.send(g.notice(addPath, addSample(t, "strict")))
	a.expect(t, http.StatusOK, "F", "PARAM_ILLEGAL")
	if !strings.Contains(a.result.ResultMsg, "operateSource") {
		t.Errorf("message %q does not name operateSource", a.result.ResultMsg)
	}
	g.send(g.notice(removePath, removeSample(t, ""))).expect(t, http.StatusOK, "S", "SUCCESS")
}

// A rewrite ahead of dws_notify changes the path the backend sees, but the
// signature is verified over the request target DWS called, and api paths
// are matched against it too.
func TestOriginalURIIsVerifiedAfterRewrite(t *testing.T) {
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{before: "rewrite * /internal{uri}"})
	n := g.notice(addPath, addSample(t, "rw"))
	n.query = "a=1&b=%2B"
	g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")
	hits := b.hits()
	if len(hits) != 1 || hits[0].path != "/internal"+addPath {
		t.Fatalf("backend hits = %+v, want one at the rewritten path", hits)
	}

	g = startGateway(t, b, gatewayConfig{before: "uri strip_prefix /gw"})
	stripped := g.notice("/gw"+addPath, addSample(t, "rw-2"))
	g.send(stripped).expect(t, http.StatusNotFound, "F", "PARAM_ILLEGAL")
	if len(b.hits()) != 1 {
		t.Fatal("a notification at an unconfigured original path reached the backend")
	}
}

// verifications reads caddy_dws_notify_signature_verifications_total from
// the registry of the context a handler was provisioned in.
func verifications(t *testing.T, ctx caddy.Context, keyVersion, result string) float64 {
	t.Helper()
	return counterValue(t, ctx.GetMetricsRegistry(), "caddy_dws_notify_signature_verifications_total",
		map[string]string{"key_version": keyVersion, "result": result})
}

// dropKeyVersion removes the keyVersion parameter from a Signature header.
func dropKeyVersion(h http.Header) {
	v := h.Get("Signature")
	parts := strings.Split(v, ",")
	kept := parts[:0]
	for _, p := range parts {
		if !strings.HasPrefix(p, "keyVersion=") {
			kept = append(kept, p)
		}
	}
	h.Set("Signature", strings.Join(kept, ","))
}

// TestKeyVersionChoiceThroughHandler: with DWS's old (1) and new (2) key
// configured, a notification that names no version is verified with each
// key, newest first, at most one RSA verification per key; the Key-Version
// header names the key when the Signature does not; the backend, the log
// line and the verification metric name the version that verified.
// Before SPEC §1.2's rule, "old key, no version anywhere" was refused
// INVALID_SIGNATURE (the highest version was the only one tried).
func TestKeyVersionChoiceThroughHandler(t *testing.T) {
	k := keys(t)
	var rsaOps atomic.Int64
	h := baseHandler(t)
	h.DWSPublicKey = []config.Key{
		{Key: bareBase64(t, &k.dws.PublicKey)},                          // version 1
		{Key: bareBase64(t, &k.dwsNext.PublicKey), KeyVersion: intp(2)}, // version 2
	}
	h.verify = func(key *rsa.PublicKey, digest, sig []byte) error {
		rsaOps.Add(1)
		return signature.VerifyRSA(key, digest, sig)
	}
	ctx := newContext(t)
	logs := provisioned(t, ctx, h)
	be := &recordingBackend{}

	cases := []struct {
		name       string
		key        *rsa.PrivateKey
		keyVersion int  // in the Signature
		drop       bool // remove keyVersion from the Signature
		kvHeader   []string
		code       string
		version    string // X-Dws-Key-Version and the metric's key_version
		rsa        int64
		reason     string // signature_failure in the log
	}{
		{"old key, keyVersion 1", k.dws, 1, false, nil, "SUCCESS", "1", 1, ""},
		{"new key, keyVersion 2", k.dwsNext, 2, false, nil, "SUCCESS", "2", 1, ""},
		{"old key, no version anywhere", k.dws, 1, true, nil, "SUCCESS", "1", 2, ""},
		{"new key, no version anywhere", k.dwsNext, 2, true, nil, "SUCCESS", "2", 1, ""},
		{"old key, Key-Version 1 only", k.dws, 1, true, []string{"1"}, "SUCCESS", "1", 1, ""},
		{"keyVersion wins over Key-Version", k.dws, 1, false, []string{"2"}, "SUCCESS", "1", 1, ""},
		{"forged, no version anywhere", k.merchant, 1, true, nil, "INVALID_SIGNATURE", "none", 2, "verification_failed"},
		{"forged, keyVersion 2", k.merchant, 2, false, nil, "INVALID_SIGNATURE", "2", 1, "verification_failed"},
		{"old key, Key-Version 2 only", k.dws, 1, true, []string{"2"}, "INVALID_SIGNATURE", "2", 1, "verification_failed"},
		{"Key-Version not configured", k.dws, 1, true, []string{"7"}, "INVALID_SIGNATURE", "none", 0, "unknown_key_version"},
		{"Key-Version not a number", k.dws, 1, true, []string{"v1"}, "INVALID_SIGNATURE", "none", 0, "malformed"},
		{"Key-Version twice", k.dws, 1, true, []string{"1", "1"}, "INVALID_SIGNATURE", "", 0, "malformed"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := unitNotice(t, addPath, addSample(t, fmt.Sprintf("kv-%d", i)))
			n.key, n.keyVersion = tc.key, tc.keyVersion
			n.mutate = func(hdr http.Header) {
				if tc.drop {
					dropKeyVersion(hdr)
				}
				for _, v := range tc.kvHeader {
					hdr.Add("Key-Version", v)
				}
			}
			result := "verified"
			if tc.code != "SUCCESS" {
				result = "failed"
			}
			var before float64
			if tc.version != "" {
				before = verifications(t, ctx, tc.version, result)
			}
			forwarded, opsBefore := be.count(), rsaOps.Load()
			logs.TakeAll()

			w, _ := serve(t, h, n, be)
			if !strings.Contains(w.Body.String(), `"resultCode":"`+tc.code+`"`) {
				t.Fatalf("answer %s, want %s", w.Body, tc.code)
			}
			if got := rsaOps.Load() - opsBefore; got != tc.rsa {
				t.Errorf("%d RSA verifications, want %d", got, tc.rsa)
			}
			if tc.version != "" {
				if got := verifications(t, ctx, tc.version, result) - before; got != 1 {
					t.Errorf("signature_verifications_total{key_version=%q,result=%q} grew by %v, want 1", tc.version, result, got)
				}
			}
			lines := logs.FilterMessage("dws notification").All()
			if len(lines) != 1 {
				t.Fatalf("%d log lines", len(lines))
			}
			fields := lines[0].ContextMap()
			if tc.code != "SUCCESS" {
				if be.count() != forwarded {
					t.Fatal("a refused notification reached the backend")
				}
				if fields["signature_failure"] != tc.reason {
					t.Errorf("signature_failure %v, want %s", fields["signature_failure"], tc.reason)
				}
				if _, ok := fields["key_version"]; ok {
					t.Errorf("a refused notification logged key_version %v", fields["key_version"])
				}
				return
			}
			if be.count() != forwarded+1 {
				t.Fatal("not forwarded")
			}
			if got := be.last().Get("X-Dws-Key-Version"); got != tc.version {
				t.Errorf("X-Dws-Key-Version %q, want %s", got, tc.version)
			}
			if got := fmt.Sprint(fields["key_version"]); got != tc.version {
				t.Errorf("logged key_version %s, want %s", got, tc.version)
			}
		})
	}
}

func intp(v int) *int { return &v }

// TestEpochPrecisionsThroughHandler: Request-Time in epoch seconds,
// milliseconds, microseconds and nanoseconds (Alipay's Go SDK up to
// v1.2.18) is accepted, signed verbatim, and checked for freshness;
// other digit counts are refused. Before SPEC §1.1's update the 16- and
// 19-digit forms were refused as bad_request_time.
func TestEpochPrecisionsThroughHandler(t *testing.T) {
	h := baseHandler(t)
	logs := provisioned(t, newContext(t), h)
	be := &recordingBackend{}
	now := time.Now()
	stale := now.Add(-config.DefaultRequestTimeTolerance - time.Hour)
	cases := []struct {
		name, time, code, reason string
	}{
		{"seconds", strconv.FormatInt(now.Unix(), 10), "SUCCESS", ""},
		{"milliseconds", strconv.FormatInt(now.UnixMilli(), 10), "SUCCESS", ""},
		{"microseconds", strconv.FormatInt(now.UnixMicro(), 10), "SUCCESS", ""},
		{"nanoseconds", strconv.FormatInt(now.UnixNano(), 10), "SUCCESS", ""},
		{"nanoseconds, stale", strconv.FormatInt(stale.UnixNano(), 10), "INVALID_SIGNATURE", "stale"},
		{"microseconds, stale", strconv.FormatInt(stale.UnixMicro(), 10), "INVALID_SIGNATURE", "stale"},
		{"17 digits", strconv.FormatInt(now.UnixMicro(), 10) + "0", "INVALID_SIGNATURE", "bad_request_time"},
		{"20 digits", strconv.FormatInt(now.UnixNano(), 10) + "0", "INVALID_SIGNATURE", "bad_request_time"},
		{"19 digits past int64", "9300000000000000000", "INVALID_SIGNATURE", "bad_request_time"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := unitNotice(t, addPath, addSample(t, fmt.Sprintf("epoch-%d", i)))
			n.time = tc.time
			logs.TakeAll()
			w, _ := serve(t, h, n, be)
			if !strings.Contains(w.Body.String(), `"resultCode":"`+tc.code+`"`) {
				t.Fatalf("Request-Time %s: answer %s, want %s", tc.time, w.Body, tc.code)
			}
			if tc.reason != "" {
				line := logs.FilterMessage("dws notification").All()[0].ContextMap()
				if line["signature_failure"] != tc.reason {
					t.Errorf("signature_failure %v, want %s", line["signature_failure"], tc.reason)
				}
			}
		})
	}
	if got := be.count(); got != 4 {
		t.Fatalf("backend got %d notifications, want the 4 fresh ones", got)
	}
}
