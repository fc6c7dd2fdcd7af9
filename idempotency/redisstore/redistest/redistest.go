// Package redistest runs real redis-server processes for tests: each on a
// free loopback port, in its own temporary directory, killed when the test
// ends (and, on Linux, when the test process dies). Tests can stop, kill,
// pause and restart the server to exercise outages.
//
// The server binary is $DWS_REDIS_SERVER if set, else redis-server from
// PATH (valkey-server works too). Without one, Start skips the test, unless
// DWS_REQUIRE_REDIS=1 (CI sets it), when it fails the test instead.
package redistest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Environment variables read by the package.
const (
	// RequireEnv set to "1" turns a missing server binary into a test
	// failure instead of a skip.
	RequireEnv = "DWS_REQUIRE_REDIS"
	// BinaryEnv names the server binary to run instead of redis-server.
	BinaryEnv = "DWS_REDIS_SERVER"
)

// startTimeout bounds the wait for a started server to accept commands
// (loading its append-only file included). Generous: the machines are
// shared and may be busy.
const startTimeout = 20 * time.Second

// Config describes the server to start.
type Config struct {
	// AppendOnly turns on the append-only file (appendonly yes); off means
	// no persistence at all (RDB snapshots are always off: save "").
	AppendOnly bool
	// AppendFsync is the appendfsync policy with AppendOnly: "everysec"
	// (when empty), "always" or "no".
	AppendFsync string
	// Password sets requirepass.
	Password string
	// UnixSocket also listens on a Unix socket in the server's directory
	// (see Server.Socket).
	UnixSocket bool
	// TLS makes the server speak TLS only, with a certificate for
	// 127.0.0.1 issued by a CA made for the server (see Server.TLSConfig
	// and Server.TLSFiles); URL then returns a rediss:// URL.
	TLS bool
	// TLSClientAuth (with TLS) makes the server require a client
	// certificate signed by the CA (tls-auth-clients yes).
	TLSClientAuth bool
	// TLSServerName (with TLS) is the only name in the server's
	// certificate, a DNS name instead of 127.0.0.1: a client must then
	// give it as the server name to verify the certificate.
	TLSServerName string
	// CA (with TLS) signs the server's certificate instead of a CA made for
	// the server alone, so that several servers (and other test servers)
	// share one private CA.
	CA *CA
	// Args are more arguments for redis-server, e.g. "--maxmemory-policy",
	// "allkeys-lru".
	Args []string
}

// Server is a running (or stopped) redis-server child process.
type Server struct {
	t    testing.TB
	bin  string
	cfg  Config
	dir  string
	port int

	tls      *tls.Config // clients' TLS configuration when cfg.TLS
	tlsFiles TLSFiles
	ca       *CA

	// sentinelConf is the configuration file of a redis-sentinel process
	// (see StartSentinel); empty for a redis-server.
	sentinelConf string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	logs *os.File
}

// Binary returns the server binary to run, or skips t (fails it with
// DWS_REQUIRE_REDIS=1) when there is none.
func Binary(t testing.TB) string {
	t.Helper()
	name := os.Getenv(BinaryEnv)
	if name == "" {
		name = "redis-server"
	}
	return lookBinary(t, name, "redis-server")
}

// lookBinary finds name on PATH, or skips t (fails it with
// DWS_REQUIRE_REDIS=1) naming the Debian package to install.
func lookBinary(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s not found (%v) and %s=1: install it (Debian: apt-get install %s)", name, err, RequireEnv, pkg)
	}
	t.Skipf("%s not found (%v): install it (Debian: apt-get install %s) to run the Redis tests; %s=1 makes this a failure", name, err, pkg, RequireEnv)
	return ""
}

// Start starts a server configured by cfg on a free loopback port and waits
// until it accepts commands. It is killed when t's test ends.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	return startServer(t, Binary(t), cfg, nil)
}

