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

	"github.com/spf13/cobra"
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
	der, err := x509.MarshalPKCS8PrivateKey(k.merchant)
	if err != nil {
		return nil, err
	}
	return k, os.WriteFile(filepath.Join(k.dir, "merchant_private.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
})

func keys(t testing.TB) *testKeys {
	t.Helper()
	k, err := keysOnce()
	if err != nil {
		t.Fatalf("generating test keys: %v", err)
	}
	return k
}

// runCLI runs `caddy dws-notify <args>` in-process on the same command tree
// the binary registers, and returns what it printed and its error.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := &cobra.Command{Use: "dws-notify", SilenceUsage: true, SilenceErrors: true}
	Setup(cmd)
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
