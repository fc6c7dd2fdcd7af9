package caddymodule

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
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
	const warning = "records in the old store no longer deduplicate"
	warnings := func() [][]byte {
		raw, _ := os.ReadFile(logFile)
		var lines [][]byte
		for line := range bytes.Lines(raw) {
			if bytes.Contains(line, []byte(warning)) {
				lines = append(lines, line)
			}
		}
		return lines
	}
	expect := func(t *testing.T, n int) {
		t.Helper()
		if got := warnings(); len(got) != n {
			t.Fatalf("%d store-change warnings, want %d:\n%s", len(got), n, bytes.Join(got, nil))
		}
	}

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

// The store a key moves from is the newest other config's, unless one of
// that config's handlers (two sites of it) already serves the key from
// the new store.
func TestOtherStore(t *testing.T) {
	c1, c2, c3 := make(chan struct{}), make(chan struct{}), make(chan struct{})
	x := storeUse{config: c1, id: "x", name: "/x"}
	y := storeUse{config: c1, id: "y", name: "/y"}
	for _, tc := range []struct {
		name string
		uses []storeUse
		use  storeUse
		want string // "" for no move
	}{
		{"first config", nil, storeUse{config: c2, id: "x"}, ""},
		{"same store", []storeUse{x}, storeUse{config: c2, id: "x"}, ""},
		{"another store", []storeUse{x}, storeUse{config: c2, id: "z"}, "/x"},
		{"two sites, one on the new store", []storeUse{x, y}, storeUse{config: c2, id: "x"}, ""},
		{"two sites, neither on the new store", []storeUse{x, y}, storeUse{config: c2, id: "z"}, "/y"},
		{"own config's entries do not count", []storeUse{x, {config: c2, id: "w", name: "/w"}}, storeUse{config: c2, id: "x"}, ""},
		{"the newest other config counts", []storeUse{x, {config: c3, id: "z", name: "/z"}}, storeUse{config: c2, id: "x"}, "/z"},
	} {
		got, moved := otherStore(tc.uses, tc.use)
		if moved != (tc.want != "") || got != tc.want {
			t.Errorf("%s: otherStore = %q, %v; want %q", tc.name, got, moved, tc.want)
		}
	}
}
