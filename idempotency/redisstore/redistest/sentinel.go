package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelBinaryEnv names the sentinel binary to run instead of
// redis-sentinel (e.g. valkey-sentinel, with DWS_REDIS_SERVER naming
// valkey-server).
const SentinelBinaryEnv = "DWS_REDIS_SENTINEL"

// DefaultMasterName is the name the sentinels of StartSentinel monitor the
// primary under.
const DefaultMasterName = "dws"

// SentinelConfig describes a Sentinel deployment: one primary, its
// replicas and the sentinels watching them, every process on loopback.
type SentinelConfig struct {
	// Data configures the primary and the replicas alike (AppendOnly,
	// Password, Args, ...). TLS is not supported.
	Data Config
	// Replicas is the number of replicas; zero means 1.
	Replicas int
	// Sentinels is the number of sentinels; zero means 3. The quorum is a
	// majority of them.
	Sentinels int
	// Password is the sentinels' own password (requirepass of the
	// sentinels, also used between them); empty: none.
	Password string
	// DownAfter is down-after-milliseconds: how long the primary must stop
	// answering before a sentinel considers it down; zero means 1s (the
	// Redis default is 30s).
	DownAfter time.Duration
	// FailoverTimeout is failover-timeout; zero means 10s (Redis: 3 min).
	// A failover attempt that failed (a split vote) is retried after twice
	// this.
	FailoverTimeout time.Duration
}

// Sentinel is a running Sentinel deployment.
type Sentinel struct {
	t   testing.TB
	cfg SentinelConfig
	// MasterName is the name the sentinels know the primary by.
	MasterName string
	// Data holds the data nodes: Data[0] is the first primary, the others
	// its replicas. A failover changes which one is primary: see Primary.
	Data []*Server
	// Sentinels are the sentinel processes.
	Sentinels []*Server

	mu      sync.Mutex
	clients map[*Server]*redis.SentinelClient
}

// SentinelBinary returns the sentinel binary to run, or skips t (fails it
// with DWS_REQUIRE_REDIS=1) when there is none.
func SentinelBinary(t testing.TB) string {
	t.Helper()
	name := os.Getenv(SentinelBinaryEnv)
	if name == "" {
		name = "redis-sentinel"
	}
	return lookBinary(t, name, "redis-sentinel")
}

// StartSentinel starts a primary, its replicas and the sentinels, and
// waits until the replicas are in sync and every sentinel knows the
// primary, every replica and every other sentinel. Everything is killed
// when t's test ends.
func StartSentinel(t testing.TB, cfg SentinelConfig) *Sentinel {
	t.Helper()
	if cfg.Data.TLS {
		t.Fatal("redistest: StartSentinel does not support TLS")
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.Sentinels == 0 {
		cfg.Sentinels = 3
	}
	if cfg.DownAfter == 0 {
		cfg.DownAfter = time.Second
	}
	if cfg.FailoverTimeout == 0 {
		cfg.FailoverTimeout = 10 * time.Second
	}
	sentinelBin := SentinelBinary(t)
	d := &Sentinel{t: t, cfg: cfg, MasterName: DefaultMasterName}
	// A replica's first full sync starts at once instead of after the
	// default 5s wait for more replicas (any node may become primary).
	cfg.Data.Args = append(append([]string(nil), cfg.Data.Args...), "--repl-diskless-sync-delay", "0")
	primary := Start(t, cfg.Data)
	d.Data = append(d.Data, primary)
	for range cfg.Replicas {
		rc := cfg.Data
		rc.Args = append(append([]string(nil), rc.Args...), "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port()))
		if rc.Password != "" {
			rc.Args = append(rc.Args, "--masterauth", rc.Password)
		}
		d.Data = append(d.Data, Start(t, rc))
	}
	d.WaitReplicas(primary, cfg.Replicas, startTimeout)

	quorum := cfg.Sentinels/2 + 1
	for range cfg.Sentinels {
		d.Sentinels = append(d.Sentinels, startServer(t, sentinelBin, Config{Password: cfg.Password}, func(s *Server) error {
			conf := d.sentinelConf(primary.Port(), quorum)
			s.sentinelConf = filepath.Join(s.dir, "sentinel.conf")
			return os.WriteFile(s.sentinelConf, []byte(conf), 0o600)
		}))
	}
	d.waitTopology(primary, startTimeout)
	return d
}

// sentinelConf is a sentinel's configuration file (the port, address and
// directory are given on the command line).
func (d *Sentinel) sentinelConf(primaryPort, quorum int) string {
	var b strings.Builder
	name := d.MasterName
	fmt.Fprintf(&b, "sentinel resolve-hostnames no\n")
	fmt.Fprintf(&b, "sentinel monitor %s 127.0.0.1 %d %d\n", name, primaryPort, quorum)
	fmt.Fprintf(&b, "sentinel down-after-milliseconds %s %d\n", name, d.cfg.DownAfter.Milliseconds())
	fmt.Fprintf(&b, "sentinel failover-timeout %s %d\n", name, d.cfg.FailoverTimeout.Milliseconds())
	fmt.Fprintf(&b, "sentinel parallel-syncs %s 1\n", name)
	if d.cfg.Data.Password != "" {
		fmt.Fprintf(&b, "sentinel auth-pass %s %s\n", name, d.cfg.Data.Password)
	}
	if d.cfg.Password != "" {
		fmt.Fprintf(&b, "requirepass %s\nsentinel sentinel-pass %s\n", d.cfg.Password, d.cfg.Password)
	}
	return b.String()
}

// Addrs returns the sentinels' addresses.
func (d *Sentinel) Addrs() []string {
	var a []string
	for _, s := range d.Sentinels {
		a = append(a, s.Addr())
	}
	return a
}

// sentinelClient is the test's client of one sentinel, closed when the
// test ends.
func (d *Sentinel) sentinelClient(s *Server) *redis.SentinelClient {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c := d.clients[s]; c != nil {
		return c
	}
	c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr(), Password: d.cfg.Password, DialTimeout: time.Second,
		ReadTimeout: time.Second, MaxRetries: -1, DialerRetries: 1, DisableIdentity: true})
	d.t.Cleanup(func() { c.Close() })
	if d.clients == nil {
		d.clients = map[*Server]*redis.SentinelClient{}
	}
	d.clients[s] = c
	return c
}

