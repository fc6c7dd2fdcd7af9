package caddymodule

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/config"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore/redistest"
)

// Resolving the store settings into a store at provisioning: the Badger
// directory, and the Redis settings' placeholders and TLS files.

// Provision checks the store settings and resolves their placeholders;
// nothing that Provision says shows the password.
func TestProvisionStoreErrors(t *testing.T) {
	const secret = "provision-secret-5e2"
	t.Setenv("DWS_TEST_REDIS_URL", "redis://:"+secret+"@127.0.0.1:6379/abc")
	t.Setenv("DWS_TEST_SENTINELS", "s1:26379, s2:26379,s3")
	t.Setenv("DWS_TEST_PLAIN_URL", "redis://r:6379/0")
	ca := redistest.NewCA(t)
	certPEM, _, err := ca.Issue(false, "client")
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, err := ca.Issue(false, "other")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DWS_TEST_CERT", string(certPEM))
	t.Setenv("DWS_TEST_OTHER_KEY", string(otherKey))
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	redis := func(c config.Store) *config.Store { c.Backend = "redis"; return &c }
	cases := []struct {
		name    string
		store   *config.Store
		storage string
		want    string
	}{
		{"no backend", &config.Store{URL: "redis://r"}, "", ": store: backend is required: badger or redis"},
		{"unknown backend", &config.Store{Backend: "etcd"}, "", `: store: backend "etcd": want badger or redis`},
		{"redis options with badger", &config.Store{Backend: "badger", Prefix: "p:", WaitAOF: true}, "", "store: prefix, wait_aof applies to the redis backend only"},
		{"dir with redis", redis(config.Store{URL: "redis://r", Dir: "/a"}), "", "store: dir applies to the badger backend only"},
		{"storage with redis", redis(config.Store{URL: "redis://r"}), "/var/lib/dws", "storage /var/lib/dws is the directory of the Badger store, but store.backend is redis: remove storage"},
		{"storage and dir differ", &config.Store{Backend: "badger", Dir: "/srv/a"}, "/srv/b", "storage /srv/b and store.dir /srv/a name different directories"},
		{"badger dir is a file", &config.Store{Backend: "badger", Dir: file}, "", "storage"},
		{"no URL", redis(config.Store{}), "", "store: one of url, sentinel and cluster is required with backend redis"},
		{"URL and sentinel", redis(config.Store{URL: "redis://r", Sentinel: &config.RedisSentinel{MasterName: "m", Addresses: []string{"s:1"}}}), "", "store: url and sentinel are exclusive: give one"},
		{"sentinel without a master name", redis(config.Store{Sentinel: &config.RedisSentinel{Addresses: []string{"s:1"}}}), "", "store: sentinel needs the master name"},
		{"sentinel without addresses", redis(config.Store{Sentinel: &config.RedisSentinel{MasterName: "m"}}), "", "store: sentinel needs at least one host:port address"},
		{"bad sentinel address from the environment", redis(config.Store{Sentinel: &config.RedisSentinel{MasterName: "m", Addresses: []string{"{env.DWS_TEST_SENTINELS}"}}}), "", `sentinel address "s3": want host:port`},
		{"unset sentinel password", redis(config.Store{Sentinel: &config.RedisSentinel{MasterName: "m", Addresses: []string{"s:1"}, Password: "{env.DWS_TEST_UNSET_SENTINEL_PASSWORD}"}}), "", "store sentinel.password: placeholder {env.DWS_TEST_UNSET_SENTINEL_PASSWORD} resolves to nothing"},
		{"cluster and db", redis(config.Store{Cluster: &config.RedisCluster{Addresses: []string{"c:1"}}, DB: 1}), "", "store: db applies to sentinel only"},
		{"TLS CA file missing", redis(config.Store{Cluster: &config.RedisCluster{Addresses: []string{"c:1"}}, TLS: &config.RedisTLS{CA: "/nonexistent/dws-ca.pem"}}), "", "store: tls.ca: neither PEM text nor a readable file: reading /nonexistent/dws-ca.pem: no such file or directory"},
		{"TLS CA not PEM", redis(config.Store{Cluster: &config.RedisCluster{Addresses: []string{"c:1"}}, TLS: &config.RedisTLS{CA: file}}), "", "store: tls.ca: no PEM certificate in it"},
		{"TLS key file missing", redis(config.Store{URL: "rediss://r", TLS: &config.RedisTLS{Cert: "-----BEGIN CERTIFICATE-----\n", Key: "/nonexistent/" + secret}}), "", "store: tls.key: neither PEM text nor a readable file: no such file or directory"},
		{"TLS key from an unset variable", redis(config.Store{URL: "rediss://r", TLS: &config.RedisTLS{Cert: "/c", Key: "{env.DWS_TEST_UNSET_KEY}"}}), "", "store tls.key: placeholder {env.DWS_TEST_UNSET_KEY} resolves to nothing"},
		{"TLS key does not match", redis(config.Store{URL: "rediss://r", TLS: &config.RedisTLS{Cert: "{env.DWS_TEST_CERT}", Key: "{env.DWS_TEST_OTHER_KEY}"}}), "", "store: tls.cert and tls.key: not a certificate and its private key"},
		{"TLS with a placeholder redis:// URL", redis(config.Store{URL: "{env.DWS_TEST_PLAIN_URL}", TLS: &config.RedisTLS{}}), "", "TLSConfig requires a rediss:// URL"},
		{"wait_replicas with a cluster", redis(config.Store{Cluster: &config.RedisCluster{Addresses: []string{"c:1"}}, WaitReplicas: 1}), "", "store: wait_replicas needs url or sentinel"},
		{"wait_replicas_timeout alone", redis(config.Store{URL: "redis://r", WaitReplicasTimeout: config.Duration(time.Second)}), "", "wait_replicas_timeout is set but wait_replicas is not"},
		{"unset placeholder", redis(config.Store{URL: "{env.DWS_TEST_UNSET_REDIS_URL}"}), "", "store url: placeholder {env.DWS_TEST_UNSET_REDIS_URL} resolves to nothing"},
		{"unset password placeholder", redis(config.Store{URL: "redis://r", Password: "{env.DWS_TEST_UNSET_REDIS_PASSWORD}"}), "", "store password: placeholder {env.DWS_TEST_UNSET_REDIS_PASSWORD} resolves to nothing"},
		{"password placeholder inside braces", redis(config.Store{URL: "redis://r", Password: "{" + secret + "}{file./nonexistent/dws-redis-password}"}), "", "store password: placeholder {file./nonexistent/dws-redis-password} resolves to nothing"},
		{"bad URL from the environment", redis(config.Store{URL: "{env.DWS_TEST_REDIS_URL}"}), "", "invalid database number"},
		{"bad URL and a password", redis(config.Store{URL: "redis://:" + secret + "@host:port/0", Password: secret}), "", "does not parse"},
		{"negative timeout", redis(config.Store{URL: "redis://r", ReadTimeout: -1}), "", "read_timeout must be positive"},
		{"wait_aof_timeout alone", redis(config.Store{URL: "redis://r", WaitAOFTimeout: config.Duration(time.Second)}), "", "wait_aof_timeout is set but wait_aof is not"},
		{"operation timeout", redis(config.Store{URL: "redis://r", OperationTimeout: config.Duration(6 * time.Second)}), "", "operation_timeout 6s is longer than 5s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := baseHandler(t)
			h.Storage, h.Store = tc.storage, tc.store
			err := h.Provision(newContext(t))
			defer func() { _ = h.Cleanup() }()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Provision error = %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Errorf("error shows the password or the key: %v", err)
			}
		})
	}
}

