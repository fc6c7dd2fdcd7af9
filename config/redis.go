package config

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency/redisstore"
)

// Redis is a Redis store's settings resolved: the placeholders replaced,
// the TLS files read and everything checked.
type Redis struct {
	// Options are the options to open the store with (without Logger).
	Options redisstore.Options
	// Addr describes the server (redisstore.Check's description).
	Addr string
	// Data names the records the settings reach (redisstore.DataIdentity):
	// the same for settings that differ only in how they reach them
	// (sentinels, TLS, credentials, timeouts).
	Data string
	// Shape is a hash of every resolved setting that shapes the client
	// (credentials and TLS material included): the same for settings that
	// make the same client, different for any change, and no secret.
	Shape [16]byte
}

// Redis resolves the settings of c, a redis store that passed Check: it
// resolves the placeholders with lookup, reads the TLS files and checks
// the result as the store will. Errors name the setting and the
// placeholder or file, never a password, a key or its path.
func (c *Store) Redis(lookup Lookup) (Redis, error) {
	r := &resolver{lookup: lookup}
	opts := redisstore.Options{
		URL:                 r.get("url", c.URL),
		Username:            r.get("username", c.Username),
		Password:            r.get("password", c.Password),
		DB:                  c.DB,
		Prefix:              r.get("prefix", c.Prefix),
		DialTimeout:         time.Duration(c.DialTimeout),
		ReadTimeout:         time.Duration(c.ReadTimeout),
		WriteTimeout:        time.Duration(c.WriteTimeout),
		OperationTimeout:    time.Duration(c.OperationTimeout),
		PoolSize:            c.PoolSize,
		WaitAOF:             c.WaitAOF,
		WaitAOFTimeout:      time.Duration(c.WaitAOFTimeout),
		WaitReplicas:        c.WaitReplicas,
		WaitReplicasTimeout: time.Duration(c.WaitReplicasTimeout),
	}
	if s := c.Sentinel; s != nil {
		opts.Sentinel = &redisstore.SentinelOptions{
			MasterName: r.get("sentinel.master_name", s.MasterName),
			Addrs:      r.list("sentinel.addresses", s.Addresses),
			Username:   r.get("sentinel.username", s.Username),
			Password:   r.get("sentinel.password", s.Password),
		}
	}
	if c.Cluster != nil {
		opts.Cluster = &redisstore.ClusterOptions{Addrs: r.list("cluster.addresses", c.Cluster.Addresses)}
	}
	var material tlsMaterial
	if c.TLS != nil {
		material = tlsMaterial{
			ca:         r.get("tls.ca", c.TLS.CA),
			cert:       r.get("tls.cert", c.TLS.Cert),
			key:        r.get("tls.key", c.TLS.Key),
			serverName: r.get("tls.server_name", c.TLS.ServerName),
		}
	}
	if r.err != nil {
		return Redis{}, fmt.Errorf("store %w", r.err)
	}
	var tlsSum [32]byte
	if c.TLS != nil {
		tc, sum, err := material.config(c.TLS)
		if err != nil {
			return Redis{}, fmt.Errorf("store: %w", err)
		}
		opts.TLSConfig, tlsSum = tc, sum
	}
	addr, err := redisstore.Check(opts)
	if err != nil {
		return Redis{}, fmt.Errorf("store: %w", err)
	}
	if opts.Prefix == "" {
		opts.Prefix = redisstore.DefaultPrefix
	}
	shape := opts
	shape.TLSConfig = nil
	//lint:ignore SA1026 the fields that hold functions (TLSConfig, Client, Logger) are nil here
	shaped, err := json.Marshal(struct {
		Options redisstore.Options
		TLS     bool
		TLSSum  [32]byte
		Server  string
	}{shape, c.TLS != nil, tlsSum, material.serverName})
	if err != nil {
		return Redis{}, fmt.Errorf("store: %w", err)
	}
	data, err := redisstore.DataIdentity(opts)
	if err != nil {
		return Redis{}, fmt.Errorf("store: %w", err)
	}
	res := Redis{Options: opts, Addr: addr, Data: data}
	sum := sha256.Sum256(shaped)
	copy(res.Shape[:], sum[:16])
	return res, nil
}

