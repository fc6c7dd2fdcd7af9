package config

import (
	"path/filepath"
	"strings"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency/redisstore"
)

// Store backends.
const (
	BackendBadger = "badger"
	BackendRedis  = "redis"
)

// MaxOperationTimeout caps store.operation_timeout: every store call made
// while answering a notification is abandoned (U) after this long anyway
// (guard.DefaultCallTimeout, which caddymodule uses).
const MaxOperationTimeout = 5 * time.Second

// Store chooses the idempotency store and configures it. Without it the
// handler uses the embedded Badger store in Storage (or its default
// directory). Its rules are part of Handler.Check; the Caddyfile form is
// parsed by caddymodule.StoreConfig.UnmarshalCaddyfile.
type Store struct {
	// Backend is the store: "badger", the embedded Badger database in a
	// local directory (dedupe per gateway instance), or "redis", a Redis or
	// Valkey deployment that several gateways share (dedupe across the
	// fleet). Required.
	Backend string `json:"backend"`

	// Dir is the Badger database's directory (backend badger only).
	// Default: the "dws_notify" folder in Caddy's data directory. It means
	// the same as the handler's storage field; when both are set they must
	// name the same directory.
	Dir string `json:"dir,omitempty"`

	// URL locates a single Redis server (backend redis; exactly one of
	// url, sentinel and cluster is required):
	// redis://[[user]:password@]host[:port][/db] (port 6379 and database 0
	// by default), rediss://... for TLS, or
	// unix://[[user]:password@]/path/to/redis.sock[?db=N]. go-redis's
	// query options (pool_size, max_retries, dial_timeout, ...) are
	// accepted; the fields below win over them.
	URL string `json:"url,omitempty"`

	// Sentinel locates a primary that Redis Sentinel manages: the gateway
	// asks the sentinels for the primary and follows it through failovers.
	Sentinel *RedisSentinel `json:"sentinel,omitempty"`

	// Cluster locates a Redis Cluster by some of its nodes.
	Cluster *RedisCluster `json:"cluster,omitempty"`

	// Username is the ACL user on the data nodes (with url it replaces the
	// URL's user). Default: none (the default user).
	Username string `json:"username,omitempty"`

	// Password is the password on the data nodes (requirepass, or the ACL
	// user's), replacing any in the URL. It needs no percent-encoding, so
	// it can be a {env.*} or {file.*} placeholder holding a generated
	// secret as it is. Never logged.
	Password string `json:"password,omitempty"`

	// DB is the database number with sentinel. With url the database is in
	// the URL; a cluster has database 0 only. Default 0.
	DB int `json:"db,omitempty"`

	// TLS configures TLS for the store's own connections: a private CA, a
	// client certificate, the server name. It turns TLS on for sentinel
	// and cluster (an empty object: TLS with the system's roots) and
	// requires rediss:// with url. It never changes what the rest of Caddy
	// trusts.
	TLS *RedisTLS `json:"tls,omitempty"`

	// Prefix starts every Redis key the store writes. Gateways that must
	// dedupe together use the same deployment, database and prefix; give
	// each environment or fleet sharing one Redis a prefix of its own, e.g.
	// "prod:dws_notify:". No prefix may start with another's prefix
	// followed by "r:". Default "dws_notify:".
	Prefix string `json:"prefix,omitempty"`

	// DialTimeout bounds one connection attempt. Default: 2s.
	DialTimeout Duration `json:"dial_timeout,omitempty"`

	// ReadTimeout bounds the wait for one reply. Default: 1s.
	ReadTimeout Duration `json:"read_timeout,omitempty"`

	// WriteTimeout bounds one write to the connection. Default: 1s.
	WriteTimeout Duration `json:"write_timeout,omitempty"`

	// OperationTimeout bounds one store call as a whole (waiting for a
	// pooled connection, dialling, one retry); past it the notification
	// is answered U. At most 5s. Default: 3s.
	OperationTimeout Duration `json:"operation_timeout,omitempty"`

	// PoolSize is the number of connections kept per gateway (per node
	// with cluster). Default: go-redis's, 10 per CPU.
	PoolSize int `json:"pool_size,omitempty"`

	// WaitAOF makes every completion wait until Redis has fsynced it to
	// its append-only file (WAITAOF 1 0) before S is answered, so that
	// even a power cut of the Redis host loses no acknowledged
	// notification with appendfsync everysec. A replay of a done record
	// waits the same way first. Needs Redis or Valkey 7.2
	// or later with appendonly yes, and url or sentinel; provisioning
	// fails otherwise.
	WaitAOF bool `json:"wait_aof,omitempty"`

	// WaitAOFTimeout bounds that wait; a completion not confirmed in time
	// is answered U. Must be shorter than OperationTimeout. Default: 1s.
	WaitAOFTimeout Duration `json:"wait_aof_timeout,omitempty"`

	// WaitReplicas makes every completion wait until that many replicas
	// have acknowledged it (WAIT n; with wait_aof, WAITAOF 1 n) before S
	// is answered, so that a failover cannot lose an acknowledged
	// notification. A replay of a done record waits the same way first.
	// With url (a primary with replicas) or sentinel. Completions and
	// replays are answered U while fewer replicas are connected.
	// Default 0: replication stays asynchronous.
	WaitReplicas int `json:"wait_replicas,omitempty"`

	// WaitReplicasTimeout bounds that wait; a completion not acknowledged
	// in time is answered U. Must be shorter than OperationTimeout.
	// Default: 1s.
	WaitReplicasTimeout Duration `json:"wait_replicas_timeout,omitempty"`
}

