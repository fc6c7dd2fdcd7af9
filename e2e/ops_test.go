package e2e

// The operations kit through the built binary (issue 15): the log fields
// an on-call engineer searches by, the metrics series that exist before the
// first event, the split between noise and notifications DWS sent that the
// field rules refused, the store health gauge, and the deploy/ dashboard
// and alert rules checked against a real scrape.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency/redisstore/redistest"
)

// ---------------------------------------------------------------------------
// Scrapes

// sample is one series of a scrape in Prometheus's text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape reads the admin API's /metrics.
func scrape(t testing.TB, adminAddr string) []sample {
	t.Helper()
	client := &http.Client{Timeout: callTimeout, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	res, err := client.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatalf("scraping /metrics: %v", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("scraping /metrics: HTTP %d, %v", res.StatusCode, err)
	}
	var out []sample
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			t.Fatalf("scrape line %q: %v", line, err)
		}
		out = append(out, s)
	}
	return out
}

// parseSample parses `name{l="v",...} value [timestamp]`.
func parseSample(line string) (sample, error) {
	s := sample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return s, fmt.Errorf("no value")
	}
	s.name, line = line[:i], line[i:]
	if line[0] == '{' {
		line = line[1:]
		for {
			line = strings.TrimLeft(line, ", ")
			if strings.HasPrefix(line, "}") {
				line = line[1:]
				break
			}
			eq := strings.Index(line, `="`)
			if eq < 0 {
				return s, fmt.Errorf("bad label")
			}
			name := line[:eq]
			line = line[eq+2:]
			var v strings.Builder
			for {
				if line == "" {
					return s, fmt.Errorf("unterminated label value")
				}
				c := line[0]
				line = line[1:]
				if c == '"' {
					break
				}
				if c == '\\' && line != "" {
					switch line[0] {
					case 'n':
						v.WriteByte('\n')
					default:
						v.WriteByte(line[0])
					}
					line = line[1:]
					continue
				}
				v.WriteByte(c)
			}
			s.labels[name] = v.String()
		}
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return s, fmt.Errorf("no value")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, err
	}
	s.value = v
	return s, nil
}

// value returns the series with exactly these labels.
func value(samples []sample, name string, labels ...string) (float64, bool) {
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
next:
	for _, s := range samples {
		if s.name != name || len(s.labels) != len(want) {
			continue
		}
		for k, v := range want {
			if s.labels[k] != v {
				continue next
			}
		}
		return s.value, true
	}
	return 0, false
}

func countSeries(samples []sample, name string) int {
	n := 0
	for _, s := range samples {
		if s.name == name {
			n++
		}
	}
	return n
}

// ---------------------------------------------------------------------------
// Logs

