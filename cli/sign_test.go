package cli

import (
	"encoding/base64"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/notification"
	"github.com/dwsnotify/dws_notify/signature"
)

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
