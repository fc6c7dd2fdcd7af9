package dwshttp

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A queued notification keeps what a synchronous forward would send and
// where it came from; the delivery request rebuilt from it carries the
// same headers, the exact body with its length, and the target, while the
// request it was taken from is left alone.
func TestQueuedHeaderAndDelivery(t *testing.T) {
	body := []byte(`{"requestId":"r1"}`)
	r := httptest.NewRequest(http.MethodPost, "/dws/notify/add?x=1", strings.NewReader(string(body)))
	r.Header.Set("Client-Id", "c1")
	r.Header.Set("Signature", "algorithm=RSA256,signature=abc")
	r.Header.Set("Connection", "X-Dws-Verified")
	r.Header.Set("X-Dws-Verified", "forged")
	before := r.Header.Clone()
	target := Target{Server: "srv0", Host: "notify.example.com", URI: "/dws/notify/add?x=1", RemoteAddr: "10.0.0.9:4321"}
	h := QueuedHeader(r, body, Forwarded{API: "addPaymentMethod", ClientID: "c1", RequestID: "r1", KeyVersion: 2}, false, target)
	if len(r.Header) != len(before) || r.Header.Get("X-Dws-Verified") != "forged" {
		t.Fatalf("the request's header changed: %v", r.Header)
	}

	d, got, err := NewDelivery(context.Background(), h, body)
	if err != nil {
		t.Fatal(err)
	}
	if got != target {
		t.Fatalf("target %+v, want %+v", got, target)
	}
	if d.Method != http.MethodPost || d.RequestURI != target.URI || d.URL.Path != "/dws/notify/add" || d.URL.RawQuery != "x=1" || d.Host != target.Host || d.RemoteAddr != target.RemoteAddr {
		t.Fatalf("delivery request %s %s (path %s, query %s) host %s from %s", d.Method, d.RequestURI, d.URL.Path, d.URL.RawQuery, d.Host, d.RemoteAddr)
	}
	for name, want := range map[string]string{"Client-Id": "c1", "X-Dws-Api": "addPaymentMethod", "X-Dws-Request-Id": "r1",
		"X-Dws-Key-Version": "2", "X-Dws-Verified": "true", "Content-Length": "18", "Signature": "", "Connection": ""} {
		if v := d.Header.Get(name); v != want {
			t.Errorf("delivery %s: %q, want %q", name, v, want)
		}
	}
	for name := range d.Header {
		if strings.HasPrefix(name, targetField) {
			t.Errorf("the target field %s reached the delivery's header", name)
		}
	}
	b, _ := io.ReadAll(d.Body)
	if string(b) != string(body) || d.ContentLength != int64(len(body)) {
		t.Fatalf("body %q, length %d", b, d.ContentLength)
	}
	if _, _, err := NewDelivery(context.Background(), http.Header{"X-Dws-Api": {"a"}}, body); err == nil {
		t.Fatal("a header without a target made a delivery")
	}
}
