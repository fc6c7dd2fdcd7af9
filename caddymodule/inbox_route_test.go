package caddymodule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// These tests hold a delivery to what a synchronous forward would have
// been when the route around dws_notify changes or is not plain HTTP.

// routeGateway starts Caddy with the Caddyfile built from format, whose
// %[1]s is the Client-Id, %[2]s the DWS public key file, %[3]s the storage
// directory and %[4]s the inbox key.
func routeGateway(t *testing.T, dir string, format string, args ...any) *gateway {
	t.Helper()
	k := keys(t)
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(format, append([]any{testClientID, filepath.Join(k.dir, "dws_public.pem"), dir, inboxKeyA}, args...)...), "caddyfile")
	t.Cleanup(func() { unloadConfig(t) })
	return &gateway{t: t, tester: tester, storage: dir, keys: k}
}

const routeGlobals = `{
	admin localhost:2999
	http_port 9080
	https_port 9443
	grace_period 1ns
	skip_install_trust
	local_certs
}
`

// A reload that moves the dws_notify route while a notification is queued:
// the handler that now matches the old path gets a bodiless POST without
// the notification's headers (but its Client-Id, which routes it), never
// its card data, and the notification waits for a route that takes it.
func TestDeliveryNeverReachesAnotherRoute(t *testing.T) {
	b := newBackend(t)
	b.status(http.StatusServiceUnavailable)
	other := newBackend(t)
	dir := t.TempDir()
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	globals := strings.Replace(routeGlobals, "\tlocal_certs\n", "\tlocal_certs\n\tlog {\n\t\toutput file "+logFile+"\n\t\tformat json\n\t}\n", 1)
	site := globals + `http://localhost:9080 {
	handle %[5]s/* {
		dws_notify {
			client_id %[1]s
			dws_public_key {file.%[2]s}
			api addPaymentMethod %[5]s/notify/addPaymentMethod
			storage %[3]s
			forward_timeout 2s
			acknowledge on_receipt {
				key %[4]s
				backoff 50ms 200ms
			}
		}
		reverse_proxy %[6]s
	}
	handle {
		reverse_proxy %[7]s
	}
}
`
	g := routeGateway(t, dir, site, "/dws", b.addr(), other.addr())
	g.send(g.notice(addPath, addSample(t, "moved-1"))).expect(t, http.StatusOK, "S", "SUCCESS")
	waitUntil(t, "a failed try", func() bool { return len(b.hits()) >= 1 })
	g = routeGateway(t, dir, site, "/v2/dws", b.addr(), other.addr())
	waitUntil(t, "tries after the move", func() bool { return len(other.hits()) >= 2 })
	for _, h := range other.hits() {
		if len(h.body) != 0 || bytes.Contains(h.body, []byte("cardToken")) {
			t.Fatalf("the other route got a body of %d bytes", len(h.body))
		}
		for name := range h.header {
			if strings.HasPrefix(name, "X-Dws-") || name == "Request-Time" || name == "Signature" {
				t.Fatalf("the other route got the notification's header %s", name)
			}
		}
	}
	it, _, err := storeFor(t, g).Item(t.Context(), keyOf("addPaymentMethod", "moved-1"))
	if err != nil || !it.State.Queued() {
		t.Fatalf("the moved notification: %+v, %v; want it still queued", it, err)
	}
	// Each try nothing took is a WARN naming the notification and where
	// its delivery went.
	waitUntil(t, "the WARN of a delivery nothing took", func() bool {
		raw, _ := os.ReadFile(logFile)
		for _, line := range bytes.Split(raw, []byte("\n")) {
			var m map[string]any
			if json.Unmarshal(line, &m) == nil && m["level"] == "warn" && strings.HasPrefix(fmt.Sprint(m["msg"]), "inbox: no dws_notify handler serving the notification took its delivery") &&
				m["request_id"] == "moved-1" && m["path"] == "/dws/notify/addPaymentMethod" {
				return true
			}
		}
		return false
	})
}

