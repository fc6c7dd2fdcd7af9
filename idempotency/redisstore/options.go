package redisstore

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// Defaults of Options.
const (
	// DefaultPrefix starts every key the store writes.
	DefaultPrefix = "dws_notify:"
	// DefaultDialTimeout bounds one connection attempt.
	DefaultDialTimeout = 2 * time.Second
	// DefaultReadTimeout bounds the wait for one reply.
	DefaultReadTimeout = time.Second
	// DefaultWriteTimeout bounds one write to the socket.
	DefaultWriteTimeout = time.Second
	// DefaultOperationTimeout bounds one store call, retries included.
	DefaultOperationTimeout = 3 * time.Second
	// DefaultMaxRetries is how often a command is retried after a broken
	// connection or a retryable server reply (LOADING, READONLY, ...).
	DefaultMaxRetries = 1
	// DefaultWaitAOFTimeout bounds Complete's wait for the AOF fsync when
	// Options.WaitAOF is set.
	DefaultWaitAOFTimeout = time.Second
	// DefaultWaitReplicasTimeout bounds Complete's wait for the replicas
	// when Options.WaitReplicas is set.
	DefaultWaitReplicasTimeout = time.Second
	// DefaultClientName is the name the store's connections give
	// themselves (CLIENT SETNAME), visible in CLIENT LIST.
	DefaultClientName = "dws_notify"
)

// MaxPrefixLen is the longest Options.Prefix accepted.
const MaxPrefixLen = 256

// Options configures Open. Exactly one of URL, Sentinel, Cluster and
// Client is required.
type Options struct {
	// URL locates the server:
	//
	//	redis://[[user]:password@]host[:port][/db][?option=value...]
	//	rediss://...   (TLS)
	//	unix://[[user]:password@]/path/to/redis.sock[?db=N&...]
	//
	// The query options of go-redis's ParseURL (dial_timeout, pool_size,
	// max_retries, client_name, ...) are accepted; a field set below wins
	// over the URL. The password never appears in errors or logs.
	URL string
	// Sentinel reaches the primary that Redis Sentinel manages instead of
	// URL: the client asks the sentinels for the primary's address, and
	// again after a failover (see the package documentation, Failover).
	Sentinel *SentinelOptions
	// Cluster reaches a Redis Cluster instead of URL.
	Cluster *ClusterOptions
	// Client is an existing client to use instead of URL: share one pool
	// between several stores, or reach a Redis Cluster
	// (redis.NewClusterClient), a Sentinel-managed primary
	// (redis.NewFailoverClient) or a Ring. The store does not close it.
	// The connection fields below must then be left zero (set them on the
	// client); Prefix, OperationTimeout, the waits and Logger still apply.
	// The client should have ContextTimeoutEnabled so that contexts bound
	// socket reads and writes.
	Client redis.UniversalClient

	// Prefix starts every key, so that several gateway fleets and
	// environments can share one Redis (each with its own prefix); empty
	// means DefaultPrefix. At most MaxPrefixLen bytes, without '{' or '}'
	// (the queue's keys carry hash tags of their own). Gateways that must
	// dedupe together need the same prefix and the same database.
	Prefix string

	// DialTimeout, ReadTimeout and WriteTimeout bound one connection
	// attempt, one reply and one write; zero means the URL's value or else
	// DefaultDialTimeout, DefaultReadTimeout and DefaultWriteTimeout.
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
	// Username and Password authenticate to the data nodes: an ACL user
	// and its password, or Password alone for requirepass. With URL they
	// replace the URL's user information (so a password needs no
	// percent-encoding). Never in errors or logs.
	Username, Password string
	// DB is the database number with Sentinel (with URL it is in the URL;
	// a Cluster has database 0 only).
	DB int

	// PoolSize is the number of connections kept (per node with Cluster);
	// zero means the URL's value or else go-redis's default (10 per
	// GOMAXPROCS).
	PoolSize int
	// MaxRetries is how often a command is retried after a broken
	// connection or a retryable reply; zero means the URL's value or else
	// DefaultMaxRetries, -1 disables retries. Retries are safe: every
	// script recognises the effect of its own earlier attempt.
	MaxRetries int
	// TLSConfig is the TLS configuration of the store's own connections:
	// a private CA (RootCAs), a client certificate (Certificates), the
	// server name to verify. It touches nothing else in the process (the
	// system's roots stay as they are for every other client). With URL it
	// replaces the configuration that rediss:// implies and requires
	// rediss://; with Sentinel or Cluster it turns TLS on, for every data
	// node and sentinel alike. An empty ServerName means the host of the
	// address each connection dials (the URL's host with URL).
	TLSConfig *tls.Config

	// OperationTimeout bounds every store call as a whole (pool wait,
	// dial, retries), whatever the caller's context allows; zero means
	// DefaultOperationTimeout. Scan applies it to each round trip instead.
	OperationTimeout time.Duration

	// WaitAOF makes Complete return only after the server has fsynced the
	// completion to its append-only file (WAITAOF 1 0), so a power cut of
	// the Redis host right after Complete cannot lose it even with
	// appendfsync everysec; Claim replays a done record only after the
	// same wait. Open fails unless the server supports WAITAOF
	// (Redis 7.2 or later, Valkey 7.2 or later) and has appendonly yes, and
	// unless the store reaches a single server or a Sentinel-managed
	// primary (not Cluster, not Ring). Off by default.
	WaitAOF bool
	// WaitAOFTimeout bounds that wait; zero means DefaultWaitAOFTimeout.
	// Complete fails (the caller answers U) when the fsync is not confirmed
	// in time, although the completion was applied.
	WaitAOFTimeout time.Duration

	// WaitReplicas makes Complete return only after that many replicas
	// have acknowledged the completion (WAIT n; with WaitAOF, WAITAOF 1 n:
	// fsynced to their append-only files too), so that a failover to one
	// of them keeps it: replication is asynchronous otherwise. Claim
	// replays a done record only after the same wait. Single server (a
	// primary with replicas) and Sentinel only. Zero: off.
	WaitReplicas int
	// WaitReplicasTimeout bounds that wait; zero means
	// DefaultWaitReplicasTimeout. Complete fails (the caller answers U)
	// when fewer replicas acknowledged in time, although the completion
	// was applied on the primary. With WaitAOF, the one wait is bounded by
	// the longer of the two timeouts.
	WaitReplicasTimeout time.Duration

	// Logger receives the store's few log lines (opened, closed, warnings
	// about the server's persistence and eviction settings); nil discards
	// them. Keys' values and the password are never logged.
	Logger *zap.Logger
}