// jsonLines returns every JSON log line of the gateway's output.
func jsonLines(output string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(output))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("{")) {
			continue
		}
		m := map[string]any{}
		if json.Unmarshal(line, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// notificationLines returns the gateway's "dws notification" lines.
func notificationLines(output string) []map[string]any {
	var out []map[string]any
	for _, m := range jsonLines(output) {
		if m["msg"] == "dws notification" {
			out = append(out, m)
		}
	}
	return out
}

// provisionLine returns the gateway's last "dws_notify provisioned" line.
func provisionLine(t *testing.T, output string) map[string]any {
	t.Helper()
	var last map[string]any
	for _, m := range jsonLines(output) {
		if m["msg"] == "dws_notify provisioned" {
			last = m
		}
	}
	if last == nil {
		t.Fatalf("no \"dws_notify provisioned\" line in the gateway's output:\n%s", output)
	}
	if last["logger"] != "http.handlers.dws_notify" || last["level"] != "info" {
		t.Errorf("provision line: logger %v level %v, want http.handlers.dws_notify info", last["logger"], last["level"])
	}
	return last
}

// checkLoggerNames fails the test for a log line of the module outside
// http.handlers.dws_notify[.*]: every line whose logger names dws_notify,
// and every go-redis line.
func checkLoggerNames(t *testing.T, output string) {
	t.Helper()
	for _, m := range jsonLines(output) {
		logger, _ := m["logger"].(string)
		ours := strings.Contains(logger, "dws_notify") || m["source"] == "go-redis"
		if ours && logger != "http.handlers.dws_notify" && !strings.HasPrefix(logger, "http.handlers.dws_notify.") {
			t.Errorf("a line of the module under logger %q: %v", logger, m)
		}
	}
}

// waitListening waits until addr accepts TCP connections, without sending
// a request (which would be logged and counted).
func waitListening(t *testing.T, addr string) {
	t.Helper()
	waitFor(t, readyTimeout, addr+" to listen", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// listedVersion returns what `caddy list-modules --versions` shows for the
// handler.
func listedVersion(t *testing.T, bin string, sb *sandbox) string {
	t.Helper()
	out, err := runCaddy(t, bin, sb, "list-modules", "--versions")
	if err != nil {
		t.Fatalf("list-modules --versions: %v\n%s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "http.handlers.dws_notify "); ok {
			return v
		}
	}
	t.Fatalf("list-modules --versions does not list http.handlers.dws_notify:\n%s", out)
	return ""
}

// spkiSum is the hex SHA-256 of a public key file's DER SubjectPublicKeyInfo
// (bare Base64 or PEM).
func spkiSum(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	der := []byte(nil)
	if block, _ := pem.Decode(raw); block != nil {
		der = block.Bytes
	} else if der, err = base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw))); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// ---------------------------------------------------------------------------
// Tests

// TestOpsLogsAndMetrics: on a gateway just started, every bounded series
// exists at zero, build_info names the build list-modules shows, the
// provision line names the keys by version and fingerprint; then one
// request of each kind: the log lines carry the requestId whenever the
// signature verified (a body the rules refused included), the sender's
// address and WARN for what needs someone; refusals_total tells noise from
// notifications DWS sent; a replay is no backend call.
func TestOpsLogsAndMetrics(t *testing.T) {
	bin := caddyBin(t)
	sb := newSandbox(t)
	be := newBackend(t)
	cfg := newGatewayConfig(t, sb, be.HostPort())
	proc := startCaddy(t, bin, sb, cfg.Caddyfile(), cfg.AdminAddr)
	waitListening(t, cfg.SiteAddr)
	site := "http://" + cfg.SiteAddr

	// The provision line and build_info.
	prov := provisionLine(t, proc.Output())
	version := listedVersion(t, bin, sb)
	if prov["version"] != version && !(version == "v0.0.0-00010101000000-000000000000" && prov["version"] == "(devel)") {
		t.Errorf("provision line version %v, list-modules --versions %s", prov["version"], version)
	}
	keysJSON, _ := json.Marshal(prov["dws_public_keys"])
	wantKeys := fmt.Sprintf(`[{"key_version":1,"sha256":"%s"},{"key_version":2,"sha256":"%s"}]`, spkiSum(t, cfg.KeyV1.B64Path), spkiSum(t, cfg.KeyV2.PEMPath))
	if string(keysJSON) != wantKeys {
		t.Errorf("provision line keys %s, want %s", keysJSON, wantKeys)
	}
	b64, _ := os.ReadFile(cfg.KeyV1.B64Path)
	line, _ := json.Marshal(prov)
	if bytes.Contains(line, bytes.TrimSpace(b64)[20:60]) {
		t.Errorf("the provision line carries key material: %s", line)
	}
	store, _ := prov["store"].(map[string]any)
	storeID, _ := store["id"].(string)
	if store["kind"] != "badger" || len(storeID) != 8 {
		t.Fatalf("provision line store %v", prov["store"])
	}

	// Before any request: the bounded series at zero.
	before := scrape(t, cfg.AdminAddr)
	if n := countSeries(before, "caddy_dws_notify_build_info"); n != 1 {
		t.Errorf("%d build_info series, want 1", n)
	}
	for _, s := range before {
		if s.name == "caddy_dws_notify_build_info" && (s.labels["version"] != prov["version"] || s.labels["revision"] != prov["revision"] || s.value != 1) {
			t.Errorf("build_info %v = %v; the provision line says version %v revision %v", s.labels, s.value, prov["version"], prov["revision"])
		}
	}
	if v, ok := value(before, "caddy_dws_notify_store_up", "kind", "badger", "store", storeID); !ok || v != 1 {
		t.Errorf("store_up{kind=badger,store=%s} = %v (present %v), want 1", storeID, v, ok)
	}
	for _, s := range [][]string{
		{"caddy_dws_notify_notifications_total", "api", "addPaymentMethod", "result_code", "SUCCESS", "outcome", "forwarded"},
		{"caddy_dws_notify_notifications_total", "api", "removePaymentMethod", "result_code", "SUCCESS", "outcome", "business_rejected"},
		{"caddy_dws_notify_notifications_total", "api", "addPaymentMethod", "result_code", "UNKNOWN_EXCEPTION", "outcome", "store_failed"},
		{"caddy_dws_notify_notifications_total", "api", "unknown", "result_code", "PARAM_ILLEGAL", "outcome", "rejected"},
		{"caddy_dws_notify_refusals_total", "api", "addPaymentMethod", "stage", "field_rules"},
		{"caddy_dws_notify_refusals_total", "api", "unknown", "stage", "before_signature"},
		{"caddy_dws_notify_signature_failures_total", "reason", "unknown_key_version"},
		{"caddy_dws_notify_signature_verifications_total", "key_version", "2", "result", "verified"},
		{"caddy_dws_notify_signature_verifications_total", "key_version", "none", "result", "failed"},
		{"caddy_dws_notify_duplicates_total", "api", "addPaymentMethod", "kind", "conflict"},
		{"caddy_dws_notify_completion_retries_total", "result", "expired"},
		{"caddy_dws_notify_backend_slow_total", "api", "addPaymentMethod"},
		{"caddy_dws_notify_backend_duration_seconds_count", "api", "addPaymentMethod"},
		{"caddy_dws_notify_backend_duration_seconds_bucket", "api", "addPaymentMethod", "le", "8"},
		{"caddy_dws_notify_backend_duration_seconds_bucket", "api", "addPaymentMethod", "le", "10"},
		{"caddy_dws_notify_request_duration_seconds_count", "api", "unknown"},
	} {
		if v, ok := value(before, s[0], s[1:]...); !ok || v != 0 {
			t.Errorf("%s%v = %v (present %v), want 0 before any request", s[0], s[1:], v, ok)
		}
	}
	// 11 (result_code, outcome) pairs for each of the 2 APIs, 1 for unknown.
	if n := countSeries(before, "caddy_dws_notify_notifications_total"); n != 23 {
		t.Errorf("%d notifications_total series before any request, want 23", n)
	}

	// One request of each kind.
	dws := newDWS(site, clientID, nil)
	stranger := newDWS(site, "9999999999999999", nil)
	other := newKeyPair(t, sb, "not_dws")
	first := addNotif(t, "ops-1")
	badField := addNotif(t, "ops-field")
	badField.Body = bytes.Replace(badField.Body, []byte(`"expiryYear": "**"`), []byte(`"expiryYear": 2031`), 1)
	conflict := addNotif(t, "ops-1")
	conflict.Body = bytes.Replace(conflict.Body, []byte("Tung"), []byte("Tong"), 1)
	type step struct {
		name      string
		send      func(t *testing.T) *answer
		code      string
		level     string
		outcome   string
		requestID string
		refusedAt string
		check     func(t *testing.T, l map[string]any)
	}
	steps := []step{
		{"GET, before the signature", func(t *testing.T) *answer { return dws.Do(t, http.MethodGet, addURI, nil, nil) },
			"PARAM_ILLEGAL", "info", "rejected", "", "before_signature", nil},
		{"unknown path, before the signature", func(t *testing.T) *answer {
			return dws.Do(t, http.MethodPost, "/wp-login.php", []byte("log=admin"), nil)
		},
			"PARAM_ILLEGAL", "info", "rejected", "", "before_signature", nil},
		{"unknown Client-Id, before the signature", func(t *testing.T) *answer { return stranger.Post(t, addURI, first.Body, cfg.KeyV1.Private, 1, nil) },
			"ACCESS_DENIED", "info", "rejected", "", "before_signature", nil},
		{"another key, signature", func(t *testing.T) *answer { return dws.Post(t, addURI, first.Body, other.Private, 1, nil) },
			"INVALID_SIGNATURE", "info", "rejected", "", "signature", nil},
		{"verified, refused by the field rules", func(t *testing.T) *answer { return dws.Post(t, addURI, badField.Body, cfg.KeyV1.Private, 1, nil) },
			"PARAM_ILLEGAL", "warn", "rejected", "ops-field", "field_rules", func(t *testing.T, l map[string]any) {
				if l["reason"] != "paymentMethodDetail.card.expiryYear must be a JSON string" || l["key_version"] != 1.0 {
					t.Errorf("reason %v key_version %v", l["reason"], l["key_version"])
				}
			}},
		{"forwarded", func(t *testing.T) *answer { return dws.Post(t, addURI, first.Body, cfg.KeyV1.Private, 1, nil) },
			"SUCCESS", "info", "forwarded", "ops-1", "", func(t *testing.T, l map[string]any) {
				if l["backend_status"] != 200.0 {
					t.Errorf("backend_status %v, want 200", l["backend_status"])
				}
			}},
		{"replayed", func(t *testing.T) *answer { return dws.Post(t, addURI, first.Body, cfg.KeyV1.Private, 1, nil) },
			"SUCCESS", "info", "replayed", "ops-1", "", func(t *testing.T, l map[string]any) {
				if _, ok := l["backend_status"]; ok || l["replayed_backend_status"] != 200.0 {
					t.Errorf("a replay logged backend_status %v, replayed_backend_status %v; want none and 200", l["backend_status"], l["replayed_backend_status"])
				}
				if _, ok := l["backend_duration"]; ok {
					t.Error("a replay logged a backend_duration")
				}
			}},
		{"business rejected", func(t *testing.T) *answer {
			be.SetStatus(http.StatusConflict)
			defer be.SetStatus(http.StatusOK)
			return dws.Post(t, removeURI, readSample(t, "remove.json"), cfg.KeyV2.Private, 2, nil)
		}, "SUCCESS", "warn", "business_rejected", "2015032412007101547201355678", "", nil},
		{"conflict", func(t *testing.T) *answer { return dws.Post(t, addURI, conflict.Body, cfg.KeyV1.Private, 1, nil) },
			"REPEAT_REQ_INCONSISTENT", "warn", "conflict", "ops-1", "", nil},
	}
	for i, s := range steps {
		phase(t, s.name, func(t *testing.T) {
			a := s.send(t)
			if a.Result.ResultCode != s.code {
				t.Fatalf("%s: answered %s (%q), want %s", s.name, a.Result.ResultCode, a.Body, s.code)
			}
			var lines []map[string]any
			waitFor(t, 5*time.Second, "the log line of "+s.name, func() bool {
				lines = notificationLines(proc.Output())
				return len(lines) > i
			})
			l := lines[i]
			if l["level"] != s.level || l["outcome"] != s.outcome || l["request_id"] != s.requestID {
				t.Errorf("%s: level %v outcome %v request_id %q; want %s %s %q", s.name, l["level"], l["outcome"], l["request_id"], s.level, s.outcome, s.requestID)
			}
			if got, _ := l["refused_at"].(string); got != s.refusedAt {
				t.Errorf("%s: refused_at %q, want %q", s.name, got, s.refusedAt)
			}
			port, _ := l["remote_port"].(string)
			if l["remote_ip"] != "127.0.0.1" || l["client_ip"] != "127.0.0.1" {
				t.Errorf("%s: remote_ip %v client_ip %v, want 127.0.0.1", s.name, l["remote_ip"], l["client_ip"])
			}
			if p, err := strconv.Atoi(port); err != nil || p <= 0 {
				t.Errorf("%s: remote_port %q", s.name, port)
			}
			if s.check != nil {
				s.check(t, l)
			}
		})
	}

	after := scrape(t, cfg.AdminAddr)
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"caddy_dws_notify_refusals_total", "api", "unknown", "stage", "before_signature"}, 1},
		{[]string{"caddy_dws_notify_refusals_total", "api", "addPaymentMethod", "stage", "before_signature"}, 2},
		{[]string{"caddy_dws_notify_refusals_total", "api", "addPaymentMethod", "stage", "signature"}, 1},
		{[]string{"caddy_dws_notify_refusals_total", "api", "addPaymentMethod", "stage", "field_rules"}, 1},
		{[]string{"caddy_dws_notify_duplicates_total", "api", "addPaymentMethod", "kind", "replayed"}, 1},
		{[]string{"caddy_dws_notify_duplicates_total", "api", "addPaymentMethod", "kind", "conflict"}, 1},
		// The replay is no backend call.
		{[]string{"caddy_dws_notify_backend_duration_seconds_count", "api", "addPaymentMethod"}, 1},
		{[]string{"caddy_dws_notify_backend_responses_total", "api", "removePaymentMethod", "status", "409"}, 1},
		{[]string{"caddy_dws_notify_notifications_total", "api", "removePaymentMethod", "result_code", "SUCCESS", "outcome", "business_rejected"}, 1},
	} {
		if v, ok := value(after, c.labels[0], c.labels[1:]...); v != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.labels[0], c.labels[1:], v, ok, c.want)
		}
	}
	if n := countSeries(after, "caddy_dws_notify_notifications_total"); n != 23 {
		t.Errorf("%d notifications_total series after one request of each kind, want the 23 pre-created", n)
	}
	checkLoggerNames(t, proc.Output())
	checkNoPanic(t, "gateway", proc.Output())
}

