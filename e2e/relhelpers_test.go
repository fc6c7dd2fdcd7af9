package e2e

// Pieces the reliability tests share: a gateway deployment with the knobs
// they turn, a backend stand-in that can be taken down and brought back on
// the same address, a load client that signs every notification like DWS and
// classifies every attempt that got no answer, and a reader for the
// gateway's per-notification log lines.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// relGateway is the deployment the reliability tests run: one loopback
// site, dws_notify with one DWS key (version 1, bare Base64 DER read through
// {file.*}), reverse_proxy to the backend stand-in.
type relGateway struct {
	AdminAddr      string
	SiteAddr       string
	KeyPath        string // DWS public key, bare Base64 DER
	Storage        string
	Store          string // a store subdirective (e.g. store redis ...) used instead of storage
	Backend        string // host:port
	ForwardTimeout string // "" = the default (10s)
	GracePeriod    string // "" = Caddy's default: no limit
	MaxBodySize    string // "" = the default (64KiB)
	Comment        string // written into the Caddyfile, so reloads can differ
	Globals        string // more global options, one per line
	Extra          string // more dws_notify subdirectives, one per line
	Site           string // more directives of the site, one per line
	CatchAll       bool   // add a site for every other Host on the port: 404, not logged
}

func (g relGateway) Caddyfile() string {
	var globals, opts strings.Builder
	if g.GracePeriod != "" {
		fmt.Fprintf(&globals, "\n\tgrace_period %s", g.GracePeriod)
	}
	if g.ForwardTimeout != "" {
		fmt.Fprintf(&opts, "\n\t\tforward_timeout %s", g.ForwardTimeout)
	}
	if g.MaxBodySize != "" {
		fmt.Fprintf(&opts, "\n\t\tmax_body_size %s", g.MaxBodySize)
	}
	for line := range strings.Lines(g.Globals) {
		fmt.Fprintf(&globals, "\n\t%s", strings.TrimRight(line, "\n"))
	}
	for line := range strings.Lines(g.Extra) {
		fmt.Fprintf(&opts, "\n\t\t%s", strings.TrimSpace(line))
	}
	storage := "storage " + g.Storage
	if g.Store != "" {
		storage = g.Store
	}
	comment := ""
	if g.Comment != "" {
		comment = "# " + g.Comment + "\n"
	}
	var site strings.Builder
	for line := range strings.Lines(g.Site) {
		fmt.Fprintf(&site, "\n\t%s", strings.TrimRight(line, "\n"))
	}
	catchAll := ""
	if g.CatchAll {
		_, port, _ := strings.Cut(g.SiteAddr, ":")
		catchAll = fmt.Sprintf("\nhttp://:%s {\n\tbind 127.0.0.1\n\trespond 404\n}\n", port)
	}
	return fmt.Sprintf(`%s{
	admin %s
	persist_config off%s
}

http://%s {
	bind 127.0.0.1
	dws_notify {
		client_id %s
		dws_public_key {file.%s} 1
		api addPaymentMethod %s
		api removePaymentMethod %s
		%s%s
	}
	reverse_proxy %s%s
}
%s`, comment, g.AdminAddr, globals.String(), g.SiteAddr, clientID, g.KeyPath, addURI, removeURI, storage, opts.String(), g.Backend, site.String(), catchAll)
}

// URL is the site's base URL.
func (g relGateway) URL() string { return "http://" + g.SiteAddr }

// onNewPorts is the same deployment on fresh admin and site ports, for a
// second gateway beside the first.
func (g relGateway) onNewPorts(t testing.TB) relGateway {
	t.Helper()
	addrs := freeAddrs(t, 2)
	g.AdminAddr, g.SiteAddr = addrs[0], addrs[1]
	return g
}

// newRelGateway returns a deployment on fresh loopback ports with a fresh
// DWS key pair, storage in the sandbox and the given backend.
func newRelGateway(t testing.TB, sb *sandbox, backendAddr string) (relGateway, *keyPair) {
	t.Helper()
	addrs := freeAddrs(t, 2)
	key := newKeyPair(t, sb, "dws")
	return relGateway{
		AdminAddr: addrs[0],
		SiteAddr:  addrs[1],
		KeyPath:   key.B64Path,
		Storage:   sb.Storage,
		Backend:   backendAddr,
	}, key
}

// ---------------------------------------------------------------------------
// Notifications