// SentinelOptions locates a primary that Redis Sentinel manages.
type SentinelOptions struct {
	// MasterName is the name the sentinels monitor the primary under
	// (sentinel monitor <name> ...).
	MasterName string
	// Addrs are host:port addresses of sentinels, at least one; the client
	// learns the others from them.
	Addrs []string
	// Username and Password authenticate to the sentinels (their own
	// requirepass or ACL user), not to the data nodes. Never in errors or
	// logs.
	Username, Password string
}

// ClusterOptions locates a Redis Cluster.
type ClusterOptions struct {
	// Addrs are host:port addresses of some of the cluster's nodes, at
	// least one; the client learns the others and the slots from them.
	Addrs []string
}

// Check validates opts as Open does, without connecting, and returns the
// description of the server that Open would reach (the form of
// Store.Addr: address and database, never credentials). Errors wrap
// idempotency.ErrInvalidArgument and never show the password.
func Check(opts Options) (string, error) {
	if err := validateOptions(&opts); err != nil {
		return "", err
	}
	if opts.Client != nil {
		return describeClient(opts.Client), nil
	}
	p, err := plan(&opts)
	if err != nil {
		return "", err
	}
	for _, pw := range p.secrets {
		rememberSecret(pw)
	}
	return p.addr, nil
}