// TestOpsStoreHealthRedis: store_up follows a Redis store that goes away
// and comes back, without a request (the probe) and with one; the refused
// notification's line is a WARN naming its requestId, and the store's and
// go-redis's lines are under http.handlers.dws_notify.store.
func TestOpsStoreHealthRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{AppendOnly: true, Password: e2eRedisPassword})
	proc, lc, up := startRedisHealthGateway(t, srv, "prefix ops:")
	if v := up(); v != 1 {
		t.Fatalf("store_up = %v with Redis up, want 1", v)
	}

	srv.Stop()
	began := time.Now()
	waitFor(t, 30*time.Second, "store_up to drop to 0 without a request", func() bool { return up() == 0 })
	t.Logf("store_up dropped %s after redis-server stopped, without a request", time.Since(began).Round(time.Millisecond))
	if a := lc.Send(t, addNotif(t, "ops-down")); !a.Answered || a.Result != "U" {
		t.Fatalf("with Redis down: %s, want U", a)
	}
	var failed map[string]any
	waitFor(t, 5*time.Second, "the store_failed line", func() bool {
		for _, l := range notificationLines(proc.Output()) {
			if l["request_id"] == "ops-down" {
				failed = l
			}
		}
		return failed != nil
	})
	if failed["level"] != "warn" || failed["outcome"] != "store_failed" || failed["remote_ip"] != "127.0.0.1" {
		t.Errorf("the refused notification's line: %v", failed)
	}

	srv.Restart()
	began = time.Now()
	waitFor(t, 30*time.Second, "store_up to come back to 1 without a request", func() bool { return up() == 1 })
	t.Logf("store_up came back %s after redis-server restarted, without a request", time.Since(began).Round(time.Millisecond))
	if a := lc.Send(t, addNotif(t, "ops-down")); !a.Answered || a.Result != "S" {
		t.Fatalf("with Redis back: %s, want S", a)
	}

	out := proc.Output()
	checkLoggerNames(t, out)
	goRedis := 0
	for _, m := range jsonLines(out) {
		if m["source"] == "go-redis" {
			goRedis++
		}
	}
	if goRedis == 0 {
		t.Error("no go-redis line while Redis was down (checkLoggerNames proves nothing about them)")
	}
	if strings.Contains(out, e2eRedisPassword) {
		t.Error("the gateway's output shows the Redis password")
	}
	checkNoPanic(t, "gateway", out)
}

