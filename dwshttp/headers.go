// Package dwshttp holds the HTTP mechanics of the dws_notify gateway's
// request pipeline that need nothing of Caddy: the header rules a
// notification must meet, reading its body under a size limit and a
// deadline, the forwarded request's hygiene (hop-by-hop headers, look-alike
// X-Dws-* headers, the exact body), the recorder that keeps the backend's
// answer away from DWS, the Response-Time text, the envelope message of a
// signature failure, and the requestId of a refused body for its log line.
// caddymodule's ServeHTTP strings them together.
package dwshttp

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/dwsnotify/dws_notify/signature"
)

// AnyValue reports whether any line of the header has a non-empty value.
func AnyValue(h http.Header, name string) bool {
	for _, v := range h.Values(name) {
		if v != "" {
			return true
		}
	}
	return false
}

// UnsupportedCoding returns the first content coding, on any line of the
// Content-Encoding header and in any comma-separated list, that is not
// identity: the body is verified and forwarded as it came, so it must
// not be encoded in any way.
func UnsupportedCoding(h http.Header) (string, bool) {
	for _, line := range h.Values("Content-Encoding") {
		for coding := range strings.SplitSeq(line, ",") {
			coding = strings.TrimSpace(coding)
			if coding != "" && !strings.EqualFold(coding, "identity") {
				return coding, true
			}
		}
	}
	return "", false
}

// MaxSenderText bounds text that an unauthenticated sender controls
// (a header value) where it reaches a log field or an answer.
const MaxSenderText = 64

// SenderText returns s cut to at most MaxSenderText bytes, on a rune
// boundary, with "…" appended when it was cut.
func SenderText(s string) string { return CutText(s, MaxSenderText) }

// CutText returns s cut to at most n bytes, on a rune boundary, with "…"
// appended when it was cut.
func CutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// SingleHeader returns the header's value when it is present exactly once
// and not empty.
func SingleHeader(h http.Header, name string) (string, bool) {
	v, n := HeaderOnce(h, name)
	return v, n == 1
}

// HeaderOnce returns how many times the header is present with a non-empty
// value, and that value when it is present exactly once.
func HeaderOnce(h http.Header, name string) (string, int) {
	value, n := "", 0
	for _, s := range h.Values(name) {
		if s != "" {
			value, n = s, n+1
		}
	}
	if n != 1 {
		return "", n
	}
	return value, 1
}

// requestURI is the request target as DWS sent it: path plus query, from
// a request's RequestURI and URL.
func RequestURI(target string, u *url.URL) string {
	if strings.HasPrefix(target, "/") {
		return target
	}
	return u.RequestURI()
}

// SignatureMessage is the envelope message for a signature failure; it
// never contains the signature value.
func SignatureMessage(err error) string {
	switch {
	case errors.Is(err, signature.ErrMissing):
		return "Signature is missing"
	case errors.Is(err, signature.ErrUnsupportedAlgorithm):
		return "Signature algorithm is not supported (only RSA256)"
	case errors.Is(err, signature.ErrUnknownKeyVersion):
		return "Signature keyVersion is not configured"
	case errors.Is(err, signature.ErrBadEncoding):
		return "Signature value is not valid Base64"
	case errors.Is(err, signature.ErrVerificationFailed):
		return "signature verification failed"
	}
	return "Signature header is malformed"
}
