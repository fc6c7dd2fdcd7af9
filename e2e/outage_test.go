package e2e

import (
	"net/http"
	"testing"
	"time"
)

// TestBackendOutage (SPEC §8: backend outage: U while down; after recovery
// each requestId is delivered once more and then acknowledged). The same
// notifications go through three kinds of outage (backend not listening,
// answering 503, hanging past forward_timeout) and are answered U every
// time; nothing is recorded as done, so after recovery each is delivered,
// accepted exactly once and answered S, and later resends are replayed
// without reaching the backend again.
func TestBackendOutage(t *testing.T) {
	e := startRelEnv(t, func(g *relGateway) { g.ForwardTimeout = "2s" })
	const n, conc = 40, 16
	items := addNotifs(t, "outage", n)
	sent := notifMap(items)

	allU := func(t *testing.T, phase string, as []attempt) {
		t.Helper()
		for _, a := range as {
			if !a.Answered || a.Status != http.StatusOK || a.Result != "U" || a.Code != "UNKNOWN_EXCEPTION" {
				t.Errorf("%s: %s, want HTTP 200 U UNKNOWN_EXCEPTION", phase, a)
			}
		}
		if len(as) != n {
			t.Fatalf("%s: %d attempts, want %d", phase, len(as), n)
		}
	}

	// 1. Not listening: reverse_proxy cannot connect.
	e.be.Down()
	down := e.lc.runLoad(t, items, conc, nil, nil)
	allU(t, "backend down", down)
	if c := e.be.Count(); c != 0 {
		t.Fatalf("backend down: %d deliveries recorded", c)
	}
	e.be.Up()

	// 2. Answering 503: each notification reaches the backend and fails.
	e.be.SetMode(backendMode{Status: http.StatusServiceUnavailable})
	failing := e.lc.runLoad(t, items, conc, nil, nil)
	allU(t, "backend answers 503", failing)
	afterFailing := e.be.Count()

	// 3. Hanging: the gateway gives up after forward_timeout.
	e.be.SetMode(backendMode{Hang: true})
	began := time.Now()
	hanging := e.lc.runLoad(t, items, conc, nil, nil)
	allU(t, "backend hangs", hanging)
	hangTook := time.Since(began)
	waitFor(t, 30*time.Second, "the gateway to drop the hanging forwards", func() bool { return e.be.InHandler() == 0 })
	afterHanging := e.be.Count()

	// 4. Recovered: every notification is delivered and accepted once.
	e.be.SetMode(backendMode{})
	recovered := e.lc.runLoad(t, items, conc, nil, nil)
	for _, a := range recovered {
		if !a.Answered || a.Result != "S" || a.Code != "SUCCESS" {
			t.Errorf("after recovery: %s, want S SUCCESS", a)
		}
	}
	afterRecovery := e.be.Count()

	// 5. Resent after completion: answered from the store, not delivered.
	resent := e.lc.runLoad(t, items, conc, nil, nil)
	for _, a := range resent {
		if !a.Answered || a.Result != "S" || a.Code != "SUCCESS" {
			t.Errorf("resend after completion: %s, want S SUCCESS", a)
		}
	}

	ds := e.be.Deliveries()
	checkDeliveries(t, ds, sent)
	ix := indexDeliveries(ds)
	for _, it := range items {
		if got := ix.Accepted[it.ID]; got != 1 {
			t.Errorf("%s was accepted by the backend %d times, want exactly 1", it.ID, got)
		}
	}
	if len(ds) != afterRecovery {
		t.Errorf("backend received %d notifications after they were completed", len(ds)-afterRecovery)
	}
	if afterFailing != n || afterHanging-afterFailing != n || afterRecovery-afterHanging != n {
		t.Errorf("deliveries per phase: 503 %d, hang %d, recovered %d; want %d each",
			afterFailing, afterHanging-afterFailing, afterRecovery-afterHanging, n)
	}
	checkNoPanic(t, "gateway", e.proc.Output())
	t.Logf("figures: %d notifications; backend down (refused): %s, 0 delivered; backend 503: %s, %d delivered and failed; backend hanging: %s in %s, %d delivered and abandoned; recovered: %s, %d delivered and accepted (each exactly once); resent after completion: %s, %d delivered",
		n, formatTally(tally(down)), formatTally(tally(failing)), afterFailing,
		formatTally(tally(hanging)), hangTook.Round(time.Millisecond), afterHanging-afterFailing,
		formatTally(tally(recovered)), afterRecovery-afterHanging, formatTally(tally(resent)), len(ds)-afterRecovery)
}
