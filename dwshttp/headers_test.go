package dwshttp

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/signature"
)

// These pin the helpers' own contracts; caddymodule's tests drive them
// through the handler, with hostile requests.

func TestHeaderOnce(t *testing.T) {
	h := http.Header{}
	if v, n := HeaderOnce(h, "Signature"); v != "" || n != 0 {
		t.Errorf("absent: %q %d", v, n)
	}
	h["Signature"] = []string{"", "a", ""}
	if v, n := HeaderOnce(h, "Signature"); v != "a" || n != 1 {
		t.Errorf("once among empty lines: %q %d", v, n)
	}
	h["Signature"] = append(h["Signature"], "b")
	if v, n := HeaderOnce(h, "Signature"); v != "" || n != 2 {
		t.Errorf("twice: %q %d, want no value", v, n)
	}
}

func TestUnsupportedCoding(t *testing.T) {
	for lines, want := range map[string]string{"": "", "identity": "", "Identity, identity": "", "identity,gzip": "gzip", " br ": "br"} {
		h := http.Header{"Content-Encoding": {lines}}
		got, ok := UnsupportedCoding(h)
		if got != want || ok != (want != "") {
			t.Errorf("%q: %q %v, want %q", lines, got, ok, want)
		}
	}
}

func TestSenderText(t *testing.T) {
	if s := SenderText(strings.Repeat("a", MaxSenderText)); len(s) != MaxSenderText {
		t.Errorf("a text at the bound was cut: %d bytes", len(s))
	}
	s := SenderText(strings.Repeat("é", MaxSenderText))
	if !strings.HasSuffix(s, "…") || len(s) > MaxSenderText+len("…") || !strings.HasPrefix(s, "éé") {
		t.Errorf("cut %q", s)
	}
}

func TestIsDwsHeader(t *testing.T) {
	for name, want := range map[string]bool{"X-Dws-Verified": true, "x_dws_verified": true, "X.Dws-Api": true, "X-Dws-": true, "X-Dw": false, "X-Dwsx": false, "Dws-Verified": false} {
		if got := IsDwsHeader(name); got != want {
			t.Errorf("%q: %v, want %v", name, got, want)
		}
	}
}

func TestPrepareForward(t *testing.T) {
	for _, c := range []struct {
		name string
		f    Forwarded
		want http.Header
	}{
		{"DWS", Forwarded{API: "addPaymentMethod", ClientID: "c", Key: "r", RequestID: "r", KeyVersion: 2},
			http.Header{"X-Dws-Api": {"addPaymentMethod"}, "X-Dws-Client-Id": {"c"}, "X-Dws-Idempotency-Key": {"r"}, "X-Dws-Request-Id": {"r"}, "X-Dws-Key-Version": {"2"}, "X-Dws-Verified": {"true"}, "Content-Length": {"4"}}},
		{"Antom: no requestId", Forwarded{API: "notifyPayment", ClientID: "c", Key: "p:PAYMENT_RESULT:S", KeyVersion: 1},
			http.Header{"X-Dws-Api": {"notifyPayment"}, "X-Dws-Client-Id": {"c"}, "X-Dws-Idempotency-Key": {"p:PAYMENT_RESULT:S"}, "X-Dws-Key-Version": {"1"}, "X-Dws-Verified": {"true"}, "Content-Length": {"4"}}},
	} {
		r, _ := http.NewRequest(http.MethodPost, "/n", strings.NewReader("sent"))
		r.Header = http.Header{"Connection": {"X-Custom"}, "X-Custom": {"1"}, "X_dws_verified": {"false"}, "Signature": {"s"}, "Keep-Alive": {"5"},
			"X-Dws-Request-Id": {"forged"}, "X-Dws-Idempotency-Key": {"forged"}, "X.dws.idempotency.key": {"forged"}}
		r.Trailer = http.Header{"X-Dws-Verified": {"false"}}
		PrepareForward(r, []byte("body"), c.f, false)
		if len(r.Header) != len(c.want) {
			t.Fatalf("%s: headers %v, want %v", c.name, r.Header, c.want)
		}
		for k, v := range c.want {
			if got := r.Header.Values(k); len(got) != 1 || got[0] != v[0] {
				t.Errorf("%s: %s: %q, want %q", c.name, k, got, v[0])
			}
		}
		if r.Trailer != nil || r.ContentLength != 4 {
			t.Errorf("%s: trailer %v, length %d", c.name, r.Trailer, r.ContentLength)
		}
	}
}