// resolver resolves the placeholders of the store settings; its errors
// name the setting and the placeholder, never the value.
type resolver struct {
	lookup Lookup
	err    error
}

// get resolves s (the setting field) unless an earlier call failed.
func (r *resolver) get(field, s string) string {
	if r.err != nil || s == "" {
		return s
	}
	v, err := ResolvePlaceholders(s, r.lookup)
	if err != nil {
		r.err = fmt.Errorf("%s: %w", field, err)
	}
	return v
}

// list resolves a list of addresses, each of which may resolve to several
// comma-separated ones.
func (r *resolver) list(field string, in []string) []string {
	var out []string
	for _, a := range in {
		v := r.get(field, a)
		if !HasPlaceholder(a) {
			out = append(out, v)
			continue
		}
		for part := range strings.SplitSeq(v, ",") {
			out = append(out, strings.TrimSpace(part))
		}
	}
	return out
}

// tlsMaterial is the resolved tls settings.
type tlsMaterial struct {
	ca, cert, key, serverName string
}

// config builds the store's TLS configuration, reading the PEM files, and
// returns it with a hash of the material (for the pool key). Errors name
// the setting and, for the CA and the certificate given as a literal
// path, the file; never the key or its path, nor a placeholder's value.
func (m tlsMaterial) config(raw *RedisTLS) (*tls.Config, [32]byte, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: m.serverName}
	h := sha256.New()
	if m.ca != "" {
		pemCA, err := readPEM("tls.ca", m.ca, !HasPlaceholder(raw.CA))
		if err != nil {
			return nil, [32]byte{}, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemCA) {
			return nil, [32]byte{}, errors.New("tls.ca: no PEM certificate in it")
		}
		tc.RootCAs = pool
		h.Write(pemCA)
	}
	if m.cert != "" {
		pemCert, err := readPEM("tls.cert", m.cert, !HasPlaceholder(raw.Cert))
		if err != nil {
			return nil, [32]byte{}, err
		}
		pemKey, err := readPEM("tls.key", m.key, false)
		if err != nil {
			return nil, [32]byte{}, err
		}
		pair, err := tls.X509KeyPair(pemCert, pemKey)
		if err != nil {
			return nil, [32]byte{}, fmt.Errorf("tls.cert and tls.key: not a certificate and its private key: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
		h.Write(pemCert)
		h.Write(pemKey)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return tc, sum, nil
}

// readPEM returns v itself when it is PEM text, else the contents of the
// file v names. The file's name is quoted in errors only when showPath.
func readPEM(field, v string, showPath bool) ([]byte, error) {
	if strings.HasPrefix(strings.TrimSpace(v), "-----BEGIN ") {
		return []byte(v), nil
	}
	b, err := os.ReadFile(v)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		if showPath {
			return nil, fmt.Errorf("%s: neither PEM text nor a readable file: reading %s: %w", field, v, err)
		}
		return nil, fmt.Errorf("%s: neither PEM text nor a readable file: %w", field, err)
	}
	return b, nil
}

// Lookup returns the value of a placeholder by its name ("env.NAME",
// "file./path"), and whether it has one. caddymodule looks them up with
// Caddy's replacer.
type Lookup func(name string) (string, bool)

// ResolvePlaceholders replaces the {env.*} and {file.*} placeholders in s,
// the only ones key material and the store settings may use, by their
// values from lookup. Anything else in braces is
// kept as written: a generated password may well contain "{...}". A
// placeholder that is unknown or resolves to nothing is an error naming
// the placeholder, which the operator wrote; an error never quotes the
// rest of s, which may be a secret.
func ResolvePlaceholders(s string, lookup Lookup) (string, error) {
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
		val, ok := lookup(name)
		if !ok || val == "" {
			return "", fmt.Errorf("placeholder {%s} resolves to nothing (is the file readable, or the environment variable set?)", name)
		}
		b.WriteString(rest[:open])
		b.WriteString(val)
		rest = rest[open+end+1:]
	}
}
