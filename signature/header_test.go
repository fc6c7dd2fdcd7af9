package signature

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// testSig is 256 bytes whose standard Base64 contains "+", "/" and "=".
var testSig = func() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i*37 + 251)
	}
	return b
}()

func TestTestSigCoversAlphabet(t *testing.T) {
	s := base64.StdEncoding.EncodeToString(testSig)
	for _, c := range "+/=" {
		if !strings.ContainsRune(s, c) {
			t.Fatalf("Base64 of testSig lacks %q; header tests would not exercise it", c)
		}
	}
}

func TestParseHeader(t *testing.T) {
	raw := base64.StdEncoding.EncodeToString(testSig)
	enc := strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(raw)
	lowerEnc := strings.NewReplacer("+", "%2b", "/", "%2f", "=", "%3d").Replace(raw)
	partial := strings.ReplaceAll(raw, "/", "%2F") // "+" and "=" left raw
	v1 := func(alg string) Header {
		return Header{Algorithm: alg, KeyVersion: 1, HasKeyVersion: true, Signature: testSig}
	}
	tests := []struct {
		name string
		in   string
		want Header
	}{
		{"sdk form", "algorithm=RSA256,keyVersion=1,signature=" + enc, v1("RSA256")},
		{"doc form, spaces after commas", "algorithm=RSA256, keyVersion=1, signature=" + enc, v1("RSA256")},
		{"tabs and spaces everywhere", " \talgorithm = RSA256 ,\tkeyVersion= 1 , signature =" + enc + " \t", v1("RSA256")},
		{"signature first", "signature=" + enc + ",algorithm=RSA256,keyVersion=1", v1("RSA256")},
		{"keyVersion last", "algorithm=RSA256,signature=" + enc + ",keyVersion=1", v1("RSA256")},
		{"algorithm lower case", "algorithm=rsa256,keyVersion=1,signature=" + enc, v1("rsa256")},
		{"algorithm mixed case", "algorithm=Rsa256,keyVersion=1,signature=" + enc, v1("Rsa256")},
		{"key names in other case", "Algorithm=RSA256,KEYVERSION=1,Signature=" + enc, v1("RSA256")},
		{"lower-case hex", "algorithm=RSA256,keyVersion=1,signature=" + lowerEnc, v1("RSA256")},
		{"raw base64", "algorithm=RSA256,keyVersion=1,signature=" + raw, v1("RSA256")},
		{"partly encoded, + kept", "algorithm=RSA256,keyVersion=1,signature=" + partial, v1("RSA256")},
		{"no keyVersion", "algorithm=RSA256,signature=" + enc, Header{Algorithm: "RSA256", Signature: testSig}},
		{"keyVersion 0", "algorithm=RSA256,keyVersion=0,signature=" + enc, Header{Algorithm: "RSA256", HasKeyVersion: true, Signature: testSig}},
		{"keyVersion leading zeros", "algorithm=RSA256,keyVersion=007,signature=" + enc, Header{Algorithm: "RSA256", KeyVersion: 7, HasKeyVersion: true, Signature: testSig}},
		{"keyVersion max", "algorithm=RSA256,keyVersion=2147483647,signature=" + enc, Header{Algorithm: "RSA256", KeyVersion: 2147483647, HasKeyVersion: true, Signature: testSig}},
		// The grammar bounds the value, not the digits (signature/doc.go):
		// leading zeros past ten digits still name a version.
		{"keyVersion 11 digits, leading zeros", "algorithm=RSA256,keyVersion=00000000001,signature=" + enc, v1("RSA256")},
		{"keyVersion max after leading zeros", "algorithm=RSA256,keyVersion=0000002147483647,signature=" + enc, Header{Algorithm: "RSA256", KeyVersion: 2147483647, HasKeyVersion: true, Signature: testSig}},
		{"unknown keys ignored", "charset=UTF-8,algorithm=RSA256,foo=a=b,keyVersion=1,empty=,signature=" + enc, v1("RSA256")},
		{"unknown key repeated", "x=1,algorithm=RSA256,x=2,keyVersion=1,signature=" + enc, v1("RSA256")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseHeader(tt.in)
			if err != nil {
				t.Fatalf("ParseHeader: %v", err)
			}
			if got.Algorithm != tt.want.Algorithm || got.KeyVersion != tt.want.KeyVersion ||
				got.HasKeyVersion != tt.want.HasKeyVersion || !bytes.Equal(got.Signature, tt.want.Signature) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseHeaderErrors(t *testing.T) {
	raw := base64.StdEncoding.EncodeToString(testSig)
	enc := strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(raw)
	hdr := func(sig string) string { return "algorithm=RSA256,keyVersion=1,signature=" + sig }
	tooLong := base64.StdEncoding.EncodeToString(make([]byte, MaxSignatureSize+1))
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrMissing},
		{"blank", " \t ", ErrMissing},
		{"no signature", "algorithm=RSA256,keyVersion=1", ErrMalformed},
		{"no algorithm", "keyVersion=1,signature=" + enc, ErrMalformed},
		{"only unknown keys", "foo=bar", ErrMalformed},
		{"empty parameter", "algorithm=RSA256,,signature=" + enc, ErrMalformed},
		{"trailing comma", hdr(enc) + ",", ErrMalformed},
		{"leading comma", "," + hdr(enc), ErrMalformed},
		{"parameter without =", "algorithm=RSA256,keyVersion,signature=" + enc, ErrMalformed},
		{"no = at all", "RSA256 " + enc, ErrMalformed},
		{"empty name", "algorithm=RSA256,=1,signature=" + enc, ErrMalformed},
		{"duplicate algorithm", "algorithm=RSA256,algorithm=RSA256,signature=" + enc, ErrMalformed},
		{"duplicate keyVersion", "algorithm=RSA256,keyVersion=1,keyVersion=1,signature=" + enc, ErrMalformed},
		{"duplicate signature", hdr(enc) + ",signature=" + enc, ErrMalformed},
		{"duplicate in other case", hdr(enc) + ",Signature=" + enc, ErrMalformed},
		{"empty algorithm", "algorithm=,signature=" + enc, ErrMalformed},
		{"empty keyVersion", "algorithm=RSA256,keyVersion=,signature=" + enc, ErrMalformed},
		{"empty signature", "algorithm=RSA256,keyVersion=1,signature=", ErrMalformed},
		{"empty signature with spaces", "algorithm=RSA256,keyVersion=1,signature=  ", ErrMalformed},
		{"keyVersion negative", "algorithm=RSA256,keyVersion=-1,signature=" + enc, ErrMalformed},
		{"keyVersion plus sign", "algorithm=RSA256,keyVersion=+1,signature=" + enc, ErrMalformed},
		{"keyVersion decimal", "algorithm=RSA256,keyVersion=1.0,signature=" + enc, ErrMalformed},
		{"keyVersion word", "algorithm=RSA256,keyVersion=one,signature=" + enc, ErrMalformed},
		{"keyVersion inner space", "algorithm=RSA256,keyVersion=1 2,signature=" + enc, ErrMalformed},
		{"keyVersion above int32", "algorithm=RSA256,keyVersion=2147483648,signature=" + enc, ErrMalformed},
		{"keyVersion 11 digits", "algorithm=RSA256,keyVersion=99999999999,signature=" + enc, ErrMalformed},
		{"keyVersion above int32 after leading zeros", "algorithm=RSA256,keyVersion=0002147483648,signature=" + enc, ErrMalformed},
		{"keyVersion above int64", "algorithm=RSA256,keyVersion=18446744073709551617,signature=" + enc, ErrMalformed},
		{"malformed before unsupported", "algorithm=ECC224,keyVersion=x,signature=" + enc, ErrMalformed},
		{"ECC224", "algorithm=ECC224,keyVersion=1,signature=" + enc, ErrUnsupportedAlgorithm},
		{"RSA", "algorithm=RSA,keyVersion=1,signature=" + enc, ErrUnsupportedAlgorithm},
		{"RSA2048", "algorithm=RSA2048,keyVersion=1,signature=" + enc, ErrUnsupportedAlgorithm},
		{"SHA256withRSA", "algorithm=SHA256withRSA,keyVersion=1,signature=" + enc, ErrUnsupportedAlgorithm},
		{"RSA256 with suffix", "algorithm=RSA256x,keyVersion=1,signature=" + enc, ErrUnsupportedAlgorithm},
		{"unsupported before encoding", "algorithm=ECC224,signature=%%%", ErrUnsupportedAlgorithm},
		{"truncated escape", hdr(enc[:len(enc)-2]), ErrBadEncoding},
		{"lone percent", hdr("%"), ErrBadEncoding},
		{"non-hex escape", hdr("%G1" + enc), ErrBadEncoding},
		{"double percent", hdr("%%2B" + enc), ErrBadEncoding},
		{"double-encoded", hdr(strings.ReplaceAll(enc, "%", "%25")), ErrBadEncoding},
		{"base64url alphabet", hdr(base64.URLEncoding.EncodeToString(testSig)), ErrBadEncoding},
		{"base64 without padding", hdr(base64.RawStdEncoding.EncodeToString(testSig)), ErrBadEncoding},
		{"form-decoded, + became space", hdr(strings.ReplaceAll(raw, "+", " ")), ErrBadEncoding},
		{"encoded space", hdr(strings.ReplaceAll(enc, "%2B", "%20")), ErrBadEncoding},
		{"non-canonical trailing bits", hdr("QR=="), ErrBadEncoding},
		{"encoded line feed", hdr(enc[:40] + "%0A" + enc[40:]), ErrBadEncoding},
		{"encoded carriage return", hdr(enc[:40] + "%0d" + enc[40:]), ErrBadEncoding},
		{"raw line feed", hdr(raw[:40] + "\n" + raw[40:]), ErrBadEncoding},
		{"value too long", hdr(strings.Repeat("A", maxEncodedLen+4)), ErrBadEncoding},
		{"decodes too long", hdr(tooLong), ErrBadEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseHeader(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseHeader = %+v, %v; want error %v", got, err, tt.want)
			}
			if got.Signature != nil || got.Algorithm != "" {
				t.Errorf("non-zero Header on error: %+v", got)
			}
			for _, s := range []string{raw, enc, raw[:20], enc[:20]} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error message %q contains signature text", err)
				}
			}
		})
	}
}

