// Package e2e drives the Caddy binary built by ./xcaddy.sh as a child
// process: real keys, a real backend, a real Badger store on disk. Every test
// is skipped unless DWS_CADDY_BIN names the binary, so `go test ./...` stays
// fast and hermetic without one:
//
//	./xcaddy.sh && DWS_CADDY_BIN=$PWD/caddy go test -count=1 -v ./e2e/
package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
)

const (
	clientID   = "2188120000000000"
	addURI     = "/dws/notify/addPaymentMethod"
	removeURI  = "/dws/notify/removePaymentMethod"
	addV2URI   = "/dws/v2/notify/addPaymentMethod" // the add path after the reload
	successEnv = `{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMsg":"success"}}`
)

// gatewayConfig is a test deployment: one site, bound to loopback only, with
// dws_notify in front of reverse_proxy, two DWS public keys (version 1 as bare Base64 DER, version 2
// as PEM, both read through {file.*}), storage in the sandbox.
type gatewayConfig struct {
	AdminAddr string
	SiteAddr  string
	KeyV1     *keyPair
	KeyV2     *keyPair
	Storage   string
	Backend   string
	AddPath   string
	Retention string // empty: the default
	Extra     string // more dws_notify subdirectives, one per line
}

// newGatewayConfig is a deployment in sandbox sb on two free loopback
// ports, with two fresh DWS key pairs and the sandbox's storage, in front
// of backend.
func newGatewayConfig(t *testing.T, sb *sandbox, backend string) gatewayConfig {
	addrs := freeAddrs(t, 2)
	return gatewayConfig{
		AdminAddr: addrs[0],
		SiteAddr:  addrs[1],
		KeyV1:     newKeyPair(t, sb, "dws_v1"),
		KeyV2:     newKeyPair(t, sb, "dws_v2"),
		Storage:   sb.Storage,
		Backend:   backend,
		AddPath:   addURI,
	}
}

func (c gatewayConfig) Caddyfile() string {
	var retention string
	if c.Retention != "" {
		retention = "\n\t\tretention " + c.Retention
	}
	for _, line := range strings.Split(c.Extra, "\n") {
		if line != "" {
			retention += "\n\t\t" + line
		}
	}
	return fmt.Sprintf(`{
	admin %s
	persist_config off
}

http://%s {
	bind 127.0.0.1
	dws_notify {
		client_id %s
		dws_public_key {file.%s} 1
		dws_public_key {file.%s} 2
		api addPaymentMethod %s
		api removePaymentMethod %s
		storage %s%s
	}
	reverse_proxy %s
}
`, c.AdminAddr, c.SiteAddr, clientID, c.KeyV1.B64Path, c.KeyV2.PEMPath,
		c.AddPath, removeURI, c.Storage, retention, c.Backend)
}

func readSample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../notification/testdata/" + name)
	if err != nil {
		t.Fatalf("reading the seed sample: %v", err)
	}
	return b
}

