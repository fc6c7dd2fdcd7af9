package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStopWithFailedStorage (issue 13, item 10): a gateway whose storage
// fails must still stop, and reload, within a bound. Badger's own Close
// retries its memtable flush forever when the directory is gone or the
// filesystem is full (a gateway whose directory was removed was still
// alive 40 minutes after SIGTERM); dws_notify's store gives up after 10s,
// or at once when the directory is gone, and logs what it did not flush.
//
//   - storage directory removed, then SIGTERM: the process exits within
//     the bound, saying the directory is gone;
//   - storage filesystem full (a small tmpfs filled to the last byte),
//     then SIGTERM: the process exits within the bound, without the
//     SIGBUS a flush through a memory map would cause; once there is room
//     again a restart on the same storage replays every notification
//     acknowledged before the stop (the memtable logs held them), none is
//     delivered twice;
//   - storage directory removed, then a reload to another directory: the
//     reload returns within the bound and the gateway serves on.
//
// The tmpfs needs root (mount); CI runs as root.
func TestStopWithFailedStorage(t *testing.T) {
	t.Run("storage directory removed", testStopDirectoryRemoved)
	t.Run("storage filesystem full", testStopFilesystemFull)
	t.Run("reload away from a removed directory", testReloadFromRemovedDirectory)
}

// stopBound is how long a stop or reload may take with failed storage:
// the store's close bound (10s) and a margin for a loaded machine.
const stopBound = 30 * time.Second

