package caddymodule

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/dwsnotify/dws_notify/config"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore"
)

// The store subdirective of the Caddyfile: its forms, the errors it reports
// at their lines, and the JSON it adapts to.

// caddyfileSecret is the Redis password in the Caddyfile tests: no error
// may show it.
const caddyfileSecret = "hunter2-caddyfile-secret"

func parseHandler(t *testing.T, input string) (*Handler, error) {
	t.Helper()
	h := new(Handler)
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
	return h, err
}

func TestUnmarshalCaddyfileStoreForms(t *testing.T) {
	k := keys(t)
	head := "dws_notify {\n\tclient_id c1\n\tdws_public_key " + bareBase64(t, &k.dws.PublicKey) + "\n\tapi addPaymentMethod\n"
	two := config.Duration(2 * time.Second)
	cases := []struct {
		name    string
		lines   string
		store   *config.Store
		storage string
	}{
		{"default", "", nil, ""},
		{"storage", "\tstorage /var/lib/dws\n", nil, "/var/lib/dws"},
		{"badger without a directory", "\tstore badger\n", &config.Store{Backend: "badger"}, ""},
		{"badger with a directory", "\tstore badger /var/lib/dws\n", &config.Store{Backend: "badger", Dir: "/var/lib/dws"}, ""},
		{"badger and storage, the same directory", "\tstorage /var/lib/dws\n\tstore badger /var/lib/dws/\n",
			&config.Store{Backend: "badger", Dir: "/var/lib/dws/"}, "/var/lib/dws"},
		{"badger without a directory and storage", "\tstore badger\n\tstorage /var/lib/dws\n",
			&config.Store{Backend: "badger"}, "/var/lib/dws"},
		{"redis URL", "\tstore redis redis://127.0.0.1:6379/2\n", &config.Store{Backend: "redis", URL: "redis://127.0.0.1:6379/2"}, ""},
		{"redis URL with password", "\tstore redis redis://:" + caddyfileSecret + "@10.0.0.5/0\n",
			&config.Store{Backend: "redis", URL: "redis://:" + caddyfileSecret + "@10.0.0.5/0"}, ""},
		{"rediss with user", "\tstore redis rediss://dws:pw@redis.internal:6380/1\n",
			&config.Store{Backend: "redis", URL: "rediss://dws:pw@redis.internal:6380/1"}, ""},
		{"unix socket", "\tstore redis unix:///run/redis/redis.sock?db=3\n",
			&config.Store{Backend: "redis", URL: "unix:///run/redis/redis.sock?db=3"}, ""},
		{"env placeholder", "\tstore redis {env.DWS_REDIS_URL}\n", &config.Store{Backend: "redis", URL: "{env.DWS_REDIS_URL}"}, ""},
		{"empty block", "\tstore redis redis://r:6379 {\n\t}\n", &config.Store{Backend: "redis", URL: "redis://r:6379"}, ""},
		{"every option", `	store redis redis://redis.internal:6379/4 {
		password {file./etc/dws/redis_password}
		prefix prod:dws_notify:
		dial_timeout 2s
		read_timeout 500ms
		write_timeout 500ms
		operation_timeout 4s
		pool_size 32
		wait_aof 2s
	}
`, &config.Store{Backend: "redis", URL: "redis://redis.internal:6379/4", Password: "{file./etc/dws/redis_password}",
			Prefix: "prod:dws_notify:", DialTimeout: two, ReadTimeout: config.Duration(500 * time.Millisecond),
			WriteTimeout: config.Duration(500 * time.Millisecond), OperationTimeout: config.Duration(4 * time.Second),
			PoolSize: 32, WaitAOF: true, WaitAOFTimeout: two}, ""},
		{"wait_aof without a timeout", "\tstore redis redis://r {\n\t\twait_aof\n\t}\n", &config.Store{Backend: "redis", URL: "redis://r", WaitAOF: true}, ""},
		{"literal password with reserved characters", "\tstore redis redis://r:6379 {\n\t\tpassword p@ss/w:rd\n\t}\n",
			&config.Store{Backend: "redis", URL: "redis://r:6379", Password: "p@ss/w:rd"}, ""},
		{"sentinel with every option", `	store redis sentinel mymaster 10.0.0.1:26379 10.0.0.2:26379 10.0.0.3:26379 {
		username dws
		password {env.DWS_REDIS_PASSWORD}
		sentinel_username watcher
		sentinel_password {file./etc/dws/sentinel_password}
		db 2
		tls {
			ca /etc/dws/redis-ca.pem
			cert /etc/dws/redis-client.pem
			key {file./etc/dws/redis-client.key}
			server_name redis.internal
		}
		prefix prod:dws_notify:
		wait_replicas 1 500ms
	}
`, &config.Store{Backend: "redis", Sentinel: &config.RedisSentinel{MasterName: "mymaster", Addresses: []string{"10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"},
			Username: "watcher", Password: "{file./etc/dws/sentinel_password}"}, Username: "dws", Password: "{env.DWS_REDIS_PASSWORD}", DB: 2,
			TLS:    &config.RedisTLS{CA: "/etc/dws/redis-ca.pem", Cert: "/etc/dws/redis-client.pem", Key: "{file./etc/dws/redis-client.key}", ServerName: "redis.internal"},
			Prefix: "prod:dws_notify:", WaitReplicas: 1, WaitReplicasTimeout: config.Duration(500 * time.Millisecond)}, ""},
		{"sentinel addresses from a placeholder", "\tstore redis sentinel {env.DWS_MASTER} {env.DWS_SENTINELS} {\n\t\twait_replicas 2\n\t\twait_aof\n\t}\n",
			&config.Store{Backend: "redis", Sentinel: &config.RedisSentinel{MasterName: "{env.DWS_MASTER}", Addresses: []string{"{env.DWS_SENTINELS}"}}, WaitReplicas: 2, WaitAOF: true}, ""},
		{"cluster with TLS on the system roots", "\tstore redis cluster redis-0.internal:6379 redis-1.internal:6379 {\n\t\tpassword {env.P}\n\t\ttls\n\t\tpool_size 4\n\t}\n",
			&config.Store{Backend: "redis", Cluster: &config.RedisCluster{Addresses: []string{"redis-0.internal:6379", "redis-1.internal:6379"}}, Password: "{env.P}", TLS: &config.RedisTLS{}, PoolSize: 4}, ""},
		{"rediss with a private CA", "\tstore redis rediss://redis.internal:6380/0 {\n\t\ttls {\n\t\t\tca {env.DWS_REDIS_CA}\n\t\t}\n\t}\n",
			&config.Store{Backend: "redis", URL: "rediss://redis.internal:6380/0", TLS: &config.RedisTLS{CA: "{env.DWS_REDIS_CA}"}}, ""},
		{"storage from a placeholder", "\tstorage {env.DWS_STORE_DIR}\n", nil, "{env.DWS_STORE_DIR}"},
		{"badger directory from a placeholder", "\tstore badger {file./etc/dws/store_dir}\n", &config.Store{Backend: "badger", Dir: "{file./etc/dws/store_dir}"}, ""},
		{"storage from a placeholder and a literal badger directory", "\tstorage {env.DWS_STORE_DIR}\n\tstore badger /var/lib/dws\n",
			&config.Store{Backend: "badger", Dir: "/var/lib/dws"}, "{env.DWS_STORE_DIR}"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := parseHandler(t, head+tc.lines+"\tretention 200h\n}")
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(h.Store)
			want, _ := json.Marshal(tc.store)
			if string(got) != string(want) || h.Storage != tc.storage {
				t.Errorf("store %s storage %q, want %s storage %q", got, h.Storage, want, tc.storage)
			}
			if h.Retention != config.Duration(200*time.Hour) {
				t.Error("the subdirective after store was not parsed")
			}
		})
	}
}

