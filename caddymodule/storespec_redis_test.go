package caddymodule

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/dwsnotify/dws_notify/adminapi"
	"github.com/dwsnotify/dws_notify/config"
	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/guard"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore"
	"github.com/dwsnotify/dws_notify/idempotency/redisstore/redistest"
)

// These tests run the handler on a real redis-server (redistest: skipped
// without one unless DWS_REQUIRE_REDIS=1). No log line, error or admin
// answer may show redisSecret.
const redisSecret = "redis-secret-9a7c"

// redisStoreDirective is a store redis subdirective for srv's database 0
// with prefix, the URL and password given as {env.*} placeholders (set
// for the test).
func redisStoreDirective(t *testing.T, srv *redistest.Server, prefix string, options ...string) string {
	t.Setenv("DWS_TEST_REDIS_URL", "redis://"+srv.Addr()+"/0")
	t.Setenv("DWS_TEST_REDIS_PASSWORD", redisSecret)
	var b strings.Builder
	b.WriteString("store redis {env.DWS_TEST_REDIS_URL} {\n\t\t\tpassword {env.DWS_TEST_REDIS_PASSWORD}\n\t\t\tprefix " + prefix + "\n")
	for _, o := range options {
		b.WriteString("\t\t\t" + o + "\n")
	}
	b.WriteString("\t\t}")
	return b.String()
}

// redisName is how the store on srv's database 0 with prefix is named in
// logs and the admin API.
func redisName(srv *redistest.Server, prefix string) string {
	return fmt.Sprintf("redis %s db 0 prefix %s", srv.Addr(), prefix)
}

// pooledByName returns the pooled stores named name and their pool keys.
func pooledByName(name string) (stores []*sharedStore, keys []string) {
	storePool.Range(func(k, v any) bool {
		if s, ok := v.(*sharedStore); ok && s.name == name {
			stores = append(stores, s)
			keys = append(keys, k.(string))
		}
		return true
	})
	return stores, keys
}

// redisHandler is baseHandler on Redis instead of Badger.
func redisHandler(t *testing.T, srv *redistest.Server, prefix string) *Handler {
	h := baseHandler(t)
	h.Storage = ""
	h.Store = &config.Store{Backend: config.BackendRedis, URL: srv.URL(0), Prefix: prefix}
	return h
}

// gatewayClients returns the ids of the connections the gateway's stores
// hold on srv (client name dws_notify).
func gatewayClients(t *testing.T, srv *redistest.Server) map[string]bool {
	t.Helper()
	list, err := srv.Client(0).ClientList(t.Context()).Result()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for line := range strings.Lines(list) {
		if !strings.Contains(line, " name="+redisstore.DefaultClientName+" ") {
			continue
		}
		id, _, _ := strings.Cut(strings.TrimPrefix(line, "id="), " ")
		ids[id] = true
	}
	return ids
}

// loops counts the running opening loops of pooled stores (the loop's
// own frame, not the helper goroutine it starts).
func loops() int { return goroutinesWith("guard.(*Store).openLoop(") }

// goroutinesWith counts the goroutines whose stack mentions sub.
func goroutinesWith(sub string) int {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, sub) {
			n++
		}
	}
	return n
}

