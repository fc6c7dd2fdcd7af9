package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
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

// maxDuration caps leases and retentions: longer ones are stored as this.
// Times in records are Unix microseconds that the scripts keep exact below
// 2^53 (the year 2255); a century ahead keeps every expiry well inside.
const maxDuration = 100 * 365 * 24 * time.Hour

// scanBatch is the COUNT hint of each SCAN round and so about how many
// records Scan fetches per pipeline.
const scanBatch = 256

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
	// means DefaultPrefix. At most MaxPrefixLen bytes. Gateways that must
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
	// appendfsync everysec. Open fails unless the server supports WAITAOF
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
	// of them keeps it: replication is asynchronous otherwise. Single
	// server (a primary with replicas) and Sentinel only. Zero: off.
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

// Store is the idempotency.Store on Redis or Valkey. Create it with Open;
// it is safe for concurrent use, and any number of Stores, in one process
// or many, may share one Redis.
type Store struct {
	client    redis.UniversalClient
	ownClient bool
	prefix    string
	addr      string // the server, for messages: never holds a password
	opTimeout time.Duration
	log       *zap.Logger
	// secrets are the passwords Redact removes while the store is open.
	secrets []string
	// clock translates the server times of returned records to the local
	// clock (clock.go).
	clock *clockMap

	// The wait after each completion (Options.WaitAOF, WaitReplicas):
	// waitTimeout is 0 when there is none; waitClient is the client
	// sharing s.client's pool with a read timeout long enough for it.
	waitAOF      bool
	waitReplicas int
	waitTimeout  time.Duration
	waitClient   *redis.Client

	// q is the inbox queue's cached depth and lease rotation (queue.go).
	q queueState

	// mu guards closed. Every operation registers in ops while the store is
	// open; Close marks the store closed and waits for ops to drain before
	// it closes the client.
	mu        sync.RWMutex
	closed    bool
	ops       sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

var _ idempotency.Store = (*Store)(nil)

// Open connects to the server that opts describes, checks it with a PING
// and loads the scripts. The error names the server's address (never the
// password). See the package documentation for what the server's settings
// mean for the guarantees; Open logs a warning when it can see that
// persistence is off or that the server may evict keys.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if err := validateOptions(&opts); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	s := &Store{
		prefix:    opts.Prefix,
		opTimeout: opts.OperationTimeout,
		log:       log,
		clock:     newClockMap(nil),
	}
	if opts.Client != nil {
		s.client = opts.Client
		s.addr = describeClient(opts.Client)
		s.secrets = []string{clientPassword(opts.Client)}
	} else {
		p, err := plan(&opts)
		if err != nil {
			return nil, err
		}
		s.client = p.newClient()
		s.ownClient = true
		s.addr = p.addr
		s.secrets = p.secrets
	}
	for _, pw := range s.secrets {
		holdSecret(pw)
	}
	if err := s.check(ctx, opts); err != nil {
		if s.ownClient {
			s.client.Close()
		}
		for _, pw := range s.secrets {
			releaseSecret(pw)
		}
		return nil, err
	}
	return s, nil
}

// ErrServerRefused is wrapped by Open's error when the server answered but
// refused the store's configuration: a wrong password or user, a database
// number it does not have, missing permissions, WaitAOF on a server without
// WAITAOF or without appendonly. Waiting does not help, unlike a server
// that is unreachable, times out or is still loading its data (those errors
// do not wrap it).
var ErrServerRefused = errors.New("redisstore: the Redis server refused the configuration")

