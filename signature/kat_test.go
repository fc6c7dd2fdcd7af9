package signature

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
)

// antomKAT is testdata/antom-sandbox-signature.json: a real signature made
// by the Alipay (Antom) sandbox gateway.
type antomKAT struct {
	PublicKey  string   `json:"public_key_base64_spki"`
	Method     string   `json:"method"`
	URI        string   `json:"uri"`
	ClientID   string   `json:"client_id"`
	Time       string   `json:"time"`
	Body       string   `json:"body"`
	BodySHA256 string   `json:"body_sha256"`
	Header     string   `json:"signature_header_value"`
	MustFail   []string `json:"must_fail"`
}

func loadKAT(t testing.TB) (antomKAT, *KeyRing, *rsa.PublicKey) {
	t.Helper()
	raw, err := os.ReadFile("testdata/antom-sandbox-signature.json")
	if err != nil {
		t.Fatal(err)
	}
	var kat antomKAT
	if err := json.Unmarshal(raw, &kat); err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicKey(kat.PublicKey)
	if err != nil {
		t.Fatalf("ParsePublicKey(KAT key): %v", err)
	}
	return kat, ringWith(t, kat.ClientID, pub), pub
}

func TestAntomSandboxSignatureVerifies(t *testing.T) {
	kat, ring, _ := loadKAT(t)
	body := []byte(kat.Body)
	if got := sha256.Sum256(body); hex.EncodeToString(got[:]) != kat.BodySHA256 {
		t.Fatalf("body SHA-256 %x, file says %s", got, kat.BodySHA256)
	}
	// SHA-256 of the whole content, from the research report (section 9).
	const contentSHA256 = "577af41066b667e176a07c36cc32597521c443ae7ea7a0120f435dd59dd04e20"
	d := Digest(kat.URI, kat.ClientID, kat.Time, body)
	if hex.EncodeToString(d[:]) != contentSHA256 {
		t.Fatalf("Digest = %x, want %s", d, contentSHA256)
	}
	content := AppendSignedContent(nil, kat.URI, kat.ClientID, kat.Time, body)
	if len(content) != 1836 || sha256.Sum256(content) != d {
		t.Fatalf("AppendSignedContent: %d bytes, digest %x", len(content), sha256.Sum256(content))
	}
	v, err := ring.Verify(kat.ClientID, kat.URI, kat.Time, body, kat.Header)
	if err != nil || v != 1 {
		t.Fatalf("Verify(KAT) = %d, %v; want 1, nil", v, err)
	}

	// The same signature un-encoded (raw Base64) and with lower-case hex.
	_, enc, _ := strings.Cut(kat.Header, "signature=")
	rawB64, err := url.PathUnescape(enc)
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]string{
		"raw base64":     "algorithm=RSA256,keyVersion=1,signature=" + rawB64,
		"lower-case hex": "algorithm=RSA256,keyVersion=1,signature=" + lowerHexEscapes(enc),
		"spaces, order":  "signature=" + enc + ", keyVersion=1, algorithm=rsa256",
		"no keyVersion":  "algorithm=RSA256,signature=" + enc,
	} {
		if v, err := ring.Verify(kat.ClientID, kat.URI, kat.Time, body, h); err != nil || v != 1 {
			t.Errorf("%s: Verify = %d, %v; want 1, nil", name, v, err)
		}
	}
}