func TestUnmarshalCaddyfileStoreErrors(t *testing.T) {
	k := keys(t)
	head := "dws_notify {\n\tclient_id c1\n\tdws_public_key " + bareBase64(t, &k.dws.PublicKey) + "\n\tapi addPaymentMethod /a\n"
	url := "redis://:" + caddyfileSecret + "@127.0.0.1:6379/0"
	// Lines 2-4 are the valid head; the first added line is line 5.
	cases := []struct{ name, lines, want string }{
		{"no backend", "\tstore\n", "store needs a backend: store badger [<dir>], store redis <url>, store redis sentinel <master_name> <host:port>... or store redis cluster <host:port>..., at Testfile:5"},
		{"unknown backend", "\tstore memcached localhost\n", `store: unknown backend "memcached" (known: badger, redis), at Testfile:5`},
		{"misspelt backend", "\tstore reddis redis://127.0.0.1\n", `store: unknown backend "reddis"; did you mean redis?, at Testfile:5`},
		{"misspelt option", "\tstore redis " + url + " {\n\t\tprefx a:\n\t}\n", `store redis: unknown option "prefx"; did you mean prefix?, at Testfile:6`},
		{"badger with two directories", "\tstore badger /a /b\n", "store badger takes at most one argument, the directory, at Testfile:5"},
		{"badger with a block", "\tstore badger /a {\n\t\tprefix x\n\t}\n", "store badger takes no options block, at Testfile:5"},
		{"redis without URL", "\tstore redis\n", "store redis needs the server's URL, e.g. store redis redis://127.0.0.1:6379/0, or sentinel <master_name> <host:port>..., or cluster <host:port>..., at Testfile:5"},
		{"redis without URL but a block", "\tstore redis {\n\t\tprefix x\n\t}\n", "store redis needs the server's URL"},
		{"redis with two arguments", "\tstore redis " + url + " prefix\n", "store redis takes one argument, the URL; options go in a block, at Testfile:5"},
		{"store twice", "\tstore badger\n\tstore redis " + url + "\n", "store is already set at line 5, at Testfile:6"},
		{"unknown option", "\tstore redis " + url + " {\n\t\tdatabase 3\n\t}\n",
			`store redis: unknown option "database" (known: username, password, sentinel_username, sentinel_password, db, tls, prefix, dial_timeout, read_timeout, write_timeout, operation_timeout, pool_size, wait_aof, wait_replicas), at Testfile:6`},
		{"option twice", "\tstore redis " + url + " {\n\t\tprefix a:\n\t\tprefix b:\n\t}\n", "store redis: prefix is already set at line 6, at Testfile:7"},
		{"prefix without value", "\tstore redis " + url + " {\n\t\tprefix\n\t}\n", "store redis prefix needs a value, at Testfile:6"},
		{"prefix with two values", "\tstore redis " + url + " {\n\t\tprefix a b\n\t}\n", "store redis prefix takes one value, at Testfile:6"},
		{"password with two values", "\tstore redis redis://127.0.0.1 {\n\t\tpassword " + caddyfileSecret + " " + caddyfileSecret + "\n\t}\n", "store redis password takes one value, at Testfile:6"},
		{"bad timeout", "\tstore redis " + url + " {\n\t\tread_timeout soon\n\t}\n", `store redis read_timeout: "soon" is not a duration, at Testfile:6`},
		{"zero timeout", "\tstore redis " + url + " {\n\t\tdial_timeout 0s\n\t}\n", "store redis dial_timeout must be positive, at Testfile:6"},
		{"operation timeout too long", "\tstore redis " + url + " {\n\t\toperation_timeout 10s\n\t}\n",
			"dws_notify: store: operation_timeout 10s is longer than 5s, after which a store call is abandoned anyway, at Testfile:6"},
		{"pool size", "\tstore redis " + url + " {\n\t\tpool_size many\n\t}\n", `store redis pool_size: "many" is not a positive number, at Testfile:6`},
		{"pool size zero", "\tstore redis " + url + " {\n\t\tpool_size 0\n\t}\n", "store redis pool_size must be positive, at Testfile:6"},
		{"wait_aof timeout", "\tstore redis " + url + " {\n\t\twait_aof forever\n\t}\n", `store redis wait_aof: "forever" is not a duration, at Testfile:6`},
		{"wait_aof as long as a call", "\tstore redis " + url + " {\n\t\twait_aof 3s\n\t}\n",
			"dws_notify: store: the wait_aof timeout 3s must be shorter than operation_timeout 3s, at Testfile:6"},
		{"default wait_aof timeout as long as a call", "\tstore redis " + url + " {\n\t\twait_aof\n\t\toperation_timeout 1s\n\t}\n",
			"dws_notify: store: the wait_aof timeout 1s must be shorter than operation_timeout 1s, at Testfile:7"},
		{"URL scheme", "\tstore redis http://:" + caddyfileSecret + "@127.0.0.1:6379\n", `Redis URL scheme "http": want redis, rediss or unix, at Testfile:5`},
		{"URL port", "\tstore redis redis://:" + caddyfileSecret + "@127.0.0.1:port/0\n", `Redis URL (scheme "redis") does not parse: percent-encode special characters in the password (/ ? # @ % and others) or give the password separately, at Testfile:5`},
		{"URL database", "\tstore redis redis://:" + caddyfileSecret + "@127.0.0.1:6379/zero\n", "invalid database number"},
		{"URL option", "\tstore redis redis://:" + caddyfileSecret + "@127.0.0.1:6379/0?colour=blue\n", "colour"},
		{"URL error with a block", "\tstore redis http://:" + caddyfileSecret + "@127.0.0.1:6379 {\n\t\tprefix p:\n\t}\n", `Redis URL scheme "http": want redis, rediss or unix, at Testfile:5`},
		{"password makes no URL", "\tstore redis redis://127.0.0.1:port {\n\t\tpassword " + caddyfileSecret + "\n\t}\n", `Redis URL (scheme "redis") does not parse: percent-encode special characters in the password (/ ? # @ % and others) or give the password separately, at Testfile:5`},
		{"prefix too long", "\tstore redis " + url + " {\n\t\tprefix " + strings.Repeat("p", redisstore.MaxPrefixLen+1) + "\n\t}\n", "dws_notify: store: prefix longer than 256 bytes, at Testfile:6"},
		{"prefix too long with a placeholder URL", "\tstore redis {env.R} {\n\t\tprefix " + strings.Repeat("p", redisstore.MaxPrefixLen+1) + "\n\t}\n", "dws_notify: store: prefix longer than 256 bytes, at Testfile:6"},
		{"sentinel without addresses", "\tstore redis sentinel mymaster\n", "store redis sentinel needs the master name and at least one sentinel address: store redis sentinel <master_name> <host:port>..., at Testfile:5"},
		{"sentinel address without port", "\tstore redis sentinel mymaster 10.0.0.1:26379 10.0.0.2 {\n\t\tpassword " + caddyfileSecret + "\n\t}\n",
			`dws_notify: store: sentinel address "10.0.0.2": want host:port, at Testfile:5`},
		{"sentinel address twice", "\tstore redis sentinel m s:1 s:1\n", `dws_notify: store: sentinel address "s:1" is listed twice, at Testfile:5`},
		{"cluster without addresses", "\tstore redis cluster\n", "store redis cluster needs at least one node address: store redis cluster <host:port>..., at Testfile:5"},
		{"cluster port", "\tstore redis cluster c:6379 c:none\n", `dws_notify: store: cluster address "c:none": the port is not a number from 1 to 65535, at Testfile:5`},
		{"db with a URL", "\tstore redis " + url + " {\n\t\tprefix p:\n\t\tdb 3\n\t}\n",
			"dws_notify: store: db applies to sentinel only (with url the database is in the URL; a cluster has database 0 only), at Testfile:7"},
		{"db with a cluster", "\tstore redis cluster c:1 {\n\t\tdb 1\n\t}\n", "dws_notify: store: db applies to sentinel only"},
		{"pool size twice on a line", "\tstore redis " + url + " {\n\t\tpool_size 4 8\n\t}\n", "wrong argument count or unexpected line ending after '8', at Testfile:6"},
		{"db with two values", "\tstore redis sentinel m s:1 {\n\t\tdb 1 2\n\t}\n", "wrong argument count or unexpected line ending after '2', at Testfile:6"},
		{"db not a number", "\tstore redis sentinel m s:1 {\n\t\tdb two\n\t}\n", `store redis db: "two" is not a positive number, at Testfile:6`},
		{"sentinel_password with a URL", "\tstore redis " + url + " {\n\t\tsentinel_password " + caddyfileSecret + "\n\t}\n",
			"store redis: sentinel_password applies to store redis sentinel only, at Testfile:6"},
		{"sentinel_password twice", "\tstore redis sentinel m s:1 {\n\t\tsentinel_password " + caddyfileSecret + "\n\t\tsentinel_password x\n\t}\n",
			"store redis: sentinel_password is already set at line 6, at Testfile:7"},
		{"wait_aof with a cluster", "\tstore redis cluster c:1 {\n\t\tprefix p:\n\t\twait_aof 1s\n\t}\n",
			"dws_notify: store: wait_aof needs url or sentinel: a cluster has no wait for the AOF fsync of a slot's primary, at Testfile:7"},
		{"wait_replicas with a cluster", "\tstore redis cluster c:1 {\n\t\twait_replicas 1\n\t}\n",
			"dws_notify: store: wait_replicas needs url or sentinel: a cluster has no wait for a slot's replicas, at Testfile:6"},
		{"wait_replicas zero", "\tstore redis " + url + " {\n\t\twait_replicas 0\n\t}\n", `store redis wait_replicas: "0" is not a positive number, at Testfile:6`},
		{"wait_replicas without a number", "\tstore redis " + url + " {\n\t\twait_replicas\n\t}\n", "store redis wait_replicas needs a number of replicas, at Testfile:6"},
		{"wait_replicas timeout", "\tstore redis " + url + " {\n\t\twait_replicas 1 4s\n\t}\n",
			"dws_notify: store: the wait_replicas timeout 4s must be shorter than operation_timeout 3s, at Testfile:6"},
		{"wait_replicas three arguments", "\tstore redis " + url + " {\n\t\twait_replicas 1 1s 2s\n\t}\n", "wrong argument count or unexpected line ending after '2s', at Testfile:6"},
		{"tls with redis://", "\tstore redis " + url + " {\n\t\tprefix p:\n\t\ttls {\n\t\t\tca /etc/ca.pem\n\t\t}\n\t}\n",
			"dws_notify: store: tls needs a rediss:// URL (the URL's scheme turns TLS on), at Testfile:7"},
		{"tls cert without key", "\tstore redis sentinel m s:1 {\n\t\ttls {\n\t\t\tserver_name r\n\t\t\tcert /etc/c.pem\n\t\t}\n\t}\n",
			"dws_notify: store: tls cert needs key, the client certificate's private key, at Testfile:8"},
		{"tls key without cert", "\tstore redis cluster c:1 {\n\t\ttls {\n\t\t\tkey " + caddyfileSecret + "\n\t\t}\n\t}\n",
			"dws_notify: store: tls key needs cert, the client certificate, at Testfile:7"},
		{"tls key with two values", "\tstore redis cluster c:1 {\n\t\ttls {\n\t\t\tkey " + caddyfileSecret + " " + caddyfileSecret + "\n\t\t}\n\t}\n",
			"store redis tls key takes one value, at Testfile:7"},
		{"tls misspelt option", "\tstore redis cluster c:1 {\n\t\ttls {\n\t\t\tserver_nme x\n\t\t}\n\t}\n",
			`store redis tls: unknown option "server_nme"; did you mean server_name?, at Testfile:7`},
		{"tls unknown option", "\tstore redis cluster c:1 {\n\t\ttls {\n\t\t\tinsecure_skip_verify\n\t\t}\n\t}\n",
			`store redis tls: unknown option "insecure_skip_verify" (known: ca, cert, key, server_name), at Testfile:7`},
		{"tls option twice", "\tstore redis cluster c:1 {\n\t\ttls {\n\t\t\tca /a\n\t\t\tca /b\n\t\t}\n\t}\n",
			"store redis tls: ca is already set at line 7, at Testfile:8"},
		{"tls with an argument", "\tstore redis cluster c:1 {\n\t\ttls on\n\t}\n", "store redis tls takes no arguments; its settings go in a block, at Testfile:6"},
		{"tls twice", "\tstore redis cluster c:1 {\n\t\ttls\n\t\ttls\n\t}\n", "store redis: tls is already set at line 6, at Testfile:7"},
		{"storage then store redis", "\tstorage /var/lib/dws\n\tstore redis " + url + "\n",
			"dws_notify: storage /var/lib/dws is the directory of the Badger store, but store.backend is redis: remove storage, at Testfile:5"},
		{"store redis then storage", "\tstore redis " + url + " {\n\t\tprefix p:\n\t}\n\tstorage /var/lib/dws\n",
			"dws_notify: storage /var/lib/dws is the directory of the Badger store, but store.backend is redis: remove storage, at Testfile:8"},
		{"storage and store badger elsewhere", "\tstorage /var/lib/dws\n\tstore badger /srv/dws\n",
			"dws_notify: storage /var/lib/dws and store.dir /srv/dws name different directories: storage is the short form of store badger <dir>; give one, at Testfile:5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseHandler(t, head+tc.lines+"}")
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.lines)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\ndoes not contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "Testfile:") {
				t.Errorf("error %q has no file and line", err)
			}
			if strings.Contains(err.Error(), caddyfileSecret) {
				t.Errorf("error shows the password: %q", err)
			}
		})
	}
}

