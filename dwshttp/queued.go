package dwshttp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Target is where a queued notification re-enters Caddy when it is
// delivered (acknowledge on_receipt): the server that received it, and
// the Host, request target (as it reached Caddy, before any rewrite) and
// peer address it came with, so the delivery matches the same route.
type Target struct {
	Server string
	// Listen is the server's listener addresses (its config's listen
	// list, space-separated): a reload may rename the server (the
	// Caddyfile names them by position), not move its addresses.
	Listen     string
	Host       string
	URI        string
	RemoteAddr string
	// TLSServerName is set when the notification came over TLS: the SNI
	// it came with, or "-" for none. A delivery then carries a TLS state
	// with it, so reverse_proxy sends X-Forwarded-Proto https and the
	// route's scheme-dependent matchers and placeholders see what a
	// synchronous forward saw.
	TLSServerName string
}

// targetField prefixes the fields of a Target in a queued message's
// header: a colon starts no header name a request can carry.
const targetField = ":dws-"

var errNoTarget = errors.New("the queued notification names no request target")

// QueuedHeader returns what a queued notification keeps of request r for
// its delivery: the headers a synchronous forward of body would carry
// (PrepareForward on a copy, so r is left alone) and t. The body is kept
// beside it.
func QueuedHeader(r *http.Request, body []byte, f Forwarded, keepSignature bool, t Target) http.Header {
	fr := &http.Request{Header: r.Header.Clone()}
	if fr.Header == nil {
		fr.Header = http.Header{}
	}
	PrepareForward(fr, body, f, keepSignature)
	for name, v := range map[string]string{"server": t.Server, "listen": t.Listen, "tls": t.TLSServerName, "host": t.Host, "uri": t.URI, "remote": t.RemoteAddr} {
		fr.Header[targetField+name] = []string{v}
	}
	return fr.Header
}

// NewDelivery builds the request that delivers a queued notification: a
// POST of body to the target's request target and Host, from its peer
// address, with the header kept by QueuedHeader (the target's fields
// removed), an exact Content-Length, and ctx.
func NewDelivery(ctx context.Context, h http.Header, body []byte) (*http.Request, Target, error) {
	var t Target
	hdr := make(http.Header, len(h))
	for name, v := range h {
		switch {
		case !strings.HasPrefix(name, targetField):
			hdr[name] = append([]string(nil), v...)
		case len(v) != 1:
		case name == targetField+"server":
			t.Server = v[0]
		case name == targetField+"listen":
			t.Listen = v[0]
		case name == targetField+"tls":
			t.TLSServerName = v[0]
		case name == targetField+"host":
			t.Host = v[0]
		case name == targetField+"uri":
			t.URI = v[0]
		case name == targetField+"remote":
			t.RemoteAddr = v[0]
		}
	}
	if t.URI == "" {
		return nil, t, errNoTarget
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URI, bytes.NewReader(body))
	if err != nil {
		return nil, t, err
	}
	r.RequestURI = t.URI
	r.Host = t.Host
	r.RemoteAddr = t.RemoteAddr
	if t.TLSServerName != "" {
		r.TLS = &tls.ConnectionState{HandshakeComplete: true}
		if t.TLSServerName != "-" {
			r.TLS.ServerName = t.TLSServerName
		}
	}
	r.Header = hdr
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	r.ContentLength = int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return r, t, nil
}
