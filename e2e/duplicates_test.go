package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestConcurrentDuplicates (SPEC §8: concurrent duplicates of one requestId,
// exactly one reaches the backend). Fifty copies of one notification, each
// signed on its own and posted on its own connection, are released at the
// same moment through the built gateway. Exactly one may reach the backend;
// every copy is answered S (forwarded, or the stored answer replayed) or U
// (the first copy failed, or the wait for it ended first). Rounds differ in
// how the backend answers: slowly, at once, with a business refusal, and
// with a failure (the first copy is released, so its waiting duplicates get
// U and the next resend is forwarded again).
func TestConcurrentDuplicates(t *testing.T) {
	e := startRelEnv(t, func(g *relGateway) { g.ForwardTimeout = "5s" })
	const copies = 50
	rounds := []struct {
		name string
		mode backendMode
		// deliveries after the resend that follows the burst (with the
		// backend answering 200 again)
		afterResend int
	}{
		{"backend answers 200 after 400ms", backendMode{Delay: 400 * time.Millisecond}, 1},
		{"backend answers 200 at once", backendMode{}, 1},
		{"backend refuses with 409 after 200ms", backendMode{Status: http.StatusConflict, Delay: 200 * time.Millisecond}, 1},
		// The first copy holds the claim for 2s, far longer than the burst
		// takes to arrive, so no copy can arrive after its release.
		{"backend fails with 503 after 2s", backendMode{Status: http.StatusServiceUnavailable, Delay: 2 * time.Second}, 2},
	}
	for r, round := range rounds {
		t.Run(round.name, func(t *testing.T) {
			e.be.SetMode(round.mode)
			n := addNotif(t, fmt.Sprintf("dup-%d", r))
			before := e.be.Count()

			// Every copy is signed (with its own Request-Time, as a DWS
			// resend would be) before the burst is released.
			start := make(chan struct{})
			answers := make([]attempt, copies)
			var wg sync.WaitGroup
			for i := range copies {
				p := e.lc.Prepare(t, n)
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					answers[i] = p.Do(t)
				}()
			}
			close(start)
			withTimeout(t, 2*time.Minute, "the duplicates", wg.Wait)

			counts := tally(answers)
			var s, u int
			for _, a := range answers {
				switch {
				case !a.Answered:
					t.Errorf("copy got no answer: %s", a)
				case a.Status != http.StatusOK:
					t.Errorf("copy answered HTTP %d: %s", a.Status, a)
				case a.Result == "S" && a.Code == "SUCCESS":
					s++
				case a.Result == "U" && a.Code == "UNKNOWN_EXCEPTION":
					u++
				default:
					t.Errorf("copy answered %s, want S or U", a)
				}
			}
			ds := e.be.Deliveries()[before:]
			if len(ds) != 1 {
				t.Errorf("backend received %d copies of %s, want exactly 1", len(ds), n.ID)
			}
			checkDeliveries(t, ds, notifMap([]notif{n}))
			failing := round.mode.Status >= 500
			if failing && s != 0 {
				t.Errorf("%d copies were answered S although the backend failed", s)
			}
			if !failing && s == 0 {
				t.Error("no copy was answered S")
			}

			// A later resend, with the backend answering 200: a completed
			// notification is answered from the store and not forwarded; a
			// released one is forwarded once more.
			e.be.SetMode(backendMode{})
			again := e.lc.Send(t, n)
			if !again.Answered || again.Result != "S" {
				t.Errorf("resend after the burst: %s, want S", again)
			}
			if got := e.be.Count() - before; got != round.afterResend {
				t.Errorf("backend received %d copies after the resend, want %d", got, round.afterResend)
			}
			t.Logf("figures: %d concurrent duplicates of %s: %d forwarded to the backend; answers: %s (S %d, U %d); resend afterwards: %s %s",
				copies, n.ID, len(ds), formatTally(counts), s, u, again.Result, again.Code)
		})
	}
	checkNoPanic(t, "gateway", e.proc.Output())
}
