// Command reloadstudy measures what a Caddy config reload does to HTTP
// traffic that arrives while it happens, with no dws_notify involved: a site
// that only says `respond "ok"`, constant POST traffic, and config reloads
// through the admin API. Each attempt that got no HTTP answer is classified
// by how the connection failed and whether it was a new or a reused one.
//
//	./xcaddy.sh && go run ./e2e/reloadstudy -bin ./caddy
//
// It runs every combination of grace_period (none, 10s, 1ns) and client
// (new connection per request, keep-alive) and prints one line each. The
// kernel setting net.ipv4.tcp_migrate_req decides what happens to
// connections waiting in the old listener's accept queue when it closes;
// the value in force is printed. docs/reliability.md ("Connections dropped
// during a reload") explains the results.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("bin", "./caddy", "the Caddy binary")
	reloads := flag.Int("reloads", 20, "config reloads per run")
	conc := flag.Int("c", 16, "concurrent clients")
	gap := flag.Duration("gap", 300*time.Millisecond, "pause between reloads")
	graces := flag.String("grace", "none,10s,1ns", "grace_period values to try (none: not set)")
	flag.Parse()

	migrate, err := os.ReadFile("/proc/sys/net/ipv4/tcp_migrate_req")
	if err != nil {
		migrate = []byte("unknown")
	}
	fmt.Printf("net.ipv4.tcp_migrate_req = %s, %d reloads %s apart, %d clients, POST to a plain `respond` site\n",
		strings.TrimSpace(string(migrate)), *reloads, *gap, *conc)
	for _, grace := range strings.Split(*graces, ",") {
		for _, keepAlive := range []bool{false, true} {
			r, err := run(*bin, grace, keepAlive, *conc, *reloads, *gap)
			if err != nil {
				fmt.Fprintln(os.Stderr, "reloadstudy:", err)
				os.Exit(1)
			}
			client := "new connection per request"
			if keepAlive {
				client = "keep-alive"
			}
			fmt.Printf("grace_period %-5s %-27s %7d requests, %4d without an answer (%.3f%%)%s\n",
				grace, client, r.total, r.failed, 100*float64(r.failed)/float64(max(r.total, 1)), r.kinds())
		}
	}
}

type result struct {
	total, failed int64
	mu            sync.Mutex
	byKind        map[string]int
}

func (r *result) kinds() string {
	if len(r.byKind) == 0 {
		return ""
	}
	var ks []string
	for k := range r.byKind {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	b.WriteString(":")
	for _, k := range ks {
		fmt.Fprintf(&b, " %s %d;", k, r.byKind[k])
	}
	return strings.TrimSuffix(b.String(), ";")
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func run(bin, grace string, keepAlive bool, conc, reloads int, gap time.Duration) (*result, error) {
	dir, err := os.MkdirTemp("", "reloadstudy")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	admin, err := freeAddr()
	if err != nil {
		return nil, err
	}
	site, err := freeAddr()
	if err != nil {
		return nil, err
	}
	config := func(generation int) string {
		g := ""
		if grace != "none" {
			g = "\n\tgrace_period " + grace
		}
		return fmt.Sprintf("{\n\tadmin %s\n\tpersist_config off%s\n}\n\nhttp://%s {\n\tbind 127.0.0.1\n\trespond \"ok %d\" 200\n}\n",
			admin, g, site, generation)
	}
	cfg := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfg, []byte(config(0)), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", cfg, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	ready := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + site + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(ready) {
			return nil, fmt.Errorf("caddy did not start: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	r := &result{byKind: map[string]int{}}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: !keepAlive}}
			for !stop.Load() {
				post(client, site, r)
			}
		}()
	}
	time.Sleep(time.Second)
	admClient := &http.Client{Timeout: 60 * time.Second}
	for i := 1; i <= reloads; i++ {
		req, _ := http.NewRequest(http.MethodPost, "http://"+admin+"/load", strings.NewReader(config(i)))
		req.Header.Set("Content-Type", "text/caddyfile")
		resp, err := admClient.Do(req)
		if err != nil {
			stop.Store(true)
			return nil, fmt.Errorf("reload %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			stop.Store(true)
			return nil, fmt.Errorf("reload %d: HTTP %d", i, resp.StatusCode)
		}
		time.Sleep(gap)
	}
	time.Sleep(time.Second)
	stop.Store(true)
	wg.Wait()
	return r, nil
}

// post sends one POST and records how it went.
func post(client *http.Client, site string, r *result) {
	var reused, wrote bool
	trace := &httptrace.ClientTrace{
		GotConn:      func(i httptrace.GotConnInfo) { reused = i.Reused },
		WroteRequest: func(i httptrace.WroteRequestInfo) { wrote = i.Err == nil },
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+site+"/", strings.NewReader(`{"n":"1"}`))
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, err := client.Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	atomic.AddInt64(&r.total, 1)
	if err == nil {
		return
	}
	atomic.AddInt64(&r.failed, 1)
	kind := "other"
	switch {
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		kind = "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		kind = "EOF"
	case errors.Is(err, syscall.ECONNREFUSED):
		kind = "refused"
	}
	conn := "new conn"
	if reused {
		conn = "reused conn"
	}
	stage := "before the request was written"
	if wrote {
		stage = "after the request was written"
	}
	r.mu.Lock()
	r.byKind[fmt.Sprintf("%s on a %s %s", kind, conn, stage)]++
	r.mu.Unlock()
}