// transientPrefixes are the server errors that say "not now" rather than
// "not this configuration".
var transientPrefixes = []string{"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "READONLY", "MAXCLIENTS", "ERR max number of clients"}

// refused wraps err in ErrServerRefused when it is a server error reply
// other than a transient one.
func refused(err error) error {
	var re redis.Error
	if !errors.As(err, &re) {
		return err
	}
	for _, p := range transientPrefixes {
		if strings.HasPrefix(re.Error(), p) {
			return err
		}
	}
	return fmt.Errorf("%w: %w", ErrServerRefused, err)
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
	case len(o.Prefix) > MaxPrefixLen:
		return bad("prefix longer than %d bytes", MaxPrefixLen)
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

// checkAddrs checks a list of host:port node addresses: at least one, each
// with a host and a port, none twice.
func checkAddrs(what string, addrs []string) error {
	if len(addrs) == 0 {
		return fmt.Errorf("redisstore: %w: %s: at least one address is required", idempotency.ErrInvalidArgument, what)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		if err := CheckAddr(a); err != nil {
			return fmt.Errorf("redisstore: %w: %s address %q: %v", idempotency.ErrInvalidArgument, what, a, err)
		}
		if seen[a] {
			return fmt.Errorf("redisstore: %w: %s address %q is listed twice", idempotency.ErrInvalidArgument, what, a)
		}
		seen[a] = true
	}
	return nil
}

// CheckAddr checks one host:port address of a sentinel or cluster node.
func CheckAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return errors.New("want host:port")
	}
	if host == "" {
		return errors.New("no host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
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

// check pings the server, loads the scripts, probes WAITAOF if asked to,
// and logs what it can see of the server's persistence settings.
func (s *Store) check(ctx context.Context, opts Options) error {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	if err := s.client.Ping(ctx).Err(); err != nil {
		if opts.Sentinel != nil && errors.Is(err, redis.Nil) {
			// The sentinels answered that they monitor no such primary.
			return fmt.Errorf("redisstore: %w: the sentinels of %s monitor no primary named %q (sentinel monitor <name> ...)", ErrServerRefused, s.addr, opts.Sentinel.MasterName)
		}
		return fmt.Errorf("redisstore: cannot reach Redis at %s: %w", s.addr, refused(err))
	}
	for _, sc := range []*redis.Script{claimScript, completeScript, releaseScript, getScript} {
		if err := sc.Load(ctx, s.client).Err(); err != nil {
			return fmt.Errorf("redisstore: loading a script into Redis at %s: %w", s.addr, refused(err))
		}
	}
	if opts.WaitAOF || opts.WaitReplicas > 0 {
		c, ok := s.client.(*redis.Client)
		if !ok {
			return fmt.Errorf("redisstore: %w: WaitAOF and WaitReplicas need a single-server or Sentinel client, not %T", idempotency.ErrInvalidArgument, s.client)
		}
		if err := s.probeWaits(ctx, c, opts); err != nil {
			return err
		}
	}
	s.syncClock(ctx)
	s.logSettings(ctx)
	return nil
}

// probeWaits checks that the server runs the commands Complete's wait
// needs, and enables the wait.
func (s *Store) probeWaits(ctx context.Context, c *redis.Client, opts Options) error {
	timeout := time.Duration(0)
	if opts.WaitAOF {
		timeout = opts.WaitAOFTimeout
	}
	if opts.WaitReplicas > 0 {
		timeout = max(timeout, opts.WaitReplicasTimeout)
	}
	timeout = time.Duration(max(timeout.Milliseconds(), 1)) * time.Millisecond
	if opts.WaitAOF {
		// WAITAOF 1 0 answers at once when nothing was written yet.
		if err := c.Process(ctx, waitAOFCmd(ctx, 0, timeout)); err != nil {
			msg := err.Error()
			switch {
			case strings.Contains(strings.ToLower(msg), "unknown command"):
				return fmt.Errorf("redisstore: WaitAOF: Redis at %s has no WAITAOF command (it needs Redis 7.2 or later, or Valkey 7.2 or later): %w", s.addr, refused(err))
			case strings.Contains(msg, "appendonly"):
				return fmt.Errorf("redisstore: WaitAOF: Redis at %s has appendonly disabled: %w", s.addr, refused(err))
			}
			return fmt.Errorf("redisstore: WaitAOF: probing WAITAOF on Redis at %s: %w", s.addr, refused(err))
		}
	}
	if opts.WaitReplicas > 0 {
		// WAIT 0 answers at once: it only shows the command is allowed.
		if err := c.Process(ctx, waitReplicasCmd(ctx, 0, time.Millisecond)); err != nil {
			return fmt.Errorf("redisstore: WaitReplicas: probing WAIT on Redis at %s: %w", s.addr, refused(err))
		}
		info, err := c.Info(ctx, "replication").Result()
		if err == nil {
			if n := strings.Count(info, ",state=online,"); n < opts.WaitReplicas {
				s.log.Warn("redisstore: the primary has fewer replicas online than WaitReplicas asks for: every completion is answered U until enough replicas are back",
					zap.String("redis", s.addr), zap.Int("replicas_online", n), zap.Int("wait_replicas", opts.WaitReplicas))
			}
		}
	}
	s.enableWait(c, opts.WaitAOF, opts.WaitReplicas, timeout)
	return nil
}

// syncClock gives the clock map a few observations of the server's clock
// (TIME), so that the translation of the first records starts from the
// tightest of them. Errors are ignored: the store calls observe anyway.
func (s *Store) syncClock(ctx context.Context) {
	for range 3 {
		sent := s.clock.now()
		t, err := s.client.Time(ctx).Result()
		if err != nil {
			return
		}
		s.clock.observe(sent, s.clock.now(), t)
	}
}

// logSettings logs the server's version and warns about settings that
// weaken the store's guarantees. CONFIG may be disabled (managed services
// often rename it): then it says so in one line at info level, since the
// operator must check those settings another way.
func (s *Store) logSettings(ctx context.Context) {
	fields := []zap.Field{zap.String("redis", s.addr), zap.String("prefix", s.prefix), zap.Bool("wait_aof", s.waitAOF), zap.Int("wait_replicas", s.waitReplicas)}
	if info, err := s.client.Info(ctx, "server").Result(); err == nil {
		fields = append(fields, zap.String("server_version", infoField(info, "redis_version")))
		if v := infoField(info, "valkey_version"); v != "" {
			fields = append(fields, zap.String("valkey_version", v))
		}
	}
	cfg, err := s.client.ConfigGet(ctx, "*").Result()
	if err != nil {
		s.log.Info("redisstore: could not check Redis's persistence and eviction settings (CONFIG GET failed; managed services often disable CONFIG): make sure the server has appendonly yes and maxmemory-policy noeviction", append(fields, zap.Error(err))...)
	} else {
		aof, fsync, save, policy := cfg["appendonly"], cfg["appendfsync"], cfg["save"], cfg["maxmemory-policy"]
		fields = append(fields, zap.String("appendonly", aof), zap.String("appendfsync", fsync), zap.String("save", save), zap.String("maxmemory_policy", policy))
		if aof != "yes" {
			s.log.Warn("redisstore: Redis runs without the append-only file: a restart of Redis loses completed records (and with them the dedupe of their requestIds); use appendonly yes", fields...)
		} else if fsync == "no" {
			s.log.Warn("redisstore: Redis has appendfsync no: a power cut of the Redis host can lose many seconds of completed records; use everysec or always", fields...)
		}
		if policy != "" && policy != "noeviction" {
			s.log.Warn("redisstore: Redis may evict keys under memory pressure (maxmemory-policy is not noeviction): an evicted record lets a duplicate through; use noeviction", fields...)
		}
	}
	s.log.Debug("redisstore: store opened", fields...)
}

// infoField returns the value of name in an INFO reply.
func infoField(info, name string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Addr describes the server the store uses, for logs and admin output:
// address and database (or the cluster's seed addresses), never
// credentials.
func (s *Store) Addr() string { return s.addr }

// Prefix returns the prefix of the store's keys.
func (s *Store) Prefix() string { return s.prefix }

// enter registers an operation; it fails with ErrClosed once Close began.
// A successful enter must be paired with s.ops.Done().
func (s *Store) enter() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return idempotency.ErrClosed
	}
	s.ops.Add(1)
	return nil
}

// begin starts an operation: it fails with the context's error if ctx has
// ended, or ErrClosed, and otherwise returns ctx bounded by the operation
// timeout and the function that ends the operation.
func (s *Store) begin(ctx context.Context) (context.Context, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if err := s.enter(); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	return ctx, func() { cancel(); s.ops.Done() }, nil
}

// Claim implements idempotency.Store: one script run (EVALSHA) that reads
// the key and, when it may, writes the claim, atomically on the server.
func (s *Store) Claim(ctx context.Context, key idempotency.Key, fp idempotency.Fingerprint, lease, retention time.Duration) (idempotency.ClaimResult, error) {
	if err := idempotency.ValidateKey(key); err != nil {
		return idempotency.ClaimResult{}, err
	}
	if err := idempotency.ValidateClaim(lease, retention); err != nil {
		return idempotency.ClaimResult{}, err
	}
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return idempotency.ClaimResult{}, err
	}
	defer end()

	token := newToken()
	sent := s.clock.now()
	v, err := claimScript.Run(ctx, s.client, []string{recordKey(s.prefix, key)},
		fp[:], formatHex16(token), ceilDiv(min(lease, maxDuration), time.Microsecond),
		ceilDiv(min(retention, maxDuration), time.Millisecond)).Result()
	recv := s.clock.now()
	if err != nil {
		return idempotency.ClaimResult{}, fmt.Errorf("redisstore: claim %v: %w", key, err)
	}
	st, a, err := replyStatus(v)
	if err != nil {
		return idempotency.ClaimResult{}, fmt.Errorf("redisstore: claim %v: %w", key, err)
	}
	var status idempotency.ClaimStatus
	switch st {
	case stClaimed:
		status = idempotency.Claimed
	case stInFlight:
		status = idempotency.InFlight
	case stDone:
		status = idempotency.Done
	case stConflict:
		status = idempotency.Conflict
	case stCorrupt:
		return idempotency.ClaimResult{}, corruptError(key, a)
	default:
		return idempotency.ClaimResult{}, fmt.Errorf("redisstore: claim %v: %w: status %q", key, errUnexpectedReply, st)
	}
	rec, err := s.localRecord(key, a, sent, recv)
	if err != nil {
		return idempotency.ClaimResult{}, err
	}
	res := idempotency.ClaimResult{Status: status, Record: rec}
	if status == idempotency.Claimed {
		if rec.Token != token || rec.State != idempotency.StateInFlight {
			return idempotency.ClaimResult{}, fmt.Errorf("redisstore: claim %v: %w: claimed record under another token", key, errUnexpectedReply)
		}
		res.Token = token
	}
	return res, nil
}

// Complete implements idempotency.Store. It returns when Redis has applied
// the completion (and, with Options.WaitAOF, fsynced it to the AOF); what
// survives a crash of the Redis host then depends on the server's
// persistence settings (see the package documentation).
func (s *Store) Complete(ctx context.Context, key idempotency.Key, token uint64, answer idempotency.Answer, retention time.Duration) error {
	if err := idempotency.ValidateKey(key); err != nil {
		return err
	}
	if err := idempotency.ValidateAnswer(answer); err != nil {
		return err
	}
	if retention <= 0 {
		return fmt.Errorf("%w: retention %v must be positive", idempotency.ErrInvalidArgument, retention)
	}
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()

	keys := []string{recordKey(s.prefix, key)}
	args := []any{formatHex16(token), formatHex16(newToken()), answer.ResultCode, string(answer.Outcome),
		strconv.Itoa(answer.BackendStatus), ceilDiv(min(retention, maxDuration), time.Millisecond)}
	var v any
	if s.waitTimeout > 0 {
		v, err = s.scriptAndWait(ctx, completeScript, keys, args)
	} else {
		v, err = completeScript.Run(ctx, s.client, keys, args...).Result()
	}
	if err != nil {
		return fmt.Errorf("redisstore: complete %v: %w", key, err)
	}
	st, a, err := replyStatus(v)
	if err != nil {
		return fmt.Errorf("redisstore: complete %v: %w", key, err)
	}
	switch st {
	case stOK:
		return nil
	case stLost:
		return idempotency.ErrLeaseLost
	case stCorrupt:
		return corruptError(key, a)
	}
	return fmt.Errorf("redisstore: complete %v: %w: status %q", key, errUnexpectedReply, st)
}

// ErrUnconfirmed is wrapped by Complete's error when the completion was
// applied but the wait that Options.WaitAOF or WaitReplicas asks for was
// not confirmed in time: the caller answers U, and the provider's resend
// finds the completed record (on the primary, if it still has it).
var ErrUnconfirmed = errors.New("redisstore: the completion's durability was not confirmed in time")

// waitAOFCmd builds WAITAOF 1 <replicas> <timeout>: wait until the local
// append-only file, and that of replicas replicas, holds this
// connection's writes fsynced. A variable so that the tests can exercise
// scriptAndWait on servers older than Redis 7.2 with a command that
// answers in the same shape.
var waitAOFCmd = func(ctx context.Context, replicas int, timeout time.Duration) *redis.IntSliceCmd {
	return redis.NewIntSliceCmd(ctx, "waitaof", 1, replicas, timeout.Milliseconds())
}

// waitReplicasCmd builds WAIT <replicas> <timeout>: wait until replicas
// replicas have acknowledged this connection's writes.
var waitReplicasCmd = func(ctx context.Context, replicas int, timeout time.Duration) *redis.IntCmd {
	return redis.NewIntCmd(ctx, "wait", replicas, timeout.Milliseconds())
}

// enableWait makes Complete wait, up to timeout, on c: for the AOF fsync
// (aof), for replicas replicas, or both.
func (s *Store) enableWait(c *redis.Client, aof bool, replicas int, timeout time.Duration) {
	s.waitAOF, s.waitReplicas, s.waitTimeout = aof, replicas, timeout
	// The wait is read as a reply: the connection's read timeout must
	// outlast it (the clone shares c's pool). A negative read timeout
	// means none.
	rt := c.Options().ReadTimeout
	if rt > 0 {
		rt += timeout
	}
	s.waitClient = c.WithTimeout(rt)
}

// waitCmd is the command Complete sends after the completion.
func (s *Store) waitCmd(ctx context.Context) redis.Cmder {
	if s.waitAOF {
		return waitAOFCmd(ctx, s.waitReplicas, s.waitTimeout)
	}
	return waitReplicasCmd(ctx, s.waitReplicas, s.waitTimeout)
}

// confirmed checks the reply of waitCmd.
func (s *Store) confirmed(w redis.Cmder) error {
	switch w := w.(type) {
	case *redis.IntSliceCmd:
		acks, err := w.Result()
		if err != nil {
			return fmt.Errorf("WAITAOF: %w", err)
		}
		if len(acks) != 2 || acks[0] < 1 {
			return fmt.Errorf("%w: applied, but Redis did not confirm the AOF fsync within %v", ErrUnconfirmed, s.waitTimeout)
		}
		if acks[1] < int64(s.waitReplicas) {
			return fmt.Errorf("%w: applied, but only %d of %d replicas confirmed the AOF fsync within %v", ErrUnconfirmed, acks[1], s.waitReplicas, s.waitTimeout)
		}
	case *redis.IntCmd:
		n, err := w.Result()
		if err != nil {
			return fmt.Errorf("WAIT: %w", err)
		}
		if n < int64(s.waitReplicas) {
			return fmt.Errorf("%w: applied, but only %d of %d replicas confirmed it within %v", ErrUnconfirmed, n, s.waitReplicas, s.waitTimeout)
		}
	}
	return nil
}

// scriptAndWait runs a script (the complete script, or a queue script) and
// the wait (WAITAOF or WAIT) in one pipeline, so both go over the same
// connection (both wait for the last write of their own connection). A
// script that did not answer ok (a completion that was lost) needs no
// wait; a completion that found an earlier attempt's effect again
// re-applies the TTL, so the wait covers the earlier write too.
func (s *Store) scriptAndWait(ctx context.Context, sc *redis.Script, keys []string, args []any) (any, error) {
	run := func(eval func(redis.Pipeliner) *redis.Cmd) (*redis.Cmd, redis.Cmder, error) {
		pipe := s.waitClient.Pipeline()
		c := eval(pipe)
		w := s.waitCmd(ctx)
		if err := pipe.Process(ctx, w); err != nil {
			return c, w, err
		}
		_, err := pipe.Exec(ctx)
		return c, w, err
	}
	c, w, err := run(func(p redis.Pipeliner) *redis.Cmd { return sc.EvalSha(ctx, p, keys, args...) })
	if err != nil && redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
		c, w, err = run(func(p redis.Pipeliner) *redis.Cmd { return sc.Eval(ctx, p, keys, args...) })
	}
	if cerr := c.Err(); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, err
	}
	v := c.Val()
	if st, _, _ := replyStatus(v); st != stOK {
		return v, nil
	}
	if err := s.confirmed(w); err != nil {
		return nil, err
	}
	return v, nil
}

