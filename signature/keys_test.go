package signature

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"
)

// keyFixtures holds key material in every format the tests feed the parsers.
type keyFixtures struct {
	rsa, rsa1024 *rsa.PrivateKey
	ec           *ecdsa.PrivateKey
	ed           ed25519.PrivateKey
	x25519       *ecdh.PrivateKey
	rsaCert      []byte // DER, self-signed, key rsa
	ecCert       []byte // DER, self-signed, key ec
}

var fixtures = sync.OnceValue(func() *keyFixtures {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	f := &keyFixtures{rsa: testKey()}
	var err error
	f.rsa1024, err = rsa.GenerateKey(rand.Reader, 1024)
	must(err)
	f.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	_, f.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	f.x25519, err = ecdh.X25519().GenerateKey(rand.Reader)
	must(err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "dws_notify test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	f.rsaCert, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &f.rsa.PublicKey, f.rsa)
	must(err)
	f.ecCert, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &f.ec.PublicKey, f.ec)
	must(err)
	return f
})

func b64(der []byte) string { return base64.StdEncoding.EncodeToString(der) }

// wrap64 breaks s into lines of 64 characters joined by sep.
func wrap64(s, sep string) string {
	var lines []string
	for len(s) > 64 {
		lines, s = append(lines, s[:64]), s[64:]
	}
	return strings.Join(append(lines, s), sep)
}

func TestParsePublicKeyAccepts(t *testing.T) {
	f := fixtures()
	spki := pkixDER(t, &f.rsa.PublicKey)
	pkcs1 := x509.MarshalPKCS1PublicKey(&f.rsa.PublicKey)
	tests := map[string]string{
		"bare base64 SPKI":              b64(spki),
		"bare base64 SPKI, LF wrapped":  wrap64(b64(spki), "\n"),
		"bare base64 SPKI, CRLF, blank": "\r\n  " + wrap64(b64(spki), "\r\n") + "\n\t ",
		"bare base64 SPKI, spaces":      wrap64(b64(spki), " "),
		"bare base64 PKCS#1":            b64(pkcs1),
		"PEM PUBLIC KEY":                pemEncode("PUBLIC KEY", spki),
		"PEM PUBLIC KEY, indented":      "\n\n  " + pemEncode("PUBLIC KEY", spki) + "\n\n",
		"PEM RSA PUBLIC KEY":            pemEncode("RSA PUBLIC KEY", pkcs1),
		"PEM CERTIFICATE":               pemEncode("CERTIFICATE", f.rsaCert),
		"bare base64 certificate":       b64(f.rsaCert),
	}
	for name, material := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParsePublicKey(material)
			if err != nil {
				t.Fatalf("ParsePublicKey: %v", err)
			}
			if !got.Equal(&f.rsa.PublicKey) {
				t.Fatal("parsed a different key")
			}
		})
	}
}

