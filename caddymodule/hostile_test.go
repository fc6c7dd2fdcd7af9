package caddymodule

import (
	"net/http"
	"strings"
	"testing"
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