// Release implements idempotency.Store.
func (s *Store) Release(ctx context.Context, key idempotency.Key, token uint64) error {
	if err := idempotency.ValidateKey(key); err != nil {
		return err
	}
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()

	v, err := releaseScript.Run(ctx, s.client, []string{recordKey(s.prefix, key)}, formatHex16(token)).Result()
	if err != nil {
		return fmt.Errorf("redisstore: release %v: %w", key, err)
	}
	st, a, err := replyStatus(v)
	if err != nil {
		return fmt.Errorf("redisstore: release %v: %w", key, err)
	}
	switch st {
	case stReleased, stKept:
		return nil
	case stCorrupt:
		return corruptError(key, a)
	}
	return fmt.Errorf("redisstore: release %v: %w: status %q", key, errUnexpectedReply, st)
}

// Get implements idempotency.Store.
func (s *Store) Get(ctx context.Context, key idempotency.Key) (idempotency.Record, bool, error) {
	if err := idempotency.ValidateKey(key); err != nil {
		return idempotency.Record{}, false, err
	}
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return idempotency.Record{}, false, err
	}
	defer end()

	sent := s.clock.now()
	v, err := getScript.Run(ctx, s.client, []string{recordKey(s.prefix, key)}).Result()
	recv := s.clock.now()
	if err != nil {
		return idempotency.Record{}, false, fmt.Errorf("redisstore: get %v: %w", key, err)
	}
	return s.getReply(key, v, sent, recv)
}