// startServer starts bin (redis-server or redis-sentinel); prepare, if not
// nil, runs once the server's directory exists and its port is chosen,
// before each start attempt.
func startServer(t testing.TB, bin string, cfg Config, prepare func(s *Server) error) *Server {
	t.Helper()
	s := &Server{t: t, bin: bin, cfg: cfg, dir: t.TempDir()}
	logs, err := os.OpenFile(filepath.Join(s.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	s.logs = logs
	if cfg.TLS {
		s.ca = cfg.CA
		if s.ca == nil {
			if s.ca, err = newCA(); err != nil {
				t.Fatalf("redistest: making a CA: %v", err)
			}
		}
		if s.tls, s.tlsFiles, err = writeTLS(s.ca, s.dir, cfg.TLSServerName); err != nil {
			t.Fatalf("redistest: making TLS certificates: %v", err)
		}
	}
	t.Cleanup(func() {
		s.Kill()
		logs.Close()
	})
	// Another process may take the free port between the probe and the
	// server's bind; try a few ports.
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		s.port = port
		if prepare != nil {
			if err := prepare(s); err != nil {
				t.Fatalf("redistest: %v", err)
			}
		}
		if lastErr = s.start(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("redistest: starting %s: %v\n%s", s.bin, lastErr, s.LogTail())
	return nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// args returns the server's command line.
func (s *Server) args() []string {
	if s.sentinelConf != "" {
		return []string{s.sentinelConf,
			"--port", strconv.Itoa(s.port),
			"--bind", "127.0.0.1",
			"--dir", s.dir,
			"--daemonize", "no",
			"--loglevel", "notice",
		}
	}
	a := []string{"--port", strconv.Itoa(s.port)}
	if s.cfg.TLS {
		a = []string{
			"--port", "0", "--tls-port", strconv.Itoa(s.port),
			"--tls-cert-file", filepath.Join(s.dir, certFile),
			"--tls-key-file", filepath.Join(s.dir, keyFile),
			"--tls-ca-cert-file", filepath.Join(s.dir, caFile),
			"--tls-auth-clients", "no",
		}
		if s.cfg.TLSClientAuth {
			a[len(a)-1] = "yes"
		}
	}
	a = append(a,
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--daemonize", "no",
		"--loglevel", "notice",
	)
	if s.cfg.AppendOnly {
		fsync := s.cfg.AppendFsync
		if fsync == "" {
			fsync = "everysec"
		}
		a = append(a, "--appendonly", "yes", "--appendfsync", fsync)
	} else {
		a = append(a, "--appendonly", "no")
	}
	if s.cfg.Password != "" {
		a = append(a, "--requirepass", s.cfg.Password)
	}
	if s.cfg.UnixSocket {
		a = append(a, "--unixsocket", s.Socket(), "--unixsocketperm", "700")
	}
	return append(a, s.cfg.Args...)
}

// start runs the server and waits for it to be ready.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("already running")
	}
	cmd := exec.Command(s.bin, s.args()...)
	cmd.Stdout = s.logs
	cmd.Stderr = s.logs
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	if err := s.waitReady(done); err != nil {
		cmd.Process.Kill()
		<-done
		s.cmd, s.done = nil, nil
		return err
	}
	return nil
}

// waitReady polls the server until it answers and has loaded its data.
func (s *Server) waitReady(exited <-chan struct{}) error {
	c := redis.NewClient(&redis.Options{
		Addr: s.Addr(), Password: s.cfg.Password, TLSConfig: s.TLSConfig(),
		DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1,
		DialerRetries: 1, Protocol: 2, DisableIdentity: true,
	})
	defer c.Close()
	deadline := time.Now().Add(startTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited during start-up (last probe: %v)", lastErr)
		default:
		}
		// Wait for the port before speaking Redis, so go-redis does not log
		// every refused dial.
		conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err != nil {
			lastErr = err
			time.Sleep(20 * time.Millisecond)
			continue
		}
		conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var info string
		if s.sentinelConf != "" {
			// A sentinel has no data to load: answering is enough.
			err = c.Ping(ctx).Err()
			info = "loading:0"
		} else {
			info, err = c.Info(ctx, "persistence").Result()
		}
		cancel()
		if err == nil && strings.Contains(info, "loading:0") {
			return nil
		}
		if err == nil {
			err = errors.New("still loading")
		}
		lastErr = err
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redis-server not ready after %v: %v", startTimeout, lastErr)
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port is the server's TCP port; it stays the same across Restart.
func (s *Server) Port() int { return s.port }

// Dir is the server's working directory (append-only file, log).
func (s *Server) Dir() string { return s.dir }

// Socket is the path of the server's Unix socket (Config.UnixSocket).
func (s *Server) Socket() string { return filepath.Join(s.dir, "redis.sock") }

// URL returns a redis:// (rediss:// with TLS) URL of database db, with the
// password if the server has one.
func (s *Server) URL(db int) string {
	auth := ""
	if s.cfg.Password != "" {
		auth = ":" + s.cfg.Password + "@"
	}
	scheme := "redis"
	if s.cfg.TLS {
		scheme = "rediss"
	}
	return fmt.Sprintf("%s://%s%s/%d", scheme, auth, s.Addr(), db)
}

// TLSConfig returns a client TLS configuration that trusts the server's CA
// and presents a client certificate the CA signed (nil without
// Config.TLS).
func (s *Server) TLSConfig() *tls.Config {
	if s.tls == nil {
		return nil
	}
	return s.tls.Clone()
}

// TLSFiles returns the paths of the PEM files of TLSConfig: the CA's
// certificate, the client certificate and its key (zero without
// Config.TLS).
func (s *Server) TLSFiles() TLSFiles { return s.tlsFiles }

// CA returns the CA that signed the server's certificate (nil without
// Config.TLS).
func (s *Server) CA() *CA { return s.ca }

// Client returns a new client of database db for the test's own commands,
// closed when the test ends.
func (s *Server) Client(db int) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), Password: s.cfg.Password, DB: db, TLSConfig: s.TLSConfig(), DisableIdentity: true})
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Version returns the server's redis_version (INFO server).
func (s *Server) Version() string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := s.Client(0)
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		s.t.Fatalf("redistest: INFO server: %v", err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(line, "redis_version:"); ok {
			return strings.TrimSpace(v)
		}
	}
	s.t.Fatalf("redistest: no redis_version in INFO server")
	return ""
}

