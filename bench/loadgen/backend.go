package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// backendBody is what the backend answers: small, like a legacy service's
// "accepted".
var backendBody = []byte(`{"accepted":true}`)

// countPath answers the number of requests the backend took (bench control,
// not proxied).
const countPath = "/__loadgen/count"

// cmdBackend runs the minimal backend: it reads each request body and
// answers 200 with a 17-byte JSON body. It prints "listening <addr>" once
// ready and exits when its standard input closes (the harness holds it).
func cmdBackend(args []string) error {
	fs := flag.NewFlagSet("backend", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	_ = fs.Parse(args)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	var taken atomic.Int64
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == countPath {
				_, _ = io.WriteString(w, strconv.FormatInt(taken.Load(), 10))
				return
			}
			_, _ = io.Copy(io.Discard, r.Body)
			taken.Add(1)
			h := w.Header()
			h["Content-Type"] = []string{"application/json"}
			h["Content-Length"] = []string{strconv.Itoa(len(backendBody))}
			_, _ = w.Write(backendBody)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
	}
	fmt.Printf("listening %s\n", ln.Addr())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	err = srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// backendProc is the backend child process.
type backendProc struct {
	cmd   *exec.Cmd
	stdin io.Closer
	addr  string
}

// startBackend starts "loadgen backend" as a child process (same binary),
// optionally under taskset, and waits for its address.
func startBackend(cpus string) (*backendProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "backend")
	if cpus != "" {
		cmd = exec.Command("taskset", "-c", cpus, self, "backend")
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("backend did not start: %w", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if !ok {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("backend said %q", line)
	}
	return &backendProc{cmd: cmd, stdin: stdin, addr: addr}, nil
}

func (b *backendProc) pid() int { return b.cmd.Process.Pid }

// count returns how many requests the backend has taken.
func (b *backendProc) count() (int64, error) {
	res, err := http.Get("http://" + b.addr + countPath)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	s, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(string(s), 10, 64)
}

func (b *backendProc) stop() {
	_ = b.stdin.Close()
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = b.cmd.Process.Kill()
		<-done
	}
}