// TestRedisGateway: the in-process Caddy with store redis answers S,
// replays duplicates, refuses conflicts, keeps its records in Redis under
// the prefix, serves the admin API from Redis, answers U while Redis is
// stopped and S again once it is back, without a reload; no log line
// shows the password, and go-redis's own lines go to Caddy's log.
func TestRedisGateway(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{Password: redisSecret, AppendOnly: true})
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	const prefix = "gw:"
	b := newBackend(t)
	g := startGateway(t, b, gatewayConfig{
		store:   redisStoreDirective(t, srv, prefix),
		globals: "log {\n\t\toutput file " + logFile + "\n\t\tformat json\n\t\tlevel DEBUG\n\t}",
	})
	name := redisName(srv, prefix)
	first := g.notice(addPath, addSample(t, "redis-1"))
	second := g.notice(addPath, addSample(t, "redis-2"))

	phase(t, "notifications are deduplicated through Redis", func(t *testing.T) {
		g.send(first).expect(t, http.StatusOK, "S", "SUCCESS")
		first.time = "" // DWS's resend, signed afresh
		g.send(first).expect(t, http.StatusOK, "S", "SUCCESS")
		changed := bytes.Replace(addSample(t, "redis-1"), []byte(`"300005538591"`), []byte(`"300005538592"`), 1)
		g.send(g.notice(addPath, changed)).expect(t, http.StatusOK, "F", "REPEAT_REQ_INCONSISTENT")
		b.status(http.StatusConflict)
		g.send(g.notice(addPath, addSample(t, "redis-biz"))).expect(t, http.StatusOK, "S", "SUCCESS")
		b.status(http.StatusOK)
		if got := len(b.hits()); got != 2 {
			t.Fatalf("backend got %d requests, want 2 (redis-1 once, redis-biz once)", got)
		}
	})

	// The records are in Redis, under the prefix, where another gateway
	// (here a store opened directly) finds them.
	phase(t, "the records are in Redis under the prefix", func(t *testing.T) {
		direct, err := redisstore.Open(t.Context(), redisstore.Options{URL: srv.URL(0), Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		defer direct.Close()
		rec, found, err := direct.Get(t.Context(), keyOf("addPaymentMethod", "redis-1"))
		if err != nil || !found || rec.State != idempotency.StateDone || rec.Answer.Outcome != idempotency.OutcomeAccepted || rec.Answer.BackendStatus != http.StatusOK {
			t.Fatalf("record of redis-1 in Redis: %+v found=%v err=%v", rec, found, err)
		}
		if n, err := srv.Client(0).Exists(t.Context(), prefix+"r:"+testClientID+":addPaymentMethod:redis-1").Result(); err != nil || n != 1 {
			t.Fatalf("key %sr:%s:addPaymentMethod:redis-1: exists %d (%v)", prefix, testClientID, n, err)
		}
	})

	// The admin API reads the same records.
	phase(t, "the admin API and inspect read them", func(t *testing.T) {
		var ans adminapi.RecordsAnswer
		adminJSON(t, "/dws_notify/record?request_id=redis-1", 200, &ans)
		if len(ans.Records) != 1 || ans.Records[0].Storage != name || ans.Records[0].Outcome != "accepted" {
			t.Fatalf("admin record: %+v, want one accepted record in %s", ans.Records, name)
		}
		var stats adminapi.StatsAnswer
		adminJSON(t, "/dws_notify/stats", 200, &stats)
		if len(stats.Stores) != 1 || stats.Stores[0].Storage != name || stats.Total != (adminapi.OutcomeCounts{Accepted: 1, BusinessRejected: 1, Total: 2}) {
			t.Fatalf("admin stats: %+v", stats)
		}
		var fu adminapi.FollowUpAnswer
		adminJSON(t, "/dws_notify/follow_up", 200, &fu)
		if fu.Total != 1 || fu.Records[0].RequestID != "redis-biz" || fu.Records[0].BackendStatus != http.StatusConflict {
			t.Fatalf("admin follow_up: %+v", fu)
		}
		out, err := runCLI(t, "inspect", "--request-id", "redis-1", "--address", adminAddress)
		if err != nil || !strings.Contains(out, "  storage      "+name+"\n") {
			t.Fatalf("inspect: %v\n%s", err, out)
		}
	})

	// Redis stopped: U for new notifications and resends alike; nothing
	// is forwarded without a claim; the admin API says why it cannot
	// answer.
	phase(t, "Redis stopped: U, nothing forwarded", func(t *testing.T) {
		srv.Stop()
		g.send(second).expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
		first.time = ""
		g.send(first).expect(t, http.StatusOK, "U", "UNKNOWN_EXCEPTION")
		if got := len(b.hits()); got != 2 {
			t.Fatalf("backend got %d requests while Redis was down, want none", got-2)
		}
		msg := adminError(t, "/dws_notify/stats", http.StatusServiceUnavailable)
		if !strings.Contains(msg, "the dws_notify store at "+name+" is not reachable") || strings.Contains(msg, redisSecret) {
			t.Errorf("admin stats while Redis is down: %q", msg)
		}
	})

	// Redis back (same port, its append-only file): served again without
	// a reload; the record from before the outage is still replayed.
	phase(t, "Redis back: served again without a reload", func(t *testing.T) {
		srv.Restart()
		var uAfter int
		deadline := time.Now().Add(10 * time.Second)
		for {
			second.time = ""
			a := g.send(second)
			if a.result.ResultStatus == "S" {
				break
			}
			uAfter++
			if time.Now().After(deadline) {
				t.Fatalf("still %s %s 10s after Redis came back", a.result.ResultStatus, a.result.ResultCode)
			}
			time.Sleep(100 * time.Millisecond)
		}
		first.time = ""
		g.send(first).expect(t, http.StatusOK, "S", "SUCCESS")
		if got := len(b.hits()); got != 3 {
			t.Fatalf("backend got %d requests in all, want 3 (redis-1, redis-biz, redis-2, each once)", got)
		}
		t.Logf("after Redis came back: %d U before the first S", uAfter)
		unloadConfig(t)
	})

	// Caddy's log: go-redis's lines under the module, the failures
	// logged, never the password.
	phase(t, "the log", func(t *testing.T) {
		logs, err := os.ReadFile(logFile)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(logs, []byte(redisSecret)) {
			t.Error("Caddy's log shows the Redis password")
		}
		var goRedis, storeFailed int
		for line := range strings.Lines(string(logs)) {
			if strings.Contains(line, `"source":"go-redis"`) && strings.Contains(line, `"logger":"http.handlers.dws_notify.store.redis"`) {
				goRedis++
			}
			if strings.Contains(line, `"msg":"dws notification"`) && strings.Contains(line, `"outcome":"store_failed"`) {
				storeFailed++
			}
		}
		if goRedis == 0 || storeFailed < 2 {
			t.Errorf("Caddy's log has %d go-redis lines and %d store_failed notifications, want at least 1 and 2:\n%s", goRedis, storeFailed, logs)
		}
	})
}

// TestRedisReloadKeepsOneClient: a reload that keeps the store settings
// keeps the pooled store and its connections; several handlers with the
// same settings share it; a reload to another prefix opens a new store
// and closes the old one's connections.
func TestRedisReloadKeepsOneClient(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{Password: redisSecret})
	b := newBackend(t)
	const prefix = "reload:"
	g := startGateway(t, b, gatewayConfig{store: redisStoreDirective(t, srv, prefix)})
	n := g.notice(addPath, addSample(t, "reload-1"))
	g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")
	stores, keys := pooledByName(redisName(srv, prefix))
	if len(stores) != 1 {
		t.Fatalf("%d pooled stores named %s, want 1", len(stores), redisName(srv, prefix))
	}
	before := gatewayClients(t, srv)
	if len(before) == 0 {
		t.Fatal("no connection named dws_notify on the server")
	}

	g = startGateway(t, b, gatewayConfig{store: redisStoreDirective(t, srv, prefix), extra: "retention 200h"})
	n.time = ""
	g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")
	again, _ := pooledByName(redisName(srv, prefix))
	if len(again) != 1 || again[0] != stores[0] {
		t.Fatal("the reload opened another store instead of keeping the pooled one")
	}
	if refs, ok := storePool.References(keys[0]); !ok || refs != 1 {
		t.Errorf("references after the reload = %d (%v), want 1", refs, ok)
	}
	after := gatewayClients(t, srv)
	for id := range before {
		if !after[id] {
			t.Errorf("connection %s was closed by the reload; %v before, %v after", id, before, after)
		}
	}
	if len(b.hits()) != 1 {
		t.Fatalf("backend got %d requests, want 1 (the resend after the reload is replayed)", len(b.hits()))
	}

	// Another prefix is another store; the old one is closed with the old
	// config.
	g = startGateway(t, b, gatewayConfig{store: redisStoreDirective(t, srv, "other:")})
	g.send(g.notice(addPath, addSample(t, "reload-2"))).expect(t, http.StatusOK, "S", "SUCCESS")
	if old, _ := pooledByName(redisName(srv, prefix)); len(old) != 0 {
		t.Error("the store of the old prefix is still pooled")
	}
	now := gatewayClients(t, srv)
	for id := range before {
		if now[id] {
			t.Errorf("connection %s of the old store is still open", id)
		}
	}
	if len(now) == 0 {
		t.Error("the new store has no connection")
	}
}