// redisHealthGateway is a gateway on a Redis store, as
// startRedisHealthGateway starts it.
type redisHealthGateway struct {
	*caddyProc
	backend *backend
}

// startRedisHealthGateway starts a gateway whose store is srv (with the
// e2e password) and the given store options, and returns it, a DWS client
// for it, and a reader of its store_up for that store. The provision line
// must name the store without its password.
func startRedisHealthGateway(t *testing.T, srv *redistest.Server, storeOpts ...string) (redisHealthGateway, *dwsClient, func() float64) {
	t.Helper()
	bin := caddyBin(t)
	t.Setenv("DWS_E2E_REDIS_URL", "redis://"+srv.Addr()+"/0")
	t.Setenv("DWS_E2E_REDIS_PASSWORD", e2eRedisPassword)
	be := newBackend(t)
	sb := newSandbox(t)
	g, key := newRelGateway(t, sb, be.Addr)
	g.Store = "store redis {env.DWS_E2E_REDIS_URL} {\n\t\t\tpassword {env.DWS_E2E_REDIS_PASSWORD}\n\t\t\t" + strings.Join(storeOpts, "\n\t\t\t") + "\n\t\t}"
	proc := startCaddy(t, bin, sb, g.Caddyfile(), g.AdminAddr, g.URL()+"/")
	store, _ := provisionLine(t, proc.Output())["store"].(map[string]any)
	id, _ := store["id"].(string)
	if store["kind"] != "redis" || id == "" || strings.Contains(fmt.Sprint(store), e2eRedisPassword) {
		t.Fatalf("provision line store %v", store)
	}
	up := func() float64 {
		v, ok := value(scrape(t, g.AdminAddr), "caddy_dws_notify_store_up", "kind", "redis", "store", id)
		if !ok {
			t.Fatalf("no store_up{kind=redis,store=%s} series", id)
		}
		return v
	}
	return redisHealthGateway{caddyProc: proc, backend: be}, newDWS(g.URL(), clientID, key.Private), up
}