// DataIdentity names the records a store with opts reaches, to tell
// whether two settings reach the same data: the server's host:port and
// database (URL), the primary's name and database (Sentinel: which
// sentinels find it, in which order, is not part of it), the sorted node
// addresses (Cluster), and the key prefix (DefaultPrefix when empty).
// Credentials, TLS and timeouts change how the data is reached, not which,
// and are not part of it. Its errors are Check's.
func DataIdentity(opts Options) (string, error) {
	if err := validateOptions(&opts); err != nil {
		return "", err
	}
	prefix := cmp.Or(opts.Prefix, DefaultPrefix)
	var where string
	switch {
	case opts.Client != nil:
		if c, ok := opts.Client.(*redis.ClusterClient); ok {
			where = clusterData(c.Options().Addrs)
		} else {
			where = describeClient(opts.Client)
		}
	case opts.Sentinel != nil:
		where = fmt.Sprintf("sentinel %s db %d", opts.Sentinel.MasterName, opts.DB)
	case opts.Cluster != nil:
		where = clusterData(opts.Cluster.Addrs)
	default:
		ro, err := parseURL(opts.URL)
		if err != nil {
			return "", err
		}
		where = describeOptions(ro)
	}
	return where + " prefix " + prefix, nil
}

// clusterData names a cluster's data by its node set, in any order.
func clusterData(addrs []string) string {
	return "cluster " + strings.Join(slices.Sorted(slices.Values(addrs)), ",")
}

// validateOptions checks opts and fills in the defaults that do not depend
// on the URL.
func validateOptions(o *Options) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("redisstore: %w: "+format, append([]any{idempotency.ErrInvalidArgument}, args...)...)
	}
	var forms []string
	for _, f := range []struct {
		name string
		set  bool
	}{{"URL", o.URL != ""}, {"Sentinel", o.Sentinel != nil}, {"Cluster", o.Cluster != nil}, {"Client", o.Client != nil}} {
		if f.set {
			forms = append(forms, f.name)
		}
	}
	switch {
	case len(forms) == 0:
		return bad("one of URL, Sentinel, Cluster and Client is required")
	case len(forms) > 1:
		return bad("%s are exclusive: give one", strings.Join(forms, " and "))
	case o.Client != nil && (o.DialTimeout != 0 || o.ReadTimeout != 0 || o.WriteTimeout != 0 ||
		o.PoolSize != 0 || o.MaxRetries != 0 || o.TLSConfig != nil || o.Username != "" || o.Password != "" || o.DB != 0):
		return bad("with Client, set the connection options on the client")
	case o.DB != 0 && o.Sentinel == nil:
		return bad("DB applies to Sentinel only (with URL the database is in the URL; a Cluster has database 0 only)")
	case o.DB < 0:
		return bad("negative DB")
	case o.Cluster != nil && (o.WaitAOF || o.WaitReplicas != 0):
		return bad("WaitAOF and WaitReplicas need a single server or a Sentinel-managed primary, not a Cluster")
	case o.WaitReplicas < 0:
		return bad("negative WaitReplicas")
	case o.WaitReplicasTimeout != 0 && o.WaitReplicas == 0:
		return bad("WaitReplicasTimeout without WaitReplicas")
	case CheckPrefix(o.Prefix) != nil:
		return bad("%v", CheckPrefix(o.Prefix))
	case o.DialTimeout < 0 || o.ReadTimeout < 0 || o.WriteTimeout < 0 || o.OperationTimeout < 0 || o.WaitAOFTimeout < 0 || o.WaitReplicasTimeout < 0:
		return bad("negative timeout")
	case o.PoolSize < 0:
		return bad("negative pool size")
	case o.MaxRetries < -1:
		return bad("MaxRetries must be -1 (no retries) or more")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.OperationTimeout == 0 {
		o.OperationTimeout = DefaultOperationTimeout
	}
	if o.WaitAOFTimeout == 0 {
		o.WaitAOFTimeout = DefaultWaitAOFTimeout
	}
	if o.WaitAOF && o.WaitAOFTimeout >= o.OperationTimeout {
		return bad("WaitAOFTimeout %v must be shorter than OperationTimeout %v", o.WaitAOFTimeout, o.OperationTimeout)
	}
	if o.WaitReplicasTimeout == 0 {
		o.WaitReplicasTimeout = DefaultWaitReplicasTimeout
	}
	if o.WaitReplicas > 0 && o.WaitReplicasTimeout >= o.OperationTimeout {
		return bad("WaitReplicasTimeout %v must be shorter than OperationTimeout %v", o.WaitReplicasTimeout, o.OperationTimeout)
	}
	if o.Sentinel != nil {
		if o.Sentinel.MasterName == "" {
			return bad("Sentinel.MasterName is required")
		}
		if err := checkAddrs("sentinel", o.Sentinel.Addrs); err != nil {
			return err
		}
	}
	if o.Cluster != nil {
		if err := checkAddrs("cluster", o.Cluster.Addrs); err != nil {
			return err
		}
	}
	return nil
}