// TestRedisUnreachableAtProvision: Redis down when the config is loaded is
// not a provisioning error (a restart or reload during an outage must not
// take the site down): the handler answers U and starts serving by
// itself when Redis comes up. Cleanup leaves no goroutine behind.
func TestRedisUnreachableAtProvision(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{Password: redisSecret})
	srv.Kill()

	h := redisHandler(t, srv, "down:")
	ctx := newContext(t)
	if err := h.Provision(ctx); err != nil {
		t.Fatalf("Provision with Redis down: %v", err)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	w, _ := serve(t, h, unitNotice(t, addPath, addSample(t, "down-1")), okBackend)
	if !strings.Contains(w.Body.String(), `"resultStatus":"U"`) {
		t.Fatalf("with Redis down: %s", w.Body)
	}
	if _, err := h.store.Current(); !errors.Is(err, guard.ErrUnavailable) || strings.Contains(err.Error(), redisSecret) ||
		!strings.Contains(err.Error(), srv.Addr()) {
		t.Fatalf("store state with Redis down: %v", err)
	}
	// The loop's goroutine shows openLoop on its stack only once it has
	// started running.
	waitUntil(t, "one background connection loop", func() bool { return loops() == 1 })

	srv.Restart()
	var answered string
	waitUntil(t, "S after Redis came up", func() bool {
		w, _ := serve(t, h, unitNotice(t, addPath, addSample(t, "down-1")), okBackend)
		answered = w.Body.String()
		return strings.Contains(answered, `"resultStatus":"S"`)
	})
	waitUntil(t, "the connection loop to end once connected", func() bool { return loops() == 0 })

	// Down again at the next provisioning, and cleaned up before Redis
	// returns: the loop ends with the store, nothing is left.
	if err := h.Cleanup(); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	h2 := redisHandler(t, srv, "down:")
	if err := h2.Provision(newContext(t)); err != nil {
		t.Fatal(err)
	}
	// The loop's goroutine shows openLoop on its stack only once it has
	// started running.
	waitUntil(t, "one background connection loop", func() bool { return loops() == 1 })
	if err := h2.Cleanup(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the connection loop to end with the store", func() bool { return loops() == 0 })
}

// TestRedisRefusalIsAProvisioningError: a server that answers but refuses
// the configuration (wrong password, no such database) will not change its
// mind by waiting: Provision fails, naming the server, never the password.
func TestRedisRefusalIsAProvisioningError(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{Password: redisSecret})
	for _, c := range []struct{ name, url, want string }{
		{"wrong password", "redis://:not-" + redisSecret + "@" + srv.Addr() + "/0", "WRONGPASS"},
		{"no password", "redis://" + srv.Addr() + "/0", "NOAUTH"},
		{"database out of range", "redis://:" + redisSecret + "@" + srv.Addr() + "/99", "DB index is out of range"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := baseHandler(t)
			h.Storage, h.Store = "", &config.Store{Backend: config.BackendRedis, URL: c.url}
			err := h.Provision(newContext(t))
			defer func() { _ = h.Cleanup() }()
			if err == nil || !errors.Is(err, redisstore.ErrServerRefused) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), srv.Addr()) {
				t.Fatalf("Provision = %v; want a refusal (%s) naming %s", err, c.want, srv.Addr())
			}
			if strings.Contains(err.Error(), redisSecret) {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

// TestRedisDuplicatesAcrossStores: two handlers whose stores are separate
// (different client settings, as two gateway processes would be) share one
// Redis and prefix. Concurrent duplicates spread over both reach the
// backend once: the claim is atomic in Redis, and a duplicate whose first
// copy is held by the other store polls Redis for the outcome.
func TestRedisDuplicatesAcrossStores(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{})
	a, b := redisHandler(t, srv, "fleet:"), redisHandler(t, srv, "fleet:")
	b.Store.PoolSize = 7 // another client: another pooled store and waiter registry
	provisioned(t, newContext(t), a)
	provisioned(t, newContext(t), b)
	if a.store == b.store {
		t.Fatal("the two handlers share one pooled store; the test needs two")
	}
	slow, forwards := countingBackend(300 * time.Millisecond)
	const copies = 30
	body := addSample(t, "fleet-dup")
	start := make(chan struct{})
	answers := make([]string, copies)
	var wg sync.WaitGroup
	for i := range copies {
		h := a
		if i%2 == 1 {
			h = b
		}
		n := unitNotice(t, addPath, body)
		wg.Go(func() {
			<-start
			w, _ := serve(t, h, n, slow)
			answers[i] = w.Body.String()
		})
	}
	close(start)
	wg.Wait()
	if got := forwards.Load(); got != 1 {
		t.Fatalf("backend got %d copies, want exactly 1", got)
	}
	for i, ans := range answers {
		if !strings.Contains(ans, `"resultStatus":"S"`) {
			t.Errorf("copy %d (handler %c): %s; the first copy finished in 300ms, so every duplicate should replay S", i, "ab"[i%2], ans)
		}
	}
}

// TestRedisValidateLeavesNothingBehind: `caddy validate` provisions and
// cleans up; with a Redis store it must leave no connection and no
// goroutine, whether Redis is up or down.
func TestRedisValidateLeavesNothingBehind(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{Password: redisSecret})
	k := keys(t)
	config := func() *caddy.Config {
		handler := map[string]any{
			"handler":        "dws_notify",
			"client_id":      []string{testClientID},
			"dws_public_key": []map[string]any{{"key": "{file." + filepath.Join(k.dir, "dws_public.pem") + "}"}},
			"api":            []map[string]any{{"name": "addPaymentMethod"}},
			"store":          map[string]any{"backend": "redis", "url": srv.URL(0), "prefix": "validate:"},
		}
		return caddyConfigOf(t, map[string]any{"apps": map[string]any{"http": map[string]any{"servers": map[string]any{
			"v": map[string]any{"listen": []string{"127.0.0.1:0"}, "routes": []any{map[string]any{"handle": []any{handler}}}},
		}}}})
	}
	connections := func() string {
		info, err := srv.Client(0).Info(t.Context(), "stats").Result()
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(info) {
			if v, ok := strings.CutPrefix(line, "total_connections_received:"); ok {
				return strings.TrimSpace(v)
			}
		}
		t.Fatal("no total_connections_received in INFO stats")
		return ""
	}
	srv.Client(0).Ping(t.Context()) // the test's own connection, counted before
	baseRedis := goroutinesWith("github.com/redis/go-redis/v9")
	before := connections()
	if err := caddy.Validate(config()); err != nil {
		t.Fatalf("validate with Redis up: %v", err)
	}
	if connections() == before {
		t.Fatal("validate did not connect to Redis: the test checks nothing")
	}
	waitUntil(t, "the validated config's connections to close", func() bool { return len(gatewayClients(t, srv)) == 0 })
	waitUntil(t, "go-redis goroutines to end", func() bool { return goroutinesWith("github.com/redis/go-redis/v9") <= baseRedis })

	srv.Kill()
	if err := caddy.Validate(config()); err != nil {
		t.Fatalf("validate with Redis down: %v (a Redis outage must not fail validation)", err)
	}
	waitUntil(t, "the connection loop to end after validate", func() bool { return loops() == 0 })
	waitUntil(t, "go-redis goroutines to end", func() bool { return goroutinesWith("github.com/redis/go-redis/v9") <= baseRedis })
	if _, keys := pooledByName(redisName(srv, "validate:")); len(keys) != 0 {
		t.Error("validate left a pooled store")
	}
}

