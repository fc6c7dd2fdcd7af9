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
//   - newBackend (backend_test.go): the legacy backend stand-in, recording
//     what reaches it; it can be taken down and told how to answer.
//   - newDWS (dws_test.go): signs and posts notifications exactly as DWS
//     does, one at a time or as load.
//
// Keys and notification bodies are never logged.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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
	for len(addrs) < n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		defer ln.Close()
		addr := ln.Addr().String()
		// The kernel may hand out a port again once its listener closed:
		// a gateway's address and a probe site chosen later in the same
		// test then collide ("ambiguous site definition"). No address is
		// given out twice in one test process.
		handedOut.Lock()
		seen := handedOut.m[addr]
		handedOut.m[addr] = true
		handedOut.Unlock()
		if !seen {
			addrs = append(addrs, addr)
		}
	}
	return addrs
}

// handedOut holds every address freeAddrs has returned.
var handedOut = struct {
	sync.Mutex
	m map[string]bool
}{m: map[string]bool{}}

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

// phase runs one step of a scenario as a subtest; a step that fails ends
// the scenario, whose later steps build on it.
func phase(t *testing.T, name string, step func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, step) {
		t.FailNow()
	}
}