// sampleRequestID is the requestId in notification/testdata/add.json.
const sampleRequestID = "20990501203220303032821078591"

// notif is one notification: its requestId and the exact body bytes.
type notif struct {
	ID   string
	Body []byte
	Sum  [32]byte // SHA-256 of Body, to check the backend got these bytes
}

var addSample = sync.OnceValues(func() ([]byte, error) {
	return os.ReadFile("../notification/testdata/add.json")
})

// addNotif is the addPaymentMethod seed sample with its requestId replaced;
// every other byte is the sample's.
func addNotif(t testing.TB, id string) notif {
	t.Helper()
	sample, err := addSample()
	if err != nil {
		t.Fatalf("reading the seed sample: %v", err)
	}
	old := []byte(`"requestId": "` + sampleRequestID + `"`)
	if bytes.Count(sample, old) != 1 {
		t.Fatalf("add.json does not hold exactly one %s", old)
	}
	body := bytes.Replace(sample, old, []byte(`"requestId": "`+id+`"`), 1)
	return notif{ID: id, Body: body, Sum: sha256.Sum256(body)}
}

// addNotifs returns n notifications with requestIds prefix-000000 ...
func addNotifs(t testing.TB, prefix string, n int) []notif {
	t.Helper()
	out := make([]notif, n)
	for i := range out {
		out[i] = addNotif(t, fmt.Sprintf("%s-%06d", prefix, i))
	}
	return out
}

// deliveryIndex counts deliveries per requestId: all of them, and those the
// stand-in answered 2xx (accepted).
type deliveryIndex struct {
	All      map[string]int
	Accepted map[string]int
}

// deliveredTwice checks, after a crash (of the gateway or of its store) and
// a resend of every notification in items until S, what the backend got:
// every requestId acknowledged before the crash was delivered exactly once
// in all, every requestId was accepted, none more than twice, and a second
// delivery only where mayTwice holds (why says what mayTwice means). It
// returns the requestIds delivered twice, in items' order.
func deliveredTwice(t testing.TB, items []notif, ix deliveryIndex, ackedBefore, mayTwice map[string]bool, why string) []string {
	t.Helper()
	var twice []string
	for _, it := range items {
		id := it.ID
		switch n := ix.All[id]; {
		case ackedBefore[id] && n != 1:
			t.Errorf("%s was acknowledged before the crash and delivered %d times in all, want 1", id, n)
		case ix.Accepted[id] < 1:
			t.Errorf("%s was never accepted by the backend", id)
		case n > 2:
			t.Errorf("%s was delivered %d times", id, n)
		case n == 2:
			twice = append(twice, id)
			if !mayTwice[id] {
				t.Errorf("%s was delivered twice although %s", id, why)
			}
		}
	}
	return twice
}

func indexDeliveries(ds []delivery) deliveryIndex {
	ix := deliveryIndex{All: map[string]int{}, Accepted: map[string]int{}}
	for _, d := range ds {
		ix.All[d.RequestID]++
		if d.Status >= 200 && d.Status < 300 {
			ix.Accepted[d.RequestID]++
		}
	}
	return ix
}

// checkDeliveries fails the test for any delivery that is not one of the
// notifications sent (unknown requestId, other bytes, not marked verified).
func checkDeliveries(t testing.TB, ds []delivery, sent map[string]notif) {
	t.Helper()
	bad := 0
	for _, d := range ds {
		n, ok := sent[d.RequestID]
		switch {
		case !ok:
			t.Errorf("backend received requestId %q, which was never sent", d.RequestID)
		case d.Sum != n.Sum:
			t.Errorf("backend received other bytes than were sent for %s", d.RequestID)
		case d.Verified != "true":
			t.Errorf("backend received %s without X-Dws-Verified: true", d.RequestID)
		default:
			continue
		}
		if bad++; bad > 10 {
			t.Fatal("too many bad deliveries")
		}
	}
}

func notifMap(ns ...[]notif) map[string]notif {
	m := map[string]notif{}
	for _, l := range ns {
		for _, n := range l {
			m[n.ID] = n
		}
	}
	return m
}

// tally counts attempts by outcome: "S", "U", "F", or "no answer (<kind>)".
func tally(as []attempt) map[string]int {
	m := map[string]int{}
	for _, a := range as {
		if a.Answered {
			m[a.Result+" "+a.Code]++
		} else {
			m["no answer ("+a.Kind+")"]++
		}
	}
	return m
}