// TestRedisAdminListsSharedRecordsOnce: two pooled stores on one Redis and
// prefix (here with different pool sizes) hold the same records; the
// admin API shows and counts each record once.
func TestRedisAdminListsSharedRecordsOnce(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{Password: redisSecret})
	const prefix = "admin-once:"
	g := startGateway(t, newBackend(t), gatewayConfig{store: redisStoreDirective(t, srv, prefix)})
	g.send(g.notice(addPath, addSample(t, "once-1"))).expect(t, http.StatusOK, "S", "SUCCESS")

	spec, err := redisSpec(&config.Store{Backend: config.BackendRedis, URL: srv.URL(0), Prefix: prefix, PoolSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acquire(spec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = releaseStore(spec.key) })
	if stores, _ := pooledByName(redisName(srv, prefix)); len(stores) != 2 {
		t.Fatalf("%d pooled stores named %s, want 2", len(stores), redisName(srv, prefix))
	}
	var stats adminapi.StatsAnswer
	adminJSON(t, "/dws_notify/stats", 200, &stats)
	if len(stats.Stores) != 1 || stats.Total != (adminapi.OutcomeCounts{Accepted: 1, Total: 1}) {
		t.Fatalf("stats = %+v, want one store with one record", stats)
	}
	var ans adminapi.RecordsAnswer
	adminJSON(t, "/dws_notify/record?request_id=once-1", 200, &ans)
	if len(ans.Records) != 1 {
		t.Fatalf("records = %+v, want one", ans.Records)
	}
}