// localRecord decodes the record of a script reply that carries one,
// with its times on the local clock: the call was sent at sent and
// answered at recv, local time (see clockMap).
func (s *Store) localRecord(key idempotency.Key, a []any, sent, recv time.Time) (idempotency.Record, error) {
	rec, err := decodeRecord(key, a)
	if err != nil {
		return idempotency.Record{}, err
	}
	// decodeRecord checked the server time.
	now, _ := parseMicros(a[1].(string))
	return localRecord(rec, s.clock.observe(sent, recv, now)), nil
}

// getReply interprets a reply of the get script, sent at sent and
// answered at recv (local clock).
func (s *Store) getReply(key idempotency.Key, v any, sent, recv time.Time) (idempotency.Record, bool, error) {
	st, a, err := replyStatus(v)
	if err != nil {
		return idempotency.Record{}, false, fmt.Errorf("redisstore: get %v: %w", key, err)
	}
	switch st {
	case stAbsent:
		return idempotency.Record{}, false, nil
	case stFound:
		rec, err := s.localRecord(key, a, sent, recv)
		return rec, err == nil, err
	case stCorrupt:
		return idempotency.Record{}, false, corruptError(key, a)
	}
	return idempotency.Record{}, false, fmt.Errorf("redisstore: get %v: %w: status %q", key, errUnexpectedReply, st)
}

