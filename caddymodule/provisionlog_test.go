package caddymodule

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dwsnotify/dws_notify/buildinfo"
	"github.com/dwsnotify/dws_notify/config"
	"github.com/dwsnotify/dws_notify/notifylog"
)

// The provision log line.

// The provision line: the build, the APIs and paths, each key's version and
// the SHA-256 of its DER SubjectPublicKeyInfo as openssl prints it, the
// store and the effective settings; no key material.
func TestProvisionLogLine(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	k := keys(t)
	h := baseHandler(t)
	three := 3
	h.DWSPublicKey = append(h.DWSPublicKey, config.Key{Key: "{file." + filepath.Join(k.dir, "dws_next_public.pem") + "}", KeyVersion: &three})
	h.MerchantPrivateKey = &config.Key{Key: "{file." + filepath.Join(k.dir, "merchant_private.pem") + "}", KeyVersion: &three}
	h.ForwardTimeout = config.Duration(3 * time.Second)
	logs := provisioned(t, newContext(t), h)
	h.logProvisioned()
	lines := logs.FilterMessage("dws_notify provisioned").All()
	if len(lines) != 1 {
		t.Fatalf("%d provision lines", len(lines))
	}
	e := lines[0]
	m := e.ContextMap()
	if e.Level != zapcore.InfoLevel || m["version"] != buildinfo.Plugin().Version || m["version"] == "" {
		t.Errorf("level %s version %v", e.Level, m["version"])
	}

	// The commands docs/operations.md gives.
	fingerprint := func(pemFile string, private bool) string {
		t.Helper()
		cmd := "openssl pkey -pubin -in \"$1\" -outform DER | sha256sum"
		if private {
			cmd = "openssl pkey -in \"$1\" -pubout -outform DER | sha256sum"
		}
		out, err := exec.Command("bash", "-c", "set -o pipefail; "+cmd, "bash", pemFile).Output()
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		sum, _, _ := strings.Cut(string(out), " ")
		if len(sum) != 64 {
			t.Fatalf("%s printed %q", cmd, out)
		}
		return sum
	}
	wantKeys := []keyPrint{
		{Version: 1, SHA256: fingerprint(filepath.Join(k.dir, "dws_public.pem"), false)},
		{Version: 3, SHA256: fingerprint(filepath.Join(k.dir, "dws_next_public.pem"), false)},
	}
	if got, _ := m["dws_public_keys"].([]keyPrint); !slices.Equal(got, wantKeys) {
		t.Errorf("dws_public_keys %v, want %v", m["dws_public_keys"], wantKeys)
	}
	wantMerchant := keyPrint{Version: 3, SHA256: fingerprint(filepath.Join(k.dir, "merchant_private.pem"), true)}
	if got, _ := m["merchant_key"].(*keyPrint); got == nil || *got != wantMerchant {
		t.Errorf("merchant_key %v, want %v", m["merchant_key"], wantMerchant)
	}
	wantPaths := []notifylog.ServedPath{{API: "addPaymentMethod", Path: addPath}, {API: "removePaymentMethod", Path: removePath}}
	if got, _ := m["apis"].([]notifylog.ServedPath); !slices.Equal(got, wantPaths) {
		t.Errorf("apis %v, want %v", m["apis"], wantPaths)
	}
	st, _ := m["store"].(notifylog.StoreInfo)
	if dir, _ := filepath.EvalSymlinks(h.Storage); st.Kind != "badger" || st.Description != dir || st.ID != storeID(dir) {
		t.Errorf("store %+v, want badger %s %s", st, dir, storeID(dir))
	}
	for k, v := range map[string]any{"forward_timeout": 3 * time.Second, "claim_lease": 11 * time.Second, "retention": config.DefaultRetention,
		"request_time_tolerance": "48h0m0s", "max_body_size": int64(config.DefaultMaxBodySize), "result_message_field": "resultMsg"} {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}

	// No key material: the line as Caddy would write it, in JSON.
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	buf, err := enc.EncodeEntry(e.Entry, e.Context)
	if err != nil {
		t.Fatal(err)
	}
	line := buf.String()
	for _, key := range []*struct{ der []byte }{{mustPKIX(t, &k.dws.PublicKey)}, {mustPKIX(t, &k.dwsNext.PublicKey)}, {mustPKIX(t, &k.merchant.PublicKey)}} {
		b64 := base64.StdEncoding.EncodeToString(key.der)
		for i := 0; i+24 <= len(b64); i += 24 {
			if strings.Contains(line, b64[i:i+24]) {
				t.Fatalf("the provision line carries key material: %s", line)
			}
		}
	}
	priv, err := os.ReadFile(filepath.Join(k.dir, "merchant_private.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(priv)
	if strings.Contains(line, base64.StdEncoding.EncodeToString(block.Bytes)[40:80]) {
		t.Fatalf("the provision line carries the private key: %s", line)
	}
}

func mustPKIX(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