// TestRedisSettingsFromFilesAndSharedPool: URL and password come from
// {file.*} placeholders (a trailing newline, as editors leave it, is not
// part of the value); two handlers with the same settings share one
// pooled store, and the Cleanup of one leaves it open for the other.
func TestRedisSettingsFromFilesAndSharedPool(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{Password: redisSecret})
	dir := t.TempDir()
	urlFile, pwFile := filepath.Join(dir, "redis_url"), filepath.Join(dir, "redis_password")
	if err := os.WriteFile(urlFile, []byte("redis://"+srv.Addr()+"/2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pwFile, []byte(redisSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	handler := func() *Handler {
		h := baseHandler(t)
		h.Storage = ""
		h.Store = &config.Store{Backend: config.BackendRedis, URL: "{file." + urlFile + "}", Password: "{file." + pwFile + "}", Prefix: "files:"}
		return h
	}
	a, b := handler(), handler()
	for _, h := range []*Handler{a, b} {
		if err := h.Provision(newContext(t)); err != nil {
			t.Fatalf("Provision: %v", err)
		}
	}
	if a.store != b.store {
		t.Fatal("two handlers with the same Redis settings got different stores")
	}
	if want := fmt.Sprintf("redis %s db 2 prefix files:", srv.Addr()); a.store.name != want {
		t.Errorf("store name %q, want %q", a.store.name, want)
	}
	if refs, _ := storePool.References(a.storeKey); refs != 2 {
		t.Fatalf("references = %d, want 2", refs)
	}
	if err := a.Cleanup(); err != nil {
		t.Fatal(err)
	}
	w, _ := serve(t, b, unitNotice(t, addPath, addSample(t, "files-1")), okBackend)
	if !strings.Contains(w.Body.String(), `"resultStatus":"S"`) {
		t.Fatalf("after the other handler's Cleanup: %s", w.Body)
	}
	if n, err := srv.Client(2).Exists(t.Context(), "files:r:"+testClientID+":addPaymentMethod:files-1").Result(); err != nil || n != 1 {
		t.Fatalf("record not in database 2: %d %v", n, err)
	}
	if err := b.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, ok := storePool.References(b.storeKey); ok {
		t.Error("store still pooled after the last Cleanup")
	}
}

