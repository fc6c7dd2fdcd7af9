package caddymodule

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dwsnotify/dws_notify/cli"
	"github.com/dwsnotify/dws_notify/config"
	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/signature"
)

// The integration tests run a real in-process Caddy (caddytest, admin on
// localhost:2999, HTTP on 9080) in front of a real httptest backend, with
// real RSA keys and Badger in t.TempDir(). Every InitServer is a real config
// reload of the one Caddy process the package's tests share; the unit tests
// provision a Handler directly and call its ServeHTTP.

const (
	testClientID = "2188120000000000"
	addPath      = "/dws/notify/addPaymentMethod"
	removePath   = "/dws/notify/removePaymentMethod"
	gatewayURL   = "http://localhost:9080"
	// inboxKeyA and inboxKeyB are inbox keys (Base64 of 32 bytes).
	inboxKeyA = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	inboxKeyB = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
)

// testKeys are real RSA-2048 key pairs, generated once per test binary:
// DWS's pair (the gateway holds the public half) and the merchant's pair
// (the gateway signs its answers with the private half).
type testKeys struct {
	dws, dwsNext, merchant *rsa.PrivateKey
	dir                    string // PEM files of the above
}

var keysOnce = sync.OnceValues(func() (*testKeys, error) {
	k := &testKeys{}
	for _, p := range []**rsa.PrivateKey{&k.dws, &k.dwsNext, &k.merchant} {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		*p = key
	}
	dir, err := os.MkdirTemp("", "dws-notify-keys-")
	if err != nil {
		return nil, err
	}
	k.dir = dir
	write := func(name, typ string, der []byte) error {
		return os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
	}
	for name, key := range map[string]*rsa.PrivateKey{"dws": k.dws, "dws_next": k.dwsNext} {
		der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			return nil, err
		}
		if err := write(name+"_public.pem", "PUBLIC KEY", der); err != nil {
			return nil, err
		}
	}
	for name, key := range map[string]*rsa.PrivateKey{"merchant": k.merchant, "dws": k.dws} {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		if err := write(name+"_private.pem", "PRIVATE KEY", der); err != nil {
			return nil, err
		}
	}
	der, err := x509.MarshalPKIXPublicKey(&k.merchant.PublicKey)
	if err != nil {
		return nil, err
	}
	if err := write("merchant_public.pem", "PUBLIC KEY", der); err != nil {
		return nil, err
	}
	return k, nil
})

func keys(t testing.TB) *testKeys {
	t.Helper()
	k, err := keysOnce()
	if err != nil {
		t.Fatalf("generating test keys: %v", err)
	}
	return k
}

// bareBase64 is a public key the way DWS hands it out: bare Base64 DER.
func bareBase64(t testing.TB, pub *rsa.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return base64Std(der)
}

// seed returns a seed sample body from the notification package's fixtures
// with its requestId replaced (the samples' own id when id is empty).
func seed(t testing.TB, name, id string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "notification", "testdata", name))
	if err != nil {
		t.Fatalf("reading seed sample: %v", err)
	}
	if id == "" {
		return b
	}
	var probe struct {
		RequestID string `json:"requestId"`
	}
	if err := json.Unmarshal(b, &probe); err != nil || probe.RequestID == "" {
		t.Fatalf("seed %s has no requestId: %v", name, err)
	}
	return bytes.Replace(b, []byte(`"`+probe.RequestID+`"`), []byte(`"`+id+`"`), 1)
}

func addSample(t testing.TB, id string) []byte    { return seed(t, "add.json", id) }
func removeSample(t testing.TB, id string) []byte { return seed(t, "remove.json", id) }

// backend is a real HTTP backend that records what it receives.
type backend struct {
	srv *httptest.Server

	mu       sync.Mutex
	received []received
	respond  func(w http.ResponseWriter, r *http.Request)
}

type received struct {
	path     string
	header   http.Header
	body     []byte
	length   int64
	chunked  []string    // Transfer-Encoding as the backend's server read it
	trailer  http.Header // trailers that came after the body
	bodyErr  error       // reading the body failed
	protocol string
}