// TestSmoke: a signed seed sample reaches a real backend and gets S; a bad
// signature gets INVALID_SIGNATURE and reaches nothing; a resend is answered
// from the store; dedupe survives a reload through the admin API.
func TestSmoke(t *testing.T) {
	bin := caddyBin(t)
	sb := newSandbox(t)
	be := newBackend(t)
	cfg := newGatewayConfig(t, sb, be.HostPort())
	site := "http://" + cfg.SiteAddr
	proc := startCaddy(t, bin, sb, cfg.Caddyfile(), cfg.AdminAddr, site+"/")
	dws := newDWS(site, clientID, nil)
	add := readSample(t, "add.json")
	const addRequestID = "20990501203220303032821078591" // requestId in add.json

	wantSuccess := func(t *testing.T, a *answer) {
		t.Helper()
		if a.Status != http.StatusOK || string(a.Body) != successEnv {
			t.Fatalf("answer: HTTP %d %q; want HTTP 200 %s", a.Status, a.Body, successEnv)
		}
		if ct := a.Header.Get("Content-Type"); ct != "application/json; charset=UTF-8" {
			t.Errorf("Content-Type %q, want application/json; charset=UTF-8", ct)
		}
		if got := a.Header.Get("Client-Id"); got != clientID {
			t.Errorf("Client-Id echoed as %q, want %q", got, clientID)
		}
		if a.Header.Get("Response-Time") == "" {
			t.Error("no Response-Time header")
		}
		if a.Header.Get("X-Backend-Secret") != "" {
			t.Error("a backend response header reached DWS")
		}
	}
	wantForwarded := func(t *testing.T, n int) []delivery {
		t.Helper()
		reqs := be.Deliveries()
		if len(reqs) != n {
			t.Fatalf("backend received %d requests, want %d", len(reqs), n)
		}
		return reqs
	}

	t.Run("signed seed sample reaches the backend and gets S", func(t *testing.T) {
		// Headers a caller might forge; the gateway must replace them.
		forged := http.Header{}
		forged.Set("X-Dws-Verified", "false")
		forged.Set("X-Dws-Api", "forged")
		forged.Set("X-Dws-Whatever", "forged")
		a := dws.Post(t, addURI, add, cfg.KeyV1.Private, 1, forged)
		wantSuccess(t, a)

		got := wantForwarded(t, 1)[0]
		if got.Method != http.MethodPost || got.RequestURI != addURI {
			t.Errorf("backend got %s %s, want POST %s", got.Method, got.RequestURI, addURI)
		}
		if !bytes.Equal(got.Body, add) {
			t.Errorf("backend body differs from the bytes sent (%d bytes received, %d sent)", len(got.Body), len(add))
		}
		if got.ContentLength != int64(len(add)) {
			t.Errorf("backend Content-Length %d, want %d", got.ContentLength, len(add))
		}
		for name, want := range map[string]string{
			"X-Dws-Verified":        "true",
			"X-Dws-Api":             "addPaymentMethod",
			"X-Dws-Client-Id":       clientID,
			"X-Dws-Request-Id":      addRequestID,
			"X-Dws-Idempotency-Key": addRequestID,
			"X-Dws-Key-Version":     "1",
		} {
			if vs := got.Header.Values(name); len(vs) != 1 || vs[0] != want {
				t.Errorf("backend header %s = %q, want exactly [%q]", name, vs, want)
			}
		}
		if vs := got.Header.Values("X-Dws-Whatever"); len(vs) != 0 {
			t.Errorf("incoming X-Dws-Whatever reached the backend: %q", vs)
		}
	})

	t.Run("bad signature gets INVALID_SIGNATURE and reaches nothing", func(t *testing.T) {
		other := newKeyPair(t, sb, "not_dws")
		a := dws.Post(t, addURI, add, other.Private, 1, nil)
		if a.Status != http.StatusOK || a.Result.ResultStatus != "F" || a.Result.ResultCode != "INVALID_SIGNATURE" {
			t.Fatalf("answer: HTTP %d %q; want HTTP 200, F, INVALID_SIGNATURE", a.Status, a.Body)
		}
		if a.Result.ResultMsg == "" {
			t.Errorf("INVALID_SIGNATURE envelope has an empty resultMsg: %q", a.Body)
		}
		wantForwarded(t, 1)
	})

	t.Run("resend is answered S from the store and not forwarded", func(t *testing.T) {
		wantSuccess(t, dws.Post(t, addURI, add, cfg.KeyV1.Private, 1, nil))
		wantForwarded(t, 1)
	})

	t.Run("dedupe survives a reload through the admin API", func(t *testing.T) {
		// The reloaded config serves addPaymentMethod on another path, so the
		// old path answering 404 proves the new config is live.
		next := cfg
		next.AddPath = addV2URI
		if err := proc.Load(next.Caddyfile()); err != nil {
			t.Fatal(err)
		}
		// Under the old config a GET on the old path is 405 (an api path, not
		// POST); under the new one it is 404.
		dws.WaitStatus(t, http.MethodGet, addURI, http.StatusNotFound, readyTimeout)
		// Caddy may drop a connection that arrives while the servers are
		// swapped (see PostWithResend); DWS would resend, and so do we.
		old := dws.PostWithResend(t, 5, addURI, add, cfg.KeyV1.Private, 1, nil)
		if old.Status != http.StatusNotFound || old.Result.ResultStatus != "F" {
			t.Fatalf("old path after reload: HTTP %d %q; want 404 with an F envelope", old.Status, old.Body)
		}
		wantSuccess(t, dws.PostWithResend(t, 5, addV2URI, add, cfg.KeyV1.Private, 1, nil))
		wantForwarded(t, 1)
	})

	t.Run("removePaymentMethod signed with key version 2 (PEM) is forwarded", func(t *testing.T) {
		remove := readSample(t, "remove.json")
		wantSuccess(t, dws.PostWithResend(t, 5, removeURI, remove, cfg.KeyV2.Private, 2, nil))
		got := wantForwarded(t, 2)[1]
		if !bytes.Equal(got.Body, remove) {
			t.Errorf("backend body differs from the bytes sent (%d bytes received, %d sent)", len(got.Body), len(remove))
		}
		if v := got.Header.Get("X-Dws-Key-Version"); v != "2" {
			t.Errorf("X-Dws-Key-Version %q, want 2", v)
		}
		if v := got.Header.Get("X-Dws-Api"); v != "removePaymentMethod" {
			t.Errorf("X-Dws-Api %q, want removePaymentMethod", v)
		}
	})

	if err := proc.Stop(); err != nil {
		t.Errorf("stopping caddy: %v", err)
	}
	if out := proc.Output(); strings.Contains(out, "panic") {
		t.Errorf("caddy output mentions a panic:\n%s", out)
	}
}