// CheckPrefix checks a key prefix (Options.Prefix): at most MaxPrefixLen
// bytes, and no '{' or '}'. Its error does not quote the prefix.
func CheckPrefix(prefix string) error {
	switch {
	case len(prefix) > MaxPrefixLen:
		return fmt.Errorf("prefix longer than %d bytes", MaxPrefixLen)
	case strings.ContainsAny(prefix, "{}"):
		return errors.New("prefix contains '{' or '}': the inbox queue's keys carry hash tags of their own (<prefix>q{<shard>}:), which a brace in the prefix would override or break; choose a prefix without braces")
	}
	return nil
}

// checkAddrs checks a list of host:port node addresses: at least one, each
// with a host and a port, none twice.
func checkAddrs(what string, addrs []string) error {
	if len(addrs) == 0 {
		return fmt.Errorf("redisstore: %w: %s: at least one address is required", idempotency.ErrInvalidArgument, what)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		if err := CheckAddr(a); err != nil {
			return fmt.Errorf("redisstore: %w: %s address %s: %v", idempotency.ErrInvalidArgument, what, ShownAddr(a), err)
		}
		if seen[a] {
			return fmt.Errorf("redisstore: %w: %s address %q is listed twice", idempotency.ErrInvalidArgument, what, a)
		}
		seen[a] = true
	}
	return nil
}

// CheckAddr checks one host:port address of a sentinel or cluster node.
// An address with a scheme, a path or user information (an '@') is
// refused: its password would end up in the store's name, which is logged.
func CheckAddr(a string) error {
	if !plainAddr(a) {
		return errors.New("want host:port only: no scheme, no path, no query, and no user or password (give those as username, password and sentinel_password)")
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return errors.New("want host:port")
	}
	if host == "" {
		return errors.New("no host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return errors.New("the port is not a number from 1 to 65535")
	}
	return nil
}

// plainAddr reports whether a holds only what a host:port can: letters,
// digits, '.', '-', '_', ':', and an IPv6 literal's brackets and zone
// ('%'). Anything else (an '@', '/', '?', '=' ...) may be part of a
// password written into the address.
func plainAddr(a string) bool {
	return strings.IndexFunc(a, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune(".-_:[]%", r))
	}) < 0
}

// ShownAddr is a sentinel or cluster address as an error may show it: a
// plain host or host:port quoted; anything else (which CheckAddr refuses:
// it may hold a password) by its length only.
func ShownAddr(a string) string {
	if plainAddr(a) && len(a) <= 300 {
		// One colon at most (host, or host:port), or a bracketed IPv6
		// literal with its port: a second colon may start a password.
		if _, _, err := net.SplitHostPort(a); err == nil || strings.Count(a, ":") == 0 {
			return strconv.Quote(a)
		}
	}
	return fmt.Sprintf("of %d bytes (not shown)", len(a))
}

// clientPlan is the client that Open builds for URL, Sentinel or Cluster
// options, and how to name it.
type clientPlan struct {
	single   *redis.Options
	failover *redis.FailoverOptions
	cluster  *redis.ClusterOptions
	// addr describes the server(s), never a credential.
	addr string
	// secrets are the passwords the client holds, for Redact.
	secrets []string
}

// newClient builds the client.
func (p *clientPlan) newClient() redis.UniversalClient {
	switch {
	case p.failover != nil:
		return redis.NewFailoverClient(p.failover)
	case p.cluster != nil:
		return redis.NewClusterClient(p.cluster)
	}
	return redis.NewClient(p.single)
}