// The Caddyfile adapts to the JSON the documentation shows, and that JSON
// decodes back (strictly, as Caddy decodes module configs) into the same
// handler: for each form of store redis.
func TestStoreJSONRoundTrip(t *testing.T) {
	k := keys(t)
	cases := []struct {
		name, store string
		want        *config.Store
	}{
		{"url", `store redis {env.DWS_REDIS_URL} {
			password {env.DWS_REDIS_PASSWORD}
			prefix prod:dws_notify:
			operation_timeout 2s
			pool_size 20
			wait_aof 500ms
		}`, &config.Store{Backend: "redis", URL: "{env.DWS_REDIS_URL}", Password: "{env.DWS_REDIS_PASSWORD}", Prefix: "prod:dws_notify:",
			OperationTimeout: config.Duration(2 * time.Second), PoolSize: 20, WaitAOF: true, WaitAOFTimeout: config.Duration(500 * time.Millisecond)}},
		{"sentinel", `store redis sentinel mymaster 10.0.0.1:26379 10.0.0.2:26379 10.0.0.3:26379 {
			username dws
			password {env.DWS_REDIS_PASSWORD}
			sentinel_password {env.DWS_SENTINEL_PASSWORD}
			tls {
				ca /etc/dws/redis-ca.pem
				cert /etc/dws/redis-client.pem
				key {file./etc/dws/redis-client.key}
			}
			wait_replicas 1 500ms
		}`, &config.Store{Backend: "redis", Sentinel: &config.RedisSentinel{MasterName: "mymaster", Addresses: []string{"10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"}, Password: "{env.DWS_SENTINEL_PASSWORD}"},
			Username: "dws", Password: "{env.DWS_REDIS_PASSWORD}", TLS: &config.RedisTLS{CA: "/etc/dws/redis-ca.pem", Cert: "/etc/dws/redis-client.pem", Key: "{file./etc/dws/redis-client.key}"},
			WaitReplicas: 1, WaitReplicasTimeout: config.Duration(500 * time.Millisecond)}},
		{"cluster", `store redis cluster redis-0.internal:6379 redis-1.internal:6379 redis-2.internal:6379 {
			password {env.DWS_REDIS_PASSWORD}
			tls
		}`, &config.Store{Backend: "redis", Cluster: &config.RedisCluster{Addresses: []string{"redis-0.internal:6379", "redis-1.internal:6379", "redis-2.internal:6379"}},
			Password: "{env.DWS_REDIS_PASSWORD}", TLS: &config.RedisTLS{}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := `{
	admin off
}
:8080 {
	dws_notify {
		client_id 2188120000000000
		dws_public_key {file.` + filepath.Join(k.dir, "dws_public.pem") + `}
		api addPaymentMethod
		` + tc.store + `
	}
	reverse_proxy 127.0.0.1:8081
}
`
			out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
			if err != nil {
				t.Fatal(err)
			}
			var cfg struct {
				Apps struct {
					HTTP struct {
						Servers map[string]struct {
							Routes []struct {
								Handle []json.RawMessage `json:"handle"`
							} `json:"routes"`
						} `json:"servers"`
					} `json:"http"`
				} `json:"apps"`
			}
			if err := json.Unmarshal(out, &cfg); err != nil {
				t.Fatal(err)
			}
			raw := cfg.Apps.HTTP.Servers["srv0"].Routes[0].Handle[0]
			var h Handler
			if err := caddy.StrictUnmarshalJSON(raw, &struct {
				*Handler
				Name string `json:"handler"`
			}{Handler: &h}); err != nil {
				t.Fatalf("decoding %s: %v", raw, err)
			}
			got, _ := json.Marshal(h.Store)
			exp, _ := json.Marshal(tc.want)
			if string(got) != string(exp) {
				t.Fatalf("adapted store\n%s\nwant\n%s", got, exp)
			}
			// And back: the marshalled handler holds the same store object.
			again, _ := json.Marshal(&h)
			if !strings.Contains(string(again), `"store":`+string(exp)) {
				t.Errorf("re-marshalled handler %s lacks %s", again, exp)
			}
			if err := h.Check(); err != nil {
				t.Errorf("the decoded handler does not pass Check: %v", err)
			}
		})
	}

	// Unknown fields are refused, as Caddy decodes strictly.
	for _, bad := range []string{
		`{"store":{"backend":"redis","url":"redis://r","database":3}}`,
		`{"store":{"backend":"redis","sentinel":{"master_name":"m","addresses":["s:1"],"db":3}}}`,
		`{"store":{"backend":"redis","url":"rediss://r","tls":{"insecure_skip_verify":true}}}`,
	} {
		if err := caddy.StrictUnmarshalJSON([]byte(bad), new(Handler)); err == nil || !strings.Contains(err.Error(), "unknown field") {
			t.Errorf("unknown store field in %s: %v", bad, err)
		}
	}
}

