package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore/redistest"
)

// Production Redis deployments through the built binary: a Redis Cluster
// of three primaries, a Sentinel-managed primary killed under load, and
// TLS with a private CA and a client certificate. Real redis-server and
// redis-sentinel processes on loopback (redistest; without them these
// tests skip, unless DWS_REQUIRE_REDIS=1).

// e2eSentinelPassword is the sentinels' own password: no gateway output
// may show it either.
const e2eSentinelPassword = "e2e-sentinel-secret-51c"

// TestRedisClusterFleet: two gateway processes share a Redis Cluster of
// three primaries, configured as store redis cluster with the seed
// addresses in one {env.*} placeholder. The rounds of concurrent
// duplicates of TestRedisFleetDuplicates (50 copies at once over both
// gateways: exactly one forward); then 300 distinct notifications over
// both gateways: each forwarded once, their records spread over all three
// primaries, and the admin API's stats, which scan the store, count every
// record of every primary.
func TestRedisClusterFleet(t *testing.T) {
	caddyBin(t) // skip before starting any Redis
	cluster := redistest.StartCluster(t, 3)
	t.Setenv("DWS_E2E_CLUSTER", strings.Join(cluster.Addrs(), ","))
	f := startFleet(t, 2, "store redis cluster {env.DWS_E2E_CLUSTER} {\n\t\t\tprefix "+fleetPrefix+"\n\t\t}",
		redisstore.Options{Cluster: &redisstore.ClusterOptions{Addrs: cluster.Addrs()}}, "5s")
	fleetDuplicates(t, f, "a Redis Cluster of 3 primaries")

	f.be.SetMode(backendMode{})
	before := f.be.Count()
	items := addNotifs(t, "cluster", 300)
	var halves [2][]notif
	for i, n := range items {
		halves[i%2] = append(halves[i%2], n)
	}
	var wg sync.WaitGroup
	var answers [2][]attempt
	for g := range 2 {
		wg.Go(func() { answers[g] = f.lcs[g].runLoad(t, halves[g], 8, nil, nil) })
	}
	wg.Wait()
	for g := range 2 {
		for _, a := range answers[g] {
			if !a.Answered || a.Result != "S" {
				t.Errorf("gateway %c: %s, want S", 'A'+g, a)
			}
		}
	}
	ds := f.be.Deliveries()[before:]
	checkDeliveries(t, ds, notifMap(items))
	if ix := indexDeliveries(ds); len(ds) != len(items) || len(ix.All) != len(items) {
		t.Errorf("backend received %d deliveries of %d requestIds for %d notifications, want each once", len(ds), len(ix.All), len(items))
	}

	perNode := make([]int64, len(cluster.Nodes))
	var onNodes int64
	for i, node := range cluster.Nodes {
		keys, err := node.Client(0).Keys(t.Context(), fleetPrefix+"r:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		perNode[i] = int64(len(keys))
		onNodes += perNode[i]
		if len(keys) == 0 {
			t.Errorf("primary %d holds no record", i)
		}
	}
	stats := [2]storeStats{adminStats(t, f.gws[0].AdminAddr), adminStats(t, f.gws[1].AdminAddr)}
	for g, st := range stats {
		if int64(st.Total.Total) != onNodes || st.Total.InFlight != 0 {
			t.Errorf("gateway %c's admin stats count %d records (%d in flight); the primaries hold %d", 'A'+g, st.Total.Total, st.Total.InFlight, onNodes)
		}
	}
	f.checkOutputs(t)
	t.Logf("figures: Redis Cluster, 3 primaries, 2 gateways: %d distinct notifications over both, %d deliveries; records per primary %v (%d in all); admin stats on A and B: %d and %d records",
		len(items), len(ds), perNode, onNodes, stats[0].Total.Total, stats[1].Total.Total)
}

// failoverRun is one run of TestRedisSentinelFailover.
type failoverRun struct {
	name         string
	replicas     int
	waitReplicas string // the wait_replicas option, "" for none
	// maxUWindow bounds the time from the primary's SIGKILL to the first
	// S of a notification sent after it, on either gateway (and, with
	// failAgain, from the moment the sentinels agreed on the second
	// failover's primary to the first S of an attempt started after it).
	maxUWindow time.Duration
	// failAgain: once both gateways answer S after the kill's failover,
	// SENTINEL FAILOVER promotes the other replica while the new primary
	// still runs, as a false detection does (redis/redis#8607).
	failAgain bool
}

// lossHorizon bounds how long before the kill a lost acknowledged
// completion may have been answered S: replication (and, with
// wait_replicas 1, the replica Sentinel promotes) runs milliseconds behind
// on loopback, so a completion answered earlier than this and missing from
// the new primary is a failure.
const lossHorizon = time.Second

// promotionLead is how long before the sentinels publish a failover's
// config epoch its promotion may have taken effect (the leader publishes
// it once it sees the promoted replica report itself primary).
const promotionLead = 3 * time.Second

// epochChange is a change of the sentinels' config epoch: a failover took
// effect.
type epochChange struct {
	At       time.Time // when the poller saw it
	From, To int
}

// flapWindow is when a failover after the kill's (an extra one) may have
// cost a claim or an unconfirmed completion.
type flapWindow struct {
	change   epochChange
	from, to time.Time
	// redelivered counts the requestIds never acknowledged before their
	// second delivery and first delivered in the window.
	redelivered int
}

// pollConfigEpoch reads the sentinels' config epoch every 100 ms until
// stop is called (or the test ends) and records each change with the
// time it was seen. Failed reads are counted, not fatal: the poller runs
// outside the test's goroutine.
func pollConfigEpoch(t *testing.T, d *redistest.Sentinel) (stop func() (changes []epochChange, failedReads int)) {
	t.Helper()
	last := d.ConfigEpoch()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var (
		changes []epochChange
		failed  int
	)
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
			epoch, err := d.ReadConfigEpoch(rctx)
			rcancel()
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				failed++
			case epoch != last:
				changes = append(changes, epochChange{At: time.Now(), From: last, To: epoch})
				last = epoch
			}
		}
	}()
	stop = func() ([]epochChange, int) {
		cancel()
		<-done
		return changes, failed
	}
	t.Cleanup(func() { stop() })
	return stop
}

