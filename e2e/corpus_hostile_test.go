package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// The hostile part of the malformed corpus (issue 13): header, trailer and
// body tricks sent as raw HTTP/1.1, exactly as written, which http.Client
// would not send. Validly signed ones must reach the backend as a plain
// notification does, header by header; slow bodies must be cut off by
// body_timeout and nothing of them forwarded; a request for a Host that
// no site serves must leave no signature in any log.

// corpusBodyTimeout is the gateway's body_timeout in the corpus.
const corpusBodyTimeout = 2 * time.Second

// hostileCase is one raw exchange.
type hostileCase struct {
	name     string
	extra    string // header lines (each ending in CRLF) after the signed ones
	chunked  bool   // send the body chunked, in two chunks
	trailers string // trailer lines after the last chunk
	host     string // Host header; "" = the site's address
	announce int    // Content-Length to announce; 0 = the body's length
	pieces   int    // send the body in this many pieces (0 = at once) ...
	pace     time.Duration

	wantStatus int
	wantCode   string // "" = no envelope (the catch-all site's 404)
	forward    bool
	id         string
	body       []byte
	sig        string
}

// hostileCases are the raw cases; the first is the plain reference.
func (g *corpusGen) hostileCases() []*hostileCase {
	ok := func(name, extra string) *hostileCase {
		return &hostileCase{name: name, extra: extra, wantStatus: 200, wantCode: "SUCCESS", forward: true}
	}
	cases := []*hostileCase{
		ok("raw plain notification (the reference view)", ""),
		ok("Connection names the X-Dws-* headers", "Connection: keep-alive, X-Dws-Verified, X-Dws-Request-Id, X-Dws-Api, X-Dws-Idempotency-Key\r\n"),
		ok("Connection names every X-Dws-* header, lower case, two lines", "Connection: x-dws-verified, x-dws-request-id\r\nConnection: x-dws-api, x-dws-client-id, x-dws-key-version, x-dws-idempotency-key\r\n"),
		ok("Proxy-Connection names X-Dws-* headers", "Proxy-Connection: X-Dws-Verified, X-Dws-Api\r\n"),
		{name: "chunked with trailers shadowing X-Dws-*", chunked: true,
			extra:      "Trailer: X-Dws-Verified, X-Dws-Request-Id, X-Dws-Idempotency-Key\r\n",
			trailers:   "X-Dws-Verified: false\r\nX-Dws-Request-Id: evil\r\nX-Dws-Idempotency-Key: evil\r\n",
			wantStatus: 200, wantCode: "SUCCESS", forward: true},
		{name: "chunked, trailers, Connection and TE at once", chunked: true,
			extra:      "Connection: keep-alive, X-Dws-Verified, X-Dws-Request-Id, X-Dws-Api, TE\r\nTE: trailers\r\nTrailer: X-Dws-Verified, X-Dws-Request-Id, X-Dws-Api\r\n",
			trailers:   "X-Dws-Verified: false\r\nX-Dws-Request-Id: evil\r\nX-Dws-Api: evil\r\n",
			wantStatus: 200, wantCode: "SUCCESS", forward: true},
		ok("TE: trailers", "TE: trailers\r\n"),
		ok("Upgrade: websocket", "Connection: Upgrade\r\nUpgrade: websocket\r\n"),
		ok("Upgrade: h2c", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"),
		ok("Keep-Alive", "Connection: Keep-Alive\r\nKeep-Alive: timeout=5, max=1000\r\n"),
		ok("underscore, dot and case look-alikes of X-Dws-*", "X_Dws_Verified: false\r\nx_dws_request_id: evil\r\nX-DWS-API: evil\r\nx-dws_client-id: evil\r\nX_dws-Key-Version: 9\r\nX.Dws.Verified: false\r\nx.dws-request-id: evil\r\nx_dws_idempotency_key: evil\r\nX.Dws-Idempotency.Key: evil\r\n"),
		ok("forged X-Dws-* headers, twice", "X-Dws-Verified: false\r\nX-Dws-Verified: true\r\nX-Dws-Extra: 1\r\n"),
		ok("forged X-Dws-Idempotency-Key, twice", "X-Dws-Idempotency-Key: evil\r\nX-Dws-Idempotency-Key: evil-2\r\n"),
		ok("Expect: 100-continue", "Expect: 100-continue\r\n"),
		// Slow bodies: cut off by body_timeout, answered U, not forwarded.
		{name: "body stalls: 60000 bytes announced, 300 sent", announce: 60000, pieces: 1, wantStatus: 200, wantCode: "UNKNOWN_EXCEPTION"},
		{name: "body stalls before its first byte", announce: 5000, pieces: -1, wantStatus: 200, wantCode: "UNKNOWN_EXCEPTION"},
		{name: "body trickles: a piece every 300 ms", pieces: 40, pace: 300 * time.Millisecond, wantStatus: 200, wantCode: "UNKNOWN_EXCEPTION"},
		// A Host no site serves: the catch-all site answers 404; its
		// Signature must not reach any log.
		{name: "signed, for a Host that no site serves", host: "other.example", wantStatus: http.StatusNotFound},
	}
	for _, c := range cases {
		c.id = g.nextID()
		c.body = g.sample(c.id)
	}
	return cases
}

// raw renders the request of c, signed for now.
func (c *hostileCase) raw(g *corpusGen, siteAddr string) (head string, body []byte) {
	h := g.signedHeader(addURI, c.body)
	c.sig = h.Get("Signature")
	host := c.host
	if host == "" {
		host = siteAddr
	}
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\n", addURI, host)
	for _, k := range []string{"Content-Type", "Client-Id", "Request-Time", "Signature"} {
		fmt.Fprintf(&b, "%s: %s\r\n", k, h.Get(k))
	}
	b.WriteString(c.extra)
	if c.chunked {
		half := len(c.body) / 2
		fmt.Fprintf(&b, "Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n%x\r\n%s\r\n0\r\n%s\r\n", half, c.body[:half], len(c.body)-half, c.body[half:], c.trailers)
		return b.String(), nil
	}
	announce := c.announce
	if announce == 0 {
		announce = len(c.body)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", announce)
	return b.String(), c.body
}

// hostileResult is what a raw exchange got.
type hostileResult struct {
	status       int
	result, code string
	closes       bool
	took         time.Duration
}

// do sends c on a new connection and reads the answer.
func (c *hostileCase) do(g *corpusGen, siteAddr string) (hostileResult, error) {
	head, body := c.raw(g, siteAddr)
	conn, err := net.Dial("tcp", siteAddr)
	if err != nil {
		return hostileResult{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(callTimeout))
	began := time.Now()
	if _, err := io.WriteString(conn, head); err != nil {
		return hostileResult{}, err
	}
	type reply struct {
		r   hostileResult
		err error
	}
	answered := make(chan reply, 1)
	go func() {
		br := bufio.NewReader(conn)
		res, err := http.ReadResponse(br, nil)
		for err == nil && res.StatusCode < 200 {
			res, err = http.ReadResponse(br, nil)
		}
		if err != nil {
			answered <- reply{err: err}
			return
		}
		raw, err := io.ReadAll(res.Body)
		res.Body.Close()
		r := hostileResult{status: res.StatusCode, closes: res.Close, took: time.Since(began)}
		if err == nil && len(raw) > 0 {
			r.result, r.code, err = parseEnvelope(raw)
		}
		answered <- reply{r, err}
	}()
	switch {
	case c.pieces < 0: // nothing of the body
	case c.pieces == 0:
		_, _ = conn.Write(body)
	default:
		step := max(len(body)/c.pieces, 1)
		if c.pace == 0 {
			step = min(300, len(body)) // a stall after the first piece
		}
		for i := 0; i < len(body); i += step {
			if _, err := conn.Write(body[i:min(i+step, len(body))]); err != nil {
				break
			}
			if c.pace == 0 {
				break
			}
			select {
			case r := <-answered:
				return r.r, r.err
			case <-time.After(c.pace):
			}
		}
	}
	r := <-answered
	return r.r, r.err
}

// runHostileCases sends the raw cases and checks each answer; it returns
// the controls (forwarded notifications), the number of cases and every
// Signature sent.
func runHostileCases(t *testing.T, e *relEnv, g *corpusGen, byCode map[string]int) (map[string]*hostileCase, int, []string) {
	t.Helper()
	controls := map[string]*hostileCase{}
	var sigs []string
	cases := g.hostileCases()
	for _, c := range cases {
		byCode[fmt.Sprintf("HTTP %d %s", c.wantStatus, c.wantCode)]++
		r, err := c.do(g, e.gw.SiteAddr)
		sigs = append(sigs, c.sig)
		if err != nil {
			t.Errorf("raw case %q: no answer: %v", c.name, err)
			continue
		}
		if r.status != c.wantStatus || r.code != c.wantCode {
			t.Errorf("raw case %q: HTTP %d %s %s, want HTTP %d %s", c.name, r.status, r.result, r.code, c.wantStatus, c.wantCode)
		}
		if c.wantCode == "UNKNOWN_EXCEPTION" {
			if limit := corpusBodyTimeout + 5*time.Second; r.took > limit {
				t.Errorf("raw case %q: answered after %s, body_timeout is %s", c.name, r.took, corpusBodyTimeout)
			}
			if !r.closes {
				t.Errorf("raw case %q: the answer to a cut-off body keeps the connection", c.name)
			}
		}
		if c.forward {
			controls[c.id] = c
		}
	}
	return controls, len(cases), sigs
}

// hopHeaders are request headers that must never reach the backend.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Expect", "Signature"}

// checkBackendView checks what the backend got for one delivery: exactly
// the gateway's six X-Dws-* headers (and no look-alike), the body with a
// Content-Length and no chunking, no trailers, no hop-by-hop header, no
// Signature.
func checkBackendView(t *testing.T, d delivery, wantAPI string) {
	t.Helper()
	want := map[string]string{
		"X-Dws-Api":             wantAPI,
		"X-Dws-Client-Id":       clientID,
		"X-Dws-Request-Id":      d.RequestID,
		"X-Dws-Idempotency-Key": d.RequestID,
		"X-Dws-Key-Version":     "1",
		"X-Dws-Verified":        "true",
	}
	for name, vals := range d.Header {
		folded := strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(name))
		if strings.HasPrefix(folded, "x-dws-") {
			if w, ok := want[name]; !ok || len(vals) != 1 || vals[0] != w {
				t.Errorf("%s: backend header %s: %q, want %q", d.RequestID, name, vals, w)
			}
		}
	}
	for name, w := range want {
		if vals := d.Header.Values(name); len(vals) != 1 || vals[0] != w {
			t.Errorf("%s: backend header %s: %q, want exactly %q", d.RequestID, name, vals, w)
		}
	}
	for _, name := range hopHeaders {
		if vals := d.Header.Values(name); len(vals) != 0 {
			t.Errorf("%s: backend header %s: %q, want none", d.RequestID, name, vals)
		}
	}
	if d.ContentLength != int64(d.BodyLen) || d.Header.Get("Content-Length") != fmt.Sprint(d.BodyLen) || len(d.TransferEncoding) != 0 {
		t.Errorf("%s: backend framing: Content-Length %d (%q), Transfer-Encoding %q for %d bytes", d.RequestID, d.ContentLength, d.Header.Get("Content-Length"), d.TransferEncoding, d.BodyLen)
	}
	if len(d.Trailer) != 0 {
		t.Errorf("%s: backend got trailers %v", d.RequestID, d.Trailer)
	}
}

// checkHostileViews compares the backend's view of each raw control with
// that of the plain raw notification, header by header, leaving out only
// the headers that differ from one notification to the next.
func checkHostileViews(t *testing.T, ds []delivery, controls map[string]*hostileCase) {
	t.Helper()
	views := map[string]http.Header{}
	var refID string
	for id, c := range controls {
		if strings.HasPrefix(c.name, "raw plain") {
			refID = id
		}
	}
	for _, d := range ds {
		if _, ok := controls[d.RequestID]; !ok {
			continue
		}
		v := d.Header.Clone()
		for _, name := range []string{"Request-Time", "X-Dws-Request-Id", "X-Dws-Idempotency-Key", "Content-Length"} {
			v.Del(name)
		}
		views[d.RequestID] = v
	}
	ref, ok := views[refID]
	if !ok {
		t.Fatal("the plain raw notification did not reach the backend")
	}
	for id, v := range views {
		names := map[string]bool{}
		for k := range ref {
			names[k] = true
		}
		for k := range v {
			names[k] = true
		}
		for name := range names {
			if got, want := v.Values(name), ref.Values(name); !slices.Equal(got, want) {
				t.Errorf("raw case %q: backend header %s: %q, the plain notification's: %q", controls[id].name, name, got, want)
			}
		}
	}
}

// checkNoSignatureInLogs fails the test if any signature value sent shows
// up in the gateway's output (its own log, Caddy's access log with the
// filter of docs/security.md, reverse_proxy's debug lines).
func checkNoSignatureInLogs(t *testing.T, output string, sigs []string) int {
	t.Helper()
	checked := 0
	for _, sig := range sigs {
		_, v, ok := strings.Cut(sig, "signature=")
		if !ok || len(v) < 24 {
			continue
		}
		checked++
		if strings.Contains(output, v[:24]) {
			t.Errorf("a signature value sent (%.12s...) appears in the gateway's output", v)
			i := strings.Index(output, v[:24])
			start := bytes.LastIndexByte([]byte(output[:i]), '\n') + 1
			t.Logf("the line: %.300s", output[start:])
			return checked
		}
	}
	return checked
}
