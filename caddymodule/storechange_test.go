package caddymodule

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/dwsnotify/dws_notify/idempotency/redisstore/redistest"
)

// A reload that serves the same Client-Id and API from another store
// warns once, naming the APIs and both stores; a reload that keeps the
// store does not. The old config's cleanup leaves the new config's
// entries: going back to the first store warns again.
func TestReloadToAnotherStoreWarns(t *testing.T) {
	b := newBackend(t)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	first, second := t.TempDir(), t.TempDir()
	config := func(storage, extra string) gatewayConfig {
		return gatewayConfig{storage: storage, extra: extra,
			globals: "log {\n\t\toutput file " + logFile + "\n\t\tformat json\n\t\tlevel INFO\n\t}"}
	}
	warnings := func() [][]byte { return storeWarnings(logFile) }
	expect := func(t *testing.T, n int) { t.Helper(); expectStoreWarnings(t, logFile, n) }

	// Every config is started with the test's t: a subtest's cleanup
	// would unload it when the phase ends.
	top := t
	g := startGateway(t, b, config(first, ""))
	n := g.notice(addPath, addSample(t, "moved-1"))
	g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")

	phase(t, "a reload on the same storage", func(t *testing.T) {
		startGateway(top, b, config(first, "retention 200h"))
		expect(t, 0)
	})
	phase(t, "a reload to another storage", func(t *testing.T) {
		g = startGateway(top, b, config(second, ""))
		expect(t, 1)
		w := warnings()[0]
		for _, want := range []string{`"level":"warn"`, testClientID + "/addPaymentMethod", testClientID + "/removePaymentMethod",
			`"old_store":` + strconv.Quote(canonicalDir(t, first)), `"new_store":` + strconv.Quote(canonicalDir(t, second)), `Changing a handler's store`} {
			if !bytes.Contains(w, []byte(want)) {
				t.Errorf("the warning does not say %s:\n%s", want, w)
			}
		}
		// What it warns of: the resend is forwarded again.
		n.time = ""
		g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")
		if got := len(b.hits()); got != 2 {
			t.Fatalf("backend got %d requests, want 2", got)
		}
	})
	phase(t, "a reload that keeps the new storage", func(t *testing.T) {
		startGateway(top, b, config(second, "retention 200h"))
		expect(t, 1)
	})
	phase(t, "a reload back to the first storage", func(t *testing.T) {
		startGateway(top, b, config(first, ""))
		expect(t, 2)
	})
}

// storeWarnings returns the store-change warnings in the log file.
func storeWarnings(logFile string) [][]byte {
	const warning = "records in the old store no longer deduplicate"
	raw, _ := os.ReadFile(logFile)
	var lines [][]byte
	for line := range bytes.Lines(raw) {
		if bytes.Contains(line, []byte(warning)) {
			lines = append(lines, line)
		}
	}
	return lines
}

// expectStoreWarnings fails t unless the log file holds n store-change
// warnings.
func expectStoreWarnings(t *testing.T, logFile string, n int) {
	t.Helper()
	if got := storeWarnings(logFile); len(got) != n {
		t.Fatalf("%d store-change warnings, want %d:\n%s", len(got), n, bytes.Join(got, nil))
	}
}

// A config that moves a site to another store but never runs warns of
// nothing: neither a reload refused because another site of it fails to
// provision (the running config keeps its store and serves on), nor a
// validation of it. The same move, loaded, warns once.
func TestRefusedReloadDoesNotWarnOfStoreChange(t *testing.T) {
	b := newBackend(t)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	first, second := t.TempDir(), t.TempDir()
	config := gatewayConfig{storage: first,
		globals: "log {\n\t\toutput file " + logFile + "\n\t\tformat json\n\t\tlevel INFO\n\t}"}
	g := startGateway(t, b, config)
	n := g.notice(addPath, addSample(t, "refused-1"))
	g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")

	moved := config
	moved.storage = second
	movedFile, _ := gatewayCaddyfile(t, b, &moved)
	// A second site, less specific (its routes come after the first
	// site's, so the moved handler is provisioned first), whose key file
	// does not exist: the config is refused.
	missing := filepath.Join(t.TempDir(), "missing.pem")
	refused := movedFile + fmt.Sprintf(`
http://:9080 {
	dws_notify {
		client_id 2188000000000099
		dws_public_key {file.%s}
		api addPaymentMethod
		storage %s
	}
}
`, missing, t.TempDir())

	phase(t, "a refused reload", func(t *testing.T) {
		res, err := http.Post("http://localhost:2999/load", "text/caddyfile", strings.NewReader(refused))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusOK || !bytes.Contains(body, []byte("missing.pem")) {
			t.Fatalf("the reload with a missing key file: HTTP %d: %s; want it refused", res.StatusCode, body)
		}
		expectStoreWarnings(t, logFile, 0)
		// The running config still dedupes from the first store.
		n.time = ""
		g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")
		if got := len(b.hits()); got != 1 {
			t.Fatalf("backend got %d requests, want 1", got)
		}
	})
	phase(t, "a validation of the move", func(t *testing.T) {
		adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(movedFile), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := caddy.Validate(decodeCaddyConfig(t, adapted)); err != nil {
			t.Fatalf("validate: %v", err)
		}
		expectStoreWarnings(t, logFile, 0)
	})
	phase(t, "the move loaded", func(t *testing.T) {
		startGateway(t, b, moved)
		expectStoreWarnings(t, logFile, 1)
	})
}