// TestValidateRefusesShortRetention: `caddy validate` refuses a retention
// below twice the request_time_tolerance (48h by default: times are
// accepted that far in the past and in the future) and says why, with the
// Caddyfile line, while the same config with a long enough retention
// validates.
func TestValidateRefusesShortRetention(t *testing.T) {
	bin := caddyBin(t)
	sb := newSandbox(t)
	cfg := newGatewayConfig(t, sb, "127.0.0.1:9")

	cfg.Retention = "96h"
	good := sb.writeFile(t, "Caddyfile.good", []byte(cfg.Caddyfile()))
	if out, err := runCaddy(t, bin, sb, "validate", "--config", good, "--adapter", "caddyfile"); err != nil {
		t.Fatalf("validate with retention 96h failed (%v):\n%s", err, out)
	}

	for _, short := range []string{"24h", "48h", "95h59m"} {
		cfg.Retention = short
		file := sb.writeFile(t, "Caddyfile.short", []byte(cfg.Caddyfile()))
		out, err := runCaddy(t, bin, sb, "validate", "--config", file, "--adapter", "caddyfile")
		if err == nil {
			t.Fatalf("validate with retention %s succeeded; want a failure:\n%s", short, out)
		}
		if !strings.Contains(out, "shorter than twice request_time_tolerance") || !strings.Contains(out, "Caddyfile.short:15") {
			t.Fatalf("validate failed (%v) without naming retention, twice request_time_tolerance and the line:\n%s", err, out)
		}
	}
}

// TestListModules: the binary carries the module.
func TestListModules(t *testing.T) {
	bin := caddyBin(t)
	sb := newSandbox(t)
	out, err := runCaddy(t, bin, sb, "list-modules")
	if err != nil {
		t.Fatalf("list-modules: %v\n%s", err, out)
	}
	found := false
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "http.handlers.dws_notify" {
			found = true
		}
	}
	if !found {
		t.Fatalf("list-modules does not list http.handlers.dws_notify:\n%s", out)
	}
}
