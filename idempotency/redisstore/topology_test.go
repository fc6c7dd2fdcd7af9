package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore/redistest"
	"github.com/dwsnotify/dws_notify/idempotency/storetest"
)

// Sentinel, Cluster and TLS with a private CA and client certificates,
// each with real processes (redis-server, redis-sentinel) on loopback.

const sentinelSecret = "sentinel-secret-41d"

// openSentinel opens a store on d's primary through the sentinels, as the
// store builds its own client from Options.Sentinel.
func openSentinel(t testing.TB, d *redistest.Sentinel, dataPassword string, opts redisstore.Options) *redisstore.Store {
	t.Helper()
	opts.Sentinel = &redisstore.SentinelOptions{MasterName: d.MasterName, Addrs: d.Addrs(), Password: sentinelSecret}
	opts.Password = dataPassword
	if opts.Prefix == "" {
		opts.Prefix = uniquePrefix(t)
	}
	s, err := redisstore.Open(t.Context(), opts)
	if err != nil {
		t.Fatalf("Open through the sentinels: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// replicated waits until every replica of primary has everything the
// primary has written (their offsets equal its own).
func replicated(t *testing.T, primary *redistest.Server) {
	t.Helper()
	c := primary.Client(0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := c.Info(t.Context(), "replication").Result()
		if err != nil {
			t.Fatal(err)
		}
		own, replicas, behind := "", 0, 0
		for line := range strings.Lines(info) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "master_repl_offset:"); ok {
				own = v
			}
		}
		for line := range strings.Lines(info) {
			if strings.HasPrefix(line, "slave") && strings.Contains(line, "offset=") {
				replicas++
				if !strings.Contains(line, "offset="+own+",") {
					behind++
				}
			}
		}
		if replicas > 0 && behind == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas not in sync after 10s:\n%s", info)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSentinel runs the store through Redis Sentinel (a primary, one
// replica, three sentinels; the store builds its own failover client from
// Options.Sentinel, with passwords for the data nodes and the sentinels):
//
//   - the conformance suite;
//   - an unknown master name and wrong passwords are refusals
//     (ErrServerRefused, a provisioning error); no sentinel reachable is an
//     outage that may pass;
//   - WaitReplicas: a completion returns once the replica acknowledged it;
//     asking for more replicas than there are fails the completion with
//     ErrUnconfirmed after the timeout (and Open warns);
//   - asynchronous replication loses an acknowledged completion in a
//     failover, and WaitReplicas turns that loss into an error (U) instead:
//     the replica is stopped (SIGSTOP) and its link cut (CLIENT KILL TYPE
//     replica), one store completes a claim without waiting (success), one
//     with WaitReplicas 1 (ErrUnconfirmed), the primary is killed
//     (SIGKILL), the replica resumed and promoted by the sentinels. A
//     resend of the second before the kill is not replayed either
//     (ErrUnconfirmed: its done record is on the primary only). The new
//     primary holds both records still in flight: the first completion
//     was acknowledged and is lost, the second was never acknowledged;
//   - the same store objects serve again after the failover without being
//     reopened (the client asks the sentinels for the new primary).
func TestSentinel(t *testing.T) {
	const dataSecret = "data-secret-7e2"
	d := redistest.StartSentinel(t, redistest.SentinelConfig{Data: redistest.Config{Password: dataSecret, AppendOnly: true}, Password: sentinelSecret})
	ctx := t.Context()

	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) idempotency.Store { return openSentinel(t, d, dataSecret, redisstore.Options{}) })
	})

	t.Run("Refusals", func(t *testing.T) {
		open := func(master, sentinelPassword, password string, addrs ...string) error {
			_, err := redisstore.Open(ctx, redisstore.Options{Password: password, DialTimeout: time.Second,
				Sentinel: &redisstore.SentinelOptions{MasterName: master, Addrs: addrs, Password: sentinelPassword}})
			if err != nil && (strings.Contains(err.Error(), dataSecret) || strings.Contains(err.Error(), sentinelSecret)) {
				t.Errorf("error shows a password: %v", err)
			}
			return err
		}
		if err := open("elsewhere", sentinelSecret, dataSecret, d.Addrs()...); !errors.Is(err, redisstore.ErrServerRefused) || !strings.Contains(err.Error(), `monitor no primary named "elsewhere"`) {
			t.Errorf("unknown master name: %v, want ErrServerRefused naming it", err)
		}
		if err := open(d.MasterName, "not-"+sentinelSecret, dataSecret, d.Addrs()...); !errors.Is(err, redisstore.ErrServerRefused) || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Errorf("wrong sentinel password: %v, want ErrServerRefused (WRONGPASS)", err)
		}
		if err := open(d.MasterName, sentinelSecret, "not-"+dataSecret, d.Addrs()...); !errors.Is(err, redisstore.ErrServerRefused) || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Errorf("wrong data password: %v, want ErrServerRefused (WRONGPASS)", err)
		}
		// No sentinel answers: an outage that may pass, not a refusal.
		if err := open(d.MasterName, sentinelSecret, dataSecret, "127.0.0.1:1"); err == nil || errors.Is(err, redisstore.ErrServerRefused) || errors.Is(err, idempotency.ErrInvalidArgument) {
			t.Errorf("no sentinel reachable: %v, want an error that may pass", err)
		}
	})

	core, logs := observer.New(zapcore.WarnLevel)
	async := openSentinel(t, d, dataSecret, redisstore.Options{Prefix: "sentinel:"})
	waiting := openSentinel(t, d, dataSecret, redisstore.Options{Prefix: "sentinel:", WaitReplicas: 1, WaitReplicasTimeout: 300 * time.Millisecond})
	tooMany := openSentinel(t, d, dataSecret, redisstore.Options{Prefix: "sentinel:", WaitReplicas: 2, WaitReplicasTimeout: 200 * time.Millisecond, Logger: zap.New(core)})
	if !strings.HasPrefix(async.Addr(), "sentinel dws via ") || strings.Contains(async.Addr(), dataSecret) || strings.Contains(async.Addr(), sentinelSecret) {
		t.Errorf("Addr() = %q", async.Addr())
	}

	claim := func(s *redisstore.Store, id string) (idempotency.Key, uint64) {
		t.Helper()
		k := storetest.K(id)
		c, err := s.Claim(ctx, k, storetest.FP(1), time.Minute, time.Hour)
		if err != nil || c.Status != idempotency.Claimed {
			t.Fatalf("Claim(%s) = %v, %v", id, c.Status, err)
		}
		return k, c.Token
	}
	state := func(s *redisstore.Store, k idempotency.Key) string {
		t.Helper()
		rec, found, err := s.Get(ctx, k)
		switch {
		case err != nil:
			t.Fatalf("Get(%s): %v", k.RequestID, err)
		case !found:
			return "absent"
		case rec.State == idempotency.StateDone:
			return "done"
		}
		return "in flight"
	}

	t.Run("WaitReplicas", func(t *testing.T) {
		k, tok := claim(waiting, "wait-1")
		if err := waiting.Complete(ctx, k, tok, accepted, time.Hour); err != nil {
			t.Fatalf("Complete waiting for 1 of 1 replica: %v", err)
		}
		if d.Data[1].Client(0).Exists(ctx, "sentinel:r:2188120000000000:addPaymentMethod:wait-1").Val() != 1 {
			t.Error("the replica does not hold the completed record when Complete returned")
		}
		k, tok = claim(tooMany, "wait-2")
		began := time.Now()
		err := tooMany.Complete(ctx, k, tok, accepted, time.Hour)
		if !errors.Is(err, redisstore.ErrUnconfirmed) || !strings.Contains(err.Error(), "1 of 2 replicas") {
			t.Errorf("Complete waiting for 2 replicas where there is 1 = %v, want ErrUnconfirmed", err)
		}
		if took := time.Since(began); took < 200*time.Millisecond {
			t.Errorf("the unconfirmed wait returned after %v, before its 200ms timeout", took)
		}
		if state(async, k) != "done" {
			t.Error("the unconfirmed completion was not applied on the primary")
		}
		if logs.FilterMessageSnippet("fewer replicas online than WaitReplicas").Len() != 1 {
			t.Errorf("Open with WaitReplicas 2 and one replica did not warn: %v", logs.All())
		}
	})

	t.Run("FailoverLosesWhatReplicationDidNotCarry", func(t *testing.T) {
		primary, replica := d.Primary(), d.Data[1]
		kept, keptTok := claim(async, "kept")
		if err := async.Complete(ctx, kept, keptTok, accepted, time.Hour); err != nil {
			t.Fatal(err)
		}
		lost, lostTok := claim(async, "acknowledged-then-lost")
		held, heldTok := claim(waiting, "never-acknowledged")
		replicated(t, primary)

		// From here the replica receives nothing.
		replica.Pause()
		if err := primary.Client(0).Do(ctx, "CLIENT", "KILL", "TYPE", "replica").Err(); err != nil {
			replica.Resume()
			t.Fatal(err)
		}
		errAsync := async.Complete(ctx, lost, lostTok, accepted, time.Hour)
		errWait := waiting.Complete(ctx, held, heldTok, accepted, time.Hour)
		// The provider's resend of the unconfirmed one, before the
		// failover: the record is done on the primary, but no replica has
		// it, so it is not replayed (an S the failover below would undo).
		resend, errResend := waiting.Claim(ctx, held, storetest.FP(1), time.Minute, time.Hour)
		primary.Kill()
		replica.Resume()
		if errAsync != nil {
			t.Fatalf("Complete without waiting, before the failover: %v", errAsync)
		}
		if !errors.Is(errWait, redisstore.ErrUnconfirmed) {
			t.Fatalf("Complete with WaitReplicas 1 while the replica was cut off = %v, want ErrUnconfirmed (the caller answers U)", errWait)
		}
		if !errors.Is(errResend, redisstore.ErrUnconfirmed) {
			t.Errorf("the resend's Claim with WaitReplicas 1 while the replica was cut off = %v, %v; want ErrUnconfirmed (a replay would answer S for a record the failover loses)", resend.Status, errResend)
		}

		newPrimary, took := d.WaitFailover(primary, time.Minute)
		if newPrimary != replica {
			t.Fatalf("promoted %s, want the replica %s", newPrimary.Addr(), replica.Addr())
		}
		// The same store objects, not reopened: the client follows the
		// sentinels to the new primary.
		var firstOK time.Duration
		began := time.Now()
		for {
			if _, _, err := async.Get(ctx, kept); err == nil {
				firstOK = time.Since(began)
				break
			}
			if time.Since(began) > 30*time.Second {
				t.Fatal("the store does not reach the new primary 30s after the failover")
			}
			time.Sleep(20 * time.Millisecond)
		}
		got := map[string]string{"kept": state(async, kept), "acknowledged-then-lost": state(async, lost), "never-acknowledged": state(waiting, held)}
		want := map[string]string{"kept": "done", "acknowledged-then-lost": "in flight", "never-acknowledged": "in flight"}
		for id := range want {
			if got[id] != want[id] {
				t.Errorf("after the failover %s is %s, want %s", id, got[id], want[id])
			}
		}
		// New claims work; with no replica left, WaitReplicas 1 cannot be
		// confirmed: every completion fails until a replica is back.
		k, tok := claim(async, "after-failover")
		if err := async.Complete(ctx, k, tok, accepted, time.Hour); err != nil {
			t.Errorf("Complete on the new primary: %v", err)
		}
		k, tok = claim(waiting, "after-failover-waiting")
		if err := waiting.Complete(ctx, k, tok, accepted, time.Hour); !errors.Is(err, redisstore.ErrUnconfirmed) {
			t.Errorf("Complete with WaitReplicas 1 on a primary without replicas = %v, want ErrUnconfirmed", err)
		}
		t.Logf("failover: sentinels agreed on the new primary %v after the kill; the store served again %v later; acknowledged completion lost: %s, completion refused by WaitReplicas: %s",
			took.Round(time.Millisecond), firstOK.Round(time.Millisecond), got["acknowledged-then-lost"], got["never-acknowledged"])
	})
}

