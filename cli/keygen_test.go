package cli

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dwsnotify/dws_notify/inbox"
	"github.com/dwsnotify/dws_notify/signature"
)

// keygenMerchant runs `keygen --out dir --name merchant` and returns its
// output and a reader of the files it wrote.
func keygenMerchant(t *testing.T, dir string) (string, func(name string) string) {
	t.Helper()
	out, err := runCLI(t, "keygen", "--out", dir, "--name", "merchant")
	if err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	return out, func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
}

func TestKeygenWritesAKeyPairTheGatewayParses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new") // created by keygen
	out, read := keygenMerchant(t, dir)
	privPEM, pubPEM, b64 := read("merchant_private.pem"), read("merchant_public.pem"), read("merchant_public.b64")
	if !strings.HasPrefix(privPEM, "-----BEGIN PRIVATE KEY-----") {
		t.Errorf("private key is not PKCS#8 PEM: starts %q", privPEM[:min(len(privPEM), 30)])
	}
	priv, err := signature.ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	if priv.N.BitLen() != 2048 {
		t.Errorf("key is %d bits, want 2048", priv.N.BitLen())
	}
	for name, material := range map[string]string{"PEM": pubPEM, "Base64": b64} {
		pub, err := signature.ParsePublicKey(material)
		if err != nil {
			t.Fatalf("%s public key: %v", name, err)
		}
		if !pub.Equal(&priv.PublicKey) {
			t.Fatalf("%s public key is not the private key's", name)
		}
	}
	if strings.Count(strings.TrimSpace(b64), "\n") != 0 || strings.Contains(b64, "-----") {
		t.Errorf("the .b64 file is not one bare Base64 line: %q", b64)
	}
	if info, err := os.Stat(filepath.Join(dir, "merchant_private.pem")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("private key file mode = %v (%v), want 0600", info.Mode().Perm(), err)
	}
	// The Base64 line is printed; the private key never is.
	if !strings.Contains(out, strings.TrimSpace(b64)+"\n") {
		t.Errorf("output does not show the Base64 public key line:\n%s", out)
	}
	privBody := strings.Join(strings.Split(privPEM, "\n")[1:3], "")
	if strings.Contains(out, "PRIVATE KEY-----") || strings.Contains(out, privBody[:40]) {
		t.Fatalf("keygen printed private key material:\n%s", out)
	}

	// A signature made with the private half verifies with the Base64 half,
	// as it would in the gateway.
	ring := signature.NewKeyRing()
	pub, _ := signature.ParsePublicKey(b64)
	if err := ring.Add(testClientID, 1, pub); err != nil {
		t.Fatal(err)
	}
	sig, err := signature.SignatureHeader(priv, 1, addPath, testClientID, "1795300000000", []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ring.Verify(testClientID, addPath, "1795300000000", []byte("{}"), sig); err != nil {
		t.Fatalf("signature with the generated pair does not verify: %v", err)
	}
}