// A notification that came over TLS is delivered as one: reverse_proxy
// sends X-Forwarded-Proto https, as for a synchronous forward.
func TestDeliveryOverTLSKeepsTheScheme(t *testing.T) {
	b := newBackend(t)
	dir := t.TempDir()
	site := routeGlobals + `https://localhost:9443 {
	dws_notify {
		client_id %[1]s
		dws_public_key {file.%[2]s}
		api addPaymentMethod %[5]s
		storage %[3]s
		forward_timeout 2s
		%[6]s
	}
	reverse_proxy %[7]s
}
`
	for i, mode := range []string{"acknowledge on_delivery", "acknowledge on_receipt {\n\t\t\tkey %[4]s\n\t\t}"} {
		g := routeGateway(t, dir, strings.Replace(site, "%[6]s", mode, 1), addPath, "", b.addr())
		n := g.notice(addPath, addSample(t, fmt.Sprintf("tls-%d", i)))
		var sent bool
		for range 50 { // the local CA's certificate may take a moment
			req := n.request(t)
			req.URL.Scheme, req.URL.Host, req.Host = "https", "localhost:9443", "localhost:9443"
			if res, err := g.tester.Client.Do(req); err == nil {
				a, _ := readAnswer(res)
				a.expect(t, http.StatusOK, "S", "SUCCESS")
				sent = true
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if !sent {
			t.Fatal("no answer over TLS")
		}
		waitUntil(t, "the backend's hit", func() bool { return len(b.hits()) > i })
		if got := b.hits()[i].header.Get("X-Forwarded-Proto"); got != "https" {
			t.Errorf("%s: the backend got X-Forwarded-Proto %q, want https", mode, got)
		}
	}
}

// A reload while a delivery waits on a slow backend (6 s, within the
// 10 s forward_timeout): the old config's try finishes and is settled by
// the backend's answer, not cut short and sent again.
func TestReloadLetsASlowDeliveryFinish(t *testing.T) {
	b := newBackend(t)
	b.setRespond(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(6 * time.Second)
		w.WriteHeader(http.StatusOK)
	})
	dir := t.TempDir()
	site := routeGlobals + `http://localhost:9080 {
	dws_notify {
		client_id %[1]s
		dws_public_key {file.%[2]s}
		api addPaymentMethod %[5]s
		storage %[3]s
		forward_timeout 10s
		acknowledge on_receipt {
			key %[4]s
		}
	}
	header X-Config %[6]s
	reverse_proxy %[7]s
}
`
	g := routeGateway(t, dir, site, addPath, "one", b.addr())
	key := keyOf("addPaymentMethod", "slow-1")
	g.send(g.notice(addPath, addSample(t, "slow-1"))).expect(t, http.StatusOK, "S", "SUCCESS")
	waitUntil(t, "the first try reaching the backend", func() bool { return len(b.hits()) >= 1 })
	g = routeGateway(t, dir, site, addPath, "two", b.addr())
	waitUntil(t, "the delivery", func() bool { return itemState(t, g, key) == idempotency.ItemDelivered })
	time.Sleep(time.Second)
	if n := len(b.hits()); n != 1 {
		t.Errorf("the backend got %d deliveries across one reload, want 1", n)
	}
}

// A reload to acknowledge on_delivery (no on_receipt handler left on the
// storage) while notifications wait in the inbox: they stay queued, the
// gateway says so at WARN with how many, and the queue gauges stay
// current with inbox_delivering 0 (the alert's input). When the storage
// leaves the config its gauges keep a last reading. A start with
// on_delivery on that storage (the store newly pooled: no reload path
// runs) reads and reports it again; a reload back to on_receipt delivers
// the notification, and once the drained storage leaves the config its
// gauges go. The readings are taken by hand (read) rather than waited for.
func TestBackToOnDeliveryWarnsOfQueued(t *testing.T) {
	b := newBackend(t)
	b.status(http.StatusServiceUnavailable)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	cfg := receiptConfig("")
	cfg.storage = t.TempDir()
	cfg.globals = "log {\n\t\toutput file " + logFile + "\n\t\tlevel INFO\n\t}"
	g := startGateway(t, b, cfg)
	id := storeFor(t, g).id
	read := func() {
		t.Helper()
		if !storeFor(t, g).deliveries.watch.read(processMetrics()) {
			t.Fatal("the watch found no queue to watch")
		}
	}
	key := keyOf("addPaymentMethod", "stranded-1")
	g.send(g.notice(addPath, addSample(t, "stranded-1"))).expect(t, http.StatusOK, "S", "SUCCESS")
	waitUntil(t, "a failed try", func() bool { return len(b.hits()) >= 1 })
	read()
	if q, d, _ := inboxGauges(t, id); q != 1 || d != 1 {
		t.Errorf("while the inbox delivers: inbox_queued %v, inbox_delivering %v; want 1, 1", q, d)
	}
	warnings := func() int {
		raw, _ := os.ReadFile(logFile)
		return bytes.Count(raw, []byte("no running config of this gateway delivers this storage's inbox"))
	}

	onDelivery := cfg
	onDelivery.extra = ""
	g = startGateway(t, b, onDelivery) // a reload to on_delivery, the default
	waitUntil(t, "the warning", func() bool {
		raw, _ := os.ReadFile(logFile)
		return warnings() == 1 && bytes.Contains(raw, []byte(`"queued":1`))
	})
	if st := itemState(t, g, key); !st.Queued() {
		t.Fatalf("the queued notification is %v, want still queued", st)
	}
	read()
	read()
	if q, d, _ := inboxGauges(t, id); q != 1 || d != 0 {
		t.Errorf("after the reload to on_delivery: inbox_queued %v, inbox_delivering %v; want 1, 0", q, d)
	}
	if n := warnings(); n != 1 {
		t.Errorf("%d warnings after two readings of the same stranded period, want 1", n)
	}

	// The storage leaves the config (its store leaves the pool): a last
	// reading stays, not delivered.
	other := onDelivery
	other.storage = t.TempDir()
	startGateway(t, b, other)
	q, d, age := inboxGauges(t, id)
	if q != 1 || d != 0 {
		t.Errorf("once the storage left the config: inbox_queued %v, inbox_delivering %v; want 1, 0 (kept)", q, d)
	}

	// It comes back with on_delivery: a start, as far as the store goes.
	g = startGateway(t, b, onDelivery)
	time.Sleep(10 * time.Millisecond)
	read()
	if _, _, again := inboxGauges(t, id); again <= age {
		t.Errorf("the first reading after the start left inbox_oldest_age_seconds at %v (%v before): not read", again, age)
	}
	read()
	if n := warnings(); n != 2 {
		t.Errorf("%d warnings after two readings of the start, want 2", n)
	}
	if q, d, _ := inboxGauges(t, id); q != 1 || d != 0 {
		t.Errorf("after the start: inbox_queued %v, inbox_delivering %v; want 1, 0", q, d)
	}

	// on_receipt again, the backend back: delivered.
	b.status(http.StatusOK)
	g = startGateway(t, b, cfg)
	waitUntil(t, "the delivery", func() bool { return itemState(t, g, key) == idempotency.ItemDelivered })
	read()
	if q, d, _ := inboxGauges(t, id); q != 0 || d != 1 {
		t.Errorf("once delivered: inbox_queued %v, inbox_delivering %v; want 0, 1", q, d)
	}

	// Drained, the storage leaves the config: its gauges go.
	startGateway(t, b, other)
	if q, d, _ := inboxGauges(t, id); q != -1 || d != -1 {
		t.Errorf("once the drained storage left the config: inbox_queued %v, inbox_delivering %v; want no series", q, d)
	}
	if n := warnings(); n != 2 {
		t.Errorf("%d warnings, want 2 (one per stranded period)", n)
	}
}

// inboxGauges reads inbox_queued, inbox_delivering and
// inbox_oldest_age_seconds of store id (-1 for a series that does not
// exist).
func inboxGauges(t *testing.T, id string) (queued, delivering, oldest float64) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	m := processMetrics()
	reg.MustRegister(m.InboxQueued, m.InboxDelivering, m.InboxOldest)
	set := seriesSet(t, reg)
	get := func(name string) float64 {
		if v, ok := set[series(name, "store", id)]; ok {
			return v
		}
		return -1
	}
	return get("caddy_dws_notify_inbox_queued"), get("caddy_dws_notify_inbox_delivering"), get("caddy_dws_notify_inbox_oldest_age_seconds")
}

