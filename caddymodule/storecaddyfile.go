package caddymodule

import (
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/dwsnotify/dws_notify/config"
)

var _ caddyfile.Unmarshaler = (*StoreConfig)(nil)

// StoreConfig is the store subdirective of dws_notify: the store's
// settings (config.Store), with the line that set each of them.
type StoreConfig struct {
	config.Store
	// lines holds the line of every setting UnmarshalCaddyfile parsed, by
	// its path in the store ("url", "tls.key"); "" is the store line.
	lines map[string]int
}

// The names of the store subdirective, for the errors about an unknown
// one (errUnknown).
var (
	storeBackends   = []string{config.BackendBadger, config.BackendRedis}
	redisOptions    = []string{"username", "password", "sentinel_username", "sentinel_password", "db", "tls", "prefix", "dial_timeout", "read_timeout", "write_timeout", "operation_timeout", "pool_size", "wait_aof", "wait_replicas"}
	redisTLSOptions = []string{"ca", "cert", "key", "server_name"}
)

// UnmarshalCaddyfile parses the store subdirective of dws_notify; the
// dispenser is on the word "store":
//
//	store badger [<dir>]
//	store redis <url> [{ <options> }]
//	store redis sentinel <master_name> <host:port>... [{ <options> }]
//	store redis cluster <host:port>... [{ <options> }]
//
// with the options
//
//	username <user>
//	password <password>
//	sentinel_username <user>         (sentinel only)
//	sentinel_password <password>     (sentinel only)
//	db <n>                           (sentinel only)
//	tls [{
//		ca <pem_file>
//		cert <pem_file>
//		key <pem_file>
//		server_name <name>
//	}]
//	prefix <prefix>
//	dial_timeout <duration>
//	read_timeout <duration>
//	write_timeout <duration>
//	operation_timeout <duration>
//	pool_size <n>
//	wait_aof [<timeout>]
//	wait_replicas <n> [<timeout>]
//
// The rules about the settings are config.Handler.Check's, which the
// dws_notify directive's parser runs once the whole directive is read,
// reporting a broken rule at the line of the setting (lines). This parser
// refuses only what cannot become a JSON field (an argument count, a value
// that is not a number or a duration, an unknown option) and a zero the
// JSON config would read as the default or as "off": a duration of 0 or
// less (config.PositiveRule's text), pool_size 0 (the same text) and
// wait_replicas 0 (leave the option out). No error quotes a password, a
// key or a URL's user information.
func (c *StoreConfig) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	c.lines = map[string]int{"": d.Line(), "backend": d.Line()}
	if !d.NextArg() {
		return d.Err("store needs a backend: store badger [<dir>], store redis <url>, store redis sentinel <master_name> <host:port>... or store redis cluster <host:port>...")
	}
	c.Backend = d.Val()
	switch c.Backend {
	case config.BackendBadger:
		if d.NextArg() {
			if d.Val() == "" {
				return d.Err("store badger: the directory must not be empty: give it as an absolute path, or write store badger alone for the default")
			}
			c.Dir = d.Val()
			c.lines["dir"] = d.Line()
		}
		if d.NextArg() {
			return d.Err("store badger takes at most one argument, the directory")
		}
		if line := d.Line(); d.NextBlock(d.Nesting()) {
			return errAt(d.File(), line, "store badger takes no options block")
		}
		return nil
	case config.BackendRedis:
	default:
		return errUnknown(d, "store: unknown backend", c.Backend, storeBackends)
	}
	if err := c.parseRedisTarget(d); err != nil {
		return err
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt, line := d.Val(), d.Line()
		if err := c.parseRedisOption(d); err != nil {
			return err
		}
		if err := noBlock(d, "store redis "+opt, line); err != nil {
			return err
		}
	}
	return nil
}

// parseRedisTarget parses the arguments of store redis: a URL, or
// sentinel with the master name and addresses, or cluster with addresses.
func (c *StoreConfig) parseRedisTarget(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.Err("store redis needs the server's URL, e.g. store redis redis://127.0.0.1:6379/0, or sentinel <master_name> <host:port>..., or cluster <host:port>...")
	}
	line := d.Line()
	switch d.Val() {
	case "sentinel":
		args := d.RemainingArgs()
		if len(args) < 2 {
			return d.Err("store redis sentinel needs the master name and at least one sentinel address: store redis sentinel <master_name> <host:port>...")
		}
		c.Sentinel = &config.RedisSentinel{MasterName: args[0], Addresses: args[1:]}
		c.lines["sentinel"], c.lines["sentinel.master_name"], c.lines["sentinel.addresses"] = line, line, line
	case "cluster":
		args := d.RemainingArgs()
		if len(args) < 1 {
			return d.Err("store redis cluster needs at least one node address: store redis cluster <host:port>...")
		}
		c.Cluster = &config.RedisCluster{Addresses: args}
		c.lines["cluster"], c.lines["cluster.addresses"] = line, line
	default:
		c.URL = d.Val()
		c.lines["url"] = line
		if d.NextArg() {
			return d.Err("store redis takes one argument, the URL; options go in a block")
		}
	}
	return nil
}

