package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestValidateOnLiveHost: the deploy step "caddy validate, then reload" on
// a host where the gateway runs. `caddy validate` of the config the gateway
// runs, on the same Badger directory, exits 0 and leaves the gateway
// serving; a storage path that cannot be a directory still fails
// validation and names the path; and a second `caddy run` on the directory
// still refuses to start, naming the lock.
func TestValidateOnLiveHost(t *testing.T) {
	e := startRelEnv(t, nil)
	bin, be, sb, g, proc, lc := e.bin, e.be, e.sb, e.gw, e.proc, e.lc
	first := addNotif(t, "live-validate-1")
	if a := lc.Send(t, first); !a.Answered || a.Result != "S" {
		t.Fatalf("before validate: %s, want S", a)
	}

	cfg := sb.writeFile(t, "Caddyfile.live", []byte(g.Caddyfile()))
	out, err := runCaddy(t, bin, sb, "validate", "--config", cfg, "--adapter", "caddyfile")
	if err != nil || !strings.Contains(out, "Valid configuration") {
		t.Fatalf("caddy validate of the running config on its host: %v\n%s", err, out)
	}
	if !strings.Contains(out, "the storage is in use by another process") {
		t.Errorf("caddy validate did not say the storage is held by the running gateway:\n%s", out)
	}
	t.Logf("caddy validate on the live host: exit 0")

	// The gateway still serves from its store: the resend is replayed.
	if a := lc.Send(t, first); !a.Answered || a.Result != "S" {
		t.Fatalf("resend after validate: %s, want S", a)
	}
	if a := lc.Send(t, addNotif(t, "live-validate-2")); !a.Answered || a.Result != "S" {
		t.Fatalf("new notification after validate: %s, want S", a)
	}
	if n := be.Count(); n != 2 {
		t.Errorf("backend received %d notifications, want 2 (the resend is replayed)", n)
	}

	// A bad storage path is still reported.
	blocker := sb.writeFile(t, "not-a-directory", []byte("x"))
	bad := g
	bad.Storage = filepath.Join(blocker, "dws_notify")
	badCfg := sb.writeFile(t, "Caddyfile.bad-storage", []byte(bad.Caddyfile()))
	out, err = runCaddy(t, bin, sb, "validate", "--config", badCfg, "--adapter", "caddyfile")
	if err == nil || !strings.Contains(out, "storage") || !strings.Contains(out, bad.Storage) || !strings.Contains(out, "not a directory") {
		t.Errorf("caddy validate with storage under a file: %v, want a failure naming the path\n%s", err, out)
	}

	// Running a second gateway on the same directory still fails.
	second := g.onNewPorts(t)
	secondCfg := sb.writeFile(t, "Caddyfile.second", []byte(second.Caddyfile()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--config", secondCfg, "--adapter", "caddyfile")
	cmd.Env = sb.env()
	cmd.Dir = sb.Dir
	outb, err := cmd.CombinedOutput()
	out = string(outb)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("a second caddy run on the live storage: %v (context: %v), want it to refuse to start\n%s", err, ctx.Err(), out)
	}
	if !strings.Contains(out, "locked by another process") || !strings.Contains(out, g.Storage) {
		t.Errorf("the second caddy run failed without naming the lock and the directory:\n%s", out)
	}
	if a := lc.Send(t, addNotif(t, "live-validate-3")); !a.Answered || a.Result != "S" {
		t.Fatalf("after the second run failed: %s, want S", a)
	}
	if proc.Exited() {
		t.Fatal("the gateway exited")
	}
	checkNoPanic(t, "gateway", proc.Output())
	if _, err := os.Stat(filepath.Join(g.Storage, "MANIFEST")); err != nil {
		t.Errorf("the gateway's store: %v", err)
	}
}