// lowerHexEscapes rewrites %XX escapes with lower-case hex digits.
func lowerHexEscapes(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			b.WriteString(strings.ToLower(s[i : i+3]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// TestAntomSandboxMustFail builds every must_fail variant listed in the
// file and checks that each is rejected.
func TestAntomSandboxMustFail(t *testing.T) {
	kat, ring, pub := loadKAT(t)
	body := []byte(kat.Body)
	h, err := ParseHeader(kat.Header)
	if err != nil {
		t.Fatal(err)
	}
	// verifyContent checks the KAT signature over hand-built content, for
	// variants the Verify API cannot express (method, line break).
	verifyContent := func(content []byte) error {
		d := sha256.Sum256(content)
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], h.Signature)
	}
	// Sanity: the hand-built content of the genuine request verifies, so a
	// failure below is due to the variant.
	genuine := "POST " + kat.URI + "\n" + kat.ClientID + "." + kat.Time + "." + kat.Body
	if err := verifyContent([]byte(genuine)); err != nil {
		t.Fatalf("genuine hand-built content: %v", err)
	}

	var indented bytes.Buffer
	if err := json.Indent(&indented, body, "", "  "); err != nil {
		t.Fatal(err)
	}
	var decoded any
	if err := json.Unmarshal(body, &decoded); err != nil {
		t.Fatal(err)
	}
	remarshalled, err := json.Marshal(decoded)
	if err != nil {
		t.Fatal(err)
	}
	_, enc, _ := strings.Cut(kat.Header, "signature=")
	rawB64, _ := url.PathUnescape(enc)
	formDecoded, err := url.QueryUnescape(rawB64)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(formDecoded, " ") {
		t.Fatal("form-decoding did not turn any + into a space; the variant tests nothing")
	}

	type variant struct {
		match    string // substring of the must_fail description; "" for an extra variant
		name     string
		verify   func() error
		wantKind error
	}
	viaRing := func(uri, clientID, tm string, body []byte, header string) func() error {
		return func() error {
			_, err := ring.Verify(clientID, uri, tm, body, header)
			return err
		}
	}
	variants := []variant{
		{"pretty-printed", "indented body", viaRing(kat.URI, kat.ClientID, kat.Time, indented.Bytes(), kat.Header), ErrVerificationFailed},
		{"re-serialised", "json.Marshal body", viaRing(kat.URI, kat.ClientID, kat.Time, remarshalled, kat.Header), ErrVerificationFailed},
		{"trailing newline", "body + LF", viaRing(kat.URI, kat.ClientID, kat.Time, append([]byte(kat.Body), '\n'), kat.Header), ErrVerificationFailed},
		{"CRLF", "CRLF", func() error {
			return verifyContent([]byte("POST " + kat.URI + "\r\n" + kat.ClientID + "." + kat.Time + "." + kat.Body))
		}, rsa.ErrVerification},
		{"lower case", "method post", func() error {
			return verifyContent([]byte("post " + kat.URI + "\n" + kat.ClientID + "." + kat.Time + "." + kat.Body))
		}, rsa.ErrVerification},
		{"?a=1", "query appended", viaRing(kat.URI+"?a=1", kat.ClientID, kat.Time, body, kat.Header), ErrVerificationFailed},
		{"uri /ams/api/v1/payments/pay", "production uri", viaRing("/ams/api/v1/payments/pay", kat.ClientID, kat.Time, body, kat.Header), ErrVerificationFailed},
		{"+00:00", "time +00:00", viaRing(kat.URI, kat.ClientID, "2025-05-19T01:52:32+00:00", body, kat.Header), ErrVerificationFailed},
		{"", "time + LF (extra)", viaRing(kat.URI, kat.ClientID, kat.Time+"\n", body, kat.Header), ErrVerificationFailed},
		{"client id lower-cased", "client id lower-cased", func() error {
			lower := strings.ToLower(kat.ClientID)
			// The ring is keyed by the exact Client-Id; register the key
			// under the lower-cased id too so the content is what fails.
			r := ringWith(t, lower, pub)
			_, err := r.Verify(lower, kat.URI, kat.Time, body, kat.Header)
			return err
		}, ErrVerificationFailed},
		{"form-decoded", "+ became space", viaRing(kat.URI, kat.ClientID, kat.Time, body, "algorithm=RSA256,keyVersion=1,signature="+formDecoded), ErrBadEncoding},
	}
	if bytes.Equal(indented.Bytes(), body) || bytes.Equal(remarshalled, body) {
		t.Fatal("a re-serialised body equals the original; the variant tests nothing")
	}

	run := func(v variant) {
		t.Run(v.name, func(t *testing.T) {
			if err := v.verify(); !errors.Is(err, v.wantKind) {
				t.Fatalf("error %v, want %v", err, v.wantKind)
			}
		})
	}
	used := make([]bool, len(variants))
	for i, v := range variants {
		if v.match == "" {
			used[i] = true
			run(v)
		}
	}
	for _, desc := range kat.MustFail {
		found := false
		for i, v := range variants {
			if v.match == "" || !strings.Contains(desc, v.match) {
				continue
			}
			found, used[i] = true, true
			run(v)
		}
		if !found {
			t.Errorf("no variant built for must_fail entry %q", desc)
		}
	}
	for i, u := range used {
		if !u {
			t.Errorf("variant %q matches no must_fail entry", variants[i].name)
		}
	}
}
