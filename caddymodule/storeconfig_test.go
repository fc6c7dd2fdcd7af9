package caddymodule

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/dwsnotify/dws_notify/idempotency/redisstore"
)

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
	two := caddy.Duration(2 * time.Second)
	cases := []struct {
		name    string
		lines   string
		store   *StoreConfig
		storage string
	}{
		{"default", "", nil, ""},
		{"storage", "\tstorage /var/lib/dws\n", nil, "/var/lib/dws"},
		{"badger without a directory", "\tstore badger\n", &StoreConfig{Backend: "badger"}, ""},
		{"badger with a directory", "\tstore badger /var/lib/dws\n", &StoreConfig{Backend: "badger", Dir: "/var/lib/dws"}, ""},
		{"badger and storage, the same directory", "\tstorage /var/lib/dws\n\tstore badger /var/lib/dws/\n",
			&StoreConfig{Backend: "badger", Dir: "/var/lib/dws/"}, "/var/lib/dws"},
		{"badger without a directory and storage", "\tstore badger\n\tstorage /var/lib/dws\n",
			&StoreConfig{Backend: "badger"}, "/var/lib/dws"},
		{"redis URL", "\tstore redis redis://127.0.0.1:6379/2\n", &StoreConfig{Backend: "redis", URL: "redis://127.0.0.1:6379/2"}, ""},
		{"redis URL with password", "\tstore redis redis://:" + caddyfileSecret + "@10.0.0.5/0\n",
			&StoreConfig{Backend: "redis", URL: "redis://:" + caddyfileSecret + "@10.0.0.5/0"}, ""},
		{"rediss with user", "\tstore redis rediss://dws:pw@redis.internal:6380/1\n",
			&StoreConfig{Backend: "redis", URL: "rediss://dws:pw@redis.internal:6380/1"}, ""},
		{"unix socket", "\tstore redis unix:///run/redis/redis.sock?db=3\n",
			&StoreConfig{Backend: "redis", URL: "unix:///run/redis/redis.sock?db=3"}, ""},
		{"env placeholder", "\tstore redis {env.DWS_REDIS_URL}\n", &StoreConfig{Backend: "redis", URL: "{env.DWS_REDIS_URL}"}, ""},
		{"empty block", "\tstore redis redis://r:6379 {\n\t}\n", &StoreConfig{Backend: "redis", URL: "redis://r:6379"}, ""},
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
`, &StoreConfig{Backend: "redis", URL: "redis://redis.internal:6379/4", Password: "{file./etc/dws/redis_password}",
			Prefix: "prod:dws_notify:", DialTimeout: two, ReadTimeout: caddy.Duration(500 * time.Millisecond),
			WriteTimeout: caddy.Duration(500 * time.Millisecond), OperationTimeout: caddy.Duration(4 * time.Second),
			PoolSize: 32, WaitAOF: true, WaitAOFTimeout: two}, ""},
		{"wait_aof without a timeout", "\tstore redis redis://r {\n\t\twait_aof\n\t}\n", &StoreConfig{Backend: "redis", URL: "redis://r", WaitAOF: true}, ""},
		{"literal password with reserved characters", "\tstore redis redis://r:6379 {\n\t\tpassword p@ss/w:rd\n\t}\n",
			&StoreConfig{Backend: "redis", URL: "redis://r:6379", Password: "p@ss/w:rd"}, ""},
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
			if h.Retention != caddy.Duration(200*time.Hour) {
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
		{"no backend", "\tstore\n", "store needs a backend: store badger [<dir>] or store redis <url>, at Testfile:5"},
		{"unknown backend", "\tstore memcached localhost\n", `store: unknown backend "memcached": want badger or redis, at Testfile:5`},
		{"badger with two directories", "\tstore badger /a /b\n", "store badger takes at most one argument, the directory, at Testfile:5"},
		{"badger with a block", "\tstore badger /a {\n\t\tprefix x\n\t}\n", "store badger takes no options block, at Testfile:5"},
		{"redis without URL", "\tstore redis\n", "store redis needs the server's URL, e.g. store redis redis://127.0.0.1:6379/0, at Testfile:5"},
		{"redis without URL but a block", "\tstore redis {\n\t\tprefix x\n\t}\n", "store redis needs the server's URL"},
		{"redis with two arguments", "\tstore redis " + url + " prefix\n", "store redis takes one argument, the URL; options go in a block, at Testfile:5"},
		{"store twice", "\tstore badger\n\tstore redis " + url + "\n", "store is already set at line 5, at Testfile:6"},
		{"unknown option", "\tstore redis " + url + " {\n\t\tdatabase 3\n\t}\n",
			`store redis: unknown option "database" (known: password, prefix, dial_timeout, read_timeout, write_timeout, operation_timeout, pool_size, wait_aof), at Testfile:6`},
		{"option twice", "\tstore redis " + url + " {\n\t\tprefix a:\n\t\tprefix b:\n\t}\n", "store redis: prefix is already set at line 6, at Testfile:7"},
		{"prefix without value", "\tstore redis " + url + " {\n\t\tprefix\n\t}\n", "store redis prefix needs a value, at Testfile:6"},
		{"prefix with two values", "\tstore redis " + url + " {\n\t\tprefix a b\n\t}\n", "store redis prefix takes one value, at Testfile:6"},
		{"password with two values", "\tstore redis redis://127.0.0.1 {\n\t\tpassword " + caddyfileSecret + " " + caddyfileSecret + "\n\t}\n", "store redis password takes one value, at Testfile:6"},
		{"bad timeout", "\tstore redis " + url + " {\n\t\tread_timeout soon\n\t}\n", `store redis read_timeout: "soon" is not a duration, at Testfile:6`},
		{"zero timeout", "\tstore redis " + url + " {\n\t\tdial_timeout 0s\n\t}\n", "store redis dial_timeout must be positive, at Testfile:6"},
		{"operation timeout too long", "\tstore redis " + url + " {\n\t\toperation_timeout 10s\n\t}\n",
			"store redis: operation_timeout 10s is longer than 5s, after which a store call is abandoned anyway, at Testfile:5"},
		{"pool size", "\tstore redis " + url + " {\n\t\tpool_size many\n\t}\n", `store redis pool_size: "many" is not a positive number, at Testfile:6`},
		{"pool size zero", "\tstore redis " + url + " {\n\t\tpool_size 0\n\t}\n", `store redis pool_size: "0" is not a positive number, at Testfile:6`},
		{"wait_aof timeout", "\tstore redis " + url + " {\n\t\twait_aof forever\n\t}\n", `store redis wait_aof: "forever" is not a positive duration, at Testfile:6`},
		{"wait_aof as long as a call", "\tstore redis " + url + " {\n\t\twait_aof 3s\n\t}\n",
			"store redis: the wait_aof timeout 3s must be shorter than operation_timeout 3s, at Testfile:5"},
		{"URL scheme", "\tstore redis http://:" + caddyfileSecret + "@127.0.0.1:6379\n", `Redis URL scheme "http": want redis, rediss or unix, at Testfile:5`},
		{"URL port", "\tstore redis redis://:" + caddyfileSecret + "@127.0.0.1:port/0\n", `Redis URL (scheme "redis") does not parse: percent-encode special characters in the password (/ ? # @ % and others) or give the password separately, at Testfile:5`},
		{"URL database", "\tstore redis redis://:" + caddyfileSecret + "@127.0.0.1:6379/zero\n", "invalid database number"},
		{"URL option", "\tstore redis redis://:" + caddyfileSecret + "@127.0.0.1:6379/0?colour=blue\n", "colour"},
		{"URL error with a block", "\tstore redis http://:" + caddyfileSecret + "@127.0.0.1:6379 {\n\t\tprefix p:\n\t}\n", `Redis URL scheme "http": want redis, rediss or unix, at Testfile:5`},
		{"password makes no URL", "\tstore redis redis://127.0.0.1:port {\n\t\tpassword " + caddyfileSecret + "\n\t}\n", `Redis URL (scheme "redis") does not parse: percent-encode special characters in the password (/ ? # @ % and others) or give the password separately, at Testfile:5`},
		{"prefix too long", "\tstore redis " + url + " {\n\t\tprefix " + strings.Repeat("p", redisstore.MaxPrefixLen+1) + "\n\t}\n", "prefix longer than 256 bytes, at Testfile:5"},
		{"prefix too long with a placeholder URL", "\tstore redis {env.R} {\n\t\tprefix " + strings.Repeat("p", redisstore.MaxPrefixLen+1) + "\n\t}\n", "store redis: prefix longer than 256 bytes, at Testfile:5"},
		{"storage then store redis", "\tstorage /var/lib/dws\n\tstore redis " + url + "\n",
			"dws_notify: storage /var/lib/dws (line 5) is the directory of the Badger store, but store redis (line 6) uses Redis: remove storage, at Testfile:6"},
		{"store redis then storage", "\tstore redis " + url + " {\n\t\tprefix p:\n\t}\n\tstorage /var/lib/dws\n",
			"dws_notify: storage /var/lib/dws (line 8) is the directory of the Badger store, but store redis (line 5) uses Redis: remove storage, at Testfile:8"},
		{"storage and store badger elsewhere", "\tstorage /var/lib/dws\n\tstore badger /srv/dws\n",
			"dws_notify: storage /var/lib/dws and store badger /srv/dws name different directories (storage is at line 5): storage is the short form of store badger <dir>; give one, at Testfile:6"},
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
// handler.
func TestStoreJSONRoundTrip(t *testing.T) {
	k := keys(t)
	src := `{
	admin off
}
:8080 {
	dws_notify {
		client_id 2188120000000000
		dws_public_key {file.` + filepath.Join(k.dir, "dws_public.pem") + `}
		api addPaymentMethod
		store redis {env.DWS_REDIS_URL} {
			password {env.DWS_REDIS_PASSWORD}
			prefix prod:dws_notify:
			operation_timeout 2s
			pool_size 20
			wait_aof 500ms
		}
	}
	reverse_proxy 127.0.0.1:8081
}
`
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatal(err)
	}
	want := &StoreConfig{Backend: "redis", URL: "{env.DWS_REDIS_URL}", Password: "{env.DWS_REDIS_PASSWORD}", Prefix: "prod:dws_notify:",
		OperationTimeout: caddy.Duration(2 * time.Second), PoolSize: 20, WaitAOF: true, WaitAOFTimeout: caddy.Duration(500 * time.Millisecond)}
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
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Fatalf("adapted store\n%s\nwant\n%s", got, exp)
	}
	// And back: the marshalled handler holds the same store object.
	again, _ := json.Marshal(&h)
	if !strings.Contains(string(again), `"store":`+string(exp)) {
		t.Errorf("re-marshalled handler %s lacks %s", again, exp)
	}

	// Unknown fields are refused, as Caddy decodes strictly.
	if err := caddy.StrictUnmarshalJSON([]byte(`{"store":{"backend":"redis","url":"redis://r","database":3}}`), new(Handler)); err == nil || !strings.Contains(err.Error(), "database") {
		t.Errorf("unknown store field: %v", err)
	}
}