// sigterm stops the gateway and returns how long it took to exit; it
// fails the test if it is still running after stopBound.
func sigterm(t *testing.T, p *caddyProc) time.Duration {
	t.Helper()
	began := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.exited:
		return time.Since(began)
	case <-time.After(stopBound):
		t.Errorf("the gateway did not exit within %s of SIGTERM; killing it. Output:\n%s", stopBound, tail(p.Output(), 40))
		_ = p.Kill()
		t.FailNow()
		return 0
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// exitNote describes how the process ended.
func exitNote(p *caddyProc) string {
	if p.waitErr == nil {
		return "exit status 0"
	}
	return p.waitErr.Error()
}

// sendAllS sends every notification once and requires S for each.
func sendAllS(t *testing.T, e *relEnv, items []notif) {
	t.Helper()
	for _, a := range e.lc.runLoad(t, items, 8, nil, nil) {
		if !a.Answered || a.Result != "S" {
			t.Fatalf("before the storage failed: %s", a)
		}
	}
}

// startThenRemoveStorage starts a gateway, has it acknowledge n
// notifications, then removes its storage directory.
func startThenRemoveStorage(t *testing.T, prefix string, n int) (*relEnv, []notif) {
	t.Helper()
	e := startRelEnv(t, nil)
	items := addNotifs(t, prefix, n)
	sendAllS(t, e, items)
	if err := os.RemoveAll(e.gw.Storage); err != nil {
		t.Fatal(err)
	}
	return e, items
}

func testStopDirectoryRemoved(t *testing.T) {
	e, items := startThenRemoveStorage(t, "stop-removed", 200)
	took := sigterm(t, e.proc)
	out := e.proc.Output()
	if !strings.Contains(out, "closed without flushing") || !strings.Contains(out, "the directory is gone") {
		t.Errorf("the gateway did not log that it closed the store without flushing because the directory is gone:\n%s", tail(out, 20))
	}
	checkNoPanic(t, "gateway", out)
	t.Logf("figures: storage directory removed after %d notifications (all S); SIGTERM to exit: %s (%s); the log names the memtable logs not flushed",
		len(items), took.Round(time.Millisecond), exitNote(e.proc))
}

func testStopFilesystemFull(t *testing.T) {
	needRoot(t, "mount", "umount")
	mnt := filepath.Join(t.TempDir(), "mnt")
	sh(t, "mkdir", mnt)
	if out, err := runCmd("mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", mnt); err != nil {
		t.Skipf("skipping: cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() { _, _ = runCmd("umount", "-l", mnt) })

	e := startRelEnv(t, func(g *relGateway) { g.Storage = filepath.Join(mnt, "dws") })
	items := addNotifs(t, "stop-full", 300)
	sendAllS(t, e, items)
	before := e.be.Count()

	filler := filepath.Join(mnt, "filler")
	filled, err := fillFilesystem(filler)
	if err != nil {
		t.Fatalf("filling the tmpfs: %v", err)
	}
	took := sigterm(t, e.proc)
	out := e.proc.Output()
	if !strings.Contains(out, "closed without flushing") || !strings.Contains(out, "bytes free") {
		t.Errorf("the gateway did not log that it closed the store without flushing for want of room:\n%s", tail(out, 20))
	}
	for _, bad := range []string{"SIGBUS", "unexpected fault address"} {
		if strings.Contains(out, bad) {
			t.Errorf("the gateway died of %s", bad)
		}
	}
	checkNoPanic(t, "gateway", out)

	// Room again: the restarted gateway replays the memtable logs, so
	// every notification acknowledged before the stop is still known.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	e.restart(t)
	resent, rounds := e.sendUntil(t, items, 8, "S", time.Second, time.Minute)
	ds := e.be.Deliveries()
	checkDeliveries(t, ds, notifMap(items))
	ix := indexDeliveries(ds)
	for _, n := range items {
		if ix.All[n.ID] != 1 {
			t.Errorf("%s, acknowledged before the stop, was delivered %d times in all", n.ID, ix.All[n.ID])
		}
	}
	t.Logf("figures: storage on a 32 MiB tmpfs filled to the last byte (%d MiB written) after %d notifications (all S); SIGTERM to exit: %s (%s), no SIGBUS; after freeing space and restarting, %d resends in %d rounds (%s), delivered again: %d",
		filled>>20, len(items), took.Round(time.Millisecond), exitNote(e.proc), len(resent), rounds, formatTally(tally(resent)), len(ds)-before)
}

func testReloadFromRemovedDirectory(t *testing.T) {
	e, items := startThenRemoveStorage(t, "reload-removed", 100)
	moved := e.gw
	moved.Storage = filepath.Join(e.sb.Dir, "other-storage")
	began := time.Now()
	done := make(chan error, 1)
	go func() { done <- e.proc.Load(moved.Caddyfile()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
	case <-time.After(stopBound):
		t.Fatalf("the reload did not return within %s", stopBound)
	}
	took := time.Since(began)
	e.gw = moved
	after := addNotifs(t, "reload-removed-after", 20)
	if _, rounds := e.sendUntil(t, after, 4, "S", time.Second, time.Minute); rounds != 1 {
		t.Errorf("after the reload, %d rounds were needed to get S", rounds)
	}
	if !strings.Contains(e.proc.Output(), "the directory is gone") {
		t.Errorf("the gateway did not log that the old store's directory is gone")
	}
	stopTook := sigterm(t, e.proc)
	checkNoPanic(t, "gateway", e.proc.Output())
	t.Logf("figures: storage directory removed after %d notifications, then a reload to another directory: returned in %s; %d notifications served after it (S); SIGTERM to exit: %s (%s)",
		len(items), took.Round(time.Millisecond), len(after), stopTook.Round(time.Millisecond), exitNote(e.proc))
}

// fillFilesystem writes name until the filesystem is full and returns how
// many bytes it wrote.
func fillFilesystem(name string) (int64, error) {
	f, err := os.Create(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	var total int64
	for {
		n, err := f.Write(chunk)
		total += int64(n)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			return total, err
		}
	}
	// The last pages, below a chunk.
	one := make([]byte, 512)
	for {
		n, err := f.Write(one)
		total += int64(n)
		if err != nil {
			break
		}
	}
	return total, f.Sync()
}

// runCmd runs a command and returns its combined output.
func runCmd(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