func formatEpochChanges(cs []epochChange, kill time.Time) string {
	var b strings.Builder
	for i, c := range cs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "at %s (epoch %d to %d)", c.At.Sub(kill).Round(time.Millisecond), c.From, c.To)
	}
	return b.String()
}

func formatFlapWindows(ws []flapWindow, kill time.Time) string {
	var b strings.Builder
	for _, w := range ws {
		fmt.Fprintf(&b, "; %s, window %s to %s: %d requestIds first delivered in it and not acknowledged before their second delivery were delivered twice",
			formatEpochChanges([]epochChange{w.change}, kill), w.from.Sub(kill).Round(time.Millisecond), w.to.Sub(kill).Round(time.Millisecond), w.redelivered)
	}
	return b.String()
}

// TestRedisSentinelFailover (issue 19: a Sentinel-managed primary killed
// under load). A primary, its replicas and three sentinels (redis-server
// and redis-sentinel from Debian's packages, appendonly yes, everysec;
// down-after-milliseconds 1000, failover-timeout 3000) on loopback; two
// gateway processes with store redis sentinel (the sentinels' addresses
// from one {env.*} placeholder, the data and sentinel passwords from
// others), forward_timeout 2s (lease 9s). Sixteen DWS-like senders (eight
// per gateway) post notifications, each resent every 100ms until S. Once
// 600 were answered S, the primary gets SIGKILL; the sentinels promote a
// replica; the load runs on until both gateways answer S again and 3 s
// more, and the gateways are never touched. Then every notification is
// resent until S.
//
// Three runs:
//   - asynchronous replication (one replica): an acknowledged completion
//     may be lost only if it was answered within the last second before
//     the kill;
//   - wait_replicas 1 (two replicas, so that one is left to acknowledge
//     after the failover): every S had a copy on a replica, but Sentinel
//     chooses the replica to promote by offsets it read up to a second
//     earlier and may promote the other one, which can lack the last
//     milliseconds of completions; so the same bound applies (one run
//     here once delivered an acknowledged notification twice this way).
//     Only wait_replicas equal to the number of replicas closes it
//     (docs/redis.md, Failover);
//   - wait_replicas 1 again, failed over twice: once both gateways
//     answer S after the kill's failover, SENTINEL FAILOVER promotes the
//     other replica while the first new primary still runs.
//
// In all the U window (the kill to the first S of a notification sent
// after it, on each gateway) stays under 15 s: down-after-milliseconds
// (1 s), the election and promotion (about 1.3 s), go-redis's reconnect
// (up to 1 s), and room for one failed election retried after twice the
// failover-timeout (6 s). Measured: about 3.2 s.
//
// In all: every attempt is answered S or U (never F, never a wrong
// envelope); the fleet answers S again by itself; no S answered for an
// attempt started after the kill is lost (one started before may have
// been answered by the killed primary: the loss bound above applies); a
// requestId reaches the backend twice only if an attempt of it was in
// flight at the kill or its completion was lost, and every notification
// acknowledged before the kill whose record survived was delivered
// exactly once. In the third run the gateways answer S again, for
// attempts started after the sentinels agreed on the second new primary,
// within the same 15 s. Measured: about 10 s, completions answered U
// meanwhile: wait_replicas 1 lacks a replica until the deposed primary
// rejoins as one, which the sentinels order only after it reported itself
// primary for 8 s.
//
// A goroutine reads the sentinels' config epoch every 100 ms from before
// the kill to the end and records each change: the first after the kill
// is the kill's failover, any other an extra one. Under load the
// sentinels sometimes take the freshly promoted primary for down and fail
// over a second time (redis/redis#8607); the third run forces one. What
// the deposed primary took until the gateways followed (claims,
// completions no replica confirmed) is gone, so for each extra failover
// the test also lets through a second delivery of a notification that
// was never answered S before it, if its first delivery fell in a window
// from 3 s before the change was seen (the promotion precedes the
// published epoch; in the third run from the command, if earlier) to
// when both gateways answered S for an attempt started after it. Every S
// stays as above; the figures list each change and window.
func TestRedisSentinelFailover(t *testing.T) {
	caddyBin(t) // skip before starting any Redis
	runs := []failoverRun{
		{name: "async replication", replicas: 1, maxUWindow: 15 * time.Second},
		{name: "wait_replicas 1", replicas: 2, waitReplicas: "wait_replicas 1 500ms", maxUWindow: 15 * time.Second},
		{name: "wait_replicas 1, failed over twice", replicas: 2, waitReplicas: "wait_replicas 1 500ms", maxUWindow: 15 * time.Second, failAgain: true},
	}
	for _, run := range runs {
		t.Run(run.name, func(t *testing.T) { sentinelFailover(t, run) })
	}
}