// TestOpsStoreHealthRedisWait: with wait_replicas, store_up follows the
// replica the wait needs, not only the server. The replica stops: the
// probe's write is not confirmed, so store_up drops to 0 without a
// request, and stays 0 while notifications come in and are answered U
// (Redis still answers their claims, which used to take it back to 1 at
// every notification) and while the gateway is idle. The replica comes
// back: store_up returns to 1 without a request, and the resends are
// replayed S, each notification having reached the backend once.
func TestOpsStoreHealthRedisWait(t *testing.T) {
	primary := redistest.Start(t, redistest.Config{AppendOnly: true, Password: e2eRedisPassword,
		Args: []string{"--repl-diskless-sync-delay", "0"}})
	replica := redistest.Start(t, redistest.Config{AppendOnly: true, Password: e2eRedisPassword,
		Args: []string{"--replicaof", "127.0.0.1", strconv.Itoa(primary.Port()), "--masterauth", e2eRedisPassword}})
	proc, lc, up := startRedisHealthGateway(t, primary, "prefix opswait:", "wait_replicas 1 300ms")
	waitFor(t, 30*time.Second, "a notification answered S with the replica in sync", func() bool {
		return lc.Send(t, addNotif(t, "wait-first")).Result == "S"
	})
	// A first try answered U while the replica was still syncing counts
	// the store down until the next probe (every 5 s) is confirmed.
	waitFor(t, 15*time.Second, "store_up 1 with the replica in sync", func() bool { return up() == 1 })

	replica.Stop()
	began := time.Now()
	waitFor(t, 30*time.Second, "store_up to drop to 0 without a request once the replica stopped", func() bool { return up() == 0 })
	t.Logf("store_up dropped %s after the replica stopped, without a request", time.Since(began).Round(time.Millisecond))

	// Notifications arrive: each claim is answered, each completion is
	// not confirmed. Sampled after each, and through two idle probe
	// periods, the gauge stays 0.
	var ids []string
	for i := range 5 {
		n := addNotif(t, fmt.Sprintf("wait-unconfirmed-%d", i))
		ids = append(ids, n.ID)
		if a := lc.Send(t, n); !a.Answered || a.Result != "U" {
			t.Fatalf("%s without the replica: %s, want U", n.ID, a)
		}
		if v := up(); v != 0 {
			t.Fatalf("store_up = %v after %s was answered U for want of the replica, want 0", v, n.ID)
		}
	}
	idleUntil := time.Now().Add(12 * time.Second)
	for time.Now().Before(idleUntil) {
		if v := up(); v != 0 {
			t.Fatalf("store_up = %v while idle without the replica, want 0", v)
		}
		time.Sleep(500 * time.Millisecond)
	}

	replica.Restart()
	began = time.Now()
	waitFor(t, 30*time.Second, "store_up to come back to 1 without a request once the replica is back", func() bool { return up() == 1 })
	t.Logf("store_up came back %s after the replica restarted, without a request", time.Since(began).Round(time.Millisecond))
	for _, rid := range ids {
		if a := lc.Send(t, addNotif(t, rid)); !a.Answered || a.Result != "S" {
			t.Fatalf("the resend of %s with the replica back: %s, want S", rid, a)
		}
	}
	got := map[string]int{}
	for _, d := range proc.backend.Deliveries() {
		got[d.RequestID]++
	}
	for _, rid := range append(ids, "wait-first") {
		if got[rid] != 1 {
			t.Errorf("%s reached the backend %d times, want once", rid, got[rid])
		}
	}
	checkNoPanic(t, "gateway", proc.Output())
}