func TestParsePublicKeyRefuses(t *testing.T) {
	f := fixtures()
	ecSPKI := pkixDER(t, &f.ec.PublicKey)
	small := pkixDER(t, &f.rsa1024.PublicKey)
	tests := []struct {
		name, material, want string
	}{
		{"empty", "  \n", "empty key material"},
		{"garbage text", "this is not a key!", "neither PEM nor standard Base64"},
		{"base64 of garbage", b64([]byte("definitely not DER")), "not a DER SubjectPublicKeyInfo"},
		{"EC P-256 SPKI", b64(ecSPKI), "found an EC (P-256) public key"},
		{"EC P-256 PEM", pemEncode("PUBLIC KEY", ecSPKI), "found an EC (P-256) public key"},
		{"Ed25519 SPKI", b64(pkixDER(t, f.ed.Public())), "found an Ed25519 public key"},
		{"X25519 SPKI", pemEncode("PUBLIC KEY", pkixDER(t, f.x25519.PublicKey())), "found an X25519 public key"},
		{"RSA-1024 SPKI", b64(small), "RSA public key is 1024 bits; at least 2048"},
		{"RSA-1024 PKCS#1 PEM", pemEncode("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&f.rsa1024.PublicKey)), "1024 bits"},
		{"EC certificate", pemEncode("CERTIFICATE", f.ecCert), "found an EC (P-256) public key"},
		{"PEM PRIVATE KEY", pemEncode("PRIVATE KEY", pkcs8DER(t, f.rsa)), `found a private key (PEM "PRIVATE KEY")`},
		{"PEM RSA PRIVATE KEY", pemEncode("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(f.rsa)), "found a private key"},
		{"PEM EC PRIVATE KEY", pemEncode("EC PRIVATE KEY", mustEC(t, f.ec)), "found a private key"},
		{"bare PKCS#8 private", b64(pkcs8DER(t, f.rsa)), "found a private key where a public key is required"},
		{"bare PKCS#1 private", wrap64(b64(x509.MarshalPKCS1PrivateKey(f.rsa)), "\n"), "found a private key"},
		{"bare SEC1 EC private", b64(mustEC(t, f.ec)), "found a private key"},
		{"two PEM blocks", pemEncode("PUBLIC KEY", pkixDER(t, &f.rsa.PublicKey)) + pemEncode("PUBLIC KEY", ecSPKI), "unexpected data after the PEM"},
		{"broken PEM", "-----BEGIN PUBLIC KEY-----\nMIIB\n", "not a valid PEM block"},
		{"PEM of other type", pemEncode("CERTIFICATE REQUEST", []byte{1, 2, 3}), `unsupported PEM block "CERTIFICATE REQUEST"`},
		{"PKCS#1 under PUBLIC KEY", pemEncode("PUBLIC KEY", x509.MarshalPKCS1PublicKey(&f.rsa.PublicKey)), "not a valid SubjectPublicKeyInfo"},
		{"SPKI under RSA PUBLIC KEY", pemEncode("RSA PUBLIC KEY", pkixDER(t, &f.rsa.PublicKey)), "not a valid PKCS#1 key"},
		{"corrupt certificate", pemEncode("CERTIFICATE", []byte{0x30, 0x03, 1, 2, 3}), "invalid certificate"},
		{"encrypted legacy PEM", encryptedPEM("RSA PUBLIC KEY"), "encrypted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePublicKey(tt.material)
			if err == nil {
				t.Fatalf("accepted (%d-bit key)", got.N.BitLen())
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not say %q", err, tt.want)
			}
			assertNoMaterial(t, err, tt.material)
			assertKeyError(t, err)
		})
	}
}

// assertKeyError checks that a refusal is a *KeyError whose message is
// "signature: " and its Problem.
func assertKeyError(t *testing.T, err error) {
	t.Helper()
	var ke *KeyError
	if !errors.As(err, &ke) {
		t.Fatalf("%v (%T) is not a *KeyError", err, err)
	}
	if ke.Problem == "" || err.Error() != "signature: "+ke.Problem {
		t.Fatalf("Problem %q does not make the message %q", ke.Problem, err)
	}
}

func TestParsePrivateKeyAccepts(t *testing.T) {
	f := fixtures()
	p8 := pkcs8DER(t, f.rsa)
	p1 := x509.MarshalPKCS1PrivateKey(f.rsa)
	tests := map[string]string{
		"PEM PRIVATE KEY":             pemEncode("PRIVATE KEY", p8),
		"PEM RSA PRIVATE KEY":         pemEncode("RSA PRIVATE KEY", p1),
		"bare base64 PKCS#8":          b64(p8),
		"bare base64 PKCS#8, wrapped": "\n" + wrap64(b64(p8), "\r\n") + "\n",
		"bare base64 PKCS#1":          wrap64(b64(p1), "\n"),
	}
	for name, material := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParsePrivateKey(material)
			if err != nil {
				t.Fatalf("ParsePrivateKey: %v", err)
			}
			if !got.Equal(f.rsa) {
				t.Fatal("parsed a different key")
			}
		})
	}
}