// plan turns validated options without Client into the client to build.
// The store's rules (timeouts, one retry, the client name, no dial
// retries of go-redis's own, contexts bounding socket I/O) apply to each
// form alike.
func plan(o *Options) (*clientPlan, error) {
	if o.URL != "" {
		ro, err := clientOptions(o)
		if err != nil {
			return nil, err
		}
		return &clientPlan{single: ro, addr: describeOptions(ro), secrets: []string{ro.Password}}, nil
	}
	retries := o.MaxRetries
	if retries == 0 {
		retries = DefaultMaxRetries
	}
	dial, read, write := o.DialTimeout, o.ReadTimeout, o.WriteTimeout
	if dial == 0 {
		dial = DefaultDialTimeout
	}
	if read == 0 {
		read = DefaultReadTimeout
	}
	if write == 0 {
		write = DefaultWriteTimeout
	}
	var tc *tls.Config
	if o.TLSConfig != nil {
		tc = o.TLSConfig.Clone()
	}
	if s := o.Sentinel; s != nil {
		fo := &redis.FailoverOptions{
			MasterName:       s.MasterName,
			SentinelAddrs:    slices.Clone(s.Addrs),
			SentinelUsername: s.Username,
			SentinelPassword: s.Password,
			Username:         o.Username,
			Password:         o.Password,
			DB:               o.DB,
			ClientName:       DefaultClientName,
			MaxRetries:       retries,
			DialTimeout:      dial,
			ReadTimeout:      read,
			WriteTimeout:     write,
			PoolSize:         o.PoolSize,
			TLSConfig:        tc,
			// As for URL: MaxRetries retries a failed dial.
			DialerRetries:         1,
			ContextTimeoutEnabled: true,
		}
		return &clientPlan{failover: fo, addr: describeSentinel(s, o.DB, tc != nil), secrets: []string{o.Password, s.Password}}, nil
	}
	co := &redis.ClusterOptions{
		Addrs:                 slices.Clone(o.Cluster.Addrs),
		Username:              o.Username,
		Password:              o.Password,
		ClientName:            DefaultClientName,
		MaxRetries:            retries,
		DialTimeout:           dial,
		ReadTimeout:           read,
		WriteTimeout:          write,
		PoolSize:              o.PoolSize,
		TLSConfig:             tc,
		DialerRetries:         1,
		ContextTimeoutEnabled: true,
	}
	return &clientPlan{cluster: co, addr: describeCluster(o.Cluster.Addrs, tc != nil), secrets: []string{o.Password}}, nil
}

// clientOptions parses o.URL and applies the store's settings: an Options
// field wins over the URL's query, which wins over the store's default.
func clientOptions(o *Options) (*redis.Options, error) {
	ro, err := parseURL(o.URL)
	if err != nil {
		return nil, err
	}
	pick := func(field, fromURL, def time.Duration) time.Duration {
		switch {
		case field != 0:
			return field
		case fromURL != 0:
			return fromURL
		}
		return def
	}
	ro.DialTimeout = pick(o.DialTimeout, ro.DialTimeout, DefaultDialTimeout)
	ro.ReadTimeout = pick(o.ReadTimeout, ro.ReadTimeout, DefaultReadTimeout)
	ro.WriteTimeout = pick(o.WriteTimeout, ro.WriteTimeout, DefaultWriteTimeout)
	switch {
	case o.MaxRetries != 0:
		ro.MaxRetries = o.MaxRetries
	case ro.MaxRetries == 0:
		ro.MaxRetries = DefaultMaxRetries
	}
	if o.PoolSize != 0 {
		ro.PoolSize = o.PoolSize
	}
	if o.Username != "" {
		ro.Username = o.Username
	}
	if o.Password != "" {
		ro.Password = o.Password
	}
	if o.TLSConfig != nil {
		if ro.TLSConfig == nil {
			return nil, fmt.Errorf("redisstore: %w: TLSConfig requires a rediss:// URL", idempotency.ErrInvalidArgument)
		}
		tc := o.TLSConfig.Clone()
		if tc.ServerName == "" {
			tc.ServerName = ro.TLSConfig.ServerName
		}
		ro.TLSConfig = tc
	}
	if ro.ClientName == "" {
		ro.ClientName = DefaultClientName
	}
	// A failed dial is retried by MaxRetries; go-redis's own dial retries
	// (5 by default, 100 ms apart) would only delay the U answer.
	ro.DialerRetries = 1
	// Contexts bound socket reads and writes, not only the pool wait.
	ro.ContextTimeoutEnabled = true
	return ro, nil
}

// badURLHint is the advice of every error about a Redis URL that does not
// parse as one.
const badURLHint = "percent-encode special characters in the password (/ ? # @ % and others) or give the password separately"