// A queued notification whose delivery reaches a second dws_notify (what
// the first forwards, chainedSite) is not delivered: the try fails, the
// notification stays queued and is tried again, and each try logs the
// ERROR. Before, the second took the delivery as its own, forwarded it
// into nothing, and the status the intercept wrote for it settled the
// item as delivered at the first try.
func TestDeliveryIntoAnotherNotifyFails(t *testing.T) {
	b := newBackend(t)
	dir := t.TempDir()
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	g := routeGateway(t, dir, chainedSite, logFile, "acknowledge on_receipt {\n\t\t\t\tkey "+inboxKeyA+"\n\t\t\t\tbackoff 50ms 200ms\n\t\t\t}", b.addr())
	g.send(g.notice(addPath, addSample(t, "chained-queued"))).expect(t, http.StatusOK, "S", "SUCCESS")
	waitUntil(t, "a second try", func() bool { return len(b.hits()) >= 2 })
	waitUntil(t, "the ERROR lines", func() bool { return len(chainedErrors(t, logFile)) >= 2 })
	it, _, err := storeFor(t, g).Item(t.Context(), keyOf("addPaymentMethod", "chained-queued"))
	if err != nil || !it.State.Queued() || it.Attempts < 2 {
		t.Fatalf("the notification: %+v, %v; want it still queued after failed tries", it, err)
	}
}