// RedisSentinel locates a Sentinel-managed primary.
type RedisSentinel struct {
	// MasterName is the name the sentinels monitor the primary under
	// (sentinel monitor <name> ...). Required.
	MasterName string `json:"master_name"`

	// Addresses are host:port addresses of sentinels, at least one (the
	// others are learnt from it; give them all so any one can answer). A
	// placeholder may hold several, comma-separated.
	Addresses []string `json:"addresses"`

	// Username is the ACL user on the sentinels, if they have one.
	Username string `json:"username,omitempty"`

	// Password is the sentinels' own password (their requirepass), not
	// the data nodes'. Never logged.
	Password string `json:"password,omitempty"`
}

// RedisCluster locates a Redis Cluster.
type RedisCluster struct {
	// Addresses are host:port addresses of some of the cluster's nodes, at
	// least one; the others and the slots are learnt from them. A
	// placeholder may hold several, comma-separated.
	Addresses []string `json:"addresses"`
}

// RedisTLS is the store's own TLS configuration. Each of CA, Cert and Key
// is the path of a PEM file, or the PEM text itself (typically from a
// {env.*} placeholder); {file.*} placeholders give the text too.
type RedisTLS struct {
	// CA is the bundle of CA certificates the servers' certificates are
	// verified against, instead of the system's roots (for this store
	// only). Default: the system's roots.
	CA string `json:"ca,omitempty"`

	// Cert is the client certificate (with its chain) for servers that
	// require one (tls-auth-clients yes). Needs Key.
	Cert string `json:"cert,omitempty"`

	// Key is the client certificate's private key. Needs Cert. Never
	// logged or quoted in an error.
	Key string `json:"key,omitempty"`

	// ServerName is the name the servers' certificates must carry.
	// Default: the host of each address dialled (the URL's host with
	// url).
	ServerName string `json:"server_name,omitempty"`
}

// redisFields lists the Redis-only settings of c that are set, by JSON
// path, in the order of the struct.
func (c *Store) redisFields() []string {
	var set []string
	for _, f := range []struct {
		name  string
		isSet bool
	}{
		{"url", c.URL != ""}, {"sentinel", c.Sentinel != nil}, {"cluster", c.Cluster != nil},
		{"username", c.Username != ""}, {"password", c.Password != ""}, {"db", c.DB != 0}, {"tls", c.TLS != nil},
		{"prefix", c.Prefix != ""}, {"dial_timeout", c.DialTimeout != 0}, {"read_timeout", c.ReadTimeout != 0},
		{"write_timeout", c.WriteTimeout != 0}, {"operation_timeout", c.OperationTimeout != 0},
		{"pool_size", c.PoolSize != 0}, {"wait_aof", c.WaitAOF}, {"wait_aof_timeout", c.WaitAOFTimeout != 0},
		{"wait_replicas", c.WaitReplicas != 0}, {"wait_replicas_timeout", c.WaitReplicasTimeout != 0},
	} {
		if f.isSet {
			set = append(set, f.name)
		}
	}
	return set
}