func TestKeygenNeverOverwritesWithoutForce(t *testing.T) {
	dir := t.TempDir()
	if out, err := runCLI(t, "keygen", "--out", dir); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	names := []string{"private.pem", "private.b64", "public.pem", "public.b64"}
	before := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		before[n] = b
	}
	_, err := runCLI(t, "keygen", "--out", dir)
	if err == nil || !strings.Contains(err.Error(), "already exists") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("second keygen: err = %v, want a refusal that mentions --force", err)
	}
	// Even one existing file of the four stops it before anything is written.
	if err := os.Remove(filepath.Join(dir, "private.pem")); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "keygen", "--out", dir); err == nil {
		t.Fatal("keygen wrote a pair over an existing public key")
	}
	if _, err := os.Stat(filepath.Join(dir, "private.pem")); !os.IsNotExist(err) {
		t.Fatal("a refused keygen wrote the private key")
	}
	for _, n := range names[1:] {
		if b, _ := os.ReadFile(filepath.Join(dir, n)); !bytes.Equal(b, before[n]) {
			t.Fatalf("%s changed without --force", n)
		}
	}

	// --force replaces all four and keeps the private key private.
	if err := os.WriteFile(filepath.Join(dir, "private.pem"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCLI(t, "keygen", "--out", dir, "--force"); err != nil {
		t.Fatalf("keygen --force: %v\n%s", err, out)
	}
	for _, n := range names[1:] {
		if b, _ := os.ReadFile(filepath.Join(dir, n)); bytes.Equal(b, before[n]) {
			t.Fatalf("%s was not replaced by --force", n)
		}
	}
	for _, n := range []string{"private.pem", "private.b64"} {
		info, err := os.Stat(filepath.Join(dir, n))
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode after --force = %v (%v), want 0600", n, info.Mode().Perm(), err)
		}
	}

	// --force replaces a symlink instead of writing through it, and leaves
	// no temporary file behind.
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "public.pem")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, "public.pem")); err != nil {
		t.Fatal(err)
	}
	if out, err := runCLI(t, "keygen", "--out", dir, "--force"); err != nil {
		t.Fatalf("keygen --force over a symlink: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(victim); string(b) != "untouched" {
		t.Fatalf("keygen --force wrote through a symlink into its target: %q", b)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "public.pem")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("public.pem after --force over a symlink: %v, %v", fi, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(names) {
		t.Fatalf("keygen --force left %d files in %s, want the %d key files", len(entries), dir, len(names))
	}
}

// TestKeygenWritesTheSDKForms: keygen also writes the key pair in the only
// forms Alipay's SDKs take, bare Base64 of the PKCS#8 DER private key and of
// the SubjectPublicKeyInfo DER public key, each file the Base64 text alone.
// Parsed the way the SDKs parse them (standard Base64, then x509), they are
// the PEM pair; a notification signed the SDKs' way with the Base64 private
// key verifies in the gateway with the Base64 public key. Before, keygen
// wrote no private .b64 and ended the public one with a line break.
func TestKeygenWritesTheSDKForms(t *testing.T) {
	dir := t.TempDir()
	out, read := keygenMerchant(t, dir)
	privB64, pubB64 := read("merchant_private.b64"), read("merchant_public.b64")
	for name, text := range map[string]string{"private": privB64, "public": pubB64} {
		if strings.Trim(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") != "" {
			t.Errorf("%s .b64 holds more than Base64 text: %q", name, text)
		}
	}
	privDER, err := base64.StdEncoding.DecodeString(privB64)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.ParsePKCS8PrivateKey(privDER)
	if err != nil {
		t.Fatalf("private .b64 is not PKCS#8: %v", err)
	}
	pubDER, err := base64.StdEncoding.DecodeString(pubB64)
	if err != nil {
		t.Fatal(err)
	}
	p, err := x509.ParsePKIXPublicKey(pubDER)
	if err != nil {
		t.Fatalf("public .b64 is not SubjectPublicKeyInfo: %v", err)
	}
	pemKey, err := signature.ParsePrivateKey(read("merchant_private.pem"))
	if err != nil {
		t.Fatal(err)
	}
	priv, ok1 := k.(*rsa.PrivateKey)
	pub, ok2 := p.(*rsa.PublicKey)
	if !ok1 || !ok2 || !priv.Equal(pemKey) || !pub.Equal(&pemKey.PublicKey) {
		t.Fatal("the .b64 files are not the PEM key pair")
	}
	if info, err := os.Stat(filepath.Join(dir, "merchant_private.b64")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("private .b64 mode = %v (%v), want 0600", info.Mode().Perm(), err)
	}
	if strings.Contains(out, privB64[:64]) {
		t.Fatalf("keygen printed private key material:\n%s", out)
	}
	if !strings.Contains(out, "merchant_private.b64") {
		t.Errorf("keygen does not name the private .b64 file:\n%s", out)
	}

	// Signed as the SDKs sign: SHA256withRSA, standard Base64, QueryEscape.
	const tm = "1795300000000"
	body := []byte(`{"requestId":"sdk"}`)
	d := sha256.Sum256([]byte("POST " + addPath + "\n" + testClientID + "." + tm + "." + string(body)))
	sig, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, d[:])
	if err != nil {
		t.Fatal(err)
	}
	header := "algorithm=RSA256,keyVersion=1,signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	gatewayKey, err := signature.ParsePublicKey(pubB64)
	if err != nil {
		t.Fatal(err)
	}
	ring := signature.NewKeyRing()
	if err := ring.Add(testClientID, 1, gatewayKey); err != nil {
		t.Fatal(err)
	}
	if _, err := ring.Verify(testClientID, addPath, tm, body, header); err != nil {
		t.Fatalf("SDK-style signature with the .b64 private key: %v", err)
	}
}

// keygen --inbox writes an inbox key (mode 0600) that the gateway's
// parser takes with the id keygen printed, and never overwrites one
// without --force.
func TestKeygenInboxKey(t *testing.T) {
	dir := t.TempDir()
	out, err := runCLI(t, "keygen", "--inbox", "--out", dir, "--name", "prod")
	if err != nil {
		t.Fatalf("keygen --inbox: %v\n%s", err, out)
	}
	path := filepath.Join(dir, "prod_inbox.key")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := inbox.ParseKey(string(b), "")
	if err != nil {
		t.Fatalf("the inbox key does not parse: %v", err)
	}
	if !strings.Contains(out, "key id: "+k.ID+"\n") || strings.Contains(out, strings.TrimSpace(string(b))) {
		t.Fatalf("output does not name the id %s, or shows the key:\n%s", k.ID, out)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := runCLI(t, "keygen", "--inbox", "--out", dir, "--name", "prod"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("overwrote an inbox key without --force: %v", err)
	}
	if b2, _ := os.ReadFile(path); !bytes.Equal(b, b2) {
		t.Fatal("the key file changed")
	}
}
