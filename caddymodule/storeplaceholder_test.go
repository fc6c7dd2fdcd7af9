package caddymodule

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dwsnotify/dws_notify/config"
)

// The Badger directory's {env.*} and {file.*} placeholders are resolved
// at provisioning, like the keys' and the Redis settings'; the store is
// identified by the resolved directory.

// emptyDir fails the test when dir holds anything: a store directory
// made from an unresolved or relative setting lands in the working
// directory.
func emptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("%s was created in the working directory", e.Name())
	}
}

// pooled is the open store of the canonical directory dir, if any.
func pooled(dir string) *sharedStore {
	var found *sharedStore
	storePool.Range(func(key, value any) bool {
		if key == dir {
			found = value.(*sharedStore)
			return false
		}
		return true
	})
	return found
}

func TestProvisionResolvesTheBadgerDir(t *testing.T) {
	cwd := t.TempDir()
	t.Chdir(cwd)
	dir := t.TempDir()
	t.Setenv("DWS_TEST_STORE_DIR", dir)
	file := filepath.Join(t.TempDir(), "store-dir")
	if err := os.WriteFile(file, []byte(dir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badger := func(d string) *config.Store { return &config.Store{Backend: config.BackendBadger, Dir: d} }
	var first *sharedStore
	for _, c := range []struct {
		storage string
		store   *config.Store
	}{
		{"{env.DWS_TEST_STORE_DIR}", nil},
		{dir, nil},
		{"", badger("{env.DWS_TEST_STORE_DIR}")},
		{"", badger("{file." + file + "}")},
		{"{file." + file + "}", badger(dir + "/")},
		{filepath.Dir(dir) + "/{env.DWS_TEST_STORE_DIR_BASE}", nil},
	} {
		t.Setenv("DWS_TEST_STORE_DIR_BASE", filepath.Base(dir))
		h := baseHandler(t)
		h.Storage, h.Store = c.storage, c.store
		if err := h.Provision(newContext(t)); err != nil {
			t.Fatalf("storage %q, store %+v: %v", c.storage, c.store, err)
		}
		t.Cleanup(func() { _ = h.Cleanup() })
		if h.store.name != canonicalDir(t, dir) {
			t.Errorf("storage %q, store %+v: store %s, want %s", c.storage, c.store, h.store.name, dir)
		}
		if first == nil {
			first = h.store
		} else if h.store != first {
			t.Errorf("storage %q, store %+v: another store than %s's", c.storage, c.store, first.name)
		}
	}
	emptyDir(t, cwd)
}

func TestProvisionRefusesAnUnresolvedBadgerDir(t *testing.T) {
	cwd := t.TempDir()
	t.Chdir(cwd)
	t.Setenv("DWS_TEST_EMPTY_STORE_DIR", "")
	t.Setenv("DWS_TEST_RELATIVE_STORE_DIR", "data/dws")
	other := t.TempDir()
	t.Setenv("DWS_TEST_OTHER_STORE_DIR", other)
	badger := func(d string) *config.Store { return &config.Store{Backend: config.BackendBadger, Dir: d} }
	for _, c := range []struct {
		storage string
		store   *config.Store
		want    string
	}{
		{"{env.DWS_TEST_UNSET_STORE_DIR}", nil,
			"storage: placeholder {env.DWS_TEST_UNSET_STORE_DIR} resolves to nothing (is the file readable, or the environment variable set?)"},
		{"{env.DWS_TEST_EMPTY_STORE_DIR}", nil, "storage: placeholder {env.DWS_TEST_EMPTY_STORE_DIR} resolves to nothing"},
		{"", badger("{env.DWS_TEST_UNSET_STORE_DIR}"), "store dir: placeholder {env.DWS_TEST_UNSET_STORE_DIR} resolves to nothing"},
		{"", badger("{file./nonexistent/dws-store-dir}"), "store dir: placeholder {file./nonexistent/dws-store-dir} resolves to nothing"},
		{"{env.DWS_TEST_RELATIVE_STORE_DIR}", nil, `storage {env.DWS_TEST_RELATIVE_STORE_DIR} is "data/dws", a relative path`},
		{"data/dws", nil, "storage data/dws is a relative path"},
		{"", badger("data/dws"), "store: dir data/dws is a relative path"},
		{"{env.DWS_TEST_OTHER_STORE_DIR}", badger("/var/lib/dws"),
			"storage {env.DWS_TEST_OTHER_STORE_DIR} and store.dir /var/lib/dws name different directories (" + other + " and /var/lib/dws)"},
	} {
		h := baseHandler(t)
		h.Storage, h.Store = c.storage, c.store
		err := h.Provision(newContext(t))
		t.Cleanup(func() { _ = h.Cleanup() })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("storage %q, store %+v: Provision = %v, want it to contain %q", c.storage, c.store, err, c.want)
		}
	}
	emptyDir(t, cwd)
}

// With no storage set, the default directory is Caddy's data directory;
// when neither XDG_DATA_HOME nor HOME names an absolute one, Caddy's is
// relative ("./caddy"), and Provision refuses it rather than open a store
// in whatever the working directory is. Before, it opened one there.
func TestProvisionRefusesARelativeDefaultDir(t *testing.T) {
	cwd := t.TempDir()
	t.Chdir(cwd)
	for _, env := range []struct{ xdg, home string }{{"", ""}, {"data", ""}} {
		t.Setenv("XDG_DATA_HOME", env.xdg)
		t.Setenv("HOME", env.home)
		h := baseHandler(t)
		h.Storage, h.Store = "", nil
		err := h.Provision(newContext(t))
		t.Cleanup(func() { _ = h.Cleanup() })
		if err == nil || !strings.Contains(err.Error(), "is relative (XDG_DATA_HOME and HOME name no absolute directory)") {
			t.Errorf("XDG_DATA_HOME %q, HOME %q: Provision = %v, want the relative default refused", env.xdg, env.home, err)
		}
	}
	emptyDir(t, cwd)
}

// In-process Caddy: a Caddyfile's storage {env.*} and store badger
// {file.*} open the directory they name, and a reload from the literal
// directory to the placeholder keeps the one store: a resend is
// deduplicated, not forwarded again.
func TestCaddyfileBadgerDirPlaceholders(t *testing.T) {
	body := addSample(t, "storeph-1") // read from testdata before the chdir
	keys(t)
	cwd := t.TempDir()
	t.Chdir(cwd)
	dir := t.TempDir()
	t.Setenv("DWS_TEST_GW_STORE", dir)
	file := filepath.Join(t.TempDir(), "store-dir")
	if err := os.WriteFile(file, []byte(dir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{storage: dir})
	g.send(g.notice(addPath, body)).expect(t, 200, "S", "SUCCESS")
	s := pooled(canonicalDir(t, dir))
	if s == nil {
		t.Fatalf("no store open in %s", dir)
	}
	for _, cfg := range []gatewayConfig{
		{storage: "{env.DWS_TEST_GW_STORE}"},
		{store: "store badger {file." + file + "}"},
	} {
		g = startGateway(t, b, cfg)
		g.send(g.notice(addPath, body)).expect(t, 200, "S", "SUCCESS")
		if n := len(b.hits()); n != 1 {
			t.Fatalf("%s%s: the resend was forwarded (%d calls): another store", cfg.storage, cfg.store, n)
		}
		if pooled(canonicalDir(t, dir)) != s {
			t.Fatalf("%s%s: the reload opened another store", cfg.storage, cfg.store)
		}
	}
	emptyDir(t, cwd)
}
