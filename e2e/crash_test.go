package e2e

import (
	"errors"
	"os/exec"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestKillUnderLoad (SPEC §8: kill -9 under load, then restart). 4,000
// notifications go to the built gateway at concurrency 16; when half of them
// have been answered the gateway gets SIGKILL. It is restarted on the
// same storage directory and every notification is sent again, like DWS
// resends whatever was not acknowledged, until each is answered S.
//
//   - Every notification answered S before the kill had reached the backend
//     (S is only sent after the backend accepted and the record was synced).
//   - None of those reaches the backend again: the resend is replayed from
//     the store.
//   - After the resend every requestId was delivered and acknowledged.
//   - Only notifications forwarded but not completed when the process died
//     may reach the backend twice: their claim survived without an outcome,
//     so once its lease runs out the resend is forwarded again. Until then
//     their resends are answered U.
func TestKillUnderLoad(t *testing.T) {
	const (
		total   = 4000
		conc    = 16
		killAt  = total / 2   // answered S before the kill
		backoff = time.Second // between resend rounds
	)
	// forward_timeout 2s makes the claim lease 2*2s+5s = 9s: the time an
	// orphaned claim blocks its requestId after the crash.
	e := startRelEnv(t, func(g *relGateway) { g.ForwardTimeout = "2s" })
	// Backend latency keeps most of the notifications in flight at the
	// backend at any moment, so the kill catches some forwarded but not
	// completed.
	e.be.SetMode(backendMode{Delay: 20 * time.Millisecond})
	items := addNotifs(t, "crash", total)
	sent := notifMap(items)

	var (
		answeredS atomic.Int64
		killed    atomic.Bool
		killOnce  sync.Once
		killDone  = make(chan struct{})
		killTime  time.Time
	)
	began := time.Now()
	phase1 := e.lc.runLoad(t, items, conc, func() bool { return !killed.Load() }, func(a attempt) {
		if a.Answered && a.Result == "S" && answeredS.Add(1) == killAt {
			killOnce.Do(func() {
				go func() {
					defer close(killDone)
					killed.Store(true)
					killTime = time.Now()
					if err := e.proc.Kill(); err != nil {
						t.Errorf("SIGKILL: %v", err)
					}
				}()
			})
		}
	})
	select {
	case <-killDone:
	case <-time.After(time.Minute):
		t.Fatalf("the gateway was never killed: only %d of %d answered S (%s)", answeredS.Load(), killAt, formatTally(tally(phase1)))
	}
	var exitErr *exec.ExitError
	if !errors.As(e.proc.waitErr, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the gateway did not die of SIGKILL: %v", e.proc.waitErr)
	}
	loadTook := killTime.Sub(began)
	checkNoPanic(t, "gateway before the kill", e.proc.Output())

	// What the backend had received when the gateway died (a forward still
	// on its way is recorded on arrival, so wait until the backend is idle).
	waitFor(t, 30*time.Second, "the backend to finish", func() bool { return e.be.InHandler() == 0 })
	pre := indexDeliveries(e.be.Deliveries())

	ackedBeforeKill := map[string]bool{}
	attempted := map[string]bool{}
	inFlight := map[string]bool{} // connection open when the process died
	refused := 0
	for _, a := range phase1 {
		attempted[a.ID] = true
		switch {
		case a.Answered && a.Result == "S":
			ackedBeforeKill[a.ID] = true
		case a.Answered:
			if a.Result == "F" {
				t.Errorf("before the kill: %s", a)
			}
		case a.Kind == "refused":
			refused++ // sent after the process was gone
		default:
			inFlight[a.ID] = true
		}
	}
	for id := range ackedBeforeKill {
		if pre.Accepted[id] != 1 {
			t.Errorf("%s was answered S before the kill but the backend accepted it %d times", id, pre.Accepted[id])
		}
	}
	forwardedNotDone := map[string]bool{}
	for id := range pre.All {
		if !ackedBeforeKill[id] {
			forwardedNotDone[id] = true
		}
	}

	// Restart on the same storage; resend everything until all are S.
	e.restart(t)
	resendBegan := time.Now()
	phase2, rounds := e.sendUntil(t, items, conc, "S", backoff, 2*time.Minute)
	resendTook := time.Since(resendBegan)
	waitFor(t, 30*time.Second, "the backend to finish", func() bool { return e.be.InHandler() == 0 })

	ds := e.be.Deliveries()
	checkDeliveries(t, ds, sent)
	post := indexDeliveries(ds)
	twice := deliveredTwice(t, items, post, ackedBeforeKill, forwardedNotDone, "it had not been forwarded before the kill")
	sort.Strings(twice)
	uDuringResend := 0
	for _, a := range phase2 {
		if a.Answered && a.Result == "U" {
			uDuringResend++
		}
	}
	checkNoPanic(t, "gateway after the restart", e.proc.Output())
	if len(ackedBeforeKill) < killAt {
		t.Errorf("only %d notifications were acknowledged before the kill, want at least %d", len(ackedBeforeKill), killAt)
	}

	t.Logf("figures: %d notifications at concurrency %d; SIGKILL after %s with %d answered S (all %d of them had reached the backend), %d in flight (connection open at the kill), %d refused after the kill, %d never sent",
		total, conc, loadTook.Round(time.Millisecond), len(ackedBeforeKill), len(ackedBeforeKill), len(inFlight), refused, total-len(attempted))
	t.Logf("figures: %d forwarded to the backend but not completed at the kill; after the restart %d resends in %d rounds over %s (%s): every requestId delivered and acknowledged; acknowledged-before-kill delivered again: 0; delivered twice: %d %v (all among the forwarded-but-not-completed)",
		len(forwardedNotDone), len(phase2), rounds, resendTook.Round(time.Millisecond), formatTally(tally(phase2)), len(twice), twice)
	if uDuringResend > 0 {
		t.Logf("figures: %d resends were answered U while an orphaned claim's lease (9s) still held its requestId", uDuringResend)
	}
}