// Scan implements idempotency.Store with SCAN over the keys under the
// store's prefix (on every primary of a Cluster or shard of a Ring, one
// after the other), fetching each batch's records with one pipeline of the
// get script. It is not a snapshot: a record written or deleted during the
// walk may or may not be seen. SCAN may return a key twice; Scan remembers
// a 64-bit hash of every key it passed to fn and skips repeats (8 bytes of
// memory per record, plus map overhead, for the length of the walk). fn
// runs while the store is in use, so Close waits for a running Scan; fn may
// call the store's other methods except Close. Each round trip is bounded
// by the operation timeout; the walk as a whole only by ctx.
func (s *Store) Scan(ctx context.Context, fn func(idempotency.Record) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.ops.Done()

	nodes, err := s.scanNodes(ctx)
	if err != nil {
		return fmt.Errorf("redisstore: scan: %w", err)
	}
	w := &scanWalk{
		s:     s,
		fn:    fn,
		match: globEscape(s.prefix+recordMarker) + "*",
		seed:  maphash.MakeSeed(),
		seen:  make(map[uint64]struct{}),
	}
	for _, n := range nodes {
		more, err := w.node(ctx, n)
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
	return nil
}

// scanNodes returns the clients to run SCAN on: the primaries of a
// Cluster, the shards of a Ring, or the one client.
func (s *Store) scanNodes(ctx context.Context) ([]redis.Cmdable, error) {
	var (
		mu    sync.Mutex
		nodes []redis.Cmdable
	)
	collect := func(_ context.Context, c *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		nodes = append(nodes, c)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		if err := c.ForEachMaster(ctx, collect); err != nil {
			return nil, err
		}
	case *redis.Ring:
		if err := c.ForEachShard(ctx, collect); err != nil {
			return nil, err
		}
	default:
		nodes = append(nodes, s.client)
	}
	return nodes, nil
}

// scanWalk is the state of one Scan.
type scanWalk struct {
	s     *Store
	fn    func(idempotency.Record) bool
	match string
	seed  maphash.Seed
	seen  map[uint64]struct{}
}

// node walks the keys of one server; it returns false when fn asked to
// stop.
func (w *scanWalk) node(ctx context.Context, n redis.Cmdable) (bool, error) {
	var cursor uint64
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		names, next, err := w.scanRound(ctx, n, cursor)
		if err != nil {
			return false, fmt.Errorf("redisstore: scan: %w", err)
		}
		var fresh []string
		for _, name := range names {
			h := maphash.String(w.seed, name)
			if _, dup := w.seen[h]; !dup {
				w.seen[h] = struct{}{}
				fresh = append(fresh, name)
			}
		}
		more, err := w.records(ctx, fresh)
		if err != nil || !more {
			return false, err
		}
		if next == 0 {
			return true, nil
		}
		cursor = next
	}
}

