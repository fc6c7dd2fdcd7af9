package dwshttp

import (
	"net/http"
	"testing"
)

// BenchmarkPrepareForward turns a notification's request into the
// forwarded one, as the gateway does once per first-seen notification.
func BenchmarkPrepareForward(b *testing.B) {
	body := make([]byte, 706)
	f := Forwarded{API: "addPaymentMethod", ClientID: "2188120000000000", Key: "20990501203220303032821078591", RequestID: "20990501203220303032821078591", KeyVersion: 1}
	hdr := http.Header{
		"Content-Type":   {"application/json; charset=UTF-8"},
		"Content-Length": {"706"},
		"Client-Id":      {"2188120000000000"},
		"Request-Time":   {"2099-05-01T20:32:20+08:00"},
		"Signature":      {"algorithm=RSA256,keyVersion=1,signature=abc"},
	}
	r := &http.Request{}
	b.ReportAllocs()
	for b.Loop() {
		r.Header = hdr.Clone()
		PrepareForward(r, body, f, false)
	}
}