// TestSentinelOptionErrors: Check and Open refuse bad Sentinel and
// Cluster options before connecting, with ErrInvalidArgument, and never
// show a password.
func TestSentinelOptionErrors(t *testing.T) {
	const pw = "option-secret-88"
	unused := redis.NewClient(&redis.Options{})
	defer unused.Close()
	sentinel := func(name string, addrs ...string) *redisstore.SentinelOptions {
		return &redisstore.SentinelOptions{MasterName: name, Addrs: addrs, Password: pw}
	}
	cases := []struct {
		name string
		opts redisstore.Options
		want string
	}{
		{"nothing", redisstore.Options{}, "one of URL, Sentinel, Cluster and Client is required"},
		{"URL and Sentinel", redisstore.Options{URL: "redis://r", Sentinel: sentinel("m", "s:26379")}, "URL and Sentinel are exclusive"},
		{"Sentinel and Cluster", redisstore.Options{Sentinel: sentinel("m", "s:26379"), Cluster: &redisstore.ClusterOptions{Addrs: []string{"c:6379"}}}, "Sentinel and Cluster are exclusive"},
		{"no master name", redisstore.Options{Sentinel: sentinel("", "s:26379")}, "MasterName is required"},
		{"no sentinels", redisstore.Options{Sentinel: sentinel("m")}, "sentinel: at least one address"},
		{"sentinel without port", redisstore.Options{Sentinel: sentinel("m", "s")}, `sentinel address "s": want host:port`},
		{"sentinel bad port", redisstore.Options{Sentinel: sentinel("m", "s:x")}, `sentinel address "s:x": the port is not a number`},
		{"sentinel twice", redisstore.Options{Sentinel: sentinel("m", "s:1", "s:1")}, `sentinel address "s:1" is listed twice`},
		{"no cluster nodes", redisstore.Options{Cluster: &redisstore.ClusterOptions{}}, "cluster: at least one address"},
		{"cluster no host", redisstore.Options{Cluster: &redisstore.ClusterOptions{Addrs: []string{":6379"}}}, "no host"},
		{"DB with URL", redisstore.Options{URL: "redis://r", DB: 2}, "DB applies to Sentinel only"},
		{"DB with Cluster", redisstore.Options{Cluster: &redisstore.ClusterOptions{Addrs: []string{"c:1"}}, DB: 2}, "DB applies to Sentinel only"},
		{"wait with Cluster", redisstore.Options{Cluster: &redisstore.ClusterOptions{Addrs: []string{"c:1"}}, WaitReplicas: 1}, "not a Cluster"},
		{"wait timeout alone", redisstore.Options{URL: "redis://r", WaitReplicasTimeout: time.Second}, "WaitReplicasTimeout without WaitReplicas"},
		{"wait as long as a call", redisstore.Options{URL: "redis://r", WaitReplicas: 1, WaitReplicasTimeout: 3 * time.Second}, "must be shorter than OperationTimeout"},
		{"password with Client", redisstore.Options{Client: unused, Password: pw}, "set the connection options on the client"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := redisstore.Check(tc.opts)
			if err == nil || !errors.Is(err, idempotency.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check = %v, want ErrInvalidArgument containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), pw) {
				t.Errorf("error shows the password: %v", err)
			}
			if _, oerr := redisstore.Open(t.Context(), tc.opts); oerr == nil || oerr.Error() != err.Error() {
				t.Errorf("Open = %v, want Check's error", oerr)
			}
		})
	}
	addr, err := redisstore.Check(redisstore.Options{Sentinel: sentinel("mymaster", "10.0.0.1:26379", "10.0.0.2:26379"), Password: pw, DB: 3})
	if err != nil || addr != "sentinel mymaster via 10.0.0.1:26379,10.0.0.2:26379 db 3" {
		t.Errorf("Check(Sentinel) = %q, %v", addr, err)
	}
	addr, err = redisstore.Check(redisstore.Options{Cluster: &redisstore.ClusterOptions{Addrs: []string{"10.0.0.1:6379", "10.0.0.2:6379"}}, TLSConfig: redistest.NewCA(t).ServerTLS(t, "x")})
	if err != nil || addr != "cluster 10.0.0.1:6379,10.0.0.2:6379 tls" {
		t.Errorf("Check(Cluster) = %q, %v", addr, err)
	}
}