func (w *scanWalk) scanRound(ctx context.Context, n redis.Cmdable, cursor uint64) ([]string, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, w.s.opTimeout)
	defer cancel()
	return n.Scan(ctx, cursor, w.match, scanBatch).Result()
}

// records fetches the records of names and passes them to fn in order,
// skipping keys that went away since SCAN saw them.
func (w *scanWalk) records(ctx context.Context, names []string) (bool, error) {
	if len(names) == 0 {
		return true, nil
	}
	keys := make([]idempotency.Key, len(names))
	for i, name := range names {
		k, err := decodeRecordKey(w.s.prefix, name)
		if err != nil {
			return false, fmt.Errorf("redisstore: scan: key %q: %w", name, err)
		}
		keys[i] = k
	}
	replies, sent, recv, err := w.fetch(ctx, names)
	if err != nil {
		return false, fmt.Errorf("redisstore: scan: %w", err)
	}
	for i, v := range replies {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		rec, found, err := w.s.getReply(keys[i], v, sent, recv)
		if err != nil {
			return false, err
		}
		if found && !w.fn(rec) {
			return false, nil
		}
	}
	return true, nil
}

// fetch runs the get script on each of names in one pipeline (loading the
// script first if the server lost it, e.g. after a restart). It returns
// the replies and when, on the local clock, the pipeline that gave them
// was sent and answered.
func (w *scanWalk) fetch(ctx context.Context, names []string) (_ []any, sent, recv time.Time, _ error) {
	ctx, cancel := context.WithTimeout(ctx, w.s.opTimeout)
	defer cancel()
	keys := make([][]string, len(names))
	for i, name := range names {
		keys[i] = []string{name}
	}
	return w.s.pipeScripts(ctx, getScript, keys, make([][]any, len(names)))
}

// Close implements idempotency.Store: it waits for running operations and
// closes the client if Open created it (a client given in Options.Client
// stays open). Later calls return the first call's result; every other
// method returns ErrClosed from the moment Close begins.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.ops.Wait()
		if s.ownClient {
			if err := s.client.Close(); err != nil {
				s.closeErr = fmt.Errorf("redisstore: close client of %s: %w", s.addr, err)
			}
		}
		for _, pw := range s.secrets {
			releaseSecret(pw)
		}
		s.log.Debug("redisstore: store closed", zap.String("redis", s.addr), zap.String("prefix", s.prefix), zap.Error(s.closeErr))
	})
	return s.closeErr
}

// newToken returns a random non-zero 64-bit value (claim tokens and
// completion nonces).
func newToken() uint64 {
	for {
		if t := rand.Uint64(); t != 0 {
			return t
		}
	}
}

// ceilDiv returns d in units of unit, rounded up, as a decimal string for a
// script argument (so a positive duration never becomes 0).
func ceilDiv(d, unit time.Duration) string {
	n := d / unit
	if d%unit != 0 {
		n++
	}
	return strconv.FormatInt(int64(n), 10)
}