// AtLeast reports whether the server's version is at least major.minor.
func (s *Server) AtLeast(major, minor int) bool {
	parts := strings.SplitN(s.Version(), ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// Stop shuts the server down with SIGTERM (Redis then flushes and fsyncs
// its append-only file) and waits for it to exit.
func (s *Server) Stop() { s.signalAndWait(syscall.SIGTERM) }

// Kill kills the server with SIGKILL, as a crash would, and waits for it to
// exit. Killing a stopped server does nothing.
func (s *Server) Kill() { s.signalAndWait(syscall.SIGKILL) }

func (s *Server) signalAndWait(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGCONT) // a paused server cannot handle SIGTERM
	s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(startTimeout):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd, s.done = nil, nil
}

// Pause stops the server process (SIGSTOP): connections stay open and
// connection attempts are accepted by the kernel, but nothing is answered,
// as with a hung server or a network partition.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatalf("redistest: server not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redistest: signal %v: %v", sig, err)
	}
}

// Restart starts a stopped or killed server again on the same port with
// the same directory (so it reloads its append-only file), and waits until
// it is ready.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	// The port was ours a moment ago; retry a little in case the kernel
	// still holds it.
	var err error
	for range 20 {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("redistest: restarting redis-server on port %d: %v\n%s", s.port, err, s.LogTail())
}

// LogTail returns the end of the server's log, for failure messages.
func (s *Server) LogTail() string {
	b, err := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if err != nil {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}
