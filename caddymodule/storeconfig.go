package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore"
)

// Store backends.
const (
	BackendBadger = "badger"
	BackendRedis  = "redis"
)

// MaxOperationTimeout caps store.operation_timeout: every store call made
// while answering a notification is abandoned (U) after this long anyway
// (storeguard.go).
const MaxOperationTimeout = 5 * time.Second

// StoreConfig chooses the idempotency store and configures it. Without it
// the handler uses the embedded Badger store in Storage (or its default
// directory).
type StoreConfig struct {
	// Backend is the store: "badger", the embedded Badger database in a
	// local directory (dedupe per gateway instance), or "redis", a Redis or
	// Valkey server that several gateways share (dedupe across the fleet).
	// Required.
	Backend string `json:"backend"`

	// Dir is the Badger database's directory (backend badger only).
	// Default: the "dws_notify" folder in Caddy's data directory. It means
	// the same as the handler's storage field; when both are set they must
	// name the same directory.
	Dir string `json:"dir,omitempty"`

	// URL locates the Redis server (backend redis only; required):
	// redis://[[user]:password@]host[:port][/db] (port 6379 and database 0
	// by default), rediss://... for TLS (verified against the system's
	// roots; SSL_CERT_FILE can name a bundle with a private CA, but it
	// replaces the system's for the whole process), or
	// unix://[[user]:password@]/path/to/redis.sock[?db=N]. go-redis's
	// query options (pool_size, max_retries, dial_timeout, ...) are
	// accepted; the fields below win over them. Caddy's {env.*} and
	// {file.*} placeholders are resolved when the config is provisioned,
	// so the password can stay out of the JSON config. The password is
	// never logged.
	URL string `json:"url,omitempty"`

	// Password, when set, is the password for the Redis server, replacing
	// any in URL. Unlike a password inside URL it needs no
	// percent-encoding, so it can be a {env.*} or {file.*} placeholder
	// holding a generated secret as it is. Never logged.
	Password string `json:"password,omitempty"`

	// Prefix starts every Redis key the store writes (placeholders are
	// resolved). Gateways that must dedupe together use the same server,
	// database and prefix; give each environment or fleet sharing one
	// Redis a prefix of its own, e.g. "prod:dws_notify:". No prefix may
	// start with another's prefix followed by "r:". Default "dws_notify:".
	Prefix string `json:"prefix,omitempty"`

	// DialTimeout bounds one connection attempt. Default: 2s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`

	// ReadTimeout bounds the wait for one reply. Default: 1s.
	ReadTimeout caddy.Duration `json:"read_timeout,omitempty"`

	// WriteTimeout bounds one write to the connection. Default: 1s.
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`

	// OperationTimeout bounds one store call as a whole (waiting for a
	// pooled connection, dialling, one retry); past it the notification
	// is answered U. At most 5s. Default: 3s.
	OperationTimeout caddy.Duration `json:"operation_timeout,omitempty"`

	// PoolSize is the number of connections kept per gateway. Default:
	// go-redis's, 10 per CPU.
	PoolSize int `json:"pool_size,omitempty"`

	// WaitAOF makes every completion wait until Redis has fsynced it to
	// its append-only file (WAITAOF 1 0) before S is answered, so that
	// even a power cut of the Redis host loses no acknowledged
	// notification with appendfsync everysec. Needs Redis or Valkey 7.2
	// or later with appendonly yes; provisioning fails otherwise.
	WaitAOF bool `json:"wait_aof,omitempty"`

	// WaitAOFTimeout bounds that wait; a completion not confirmed in time
	// is answered U. Must be shorter than OperationTimeout. Default: 1s.
	WaitAOFTimeout caddy.Duration `json:"wait_aof_timeout,omitempty"`
}

// redisOnly names the set Redis-only fields of c, in JSON spelling.
func (c *StoreConfig) redisOnly() []string {
	var set []string
	add := func(name string, isSet bool) {
		if isSet {
			set = append(set, name)
		}
	}
	add("url", c.URL != "")
	add("password", c.Password != "")
	add("prefix", c.Prefix != "")
	add("dial_timeout", c.DialTimeout != 0)
	add("read_timeout", c.ReadTimeout != 0)
	add("write_timeout", c.WriteTimeout != 0)
	add("operation_timeout", c.OperationTimeout != 0)
	add("pool_size", c.PoolSize != 0)
	add("wait_aof", c.WaitAOF)
	add("wait_aof_timeout", c.WaitAOFTimeout != 0)
	return set
}

// checkRedisSettings checks the Redis settings that need neither the URL
// nor the server; the Caddyfile parser and Provision both use it.
func (c *StoreConfig) checkRedisSettings() error {
	for _, d := range []struct {
		name string
		v    caddy.Duration
	}{{"dial_timeout", c.DialTimeout}, {"read_timeout", c.ReadTimeout}, {"write_timeout", c.WriteTimeout},
		{"operation_timeout", c.OperationTimeout}, {"wait_aof_timeout", c.WaitAOFTimeout}} {
		if d.v < 0 {
			return fmt.Errorf("%s must be positive", d.name)
		}
	}
	if c.PoolSize < 0 {
		return errors.New("pool_size must be positive")
	}
	op := time.Duration(c.OperationTimeout)
	if op == 0 {
		op = redisstore.DefaultOperationTimeout
	}
	if op > MaxOperationTimeout {
		return fmt.Errorf("operation_timeout %v is longer than %v, after which a store call is abandoned anyway", op, MaxOperationTimeout)
	}
	if c.WaitAOFTimeout != 0 && !c.WaitAOF {
		return errors.New("wait_aof_timeout is set but wait_aof is not")
	}
	wait := time.Duration(c.WaitAOFTimeout)
	if wait == 0 {
		wait = redisstore.DefaultWaitAOFTimeout
	}
	if c.WaitAOF && wait >= op {
		return fmt.Errorf("the wait_aof timeout %v must be shorter than operation_timeout %v", wait, op)
	}
	return nil
}

// storeSpec resolves the handler's store settings into the store to use:
// the placeholders are resolved and every setting is checked, but nothing
// is opened.
func (h *Handler) storeSpec() (storeSpec, error) {
	c := h.Store
	if c == nil {
		return badgerDirSpec(h.Storage)
	}
	switch c.Backend {
	case BackendBadger:
		if set := c.redisOnly(); len(set) > 0 {
			return storeSpec{}, fmt.Errorf("dws_notify: store: %s applies to the redis backend only", strings.Join(set, ", "))
		}
		dir := c.Dir
		if h.Storage != "" {
			if dir != "" && !sameDir(dir, h.Storage) {
				return storeSpec{}, fmt.Errorf("dws_notify: storage %s and store.dir %s name different directories: storage is the short form of store badger <dir>; give one", h.Storage, dir)
			}
			dir = h.Storage
		}
		return badgerDirSpec(dir)
	case BackendRedis:
		if c.Dir != "" {
			return storeSpec{}, errors.New("dws_notify: store: dir applies to the badger backend only")
		}
		if h.Storage != "" {
			return storeSpec{}, fmt.Errorf("dws_notify: storage %s is the directory of the Badger store, but store.backend is redis: remove storage", h.Storage)
		}
		return redisSpec(c)
	case "":
		return storeSpec{}, errors.New("dws_notify: store.backend is required: badger or redis")
	}
	return storeSpec{}, fmt.Errorf("dws_notify: store.backend %q: want badger or redis", c.Backend)
}

// sameDir reports whether two configured directories are the same path.
func sameDir(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}

// badgerDirSpec is the Badger spec of a configured directory (empty: the
// default), which it creates.
func badgerDirSpec(configured string) (storeSpec, error) {
	dir, err := storageDir(configured)
	if err != nil {
		return storeSpec{}, err
	}
	return badgerSpec(dir), nil
}

// redisSpec resolves c's placeholders and checks its settings.
func redisSpec(c *StoreConfig) (storeSpec, error) {
	if c.URL == "" {
		return storeSpec{}, errors.New("dws_notify: store: url is required with backend redis, e.g. redis://127.0.0.1:6379/0")
	}
	if err := c.checkRedisSettings(); err != nil {
		return storeSpec{}, fmt.Errorf("dws_notify: store: %w", err)
	}
	repl := caddy.NewReplacer()
	rawURL, err := resolvePlaceholders(repl, c.URL)
	if err != nil {
		return storeSpec{}, fmt.Errorf("dws_notify: store url: %w", err)
	}
	if c.Password != "" {
		pw, err := resolvePlaceholders(repl, c.Password)
		if err != nil {
			return storeSpec{}, fmt.Errorf("dws_notify: store password: %w", err)
		}
		if rawURL, err = withPassword(rawURL, pw); err != nil {
			return storeSpec{}, fmt.Errorf("dws_notify: store: %w", err)
		}
	}
	prefix := c.Prefix
	if prefix != "" {
		if prefix, err = resolvePlaceholders(repl, prefix); err != nil {
			return storeSpec{}, fmt.Errorf("dws_notify: store prefix: %w", err)
		}
	}
	opts := redisstore.Options{
		URL:              rawURL,
		Prefix:           prefix,
		DialTimeout:      time.Duration(c.DialTimeout),
		ReadTimeout:      time.Duration(c.ReadTimeout),
		WriteTimeout:     time.Duration(c.WriteTimeout),
		OperationTimeout: time.Duration(c.OperationTimeout),
		PoolSize:         c.PoolSize,
		WaitAOF:          c.WaitAOF,
		WaitAOFTimeout:   time.Duration(c.WaitAOFTimeout),
	}
	addr, err := redisstore.Check(opts)
	if err != nil {
		return storeSpec{}, fmt.Errorf("dws_notify: store: %w", err)
	}
	if opts.Prefix == "" {
		opts.Prefix = redisstore.DefaultPrefix
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%q %q %d %d %d %d %d %t %d", opts.URL, opts.Prefix,
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout, opts.OperationTimeout, opts.PoolSize, opts.WaitAOF, opts.WaitAOFTimeout))
	name := fmt.Sprintf("redis %s prefix %s", addr, opts.Prefix)
	routeRedisLogs()
	return storeSpec{
		key:  "redis " + hex.EncodeToString(sum[:16]),
		name: name,
		open: func(ctx context.Context) (idempotency.Store, error) {
			o := opts
			o.Logger = caddy.Log().Named("dws_notify").With(zap.String("store", name))
			return redisstore.Open(ctx, o)
		},
		retryable: func(err error) bool {
			return !errors.Is(err, idempotency.ErrInvalidArgument) && !errors.Is(err, redisstore.ErrServerRefused)
		},
	}, nil
}

// withPassword returns rawURL with its password set to pw (escaped as a
// URL needs). Errors never quote the URL.
func withPassword(rawURL, pw string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// redisstore's message for the URL names the problem without
		// quoting the URL.
		if _, cerr := redisstore.Check(redisstore.Options{URL: rawURL}); cerr != nil {
			return "", cerr
		}
		return "", errors.New("the Redis URL does not parse")
	}
	name := ""
	if u.User != nil {
		name = u.User.Username()
	}
	u.User = url.UserPassword(name, pw)
	return u.String(), nil
}

// resolvePlaceholders replaces the {env.*} and {file.*} placeholders in s,
// the only ones a Redis URL, password or prefix may use. Anything else in
// braces is kept as written: a generated password may well contain
// "{...}". A placeholder that is unknown or resolves to nothing is an error
// naming the placeholder, which the operator wrote; an error never quotes
// the rest of s, which may be a secret.
func resolvePlaceholders(repl *caddy.Replacer, s string) (string, error) {
	if !strings.Contains(s, "{") {
		return s, nil
	}
	var b strings.Builder
	rest := s
	for {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			b.WriteString(rest)
			return b.String(), nil
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			b.WriteString(rest)
			return b.String(), nil
		}
		name := rest[open+1 : open+end]
		if !strings.HasPrefix(name, "env.") && !strings.HasPrefix(name, "file.") {
			b.WriteString(rest[:open+1]) // not ours: keep the brace, look on after it
			rest = rest[open+1:]
			continue
		}
		v, ok := repl.Get(name)
		val := ""
		if ok && v != nil {
			val = fmt.Sprint(v)
		}
		if val == "" {
			return "", fmt.Errorf("placeholder {%s} resolves to nothing (is the file readable, or the environment variable set?)", name)
		}
		b.WriteString(rest[:open])
		b.WriteString(val)
		rest = rest[open+end+1:]
	}
}

// routeRedisLogs sends go-redis's process-wide log lines to Caddy's
// logger, without passwords, once a Redis store is configured.
var routeRedisLogs = sync.OnceFunc(func() {
	redisstore.RouteClientLog(func() *zap.Logger { return caddy.Log().Named("dws_notify.redis") })
})

// unmarshalStore parses the store subdirective; the dispenser is on the
// word "store". It never quotes a Redis URL or password in an error.
//
//	store badger [<dir>]
//	store redis <url> {
//		password <password>
//		prefix <prefix>
//		dial_timeout <duration>
//		read_timeout <duration>
//		write_timeout <duration>
//		operation_timeout <duration>
//		pool_size <n>
//		wait_aof [<timeout>]
//	}
func unmarshalStore(d *caddyfile.Dispenser) (*StoreConfig, error) {
	line := d.Line()
	if !d.NextArg() {
		return nil, d.Err("store needs a backend: store badger [<dir>] or store redis <url>")
	}
	c := &StoreConfig{Backend: d.Val()}
	switch c.Backend {
	case BackendBadger:
		if d.NextArg() {
			c.Dir = d.Val()
		}
		if d.NextArg() {
			return nil, d.Err("store badger takes at most one argument, the directory")
		}
		if d.NextBlock(d.Nesting()) {
			return nil, errAt(d.File(), line, "store badger takes no options block")
		}
		return c, nil
	case BackendRedis:
	default:
		return nil, d.Errf("store: unknown backend %q: want badger or redis", c.Backend)
	}

	if !d.NextArg() {
		return nil, d.Err("store redis needs the server's URL, e.g. store redis redis://127.0.0.1:6379/0")
	}
	c.URL = d.Val()
	if d.NextArg() {
		return nil, d.Err("store redis takes one argument, the URL; options go in a block")
	}
	seen := map[string]int{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if line, dup := seen[opt]; dup {
			return nil, d.Errf("store redis: %s is already set at line %d", opt, line)
		}
		seen[opt] = d.Line()
		var err error
		switch opt {
		case "password":
			c.Password, err = oneSecretArg(d, opt)
		case "prefix":
			c.Prefix, err = oneSecretArg(d, opt)
		case "dial_timeout", "read_timeout", "write_timeout", "operation_timeout":
			var dur time.Duration
			if dur, err = durationArg(d, "store redis "+opt); err == nil {
				v := caddy.Duration(dur)
				switch opt {
				case "dial_timeout":
					c.DialTimeout = v
				case "read_timeout":
					c.ReadTimeout = v
				case "write_timeout":
					c.WriteTimeout = v
				default:
					c.OperationTimeout = v
				}
			}
		case "pool_size":
			if !d.NextArg() {
				return nil, d.Err("store redis pool_size needs a number of connections")
			}
			n, perr := strconv.Atoi(d.Val())
			if perr != nil || n < 1 {
				return nil, d.Errf("store redis pool_size: %q is not a positive number", d.Val())
			}
			c.PoolSize = n
			if d.NextArg() {
				return nil, d.ArgErr()
			}
		case "wait_aof":
			c.WaitAOF = true
			if d.NextArg() {
				dur, perr := caddy.ParseDuration(d.Val())
				if perr != nil || dur <= 0 {
					return nil, d.Errf("store redis wait_aof: %q is not a positive duration", d.Val())
				}
				c.WaitAOFTimeout = caddy.Duration(dur)
			}
			if d.NextArg() {
				return nil, d.ArgErr()
			}
		default:
			return nil, d.Errf("store redis: unknown option %q (known: password, prefix, dial_timeout, read_timeout, write_timeout, operation_timeout, pool_size, wait_aof)", opt)
		}
		if err != nil {
			return nil, err
		}
	}
	// Errors about the settings together, and about the URL, are
	// reported at the store line.
	if err := c.checkRedisSettings(); err != nil {
		return nil, errAt(d.File(), line, "store redis: %v", err)
	}
	// A URL without placeholders is checked now; one with placeholders
	// when the config is provisioned.
	if !strings.Contains(c.URL, "{") {
		u := c.URL
		if c.Password != "" && !strings.Contains(c.Password, "{") {
			var err error
			if u, err = withPassword(u, c.Password); err != nil {
				return nil, errAt(d.File(), line, "store redis: %v", err)
			}
		}
		if _, err := redisstore.Check(redisstore.Options{URL: u, Prefix: c.Prefix}); err != nil {
			return nil, errAt(d.File(), line, "store redis: %v", err)
		}
	} else if len(c.Prefix) > redisstore.MaxPrefixLen {
		return nil, errAt(d.File(), line, "store redis: prefix longer than %d bytes", redisstore.MaxPrefixLen)
	}
	return c, nil
}

// oneSecretArg reads the single argument of a store option whose value
// may be secret: its errors never quote the value.
func oneSecretArg(d *caddyfile.Dispenser, opt string) (string, error) {
	if !d.NextArg() {
		return "", d.Errf("store redis %s needs a value", opt)
	}
	v := d.Val()
	if v == "" {
		return "", d.Errf("store redis %s must not be empty", opt)
	}
	if d.NextArg() {
		return "", d.Errf("store redis %s takes one value", opt)
	}
	return v, nil
}
