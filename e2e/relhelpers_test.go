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
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/signature"
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

// ---------------------------------------------------------------------------
// Backend stand-in with an off switch

// backendMode is how the stand-in answers.
type backendMode struct {
	Status int           // HTTP status to answer; 0 means 200
	Delay  time.Duration // wait before answering
	Hang   bool          // never answer (until the caller gives up or Release)
	Hold   bool          // answer only after Release (or give up with the caller)
}

// delivery is one request as the stand-in received it.
type delivery struct {
	RequestID   string // X-Dws-Request-Id
	RequestTime string // Request-Time, as DWS signed it
	Sum         [32]byte
	Verified    string // X-Dws-Verified
	Status      int    // what the stand-in answered (0: it never answered)
	At          time.Time
	// The request as the stand-in's server read it, for the checks of
	// what a sender's header tricks leave of it.
	Path             string
	Header           http.Header
	ContentLength    int64
	TransferEncoding []string
	Trailer          http.Header
	BodyLen          int
}

// ctlBackend is a legacy-backend stand-in on a fixed loopback address that
// can be taken down (connections refused) and brought back, answer with a
// chosen status, slowly, or not at all, and records every request.
type ctlBackend struct {
	t    testing.TB
	Addr string

	mu         sync.Mutex
	srv        *http.Server
	mode       backendMode
	release    chan struct{} // closed by Release: hanging requests return
	deliveries []delivery
	inHandler  atomic.Int64
}

// newCtlBackend starts the stand-in, up and answering 200.
func newCtlBackend(t testing.TB) *ctlBackend {
	t.Helper()
	b := &ctlBackend{t: t, Addr: freeAddrs(t, 1)[0], release: make(chan struct{})}
	b.Up()
	t.Cleanup(b.Down)
	return b
}

// Up starts serving on the stand-in's address (again).
func (b *ctlBackend) Up() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		return
	}
	var ln net.Listener
	var err error
	// The address was ours a moment ago; after Down it may take a moment
	// for the kernel to let it go.
	for i := 0; ; i++ {
		ln, err = net.Listen("tcp", b.Addr)
		if err == nil || i == 100 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		b.t.Fatalf("backend: listening on %s again: %v", b.Addr, err)
	}
	b.srv = &http.Server{Handler: http.HandlerFunc(b.serve), ReadHeaderTimeout: time.Minute}
	go func(srv *http.Server) { _ = srv.Serve(ln) }(b.srv)
}

// Down closes the listener and every connection: the gateway's next
// forward is refused.
func (b *ctlBackend) Down() {
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	b.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// SetMode changes how later requests are answered.
func (b *ctlBackend) SetMode(m backendMode) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mode = m
}

// Release lets every hanging request return (with no answer written) and
// every held one be answered; later Hang and Hold requests wait for the next
// Release.
func (b *ctlBackend) Release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.release)
	b.release = make(chan struct{})
}

// InHandler is the number of requests the stand-in is holding right now.
func (b *ctlBackend) InHandler() int64 { return b.inHandler.Load() }

func (b *ctlBackend) serve(w http.ResponseWriter, r *http.Request) {
	b.inHandler.Add(1)
	defer b.inHandler.Add(-1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	b.mu.Lock()
	mode, release := b.mode, b.release
	i := len(b.deliveries)
	b.deliveries = append(b.deliveries, delivery{
		RequestID:   r.Header.Get("X-Dws-Request-Id"),
		RequestTime: r.Header.Get("Request-Time"),
		Sum:         sha256.Sum256(body),
		Verified:    r.Header.Get("X-Dws-Verified"),
		At:          time.Now(),

		Path:             r.URL.Path,
		Header:           r.Header.Clone(),
		ContentLength:    r.ContentLength,
		TransferEncoding: r.TransferEncoding,
		Trailer:          r.Trailer.Clone(),
		BodyLen:          len(body),
	})
	b.mu.Unlock()

	if mode.Delay > 0 {
		select {
		case <-time.After(mode.Delay):
		case <-r.Context().Done():
			return
		}
	}
	if mode.Hang || mode.Hold {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		if mode.Hang {
			return
		}
	}
	status := mode.Status
	if status == 0 {
		status = http.StatusOK
	}
	b.mu.Lock()
	b.deliveries[i].Status = status
	b.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, backendBody)
}

// Deliveries returns a copy of every request received so far.
func (b *ctlBackend) Deliveries() []delivery {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]delivery(nil), b.deliveries...)
}

// Count is the number of requests received so far.
func (b *ctlBackend) Count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.deliveries)
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

// ---------------------------------------------------------------------------
// Load client

// attempt is one POST of a notification and what came of it.
type attempt struct {
	ID          string
	RequestTime string
	Start, End  time.Time
	Answered    bool   // a complete HTTP answer arrived
	Status      int    // its HTTP status
	Result      string // resultStatus: S, U or F
	Code        string // resultCode
	Err         error  // why there was no answer
	// For attempts without an answer: where the connection failed.
	Kind   string // "refused", "reset", "eof", "closed idle", "timeout", "other"
	Wrote  bool   // the whole request had been written
	Reused bool   // sent on a kept-alive connection
	// Gateway is the fleet gateway it went to, for tests that set it.
	Gateway int
}