// The Badger directory in the Caddyfile: empty is refused by the parser
// (most likely an empty variable pasted in), relative by Check; both at
// the line of the setting.
func TestCaddyfileStorageErrors(t *testing.T) {
	k := keys(t)
	head := "dws_notify {\n\tclient_id c1\n\tdws_public_key " + bareBase64(t, &k.dws.PublicKey) + "\n\tapi addPaymentMethod /a\n"
	// Lines 2-4 are the valid head; the first added line is line 5.
	cases := []struct{ name, lines, want, at string }{
		{"empty storage", "\tstorage \"\"\n", "storage must not be empty: give the store's directory as an absolute path, or leave storage out for the default", "Testfile:5"},
		{"empty storage after a setting", "\tretention 200h\n\tstorage \"\"\n", "storage must not be empty", "Testfile:6"},
		{"empty badger directory", "\tstore badger \"\"\n", "store badger: the directory must not be empty: give it as an absolute path, or write store badger alone for the default", "Testfile:5"},
		{"relative storage", "\tretention 200h\n\tstorage data/dws\n",
			"dws_notify: storage data/dws is a relative path: give the store's directory as an absolute path", "Testfile:6"},
		{"relative badger directory", "\tretention 200h\n\tstore badger dws\n", "dws_notify: store: dir dws is a relative path", "Testfile:6"},
		{"empty storage from an unset Caddyfile variable", "\tstorage \"{$DWS_TEST_UNSET_CADDYFILE_DIR}\"\n", "storage must not be empty", "Testfile:5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseHandler(t, head+tc.lines+"}")
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.lines)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasSuffix(err.Error(), ", at "+tc.at) {
				t.Fatalf("error %q\nwant %q, at %s", err, tc.want, tc.at)
			}
		})
	}
}
