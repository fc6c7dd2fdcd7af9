package redisstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore/redistest"
	"github.com/dwsnotify/dws_notify/idempotency/storetest"
)

// The gateway's Redis user: docs/redis.md ("ACLs") gives these lists, and
// TestACLDocumented holds the page to them. Redis checks the ACL for every
// command a script calls too (redis.call), so the list is the connection's
// handshake, the store's own commands and every command of every script.
const (
	aclUser = "dws_notify"
	// aclCommands is the minimal list: no store operation, queue
	// operation, start-up check or admin scan needs more.
	aclCommands = "+client|setname +select +ping +script|load +evalsha +eval +time +info +config|get +scan " +
		"+del +exists +get +hdel +hget +hgetall +hincrby +hlen +hmget +hset +incr +lrange +persist +pexpire +pttl +rpush +set +type " +
		"+zadd +zcard +zcount +zrange +zrangebyscore +zrem +zremrangebyscore"
	// aclWaitReplicas is what wait_replicas adds.
	aclWaitReplicas = "+wait"
	// aclWaitAOF is what wait_aof adds.
	aclWaitAOF = "+waitaof"
	// aclCluster is what a cluster adds: go-redis reads the slots with it.
	aclCluster = "+cluster|slots +command"
	// aclClientSetInfo is what Redis 7.2 and later add (go-redis names
	// itself with CLIENT SETINFO and ignores a refusal, which the server
	// still logs); Redis 7.0 refuses the rule.
	aclClientSetInfo = "+client|setinfo"
)

// aclRules returns the ACL SETUSER rules of the gateway's user: password,
// keys under keyPrefix only, no channel, exactly aclCommands and extra.
func aclRules(password, keyPrefix string, extra ...string) []string {
	rules := []string{"on", ">" + password, "resetkeys", "~" + keyPrefix + "*", "resetchannels", "-@all"}
	for _, cmds := range append([]string{aclCommands}, extra...) {
		rules = append(rules, strings.Fields(cmds)...)
	}
	return rules
}

// setACLUser creates the gateway's user on srv (through c, a connection
// as the default user), with aclClientSetInfo where srv knows it, and
// clears the server's ACL log.
func setACLUser(t *testing.T, srv *redistest.Server, c *redis.Client, password, keyPrefix string, extra ...string) {
	t.Helper()
	ctx := t.Context()
	if srv.AtLeast(7, 2) {
		extra = append(extra, aclClientSetInfo)
	}
	if err := c.ACLSetUser(ctx, aclUser, aclRules(password, keyPrefix, extra...)...).Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	if err := c.ACLLogReset(ctx).Err(); err != nil {
		t.Fatalf("ACL LOG RESET: %v", err)
	}
}

// noDenials fails the test when the server's ACL log holds a denial: also
// those of commands whose errors the store or go-redis ignore (CLIENT
// SETINFO, TIME, INFO, CONFIG GET).
func noDenials(t *testing.T, c *redis.Client) {
	t.Helper()
	// A fresh context: the test's own may be canceled by the time a
	// cleanup runs.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	log, err := c.ACLLog(ctx, 100).Result()
	if err != nil {
		t.Fatalf("ACL LOG: %v", err)
	}
	for _, e := range log {
		t.Errorf("ACL denial: user %s, %s %q (context %s), %d times", e.Username, e.Reason, e.Object, e.Context, e.Count)
	}
}

// aclStores counts the prefixes TestMinimalACL hands out.
var aclStores atomic.Uint64