// The store a key moves from is the newest other config's, unless one of
// that config's handlers (two sites of it) already serves the key from
// the new store.
func TestOtherStore(t *testing.T) {
	c1, c2, c3 := make(chan struct{}), make(chan struct{}), make(chan struct{})
	x := storeUse{config: c1, data: "x", name: "/x"}
	y := storeUse{config: c1, data: "y", name: "/y"}
	for _, tc := range []struct {
		name string
		uses []storeUse
		use  storeUse
		want string // "" for no move
	}{
		{"first config", nil, storeUse{config: c2, data: "x"}, ""},
		{"same store", []storeUse{x}, storeUse{config: c2, data: "x"}, ""},
		{"another store", []storeUse{x}, storeUse{config: c2, data: "z"}, "/x"},
		{"two sites, one on the new store", []storeUse{x, y}, storeUse{config: c2, data: "x"}, ""},
		{"two sites, neither on the new store", []storeUse{x, y}, storeUse{config: c2, data: "z"}, "/y"},
		{"own config's entries do not count", []storeUse{x, {config: c2, data: "w", name: "/w"}}, storeUse{config: c2, data: "x"}, ""},
		{"the newest other config counts", []storeUse{x, {config: c3, data: "z", name: "/z"}}, storeUse{config: c2, data: "x"}, "/z"},
	} {
		got, moved := otherStore(tc.uses, tc.use)
		if moved != (tc.want != "") || got != tc.want {
			t.Errorf("%s: otherStore = %q, %v; want %q", tc.name, got, moved, tc.want)
		}
	}
}

// A reload that reaches the same Redis records another way (the
// sentinels reordered, one dropped) does not warn; one that changes the
// prefix, so the records, does.
func TestSentinelReloadWarnsOnlyOfOtherRecords(t *testing.T) {
	const sentinelPassword = "sentinel-secret-5e1"
	d := redistest.StartSentinel(t, redistest.SentinelConfig{Data: redistest.Config{Password: redisSecret}, Password: sentinelPassword})
	t.Setenv("DWS_TEST_REDIS_PASSWORD", redisSecret)
	t.Setenv("DWS_TEST_SENTINEL_PASSWORD", sentinelPassword)
	b := newBackend(t)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	config := func(prefix string, sentinels ...string) gatewayConfig {
		return gatewayConfig{
			store: "store redis sentinel " + d.MasterName + " " + strings.Join(sentinels, " ") + " {\n\t\t\tpassword {env.DWS_TEST_REDIS_PASSWORD}\n" +
				"\t\t\tsentinel_password {env.DWS_TEST_SENTINEL_PASSWORD}\n\t\t\tprefix " + prefix + "\n\t\t}",
			globals: "log {\n\t\toutput file " + logFile + "\n\t\tformat json\n\t\tlevel INFO\n\t}"}
	}
	a := d.Addrs()
	top := t
	g := startGateway(t, b, config("change:", a...))
	g.send(g.notice(addPath, addSample(t, "sentinel-change-1"))).expect(t, http.StatusOK, "S", "SUCCESS")
	phase(t, "sentinels reordered", func(t *testing.T) {
		startGateway(top, b, config("change:", a[2], a[0], a[1]))
		expectStoreWarnings(t, logFile, 0)
	})
	phase(t, "a sentinel dropped", func(t *testing.T) {
		startGateway(top, b, config("change:", a[1], a[0]))
		expectStoreWarnings(t, logFile, 0)
	})
	phase(t, "another prefix", func(t *testing.T) {
		startGateway(top, b, config("changed:", a[1], a[0]))
		expectStoreWarnings(t, logFile, 1)
	})
}