// scriptKeys is a go-redis hook that records, for every script run
// (EVALSHA or EVAL, alone or in a pipeline), how many keys it declared.
type scriptKeys struct {
	mu     sync.Mutex
	counts map[int64]int // number of keys -> scripts run with that many
}

func (h *scriptKeys) note(cmd redis.Cmder) {
	args := cmd.Args()
	name := strings.ToLower(fmt.Sprint(args[0]))
	if (name != "evalsha" && name != "eval") || len(args) < 3 {
		return
	}
	n, err := strconv.ParseInt(fmt.Sprint(args[2]), 10, 64)
	if err != nil {
		n = -1
	}
	h.mu.Lock()
	h.counts[n]++
	h.mu.Unlock()
}

func (h *scriptKeys) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *scriptKeys) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.note(cmd); return next(ctx, cmd) }
}
func (h *scriptKeys) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			h.note(c)
		}
		return next(ctx, cmds)
	}
}

// TestClusterOneKeyPerNotification shows why claims and completions stay
// atomic on Redis Cluster without a hash tag: every script the store runs
// declares exactly one key (a hook on the cluster client counts the keys
// of every EVALSHA and EVAL, pipelined or not, through the conformance
// suite and a claim-complete-replay run), and one key is one hash slot, so
// each script runs whole on the node that owns the notification's slot.
// The control: the same cluster refuses a script over two keys in
// different slots (CROSSSLOT), which is what a second key per
// notification without a hash tag would meet. The records of many
// notifications spread over all three primaries, and Scan finds them on
// every one. A prefix carrying a hash tag ({fleet}) puts every record of
// the store into one slot, which works (and is how several keys would be
// kept together) but stops the spreading.
func TestClusterOneKeyPerNotification(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	client := cluster.Client(t)
	hook := &scriptKeys{counts: map[int64]int{}}
	client.AddHook(hook)
	ctx := t.Context()

	storetest.Run(t, func(t *testing.T) idempotency.Store { return open(t, nil, redisstore.Options{Client: client}) })
	s := open(t, nil, redisstore.Options{Client: client})
	const n = 300
	for i := range n {
		k := storetest.K(fmt.Sprintf("spread-%04d", i))
		c, err := s.Claim(ctx, k, storetest.FP(1), time.Minute, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Complete(ctx, k, c.Token, accepted, time.Hour); err != nil {
			t.Fatal(err)
		}
		if r, err := s.Claim(ctx, k, storetest.FP(1), time.Minute, time.Hour); err != nil || r.Status != idempotency.Done {
			t.Fatalf("replay: %v, %v", r.Status, err)
		}
	}
	hook.mu.Lock()
	counts := fmt.Sprint(hook.counts)
	one, total := hook.counts[1], 0
	for _, c := range hook.counts {
		total += c
	}
	hook.mu.Unlock()
	if total == 0 || one != total {
		t.Errorf("scripts by number of keys: %s; want every one with exactly 1 key", counts)
	}

	// Each primary holds some of the store's records, and Scan sees all.
	perNode := make([]int, len(cluster.Nodes))
	for i, node := range cluster.Nodes {
		keys, err := node.Client(0).Keys(ctx, s.Prefix()+"r:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		perNode[i] = len(keys)
		if len(keys) == 0 {
			t.Errorf("primary %d holds none of the %d records", i, n)
		}
	}
	scanned := 0
	if err := s.Scan(ctx, func(idempotency.Record) bool { scanned++; return true }); err != nil || scanned != n {
		t.Errorf("Scan over the cluster found %d records (%v), want %d", scanned, err, n)
	}

	// The control: two keys in different slots in one script.
	a, b := "{a}x", "{b}x"
	if client.ClusterKeySlot(ctx, a).Val() == client.ClusterKeySlot(ctx, b).Val() {
		t.Fatal("the control keys share a slot")
	}
	node, err := client.MasterForKey(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	err = node.Eval(ctx, "return redis.call('EXISTS', KEYS[1]) + redis.call('EXISTS', KEYS[2])", []string{a, b}).Err()
	if err == nil || !strings.HasPrefix(err.Error(), "CROSSSLOT") {
		t.Errorf("a script over keys in two slots = %v, want CROSSSLOT", err)
	}

	// A prefix with a hash tag is refused (it would override the queue's
	// shard tags): TestOpenErrors.
	if _, err := redisstore.Open(ctx, redisstore.Options{Client: client, Prefix: "{fleet-a}:dws:"}); !errors.Is(err, idempotency.ErrInvalidArgument) {
		t.Errorf("Open with a hash-tag prefix = %v, want ErrInvalidArgument", err)
	}
	t.Logf("cluster of 3 primaries: %d scripts, each with one key (%s); %d records per primary %v, Scan found %d; two slots in one script: CROSSSLOT",
		total, counts, n, perNode, scanned)
}

// TestClusterOwnClient: the store builds its own cluster client from
// Options.Cluster (seed addresses, the data password), with the store's
// timeouts, and closes it on Close.
func TestClusterOwnClient(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	seeds := cluster.Addrs()[:1]
	s, err := redisstore.Open(t.Context(), redisstore.Options{Cluster: &redisstore.ClusterOptions{Addrs: seeds}, Prefix: uniquePrefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Addr() != "cluster "+seeds[0] {
		t.Errorf("Addr() = %q", s.Addr())
	}
	ctx := t.Context()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range 64 {
		wg.Go(func() {
			k := storetest.K(fmt.Sprintf("own-%d", i))
			c, err := s.Claim(ctx, k, storetest.FP(1), time.Minute, time.Hour)
			if err == nil {
				err = s.Complete(ctx, k, c.Token, accepted, time.Hour)
			}
			if err != nil {
				failed.Add(1)
				t.Error(err)
			}
		})
	}
	wg.Wait()
	n := 0
	if err := s.Scan(ctx, func(idempotency.Record) bool { n++; return true }); err != nil || n != 64 {
		t.Errorf("Scan found %d records (%v) from one seed address, want 64", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestTLSPrivateCAAndClientCertificate: a Redis that speaks TLS only and
// requires a client certificate, both signed by a private CA. The store
// reaches it with Options.TLSConfig (the CA as its own roots, the client
// certificate); without the client certificate the server refuses the
// handshake; without the CA the server's certificate does not verify. A
// server whose certificate names only a DNS name is reached by IP with
// the server name given, and not without it.
func TestTLSPrivateCAAndClientCertificate(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{TLS: true, TLSClientAuth: true, Password: "tls-client-secret"})
	ctx := t.Context()
	storetest.Run(t, func(t *testing.T) idempotency.Store {
		return open(t, srv, redisstore.Options{TLSConfig: srv.TLSConfig()})
	})
	noCert := srv.TLSConfig()
	noCert.Certificates = nil
	if _, err := redisstore.Open(ctx, redisstore.Options{URL: srv.URL(0), TLSConfig: noCert, DialTimeout: time.Second}); err == nil {
		t.Error("Open without the client certificate succeeded on a server that requires one")
	}
	noCA := srv.TLSConfig()
	noCA.RootCAs = nil
	if _, err := redisstore.Open(ctx, redisstore.Options{URL: srv.URL(0), TLSConfig: noCA}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Open without the private CA = %v, want a certificate error", err)
	}

	named := redistest.Start(t, redistest.Config{TLS: true, TLSServerName: "redis.dws.test", CA: srv.CA()})
	tc := named.TLSConfig()
	tc.ServerName = ""
	if _, err := redisstore.Open(ctx, redisstore.Options{URL: named.URL(0), TLSConfig: tc}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Open by IP of a server whose certificate names redis.dws.test = %v, want a certificate error", err)
	}
	tc.ServerName = "redis.dws.test"
	open(t, named, redisstore.Options{TLSConfig: tc})
}

// TestUsernameAndPassword: Options.Username and Password log the store in
// as an ACL user, replacing the URL's user information (so a password
// needs no percent-encoding); a wrong password is a refusal.
func TestUsernameAndPassword(t *testing.T) {
	const pw = "acl/secret@with:reserved%chars"
	srv := redistest.Start(t, redistest.Config{Args: []string{"--user", "dws", "on", ">" + pw, "~*", "&*", "+@all"}})
	plain := "redis://ignored:ignored@" + srv.Addr() + "/0"
	s := open(t, srv, redisstore.Options{URL: plain, Username: "dws", Password: pw})
	k := storetest.K("acl")
	if c, err := s.Claim(t.Context(), k, storetest.FP(1), time.Minute, time.Hour); err != nil || c.Status != idempotency.Claimed {
		t.Fatalf("Claim as the ACL user: %v, %v", c.Status, err)
	}
	list, err := srv.Client(0).ClientList(t.Context()).Result()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(list, " name="+redisstore.DefaultClientName+" ") || !strings.Contains(list, " user=dws ") {
		t.Errorf("no connection of the store logged in as dws:\n%s", list)
	}
	_, err = redisstore.Open(t.Context(), redisstore.Options{URL: plain, Username: "dws", Password: "not-" + pw})
	if !errors.Is(err, redisstore.ErrServerRefused) || strings.Contains(err.Error(), pw) {
		t.Errorf("wrong ACL password: %v, want ErrServerRefused without the password", err)
	}
}
