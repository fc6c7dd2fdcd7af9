package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestStoreFailure (SPEC §3 and §1.3: the store failed → U; never S without
// a durable record). Three ways the store fails under the built gateway:
//
//   - closed under in-flight requests: a reload moves the site to another
//     storage directory while the backend holds forwarded notifications;
//     the old store is closed as the old config is cleaned up, so their
//     completions fail and they are answered U. A reload back to the first
//     directory serves them again (they are forwarded once more when their
//     orphaned claims' lease ends, like after a crash);
//   - the storage directory becomes unwritable (chattr +i, which refuses
//     root too): Badger keeps writing into the files it has until its
//     memtable is full, then cannot create the next one. The store fails
//     stop (the process never exits), the gateway logs why, notifications
//     are answered U from then on (each U's cause in its log line), and
//     the gateway serves again, without a restart, about a second after
//     the directory is writable;
//   - the storage filesystem is frozen (fsfreeze: writes and fsync wait
//     until it thaws, as on a hung disk): every notification is answered U
//     within a bounded time instead of hanging, and all is served once it
//     thaws.
//
// The last two need root (chattr, mount, fsfreeze); CI runs as root.
func TestStoreFailure(t *testing.T) {
	t.Run("closed under in-flight requests", testStoreClosedUnderRequests)
	t.Run("storage directory unwritable", testStoreUnwritable)
	t.Run("storage filesystem frozen", testStoreFrozen)
}

func needRoot(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root (chattr +i, mount, fsfreeze)")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: %s is not installed", tool)
		}
	}
}

