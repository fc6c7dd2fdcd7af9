package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/spf13/cobra"
)

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
	if got := strings.Join(names, " "); got != "backup check inspect keygen queue redeliver restore send sign" {
		t.Fatalf("subcommands = %q, want backup check inspect keygen queue redeliver restore send sign", got)
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
		{"send no body", send, "missing the notification body: give --sample (addPaymentMethod, notifyCapture, notifyDispute, notifyPayment, notifyRefund, notifyRegistrationStatus, notifySubscription, notifySubscriptionPayment, notifyVaulting, removePaymentMethod) or --body FILE"},
		{"send unknown sample", append(send[:len(send):len(send)], "--sample", "payment"), `unknown --sample "payment": the built-in samples are addPaymentMethod, notifyCapture, notifyDispute, notifyPayment, notifyRefund, notifyRegistrationStatus, notifySubscription, notifySubscriptionPayment, notifyVaulting, removePaymentMethod`},
		{"send unreadable body", append(send[:len(send):len(send)], "--body", missing), "--body: cannot read"},
		{"send body without requestId", append(send[:len(send):len(send)], "--body", body, "--request-id", "r1"), "--request-id: the body has no top-level requestId to replace"},
		{"send empty request id", append(send[:len(send):len(send)], "--sample", "addPaymentMethod", "--request-id", ""), "--request-id must not be empty"},
		{"send ftp url", []string{"send", "--url", "ftp://localhost/x", "--client-id", "c", "--key", ck.dwsPrivate, "--sample", "addPaymentMethod"}, "must be an http:// or https:// URL"},
		{"send private key as verify key", append(send[:len(send):len(send)], "--sample", "addPaymentMethod", "--verify-key", ck.dwsPrivate), "--verify-key " + ck.dwsPrivate + " is not a usable RSA public key: found a private key"},
		{"send unreadable verify key", append(send[:len(send):len(send)], "--sample", "addPaymentMethod", "--verify-key", missing), "--verify-key: cannot read"},
		{"send unreadable key", []string{"send", "--url", gatewayURL, "--client-id", "c", "--key", missing, "--sample", "addPaymentMethod"}, "--key: cannot read"},
		{"send argument", append(send[:len(send):len(send)], "--sample", "addPaymentMethod", "body.json"), "takes no arguments"},
		{"inspect without request id", []string{"inspect"}, "missing required flag --request-id"},
		{"inspect unknown api", []string{"inspect", "--request-id", "r", "--api", "notifyAuthorization"}, `unknown --api "notifyAuthorization": the APIs are addPaymentMethod, notifyCapture, notifyDispute, notifyPayment, notifyRefund, notifyRegistrationStatus, notifySubscription, notifySubscriptionPayment, notifyVaulting, removePaymentMethod`},
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
