package caddymodule

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/dwsnotify/dws_notify/notification"
	"github.com/dwsnotify/dws_notify/signature"
)

// runCLI runs `caddy dws-notify <args>` in-process on the same command tree
// the binary registers, and returns what it printed and its error.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := &cobra.Command{Use: "dws-notify", SilenceUsage: true, SilenceErrors: true}
	setupCommand(cmd)
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	if args == nil {
		args = []string{} // nil would make cobra parse the test binary's arguments
	}
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// cliKeys are the test key pairs as files, in the forms the commands take.
type cliKeys struct {
	dwsPrivate, dwsPublic, merchantPrivate, merchantPublic string
}

func writeCLIKeys(t *testing.T) cliKeys {
	t.Helper()
	k := keys(t)
	dir := t.TempDir()
	write := func(name, typ string, der []byte, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dwsPriv, err := x509.MarshalPKCS8PrivateKey(k.dws)
	ck := cliKeys{dwsPrivate: write("dws_private.pem", "PRIVATE KEY", dwsPriv, err)}
	dwsPub, err := x509.MarshalPKIXPublicKey(&k.dws.PublicKey)
	ck.dwsPublic = write("dws_public.pem", "PUBLIC KEY", dwsPub, err)
	merchantPub, err := x509.MarshalPKIXPublicKey(&k.merchant.PublicKey)
	ck.merchantPublic = write("merchant_public.pem", "PUBLIC KEY", merchantPub, err)
	ck.merchantPrivate = filepath.Join(k.dir, "merchant_private.pem")
	return ck
}

func TestCommandIsRegisteredWithCaddy(t *testing.T) {
	c, ok := caddycmd.Commands()["dws-notify"]
	if !ok {
		t.Fatal("dws-notify is not registered with caddycmd")
	}
	if c.CobraFunc == nil || c.Short == "" {
		t.Fatal("dws-notify has no CobraFunc or Short")
	}
	root := &cobra.Command{Use: "dws-notify"}
	c.CobraFunc(root)
	var names []string
	for _, sub := range root.Commands() {
		names = append(names, sub.Name())
	}
	if got := strings.Join(names, " "); got != "backup inspect keygen restore send sign" {
		t.Fatalf("subcommands = %q, want backup inspect keygen restore send sign", got)
	}
}

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

var headerLine = regexp.MustCompile(`(?m)^(Client-Id|Request-Time|Signature): (.*)$`)

func TestSignPrintsHeadersThatVerify(t *testing.T) {
	ck := writeCLIKeys(t)
	body := filepath.Join(t.TempDir(), "add body.json")
	sample, _ := notification.Sample("addPaymentMethod")
	if err := os.WriteFile(body, sample, 0o600); err != nil {
		t.Fatal(err)
	}
	uri := addPath + "?merchant=7&x=a+b"
	out, err := runCLI(t, "sign", "--client-id", testClientID, "--key", ck.dwsPrivate, "--key-version", "3",
		"--uri", uri, "--request-time", "2026-05-01T10:00:00+08:00", body)
	if err != nil {
		t.Fatalf("sign: %v\n%s", err, out)
	}
	h := map[string]string{}
	for _, m := range headerLine.FindAllStringSubmatch(out, -1) {
		if _, dup := h[m[1]]; !dup {
			h[m[1]] = m[2]
		}
	}
	if h["Client-Id"] != testClientID || h["Request-Time"] != "2026-05-01T10:00:00+08:00" {
		t.Fatalf("headers = %q", h)
	}
	ring := signature.NewKeyRing()
	if err := ring.Add(testClientID, 3, &keys(t).dws.PublicKey); err != nil {
		t.Fatal(err)
	}
	v, err := ring.Verify(testClientID, uri, h["Request-Time"], sample, h["Signature"])
	if err != nil || v != 3 {
		t.Fatalf("printed Signature does not verify: version %d, %v", v, err)
	}
	// The same signature does not verify over another URI: the query is signed.
	if _, err := ring.Verify(testClientID, addPath, h["Request-Time"], sample, h["Signature"]); err == nil {
		t.Fatal("signature verifies without the query it was made over")
	}
	for _, want := range []string{
		"curl -sS -g 'http://localhost:8080" + uri + "'",
		"-H 'Signature: " + h["Signature"] + "'",
		"-H 'Request-Time: 2026-05-01T10:00:00+08:00'",
		"-H 'Content-Type: application/json; charset=UTF-8'",
		"--data-binary '@" + body + "'",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("curl line lacks %q:\n%s", want, out)
		}
	}
	opensslVerify(t, ck.dwsPublic, uri, h["Request-Time"], sample, h["Signature"])
}