func newBackend(t testing.TB) *backend {
	b := &backend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		b.mu.Lock()
		b.received = append(b.received, received{path: r.URL.Path, header: r.Header.Clone(), body: body, length: r.ContentLength,
			chunked: r.TransferEncoding, trailer: r.Trailer.Clone(), bodyErr: err, protocol: r.Proto})
		respond := b.respond
		b.mu.Unlock()
		if respond != nil {
			respond(w, r)
			return
		}
		w.Header().Set("Set-Cookie", "backend=leak")
		w.Header().Set("X-Backend", "leak")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "backend body that must never reach DWS")
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) setRespond(f func(w http.ResponseWriter, r *http.Request)) {
	b.mu.Lock()
	b.respond = f
	b.mu.Unlock()
}

func (b *backend) status(code int) {
	b.setRespond(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "7")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "refused")
	})
}

func (b *backend) hits() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.received...)
}

func (b *backend) addr() string { return strings.TrimPrefix(b.srv.URL, "http://") }

// gateway is an in-process Caddy with a dws_notify site.
type gateway struct {
	t       *testing.T
	tester  *caddytest.Tester
	storage string
	keys    *testKeys
}

// gatewayConfig describes the site block under test.
type gatewayConfig struct {
	storage  string // default: a fresh t.TempDir()
	store    string // a store subdirective (e.g. "store redis ..."), replacing storage
	globals  string // more global options
	extra    string // more dws_notify subdirectives
	before   string // directives placed in the site before dws_notify
	upstream string // reverse_proxy target; "none" for no handler after dws_notify
	sign     bool   // configure merchant_private_key
	site     string // the site address; default http://localhost:9080
}

func startGateway(t *testing.T, b *backend, cfg gatewayConfig) *gateway {
	t.Helper()
	config, k := gatewayCaddyfile(t, b, &cfg)
	tester := caddytest.NewTester(t)
	tester.InitServer(config, "caddyfile")
	// Unload the site before the test's directories are removed (cleanups
	// run last-in first-out), so the store closes while its files exist.
	t.Cleanup(func() { unloadConfig(t) })
	return &gateway{t: t, tester: tester, storage: cfg.storage, keys: k}
}

// gatewayCaddyfile is the Caddyfile of cfg (whose defaults it fills in)
// and its keys.
func gatewayCaddyfile(t *testing.T, b *backend, cfg *gatewayConfig) (string, *testKeys) {
	t.Helper()
	k := keys(t)
	if cfg.storage == "" {
		cfg.storage = t.TempDir()
	}
	upstream := ""
	switch {
	case cfg.upstream == "none":
	case cfg.upstream != "":
		upstream = "reverse_proxy " + cfg.upstream
	case b != nil:
		upstream = "reverse_proxy " + b.addr()
	}
	storeLine := "storage " + cfg.storage
	if cfg.store != "" {
		storeLine = cfg.store
	}
	if cfg.site == "" {
		cfg.site = "http://localhost:9080"
	}
	signing := ""
	if cfg.sign {
		signing = "merchant_private_key {file." + filepath.Join(k.dir, "merchant_private.pem") + "} 2"
	}
	config := fmt.Sprintf(`{
	admin localhost:2999
	http_port 9080
	https_port 9443
	grace_period 1ns
	skip_install_trust
	%s
}
%s {
	%s
	dws_notify {
		client_id %s
		dws_public_key {file.%s}
		%s
		api addPaymentMethod %s
		api removePaymentMethod %s
		%s
		forward_timeout 2s
		%s
	}
	%s
}
`, cfg.globals, cfg.site, cfg.before, testClientID, filepath.Join(k.dir, "dws_public.pem"), signing, addPath, removePath, storeLine, cfg.extra, upstream)
	return config, k
}

// unloadConfig replaces the running config with an admin-only one; the old
// config's handlers are cleaned up before the load request returns.
func unloadConfig(t testing.TB) {
	res, err := http.Post("http://localhost:2999/load", "application/json", strings.NewReader(`{"admin":{"listen":"localhost:2999"}}`))
	if err != nil {
		t.Errorf("unloading config: %v", err)
		return
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Errorf("unloading config: HTTP %d: %s", res.StatusCode, b)
	}
}

