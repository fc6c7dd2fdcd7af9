package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestReloadsUnderLoad (SPEC §8: config reloads under load: no failed
// request, no directory-lock error, dedupe state kept). Twenty configs are
// loaded through the admin API while sixteen DWS-like senders post
// notifications, one in five of them a resend of a notification already
// acknowledged. Every config differs from the one before (forward_timeout
// alternates between 5s and 6s), all use the same storage directory, and
// Caddy's grace_period is 10s.
//
// Half the senders open a new connection per notification, half keep
// connections alive. A stock Caddy closes a few connections that are in the
// middle of being handed from the old server to the new one without any
// answer (see docs/reliability.md, "Connections dropped during a reload", and e2e/reloadstudy); like
// DWS, which resends every notification it did not get an answer for, the
// senders then send the notification again. The test proves those attempts
// never reached dws_notify: the gateway logs exactly one line per
// notification it answered, and that count equals the number of attempts
// that got an answer, and the backend never saw the Request-Time of an
// attempt without an answer.
//
// Zero failed notifications: every one is answered S, every requestId
// reaches the backend exactly once, resends are replayed, and after the
// reloads the store holds exactly one accepted record per requestId.
func TestReloadsUnderLoad(t *testing.T) {
	const (
		reloads  = 20
		conc     = 16
		attempts = 5 // per notification, as DWS resends what got no answer
	)
	tune := func(i int) func(*relGateway) {
		return func(g *relGateway) {
			g.GracePeriod = "10s"
			g.ForwardTimeout = []string{"5s", "6s"}[i%2]
			g.Comment = fmt.Sprintf("config generation %d", i)
		}
	}
	e := startRelEnv(t, tune(0))
	fresh := e.lc
	kept := e.lc.keepAlive(conc)

	var (
		mu      sync.Mutex
		all     []attempt // every attempt
		acked   []notif   // answered S at least once
		nextID  atomic.Int64
		stop    atomic.Bool
		failed  []string // notifications that never got S
		resends atomic.Int64
		wg      sync.WaitGroup
	)
	send := func(lc *dwsClient, n notif) {
		for i := 1; ; i++ {
			a := lc.Send(t, n)
			mu.Lock()
			all = append(all, a)
			mu.Unlock()
			if a.Answered {
				if a.Result != "S" {
					mu.Lock()
					failed = append(failed, a.String())
					mu.Unlock()
				}
				return
			}
			if i == attempts {
				mu.Lock()
				failed = append(failed, fmt.Sprintf("%s (after %d attempts)", a, i))
				mu.Unlock()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for w := range conc {
		lc := fresh
		if w%2 == 1 {
			lc = kept
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for !stop.Load() {
				mu.Lock()
				var n notif
				resend := len(acked) > 0 && rng.IntN(5) == 0
				if resend {
					n = acked[rng.IntN(len(acked))]
				}
				mu.Unlock()
				if resend {
					resends.Add(1)
				} else {
					n = addNotif(t, fmt.Sprintf("reload-%06d", nextID.Add(1)))
				}
				send(lc, n)
				if !resend {
					mu.Lock()
					acked = append(acked, n)
					mu.Unlock()
				}
			}
		}()
	}

	// Traffic first, then the reloads, then a little more traffic.
	time.Sleep(time.Second)
	began := time.Now()
	for i := 1; i <= reloads; i++ {
		next := e.gw
		tune(i)(&next)
		if err := e.proc.Load(next.Caddyfile()); err != nil {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("reload %d: %v", i, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	reloadsTook := time.Since(began)
	time.Sleep(time.Second)
	stop.Store(true)
	withTimeout(t, 2*time.Minute, "the senders", wg.Wait)

	for _, f := range failed {
		t.Errorf("failed notification: %s", f)
	}

	// Every attempt without an answer never reached dws_notify.
	answered, noAnswer := 0, map[string]int{}
	var lost []attempt
	for _, a := range all {
		if a.Answered {
			answered++
			continue
		}
		lost = append(lost, a)
		conn := "new connection"
		if a.Reused {
			conn = "kept-alive connection"
		}
		noAnswer[fmt.Sprintf("%s on a %s", a.Kind, conn)]++
	}
	ds := e.be.Deliveries()
	seen := map[string]bool{}
	for _, d := range ds {
		seen[d.RequestID+"\x00"+d.RequestTime] = true
	}
	for _, a := range lost {
		if seen[a.ID+"\x00"+a.RequestTime] {
			t.Errorf("an attempt without an answer reached the backend: %s", a)
		}
	}

	// Dedupe state intact: every requestId delivered exactly once, and the
	// store holds exactly one accepted record for each.
	checkDeliveries(t, ds, notifMap(acked))
	ix := indexDeliveries(ds)
	for _, n := range acked {
		if ix.All[n.ID] != 1 {
			t.Errorf("%s reached the backend %d times, want 1", n.ID, ix.All[n.ID])
		}
	}
	again := e.lc.runLoad(t, acked, conc, nil, nil)
	for _, a := range again {
		if a.Answered {
			answered++
		}
		if !a.Answered || a.Result != "S" {
			t.Errorf("resend after the reloads: %s, want S", a)
		}
	}
	if got := e.be.Count(); got != len(ds) {
		t.Errorf("resends after the reloads reached the backend %d times", got-len(ds))
	}
	stats := adminStats(t, e.gw.AdminAddr)
	if stats.Total.Accepted != len(acked) || stats.Total.InFlight != 0 {
		t.Errorf("store after the reloads: %d accepted, %d in flight; want %d accepted, 0 in flight", stats.Total.Accepted, stats.Total.InFlight, len(acked))
	}

	// The gateway writes a notification's log line just after its answer,
	// so count the lines once it has stopped.
	if err := e.proc.Stop(); err != nil {
		t.Errorf("stopping the gateway: %v", err)
	}
	out := e.proc.Output()
	logged := 0
	for _, l := range notificationLogs(out) {
		if strings.HasPrefix(l.RequestID, "reload-") {
			logged++
		}
	}
	if logged != answered {
		t.Errorf("the gateway logged %d notifications but %d attempts got an answer: %d attempts without an answer reached dws_notify",
			logged, answered, logged-answered)
	}
	lockErrors := strings.Count(out, "Cannot acquire directory lock") + strings.Count(out, "locked by another process")
	if lockErrors != 0 {
		t.Errorf("the gateway log has %d directory-lock errors", lockErrors)
	}
	checkNoPanic(t, "gateway", out)

	t.Logf("figures: %d reloads through the admin API in %s (each answered 200), %d notifications (%d acknowledged, %d resends of acknowledged ones mixed in), %d attempts at concurrency %d (half new connections, half kept alive); failed notifications: %d; directory-lock errors: %d; store afterwards: %d accepted, %d in flight; every requestId delivered exactly once",
		reloads, reloadsTook.Round(time.Millisecond), len(acked)+int(resends.Load()), len(acked), resends.Load(), len(all), conc,
		len(failed), lockErrors, stats.Total.Accepted, stats.Total.InFlight)
	t.Logf("figures: %d of %d attempts (%.2f%%) got no answer and were resent: %s; none of them reached dws_notify (%d log lines = %d answered attempts, the final resend included) or the backend",
		len(lost), len(all), 100*float64(len(lost))/float64(max(len(all), 1)), formatTally(noAnswer), logged, answered)
}

// storeStats is the part of GET /dws_notify/stats the tests read.
type storeStats struct {
	Total struct {
		InFlight int `json:"in_flight"`
		Accepted int `json:"accepted"`
		Total    int `json:"total"`
	} `json:"total"`
}

// adminStats asks the gateway's admin API for its record counts.
func adminStats(t testing.TB, adminAddr string) storeStats {
	t.Helper()
	client := &http.Client{Timeout: callTimeout, Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Get("http://" + adminAddr + "/dws_notify/stats")
	if err != nil {
		t.Fatalf("GET /dws_notify/stats: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /dws_notify/stats: HTTP %d %s (%v)", resp.StatusCode, body, err)
	}
	var s storeStats
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("GET /dws_notify/stats: %v: %s", err, body)
	}
	return s
}