func TestParsePrivateKeyRefuses(t *testing.T) {
	f := fixtures()
	tests := []struct {
		name, material, want string
	}{
		{"empty", "", "empty key material"},
		{"garbage text", "-- not a key --", "neither PEM nor standard Base64"},
		{"base64 of garbage", b64([]byte("definitely not DER")), "not a DER PKCS#8 or PKCS#1 private key"},
		{"EC PKCS#8", pemEncode("PRIVATE KEY", pkcs8DER(t, f.ec)), "found an EC (P-256) private key"},
		{"EC PKCS#8 bare", b64(pkcs8DER(t, f.ec)), "found an EC (P-256) private key"},
		{"Ed25519 PKCS#8", pemEncode("PRIVATE KEY", pkcs8DER(t, f.ed)), "found an Ed25519 private key"},
		{"X25519 PKCS#8", pemEncode("PRIVATE KEY", pkcs8DER(t, f.x25519)), "found an X25519 private key"},
		{"EC PRIVATE KEY PEM", pemEncode("EC PRIVATE KEY", mustEC(t, f.ec)), "found an EC private key"},
		{"bare SEC1 EC", b64(mustEC(t, f.ec)), "found an EC private key"},
		{"RSA-1024 PKCS#8", pemEncode("PRIVATE KEY", pkcs8DER(t, f.rsa1024)), "RSA private key is 1024 bits; at least 2048"},
		{"RSA-1024 PKCS#1 bare", b64(x509.MarshalPKCS1PrivateKey(f.rsa1024)), "1024 bits"},
		{"PEM PUBLIC KEY", pemEncode("PUBLIC KEY", pkixDER(t, &f.rsa.PublicKey)), `found a public key (PEM "PUBLIC KEY")`},
		{"PEM RSA PUBLIC KEY", pemEncode("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&f.rsa.PublicKey)), "found a public key"},
		{"bare SPKI", b64(pkixDER(t, &f.rsa.PublicKey)), "found a public key where a private key is required"},
		{"bare PKCS#1 public", b64(x509.MarshalPKCS1PublicKey(&f.rsa.PublicKey)), "found a public key"},
		{"PEM certificate", pemEncode("CERTIFICATE", f.rsaCert), "found a certificate"},
		{"bare certificate", b64(f.rsaCert), "found a certificate"},
		{"encrypted PKCS#8", pemEncode("ENCRYPTED PRIVATE KEY", []byte{0x30, 0}), "encrypted PKCS#8"},
		{"encrypted legacy PEM", encryptedPEM("RSA PRIVATE KEY"), "encrypted"},
		{"OpenSSH key", pemEncode("OPENSSH PRIVATE KEY", []byte("openssh-key-v1\x00")), "OpenSSH private key"},
		{"garbage under PRIVATE KEY", pemEncode("PRIVATE KEY", []byte{0x30, 0x03, 1, 2, 3}), "not a valid PKCS#8 key"},
		{"garbage under RSA PRIVATE KEY", pemEncode("RSA PRIVATE KEY", []byte{0x30, 0x03, 1, 2, 3}), "not a valid PKCS#1 key"},
		{"PEM of other type", pemEncode("DH PARAMETERS", []byte{1}), `unsupported PEM block "DH PARAMETERS"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePrivateKey(tt.material)
			if err == nil {
				t.Fatalf("accepted (%d-bit key)", got.N.BitLen())
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not say %q", err, tt.want)
			}
			assertNoMaterial(t, err, tt.material)
			assertKeyError(t, err)
		})
	}
}

func mustEC(t testing.TB, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// encryptedPEM returns a legacy OpenSSL-encrypted PEM block (the body is
// never decrypted, so its content does not matter).
func encryptedPEM(typ string) string {
	return string(pem.EncodeToMemory(&pem.Block{
		Type:    typ,
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00112233445566778899AABBCCDDEEFF"},
		Bytes:   []byte("ciphertext ciphertext ciphertext"),
	}))
}

// assertNoMaterial fails when err quotes a stretch of the key material.
func assertNoMaterial(t *testing.T, err error, material string) {
	t.Helper()
	compact := strings.Join(strings.Fields(material), "")
	compact = strings.NewReplacer("-----BEGIN", "", "-----END", "").Replace(compact)
	const window = 16
	msg := err.Error()
	for i := 0; i+window <= len(compact); i += window {
		chunk := compact[i : i+window]
		if strings.Contains(msg, chunk) && !strings.Contains(chunk, "KEY") && !strings.Contains(chunk, "CERTIFICATE") {
			t.Fatalf("error %q quotes key material %q", msg, chunk)
		}
	}
}
