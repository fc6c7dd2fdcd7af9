package e2e

// The harness: everything a test needs to drive the built Caddy binary as a
// real child process. Tests in this package (the smoke test, and later the
// reliability suite: kill -9, restart, reload) build on these pieces:
//
//   - caddyBin: the binary under test, from DWS_CADDY_BIN, or skip.
//   - freeAddrs: loopback addresses for the admin API and the sites.
//   - newSandbox: private HOME / XDG directories plus a place for files; a
//     sandbox outlives the processes started in it, so a restarted Caddy finds
//     the same data directory and storage.
//   - startCaddy: run `caddy run --config <Caddyfile> --adapter caddyfile`,
//     wait until the admin API and the site answer, stop it (SIGTERM, then
//     SIGKILL) when the test ends, and dump its stderr if the test failed.
//     (*caddyProc).Kill is the crash; (*caddyProc).Load reloads through the
//     admin API.
//   - newBackend: the legacy backend stand-in, recording what reaches it.
//   - dwsSender: signs and posts a notification exactly as DWS does.
//
// Keys and notification bodies are never logged.

import (
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
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/signature"
)

// binEnv names the environment variable that points at the built binary.
const binEnv = "DWS_CADDY_BIN"

const (
	readyTimeout = 30 * time.Second // from exec to admin API and site answering
	stopTimeout  = 15 * time.Second // SIGTERM to exit, before SIGKILL
	callTimeout  = 20 * time.Second // one HTTP exchange with the gateway
)