// parseRedisOption parses one option of the store redis block; the
// dispenser is on its name.
func (c *StoreConfig) parseRedisOption(d *caddyfile.Dispenser) error {
	opt := d.Val()
	field := opt
	switch opt {
	case "username", "password", "db", "tls", "prefix", "dial_timeout", "read_timeout", "write_timeout",
		"operation_timeout", "pool_size", "wait_aof", "wait_replicas":
	case "sentinel_username", "sentinel_password":
		field = "sentinel." + strings.TrimPrefix(opt, "sentinel_")
		if c.Sentinel == nil {
			return d.Errf("store redis: %s applies to store redis sentinel only", opt)
		}
	default:
		return errUnknown(d, "store redis: unknown option", opt, redisOptions)
	}
	if line, dup := c.lines[field]; dup {
		return d.Errf("store redis: %s is already set at line %d", opt, line)
	}
	c.lines[field] = d.Line()
	var err error
	switch opt {
	case "username":
		c.Username, err = oneArg(d, opt, false)
	case "password":
		c.Password, err = oneArg(d, opt, true)
	case "sentinel_username":
		c.Sentinel.Username, err = oneArg(d, opt, false)
	case "sentinel_password":
		c.Sentinel.Password, err = oneArg(d, opt, true)
	case "prefix":
		c.Prefix, err = oneArg(d, opt, true)
	case "db":
		if c.DB, err = intArg(d, opt, "a database number"); err == nil && d.NextArg() {
			err = d.ArgErr()
		}
	case "pool_size":
		c.PoolSize, err = intArg(d, opt, "a number of connections")
		if err == nil && c.PoolSize == 0 {
			err = d.Err("store redis " + config.PositiveRule("pool_size"))
		}
		if err == nil && d.NextArg() {
			err = d.ArgErr()
		}
	case "dial_timeout":
		c.DialTimeout, err = durationOption(d, opt)
	case "read_timeout":
		c.ReadTimeout, err = durationOption(d, opt)
	case "write_timeout":
		c.WriteTimeout, err = durationOption(d, opt)
	case "operation_timeout":
		c.OperationTimeout, err = durationOption(d, opt)
	case "wait_aof":
		c.WaitAOF = true
		if d.NextArg() {
			d.Prev()
			c.lines["wait_aof_timeout"] = d.Line()
			c.WaitAOFTimeout, err = durationOption(d, opt)
		}
	case "wait_replicas":
		if c.WaitReplicas, err = intArg(d, opt, "a number of replicas"); err == nil && c.WaitReplicas == 0 {
			err = d.Errf("store redis wait_replicas: %q is not a positive number", d.Val())
		}
		if err == nil && d.NextArg() {
			d.Prev()
			c.lines["wait_replicas_timeout"] = d.Line()
			c.WaitReplicasTimeout, err = durationOption(d, opt)
		}
	case "tls":
		err = c.parseTLS(d)
	}
	return err
}

// parseTLS parses the tls option and its block.
func (c *StoreConfig) parseTLS(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.Err("store redis tls takes no arguments; its settings go in a block")
	}
	c.TLS = &config.RedisTLS{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		field := "tls." + opt
		if line, dup := c.lines[field]; dup {
			return d.Errf("store redis tls: %s is already set at line %d", opt, line)
		}
		c.lines[field] = d.Line()
		var err error
		switch opt {
		case "ca":
			c.TLS.CA, err = oneArg(d, "tls ca", false)
		case "cert":
			c.TLS.Cert, err = oneArg(d, "tls cert", false)
		case "key":
			c.TLS.Key, err = oneArg(d, "tls key", true)
		case "server_name":
			c.TLS.ServerName, err = oneArg(d, "tls server_name", false)
		default:
			return errUnknown(d, "store redis tls: unknown option", opt, redisTLSOptions)
		}
		if err != nil {
			return err
		}
		if err := noBlock(d, "store redis tls "+opt, c.lines[field]); err != nil {
			return err
		}
	}
	return nil
}

// oneArg reads the single argument of a store redis option. With secret
// its errors never quote the value.
func oneArg(d *caddyfile.Dispenser, opt string, secret bool) (string, error) {
	if !d.NextArg() {
		return "", d.Errf("store redis %s needs a value", opt)
	}
	v := d.Val()
	if v == "" {
		return "", d.Errf("store redis %s must not be empty", opt)
	}
	if d.NextArg() {
		if secret {
			return "", d.Errf("store redis %s takes one value", opt)
		}
		return "", d.Errf("store redis %s takes one value, not %q", opt, d.Val())
	}
	return v, nil
}

// intArg reads the single non-negative integer argument of an option.
func intArg(d *caddyfile.Dispenser, opt, what string) (int, error) {
	if !d.NextArg() {
		return 0, d.Errf("store redis %s needs %s", opt, what)
	}
	n, err := strconv.Atoi(d.Val())
	if err != nil || n < 0 {
		return 0, d.Errf("store redis %s: %q is not a positive number", opt, d.Val())
	}
	return n, nil
}

// durationOption reads the last argument of a store redis option as a
// positive duration.
func durationOption(d *caddyfile.Dispenser, opt string) (config.Duration, error) {
	dur, err := durationArg(d, "store redis "+opt)
	return config.Duration(dur), err
}
