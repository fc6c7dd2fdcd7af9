package cli

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/dwsnotify/dws_notify/caddymodule"
	"github.com/dwsnotify/dws_notify/config"
)

// `dws-notify check` adapts real config files with Caddy's adapters (the
// Caddyfile adapter with the dws_notify directive registered) and runs
// the route-order check the gateway runs at start.

// docBlockAfter returns the fenced block of docs/configuration.md right
// below the doc-check marker `run <test>`, and the first ```text block
// after it, if any ("" when there is none before the next marker).
func docBlockAfter(t *testing.T, test string) (block, text string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	marker := "<!-- doc-check: run " + test + " -->\n"
	_, rest, ok := strings.Cut(string(data), marker)
	if !ok {
		t.Fatalf("docs/configuration.md has no marker %q", strings.TrimSpace(marker))
	}
	fence, body, ok := strings.Cut(rest, "\n")
	if !ok || !strings.HasPrefix(fence, "```") {
		t.Fatalf("no fenced block below %q", strings.TrimSpace(marker))
	}
	block, rest, ok = strings.Cut(body, "\n```\n")
	if !ok {
		t.Fatalf("the block below %q never closes", strings.TrimSpace(marker))
	}
	rest, _, _ = strings.Cut(rest, "<!-- doc-check:")
	if _, after, ok := strings.Cut(rest, "```text\n"); ok {
		text, _, _ = strings.Cut(after, "\n```")
	}
	return block + "\n", text
}

// writeConfig writes a config file named name into a new directory.
func writeConfig(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The refused Caddyfile of configuration.md "Order in a route" fails the
// check with the message the gateway refuses it with at start (the doc's
// text block shows that one, after the app's prefix).
func TestCheckDocRefusedCaddyfile(t *testing.T) {
	caddyfile, startErr := docBlockAfter(t, "TestRouteOrderRefused")
	if startErr == "" {
		t.Fatal("no text block with the start error below the refused Caddyfile")
	}
	out, err := runCLI(t, "check", "--config", writeConfig(t, "Caddyfile", caddyfile))
	var re *config.RouteError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v (output %q), want a *config.RouteError", err, out)
	}
	if re.Server != "srv0" || len(re.Shadowed) != 1 || re.Shadowed[0].ByName != "reverse_proxy" {
		t.Fatalf("RouteError = %+v, want the reverse_proxy of srv0", re)
	}
	if want := "dws_notify app module: start: " + err.Error(); want != startErr {
		t.Fatalf("check says\n%s\nthe doc's start error is\n%s", want, startErr)
	}
	if out != "" {
		t.Fatalf("output %q on a refused config, want none", out)
	}
	docMustShow(t, "Error: "+err.Error())
}

// docMustShow fails unless docs/tooling.md's check section shows line.
func docMustShow(t *testing.T, line string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "docs", "tooling.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "\n"+line+"\n") {
		t.Errorf("docs/tooling.md does not show the output line\n%s", line)
	}
}

func TestCheckDocFixedCaddyfile(t *testing.T) {
	caddyfile, _ := docBlockAfter(t, "TestRouteOrderFixed")
	out, err := runCLI(t, "check", "--config", writeConfig(t, "Caddyfile", caddyfile))
	if err != nil {
		t.Fatal(err)
	}
	if want := "route order: ok (1 dws_notify handler in 1 server)\n"; out != want {
		t.Fatalf("output %q, want %q", out, want)
	}
	docMustShow(t, strings.TrimSuffix(out, "\n"))
}

// The two-handler Caddyfile of configuration.md "One dws_notify per
// chain" (one dws_notify per Client-Id, the second after the first) fails
// the check with the start error the doc shows, and its fix, a handle
// block per Client-Id, passes. Before, check printed "route order: ok (2
// dws_notify handlers in 1 server)" for the first.
func TestCheckDocTwoHandlers(t *testing.T) {
	caddyfile, startErr := docBlockAfter(t, "TestRouteOrderTwoHandlers")
	if startErr == "" {
		t.Fatal("no text block with the start error below the two-handler Caddyfile")
	}
	out, err := runCLI(t, "check", "--config", writeConfig(t, "Caddyfile", caddyfile))
	var re *config.RouteError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v (output %q), want a *config.RouteError", err, out)
	}
	want := []config.Shadowed{{Notify: "routes[0].handle[0].routes[0].handle[1]", By: "routes[0].handle[0].routes[0].handle[0]", ByName: config.NotifyHandlerName}}
	if re.Server != "srv0" || !slices.Equal(re.Shadowed, want) {
		t.Fatalf("RouteError = %+v, want the second dws_notify after the first", re)
	}
	if want := "dws_notify app module: start: " + err.Error(); want != startErr {
		t.Fatalf("check says\n%s\nthe doc's start error is\n%s", want, startErr)
	}
	if out != "" {
		t.Fatalf("output %q on a refused config, want none", out)
	}

	fixed, _ := docBlockAfter(t, "TestRouteOrderTwoHandlersFixed")
	out, err = runCLI(t, "check", "--config", writeConfig(t, "Caddyfile", fixed))
	if err != nil {
		t.Fatal(err)
	}
	if want := "route order: ok (2 dws_notify handlers in 1 server)\n"; out != want {
		t.Fatalf("output %q, want %q", out, want)
	}
}