// grafanaVars are the dashboard's variables and what they stand for in a
// check: the rate interval Grafana computes, and every gateway.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*")

// metricName matches the gateway's metric names in an expression.
var metricName = regexp.MustCompile(`\bcaddy_dws_notify_[a-z_]+\b`)

// selector matches a metric with its label matchers.
var selector = regexp.MustCompile(`(caddy_dws_notify_[a-z_]+)\{([^}]*)\}`)

// matcher matches one label matcher.
var matcher = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)

// targetLabels are added by Prometheus when it scrapes; a raw scrape has
// none of them.
var targetLabels = map[string]bool{"instance": true, "job": true}

// checkExpr fails the test when expr names a metric the scrape lacks, or
// selects by a label value no series of the metric has.
func checkExpr(t *testing.T, where, expr string, samples []sample) {
	t.Helper()
	names := map[string]bool{}
	for _, s := range samples {
		names[s.name] = true
	}
	found := metricName.FindAllString(expr, -1)
	if len(found) == 0 {
		t.Errorf("%s: names no caddy_dws_notify metric: %s", where, expr)
	}
	for _, n := range found {
		if !names[n] {
			t.Errorf("%s: %s is not in a scrape of the gateway", where, n)
		}
	}
	for _, sel := range selector.FindAllStringSubmatch(expr, -1) {
		name := sel[1]
		for _, m := range matcher.FindAllStringSubmatch(sel[2], -1) {
			label, op, val := m[1], m[2], m[3]
			if targetLabels[label] {
				continue
			}
			re, err := regexp.Compile("^(?:" + val + ")$")
			if err != nil {
				t.Errorf("%s: %s%s: %v", where, label, op, err)
				continue
			}
			ok := false
			for _, s := range samples {
				if s.name != name {
					continue
				}
				v, has := s.labels[label]
				switch op {
				case "=":
					ok = has && v == val
				case "!=":
					ok = has && v != val
				case "=~":
					ok = has && re.MatchString(v)
				case "!~":
					ok = has && !re.MatchString(v)
				}
				if ok {
					break
				}
			}
			if !ok {
				t.Errorf("%s: no series of %s has %s%s%q in a scrape of the gateway", where, name, label, op, val)
			}
		}
	}
}