// An empty line of a signed header beside the one checked is no second
// copy to the signature check (HeaderOnce counts non-empty lines), so it
// must not reach the backend either: its r.Header.Get would read "" where
// the gateway verified a value.
func TestPrepareForwardDropsEmptySignedLines(t *testing.T) {
	for _, keep := range []bool{false, true} {
		r, _ := http.NewRequest(http.MethodPost, "/n", strings.NewReader("sent"))
		r.Header = http.Header{
			"Client-Id":    {"", "merchant-1"},
			"Request-Time": {"1685599933871", ""},
			"Key-Version":  {""},
			"Signature":    {"", "algorithm=RSA256,signature=x"},
			"X-Other":      {"", "kept"},
		}
		PrepareForward(r, []byte("body"), Forwarded{API: "a", ClientID: "merchant-1", Key: "k", RequestID: "k", KeyVersion: 1}, keep)
		want := map[string][]string{"Client-Id": {"merchant-1"}, "Request-Time": {"1685599933871"}, "Key-Version": nil, "X-Other": {"", "kept"}}
		if keep {
			want["Signature"] = []string{"algorithm=RSA256,signature=x"}
		} else {
			want["Signature"] = nil
		}
		for name, w := range want {
			if got := r.Header.Values(name); !slices.Equal(got, w) {
				t.Errorf("keepSignature %v: %s forwarded as %q, want %q", keep, name, got, w)
			}
		}
		if _, ok := r.Header["Key-Version"]; ok {
			t.Errorf("keepSignature %v: an all-empty Key-Version is still a header: %q", keep, r.Header["Key-Version"])
		}
	}
}

func TestRecorderKeepsTheFirstFinalStatus(t *testing.T) {
	rec := NewRecorder()
	rec.WriteHeader(http.StatusContinue)
	rec.Header().Set("Set-Cookie", "x")
	rec.WriteHeader(http.StatusConflict)
	rec.WriteHeader(http.StatusOK)
	_, _ = rec.Write([]byte("abc"))
	if rec.Status != http.StatusConflict || rec.Size != 3 {
		t.Fatalf("status %d size %d", rec.Status, rec.Size)
	}
	err := CallNext(func(http.ResponseWriter, *http.Request) error { panic(http.ErrAbortHandler) }, rec, nil)
	if err == nil || err.Error() != "backend response aborted" {
		t.Fatalf("a backend that aborts: %v", err)
	}
}

func TestSignatureMessageNamesNoValue(t *testing.T) {
	for _, err := range []error{signature.ErrMissing, signature.ErrUnsupportedAlgorithm, signature.ErrUnknownKeyVersion, signature.ErrBadEncoding, signature.ErrVerificationFailed, signature.ErrMalformed, errors.New("other")} {
		if m := SignatureMessage(err); m == "" || strings.Contains(m, "signature: ") {
			t.Errorf("%v: %q", err, m)
		}
	}
}

// Forward settles a forward as both callers need: a written status
// decides, even when the handler returns after the deadline; without
// one, the deadline or the missing answer is the error.
func TestForwardSettles(t *testing.T) {
	const limit = 50 * time.Millisecond
	for _, c := range []struct {
		name    string
		next    func(http.ResponseWriter, *http.Request) error
		status  int
		wantErr error // nil: none; errAny: some other error
	}{
		{"answered", func(w http.ResponseWriter, r *http.Request) error { w.WriteHeader(204); return nil }, 204, nil},
		{"answered, returned after the deadline", func(w http.ResponseWriter, r *http.Request) error {
			w.WriteHeader(200)
			<-r.Context().Done()
			return nil
		}, 200, nil},
		{"no answer in time", func(w http.ResponseWriter, r *http.Request) error { <-r.Context().Done(); return nil }, 0, ErrNoAnswerInTime},
		{"no answer", func(http.ResponseWriter, *http.Request) error { return nil }, 0, ErrNoAnswer},
		// reverse_proxy writes the backend's status, then fails the copy
		// of a body that breaks or is still coming at the deadline: the
		// status settles it.
		{"an error after a status", func(w http.ResponseWriter, r *http.Request) error {
			w.WriteHeader(200)
			return errors.New("copy failed")
		}, 200, nil},
		{"aborted after a status", func(w http.ResponseWriter, r *http.Request) error {
			w.WriteHeader(200)
			panic(http.ErrAbortHandler)
		}, 200, nil},
		{"aborted after a 502", func(w http.ResponseWriter, r *http.Request) error {
			w.WriteHeader(502)
			panic(http.ErrAbortHandler)
		}, 502, nil},
		{"aborted", func(http.ResponseWriter, *http.Request) error { panic(http.ErrAbortHandler) }, 0, errAny},
	} {
		r, _ := http.NewRequest(http.MethodPost, "/n", nil)
		status, _, err := Forward(c.next, r, limit)
		switch {
		case status != c.status:
			t.Errorf("%s: status %d, want %d", c.name, status, c.status)
		case c.wantErr == nil && err != nil, c.wantErr == errAny && (err == nil || errors.Is(err, ErrNoAnswer) || errors.Is(err, ErrNoAnswerInTime)),
			c.wantErr != nil && c.wantErr != errAny && !errors.Is(err, c.wantErr):
			t.Errorf("%s: error %v, want %v", c.name, err, c.wantErr)
		}
	}
}

var errAny = errors.New("any other error")