// caddyBin returns the absolute path of the Caddy binary under test. It
// skips the test when DWS_CADDY_BIN is unset, and fails it when the variable
// is set but does not name an executable file.
func caddyBin(t testing.TB) string {
	t.Helper()
	bin := os.Getenv(binEnv)
	if bin == "" {
		t.Skipf("skipping: %s is not set; these tests drive a built Caddy binary: run ./xcaddy.sh, then %s=$PWD/caddy go test -count=1 -v ./e2e/", binEnv, binEnv)
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		t.Fatalf("%s=%q: %v", binEnv, bin, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		t.Fatalf("%s=%q: %v", binEnv, bin, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		t.Fatalf("%s=%q is not an executable file", binEnv, bin)
	}
	return abs
}

// freeAddrs returns n distinct loopback addresses with TCP ports that were
// free a moment ago: the kernel picks them, and all n listeners stay open
// until every port is chosen, so no two are the same.
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	addrs := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs
}

// sandbox is a private directory tree for Caddy processes: HOME and the XDG
// directories point inside it, so Caddy's data directory (and the default
// dws_notify storage) never touches the real ~/.local/share/caddy.
type sandbox struct {
	Dir        string // files written by the test: Caddyfiles, keys
	Home       string
	DataHome   string // XDG_DATA_HOME: Caddy's data directory is <DataHome>/caddy
	ConfigHome string // XDG_CONFIG_HOME: Caddy's autosave.json
	Storage    string // a directory for the dws_notify `storage` option
}

func newSandbox(t testing.TB) *sandbox {
	t.Helper()
	root := t.TempDir()
	s := &sandbox{
		Dir:        filepath.Join(root, "files"),
		Home:       filepath.Join(root, "home"),
		DataHome:   filepath.Join(root, "xdg-data"),
		ConfigHome: filepath.Join(root, "xdg-config"),
		Storage:    filepath.Join(root, "dws-storage"),
	}
	for _, d := range []string{s.Dir, s.Home, s.DataHome, s.ConfigHome, s.Storage} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// env is the environment for a Caddy child: ours, with HOME and the XDG
// directories replaced.
func (s *sandbox) env() []string {
	override := map[string]string{
		"HOME":            s.Home,
		"XDG_DATA_HOME":   s.DataHome,
		"XDG_CONFIG_HOME": s.ConfigHome,
		"XDG_CACHE_HOME":  filepath.Join(s.Home, ".cache"),
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := override[k]; !ok {
			env = append(env, kv)
		}
	}
	for k, v := range override {
		env = append(env, k+"="+v)
	}
	return env
}

// writeFile writes data to name inside the sandbox and returns its path.
func (s *sandbox) writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(s.Dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// runCaddy runs a short-lived caddy subcommand (validate, list-modules,
// adapt, version) in the sandbox and returns its combined output and error.
func runCaddy(t testing.TB, bin string, s *sandbox, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = s.env()
	cmd.Dir = s.Dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// lockedBuffer collects a child's output; Caddy writes while tests read.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// caddyProc is one running `caddy run` child.
type caddyProc struct {
	t         testing.TB
	AdminAddr string // host:port of the admin API, as written in the Caddyfile
	cmd       *exec.Cmd
	output    *lockedBuffer // stdout and stderr (Caddy logs to stderr)
	exited    chan struct{} // closed when the process has been reaped
	waitErr   error         // valid once exited is closed
}

// startCaddy writes caddyfile into the sandbox, starts `bin run` on it and
// waits until the admin API at adminAddr and every URL in readyURLs answer
// HTTP (any status). adminAddr must be the address the Caddyfile's `admin`
// option names. When the test ends the process is stopped (SIGTERM, SIGKILL
// after stopTimeout), and its output is dumped if the test failed.
func startCaddy(t testing.TB, bin string, s *sandbox, caddyfile, adminAddr string, readyURLs ...string) *caddyProc {
	t.Helper()
	cfg := s.writeFile(t, fmt.Sprintf("Caddyfile.%d", time.Now().UnixNano()), []byte(caddyfile))
	p := &caddyProc{
		t:         t,
		AdminAddr: adminAddr,
		output:    new(lockedBuffer),
		exited:    make(chan struct{}),
	}
	p.cmd = exec.Command(bin, "run", "--config", cfg, "--adapter", "caddyfile")
	p.cmd.Env = s.env()
	p.cmd.Dir = s.Dir
	p.cmd.Stdout = p.output
	p.cmd.Stderr = p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stopping caddy (pid %d): %v", p.cmd.Process.Pid, err)
		}
		if t.Failed() {
			t.Logf("caddy (pid %d) output:\n%s", p.cmd.Process.Pid, p.Output())
		}
	})
	p.waitReady(append([]string{"http://" + adminAddr + "/config/"}, readyURLs...)...)
	return p
}

// Output returns what the process has written to stdout and stderr so far.
func (p *caddyProc) Output() string { return p.output.String() }

// Exited reports whether the process has ended.
func (p *caddyProc) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// waitReady polls every URL until it answers HTTP, failing the test at once
// if the process exits first.
func (p *caddyProc) waitReady(urls ...string) {
	p.t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	deadline := time.Now().Add(readyTimeout)
	for _, u := range urls {
		for {
			if p.Exited() {
				p.t.Fatalf("caddy exited before %s answered (%v); output:\n%s", u, p.waitErr, p.Output())
			}
			resp, err := client.Get(u)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				break
			}
			if time.Now().After(deadline) {
				p.t.Fatalf("caddy did not answer %s within %s: %v; output:\n%s", u, readyTimeout, err, p.Output())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// Stop sends SIGTERM and waits up to stopTimeout for the process to exit,
// then kills it. It returns an error if SIGKILL was needed or the exit was
// not clean; calling it again after the process ended returns nil.
func (p *caddyProc) Stop() error {
	if p.Exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("SIGTERM: %w", err)
	}
	select {
	case <-p.exited:
		if p.waitErr != nil {
			return fmt.Errorf("exit after SIGTERM: %w", p.waitErr)
		}
		return nil
	case <-time.After(stopTimeout):
		_ = p.Kill()
		return fmt.Errorf("did not exit within %s of SIGTERM; killed", stopTimeout)
	}
}

// Kill sends SIGKILL (a crash: no shutdown code runs) and waits for the
// process to be reaped.
func (p *caddyProc) Kill() error {
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-p.exited
	return nil
}

// Load replaces the running configuration through the admin API (POST
// /load with the Caddyfile adapter). Cache-Control: must-revalidate makes
// Caddy reload even when the new config equals the current one.
func (p *caddyProc) Load(caddyfile string) error {
	req, err := http.NewRequest(http.MethodPost, "http://"+p.AdminAddr+"/load", strings.NewReader(caddyfile))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/caddyfile")
	req.Header.Set("Cache-Control", "must-revalidate")
	client := &http.Client{Timeout: callTimeout, Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("POST /load: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /load: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}

// received is one request as the backend saw it.
type received struct {
	Method        string
	RequestURI    string
	Header        http.Header
	ContentLength int64
	Body          []byte
}

// backend is the legacy backend stand-in: a real HTTP server that records
// every request and answers with status (200 unless set) and a body that
// must never reach DWS.
type backend struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []received
	status int
}

// backendBody is what the backend answers; the gateway must not pass it on.
const backendBody = `{"backend":"this body must not reach DWS"}`

func newBackend(t testing.TB) *backend {
	t.Helper()
	b := &backend{status: http.StatusOK}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "reading body", http.StatusBadRequest)
			return
		}
		b.mu.Lock()
		b.reqs = append(b.reqs, received{
			Method:        r.Method,
			RequestURI:    r.RequestURI,
			Header:        r.Header.Clone(),
			ContentLength: r.ContentLength,
			Body:          body,
		})
		status := b.status
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Backend-Secret", "must-not-reach-dws")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, backendBody)
	}))
	t.Cleanup(b.Close)
	return b
}

