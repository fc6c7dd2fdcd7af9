package dwshttp

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Forwarded are the X-Dws-* headers a forwarded notification carries.
type Forwarded struct {
	API, ClientID string
	// Key is the notification's idempotency key (notification.Result.Key),
	// sent as X-Dws-Idempotency-Key: header-safe as it is.
	Key string
	// RequestID is sent as X-Dws-Request-Id when it is not empty: the
	// requestId of a DWS notification (the same as its Key). Antom bodies
	// have no requestId, so their calls do not get the header.
	RequestID  string
	KeyVersion int
}

// PrepareForward turns the verified request r into the one the backend
// gets: the sender's hop-by-hop headers and anything that looks like an
// X-Dws-* header removed (X-Dws-Request-Id included when f has none to
// set), the Signature removed unless keepSignature, the
// X-Dws-* headers of f set with X-Dws-Verified: true, and body (the exact
// bytes that were verified) as the body, with a fixed Content-Length and
// no trailers: the sender's trailers (read with a chunked body) would
// otherwise reach the backend after it, where they could shadow the
// X-Dws-* headers.
func PrepareForward(r *http.Request, body []byte, f Forwarded, keepSignature bool) {
	DropSenderHopHeaders(r.Header)
	for name := range r.Header {
		if IsDwsHeader(name) {
			delete(r.Header, name)
		}
	}
	if !keepSignature {
		delete(r.Header, "Signature")
	}
	for _, name := range signedHeaders {
		dropEmptyLines(r.Header, name)
	}
	r.Trailer = nil
	// The values share one backing array (one allocation instead of
	// seven), each cut to its own capacity so that an append to one header
	// never reaches the next; the names are canonical, as Set would make
	// them.
	vals := [...]string{f.API, f.ClientID, f.Key, f.RequestID, strconv.Itoa(f.KeyVersion), "true", strconv.Itoa(len(body))}
	r.Header["X-Dws-Api"] = vals[0:1:1]
	r.Header["X-Dws-Client-Id"] = vals[1:2:2]
	r.Header["X-Dws-Idempotency-Key"] = vals[2:3:3]
	if f.RequestID != "" {
		r.Header["X-Dws-Request-Id"] = vals[3:4:4]
	}
	r.Header["X-Dws-Key-Version"] = vals[4:5:5]
	r.Header["X-Dws-Verified"] = vals[5:6:6]
	r.Header["Content-Length"] = vals[6:7:7]
	r.TransferEncoding = nil
	r.ContentLength = int64(len(body))
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
}

// signedHeaders are the request headers the signature check reads. It
// counts only their non-empty lines (HeaderOnce), so an empty line beside
// the value checked is no second copy; it must not reach the backend
// either, whose r.Header.Get would read "" before the verified value.
var signedHeaders = [...]string{"Client-Id", "Request-Time", "Key-Version", "Signature"}

// dropEmptyLines removes the header's empty lines, keeping the others in
// their order. A header without an empty line is left as it is.
func dropEmptyLines(hdr http.Header, name string) {
	vs := hdr[name]
	if !slices.Contains(vs, "") {
		return
	}
	vs = slices.DeleteFunc(slices.Clone(vs), func(v string) bool { return v == "" })
	if len(vs) == 0 {
		delete(hdr, name)
		return
	}
	hdr[name] = vs
}

// senderHopHeaders are the hop-by-hop request headers: meant for this
// gateway, never for the backend.
var senderHopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Expect"}

// DropSenderHopHeaders removes the headers the sender's Connection header
// names, as a proxy must (RFC 9110 §7.6.1), then the hop-by-hop headers
// themselves. reverse_proxy does the same after dws_notify, so without
// this a sender could name X-Dws-Verified in Connection and have the
// header the gateway set removed on the way to the backend; an Upgrade
// would turn the forward into a protocol switch.
func DropSenderHopHeaders(hdr http.Header) {
	for _, field := range [...]string{"Connection", "Proxy-Connection"} {
		for _, v := range hdr[field] {
			for name := range strings.SplitSeq(v, ",") {
				if name = strings.TrimSpace(name); name != "" {
					hdr.Del(name)
				}
			}
		}
	}
	for _, name := range senderHopHeaders {
		delete(hdr, name)
	}
}

// IsDwsHeader reports whether a header name is, or looks like, one of the
// X-Dws-* headers the backend trusts: any letter case, and "_" or "." in
// place of either "-". Caddy drops such names unless the operator allows
// them (the servers options expected_underscore_headers and
// expected_dot_headers), and CGI, FastCGI and PHP backends fold "_", "."
// and "-" onto one variable name, so X_Dws_Verified would read as
// X-Dws-Verified there.
func IsDwsHeader(name string) bool {
	const prefix = "x-dws-"
	if len(name) < len(prefix) {
		return false
	}
	for i := range len(prefix) {
		c := name[i]
		switch {
		case c == '_' || c == '.':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}