// TestRedisHungServerAnswersU: a Redis that accepts connections but never
// answers (SIGSTOP: a hung server or a partition) costs a notification at
// most the operation timeout, then U. The claim that timed out was queued
// in Redis and is applied when it resumes: that requestId is then held
// by an in-flight claim nobody completes, answered U until the claim's
// lease ends, and then forwarded (the same as after a crash mid-forward);
// other notifications are served at once.
func TestRedisHungServerAnswersU(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{})
	h := redisHandler(t, srv, "hung:")
	h.Store.OperationTimeout = config.Duration(time.Second)
	h.ForwardTimeout = config.Duration(500 * time.Millisecond) // lease 6s
	provisioned(t, newContext(t), h)
	srv.Pause()
	start := time.Now()
	w, _ := serve(t, h, unitNotice(t, addPath, addSample(t, "hung-1")), okBackend)
	took := time.Since(start)
	srv.Resume()
	if !strings.Contains(w.Body.String(), `"resultStatus":"U"`) {
		t.Fatalf("with Redis hung: %s", w.Body)
	}
	if took > 2*time.Second {
		t.Errorf("the answer took %v with operation_timeout 1s", took)
	}
	w, _ = serve(t, h, unitNotice(t, addPath, addSample(t, "hung-2")), okBackend)
	if !strings.Contains(w.Body.String(), `"resultStatus":"S"`) {
		t.Fatalf("another notification once Redis answers again: %s", w.Body)
	}
	rec, found, err := h.store.Get(t.Context(), keyOf("addPaymentMethod", "hung-1"))
	if err != nil || !found || rec.State != idempotency.StateInFlight {
		t.Fatalf("the timed-out claim: %+v found=%v err=%v; want it applied, in flight", rec, found, err)
	}
	waitUntil(t, "hung-1 served once the orphaned claim's lease ended", func() bool {
		w, _ := serve(t, h, unitNotice(t, addPath, addSample(t, "hung-1")), okBackend)
		return strings.Contains(w.Body.String(), `"resultStatus":"S"`)
	})
	if since := time.Since(start); since < 5*time.Second {
		t.Errorf("hung-1 was served %v after its claim, before the 6s lease ended", since)
	}
}

// TestRedisSentinelAndClusterFromConfig: store redis with sentinel
// (addresses from one {env.*} placeholder, comma-separated; data and
// sentinel passwords from placeholders) and with cluster provisions,
// serves notifications (S, then a replay) and names the store without a
// password. Two handlers with the same sentinel settings share one pooled
// store.
func TestRedisSentinelAndClusterFromConfig(t *testing.T) {
	const sentinelPassword = "sentinel-secret-c0f"
	d := redistest.StartSentinel(t, redistest.SentinelConfig{Data: redistest.Config{Password: redisSecret}, Password: sentinelPassword})
	cluster := redistest.StartCluster(t, 3)
	t.Setenv("DWS_TEST_SENTINELS", strings.Join(d.Addrs(), ", "))
	t.Setenv("DWS_TEST_REDIS_PASSWORD", redisSecret)
	t.Setenv("DWS_TEST_SENTINEL_PASSWORD", sentinelPassword)
	sentinel := func() *config.Store {
		return &config.Store{Backend: config.BackendRedis, Prefix: "sentinel-cfg:", Password: "{env.DWS_TEST_REDIS_PASSWORD}",
			Sentinel:     &config.RedisSentinel{MasterName: d.MasterName, Addresses: []string{"{env.DWS_TEST_SENTINELS}"}, Password: "{env.DWS_TEST_SENTINEL_PASSWORD}"},
			WaitReplicas: 1}
	}
	clusterCfg := &config.Store{Backend: config.BackendRedis, Prefix: "cluster-cfg:", Cluster: &config.RedisCluster{Addresses: cluster.Addrs()[1:2]}}
	for _, tc := range []struct {
		name  string
		store *config.Store
		want  string
	}{
		{"sentinel", sentinel(), fmt.Sprintf("redis sentinel %s via %s db 0 prefix sentinel-cfg:", d.MasterName, strings.Join(d.Addrs(), ","))},
		{"cluster", clusterCfg, fmt.Sprintf("redis cluster %s prefix cluster-cfg:", cluster.Addrs()[1])},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := baseHandler(t)
			h.Storage, h.Store = "", tc.store
			provisioned(t, newContext(t), h)
			if h.store.name != tc.want {
				t.Errorf("store name %q, want %q", h.store.name, tc.want)
			}
			backend, forwarded := countingBackend(0)
			for i := range 2 {
				w, _ := serve(t, h, unitNotice(t, addPath, addSample(t, tc.name+"-1")), backend)
				if !strings.Contains(w.Body.String(), `"resultStatus":"S"`) || forwarded.Load() != 1 {
					t.Fatalf("copy %d: %s (forwarded %d, want 1)", i, w.Body, forwarded.Load())
				}
			}
			rec, found, err := h.store.Get(t.Context(), keyOf("addPaymentMethod", tc.name+"-1"))
			if err != nil || !found || rec.State != idempotency.StateDone {
				t.Fatalf("record: %+v %v %v", rec, found, err)
			}
		})
	}
	a, b := baseHandler(t), baseHandler(t)
	a.Storage, a.Store = "", sentinel()
	b.Storage, b.Store = "", sentinel()
	provisioned(t, newContext(t), a)
	provisioned(t, newContext(t), b)
	if a.store != b.store {
		t.Error("two handlers with the same sentinel settings got different stores")
	}
}