// notifyJSON is a dws_notify handler's JSON serving addPaymentMethod.
const notifyJSON = `{"handler": "dws_notify", "client_id": ["2188120000000000"],
	"dws_public_key": [{"key": "{file./etc/dws/alipay_public_key.pem}"}],
	"api": [{"name": "addPaymentMethod", "path": "/dws/notify/addPaymentMethod"}]}`

const proxyJSON = `{"handler": "reverse_proxy", "upstreams": [{"dial": "127.0.0.1:8080"}]}`

func TestCheckJSON(t *testing.T) {
	ok := `{"apps": {"http": {"servers": {
	"notify": {"listen": [":8443"], "routes": [
		{"match": [{"path": ["/health"]}], "handle": [{"handler": "static_response", "body": "ok"}]},
		{"handle": [{"handler": "subroute", "routes": [{"handle": [` + notifyJSON + `, ` + proxyJSON + `]}]}]}
	]},
	"admin": {"listen": [":9443"], "routes": [{"handle": [{"handler": "invoke", "name": "notify"}]}],
		"named_routes": {"notify": {"handle": [` + notifyJSON + `, ` + proxyJSON + `]}}},
	"static": {"listen": [":80"], "routes": [{"handle": [{"handler": "file_server"}]}]}
}}}}`
	// No adapter: a .json file is read as it is.
	out, err := runCLI(t, "check", "--config", writeConfig(t, "caddy.json", ok))
	if err != nil {
		t.Fatal(err)
	}
	if want := "route order: ok (2 dws_notify handlers in 2 servers)\n"; out != want {
		t.Fatalf("output %q, want %q", out, want)
	}

	// A POST matcher in lower case: Caddy's method matcher upper-cases
	// its methods when it is provisioned, so the gateway refuses this at
	// start, and the check must too.
	refused := `{"apps": {"http": {"servers": {"notify": {"listen": [":8443"], "routes": [
		{"match": [{"method": ["post"]}], "handle": [` + proxyJSON + `]},
		{"handle": [` + notifyJSON + `]}
	]}}}}}`
	out, err = runCLI(t, "check", "--config", writeConfig(t, "caddy.json", refused), "--adapter", "")
	var re *config.RouteError
	if !errors.As(err, &re) {
		t.Fatalf("lower-case post: err = %v (output %q), want a *config.RouteError", err, out)
	}
	if want := "server notify: the dws_notify handler at routes[1].handle[0] never runs: the reverse_proxy at routes[0].handle[0] answers every request for its api paths before it"; !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("err = %v, want it to start with %q", err, want)
	}

	// Not JSON, and no adapter named: Caddy's own message says so.
	_, err = runCLI(t, "check", "--config", writeConfig(t, "caddy.json", "notify.example.com {\n}\n"))
	if err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Fatalf("a Caddyfile named caddy.json: err = %v, want Caddy's not valid JSON", err)
	}
}

// An adapter error is the adapter's, with the file and line.
func TestCheckAdaptError(t *testing.T) {
	path := writeConfig(t, "Caddyfile", `notify.example.com {
	dws_notify {
		client_id 2188120000000000
		api_path /dws/notify/addPaymentMethod
	}
	reverse_proxy 127.0.0.1:8080
}
`)
	out, err := runCLI(t, "check", "--config", path)
	if err == nil {
		t.Fatalf("a Caddyfile with an unknown subdirective passed: %q", out)
	}
	for _, want := range []string{path + ":4", "api_path"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want it to name %q", err, want)
		}
	}

	_, err = runCLI(t, "check", "--config", path, "--adapter", "nope")
	if err == nil || err.Error() != "unrecognized config adapter: nope" {
		t.Fatalf("--adapter nope: err = %v", err)
	}
	_, err = runCLI(t, "check", "--config", filepath.Join(t.TempDir(), "Caddyfile"))
	if err == nil || !strings.Contains(err.Error(), "no such file or directory") {
		t.Fatalf("a missing file: err = %v", err)
	}
	_, err = runCLI(t, "check")
	if err == nil || err.Error() != "missing required flag --config" {
		t.Fatalf("no --config: err = %v", err)
	}
}

// A config without dws_notify passes, and says so.
func TestCheckWithoutNotify(t *testing.T) {
	for name, content := range map[string]string{
		"Caddyfile":      "example.com {\n\treverse_proxy 127.0.0.1:8080\n}\n",
		"no-http.json":   `{"admin": {"listen": "localhost:2019"}}`,
		"empty-app.json": `{"apps": {"http": {}}}`,
	} {
		out, err := runCLI(t, "check", "--config", writeConfig(t, name, content))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := "route order: ok (no dws_notify handler in the config)\n"; out != want {
			t.Fatalf("%s: output %q, want %q", name, out, want)
		}
	}
}