// Client returns a Sentinel-aware client of the primary's database db
// (contexts bound its socket I/O), closed when the test ends.
func (d *Sentinel) Client(db int) *redis.Client {
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: d.MasterName, SentinelAddrs: d.Addrs(), SentinelPassword: d.cfg.Password,
		Password: d.cfg.Data.Password, DB: db, ContextTimeoutEnabled: true, DisableIdentity: true,
	})
	d.t.Cleanup(func() { c.Close() })
	return c
}

// byAddr returns the data node at addr, or nil.
func (d *Sentinel) byAddr(addr string) *Server {
	for _, s := range d.Data {
		if s.Addr() == addr {
			return s
		}
	}
	return nil
}

// masterAddrs asks every sentinel that answers for the primary's address.
func (d *Sentinel) masterAddrs(ctx context.Context) (addrs []string, answered int) {
	for _, s := range d.Sentinels {
		a, err := d.sentinelClient(s).GetMasterAddrByName(ctx, d.MasterName).Result()
		if err != nil || len(a) != 2 {
			continue
		}
		answered++
		addrs = append(addrs, net.JoinHostPort(a[0], a[1]))
	}
	return addrs, answered
}

// Primary returns the data node that the sentinels (all that answer,
// agreeing) name as the primary.
func (d *Sentinel) Primary() *Server {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, _ := d.masterAddrs(ctx)
	if len(addrs) == 0 {
		d.t.Fatal("redistest: no sentinel names a primary")
	}
	for _, a := range addrs[1:] {
		if a != addrs[0] {
			d.t.Fatalf("redistest: the sentinels disagree on the primary: %v", addrs)
		}
	}
	p := d.byAddr(addrs[0])
	if p == nil {
		d.t.Fatalf("redistest: the sentinels name %s, which is not a data node of this deployment", addrs[0])
	}
	return p
}

// WaitFailover waits until every sentinel that answers names a primary
// other than old, and that node says it is a primary; it returns the new
// primary and how long the wait took.
func (d *Sentinel) WaitFailover(old *Server, timeout time.Duration) (*Server, time.Duration) {
	d.t.Helper()
	began := time.Now()
	deadline := began.Add(timeout)
	var last []string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		p, addrs := d.agreedPrimary(ctx)
		cancel()
		last = addrs
		if p != nil && p != old {
			return p, time.Since(began)
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.t.Fatalf("redistest: no failover away from %s within %v (sentinels name %v)\n%s", old.Addr(), timeout, last, d.Sentinels[0].LogTail())
	return nil, 0
}

// agreedPrimary returns the data node that every sentinel that answers
// names as the primary, if that node also says it is one (nil otherwise),
// and the addresses the sentinels named.
func (d *Sentinel) agreedPrimary(ctx context.Context) (*Server, []string) {
	addrs, answered := d.masterAddrs(ctx)
	if answered == 0 || len(addrs) != answered || !allEqual(addrs) {
		return nil, addrs
	}
	if p := d.byAddr(addrs[0]); p != nil && p.role() == "master" {
		return p, addrs
	}
	return nil, addrs
}

func allEqual(s []string) bool {
	for _, v := range s[1:] {
		if v != s[0] {
			return false
		}
	}
	return true
}

// role returns the node's role from INFO replication ("master",
// "slave"), or "" when it does not answer.
func (s *Server) role() string {
	return infoValue(s.infoReplication(), "role")
}

func (s *Server) infoReplication() string {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), Password: s.cfg.Password, DialTimeout: time.Second,
		ReadTimeout: time.Second, MaxRetries: -1, DialerRetries: 1, DisableIdentity: true})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return ""
	}
	return info
}