// check checks every rule of the store settings that needs neither the
// placeholders resolved nor a file read (those are checked by
// RedisOptions, at provisioning). It only reads c. Errors are *FieldError,
// with the fields' paths inside the store ("url", "tls.cert").
func (c *Store) check() error {
	switch c.Backend {
	case BackendBadger:
		if set := c.redisFields(); len(set) > 0 {
			return errField(set[0], "%s applies to the redis backend only", strings.Join(set, ", "))
		}
		if c.Dir != "" && !HasPlaceholder(c.Dir) && !filepath.IsAbs(c.Dir) {
			return errField("dir", "dir %s is a relative path: %s", c.Dir, RelativeDirRule)
		}
		return nil
	case BackendRedis:
	case "":
		return errField("backend", "backend is required: badger or redis")
	default:
		return errField("backend", "backend %q: want badger or redis", c.Backend)
	}
	if c.Dir != "" {
		return errField("dir", "dir applies to the badger backend only")
	}
	var forms []string
	for _, f := range []struct {
		name  string
		isSet bool
	}{{"url", c.URL != ""}, {"sentinel", c.Sentinel != nil}, {"cluster", c.Cluster != nil}} {
		if f.isSet {
			forms = append(forms, f.name)
		}
	}
	switch len(forms) {
	case 0:
		return errField("", "one of url, sentinel and cluster is required with backend redis (e.g. url redis://127.0.0.1:6379/0)")
	case 1:
	default:
		return errField(forms[1], "%s are exclusive: give one", strings.Join(forms, " and "))
	}
	if err := c.checkTopology(); err != nil {
		return err
	}
	if err := c.checkTLS(); err != nil {
		return err
	}
	if err := c.checkTimeouts(); err != nil {
		return err
	}
	if err := checkPrefix(c.Prefix); err != nil {
		return errField("prefix", "%v", err)
	}
	return nil
}

// checkPrefix checks the prefix as the store will (redisstore.CheckPrefix)
// before its placeholders are resolved: each {env.*} / {file.*} counted as
// one byte, the least it resolves to, so what is refused now would be
// refused once resolved (a brace outside a placeholder, a prefix too long
// already); what the values bring is checked at provisioning.
func checkPrefix(prefix string) error {
	if HasPlaceholder(prefix) {
		// The lookup always answers, so there is no error.
		prefix, _ = ResolvePlaceholders(prefix, func(string) (string, bool) { return "p", true })
	}
	return redisstore.CheckPrefix(prefix)
}

// checkTopology checks the url, sentinel or cluster settings and those
// that depend on which of them is given.
func (c *Store) checkTopology() error {
	switch {
	case c.DB < 0:
		return errField("db", "db must not be negative")
	case c.DB != 0 && c.Sentinel == nil:
		return errField("db", "db applies to sentinel only (with url the database is in the URL; a cluster has database 0 only)")
	case c.Cluster != nil && c.WaitAOF:
		return errField("wait_aof", "wait_aof needs url or sentinel: a cluster has no wait for the AOF fsync of a slot's primary")
	case c.Cluster != nil && c.WaitReplicas != 0:
		return errField("wait_replicas", "wait_replicas needs url or sentinel: a cluster has no wait for a slot's replicas")
	}
	if c.URL != "" && !HasPlaceholder(c.URL) {
		if _, err := redisstore.Check(redisstore.Options{URL: c.URL}); err != nil {
			return errField("url", "%v", err)
		}
	}
	if s := c.Sentinel; s != nil {
		if s.MasterName == "" {
			return errField("sentinel.master_name", "sentinel needs the master name the sentinels monitor")
		}
		if err := checkAddresses("sentinel.addresses", "sentinel", s.Addresses); err != nil {
			return err
		}
	}
	if c.Cluster != nil {
		if err := checkAddresses("cluster.addresses", "cluster", c.Cluster.Addresses); err != nil {
			return err
		}
	}
	return nil
}