// String describes an attempt without any body or signature.
func (a attempt) String() string {
	if a.Answered {
		return fmt.Sprintf("%s: HTTP %d %s %s", a.ID, a.Status, a.Result, a.Code)
	}
	return fmt.Sprintf("%s: no answer (%s, request written: %v, reused connection: %v): %v", a.ID, a.Kind, a.Wrote, a.Reused, a.Err)
}

// loadClient posts notifications the way DWS does: signed afresh for every
// attempt (Request-Time = now, epoch milliseconds), on a new connection each
// time.
type loadClient struct {
	base       string
	key        *rsa.PrivateKey
	keyVersion int
	client     *http.Client
}

func newLoadClient(base string, key *rsa.PrivateKey) *loadClient {
	return &loadClient{
		base:       base,
		key:        key,
		keyVersion: 1,
		client: &http.Client{
			Timeout: 60 * time.Second,
			Transport: &http.Transport{
				Proxy:             nil,
				DisableKeepAlives: true,
				DialContext:       (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			},
		},
	}
}

// keepAlive returns a client like c that keeps connections open between
// notifications (up to conns idle ones).
func (c *loadClient) keepAlive(conns int) *loadClient {
	k := *c
	k.client = &http.Client{
		Timeout: c.client.Timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConnsPerHost: conns,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		},
	}
	return &k
}

// Send posts n to the addPaymentMethod path once.
func (c *loadClient) Send(t testing.TB, n notif) attempt {
	return c.Prepare(t, n).Do(t)
}

// prepared is a signed notification ready to be posted.
type prepared struct {
	c    *loadClient
	n    notif
	time string
	sig  string
}

// Prepare signs n (Request-Time = now) without sending it.
func (c *loadClient) Prepare(t testing.TB, n notif) prepared {
	p := prepared{c: c, n: n, time: strconv.FormatInt(time.Now().UnixMilli(), 10)}
	sig, err := signature.SignatureHeader(c.key, c.keyVersion, addURI, clientID, p.time, n.Body)
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	p.sig = sig
	return p
}

// Do posts the prepared notification once.
func (p prepared) Do(t testing.TB) attempt {
	c, n := p.c, p.n
	a := attempt{ID: n.ID, RequestTime: p.time}
	req, err := http.NewRequest(http.MethodPost, c.base+addURI, bytes.NewReader(n.Body))
	if err != nil {
		t.Errorf("request: %v", err)
		a.Err, a.Kind = err, "other"
		return a
	}
	req.Header.Set("Client-Id", clientID)
	req.Header.Set("Request-Time", a.RequestTime)
	req.Header.Set("Signature", p.sig)
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	var wrote, reused atomic.Bool
	trace := &httptrace.ClientTrace{
		GotConn:      func(i httptrace.GotConnInfo) { reused.Store(i.Reused) },
		WroteRequest: func(i httptrace.WroteRequestInfo) { wrote.Store(i.Err == nil) },
	}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))

	a.Start = time.Now()
	resp, err := c.client.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	a.End = time.Now()
	if err != nil {
		a.Err, a.Kind, a.Wrote, a.Reused = err, errKind(err), wrote.Load(), reused.Load()
		return a
	}
	a.Answered, a.Status = true, resp.StatusCode
	var env struct {
		Result struct {
			ResultStatus string `json:"resultStatus"`
			ResultCode   string `json:"resultCode"`
		} `json:"result"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Errorf("%s: HTTP %d, answer is not an envelope (%v)", n.ID, resp.StatusCode, err)
	}
	a.Result, a.Code = env.Result.ResultStatus, env.Result.ResultCode
	return a
}

// errKind classifies a transport error.
func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case strings.Contains(err.Error(), "server closed idle connection"):
		// net/http's name for a kept-alive connection that the server
		// closed as the request was being sent on it.
		return "closed idle"
	}
	return "other"
}

// runLoad sends every notification in items once with conc workers and
// returns the attempts in the order they finished. Before each send it asks
// keepGoing; once that says no, the remaining items are not sent.
func (c *loadClient) runLoad(t testing.TB, items []notif, conc int, keepGoing func() bool, onDone func(attempt)) []attempt {
	var (
		next     atomic.Int64
		mu       sync.Mutex
		attempts []attempt
		wg       sync.WaitGroup
	)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if keepGoing != nil && !keepGoing() {
					return
				}
				i := int(next.Add(1)) - 1
				if i >= len(items) {
					return
				}
				a := c.Send(t, items[i])
				if onDone != nil {
					onDone(a)
				}
				mu.Lock()
				attempts = append(attempts, a)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return attempts
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

// relEnv is a gateway (the built binary) in front of a ctlBackend, with a
// load client that signs with the gateway's DWS key.
type relEnv struct {
	bin  string
	sb   *sandbox
	be   *ctlBackend
	gw   relGateway
	key  *keyPair
	proc *caddyProc
	lc   *loadClient
}

// startRelEnv starts a deployment; tune may change the gateway's settings
// before the first start.
func startRelEnv(t *testing.T, tune func(*relGateway)) *relEnv {
	t.Helper()
	e := &relEnv{bin: caddyBin(t), sb: newSandbox(t)}
	e.be = newCtlBackend(t)
	e.gw, e.key = newRelGateway(t, e.sb, e.be.Addr)
	if tune != nil {
		tune(&e.gw)
	}
	e.proc = startCaddy(t, e.bin, e.sb, e.gw.Caddyfile(), e.gw.AdminAddr, e.gw.URL()+"/")
	e.lc = newLoadClient(e.gw.URL(), e.key.Private)
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