// Provision checks the store settings and resolves their placeholders;
// nothing that Provision says shows the password.
func TestProvisionStoreErrors(t *testing.T) {
	const secret = "provision-secret-5e2"
	t.Setenv("DWS_TEST_REDIS_URL", "redis://:"+secret+"@127.0.0.1:6379/abc")
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	redis := func(c StoreConfig) *StoreConfig { c.Backend = "redis"; return &c }
	cases := []struct {
		name    string
		store   *StoreConfig
		storage string
		want    string
	}{
		{"no backend", &StoreConfig{URL: "redis://r"}, "", "store.backend is required: badger or redis"},
		{"unknown backend", &StoreConfig{Backend: "etcd"}, "", `store.backend "etcd": want badger or redis`},
		{"redis options with badger", &StoreConfig{Backend: "badger", Prefix: "p:", WaitAOF: true}, "", "store: prefix, wait_aof applies to the redis backend only"},
		{"dir with redis", redis(StoreConfig{URL: "redis://r", Dir: "/a"}), "", "store: dir applies to the badger backend only"},
		{"storage with redis", redis(StoreConfig{URL: "redis://r"}), "/var/lib/dws", "storage /var/lib/dws is the directory of the Badger store, but store.backend is redis: remove storage"},
		{"storage and dir differ", &StoreConfig{Backend: "badger", Dir: "/srv/a"}, "/srv/b", "storage /srv/b and store.dir /srv/a name different directories"},
		{"badger dir is a file", &StoreConfig{Backend: "badger", Dir: file}, "", "storage"},
		{"no URL", redis(StoreConfig{}), "", "store: url is required with backend redis"},
		{"unset placeholder", redis(StoreConfig{URL: "{env.DWS_TEST_UNSET_REDIS_URL}"}), "", "store url: placeholder {env.DWS_TEST_UNSET_REDIS_URL} resolves to nothing"},
		{"unset password placeholder", redis(StoreConfig{URL: "redis://r", Password: "{env.DWS_TEST_UNSET_REDIS_PASSWORD}"}), "", "store password: placeholder {env.DWS_TEST_UNSET_REDIS_PASSWORD} resolves to nothing"},
		{"password placeholder inside braces", redis(StoreConfig{URL: "redis://r", Password: "{" + secret + "}{file./nonexistent/dws-redis-password}"}), "", "store password: placeholder {file./nonexistent/dws-redis-password} resolves to nothing"},
		{"bad URL from the environment", redis(StoreConfig{URL: "{env.DWS_TEST_REDIS_URL}"}), "", "invalid database number"},
		{"bad URL and a password", redis(StoreConfig{URL: "redis://:" + secret + "@host:port/0", Password: secret}), "", "does not parse"},
		{"negative timeout", redis(StoreConfig{URL: "redis://r", ReadTimeout: -1}), "", "read_timeout must be positive"},
		{"wait_aof_timeout alone", redis(StoreConfig{URL: "redis://r", WaitAOFTimeout: caddy.Duration(time.Second)}), "", "wait_aof_timeout is set but wait_aof is not"},
		{"operation timeout", redis(StoreConfig{URL: "redis://r", OperationTimeout: caddy.Duration(6 * time.Second)}), "", "operation_timeout 6s is longer than 5s"},
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
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

// A password may contain braces: only {env.*} and {file.*} are
// placeholders there, the rest is kept as written and never quoted.
func TestRedisPasswordWithBraces(t *testing.T) {
	t.Setenv("DWS_TEST_REDIS_PW_PART", "fromenv")
	repl := caddy.NewReplacer()
	for in, want := range map[string]string{
		"Ab{cdSECRET}ef":                       "Ab{cdSECRET}ef",
		"{x}{env.DWS_TEST_REDIS_PW_PART}{y":    "{x}fromenv{y",
		"}{{env.DWS_TEST_REDIS_PW_PART}}":      "}{fromenv}",
		"{system.hostname}":                    "{system.hostname}",
		"plain":                                "plain",
		"{env.DWS_TEST_REDIS_PW_PART}/{file.}": "",
	} {
		got, err := resolvePlaceholders(repl, in)
		if want == "" {
			if err == nil || strings.Contains(err.Error(), "fromenv") {
				t.Errorf("resolvePlaceholders(%q) = %q, %v; want an error naming only the placeholder", in, got, err)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("resolvePlaceholders(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	spec, err := redisSpec(&StoreConfig{Backend: BackendRedis, URL: "redis://127.0.0.1:1/0", Password: "Ab{cdSECRET}ef"})
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
	a.Storage, a.Store = dir, &StoreConfig{Backend: "badger", Dir: dir + "/"}
	b.Storage, b.Store = "", &StoreConfig{Backend: "badger", Dir: dir}
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