// notice is one notification as DWS would send it.
type notice struct {
	path, query string
	body        []byte
	clientID    string
	time        string
	key         *rsa.PrivateKey
	keyVersion  int
	method      string
	mutate      func(h http.Header) // applied after signing
}

func (g *gateway) notice(path string, body []byte) *notice {
	return &notice{path: path, body: body, clientID: testClientID, key: g.keys.dws, keyVersion: 1, method: http.MethodPost}
}

func (n *notice) uri() string {
	if n.query != "" {
		return n.path + "?" + n.query
	}
	return n.path
}

func (n *notice) request(t testing.TB) *http.Request {
	t.Helper()
	if n.time == "" {
		n.time = fmt.Sprint(time.Now().UnixMilli())
	}
	req, err := http.NewRequest(n.method, gatewayURL+n.uri(), bytes.NewReader(n.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	req.Header.Set("Client-Id", n.clientID)
	req.Header.Set("Request-Time", n.time)
	sig, err := signature.SignatureHeader(n.key, n.keyVersion, n.uri(), n.clientID, n.time, n.body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Signature", sig)
	if n.mutate != nil {
		n.mutate(req.Header)
	}
	return req
}

// answer is a parsed gateway response.
type answer struct {
	status int
	header http.Header
	raw    []byte
	result struct {
		ResultStatus  string `json:"resultStatus"`
		ResultCode    string `json:"resultCode"`
		ResultMsg     string `json:"resultMsg"`
		ResultMessage string `json:"resultMessage"`
	}
}

func (g *gateway) send(n *notice) answer {
	g.t.Helper()
	return g.do(n.request(g.t))
}

func (g *gateway) do(req *http.Request) answer {
	g.t.Helper()
	res, err := g.tester.Client.Do(req)
	if err != nil {
		g.t.Fatalf("request failed: %v", err)
	}
	a, err := readAnswer(res)
	if err != nil {
		g.t.Fatal(err)
	}
	return a
}

// readAnswer reads and closes res, whose body must be one envelope.
func readAnswer(res *http.Response) (answer, error) {
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{status: res.StatusCode, header: res.Header, raw: raw}
	var env struct {
		Result *json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(raw, &env); err != nil || env.Result == nil {
		return a, fmt.Errorf("answer is not an envelope: %q (%v)", raw, err)
	}
	if err := json.Unmarshal(*env.Result, &a.result); err != nil {
		return a, err
	}
	return a, nil
}

func (a answer) expect(t testing.TB, status int, resultStatus, code string) {
	t.Helper()
	if a.status != status || a.result.ResultStatus != resultStatus || a.result.ResultCode != code {
		t.Fatalf("got HTTP %d %s/%s (%q), want HTTP %d %s/%s", a.status, a.result.ResultStatus, a.result.ResultCode, a.raw, status, resultStatus, code)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json; charset=UTF-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	for _, leaked := range []string{"Set-Cookie", "X-Backend"} {
		if v := a.header.Get(leaked); v != "" {
			t.Errorf("backend header %s leaked onto the answer: %q", leaked, v)
		}
	}
	if rt := a.header.Get("Response-Time"); rt == "" {
		t.Error("no Response-Time header")
	}
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func nopCloser(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }

// storeFor returns the shared store the gateway's handlers use.
func storeFor(t testing.TB, g *gateway) *sharedStore {
	t.Helper()
	dir, err := filepath.EvalSymlinks(g.storage)
	if err != nil {
		t.Fatal(err)
	}
	var found *sharedStore
	storePool.Range(func(key, value any) bool {
		if key == dir {
			found = value.(*sharedStore)
			return false
		}
		return true
	})
	if found == nil {
		t.Fatalf("no open store for %s", dir)
	}
	return found
}

func keyOf(api, requestID string) idempotency.Key {
	return idempotency.Key{ClientID: testClientID, API: api, RequestID: requestID}
}

// faultyStore wraps a real store and fails on demand.
type faultyStore struct {
	idempotency.Store
	failClaim, failComplete atomic.Bool
	// failAfterComplete: Complete is applied, then reports a failure (a
	// reply lost on the way back, an fsync that failed after the commit).
	failAfterComplete atomic.Bool
}

var errInjected = errors.New("injected store failure")

func (f *faultyStore) Claim(ctx context.Context, key idempotency.Key, fp idempotency.Fingerprint, lease, retention time.Duration) (idempotency.ClaimResult, error) {
	if f.failClaim.Load() {
		return idempotency.ClaimResult{}, errInjected
	}
	return f.Store.Claim(ctx, key, fp, lease, retention)
}

func (f *faultyStore) Complete(ctx context.Context, key idempotency.Key, token uint64, a idempotency.Answer, retention time.Duration) error {
	if f.failComplete.Load() {
		return errInjected
	}
	err := f.Store.Complete(ctx, key, token, a, retention)
	if err == nil && f.failAfterComplete.Load() {
		return errInjected
	}
	return err
}

// installStore puts the Badger store of dir into the pool, opened (and
// reopened) through wrap, ahead of the gateway or handler that will use it:
// their provisioning finds it there. The test's own reference is given
// back by the returned function, or at the test's end, so that the store
// closes with its last handler, as any other.
func installStore(t testing.TB, dir string, wrap func(idempotency.Store) idempotency.Store) (handOver func()) {
	t.Helper()
	canonical, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	spec := badgerSpec(canonical)
	open := spec.open
	spec.open = func(ctx context.Context) (idempotency.Store, error) {
		st, err := open(ctx)
		if err != nil {
			return nil, err
		}
		return wrap(st), nil
	}
	if _, err := acquire(spec); err != nil {
		t.Fatal(err)
	}
	handOver = sync.OnceFunc(func() { _ = releaseStore(canonical) })
	t.Cleanup(handOver)
	return handOver
}

// installFaultyStore has the pool open dir as a faultyStore.
func installFaultyStore(t testing.TB, dir string) *faultyStore {
	t.Helper()
	f := &faultyStore{}
	installStore(t, dir, func(st idempotency.Store) idempotency.Store {
		f.Store = st
		return f
	})
	return f
}

// acquireStore takes a reference to the Badger store in dir.
func acquireStore(dir string) (*sharedStore, error) {
	return acquire(badgerSpec(dir))
}

// waitUntil polls cond for up to 30s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runCLI runs `caddy dws-notify <args>` in-process (cli.Run) and returns
// what it printed and its error.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := cli.Run(&out, args...)
	return out.String(), err
}

// newContext returns a Caddy context (with its own metrics registry, as
// every config load has) that is cancelled when the test ends.
func newContext(t *testing.T) caddy.Context {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}

// baseHandler is a complete configuration with literal keys and a fresh
// storage directory.
func baseHandler(t *testing.T) *Handler {
	k := keys(t)
	return &Handler{
		Handler: config.Handler{
			ClientID:     []string{testClientID},
			DWSPublicKey: []config.Key{{Key: bareBase64(t, &k.dws.PublicKey)}},
			API:          []config.API{{Name: "addPaymentMethod", Path: addPath}, {Name: "removePaymentMethod", Path: removePath}},
			Storage:      t.TempDir(),
		},
	}
}

// provisioned provisions h in ctx, checks Validate, and cleans it up when
// the test ends. Its log goes to the returned observer.
func provisioned(t *testing.T, ctx caddy.Context, h *Handler) *observer.ObservedLogs {
	t.Helper()
	if err := h.Provision(ctx); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	t.Cleanup(func() { _ = h.Cleanup() })
	if err := h.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	core, logs := observer.New(zap.DebugLevel)
	h.logger = zap.New(core)
	return logs
}

// serve runs one signed notification through h with next as the backend.
func serve(t *testing.T, h *Handler, n *notice, next caddyhttp.Handler) (*httptest.ResponseRecorder, *caddy.Replacer) {
	t.Helper()
	req := n.request(t)
	r := httptest.NewRequest(req.Method, n.uri(), bytes.NewReader(n.body))
	r.Header = req.Header
	repl := caddy.NewReplacer()
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, r, next); err != nil {
		t.Fatalf("ServeHTTP returned %v; the handler writes its own answers", err)
	}
	return w, repl
}

func unitNotice(t *testing.T, path string, body []byte) *notice {
	return &notice{path: path, body: body, clientID: testClientID, key: keys(t).dws, keyVersion: 1, method: http.MethodPost}
}

var okBackend = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
})

// rawExchange writes req (a complete HTTP/1.1 request) on a new connection
// to the gateway and reads the answer's envelope.
func rawExchange(t *testing.T, req string) answer {
	t.Helper()
	conn, err := net.Dial("tcp", "127.0.0.1:9080")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	for err == nil && res.StatusCode < 200 { // 100 Continue
		res, err = http.ReadResponse(br, nil)
	}
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	a, err := readAnswer(res)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// signedRaw is an add notification with requestId id as DWS sends it, on
// the wire: extra header lines (each ending in CRLF) after the signed ones;
// with chunked, the body goes in two chunks followed by the trailer lines.
func signedRaw(t *testing.T, g *gateway, id, extra string, chunked bool, trailers string) (string, []byte) {
	t.Helper()
	return signedRawAt(t, g, addPath, addSample(t, id), extra, chunked, trailers)
}

// signedRawAt is signedRaw for any body sent to path.
func signedRawAt(t *testing.T, g *gateway, path string, body []byte, extra string, chunked bool, trailers string) (string, []byte) {
	t.Helper()
	rt := fmt.Sprint(time.Now().UnixMilli())
	sig, err := signature.SignatureHeader(g.keys.dws, 1, path, testClientID, rt, body)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: localhost:9080\r\nContent-Type: application/json; charset=UTF-8\r\nClient-Id: %s\r\nRequest-Time: %s\r\nSignature: %s\r\n%s",
		path, testClientID, rt, sig, extra)
	if !chunked {
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
		return b.String(), body
	}
	half := len(body) / 2
	fmt.Fprintf(&b, "Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n%x\r\n%s\r\n0\r\n%s\r\n", half, body[:half], len(body)-half, body[half:], trailers)
	return b.String(), body
}

// recordingBackend is a next handler that keeps the headers it was given.
type recordingBackend struct {
	mu      sync.Mutex
	headers []http.Header
}

func (b *recordingBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	b.mu.Lock()
	b.headers = append(b.headers, r.Header.Clone())
	b.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	return nil
}

func (b *recordingBackend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.headers)
}

func (b *recordingBackend) last() http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.headers[len(b.headers)-1]
}

