package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dwsnotify/dws_notify/inbox"
)

// inboxBlock writes a fresh inbox key into the sandbox and returns the
// acknowledge on_receipt block that uses it, with the options given (one
// per line), for gatewayConfig.Extra.
func inboxBlock(t *testing.T, sb *sandbox, options string) string {
	t.Helper()
	material, _, err := inbox.Keygen()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(sb.Dir, "inbox.key")
	if _, err := os.Stat(path); err != nil {
		if err := os.WriteFile(path, []byte(material+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return "acknowledge on_receipt {\n\tkey {file." + path + "}\n" + options + "}\n"
}