func formatTally(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %d", k, m[k])
	}
	return b.String()
}

// ---------------------------------------------------------------------------
// Gateway log

// logLine is one JSON log line of the gateway.
type logLine struct {
	Level     string `json:"level"`
	Logger    string `json:"logger"`
	Msg       string `json:"msg"`
	RequestID string `json:"request_id"`
	Outcome   string `json:"outcome"`
	Code      string `json:"result_code"`
	Error     string `json:"error"`
}

// notificationLogs returns the gateway's "dws notification" lines: one per
// notification the handler answered.
func notificationLogs(output string) []logLine {
	var out []logLine
	sc := bufio.NewScanner(strings.NewReader(output))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("{")) || !bytes.Contains(line, []byte(`"dws notification"`)) {
			continue
		}
		var l logLine
		if json.Unmarshal(line, &l) == nil && l.Msg == "dws notification" && l.Logger == "http.handlers.dws_notify" {
			out = append(out, l)
		}
	}
	return out
}

// checkNoPanic fails the test if the gateway's output mentions a panic or a
// fatal error.
func checkNoPanic(t testing.TB, name, output string) {
	t.Helper()
	for _, bad := range []string{"panic", "fatal error", "SIGSEGV"} {
		if strings.Contains(output, bad) {
			t.Errorf("%s output mentions %q", name, bad)
		}
	}
}

// waitFor polls cond every 20ms until it holds, failing the test after
// timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// withTimeout runs f and fails the test if it has not returned after d.
func withTimeout(t testing.TB, d time.Duration, what string, f func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("%s did not finish within %s", what, d)
	}
}

// ---------------------------------------------------------------------------
// A running deployment

// relEnv is a gateway (the built binary) in front of a backend, with a
// load client that signs with the gateway's DWS key.
type relEnv struct {
	bin  string
	sb   *sandbox
	be   *backend
	gw   relGateway
	key  *keyPair
	proc *caddyProc
	lc   *dwsClient
}

// startRelEnv starts a deployment; tune may change the gateway's settings
// before the first start.
func startRelEnv(t *testing.T, tune func(*relGateway)) *relEnv {
	t.Helper()
	e := &relEnv{bin: caddyBin(t), sb: newSandbox(t)}
	e.be = newBackend(t)
	e.gw, e.key = newRelGateway(t, e.sb, e.be.Addr)
	if tune != nil {
		tune(&e.gw)
	}
	e.proc = startCaddy(t, e.bin, e.sb, e.gw.Caddyfile(), e.gw.AdminAddr, e.gw.URL()+"/")
	e.lc = newDWS(e.gw.URL(), clientID, e.key.Private)
	return e
}

// restart starts the gateway again on the same sandbox, ports and storage
// (the previous process must have ended).
func (e *relEnv) restart(t *testing.T) {
	t.Helper()
	if !e.proc.Exited() {
		t.Fatal("restart: the previous gateway is still running")
	}
	e.proc = startCaddy(t, e.bin, e.sb, e.gw.Caddyfile(), e.gw.AdminAddr, e.gw.URL()+"/")
}

// sendUntil sends every notification, then again every one whose answer was
// not in want, pausing between rounds like DWS's retries do, until all were
// answered with a wanted result or the timeout passes. It returns every
// attempt and the number of rounds.
func (e *relEnv) sendUntil(t *testing.T, items []notif, conc int, want string, pause, timeout time.Duration) ([]attempt, int) {
	t.Helper()
	var all []attempt
	deadline := time.Now().Add(timeout)
	pending := items
	rounds := 0
	for len(pending) > 0 {
		rounds++
		as := e.lc.runLoad(t, pending, conc, nil, nil)
		all = append(all, as...)
		done := map[string]bool{}
		for _, a := range as {
			if a.Answered && a.Result == want {
				done[a.ID] = true
			}
			if a.Answered && a.Result == "F" {
				t.Fatalf("round %d: %s", rounds, a)
			}
		}
		var next []notif
		for _, n := range pending {
			if !done[n.ID] {
				next = append(next, n)
			}
		}
		pending = next
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d rounds, %d notifications still not answered %s (last round: %s)", rounds, len(pending), want, formatTally(tally(as)))
		}
		time.Sleep(pause)
	}
	return all, rounds
}