func sentinelFailover(t *testing.T, run failoverRun) {
	const (
		perGateway = 8
		killAfterS = 600
		runAfter   = 3 * time.Second
		resend     = 100 * time.Millisecond
	)
	d := redistest.StartSentinel(t, redistest.SentinelConfig{
		Data:     redistest.Config{AppendOnly: true, Password: e2eRedisPassword},
		Replicas: run.replicas, Password: e2eSentinelPassword,
		DownAfter: time.Second, FailoverTimeout: 3 * time.Second,
	})
	t.Setenv("DWS_E2E_SENTINELS", strings.Join(d.Addrs(), ","))
	t.Setenv("DWS_E2E_REDIS_PASSWORD", e2eRedisPassword)
	t.Setenv("DWS_E2E_SENTINEL_PASSWORD", e2eSentinelPassword)
	store := "store redis sentinel " + d.MasterName + " {env.DWS_E2E_SENTINELS} {\n\t\t\tpassword {env.DWS_E2E_REDIS_PASSWORD}\n\t\t\tsentinel_password {env.DWS_E2E_SENTINEL_PASSWORD}\n\t\t\tprefix " + fleetPrefix + "\n"
	if run.waitReplicas != "" {
		store += "\t\t\t" + run.waitReplicas + "\n"
	}
	store += "\t\t}"
	f := startFleet(t, 2, store, redisstore.Options{Password: e2eRedisPassword,
		Sentinel: &redisstore.SentinelOptions{MasterName: d.MasterName, Addrs: d.Addrs(), Password: e2eSentinelPassword}}, "2s")
	f.be.SetMode(backendMode{Delay: 10 * time.Millisecond})
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for i, s := range d.Sentinels {
			t.Logf("sentinel %d (%s) log:\n%s", i, s.Addr(), s.LogTail())
		}
		for i, s := range d.Data {
			t.Logf("data node %d (%s) log:\n%s", i, s.Addr(), s.LogTail())
		}
	})

	epochs := pollConfigEpoch(t, d)
	load := startFleetLoad(t, f, perGateway, "failover", resend)
	load.waitS(killAfterS)
	primary := d.Primary()
	killStart := time.Now()
	primary.Kill()
	killDone := time.Now()
	_, agreed := d.WaitFailover(primary, time.Minute)
	// Both gateways answer S again for notifications sent after the kill.
	firstSAfter := func(g int, all []attempt, since time.Time) time.Time {
		var first time.Time
		for _, a := range all {
			if a.Gateway == g && a.Start.After(since) && a.Answered && a.Result == "S" && (first.IsZero() || a.End.Before(first)) {
				first = a.End
			}
		}
		return first
	}
	firstS := func(g int, all []attempt) time.Time { return firstSAfter(g, all, killDone) }
	waitFor(t, time.Minute, "both gateways to answer S after the failover", func() bool {
		all := load.attempts()
		return !firstS(0, all).IsZero() && !firstS(1, all).IsZero()
	})
	var (
		againAt       time.Time // the second failover's command
		againAgreedAt time.Time // the sentinels agreed on the primary it promoted
		againAgreed   time.Duration
	)
	if run.failAgain {
		againAt = time.Now()
		_, againAgreed = d.Failover(time.Minute)
		againAgreedAt = time.Now()
		waitFor(t, time.Minute, "both gateways to answer S after the second failover", func() bool {
			all := load.attempts()
			return !firstSAfter(0, all, againAgreedAt).IsZero() && !firstSAfter(1, all, againAgreedAt).IsZero()
		})
	}
	time.Sleep(runAfter)
	all, sent, loadTook := load.stop()

	var (
		first   [2]time.Time
		uWindow [2]time.Duration
	)
	for g := range 2 {
		first[g] = firstS(g, all)
		uWindow[g] = first[g].Sub(killStart)
	}
	var (
		ackedAt    = map[string]time.Time{} // first S answer's end
		ackedStart = map[string]time.Time{} // the start of the first attempt answered S
		spanKill   = map[string]bool{}      // an attempt in flight at the kill, not answered S
		afterKill  []attempt
		beforeS    []attempt // started after the kill, ended before its gateway's first S
	)
	for _, a := range all {
		if a.Answered && a.Result != "S" && a.Result != "U" || a.Answered && a.Status != http.StatusOK {
			t.Errorf("%s, want HTTP 200 S or U", a)
		}
		isS := a.Answered && a.Result == "S"
		if isS {
			if at, ok := ackedAt[a.ID]; !ok || a.End.Before(at) {
				ackedAt[a.ID] = a.End
			}
			if at, ok := ackedStart[a.ID]; !ok || a.Start.Before(at) {
				ackedStart[a.ID] = a.Start
			}
		}
		if a.Start.Before(killDone) && a.End.After(killStart) && !isS {
			spanKill[a.ID] = true
		}
		if a.Start.After(killDone) {
			afterKill = append(afterKill, a)
			if a.End.Before(first[a.Gateway]) {
				beforeS = append(beforeS, a)
			}
		}
	}

	// Records lost: answered S, no done record on the new primary.
	direct := f.openDirect(t)
	ctx := context.Background()
	lost := map[string]bool{}
	var lostAt []time.Duration // how long before the kill each was acknowledged
	ackedBeforeKill, inHorizon := map[string]bool{}, 0
	for id, at := range ackedAt {
		if at.Before(killStart) {
			ackedBeforeKill[id] = true
			if killStart.Sub(at) <= lossHorizon {
				inHorizon++
			}
		}
		rec, found, err := direct.Get(ctx, idempotency.Key{ClientID: clientID, API: "addPaymentMethod", RequestID: id})
		if err != nil {
			t.Fatalf("reading the record of %s: %v", id, err)
		}
		if !found || rec.State != idempotency.StateDone || rec.Answer.Outcome != idempotency.OutcomeAccepted {
			lost[id] = true
			lostAt = append(lostAt, killStart.Sub(at))
			switch {
			case killStart.Sub(at) > lossHorizon:
				t.Errorf("%s was answered S %s before the kill, more than %s, and is lost (the new primary holds %+v, found %v)", id, killStart.Sub(at).Round(time.Millisecond), lossHorizon, rec, found)
			case ackedStart[id].After(killDone):
				// An attempt started after the kill reached a new primary:
				// with one replica that one has none left to fail over
				// to, and with wait_replicas 1 the one replica left
				// confirmed its S. (An S that ended after the kill may
				// come from the killed primary, for an attempt it
				// answered just before: the loss horizon bounds those.)
				t.Errorf("%s was answered S for an attempt started %s after the kill and is lost (the new primary holds %+v, found %v)", id, ackedStart[id].Sub(killDone).Round(time.Millisecond), rec, found)
			}
		}
	}

	// Resend everything until S (orphaned claims hold their requestId for
	// the 9s lease).
	items, final, rounds, resendTook, ds, ix := finalResend(t, f, sent)
	resendEnd := time.Now()
	changes, epochReadsFailed := epochs()
	// The poller's first change after the kill is the kill's failover;
	// any other is an extra one: the sentinels took a freshly promoted
	// primary for down and promoted the other replica (redis/redis#8607;
	// seen here under load with down-after-milliseconds 1000), or the
	// third run's SENTINEL FAILOVER.
	var (
		killChange epochChange
		extra      []epochChange
	)
	for _, c := range changes {
		if killChange.At.IsZero() && c.At.After(killStart) {
			killChange = c
			continue
		}
		extra = append(extra, c)
	}
	if killChange.At.IsZero() {
		t.Errorf("the sentinels' config epoch did not change after the kill (%d reads failed)", epochReadsFailed)
	}
	if run.failAgain && !slices.ContainsFunc(extra, func(c epochChange) bool { return c.At.After(againAt) }) {
		t.Errorf("SENTINEL FAILOVER did not change the config epoch (changes seen: %s)", formatEpochChanges(changes, killStart))
	}
	// Around an extra failover, claims and unconfirmed completions
	// written to the deposed primary until the gateways followed the
	// sentinels are gone, so a notification first delivered then and
	// never acknowledged before its second delivery may reach the backend
	// again; an acknowledged one may not (its completion was confirmed by
	// the replica that took over). The window opens before the change
	// (the promotion precedes the config epoch the sentinels publish; for
	// the forced failover, at its command if that is earlier) and closes
	// when both gateways answered S for an attempt started after the
	// change (they reached the new primary).
	everything := append(slices.Clone(all), final...)
	windows := make([]flapWindow, len(extra))
	forced := false
	for i, c := range extra {
		w := flapWindow{change: c, from: c.At.Add(-promotionLead)}
		if run.failAgain && !forced && c.At.After(againAt) {
			forced = true
			if againAt.Before(w.from) {
				w.from = againAt
			}
		}
		for g := range 2 {
			first := firstSAfter(g, everything, c.At)
			if first.IsZero() {
				first = resendEnd // no S after it: up to the end
			}
			if first.After(w.to) {
				w.to = first
			}
		}
		windows[i] = w
	}
	mayTwice := map[string]bool{}
	if len(windows) > 0 {
		firstDelivery := map[string]time.Time{}
		second := map[string]time.Time{} // each requestId's second delivery
		byTime := slices.Clone(ds)
		sort.SliceStable(byTime, func(i, j int) bool { return byTime[i].At.Before(byTime[j].At) })
		for _, dl := range byTime {
			if _, ok := firstDelivery[dl.RequestID]; !ok {
				firstDelivery[dl.RequestID] = dl.At
			} else if _, ok := second[dl.RequestID]; !ok {
				second[dl.RequestID] = dl.At
			}
		}
		for id, at := range second {
			if acked, ok := ackedAt[id]; ok && acked.Before(at) {
				continue
			}
			for i, w := range windows {
				if fd := firstDelivery[id]; !fd.Before(w.from) && !fd.After(w.to) {
					mayTwice[id] = true
					windows[i].redelivered++
					break
				}
			}
		}
	}
	kept := map[string]bool{}
	for id := range spanKill {
		mayTwice[id] = true
	}
	for id := range lost {
		mayTwice[id] = true
	}
	for id := range ackedBeforeKill {
		if !lost[id] {
			kept[id] = true
		}
	}
	twice := deliveredTwice(t, items, ix, kept, mayTwice, "no attempt of it was in flight at the kill, its record was not lost, and it was not first delivered around an extra failover and unacknowledged before its second delivery")
	var againWindow [2]time.Duration
	for g := range 2 {
		if uWindow[g] > run.maxUWindow {
			t.Errorf("gateway %c answered the first S %s after the kill, over the bound of %s", 'A'+g, uWindow[g].Round(time.Millisecond), run.maxUWindow)
		}
		if run.failAgain {
			againWindow[g] = firstSAfter(g, all, againAgreedAt).Sub(againAgreedAt)
			if againWindow[g] > run.maxUWindow {
				t.Errorf("gateway %c answered the first S of an attempt started after the sentinels agreed on the second failover's primary %s after that, over the bound of %s", 'A'+g, againWindow[g].Round(time.Millisecond), run.maxUWindow)
			}
		}
	}
	f.checkOutputs(t)
	for i, p := range f.procs {
		if strings.Contains(p.Output(), e2eSentinelPassword) {
			t.Errorf("gateway %c's output shows the sentinel password", 'A'+i)
		}
	}
	sort.Slice(lostAt, func(i, j int) bool { return lostAt[i] < lostAt[j] })

	mode := "asynchronous replication"
	if run.waitReplicas != "" {
		mode = run.waitReplicas
	}
	if run.failAgain {
		t.Logf("figures: second failover (SENTINEL FAILOVER %s after the kill, the deposed primary still running): sentinels agreed %s after the command; first S of an attempt started after the sentinels agreed: gateway A %s, B %s",
			againAt.Sub(killStart).Round(time.Millisecond), againAgreed.Round(time.Millisecond), againWindow[0].Round(time.Millisecond), againWindow[1].Round(time.Millisecond))
	}
	t.Logf("figures: config epoch changes (polled every 100 ms, %d reads failed; times from the kill): the kill's failover %s; %d more%s",
		epochReadsFailed, formatEpochChanges([]epochChange{killChange}, killStart), len(extra), formatFlapWindows(windows, killStart))
	t.Logf("figures: Sentinel failover, %s: a primary, %d replica(s), 3 sentinels (down-after-milliseconds 1000, failover-timeout 3000); 2 gateways, %d senders; %d notifications, %d attempts in %s; SIGKILL of the primary after %d answered S",
		mode, run.replicas, 2*perGateway, len(sent), len(all), loadTook.Round(time.Millisecond), len(ackedBeforeKill))
	t.Logf("figures: U window (kill to the first S of a notification sent after it): gateway A %s, B %s (bound %s); sentinels agreed on the new primary %s after the kill; attempts after the kill until each gateway's first S: %s; all attempts after the kill: %s",
		uWindow[0].Round(time.Millisecond), uWindow[1].Round(time.Millisecond), run.maxUWindow, (killDone.Sub(killStart) + agreed).Round(time.Millisecond),
		formatTally(tally(beforeS)), formatTally(tally(afterKill)))
	t.Logf("figures: records lost (answered S, no done record on the new primary): %d of %d acknowledged (%d of them within %s before the kill); acknowledged how long before the kill: %v; in flight at the kill: %d",
		len(lost), len(ackedAt), inHorizon, lossHorizon, lostAt, len(spanKill))
	t.Logf("figures: final resend of all %d: %d rounds over %s (%s); backend deliveries %d for %d requestIds; delivered twice: %d %v (each in flight at the kill, with its completion lost, or first delivered around an extra failover); acknowledged before the kill and kept: %d, each delivered once",
		len(items), rounds, resendTook.Round(time.Millisecond), formatTally(tally(final)), len(ds), len(items), len(twice), twice, len(kept))
}