// sh runs a command and fails the test if it fails.
func sh(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

func testStoreClosedUnderRequests(t *testing.T) {
	const held = 8
	// forward_timeout 5s: the held forwards outlast the reload; the lease of
	// their orphaned claims is then 2*5s+5s = 15s.
	e := startRelEnv(t, func(g *relGateway) { g.ForwardTimeout = "5s" })
	first := e.gw
	other := e.gw
	other.Storage = filepath.Join(e.sb.Dir, "other-storage")

	warm := addNotifs(t, "closed-warm", 20)
	for _, a := range e.lc.runLoad(t, warm, 8, nil, nil) {
		if a.Result != "S" {
			t.Fatalf("before the reload: %s", a)
		}
	}

	// The backend holds the next notifications until released.
	e.be.SetMode(backendMode{Hold: true})
	items := addNotifs(t, "closed-inflight", held)
	var wg sync.WaitGroup
	answers := make([]attempt, held)
	for i, n := range items {
		wg.Add(1)
		go func() { defer wg.Done(); answers[i] = e.lc.Send(t, n) }()
	}
	waitFor(t, 30*time.Second, "the backend to hold every notification", func() bool { return e.be.InHandler() == held })

	// Move to another storage directory: the first store is closed.
	if err := e.proc.Load(other.Caddyfile()); err != nil {
		t.Fatal(err)
	}
	e.be.SetMode(backendMode{})
	e.be.Release()
	withTimeout(t, time.Minute, "the held notifications", wg.Wait)
	for _, a := range answers {
		if !a.Answered || a.Result != "U" || a.Code != "UNKNOWN_EXCEPTION" {
			t.Errorf("notification whose store was closed under it: %s, want U", a)
		}
	}

	// The new config serves from the other directory meanwhile.
	fresh := addNotifs(t, "closed-fresh", 10)
	if as, _ := e.sendUntil(t, fresh, 8, "S", time.Second, time.Minute); len(as) == 0 {
		t.Fatal("nothing sent")
	}

	// Back to the first directory: completed notifications are still known,
	// and the held ones are served once their orphaned claims' lease ends.
	if err := e.proc.Load(first.Caddyfile()); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	resent, rounds := e.sendUntil(t, append(append([]notif{}, warm...), items...), 8, "S", time.Second, 2*time.Minute)
	took := time.Since(began)

	ix := indexDeliveries(e.be.Deliveries())
	checkDeliveries(t, e.be.Deliveries(), notifMap(warm, items, fresh))
	for _, n := range warm {
		if ix.All[n.ID] != 1 {
			t.Errorf("%s, acknowledged before the reloads, was delivered %d times", n.ID, ix.All[n.ID])
		}
	}
	twice := 0
	for _, n := range items {
		switch ix.Accepted[n.ID] {
		case 1:
		case 2:
			twice++
		default:
			t.Errorf("%s was accepted %d times, want 1 or 2", n.ID, ix.Accepted[n.ID])
		}
	}
	checkNoPanic(t, "gateway", e.proc.Output())
	t.Logf("figures: %d notifications held by the backend while a reload closed their store: answered %s; after a reload back to that directory, %d resends in %d rounds over %s (%s): %d of them delivered a second time (forwarded before, never completed), %d acknowledged earlier replayed without delivery",
		held, formatTally(tally(answers)), len(resent), rounds, took.Round(time.Millisecond), formatTally(tally(resent)), twice, len(warm))
}

func testStoreUnwritable(t *testing.T) {
	needRoot(t, "chattr")
	e := startRelEnv(t, func(g *relGateway) { g.ForwardTimeout = "2s" })
	probe := filepath.Join(t.TempDir(), "probe")
	sh(t, "mkdir", probe)
	if out, err := exec.Command("chattr", "+i", probe).CombinedOutput(); err != nil {
		t.Skipf("skipping: the filesystem of %s does not support chattr +i: %v: %s", probe, err, out)
	}
	sh(t, "chattr", "-i", probe)

	// Acknowledged before the directory becomes unwritable. On a loaded
	// machine a forward may outlast forward_timeout (U, resent): only what
	// was acknowledged at its first answer must never be delivered again.
	warm := addNotifs(t, "ro-warm", 50)
	warmTries, _ := e.sendUntil(t, warm, 8, "S", time.Second, 2*time.Minute)
	warmFirst := map[string]bool{}
	acked := map[string]bool{}
	for _, a := range warmTries {
		if _, seen := warmFirst[a.ID]; !seen {
			warmFirst[a.ID] = a.Answered && a.Result == "S"
		}
	}
	for id, first := range warmFirst {
		if first {
			acked[id] = true
		}
	}
	sh(t, "chattr", "+i", e.gw.Storage)
	immutable := true
	t.Cleanup(func() {
		if immutable {
			_ = exec.Command("chattr", "-i", e.gw.Storage).Run()
		}
	})

	// Badger writes into its current memtable file until the memtable is
	// full (thousands of notifications); the commit that needs the next
	// one finds no room, the store fails stop and the gateway logs that it
	// failed. Send until that log line is there, then a few more. Answers
	// other than S may come before it on a loaded machine (a forward that
	// outlasts forward_timeout, a store call that outlasts its bound): the
	// store's failure is read from the gateway's log, not guessed from the
	// first U, and every U must have its cause logged.
	kept := e.lc.keepAlive(16)
	var (
		next        atomic.Int64
		firstNonS   atomic.Int64 // notifications sent when the first non-S came
		storeFailed atomic.Int64 // notifications sent when the gateway had logged the store's failure
		after       atomic.Int64 // sent after that
		mu          sync.Mutex
		sent        []notif
	)
	const afterFailure, limit = 200, 60000
	began := time.Now()
	watchDone := make(chan struct{})
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		for {
			select {
			case <-watchDone:
				return
			case <-time.After(250 * time.Millisecond):
			}
			if strings.Contains(e.proc.Output(), storeFailedLog) {
				storeFailed.CompareAndSwap(0, next.Load())
				return
			}
		}
	}()
	var wg sync.WaitGroup
	var episode []attempt
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > limit || (storeFailed.Load() > 0 && after.Add(1) > afterFailure) || time.Since(began) > 4*time.Minute || e.proc.Exited() {
					return
				}
				n := addNotif(t, fmt.Sprintf("ro-%06d", i))
				a := kept.Send(t, n)
				mu.Lock()
				sent = append(sent, n)
				episode = append(episode, a)
				mu.Unlock()
				if !(a.Answered && a.Result == "S") {
					firstNonS.CompareAndSwap(0, i)
				}
			}
		}()
	}
	withTimeout(t, 5*time.Minute, "the load on the unwritable directory", wg.Wait)
	close(watchDone)
	watch.Wait()
	if e.proc.Exited() {
		t.Fatalf("the gateway died: %v", e.proc.waitErr)
	}
	if storeFailed.Load() == 0 {
		t.Fatalf("the gateway did not log the store's failure (%q) in %d notifications (%s)", storeFailedLog, len(episode), formatTally(tally(episode)))
	}
	var noAnswer []attempt
	var us []attempt
	for _, a := range episode {
		switch {
		case !a.Answered:
			noAnswer = append(noAnswer, a)
		case a.Result == "S":
			acked[a.ID] = true
		case a.Result == "U":
			us = append(us, a)
		default:
			t.Errorf("while the directory was unwritable: %s", a)
		}
	}
	for i, a := range noAnswer {
		if i < 5 {
			t.Errorf("no answer while the directory was unwritable (want U): %s", a)
		}
	}
	pre := indexDeliveries(e.be.Deliveries())
	for id := range acked {
		if pre.Accepted[id] != 1 {
			t.Errorf("%s was answered S but accepted %d times", id, pre.Accepted[id])
		}
	}
	// Every U has its cause in the gateway's log: its notification line,
	// and for the store's failure the error Badger gave.
	causes := uCauses(t, e.proc, us)
	out := e.proc.Output()
	failure := storeFailureLogged(out)
	if failure == "" {
		t.Errorf("the gateway logged the store's failure without its cause")
	}

	// The directory is writable again: the gateway serves again by itself.
	sh(t, "chattr", "-i", e.gw.Storage)
	immutable = false
	recoverBegan := time.Now()
	probeN := addNotif(t, "ro-after")
	waitFor(t, 2*time.Minute, "the gateway to serve again", func() bool {
		a := e.lc.Send(t, probeN)
		return a.Answered && a.Result == "S"
	})
	recovered := time.Since(recoverBegan)
	// About a second (the reopening loop's retry); slack for a loaded
	// machine.
	if recovered > 15*time.Second {
		t.Errorf("the gateway took %s to serve again once the directory was writable", recovered)
	}
	// The line is written just after the store is back in service, and
	// reaches the output through a pipe: the probe's S may come first.
	if !logged(e.proc, "the store was reopened", 10*time.Second) {
		t.Error("the gateway did not log that the store was reopened")
	}
	if e.proc.Exited() {
		t.Fatalf("the gateway died: %v", e.proc.waitErr)
	}

	// Everything sent during the episode is served; what was acknowledged
	// is replayed, not delivered again.
	all := append(append([]notif{}, warm...), sent...)
	resent, rounds := e.sendUntil(t, all, 16, "S", time.Second, 2*time.Minute)
	ds := e.be.Deliveries()
	checkDeliveries(t, ds, notifMap(all, []notif{probeN}))
	post := indexDeliveries(ds)
	twice := 0
	for _, n := range all {
		switch c := post.All[n.ID]; {
		case acked[n.ID] && c != 1:
			t.Errorf("%s was acknowledged and delivered %d times", n.ID, c)
		case post.Accepted[n.ID] < 1:
			t.Errorf("%s was never accepted", n.ID)
		case c > 2:
			t.Errorf("%s was delivered %d times", n.ID, c)
		case c == 2:
			twice++
		}
	}
	checkNoPanic(t, "gateway", e.proc.Output())
	t.Logf("figures: storage directory made immutable after %d notifications; the first answer other than S came at notification %d, the gateway had logged the store's failure by notification %d, of %d sent; answers while unwritable: %s (every S acknowledged after the backend accepted it); without an answer: %d; causes of the U answers in the gateway's log: %s; the store's failure as logged: %s",
		len(warm), firstNonS.Load(), storeFailed.Load(), len(episode), formatTally(tally(episode)), len(noAnswer), formatTally(causes), failure)
	t.Logf("figures: directory writable again: serving again after %s (store closed and reopened by the gateway, no restart); resent everything: %d resends in %d rounds (%s); acknowledged ones delivered again: 0; delivered twice: %d (forwarded, then answered U before the store recorded the backend's answer)",
		recovered.Round(time.Millisecond), len(resent), rounds, formatTally(tally(resent)), twice)
}

