package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBackupRestore: `caddy dws-notify backup` takes a backup of a running
// gateway's store through its admin API while it serves; `caddy dws-notify
// restore` refuses a directory that holds a store, and builds a new one
// from the backup; a gateway started on the restored store replays the
// notifications the first one acknowledged instead of forwarding them
// again.
func TestBackupRestore(t *testing.T) {
	e := startRelEnv(t, nil)
	bin, be, sb, g, proc, lc := e.bin, e.be, e.sb, e.gw, e.proc, e.lc
	acked := []notif{addNotif(t, "backup-1"), addNotif(t, "backup-2")}
	for _, n := range acked {
		if a := lc.Send(t, n); !a.Answered || a.Result != "S" {
			t.Fatalf("%s: %s, want S", n.ID, a)
		}
	}

	file := filepath.Join(sb.Dir, "store.backup")
	out, err := runCaddy(t, bin, sb, "dws-notify", "backup", "--address", g.AdminAddr, "--out", file)
	if err != nil || !strings.Contains(out, "backup of the running gateway's store: "+file) {
		t.Fatalf("dws-notify backup: %v\n%s", err, out)
	}
	info, err := os.Stat(file)
	if err != nil || info.Size() == 0 {
		t.Fatalf("backup file: %v (%v bytes)", err, info)
	}
	// The gateway served on while the backup was taken, and serves on.
	if a := lc.Send(t, addNotif(t, "backup-after")); !a.Answered || a.Result != "S" {
		t.Fatalf("after the backup: %s, want S", a)
	}

	// A directory that holds a store is never restored into.
	out, err = runCaddy(t, bin, sb, "dws-notify", "restore", "--in", file, "--storage", g.Storage)
	if err == nil || !strings.Contains(out, "already holds a store") {
		t.Errorf("restore into the live store's directory: %v, want a refusal\n%s", err, out)
	}
	if err := proc.Stop(); err != nil {
		t.Fatal(err)
	}
	checkNoPanic(t, "gateway", proc.Output())

	restored := filepath.Join(sb.Dir, "restored-store")
	out, err = runCaddy(t, bin, sb, "dws-notify", "restore", "--in", file, "--storage", restored)
	if err != nil || !strings.Contains(out, "restored "+file+" into "+restored) {
		t.Fatalf("dws-notify restore: %v\n%s", err, out)
	}

	g2 := g.onNewPorts(t)
	g2.Storage = restored
	startCaddy(t, bin, sb, g2.Caddyfile(), g2.AdminAddr, g2.URL()+"/")
	lc2 := newDWS(g2.URL(), clientID, e.key.Private)
	before := be.Count()
	for _, n := range acked {
		if a := lc2.Send(t, n); !a.Answered || a.Result != "S" {
			t.Fatalf("resend of %s to the restored gateway: %s, want S", n.ID, a)
		}
	}
	if got := be.Count(); got != before {
		t.Errorf("the restored gateway forwarded %d resends of acknowledged notifications; want them replayed", got-before)
	}
	if a := lc2.Send(t, addNotif(t, "backup-new")); !a.Answered || a.Result != "S" || be.Count() != before+1 {
		t.Errorf("a new notification on the restored gateway: %s, backend count %d, want S and forwarded", a, be.Count()-before)
	}

	// No gateway, no backup, and no file.
	missing := filepath.Join(sb.Dir, "missing.backup")
	out, err = runCaddy(t, bin, sb, "dws-notify", "backup", "--address", g.AdminAddr, "--out", missing)
	if err == nil || !strings.Contains(out, "is the gateway running") {
		t.Errorf("backup without a gateway: %v\n%s", err, out)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("a failed backup left a file")
	}
	t.Logf("figures: backup of a running gateway's store: %d bytes; restored and served: %d resends replayed, 0 forwarded", info.Size(), len(acked))
}
