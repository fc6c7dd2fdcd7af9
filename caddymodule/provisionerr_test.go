package caddymodule

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/dwsnotify/dws_notify/config"
	"github.com/dwsnotify/dws_notify/signature"
)

// A provisioning error names the handler by its Client-Ids and APIs, and
// reads without the key parser's package prefix; it stays a value that
// errors.As finds the key refusal in.
func TestProvisionErrorNamesTheHandler(t *testing.T) {
	k := keys(t)
	privFile := filepath.Join(k.dir, "merchant_private.pem")
	h := baseHandler(t)
	h.ClientID = []string{"2188120000000001", "2188120000000002"}
	h.DWSPublicKey = []config.Key{{Key: "{file." + privFile + "}"}}
	err := h.Provision(newContext(t))
	t.Cleanup(func() { _ = h.Cleanup() })
	if err == nil {
		t.Fatal("a private key was taken for dws_public_key")
	}
	want := "dws_notify for client_id 2188120000000001, 2188120000000002 (api addPaymentMethod at " + addPath +
		", removePaymentMethod at " + removePath + `): dws_public_key #1 (from {file.` + privFile + `}): found a private key (PEM "PRIVATE KEY") where a public key is required`
	if err.Error() != want {
		t.Fatalf("error %q\nwant  %q", err, want)
	}
	var ke *signature.KeyError
	if !errors.As(err, &ke) {
		t.Fatalf("%v holds no *signature.KeyError", err)
	}

	// A storage that cannot be made names the handler too.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	h = baseHandler(t)
	h.Storage = filepath.Join(file, "dir")
	err = h.Provision(newContext(t))
	t.Cleanup(func() { _ = h.Cleanup() })
	if err == nil || !strings.HasPrefix(err.Error(), "dws_notify for client_id "+testClientID+" (api addPaymentMethod at "+addPath) ||
		!strings.Contains(err.Error(), "creating storage directory") || strings.Count(err.Error(), "dws_notify") != 1 {
		t.Fatalf("error %v does not name the handler once", err)
	}
}

// In a Caddyfile with several sites, the error of the one that fails
// names its dws_notify block, which Caddy's "server srv0 ... route 0"
// does not.
func TestProvisionErrorSaysWhichSite(t *testing.T) {
	k := keys(t)
	site := func(host, clientID, keyFile, api string) string {
		return fmt.Sprintf("http://%s:9080 {\n\tdws_notify {\n\t\tclient_id %s\n\t\tdws_public_key {file.%s}\n\t\tapi %s\n\t\tstorage %s\n\t}\n}\n",
			host, clientID, filepath.Join(k.dir, keyFile), api, t.TempDir())
	}
	src := "{\n\tadmin off\n\tskip_install_trust\n}\n" +
		site("a.example", "2188120000000001", "dws_public.pem", "addPaymentMethod /a") +
		site("b.example", "2188120000000002", "merchant_private.pem", "removePaymentMethod /b")
	raw, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatal(err)
	}
	err = caddy.Validate(decodeCaddyConfig(t, raw))
	if err == nil {
		t.Fatal("validated a private key as dws_public_key")
	}
	msg := err.Error()
	if !strings.Contains(msg, "dws_notify for client_id 2188120000000002 (api removePaymentMethod at /b): dws_public_key #1 (from {file.") {
		t.Fatalf("error does not name the failing block: %v", err)
	}
	if strings.Contains(msg, "signature:") || strings.Contains(msg, "2188120000000001") {
		t.Fatalf("error names another block or the parser's package: %v", err)
	}
}