// TestParseHeaderUsesBuffer checks that the internal parser decodes into
// the caller's buffer when it is large enough, which keeps Verify
// allocation-free.
func TestParseHeaderUsesBuffer(t *testing.T) {
	h := "algorithm=RSA256,signature=" + base64.StdEncoding.EncodeToString(testSig)
	buf := make([]byte, 0, 512)
	got, err := parseHeader(h, buf)
	if err != nil {
		t.Fatal(err)
	}
	if &got.Signature[0] != &buf[:1][0] || !bytes.Equal(got.Signature, testSig) {
		t.Fatal("signature not decoded into the given buffer")
	}
	small := make([]byte, 0, 8)
	got, err = parseHeader(h, small)
	if err != nil || !bytes.Equal(got.Signature, testSig) {
		t.Fatalf("small buffer: %v", err)
	}
}

func TestAppendHeaderRoundTrip(t *testing.T) {
	for _, v := range []int{0, 1, 42, 2147483647} {
		h := string(AppendHeader(nil, v, testSig))
		want := fmt.Sprintf("algorithm=RSA256,keyVersion=%d,signature=", v)
		if !strings.HasPrefix(h, want) {
			t.Fatalf("header %q lacks prefix %q", h, want)
		}
		value := strings.TrimPrefix(h, want)
		if strings.ContainsAny(value, "+/=") || !strings.Contains(value, "%2B") ||
			!strings.Contains(value, "%2F") || !strings.HasSuffix(value, "%3D") {
			t.Fatalf("value not percent-encoded as %%2B %%2F %%3D: %q", value)
		}
		got, err := ParseHeader(h)
		if err != nil || got.KeyVersion != v || !got.HasKeyVersion || !bytes.Equal(got.Signature, testSig) {
			t.Fatalf("ParseHeader(AppendHeader(%d)) = %+v, %v", v, got, err)
		}
	}
}

func TestReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{ErrMissing, "missing"},
		{newError(ErrMalformed, "x"), "malformed"},
		{newError(ErrUnsupportedAlgorithm, "x"), "unsupported_algorithm"},
		{newError(ErrUnknownKeyVersion, "x"), "unknown_key_version"},
		{newError(ErrBadEncoding, "x"), "bad_encoding"},
		{newError(ErrVerificationFailed, "x"), "verification_failed"},
		{newError(ErrBadRequestTime, "x"), "bad_request_time"},
		{newError(ErrStale, "x"), "stale"},
		{fmt.Errorf("handler: %w", newError(ErrStale, "x")), "stale"},
		{errors.New("something else"), "other"},
	}
	for _, tt := range tests {
		if got := Reason(tt.err); got != tt.want {
			t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
	e := newError(ErrMalformed, "duplicate %s parameter", "keyVersion")
	if e.Error() != "signature: malformed header: duplicate keyVersion parameter" {
		t.Errorf("message %q", e)
	}
}

// ParseHeaderInto decodes into the caller's buffer when it is large
// enough, into a new slice when not, and parses as ParseHeader does.
func TestParseHeaderInto(t *testing.T) {
	k := testKey()
	v := mustHeader(t, k, 3, "/n", "c", "1685599933871", []byte("{}"))
	want, err := ParseHeader(v)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7, 512)
	got, err := ParseHeaderInto(v, buf)
	if err != nil {
		t.Fatal(err)
	}
	if got.Algorithm != want.Algorithm || got.KeyVersion != 3 || !got.HasKeyVersion || !bytes.Equal(got.Signature, want.Signature) {
		t.Fatalf("ParseHeaderInto: %+v, ParseHeader: %+v", got, want)
	}
	if &got.Signature[0] != &buf[:1][0] {
		t.Error("the signature was not decoded into the caller's buffer")
	}
	small := make([]byte, 16)
	got, err = ParseHeaderInto(v, small)
	if err != nil || !bytes.Equal(got.Signature, want.Signature) {
		t.Fatalf("into a small buffer: %v", err)
	}
	if bytes.Equal(small, got.Signature[:16]) {
		t.Error("a buffer too small was written to")
	}
	for _, bad := range []string{"garbage", "algorithm=RSA256", "algorithm=ECC224,signature=AAAA", "algorithm=RSA256,signature=AA%2"} {
		_, err1 := ParseHeader(bad)
		_, err2 := ParseHeaderInto(bad, buf)
		if err1 == nil || err2 == nil || err1.Error() != err2.Error() {
			t.Errorf("%q: ParseHeader %v, ParseHeaderInto %v", bad, err1, err2)
		}
	}
}