// A delivery meets a Client-Id matcher as its notification did: the
// request crossing the routes carries the notification's Client-Id (and
// nothing else of its headers), so a handler picked by `header Client-Id`
// (docs/configuration.md, "One dws_notify per chain") takes its own
// deliveries. Before, the delivery crossed the routes with no headers,
// fell to the other handle block, whose dws_notify does not serve that
// Client-Id, and stayed queued, failing every try.
func TestDeliveryMeetsClientIdMatchers(t *testing.T) {
	first, second := newBackend(t), newBackend(t)
	const secondID = "2188120000000001"
	dir := t.TempDir()
	site := routeGlobals + `http://localhost:9080 {
	@second header Client-Id %[5]s
	handle @second {
		dws_notify {
			client_id %[5]s
			dws_public_key {file.%[2]s}
			api addPaymentMethod /dws/notify/addPaymentMethod
			storage %[3]s
			acknowledge on_receipt {
				key %[4]s
				backoff 50ms 200ms
			}
		}
		reverse_proxy %[6]s
	}
	handle {
		dws_notify {
			client_id %[1]s
			dws_public_key {file.%[2]s}
			api addPaymentMethod /dws/notify/addPaymentMethod
			storage %[3]s
			acknowledge on_receipt {
				key %[4]s
				backoff 50ms 200ms
			}
		}
		reverse_proxy %[7]s
	}
}
`
	g := routeGateway(t, dir, site, secondID, second.addr(), first.addr())
	n := g.notice(addPath, addSample(t, "by-client-id-2"))
	n.clientID = secondID
	g.send(n).expect(t, http.StatusOK, "S", "SUCCESS")
	g.send(g.notice(addPath, addSample(t, "by-client-id-1"))).expect(t, http.StatusOK, "S", "SUCCESS")
	waitUntil(t, "both deliveries", func() bool { return len(second.hits()) >= 1 && len(first.hits()) >= 1 })
	for _, c := range []struct {
		b        *backend
		clientID string
	}{{second, secondID}, {first, testClientID}} {
		hits := c.b.hits()
		if len(hits) != 1 {
			t.Fatalf("the backend of Client-Id %s got %d requests, want 1", c.clientID, len(hits))
		}
		if got := hits[0].header.Get("X-Dws-Client-Id"); got != c.clientID {
			t.Errorf("the backend of Client-Id %s got X-Dws-Client-Id %q", c.clientID, got)
		}
	}
}
