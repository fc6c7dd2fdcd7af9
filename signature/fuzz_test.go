package signature

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/. Run for example:
//
//	go test -run '^$' -fuzz '^FuzzParseHeader$' -fuzztime 30s ./signature/

var headerSentinels = []error{ErrMissing, ErrMalformed, ErrUnsupportedAlgorithm, ErrBadEncoding}

func FuzzParseHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, v string) {
		h, err := ParseHeader(v)
		var buf [512]byte
		h2, err2 := parseHeader(v, buf[:0])
		if (err == nil) != (err2 == nil) || !bytes.Equal(h.Signature, h2.Signature) {
			t.Fatalf("ParseHeader and parseHeader with a buffer disagree: %v / %v", err, err2)
		}
		if err != nil {
			n := 0
			for _, s := range headerSentinels {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %v wraps %d header sentinels, want 1", err, n)
			}
			if h.Algorithm != "" || h.Signature != nil || h.HasKeyVersion {
				t.Fatalf("non-zero Header with error: %+v", h)
			}
			return
		}
		if !strings.EqualFold(h.Algorithm, Algorithm) {
			t.Fatalf("accepted algorithm %q", h.Algorithm)
		}
		if len(h.Signature) == 0 || len(h.Signature) > MaxSignatureSize {
			t.Fatalf("accepted a %d-byte signature", len(h.Signature))
		}
		if h.KeyVersion < 0 || h.KeyVersion > math.MaxInt32 || (!h.HasKeyVersion && h.KeyVersion != 0) {
			t.Fatalf("keyVersion %d (present %v)", h.KeyVersion, h.HasKeyVersion)
		}
		// What the package writes, it reads back identically.
		again, err := ParseHeader(string(AppendHeader(nil, h.KeyVersion, h.Signature)))
		if err != nil || again.KeyVersion != h.KeyVersion || !bytes.Equal(again.Signature, h.Signature) {
			t.Fatalf("round trip: %+v, %v", again, err)
		}
	})
}

func FuzzParseRequestTime(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseRequestTime(s)
		if err != nil {
			if !errors.Is(err, ErrBadRequestTime) {
				t.Fatalf("error %v does not wrap ErrBadRequestTime", err)
			}
			return
		}
		if got.Location() != time.UTC {
			t.Fatalf("result in %v, want UTC", got.Location())
		}
		if n, ok := digits(s); ok {
			var want time.Time
			switch len(s) {
			case 10:
				want = time.Unix(int64(n), 0)
			case 13:
				want = time.UnixMilli(int64(n))
			case 16:
				want = time.UnixMicro(int64(n))
			case 19:
				if n > math.MaxInt64 {
					t.Fatalf("accepted %q, past the last int64 nanosecond", s)
				}
				want = time.Unix(0, int64(n))
			default:
				t.Fatalf("accepted an epoch number of %d digits: %q", len(s), s)
			}
			if !got.Equal(want) {
				t.Fatalf("%q = %v, want %v", s, got, want)
			}
			return
		}
		// Every ISO 8601 form accepted is one the standard library parses
		// to the same instant.
		layout := time.RFC3339Nano
		if !strings.HasSuffix(s, "Z") && s[len(s)-3] != ':' {
			layout = "2006-01-02T15:04:05.999999999Z0700"
		}
		std, err := time.Parse(layout, s)
		if err != nil {
			t.Fatalf("accepted %q, which time.Parse refuses: %v", s, err)
		}
		if !std.Equal(got) {
			t.Fatalf("%q = %v, time.Parse says %v", s, got, std)
		}
		// And the Response-Time form of the instant parses back (ISO 8601
		// four-digit years only: an offset can push year 0000 into -0001).
		if y := got.Year(); y < 0 || y > 9999 {
			return
		}
		back, err := ParseRequestTime(FormatResponseTime(got))
		if err != nil || !back.Equal(got.Truncate(time.Second)) {
			t.Fatalf("FormatResponseTime(%v) does not parse back: %v, %v", got, back, err)
		}
	})
}
