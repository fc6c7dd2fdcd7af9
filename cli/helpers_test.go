package cli

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// The commands are run in-process on the tree the binary registers, with
// real RSA-2048 key pairs as files. Their runs against a gateway are in
// caddymodule/cli_test.go, beside the in-process Caddy they need.

const (
	testClientID = "2188120000000000"
	addPath      = "/dws/notify/addPaymentMethod"
	gatewayURL   = "http://localhost:9080"
)

// testKeys are DWS's and the merchant's key pairs, made once per test
// binary, with the merchant's private key as a PEM file in dir.
type testKeys struct {
	dws, merchant *rsa.PrivateKey
	dir           string
}

var keysOnce = sync.OnceValues(func() (*testKeys, error) {
	k := &testKeys{}
	var err error
	if k.dws, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if k.merchant, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if k.dir, err = os.MkdirTemp("", "dws-notify-cli-keys-"); err != nil {
		return nil, err
	}
	// Each key as a PEM file: <name>_private.pem (PKCS#8) and
	// <name>_public.pem (SubjectPublicKeyInfo).
	for name, key := range map[string]*rsa.PrivateKey{"dws": k.dws, "merchant": k.merchant} {
		priv, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			return nil, err
		}
		for file, block := range map[string]*pem.Block{name + "_private.pem": {Type: "PRIVATE KEY", Bytes: priv}, name + "_public.pem": {Type: "PUBLIC KEY", Bytes: pub}} {
			if err := os.WriteFile(filepath.Join(k.dir, file), pem.EncodeToMemory(block), 0o600); err != nil {
				return nil, err
			}
		}
	}
	return k, nil
})

func keys(t testing.TB) *testKeys {
	t.Helper()
	k, err := keysOnce()
	if err != nil {
		t.Fatalf("generating test keys: %v", err)
	}
	return k
}

// runCLI runs `caddy dws-notify <args>` in-process (Run) and returns what
// it printed and its error.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := Run(&out, args...)
	return out.String(), err
}

// cliKeys are the test key pairs as files, in the forms the commands take.
type cliKeys struct {
	dwsPrivate, dwsPublic, merchantPrivate, merchantPublic string
}

func writeCLIKeys(t *testing.T) cliKeys {
	t.Helper()
	dir := keys(t).dir
	return cliKeys{
		dwsPrivate:      filepath.Join(dir, "dws_private.pem"),
		dwsPublic:       filepath.Join(dir, "dws_public.pem"),
		merchantPrivate: filepath.Join(dir, "merchant_private.pem"),
		merchantPublic:  filepath.Join(dir, "merchant_public.pem"),
	}
}