// parseURL is redis.ParseURL with errors that never show any part of the
// URL's user information. url.Parse's errors quote the whole URL or the
// part that failed (an invalid port, a bad escape), and a password holding
// '/', '?', '#' or '@' unescaped ends the URL's authority early, so that
// the rest of the password lands in the port, path, query or fragment,
// which ParseURL's errors and the store's address would then show. So:
// when url.Parse fails, the error is a fixed text (with the scheme, which
// cannot hold user information); and a URL whose path, query or fragment
// holds an '@' (the user information's end, found after the authority) is
// refused the same way, as is a unix:// URL with anything but user
// information before its path (no host, no port). Only what is left
// (database number, query option names, socket path) may be named.
func parseURL(raw string) (*redis.Options, error) {
	bad := func() error {
		what := "Redis URL"
		if scheme, _, ok := strings.Cut(raw, "://"); ok && isScheme(scheme) {
			what = fmt.Sprintf("Redis URL (scheme %q)", scheme)
		}
		return fmt.Errorf("redisstore: %w: %s does not parse: %s", idempotency.ErrInvalidArgument, what, badURLHint)
	}
	if !strings.Contains(raw, "://") {
		// host:port alone (url.Parse reads "localhost:6379" as a scheme
		// and fails on "127.0.0.1:6379"): the advice is the scheme. raw
		// may hold a password, so it is not shown.
		return nil, fmt.Errorf("redisstore: %w: a Redis URL starts with redis://, rediss:// or unix:// (for example redis://127.0.0.1:6379)", idempotency.ErrInvalidArgument)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, bad()
	}
	switch u.Scheme {
	case "redis", "rediss", "unix":
	default:
		return nil, fmt.Errorf("redisstore: %w: Redis URL scheme %q: want redis, rediss or unix", idempotency.ErrInvalidArgument, u.Scheme)
	}
	if strings.Contains(u.EscapedPath(), "@") || strings.Contains(u.RawQuery, "@") || strings.Contains(u.Fragment, "@") ||
		(u.Scheme == "unix" && u.Host != "") {
		return nil, bad()
	}
	ro, err := redis.ParseURL(raw)
	if err != nil {
		// ParseURL's own errors name the offending part (database number,
		// path, query option), which the checks above keep free of user
		// information; strip any url.Error anyway.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		shown := *u
		shown.User = nil
		// The query's values may hold a password too (redis-py's
		// ?password=, which go-redis refuses by name): show none.
		shown.RawQuery, shown.Fragment = "", ""
		return nil, fmt.Errorf("redisstore: %w: Redis URL %s: %v", idempotency.ErrInvalidArgument, shown.String(), err)
	}
	return ro, nil
}

// isScheme reports whether s is a URL scheme (RFC 3986: a letter, then
// letters, digits, '+', '-' and '.').
func isScheme(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// describeOptions names the server of ro for messages: address and
// database, never credentials.
func describeOptions(ro *redis.Options) string {
	return fmt.Sprintf("%s db %d", ro.Addr, ro.DB)
}

// describeSentinel names a Sentinel-managed primary for messages.
func describeSentinel(s *SentinelOptions, db int, tls bool) string {
	t := ""
	if tls {
		t = " tls"
	}
	return fmt.Sprintf("sentinel %s via %s%s db %d", s.MasterName, strings.Join(s.Addrs, ","), t, db)
}

// describeCluster names a Redis Cluster for messages.
func describeCluster(addrs []string, tls bool) string {
	t := ""
	if tls {
		t = " tls"
	}
	return "cluster " + strings.Join(addrs, ",") + t
}

// describeClient names the server(s) of a client given in Options.Client.
func describeClient(c redis.UniversalClient) string {
	switch c := c.(type) {
	case *redis.Client:
		return describeOptions(c.Options())
	case *redis.ClusterClient:
		return describeCluster(c.Options().Addrs, c.Options().TLSConfig != nil)
	case *redis.Ring:
		return "ring"
	}
	return fmt.Sprintf("%T", c)
}

// clientPassword returns the password of a client given in
// Options.Client, for Redact.
func clientPassword(c redis.UniversalClient) string {
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().Password
	case *redis.ClusterClient:
		return c.Options().Password
	case *redis.Ring:
		return c.Options().Password
	}
	return ""
}