// opensslVerify cross-checks a Signature header value with openssl, when it
// is installed (CI installs it).
func opensslVerify(t *testing.T, pubFile, uri, requestTime string, body []byte, header string) {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Log("openssl not installed: cross-check skipped")
		return
	}
	encoded := header[strings.Index(header, "signature=")+len("signature="):]
	raw, err := url.PathUnescape(encoded)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	content := signature.AppendSignedContent(nil, uri, testClientID, requestTime, body)
	if err := os.WriteFile(filepath.Join(dir, "content"), content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sig"), sig, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "dgst", "-sha256", "-verify", pubFile, "-signature", filepath.Join(dir, "sig"), filepath.Join(dir, "content")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verified OK") {
		t.Fatalf("openssl does not verify the signature: %v: %s", err, out)
	}
}

func TestSignDefaultsRequestTimeToNow(t *testing.T) {
	ck := writeCLIKeys(t)
	body := filepath.Join(t.TempDir(), "b.json")
	if err := os.WriteFile(body, []byte(`{"requestId":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	before := time.Now().UnixMilli()
	out, err := runCLI(t, "sign", "--client-id", testClientID, "--key", ck.dwsPrivate, "--uri", addPath, body)
	if err != nil {
		t.Fatalf("sign: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^Request-Time: (\d{13})$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no epoch-millisecond Request-Time in:\n%s", out)
	}
	ms, _ := strconv.ParseInt(m[1], 10, 64)
	if ms < before || ms > time.Now().UnixMilli() {
		t.Fatalf("Request-Time %d is not now", ms)
	}
	if !strings.Contains(out, "keyVersion=1,") {
		t.Errorf("default key version is not 1:\n%s", out)
	}
}

func TestCommandFlagErrors(t *testing.T) {
	ck := writeCLIKeys(t)
	dir := t.TempDir()
	body := filepath.Join(dir, "body.json")
	if err := os.WriteFile(body, []byte(`{"id":"no requestId here"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	ecKey := filepath.Join(dir, "ec.pem")
	if err := os.WriteFile(ecKey, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	send := []string{"send", "--url", gatewayURL + addPath, "--client-id", testClientID, "--key", ck.dwsPrivate}
	sign := []string{"sign", "--client-id", testClientID, "--key", ck.dwsPrivate, "--uri", addPath}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", []string{"send", "--colour"}, "unknown flag: --colour"},
		{"keygen without out", []string{"keygen"}, "missing required flag --out"},
		{"keygen name with slash", []string{"keygen", "--out", dir, "--name", "a/b"}, "--name"},
		{"keygen argument", []string{"keygen", "--out", dir, "extra"}, "takes no arguments"},
		{"sign without client id", []string{"sign", "--key", ck.dwsPrivate, "--uri", addPath, body}, "missing required flag --client-id"},
		{"sign without key", []string{"sign", "--client-id", testClientID, "--uri", addPath, body}, "missing required flag --key"},
		{"sign without uri", []string{"sign", "--client-id", testClientID, "--key", ck.dwsPrivate, body}, "missing required flag --uri"},
		{"sign without body file", sign, "exactly one argument, the body file"},
		{"sign two body files", append(sign[:len(sign):len(sign)], body, body), "exactly one argument"},
		{"sign uri without slash", []string{"sign", "--client-id", "c", "--key", ck.dwsPrivate, "--uri", "dws/notify", body}, "must be a request target"},
		{"sign bad request time", append(sign[:len(sign):len(sign)], "--request-time", "yesterday", body), "is not a Request-Time DWS sends"},
		{"sign negative key version", append(sign[:len(sign):len(sign)], "--key-version", "-1", body), "must not be negative"},
		{"sign unreadable key", []string{"sign", "--client-id", "c", "--key", missing, "--uri", addPath, body}, "--key: cannot read " + missing + ": no such file or directory"},
		{"sign public key as key", []string{"sign", "--client-id", "c", "--key", ck.dwsPublic, "--uri", addPath, body}, "is not a usable RSA private key: found a public key"},
		{"sign EC key", []string{"sign", "--client-id", "c", "--key", ecKey, "--uri", addPath, body}, "is not a usable RSA private key: found an EC private key"},
		{"sign unreadable body", append(sign[:len(sign):len(sign)], missing), "reading the body file " + missing + ": no such file or directory"},
		{"send without url", []string{"send", "--client-id", "c", "--key", ck.dwsPrivate, "--sample", "addPaymentMethod"}, "missing required flag --url"},
		{"send without client id", []string{"send", "--url", gatewayURL, "--key", ck.dwsPrivate, "--sample", "addPaymentMethod"}, "missing required flag --client-id"},
		{"send without key", []string{"send", "--url", gatewayURL, "--client-id", "c", "--sample", "addPaymentMethod"}, "missing required flag --key"},
		{"send sample and body", append(send[:len(send):len(send)], "--sample", "addPaymentMethod", "--body", body), "give either --sample or --body, not both"},
		{"send no body", send, "missing the notification body: give --sample (addPaymentMethod or removePaymentMethod) or --body FILE"},
		{"send unknown sample", append(send[:len(send):len(send)], "--sample", "payment"), `unknown --sample "payment": the built-in samples are addPaymentMethod and removePaymentMethod`},
		{"send unreadable body", append(send[:len(send):len(send)], "--body", missing), "--body: cannot read"},
		{"send body without requestId", append(send[:len(send):len(send)], "--body", body, "--request-id", "r1"), "--request-id: the body has no top-level requestId to replace"},
		{"send empty request id", append(send[:len(send):len(send)], "--sample", "addPaymentMethod", "--request-id", ""), "--request-id must not be empty"},
		{"send ftp url", []string{"send", "--url", "ftp://localhost/x", "--client-id", "c", "--key", ck.dwsPrivate, "--sample", "addPaymentMethod"}, "must be an http:// or https:// URL"},
		{"send private key as verify key", append(send[:len(send):len(send)], "--sample", "addPaymentMethod", "--verify-key", ck.dwsPrivate), "--verify-key " + ck.dwsPrivate + " is not a usable RSA public key: found a private key"},
		{"send unreadable verify key", append(send[:len(send):len(send)], "--sample", "addPaymentMethod", "--verify-key", missing), "--verify-key: cannot read"},
		{"send unreadable key", []string{"send", "--url", gatewayURL, "--client-id", "c", "--key", missing, "--sample", "addPaymentMethod"}, "--key: cannot read"},
		{"send argument", append(send[:len(send):len(send)], "--sample", "addPaymentMethod", "body.json"), "takes no arguments"},
		{"inspect without request id", []string{"inspect"}, "missing required flag --request-id"},
		{"inspect unknown api", []string{"inspect", "--request-id", "r", "--api", "notifyPayment"}, `unknown --api "notifyPayment"`},
		{"inspect bad address", []string{"inspect", "--request-id", "r", "--address", "localhost:1-9"}, "invalid admin API address"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := runCLI(t, c.args...)
			if err == nil {
				t.Fatalf("no error; output:\n%s", out)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
			for _, secret := range []string{"MII", "PRIVATE KEY-----"} {
				if strings.Contains(err.Error(), secret) || strings.Contains(out, secret) {
					t.Fatalf("message shows key material: %q / %q", err, out)
				}
			}
		})
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestGatewayNotRunning(t *testing.T) {
	ck := writeCLIKeys(t)
	addr := closedPort(t)
	_, err := runCLI(t, "inspect", "--request-id", "r1", "--address", addr)
	if want := "no Caddy admin API at " + addr + ": is the gateway running? (connection refused)"; err == nil || err.Error() != want {
		t.Fatalf("inspect: err = %v, want %q", err, want)
	}
	sock := filepath.Join(t.TempDir(), "admin.sock")
	_, err = runCLI(t, "inspect", "--request-id", "r1", "--address", "unix/"+sock)
	if want := "no Caddy admin API at unix/" + sock + ": is the gateway running? (no such file or directory)"; err == nil || err.Error() != want {
		t.Fatalf("inspect on a unix socket: err = %v, want %q", err, want)
	}
	out, err := runCLI(t, "send", "--url", "http://"+addr+addPath, "--client-id", testClientID, "--key", ck.dwsPrivate, "--sample", "addPaymentMethod")
	if want := "nothing is listening at " + addr + ": is the gateway running? (connection refused)"; err == nil || err.Error() != want {
		t.Fatalf("send: err = %v, want %q (output %q)", err, want, out)
	}
}

func TestReplaceTopLevelString(t *testing.T) {
	sample, _ := notification.Sample("addPaymentMethod")
	cases := []struct {
		name, body, value, want, err string
	}{
		{name: "seed sample", body: string(sample), value: "my-2",
			want: strings.Replace(string(sample), `"20990501203220303032821078591"`, `"my-2"`, 1)},
		{name: "nested member of the same name is left alone", body: `{"a":{"requestId":"inner"},"requestId":"outer","z":[1,{"requestId":"x"}]}`, value: "new",
			want: `{"a":{"requestId":"inner"},"requestId":"new","z":[1,{"requestId":"x"}]}`},
		{name: "spacing kept", body: "{ \"requestId\" :\n\t\"old\" , \"b\" : \"c\" }", value: "n",
			want: "{ \"requestId\" :\n\t\"n\" , \"b\" : \"c\" }"},
		{name: "escaped member name", body: `{"request\u0049d":"old"}`, value: "n", want: `{"request\u0049d":"n"}`},
		{name: "non-string value", body: `{"requestId":123,"x":"y"}`, value: "n", want: `{"requestId":"n","x":"y"}`},
		{name: "value needing escapes", body: `{"requestId":"old"}`, value: `a"b<&>\`, want: `{"requestId":"a\"b<&>\\"}`},
		{name: "missing", body: `{"request_id":"old"}`, value: "n", err: "no top-level requestId"},
		{name: "only nested", body: `{"a":{"requestId":"old"}}`, value: "n", err: "no top-level requestId"},
		{name: "twice", body: `{"requestId":"a","requestId":"b"}`, value: "n", err: "twice"},
		{name: "array", body: `["requestId"]`, value: "n", err: "not a JSON object"},
		{name: "not json", body: `requestId=1`, value: "n", err: "not JSON"},
		{name: "truncated", body: `{"requestId":"a",`, value: "n", err: "not valid JSON"},
		{name: "trailing data", body: `{"requestId":"a"} {}`, value: "n", err: "data after"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := replaceTopLevelString([]byte(c.body), "requestId", c.value)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
		})
	}
	// The spliced sample is still a valid notification with the new id.
	got, err := replaceTopLevelString(sample, "requestId", "my-3")
	if err != nil {
		t.Fatal(err)
	}
	api, _ := notification.LookupAPI("addPaymentMethod")
	res, err := api.Validate(got, notification.Options{})
	if err != nil || res.Key != "my-3" {
		t.Fatalf("spliced sample: requestId %q, %v", res.Key, err)
	}
}

func TestRoughDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:                    "0s",
		1500 * time.Millisecond:         "2s",
		59 * time.Minute:                "59m0s",
		90*time.Minute + 20*time.Second: "1h30m",
		168 * time.Hour:                 "7d0h",
		167*time.Hour + 59*time.Minute:  "7d0h",
		49*time.Hour + 10*time.Minute:   "2d1h",
	} {
		if got := roughDuration(d); got != want {
			t.Errorf("roughDuration(%v) = %q, want %q", d, got, want)
		}
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