// HostPort is the backend's address for reverse_proxy.
func (b *backend) HostPort() string { return strings.TrimPrefix(b.URL, "http://") }

// SetStatus sets the HTTP status of later answers.
func (b *backend) SetStatus(code int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.status = code
}

// Requests returns a copy of what the backend has received so far.
func (b *backend) Requests() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.reqs...)
}

// keyPair is an RSA-2048 key generated for the test, with its public half
// written to the sandbox in the two formats DWS hands out.
type keyPair struct {
	Private *rsa.PrivateKey
	B64Path string // public key as bare Base64 of the DER SubjectPublicKeyInfo
	PEMPath string // public key as a PEM "PUBLIC KEY" block
}

func newKeyPair(t testing.TB, s *sandbox, name string) *keyPair {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("generating RSA key: %v", err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return &keyPair{
		Private: priv,
		B64Path: s.writeFile(t, name+"_public.b64", []byte(base64.StdEncoding.EncodeToString(der)+"\n")),
		PEMPath: s.writeFile(t, name+"_public.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
	}
}

// dwsSender posts notifications to the gateway the way DWS does.
type dwsSender struct {
	BaseURL  string // e.g. http://127.0.0.1:PORT
	ClientID string
	client   *http.Client
}

// newSender returns a sender that opens a new connection for every
// notification, as a notifier sending sporadic callbacks does. Reusing idle
// connections would make tests flaky around reloads and restarts: Caddy
// closes the old server's idle connections after a reload, and a POST sent on
// one that is being closed fails with EOF and is not retried.
func newSender(baseURL, clientID string) *dwsSender {
	return &dwsSender{
		BaseURL:  baseURL,
		ClientID: clientID,
		client:   &http.Client{Timeout: callTimeout, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}},
	}
}

// answer is the gateway's reply to one notification.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
	Result struct {
		ResultStatus  string `json:"resultStatus"`
		ResultCode    string `json:"resultCode"`
		ResultMsg     string `json:"resultMsg"`
		ResultMessage string `json:"resultMessage"`
	}
}

// Post signs body for uri with key/keyVersion (Request-Time = now, epoch
// milliseconds) and posts it once; extra headers are added after the signed
// ones. A transport error (no HTTP answer) fails the test.
func (d *dwsSender) Post(t testing.TB, uri string, body []byte, key *rsa.PrivateKey, keyVersion int, extra http.Header) *answer {
	t.Helper()
	return d.PostWithResend(t, 1, uri, body, key, keyVersion, extra)
}