// TestRedisTLSPrivateCA (issue 19: TLS with a private CA and a client
// certificate, Caddy's own trust unchanged). A redis-server that speaks
// TLS only and requires a client certificate, both issued by a private
// CA made for the test. The gateway (the built binary, with SSL_CERT_FILE
// and SSL_CERT_DIR empty: the system's roots, nothing added) has store
// redis rediss://... { tls { ca <file>; cert <file>; key {file.<path>} } }
// and answers S, then replays the resend. The same
// Caddy proxies a second site to an HTTPS server whose certificate the
// same private CA signed: Caddy refuses it (502, "unknown authority"),
// because the CA is the store's alone; a third site that names the CA in
// reverse_proxy's own tls_trust_pool reaches it (the control: the server
// is fine, only trust differs). Neither the password nor the key appears
// in the output.
func TestRedisTLSPrivateCA(t *testing.T) {
	bin := caddyBin(t)
	srv := redistest.Start(t, redistest.Config{TLS: true, TLSClientAuth: true, Password: e2eRedisPassword, AppendOnly: true})
	files := srv.TLSFiles()
	// The gateway runs on the system's own roots: Go reads no override
	// from an empty SSL_CERT_FILE or SSL_CERT_DIR.
	t.Setenv("SSL_CERT_FILE", "")
	t.Setenv("SSL_CERT_DIR", "")
	keyPEM, err := os.ReadFile(files.Key)
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	https := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, "private backend")
	}))
	https.TLS = srv.CA().ServerTLS(t, "127.0.0.1")
	https.TLS.MinVersion = tls.VersionTLS12
	https.StartTLS()
	defer https.Close()

	t.Setenv("DWS_E2E_REDIS_PASSWORD", e2eRedisPassword)
	be := newBackend(t)
	sb := newSandbox(t)
	g, key := newRelGateway(t, sb, be.Addr)
	g.Store = "store redis rediss://" + srv.Addr() + "/0 {\n\t\t\tpassword {env.DWS_E2E_REDIS_PASSWORD}\n\t\t\tprefix tls:\n\t\t\ttls {\n\t\t\t\tca " + files.CA +
		"\n\t\t\t\tcert " + files.Cert + "\n\t\t\t\tkey {file." + files.Key + "}\n\t\t\t}\n\t\t}"
	probes := freeAddrs(t, 2)
	cfg := g.Caddyfile() + fmt.Sprintf(`
http://%s {
	bind 127.0.0.1
	reverse_proxy %s
}

http://%s {
	bind 127.0.0.1
	reverse_proxy %s {
		transport http {
			tls_trust_pool file %s
		}
	}
}
`, probes[0], https.URL, probes[1], https.URL, files.CA)
	proc := startCaddy(t, bin, sb, cfg, g.AdminAddr, g.URL()+"/")
	lc := newDWS(g.URL(), clientID, key.Private)
	n := addNotif(t, "tls-private-ca")
	for i, want := range []string{"S", "S"} {
		if a := lc.Send(t, n); !a.Answered || a.Result != want {
			t.Fatalf("copy %d over TLS with the private CA: %s, want %s", i, a, want)
		}
	}
	if be.Count() != 1 {
		t.Errorf("backend received %d copies, want 1", be.Count())
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	get := func(addr string) (int, string) {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			t.Fatalf("GET %s: %v", addr, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	status, _ := get(probes[0])
	if status != http.StatusBadGateway || hits.Load() != 0 {
		t.Errorf("Caddy proxying to a server of the store's private CA: HTTP %d, %d requests reached it; want 502 and none", status, hits.Load())
	}
	waitFor(t, 5*time.Second, "Caddy's log of the refused certificate", func() bool { return strings.Contains(proc.Output(), "unknown authority") })
	status, body := get(probes[1])
	if status != http.StatusOK || body != "private backend" || hits.Load() != 1 {
		t.Errorf("with reverse_proxy's own tls_trust_pool: HTTP %d %q, %d requests; want 200 from the backend", status, body, hits.Load())
	}
	out := proc.Output()
	checkNoPanic(t, "gateway", out)
	if strings.Contains(out, e2eRedisPassword) || strings.Contains(out, strings.TrimSpace(string(keyPEM))[40:80]) {
		t.Error("the gateway's output shows the Redis password or the client key")
	}
	t.Logf("figures: TLS with a private CA and a client certificate: the store answered S and replayed the resend; Caddy's reverse_proxy to a server of the same CA: HTTP 502 (unknown authority); with tls_trust_pool naming the CA: HTTP 200")
}