// TestRedisTLSLeavesCaddysTrustAlone: store redis reaches a TLS-only Redis
// that requires a client certificate, both signed by a private CA, with
// tls { ca, cert, key } (the key from a {file.*} placeholder, the CA as
// PEM text from an {env.*} one), which SSL_CERT_FILE does not name. After the
// handler is provisioned and has served, the process trusts what it
// trusted before: the system pool does not verify a certificate from the
// private CA, http.DefaultTransport has no roots or certificate of its own,
// and an HTTPS request with Go's default client to a server signed by
// that CA fails on the unknown authority. Without the client certificate
// the server refuses the store.
func TestRedisTLSLeavesCaddysTrustAlone(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{TLS: true, TLSClientAuth: true, Password: redisSecret})
	files := srv.TLSFiles()
	caPEM, err := os.ReadFile(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	// Whatever SSL_CERT_FILE and SSL_CERT_DIR say (Go's system pool reads
	// them), they do not hold the private CA: the store's trust is its own.
	if f := os.Getenv("SSL_CERT_FILE"); f != "" {
		if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, bytes.TrimSpace(caPEM)) {
			t.Fatalf("SSL_CERT_FILE %s holds the test's private CA", f)
		}
	}
	t.Setenv("DWS_TEST_REDIS_CA", string(caPEM))
	h := baseHandler(t)
	h.Storage, h.Store = "", &config.Store{Backend: config.BackendRedis, URL: srv.URL(0), Prefix: "tls-cfg:",
		TLS: &config.RedisTLS{CA: "{env.DWS_TEST_REDIS_CA}", Cert: files.Cert, Key: "{file." + files.Key + "}"}}
	provisioned(t, newContext(t), h)
	backend, forwarded := countingBackend(0)
	w, _ := serve(t, h, unitNotice(t, addPath, addSample(t, "tls-1")), backend)
	if !strings.Contains(w.Body.String(), `"resultStatus":"S"`) || forwarded.Load() != 1 {
		t.Fatalf("over TLS with a client certificate: %s (forwarded %d)", w.Body, forwarded.Load())
	}

	// The process's own trust.
	https := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	https.TLS = srv.CA().ServerTLS(t, "127.0.0.1")
	https.StartTLS()
	defer https.Close()
	leaf := https.TLS.Certificates[0]
	cert, err := x509.ParseCertificate(leaf.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	system, err := x509.SystemCertPool()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: system}); err == nil {
		t.Error("the system pool verifies a certificate of the store's private CA")
	}
	if tr, ok := http.DefaultTransport.(*http.Transport); !ok || tr.TLSClientConfig != nil && (tr.TLSClientConfig.RootCAs != nil || len(tr.TLSClientConfig.Certificates) > 0) {
		t.Error("http.DefaultTransport has roots or a client certificate of its own now")
	}
	resp, err := (&http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: 5 * time.Second}).Get(https.URL)
	var unknown x509.UnknownAuthorityError
	if err == nil {
		resp.Body.Close()
		t.Error("an HTTPS request with Go's default transport trusted the store's private CA")
	} else if !errors.As(err, &unknown) {
		t.Errorf("HTTPS request to a server of the private CA: %v, want x509.UnknownAuthorityError", err)
	}

	// No client certificate: the server refuses the handshake, and the
	// handler is provisioned anyway (it may pass: a restarted server),
	// answering U.
	n := baseHandler(t)
	n.Storage, n.Store = "", &config.Store{Backend: config.BackendRedis, URL: srv.URL(0), Prefix: "tls-cfg:", OperationTimeout: config.Duration(time.Second),
		TLS: &config.RedisTLS{CA: files.CA}}
	provisioned(t, newContext(t), n)
	w, _ = serve(t, n, unitNotice(t, addPath, addSample(t, "tls-2")), backend)
	if !strings.Contains(w.Body.String(), `"resultStatus":"U"`) || forwarded.Load() != 1 {
		t.Fatalf("without the client certificate: %s (forwarded %d in all), want U", w.Body, forwarded.Load())
	}
}

// countingBackend is okBackend answering after delay, counting the
// requests it gets.
func countingBackend(delay time.Duration) (caddyhttp.Handler, *atomic.Int64) {
	var n atomic.Int64
	return caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		n.Add(1)
		time.Sleep(delay)
		return okBackend.ServeHTTP(w, r)
	}), &n
}