// logged reports whether p's output contains text within timeout.
func logged(p *caddyProc, text string, timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		if strings.Contains(p.Output(), text) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// storeFailedLog is in the gateway's log line when the store failed and is
// taken out of service until it is reopened.
const storeFailedLog = "the store failed"

// storeFailureLogged returns the first log line of out whose message says
// the store failed, with the cause it names (its error field, shortened
// in the middle),
// or "" if no such line names one.
func storeFailureLogged(out string) string {
	for line := range strings.Lines(out) {
		if !strings.Contains(line, storeFailedLog) {
			continue
		}
		var l logLine
		if json.Unmarshal([]byte(line), &l) != nil || !strings.Contains(l.Msg, storeFailedLog) || l.Error == "" {
			continue
		}
		cause := l.Error
		if len(cause) > 400 { // Badger's wrapped errors repeat the path
			cause = cause[:150] + " ... " + cause[len(cause)-250:]
		}
		return l.Msg + ": " + cause
	}
	return ""
}

// uCauses finds the gateway's log line of every U in us (waiting a moment
// for the last ones: a line is written after its answer) and counts them by
// cause. A U without a line, or whose line names no error, fails the test.
func uCauses(t *testing.T, p *caddyProc, us []attempt) map[string]int {
	t.Helper()
	var lines map[string]logLine
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines = map[string]logLine{}
		for _, l := range notificationLogs(p.Output()) {
			if l.Code == "UNKNOWN_EXCEPTION" {
				lines[l.RequestID] = l
			}
		}
		missing := 0
		for _, a := range us {
			if _, ok := lines[a.ID]; !ok {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	causes := map[string]int{}
	for _, a := range us {
		l, ok := lines[a.ID]
		switch {
		case !ok:
			t.Errorf("%s was answered U without a log line saying why", a.ID)
			causes["no log line"]++
		case l.Error == "":
			t.Errorf("%s was answered U; its log line (outcome %q) names no error", a.ID, l.Outcome)
			causes[l.Outcome+": no error"]++
		case l.Outcome == "backend_failed":
			causes["the backend failed or timed out"]++
		default:
			causes[l.Outcome+": "+uCause(l.Error)]++
		}
	}
	return causes
}

// uCause classifies the error of a U's log line for the figures.
func uCause(err string) string {
	switch {
	case strings.Contains(err, "must be reopened"):
		return "the store failed"
	case strings.Contains(err, "being reopened"):
		return "the store is being reopened"
	case strings.Contains(err, "no answer from the store"):
		return "store call timed out"
	}
	if len(err) > 80 {
		err = err[:80] + "..."
	}
	return err
}

func testStoreFrozen(t *testing.T) {
	needRoot(t, "mkfs.ext4", "mount", "umount", "fsfreeze")
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "store.img"), filepath.Join(dir, "mnt")
	sh(t, "mkdir", mnt)
	sh(t, "truncate", "-s", "128M", img)
	sh(t, "mkfs.ext4", "-q", "-F", img)
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("skipping: cannot loop-mount a filesystem here: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", mnt).Run() })

	e := startRelEnv(t, func(g *relGateway) {
		g.ForwardTimeout = "2s"
		g.Storage = filepath.Join(mnt, "dws")
	})
	frozen := false
	t.Cleanup(func() { // runs before the gateway is stopped
		if frozen {
			_ = exec.Command("fsfreeze", "-u", mnt).Run()
		}
	})

	warm := addNotifs(t, "frozen-warm", 20)
	for _, a := range e.lc.runLoad(t, warm, 8, nil, nil) {
		if a.Result != "S" {
			t.Fatalf("before the freeze: %s", a)
		}
	}
	before := e.be.Count()
	sh(t, "fsfreeze", "-f", mnt)
	frozen = true

	items := addNotifs(t, "frozen", 24)
	began := time.Now()
	during := e.lc.runLoad(t, items, 8, nil, nil)
	took := time.Since(began)
	var slowest time.Duration
	for _, a := range during {
		if !a.Answered || a.Status != http.StatusOK || a.Result != "U" {
			t.Errorf("while the storage was frozen: %s, want U", a)
		}
		if d := a.End.Sub(a.Start); d > slowest {
			slowest = d
		}
	}
	// The gateway gives up on the store after 5s; allow for a slow machine.
	if slowest > 30*time.Second {
		t.Errorf("a notification took %s to be answered while the storage was frozen", slowest)
	}
	deliveredFrozen := e.be.Count() - before

	sh(t, "fsfreeze", "-u", mnt)
	frozen = false
	all := append(append([]notif{}, warm...), items...)
	resent, rounds := e.sendUntil(t, all, 8, "S", time.Second, 2*time.Minute)
	ds := e.be.Deliveries()
	checkDeliveries(t, ds, notifMap(all))
	ix := indexDeliveries(ds)
	for _, n := range warm {
		if ix.All[n.ID] != 1 {
			t.Errorf("%s, acknowledged before the freeze, was delivered %d times", n.ID, ix.All[n.ID])
		}
	}
	for _, n := range items {
		if ix.Accepted[n.ID] < 1 || ix.All[n.ID] > 2 {
			t.Errorf("%s: delivered %d times, accepted %d", n.ID, ix.All[n.ID], ix.Accepted[n.ID])
		}
	}
	checkNoPanic(t, "gateway", e.proc.Output())
	t.Logf("figures: storage filesystem frozen: %d notifications answered %s in %s (slowest %s), %d reached the backend; after the thaw %d resends in %d rounds (%s): every one delivered and acknowledged, the %d acknowledged before the freeze replayed",
		len(items), formatTally(tally(during)), took.Round(time.Millisecond), slowest.Round(time.Millisecond), deliveredFrozen,
		len(resent), rounds, formatTally(tally(resent)), len(warm))
}