var _ caddyhttp.Handler = (*recordingBackend)(nil)

// placeholderBackend is a next handler that answers 200 and stores in
// *seen the template with the request's placeholders replaced ("-" for
// those not set).
func placeholderBackend(template string, seen *string) caddyhttp.Handler {
	return caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		*seen = repl.ReplaceAll(template, "-")
		w.WriteHeader(http.StatusOK)
		return nil
	})
}

// statusBackend answers every forward with code.
func statusBackend(code int) caddyhttp.Handler {
	return caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(code)
		return nil
	})
}

// withRequestID returns an add sample whose requestId member is replaced
// by raw (JSON text), or removed when raw is "".
func withRequestID(t *testing.T, raw string) []byte {
	t.Helper()
	body := addSample(t, "placeholder-id")
	old := []byte(`"requestId": "placeholder-id",`)
	if !bytes.Contains(body, old) {
		t.Fatalf("the add sample has no %s", old)
	}
	if raw == "" {
		return bytes.Replace(body, old, nil, 1)
	}
	return bytes.Replace(body, old, []byte(`"requestId": `+raw+`,`), 1)
}

// phase runs one step of a scenario as a subtest; a step that fails ends
// the scenario, whose later steps build on it.
func phase(t *testing.T, name string, step func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, step) {
		t.FailNow()
	}
}

// caddyConfigOf returns the Caddy config that the JSON encoding of cfg
// is, as caddy.Validate takes it.
func caddyConfigOf(t testing.TB, cfg map[string]any) *caddy.Config {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return decodeCaddyConfig(t, raw)
}

// decodeCaddyConfig decodes a JSON Caddy config.
func decodeCaddyConfig(t testing.TB, raw []byte) *caddy.Config {
	t.Helper()
	cfg := new(caddy.Config)
	if err := json.Unmarshal(raw, cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}
