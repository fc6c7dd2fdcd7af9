package caddymodule

import (
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// liveHostConfig is a gateway config on the Badger directory dir, in JSON.
func liveHostConfig(t *testing.T, dir, backendAddr string) []byte {
	t.Helper()
	k := keys(t)
	handler := map[string]any{
		"handler":        "dws_notify",
		"client_id":      []string{testClientID},
		"dws_public_key": []map[string]any{{"key": "{file." + filepath.Join(k.dir, "dws_public.pem") + "}"}},
		"api":            []map[string]any{{"name": "addPaymentMethod", "path": addPath}},
		"storage":        dir,
	}
	proxy := map[string]any{"handler": "reverse_proxy", "upstreams": []map[string]any{{"dial": backendAddr}}}
	raw, err := json.Marshal(map[string]any{
		"admin": map[string]any{"listen": "localhost:2999"},
		"apps": map[string]any{"http": map[string]any{"http_port": 9080, "servers": map[string]any{
			"gw": map[string]any{"listen": []string{":9080"}, "routes": []any{map[string]any{"handle": []any{handler, proxy}}}},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestValidateOnALiveHost: `caddy validate` of the config a gateway runs,
// on the host where it runs, passes, although Badger's directory lock keeps
// the database to the gateway; running that config in a second process
// still fails, naming the lock. The running gateway is stood in for by an
// open of the directory outside the store pool (flock locks conflict
// between two opens of the directory, in one process as in two).
func TestValidateOnALiveHost(t *testing.T) {
	b := newBackend(t)
	dir := t.TempDir()
	other, err := idempotency.OpenBadger(idempotency.BadgerOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	otherOpen := true
	t.Cleanup(func() {
		if otherOpen {
			other.Close()
		}
	})
	raw := liveHostConfig(t, dir, b.addr())
	if err := caddy.Validate(decodeCaddyConfig(t, raw)); err != nil {
		t.Fatalf("validate while another process holds the storage: %v", err)
	}
	if refs, ok := storePool.References(dir); ok {
		t.Errorf("validate left %d references to the store in the pool", refs)
	}

	// Running it is another matter: the config's apps start, and the
	// directory is still held.
	err = caddy.Load(raw, true)
	if err == nil {
		unloadConfig(t)
		t.Fatal("a config on a storage directory held by another process started")
	}
	if msg := err.Error(); !strings.Contains(msg, "locked by another process") || !strings.Contains(msg, dir) {
		t.Errorf("start error does not name the lock and the directory: %v", err)
	}
	if refs, ok := storePool.References(dir); ok {
		t.Errorf("the failed start left %d references to the store in the pool", refs)
	}

	// Once the other process is gone the same config runs and serves.
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	otherOpen = false
	g := startGateway(t, b, gatewayConfig{storage: dir})
	g.send(g.notice(addPath, addSample(t, "live-host"))).expect(t, http.StatusOK, "S", "SUCCESS")
	if got := len(b.hits()); got != 1 {
		t.Fatalf("backend got %d requests, want 1", got)
	}
}

// TestDeferredStoreOpensAtStart: when the other process lets go of the
// directory between provisioning and start, start opens the store and the
// gateway serves from it.
func TestDeferredStoreOpensAtStart(t *testing.T) {
	dir := t.TempDir()
	other, err := idempotency.OpenBadger(idempotency.BadgerOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	s, err := acquireStore(dir)
	if err != nil {
		other.Close()
		t.Fatalf("acquire while another open holds the directory: %v", err)
	}
	t.Cleanup(func() { releaseStore(dir) })
	if _, err := s.Current(); !errors.Is(err, idempotency.ErrLocked) {
		t.Errorf("a deferred store's calls fail with %v, want the lock error", err)
	}
	if err := (&startGate{stores: []*sharedStore{s}}).Start(); err == nil || !errors.Is(err, idempotency.ErrLocked) {
		t.Errorf("start while the directory is still held: %v, want the lock error", err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if err := (&startGate{stores: []*sharedStore{s}}).Start(); err != nil {
		t.Fatalf("start after the other open closed: %v", err)
	}
	st, err := s.Current()
	if err != nil || st == nil {
		t.Fatalf("after start: store %v, %v", st, err)
	}
	if _, _, err := s.Get(t.Context(), idempotency.Key{ClientID: testClientID, API: "addPaymentMethod", RequestID: "x"}); err != nil {
		t.Errorf("get on the store opened at start: %v", err)
	}
}

// TestDeferredStoreWithoutAConfig: a handler provisioned in a context that
// belongs to no config (nothing will start it) on a directory another open
// holds fails with the lock error, as before deferring existed.
func TestDeferredStoreWithoutAConfig(t *testing.T) {
	h := baseHandler(t)
	other, err := idempotency.OpenBadger(idempotency.BadgerOptions{Dir: h.Storage})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	err = h.Provision(newContext(t))
	if err == nil {
		h.Cleanup()
		t.Fatal("Provision on a held directory without a config succeeded")
	}
	if !errors.Is(err, idempotency.ErrLocked) {
		t.Errorf("Provision: %v, want the lock error", err)
	}
	if err := h.Cleanup(); err != nil {
		t.Errorf("Cleanup: %v", err)
	}
	if refs, ok := storePool.References(h.Storage); ok {
		t.Errorf("%d references left in the pool", refs)
	}
}

// TestOneInboxPerStorage: two handlers of one config that queue into the
// same storage with different inbox keys are refused when the config is
// checked: the storage has one delivering inbox, which could not open the
// other handler's notifications (they would be retried as undecryptable
// and dead-lettered). The same keys on both are fine.
func TestOneInboxPerStorage(t *testing.T) {
	k := keys(t)
	dir := t.TempDir()
	config := func(keyA, keyB string) *caddy.Config {
		route := func(path, key string) map[string]any {
			return map[string]any{
				"match": []map[string]any{{"path": []string{path}}},
				"handle": []any{map[string]any{
					"handler":        "dws_notify",
					"client_id":      []string{testClientID},
					"dws_public_key": []map[string]any{{"key": "{file." + filepath.Join(k.dir, "dws_public.pem") + "}"}},
					"api":            []map[string]any{{"name": "addPaymentMethod", "path": path}},
					"storage":        dir,
					"acknowledge":    map[string]any{"mode": "on_receipt", "keys": []map[string]any{{"key": key}}},
				}},
			}
		}
		return caddyConfigOf(t, map[string]any{
			"admin": map[string]any{"listen": "localhost:2999"},
			"apps": map[string]any{"http": map[string]any{"http_port": 9080, "servers": map[string]any{
				"gw": map[string]any{"listen": []string{":9080"}, "routes": []any{route("/a/notify", keyA), route("/b/notify", keyB)}},
			}}},
		})
	}
	err := caddy.Validate(config(inboxKeyA, inboxKeyB))
	if err == nil || !strings.Contains(err.Error(), "different inbox keys") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("two on_receipt handlers on one storage with different keys: %v", err)
	}
	if err := caddy.Validate(config(inboxKeyA, inboxKeyA)); err != nil {
		t.Fatalf("two on_receipt handlers on one storage with the same key: %v", err)
	}
}
