package signature

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sdkKey parses a key the way Alipay's SDKs do: bare Base64 of the DER
// (SubjectPublicKeyInfo for public keys, PKCS#8 for private ones), nothing
// else accepted.
func sdkKey[K any](t *testing.T, b64 string, parse func([]byte) (any, error)) K {
	t.Helper()
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("key is not bare Base64: %v", err)
	}
	k, err := parse(der)
	if err != nil {
		t.Fatalf("key is not the DER the SDKs take: %v", err)
	}
	key, ok := k.(K)
	if !ok {
		t.Fatalf("key is a %T", k)
	}
	return key
}

// TestSDKFixtures checks the known-answer cases of testdata/openssl/sdk/,
// made by make.sh with openssl and signed the way Alipay's SDKs sign,
// against a key ring holding DWS's old (1) and new (2) key, as a gateway in
// the middle of a rotation holds them. Before SPEC §1.2's key selection the
// cases without keyVersion signed by the old key failed (the highest
// version was used), and before §1.1's epoch precisions the 16- and
// 19-digit Request-Times were refused.
func TestSDKFixtures(t *testing.T) {
	v1, err := ParsePrivateKey(string(readFixture(t, "key.pem")))
	if err != nil {
		t.Fatal(err)
	}
	v2, err := ParsePrivateKey(string(readFixture(t, "key2.pem")))
	if err != nil {
		t.Fatal(err)
	}
	// The bare Base64 forms the SDKs take are the same keys.
	if !sdkKey[*rsa.PrivateKey](t, string(readFixture(t, "key2.b64")), x509.ParsePKCS8PrivateKey).Equal(v2) {
		t.Fatal("key2.b64 is not key2.pem")
	}
	pubs := map[int]*rsa.PublicKey{}
	for v, f := range map[int]string{1: "pub.b64", 2: "pub2.b64"} {
		pubs[v] = sdkKey[*rsa.PublicKey](t, string(readFixture(t, f)), x509.ParsePKIXPublicKey)
	}
	pemPub, err := ParsePublicKey(string(readFixture(t, "pub2.pem")))
	if err != nil {
		t.Fatal(err)
	}
	if !pubs[1].Equal(&v1.PublicKey) || !pubs[2].Equal(&v2.PublicKey) || !pemPub.Equal(pubs[2]) {
		t.Fatal("pub.b64 / pub2.b64 / pub2.pem are not the public halves of key.pem / key2.pem")
	}
	privs := map[int]*rsa.PrivateKey{1: v1, 2: v2}

	cases, err := os.ReadDir(filepath.Join(opensslDir, "sdk"))
	if err != nil {
		t.Fatal(err)
	}
	var withoutVersion, headerOnly, nanos, micros, seconds int
	var encoded = map[string]int{}
	for _, c := range cases {
		t.Run(c.Name(), func(t *testing.T) {
			read := func(f string) string { return string(readFixture(t, "sdk", c.Name(), f)) }
			uri, client, tm, body, header := read("uri"), read("client_id"), read("time"), []byte(read("body")), read("header")
			kvh := ""
			if b, err := os.ReadFile(filepath.Join(opensslDir, "sdk", c.Name(), "key_version_header")); err == nil {
				kvh = string(b)
			} else if !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			signedBy, err := strconv.Atoi(read("signed_by"))
			if err != nil || privs[signedBy] == nil {
				t.Fatalf("signed_by %q", read("signed_by"))
			}
			sig := []byte(read("signature.bin"))

			// The content, as the SDKs build it: method, space, path, LF,
			// Client-Id, '.', Request-Time, '.', body.
			sdkContent := "POST " + uri + "\n" + client + "." + tm + "." + string(body)
			if read("content") != sdkContent || !bytes.Equal(AppendSignedContent(nil, uri, client, tm, body), []byte(sdkContent)) {
				t.Fatal("the signed content differs from the SDKs' construction")
			}
			// The SDKs' encoding of the value: url.QueryEscape of standard
			// Base64.
			_, value, ok := strings.Cut(header, "signature=")
			if !ok || value != url.QueryEscape(base64.StdEncoding.EncodeToString(sig)) {
				t.Fatalf("signature value is not url.QueryEscape of the Base64 of signature.bin")
			}
			for _, esc := range []string{"%2B", "%2F", "%3D"} {
				encoded[esc] += strings.Count(value, esc)
			}
			// The SDKs' own decoding and verification accept it.
			unescaped, err := url.QueryUnescape(value)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := base64.StdEncoding.DecodeString(unescaped)
			if err != nil || !bytes.Equal(raw, sig) {
				t.Fatalf("SDK-style decoding: %v", err)
			}
			digest := Digest(uri, client, tm, body)
			if err := rsa.VerifyPKCS1v15(pubs[signedBy], crypto.SHA256, digest[:], raw); err != nil {
				t.Fatalf("SDK-style verification: %v", err)
			}

			parsed, err := ParseHeader(header)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case !parsed.HasKeyVersion && kvh == "":
				withoutVersion++
			case !parsed.HasKeyVersion:
				headerOnly++
			}
			// Every precision of the same instant, 2023-06-01T06:12:13.871123456Z.
			at, err := ParseRequestTime(tm)
			if err != nil {
				t.Fatalf("ParseRequestTime(%q): %v", tm, err)
			}
			if d := at.Sub(time.Unix(0, 1685599933871123456)); d > 0 || d <= -time.Second {
				t.Errorf("ParseRequestTime(%q) = %v", tm, at)
			}
			switch len(tm) {
			case 19:
				nanos++
			case 16:
				micros++
			case 10:
				seconds++
			}

			// The gateway's ring picks the key that signed, with one RSA
			// verification, or two when it had to try the newer key first.
			ring, rsaOps := countingRing()
			for v, pub := range pubs {
				if err := ring.Add(client, v, pub); err != nil {
					t.Fatal(err)
				}
			}
			got, err := ring.VerifyNotification(client, uri, tm, body, header, kvh)
			if err != nil || got != signedBy {
				t.Fatalf("VerifyNotification = %d, %v; want %d", got, err, signedBy)
			}
			wantOps := int64(1)
			if !parsed.HasKeyVersion && kvh == "" && signedBy == 1 {
				wantOps = 2
			}
			if n := rsaOps.Load(); n != wantOps {
				t.Errorf("%d RSA verifications, want %d", n, wantOps)
			}
			if _, err := ring.VerifyNotification(client, uri, tm, append(bytes.Clone(body), ' '), header, kvh); !errors.Is(err, ErrVerificationFailed) {
				t.Errorf("changed body: %v, want ErrVerificationFailed", err)
			}

			// PKCS#1 v1.5 is deterministic: the package signs as openssl did.
			ours, err := SignatureHeader(privs[signedBy], signedBy, uri, client, tm, body)
			if err != nil {
				t.Fatal(err)
			}
			if !parsed.HasKeyVersion {
				ours = headerWithoutVersion(ours)
			}
			if ours != header {
				t.Error("SignatureHeader differs from the openssl-made header")
			}
		})
	}
	if withoutVersion == 0 || headerOnly == 0 || nanos == 0 || micros == 0 || seconds == 0 {
		t.Errorf("fixture lacks a case: %d without any version, %d with Key-Version only, %d/%d/%d with 19/16/10-digit times",
			withoutVersion, headerOnly, nanos, micros, seconds)
	}
	for esc, n := range encoded {
		if n == 0 {
			t.Errorf("no fixture signature has %s", esc)
		}
	}
	if len(encoded) != 3 {
		t.Errorf("escapes seen: %v", encoded)
	}
}