// PostWithResend is Post that, like DWS, sends the notification again (signed
// afresh) when an attempt got no HTTP answer at all, up to attempts times.
// Every resend is logged. Use it where Caddy may drop a new connection: a
// stock Caddy v2.11.9 resets or closes about one in a hundred connections
// that arrive while a config reload swaps servers.
func (d *dwsSender) PostWithResend(t testing.TB, attempts int, uri string, body []byte, key *rsa.PrivateKey, keyVersion int, extra http.Header) *answer {
	t.Helper()
	for i := 1; ; i++ {
		requestTime := strconv.FormatInt(time.Now().UnixMilli(), 10)
		sig, err := signature.SignatureHeader(key, keyVersion, uri, d.ClientID, requestTime, body)
		if err != nil {
			t.Fatalf("signing: %v", err)
		}
		h := http.Header{}
		h.Set("Client-Id", d.ClientID)
		h.Set("Request-Time", requestTime)
		h.Set("Signature", sig)
		h.Set("Content-Type", "application/json; charset=UTF-8")
		for k, vs := range extra {
			for _, v := range vs {
				h.Add(k, v)
			}
		}
		a, err := d.send(http.MethodPost, uri, body, h)
		if err == nil {
			return d.decode(t, http.MethodPost, uri, a)
		}
		if i >= attempts {
			t.Fatalf("POST %s: no answer after %d attempt(s): %v", uri, i, err)
		}
		t.Logf("POST %s: attempt %d got no answer (%v); resending", uri, i, err)
		time.Sleep(100 * time.Millisecond)
	}
}

// Do sends one request with exactly the given headers and decodes the
// envelope. It fails the test on a transport error or if the body is not one
// result envelope.
func (d *dwsSender) Do(t testing.TB, method, uri string, body []byte, h http.Header) *answer {
	t.Helper()
	a, err := d.send(method, uri, body, h)
	if err != nil {
		t.Fatalf("%s %s: %v", method, uri, err)
	}
	return d.decode(t, method, uri, a)
}

// WaitStatus repeats a bodiless request until it is answered with status,
// tolerating transport errors, and fails the test after timeout. After a
// reload it tells when the new configuration is the one answering.
func (d *dwsSender) WaitStatus(t testing.TB, method, uri string, status int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		a, err := d.send(method, uri, nil, http.Header{})
		if err == nil && a.Status == status {
			return
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("%s %s: no HTTP %d within %s: last attempt: %v", method, uri, status, timeout, err)
			}
			t.Fatalf("%s %s: no HTTP %d within %s: last answer HTTP %d %q", method, uri, status, timeout, a.Status, a.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// send makes one HTTP exchange; an error means no complete HTTP answer.
func (d *dwsSender) send(method, uri string, body []byte, h http.Header) (*answer, error) {
	req, err := http.NewRequest(method, d.BaseURL+uri, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = h
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	a := &answer{Status: resp.StatusCode, Header: resp.Header}
	if a.Body, err = io.ReadAll(resp.Body); err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	return a, nil
}

// decode parses a's body as exactly one result envelope, failing the test
// otherwise.
func (d *dwsSender) decode(t testing.TB, method, uri string, a *answer) *answer {
	t.Helper()
	var env struct {
		Result *json.RawMessage `json:"result"`
	}
	dec := json.NewDecoder(bytes.NewReader(a.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil || env.Result == nil {
		t.Fatalf("%s %s: HTTP %d, answer is not a result envelope (%v): %q", method, uri, a.Status, err, a.Body)
	}
	dec = json.NewDecoder(bytes.NewReader(*env.Result))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a.Result); err != nil {
		t.Fatalf("%s %s: HTTP %d, bad result object (%v): %q", method, uri, a.Status, err, a.Body)
	}
	return a
}
