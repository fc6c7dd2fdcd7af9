package signature

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const opensslDir = "testdata/openssl"

func readFixture(t *testing.T, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{opensslDir}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOpenSSLFixtures checks the fixtures made by testdata/openssl/make.sh
// with the openssl command line.
func TestOpenSSLFixtures(t *testing.T) {
	priv, err := ParsePrivateKey(string(readFixture(t, "key.pem")))
	if err != nil {
		t.Fatalf("key.pem: %v", err)
	}
	for _, name := range []string{"key-pkcs1.pem"} {
		k, err := ParsePrivateKey(string(readFixture(t, name)))
		if err != nil || !k.Equal(priv) {
			t.Fatalf("%s: %v (or a different key)", name, err)
		}
	}
	for _, name := range []string{"pub.pem", "pub-pkcs1.pem", "pub.b64"} {
		k, err := ParsePublicKey(string(readFixture(t, name)))
		if err != nil || !k.Equal(&priv.PublicKey) {
			t.Fatalf("%s: %v (or a different key)", name, err)
		}
	}
	if !bytes.HasPrefix(readFixture(t, "pub.b64"), []byte("MIIBIjANBgkq")) {
		t.Fatal("pub.b64 is not bare Base64 SubjectPublicKeyInfo")
	}

	cases, err := os.ReadDir(filepath.Join(opensslDir, "cases"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 3 {
		t.Fatalf("%d fixture cases, want at least 3", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name(), func(t *testing.T) {
			read := func(f string) string { return string(readFixture(t, "cases", c.Name(), f)) }
			uri, client, tm, body := read("uri"), read("client_id"), read("time"), []byte(read("body"))
			version, err := strconv.Atoi(read("key_version"))
			if err != nil {
				t.Fatal(err)
			}
			content := []byte(read("content"))
			if got := AppendSignedContent(nil, uri, client, tm, body); !bytes.Equal(got, content) {
				t.Fatalf("AppendSignedContent differs from the content openssl signed:\n%q\n%q", got, content)
			}
			if Digest(uri, client, tm, body) != sha256.Sum256(content) {
				t.Fatal("Digest differs from SHA-256 of the content")
			}
			if _, err := ParseRequestTime(tm); err != nil {
				t.Errorf("ParseRequestTime(%q): %v", tm, err)
			}
			r := NewKeyRing()
			if err := r.Add(client, version, &priv.PublicKey); err != nil {
				t.Fatal(err)
			}
			for _, hf := range []string{"header", "header-docform"} {
				h := read(hf)
				if v, err := r.Verify(client, uri, tm, body, h); err != nil || v != version {
					t.Errorf("%s: Verify = %d, %v; want %d, nil", hf, v, err, version)
				}
				parsed, err := ParseHeader(h)
				if err != nil || !bytes.Equal(parsed.Signature, []byte(read("signature.bin"))) {
					t.Errorf("%s: decoded signature differs from signature.bin (%v)", hf, err)
				}
			}
			// PKCS#1 v1.5 is deterministic: the package must sign exactly as
			// openssl did.
			ours, err := SignatureHeader(priv, version, uri, client, tm, body)
			if err != nil || ours != read("header") {
				t.Errorf("SignatureHeader differs from the openssl-made header (%v)", err)
			}
			if _, err := r.Verify(client, uri, tm, append(body, '\n'), read("header")); err == nil {
				t.Error("verified with a changed body")
			}
		})
	}
}

// TestOpenSSLVerifiesOurSignatures signs with the package and verifies with
// `openssl dgst -sha256 -verify`, with a key made by the package and one
// made by openssl. It needs openssl on PATH (CI installs it).
func TestOpenSSLVerifiesOurSignatures(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not on PATH")
	}
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		out, err := exec.Command(openssl, args...).CombinedOutput()
		return string(out), err
	}

	// Key pair 1: made by Go, handed to openssl as SubjectPublicKeyInfo PEM.
	goKey := testKey()
	goPub := filepath.Join(dir, "go-pub.pem")
	writeFile(t, goPub, pemEncode("PUBLIC KEY", pkixDER(t, &goKey.PublicKey)))
	// Key pair 2: made by openssl, parsed by the package.
	sslKey := filepath.Join(dir, "ssl-key.pem")
	sslPub := filepath.Join(dir, "ssl-pub.pem")
	if out, err := run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", sslKey); err != nil {
		t.Fatalf("openssl genpkey: %v\n%s", err, out)
	}
	if out, err := run("pkey", "-in", sslKey, "-pubout", "-out", sslPub); err != nil {
		t.Fatalf("openssl pkey: %v\n%s", err, out)
	}
	sslPriv, err := ParsePrivateKey(string(mustRead(t, sslKey)))
	if err != nil {
		t.Fatalf("ParsePrivateKey(openssl key): %v", err)
	}
	sslPubKey, err := ParsePublicKey(string(mustRead(t, sslPub)))
	if err != nil || !sslPubKey.Equal(&sslPriv.PublicKey) {
		t.Fatalf("ParsePublicKey(openssl public key): %v", err)
	}

	signers := []struct {
		name string
		sign func(uri, client, tm string, body []byte) (string, error)
		pub  string
	}{
		{"SignatureHeader, Go key", func(u, c, tm string, b []byte) (string, error) {
			return SignatureHeader(goKey, 1, u, c, tm, b)
		}, goPub},
		{"Signer, openssl key", NewSigner(sslPriv, 3).Sign, sslPub},
	}
	contents := []struct{ uri, client, time, body string }{
		{"/dws/notify/addPaymentMethod", "2188120000000000", "1685599933871", `{"requestId":"r-1"}`},
		{"/n?a=1&b=%2F", "SANDBOX_5YEV2N2ZV8LC00920", "2025-05-19T09:52:32+08:00", "{\n  \"k\": \"值 & ü\"\n}\n"},
		{"/ack", "c", "2025-02-20T08:51:49.09Z", `{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMsg":"success"}}`},
	}
	for _, s := range signers {
		for i, c := range contents {
			h, err := s.sign(c.uri, c.client, c.time, []byte(c.body))
			if err != nil {
				t.Fatal(err)
			}
			// Decode the header with the standard library, not the parser
			// under test.
			_, value, ok := strings.Cut(h, ",signature=")
			if !ok {
				t.Fatalf("%s: no signature in %q", s.name, h)
			}
			b64, err := url.PathUnescape(value)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				t.Fatal(err)
			}
			sigFile := filepath.Join(dir, "sig")
			writeFile(t, sigFile, string(sig))
			// The content, written out by hand from the scheme.
			contentFile := filepath.Join(dir, "content")
			writeFile(t, contentFile, "POST "+c.uri+"\n"+c.client+"."+c.time+"."+c.body)
			if out, err := run("dgst", "-sha256", "-verify", s.pub, "-signature", sigFile, contentFile); err != nil || !strings.Contains(out, "Verified OK") {
				t.Errorf("%s, content %d: openssl: %v\n%s", s.name, i, err, out)
			}
			// And openssl must refuse it for other content, so the check
			// above can fail.
			writeFile(t, contentFile, "POST "+c.uri+"\n"+c.client+"."+c.time+"."+c.body+" ")
			if out, err := run("dgst", "-sha256", "-verify", s.pub, "-signature", sigFile, contentFile); err == nil {
				t.Errorf("%s, content %d: openssl verified changed content\n%s", s.name, i, out)
			}
		}
	}

	// openssl also agrees with the package on the Alipay sandbox signature.
	kat, _, pub := loadKAT(t)
	h, _ := ParseHeader(kat.Header)
	katPub := filepath.Join(dir, "kat-pub.pem")
	writeFile(t, katPub, pemEncode("PUBLIC KEY", pkixDER(t, pub)))
	writeFile(t, filepath.Join(dir, "kat.sig"), string(h.Signature))
	writeFile(t, filepath.Join(dir, "kat.content"), string(AppendSignedContent(nil, kat.URI, kat.ClientID, kat.Time, []byte(kat.Body))))
	if out, err := run("dgst", "-sha256", "-verify", katPub, "-signature", filepath.Join(dir, "kat.sig"), filepath.Join(dir, "kat.content")); err != nil {
		t.Errorf("openssl on the Alipay sandbox signature: %v\n%s", err, out)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