// TestRedisDuplicateReplayNeedsDurability: with wait_replicas 1 on a
// Redis without a replica, the first copy's completion is applied but
// never confirmed, so it is answered U. A copy that arrived while the
// first was at the backend waits for it and then finds the record done:
// it must not replay S from a record no replica holds, but answer U as
// well, and so must a later resend. The backend gets the notification
// once.
func TestRedisDuplicateReplayNeedsDurability(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{AppendOnly: true})
	h := redisHandler(t, srv, "confirm:")
	h.Store.WaitReplicas = 1
	h.Store.WaitReplicasTimeout = config.Duration(200 * time.Millisecond)
	provisioned(t, newContext(t), h)
	slow, hits := countingBackend(300 * time.Millisecond)
	body := addSample(t, "confirm-1")
	first := make(chan string, 1)
	n := unitNotice(t, addPath, body)
	go func() {
		w, _ := serve(t, h, n, slow)
		first <- w.Body.String()
	}()
	waitUntil(t, "the first copy at the backend", func() bool { return hits.Load() == 1 })
	w, _ := serve(t, h, unitNotice(t, addPath, body), slow)
	if got := <-first; !strings.Contains(got, `"resultStatus":"U"`) {
		t.Fatalf("the first copy, whose completion no replica confirmed: %s; want U", got)
	}
	if !strings.Contains(w.Body.String(), `"resultStatus":"U"`) {
		t.Errorf("the concurrent copy: %s; want U (never an S for a record the wait did not confirm)", w.Body)
	}
	w, _ = serve(t, h, unitNotice(t, addPath, body), slow)
	if !strings.Contains(w.Body.String(), `"resultStatus":"U"`) {
		t.Errorf("a later resend: %s; want U", w.Body)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("the backend got %d copies, want 1", n)
	}
}

// TestInboxWatchAcrossSameStoreReload: a reload that changes only a
// setting that shapes the Redis client (pool_size) makes a new pool entry
// for the same storage, whose store id is the old one's. The storage stays
// delivered throughout: no stranded WARN when the old entry's inbox stops
// (the new one delivers), and inbox_delivering stays 1 when the old entry
// leaves the pool (the new one keeps the gauges).
func TestInboxWatchAcrossSameStoreReload(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{Password: redisSecret, AppendOnly: true})
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	const prefix = "watch:"
	b := newBackend(t)
	b.status(http.StatusServiceUnavailable)
	cfg := receiptConfig("")
	cfg.globals = "log {\n\t\toutput file " + logFile + "\n\t\tlevel INFO\n\t}"
	cfg.store = redisStoreDirective(t, srv, prefix, "pool_size 4")
	g := startGateway(t, b, cfg)
	g.send(g.notice(addPath, addSample(t, "same-store-1"))).expect(t, http.StatusOK, "S", "SUCCESS")
	waitUntil(t, "a failed try", func() bool { return len(b.hits()) >= 1 })
	name := redisName(srv, prefix)
	stores, _ := pooledByName(name)
	if len(stores) != 1 {
		t.Fatalf("%d pooled stores named %q, want 1", len(stores), name)
	}
	id := stores[0].id
	stores[0].deliveries.watch.read(processMetrics())
	if q, d, _ := inboxGauges(t, id); q != 1 || d != 1 {
		t.Fatalf("before the reload: inbox_queued %v, inbox_delivering %v; want 1, 1", q, d)
	}

	cfg.store = redisStoreDirective(t, srv, prefix, "pool_size 5")
	startGateway(t, b, cfg)
	stores, keys := pooledByName(name)
	if len(stores) != 1 || stores[0].id != id {
		t.Fatalf("after the reload: pooled %v, want one entry with id %s", keys, id)
	}
	if q, d, _ := inboxGauges(t, id); q != 1 || d != 1 {
		t.Errorf("once the old entry left the pool: inbox_queued %v, inbox_delivering %v; want 1, 1", q, d)
	}
	stores[0].deliveries.watch.read(processMetrics())
	stores[0].deliveries.watch.read(processMetrics())
	if _, d, _ := inboxGauges(t, id); d != 1 {
		t.Errorf("after two readings by the new entry: inbox_delivering %v, want 1", d)
	}
	raw, _ := os.ReadFile(logFile)
	if bytes.Contains(raw, []byte("no running config of this gateway delivers this storage's inbox")) {
		t.Error("a stranded WARN for a storage the new entry delivers")
	}

	// The backend takes the notification; then a reload that changes
	// pool_size again and drops on_receipt: the gauges the old entry kept
	// pass to the new one, which delivers nothing.
	b.status(http.StatusOK)
	key := keyOf("addPaymentMethod", "same-store-1")
	waitUntil(t, "the delivery", func() bool {
		it, found, err := stores[0].Item(t.Context(), key)
		return err == nil && found && it.State == idempotency.ItemDelivered
	})
	stores[0].deliveries.watch.read(processMetrics())
	onDelivery := cfg
	onDelivery.extra = ""
	onDelivery.store = redisStoreDirective(t, srv, prefix, "pool_size 6")
	startGateway(t, b, onDelivery)
	if q, d, _ := inboxGauges(t, id); q != 0 || d != 0 {
		t.Errorf("after the reload to on_delivery with a new entry: inbox_queued %v, inbox_delivering %v; want 0, 0", q, d)
	}
	stores, _ = pooledByName(name)
	stores[0].deliveries.watch.read(processMetrics())
	if q, d, _ := inboxGauges(t, id); q != 0 || d != 0 {
		t.Errorf("after a reading by the on_delivery entry: inbox_queued %v, inbox_delivering %v; want 0, 0 (kept current)", q, d)
	}
}