// TestMinimalACL runs the store as a user with exactly the documented
// commands (aclRules) and keys under its prefix only: the store and queue
// conformance suites, the durability probe, Scan and Get of a completed
// record, with the start-up check of every Open; afterwards the server's
// ACL log must hold no denial, not even of a command whose error the store
// ignores. A single server (database 1, so the handshake selects it), and
// through Sentinel with WaitReplicas (aclWaitReplicas), a three-primary
// cluster (aclCluster; no queue there); WaitAOF
// (aclWaitAOF) where the server has WAITAOF (Redis 7.2+).
func TestMinimalACL(t *testing.T) {
	const password = "acl-minimal-secret"
	const keyPrefix = "acl:"
	prefix := func() string { return fmt.Sprintf("%s%d:", keyPrefix, aclStores.Add(1)) }

	t.Run("Single", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Start(t, redistest.Config{AppendOnly: true})
		setACLUser(t, srv, srv.Client(0), password, keyPrefix)
		t.Cleanup(func() { noDenials(t, srv.Client(0)) })
		opts := redisstore.Options{URL: srv.URL(1), Username: aclUser, Password: password}
		runAsACLUser(t, func(t testing.TB, o redisstore.Options) *redisstore.Store {
			o.URL, o.Username, o.Password = opts.URL, opts.Username, opts.Password
			if o.Prefix == "" {
				o.Prefix = prefix()
			}
			return open(t, srv, o)
		}, redisstore.Options{})
	})
	t.Run("WaitReplicas", func(t *testing.T) {
		t.Parallel()
		const dataSecret = "acl-data-secret"
		d := redistest.StartSentinel(t, redistest.SentinelConfig{Data: redistest.Config{Password: dataSecret, AppendOnly: true}, Password: sentinelSecret})
		primary := d.Primary().Client(0)
		setACLUser(t, d.Primary(), primary, password, keyPrefix, aclWaitReplicas)
		t.Cleanup(func() { noDenials(t, primary) })
		runAsACLUser(t, func(t testing.TB, o redisstore.Options) *redisstore.Store {
			o.Username = aclUser
			if o.Prefix == "" {
				o.Prefix = prefix()
			}
			return openSentinel(t, d, password, o)
		}, redisstore.Options{WaitReplicas: 1, WaitReplicasTimeout: 2 * time.Second})
	})
	t.Run("Cluster", func(t *testing.T) {
		t.Parallel()
		cluster := redistest.StartCluster(t, 3)
		for _, n := range cluster.Nodes {
			setACLUser(t, n, n.Client(0), password, keyPrefix, aclCluster)
			t.Cleanup(func() { noDenials(t, n.Client(0)) })
		}
		runAsACLUser(t, func(t testing.TB, o redisstore.Options) *redisstore.Store {
			o.Username, o.Password = aclUser, password
			if o.Prefix == "" {
				o.Prefix = prefix()
			}
			s, err := redisstore.Open(t.Context(), o)
			if err != nil {
				t.Fatalf("Open on the cluster: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}, redisstore.Options{Cluster: &redisstore.ClusterOptions{Addrs: cluster.Addrs()}})
	})
	t.Run("WaitAOF", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Start(t, redistest.Config{AppendOnly: true})
		if !srv.AtLeast(7, 2) {
			t.Skipf("Redis %s has no WAITAOF (7.2+): the list with +waitaof is checked on such a server (DWS_REDIS_SERVER)", srv.Version())
		}
		setACLUser(t, srv, srv.Client(0), password, keyPrefix, aclWaitAOF)
		t.Cleanup(func() { noDenials(t, srv.Client(0)) })
		runAsACLUser(t, func(t testing.TB, o redisstore.Options) *redisstore.Store {
			o.URL, o.Username, o.Password = srv.URL(0), aclUser, password
			if o.Prefix == "" {
				o.Prefix = prefix()
			}
			return open(t, srv, o)
		}, redisstore.Options{WaitAOF: true})
	})
}

// runAsACLUser runs everything the gateway does with a store through
// openAs, which opens a store as the ACL user (with opts, and a fresh
// prefix unless opts has one). The queue suite runs where the store
// supports the queue (not on a cluster).
func runAsACLUser(t *testing.T, openAs func(t testing.TB, opts redisstore.Options) *redisstore.Store, opts redisstore.Options) {
	t.Run("Store", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) idempotency.Store { return openAs(t, opts) })
	})
	if opts.Cluster == nil { // a cluster has no queue (ErrQueueUnsupported)
		t.Run("Queue", func(t *testing.T) {
			storetest.RunQueue(t,
				func(t *testing.T) storetest.QueueStore { return openAs(t, opts) },
				func(t *testing.T, s storetest.QueueStore) storetest.QueueStore {
					o := opts
					o.Prefix = s.(*redisstore.Store).Prefix()
					return openAs(t, o)
				})
		})
	}
	t.Run("ProbeCompleteInspect", func(t *testing.T) {
		ctx := t.Context()
		s := openAs(t, opts)
		if err := s.ProbeDurability(ctx); err != nil {
			t.Fatalf("ProbeDurability: %v", err)
		}
		k := storetest.K("acl-inspect")
		c, err := s.Claim(ctx, k, storetest.FP(1), time.Minute, time.Hour)
		if err != nil || c.Status != idempotency.Claimed {
			t.Fatalf("Claim: %v, %v", c.Status, err)
		}
		if err := s.Complete(ctx, k, c.Token, idempotency.Answer{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeAccepted, BackendStatus: 200}, time.Hour); err != nil {
			t.Fatalf("Complete: %v", err)
		}
		if err := s.ConfirmDone(ctx, k); err != nil {
			t.Fatalf("ConfirmDone: %v", err)
		}
		if rec, ok, err := s.Get(ctx, k); err != nil || !ok || rec.State != idempotency.StateDone {
			t.Fatalf("Get: %+v, %v, %v; want the done record", rec, ok, err)
		}
		n := 0
		if err := s.Scan(ctx, func(idempotency.Record) bool { n++; return true }); err != nil || n != 1 {
			t.Fatalf("Scan: %d records, %v; want 1", n, err)
		}
	})
}

// TestACLDocumented: docs/redis.md gives the ACL SETUSER line of the
// default prefix with exactly aclCommands, and names the commands the
// waits add and the test that runs the list.
func TestACLDocumented(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "redis.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	_, section, ok := strings.Cut(doc, "\n## ACLs\n")
	if !ok {
		t.Fatal(`docs/redis.md has no "## ACLs" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	want := append([]string{"ACL", "SETUSER", aclUser}, aclRules("PASSWORD", redisstore.DefaultPrefix)...)
	var found []string
	for line := range strings.Lines(section) {
		if f := strings.Fields(line); len(f) > 3 && f[0] == "ACL" && f[1] == "SETUSER" && f[3] == "on" {
			found = append(found, line)
			if !slices.Equal(f, want) {
				t.Errorf("docs/redis.md's ACL line:\n%s\nwant:\n%s", strings.TrimSpace(line), strings.Join(want, " "))
			}
		}
	}
	if len(found) != 1 {
		t.Errorf("docs/redis.md's ACLs section has %d ACL SETUSER lines creating the user, want 1:\n%s", len(found), strings.Join(want, " "))
	}
	for _, s := range []string{"`" + aclWaitReplicas + "`", "`" + aclWaitAOF + "`", "`" + aclCluster + "`", "`" + aclClientSetInfo + "`", "TestMinimalACL"} {
		if !strings.Contains(section, s) {
			t.Errorf("docs/redis.md's ACLs section does not mention %s", s)
		}
	}
}