func infoValue(info, name string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// WaitReplicas waits until primary has at least n replicas online.
func (d *Sentinel) WaitReplicas(primary *Server, n int, timeout time.Duration) {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	var info string
	for time.Now().Before(deadline) {
		info = primary.infoReplication()
		if online := strings.Count(info, ",state=online,"); online >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.t.Fatalf("redistest: %s has not %d replicas online after %v:\n%s", primary.Addr(), n, timeout, info)
}

// waitTopology waits until every sentinel monitors primary, sees every
// replica and every other sentinel, and considers nothing down.
func (d *Sentinel) waitTopology(primary *Server, timeout time.Duration) {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for i, s := range d.Sentinels {
		c := d.sentinelClient(s)
		var last map[string]string
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			m, err := c.Master(ctx, d.MasterName).Result()
			cancel()
			if err == nil {
				last = m
				if m["ip"]+":"+m["port"] == primary.Addr() && m["flags"] == "master" &&
					m["num-slaves"] == strconv.Itoa(len(d.Data)-1) && m["num-other-sentinels"] == strconv.Itoa(len(d.Sentinels)-1) {
					break
				}
			}
			if time.Now().After(deadline) {
				d.t.Fatalf("redistest: sentinel %d does not see the whole deployment after %v: %v (%v)\n%s", i, timeout, last, err, s.LogTail())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// ConfigEpoch returns the highest config epoch of the primary among the
// sentinels that answer: the epoch of the last failover that took effect
// (0 before any). Its changes show when the sentinels failed over; a
// failed election followed by a successful one moves it once, skipping a
// value, so count changes, not values. A false detection right after a
// promotion (redis/redis#8607) shows as a change soon after the one of
// the real failover. It fails the test when no sentinel answers; see
// ReadConfigEpoch for a goroutine other than the test's.
func (d *Sentinel) ConfigEpoch() int {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	epoch, err := d.ReadConfigEpoch(ctx)
	if err != nil {
		d.t.Fatal(err)
	}
	return epoch
}

// ReadConfigEpoch is ConfigEpoch returning its error instead of failing
// the test, so that any goroutine may call it.
func (d *Sentinel) ReadConfigEpoch(ctx context.Context) (int, error) {
	epoch, answered := 0, 0
	var last error
	for _, s := range d.Sentinels {
		m, err := d.sentinelClient(s).Master(ctx, d.MasterName).Result()
		if err != nil {
			last = err
			continue
		}
		n, err := strconv.Atoi(m["config-epoch"])
		if err != nil {
			return 0, fmt.Errorf("redistest: sentinel %s gives config-epoch %q", s.Addr(), m["config-epoch"])
		}
		answered++
		epoch = max(epoch, n)
	}
	if answered == 0 {
		return 0, fmt.Errorf("redistest: no sentinel answers SENTINEL MASTER %s: %w", d.MasterName, last)
	}
	return epoch, nil
}

// Failover makes a sentinel promote a replica now (SENTINEL FAILOVER, as
// if the primary had failed, while it still runs), retrying while the
// sentinel has no replica it may promote yet (NOGOODSLAVE) or a failover
// is still in progress (INPROG). It then waits until the config epoch is
// above the one read just before the accepted command, every sentinel
// that answers names the same primary and that node says it is a
// primary, and returns it and how long that took after the command was
// accepted. Unlike waiting for another primary, this cannot end at once
// because of a failover that took effect before the command, such as the
// one that made an earlier attempt answer INPROG (one from another cause
// in the moment between the reading and the command would still end it).
// The deposed primary keeps taking writes until the sentinels make it a
// replica of the new one, and then loses what it took meanwhile.
func (d *Sentinel) Failover(timeout time.Duration) (*Server, time.Duration) {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	c := d.sentinelClient(d.Sentinels[0])
	var before int
	for {
		// Read before each attempt: a failover of the sentinels' own that
		// made the command answer INPROG has moved the epoch, and must not
		// pass for the one the command starts.
		before = d.ConfigEpoch()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := c.Failover(ctx, d.MasterName).Err()
		cancel()
		if err == nil {
			break
		}
		if !redis.HasErrorPrefix(err, "NOGOODSLAVE") && !redis.HasErrorPrefix(err, "INPROG") || time.Now().After(deadline) {
			d.t.Fatalf("redistest: SENTINEL FAILOVER %s: %v\n%s", d.MasterName, err, d.Sentinels[0].LogTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	began := time.Now()
	p := d.waitEpochPrimary(before, deadline)
	return p, time.Since(began)
}

// waitEpochPrimary waits until the config epoch is above before, every
// sentinel that answers names the same primary and that node says it is
// a primary, and returns it.
func (d *Sentinel) waitEpochPrimary(before int, deadline time.Time) *Server {
	d.t.Helper()
	var (
		last    []string
		epoch   int
		lastErr error
	)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		epoch, lastErr = d.ReadConfigEpoch(ctx)
		p, addrs := d.agreedPrimary(ctx)
		cancel()
		last = addrs
		if lastErr == nil && epoch > before && p != nil {
			return p
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.t.Fatalf("redistest: no failover took effect (config epoch %d, before %d; %v; sentinels name %v)\n%s", epoch, before, lastErr, last, d.Sentinels[0].LogTail())
	return nil
}