// ruleExprs returns the expr of every rule in a Prometheus rules file
// (expr: | blocks and one-line exprs).
func ruleExprs(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	lines := strings.Split(string(raw), "\n")
	name := ""
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimSpace(lines[i])
		if v, ok := strings.CutPrefix(trimmed, "- alert:"); ok {
			name = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(trimmed, "- record:"); ok {
			name = strings.TrimSpace(v)
		}
		v, ok := strings.CutPrefix(trimmed, "expr:")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if v != "|" && v != ">" {
			out[name] = v
			continue
		}
		indent := len(lines[i]) - len(strings.TrimLeft(lines[i], " "))
		var b strings.Builder
		for i+1 < len(lines) {
			next := lines[i+1]
			if strings.TrimSpace(next) != "" && len(next)-len(strings.TrimLeft(next, " ")) <= indent {
				break
			}
			b.WriteString(strings.TrimSpace(next) + "\n")
			i++
		}
		out[name] = strings.TrimSpace(b.String())
	}
	if len(out) == 0 {
		t.Fatalf("no rule in %s", path)
	}
	return out
}

// TestDashboardAndRulesAgainstScrape: every query of the Grafana dashboard
// in deploy/grafana and every expression of the alert rules in
// deploy/prometheus names only metrics a scrape of the gateway has, and
// only label values some series of them has, on a gateway that has not
// answered a request yet (so no query waits for a first event); the
// dashboard's queries are valid PromQL (promtool).
func TestDashboardAndRulesAgainstScrape(t *testing.T) {
	bin := caddyBin(t)
	sb := newSandbox(t)
	be := newBackend(t)
	cfg := newGatewayConfig(t, sb, be.HostPort())
	// With acknowledge on_receipt, so the inbox's series exist too.
	cfg.Extra = inboxBlock(t, sb, "")
	startCaddy(t, bin, sb, cfg.Caddyfile(), cfg.AdminAddr)
	samples := scrape(t, cfg.AdminAddr)

	raw, err := os.ReadFile("../deploy/grafana/dws_notify.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			expr := grafanaVars.Replace(tg.Expr)
			checkExpr(t, fmt.Sprintf("panel %q query %s", p.Title, tg.RefID), expr, samples)
			exprs = append(exprs, expr)
		}
	}
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := json.Marshal(v.Query)
		checkExpr(t, "variable "+v.Name, string(q), samples)
	}
	rules := ruleExprs(t, "../deploy/prometheus/dws_notify.rules.yml")
	for name, expr := range rules {
		checkExpr(t, "rule "+name, expr, samples)
	}
	t.Logf("%d dashboard queries and %d alert rules checked against a scrape of %d series", len(exprs), len(rules), len(samples))

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (Debian: apt-get install prometheus): the dashboard's PromQL is not parsed")
	}
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range exprs {
		q, _ := json.Marshal(e)
		fmt.Fprintf(&b, "      - record: dashboard:query_%d\n        expr: %s\n", i, q)
	}
	path := filepath.Join(t.TempDir(), "dashboard.rules.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the dashboard's queries: %v\n%s", err, out)
	}
}