// checkAddresses checks the literal host:port addresses of a sentinel or
// cluster list (a placeholder is checked once resolved).
func checkAddresses(field, what string, addrs []string) error {
	if len(addrs) == 0 {
		return errField(field, "%s needs at least one host:port address", what)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		if HasPlaceholder(a) {
			continue
		}
		if err := redisstore.CheckAddr(a); err != nil {
			return errField(field, "%s address %s: %v", what, redisstore.ShownAddr(a), err)
		}
		if seen[a] {
			return errField(field, "%s address %q is listed twice", what, a)
		}
		seen[a] = true
	}
	return nil
}

// checkTLS checks the tls settings that need nothing read.
func (c *Store) checkTLS() error {
	t := c.TLS
	if t == nil {
		return nil
	}
	switch {
	case t.Cert != "" && t.Key == "":
		return errField("tls.cert", "tls cert needs key, the client certificate's private key")
	case t.Key != "" && t.Cert == "":
		return errField("tls.key", "tls key needs cert, the client certificate")
	case c.URL != "" && !HasPlaceholder(c.URL) && !strings.HasPrefix(c.URL, "rediss://"):
		return errField("tls", "tls needs a rediss:// URL (the URL's scheme turns TLS on)")
	}
	return nil
}

// checkTimeouts checks the timeouts, the pool size and the waits.
func (c *Store) checkTimeouts() error {
	for _, d := range []struct {
		name string
		v    Duration
	}{{"dial_timeout", c.DialTimeout}, {"read_timeout", c.ReadTimeout}, {"write_timeout", c.WriteTimeout},
		{"operation_timeout", c.OperationTimeout}, {"wait_aof_timeout", c.WaitAOFTimeout}, {"wait_replicas_timeout", c.WaitReplicasTimeout}} {
		if d.v < 0 {
			return errField(d.name, "%s", PositiveRule(d.name))
		}
	}
	if c.PoolSize < 0 {
		return errField("pool_size", "%s", PositiveRule("pool_size"))
	}
	if c.WaitReplicas < 0 {
		return errField("wait_replicas", "wait_replicas must not be negative")
	}
	op := time.Duration(c.OperationTimeout)
	if op == 0 {
		op = redisstore.DefaultOperationTimeout
	}
	if op > MaxOperationTimeout {
		return errField("operation_timeout", "operation_timeout %v is longer than %v, after which a store call is abandoned anyway", op, MaxOperationTimeout)
	}
	if c.WaitAOFTimeout != 0 && !c.WaitAOF {
		return errField("wait_aof_timeout", "wait_aof_timeout is set but wait_aof is not")
	}
	if c.WaitReplicasTimeout != 0 && c.WaitReplicas == 0 {
		return errField("wait_replicas_timeout", "wait_replicas_timeout is set but wait_replicas is not")
	}
	for _, w := range []struct {
		on            bool
		field, name   string
		timeout, dflt time.Duration
	}{
		{c.WaitAOF, "wait_aof_timeout", "wait_aof", time.Duration(c.WaitAOFTimeout), redisstore.DefaultWaitAOFTimeout},
		{c.WaitReplicas > 0, "wait_replicas_timeout", "wait_replicas", time.Duration(c.WaitReplicasTimeout), redisstore.DefaultWaitReplicasTimeout},
	} {
		wait := w.timeout
		if wait == 0 {
			wait = w.dflt
		}
		if w.on && wait >= op {
			field := w.field
			if w.timeout == 0 {
				field = "operation_timeout"
			}
			return errField(field, "the %s timeout %v must be shorter than operation_timeout %v", w.name, wait, op)
		}
	}
	return nil
}