// A password may contain braces: only {env.*} and {file.*} are
// placeholders there, the rest is kept as written and never quoted.
func TestRedisPasswordWithBraces(t *testing.T) {
	t.Setenv("DWS_TEST_REDIS_PW_PART", "fromenv")
	lookup := placeholders()
	for in, want := range map[string]string{
		"Ab{cdSECRET}ef":                       "Ab{cdSECRET}ef",
		"{x}{env.DWS_TEST_REDIS_PW_PART}{y":    "{x}fromenv{y",
		"}{{env.DWS_TEST_REDIS_PW_PART}}":      "}{fromenv}",
		"{system.hostname}":                    "{system.hostname}",
		"plain":                                "plain",
		"{env.DWS_TEST_REDIS_PW_PART}/{file.}": "",
	} {
		got, err := config.ResolvePlaceholders(in, lookup)
		if want == "" {
			if err == nil || strings.Contains(err.Error(), "fromenv") {
				t.Errorf("ResolvePlaceholders(%q) = %q, %v; want an error naming only the placeholder", in, got, err)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("ResolvePlaceholders(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	spec, err := redisSpec(&config.Store{Backend: config.BackendRedis, URL: "redis://127.0.0.1:1/0", Password: "Ab{cdSECRET}ef"})
	if err != nil {
		t.Fatalf("redisSpec with a password holding braces: %v", err)
	}
	if strings.Contains(spec.name, "SECRET") {
		t.Errorf("store name shows the password: %q", spec.name)
	}
}

// storage and store badger with the same directory, in either spelling,
// are one store.
func TestStoreBadgerAndStorageAgree(t *testing.T) {
	dir := t.TempDir()
	a, b := baseHandler(t), baseHandler(t)
	a.Storage, a.Store = dir, &config.Store{Backend: "badger", Dir: dir + "/"}
	b.Storage, b.Store = "", &config.Store{Backend: "badger", Dir: dir}
	for _, h := range []*Handler{a, b} {
		if err := h.Provision(newContext(t)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Cleanup() })
	}
	if a.store != b.store || a.store.name != canonicalDir(t, dir) {
		t.Fatalf("store badger and storage on one directory: %q and %q", a.store.name, b.store.name)
	}
	if _, _, err := a.store.Get(t.Context(), keyOf("addPaymentMethod", "x")); err != nil {
		t.Fatal(err)
	}
}
