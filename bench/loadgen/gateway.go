package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dwsnotify/dws_notify/inbox"
)

// mode is one of the three gateway configurations compared.
type mode string

const (
	modePlain    mode = "a" // reverse_proxy only
	modeSigned   mode = "b" // dws_notify, everything on, signed answers
	modeUnsigned mode = "c" // dws_notify without merchant_private_key
	modeQueued   mode = "q" // c with acknowledge on_receipt: S once queued, delivered from the inbox
	modeBase     mode = "o" // b on the base build (-base-caddy): the "before" of a before/after
	modePaced    mode = "p" // a paced at the request rate b reached in the same round
)

func (m mode) describe() string {
	switch m {
	case modePlain:
		return "plain reverse_proxy"
	case modeSigned:
		return "dws_notify, signed answers"
	case modeUnsigned:
		return "dws_notify, unsigned answers"
	case modeQueued:
		return "dws_notify, on_receipt (queued)"
	case modeBase:
		return "b on the base build"
	case modePaced:
		return "a paced at b's rate"
	}
	return string(m)
}

func (m mode) dws() bool { return m != modePlain && m != modePaced }

// signed reports whether the gateway of m signs its answers.
func (m mode) signed() bool { return m == modeSigned || m == modeBase }

// parseModes reads -modes: a comma-separated list of a, b, c, q, o and p.
// Mode p needs b (it is paced at b's rate of the same round).
func parseModes(s string) ([]mode, error) {
	var out []mode
	for _, f := range strings.Split(s, ",") {
		switch m := mode(strings.TrimSpace(f)); m {
		case modePlain, modeSigned, modeUnsigned, modeQueued, modeBase, modePaced:
			out = append(out, m)
		default:
			return nil, fmt.Errorf("-modes: unknown mode %q (a, b, c, q, o or p)", f)
		}
	}
	if slices.Contains(out, modePaced) && !slices.Contains(out, modeSigned) {
		return nil, fmt.Errorf("-modes: mode p is paced at b's rate and needs b in the list")
	}
	return out, nil
}

// roundOrder returns the order of the modes in a round: the list rotated
// by one per round, so no mode always runs first, with p (if present)
// moved right after b, whose rate it is paced at.
func roundOrder(modes []mode, round int) []mode {
	var rest []mode
	for _, m := range modes {
		if m != modePaced {
			rest = append(rest, m)
		}
	}
	k := (round - 1) % len(rest)
	order := append(slices.Clone(rest[k:]), rest[:k]...)
	if len(rest) == len(modes) {
		return order
	}
	i := slices.Index(order, modeSigned)
	return slices.Insert(order, i+1, modePaced)
}

// gateway is one Caddy process serving one mode, with its own admin port,
// listener, storage directory and XDG directories, all under dir.
type gateway struct {
	mode  mode
	dir   string
	addr  string // host:port of the site
	admin string // host:port of the admin API (and /debug/pprof)
	cmd   *exec.Cmd
	exit  chan error
}

// freePort returns a loopback address with a port that was free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// caddyConfig returns the JSON config of mode m. Every setting not named
// here keeps its default (retention 168h, request_time_tolerance 48h,
// max_body_size 64 KiB, forward_timeout 10s, ...). The dws_notify handler
// logs one line per notification to Caddy's default logger (stderr, which
// the harness sends to a file); plain reverse_proxy logs nothing per
// request, as Caddy does without an access log.
func caddyConfig(m mode, in *inputs, addr, admin, backend, storage string) ([]byte, error) {
	proxy := map[string]any{
		"handler":   "reverse_proxy",
		"upstreams": []map[string]any{{"dial": backend}},
	}
	handlers := []any{proxy}
	if m.dws() {
		dws := map[string]any{
			"handler":        "dws_notify",
			"client_id":      []string{benchClientID},
			"dws_public_key": []map[string]any{{"key": strings.TrimSpace(string(in.dwsPublic))}},
			"api": []map[string]any{
				{"name": "addPaymentMethod", "path": addURI},
				{"name": "removePaymentMethod", "path": removeURI},
			},
			"storage": storage,
		}
		if m.signed() {
			dws["merchant_private_key"] = map[string]any{"key": string(in.merchantPrivate)}
		}
		if m == modeQueued {
			key, _, err := inbox.Keygen()
			if err != nil {
				return nil, err
			}
			dws["acknowledge"] = map[string]any{
				"mode": "on_receipt",
				"keys": []map[string]any{{"key": key}},
				// Short pauses, so a backend that is back is found soon
				// (the drain after an outage).
				"first_backoff": "500ms", "max_backoff": "2s",
			}
		}
		handlers = []any{dws, proxy}
	}
	cfg := map[string]any{
		"admin": map[string]any{
			"listen": admin,
			"config": map[string]any{"persist": false},
		},
		"apps": map[string]any{
			"http": map[string]any{
				"servers": map[string]any{
					"bench": map[string]any{
						"listen":          []string{addr},
						"automatic_https": map[string]any{"disable": true},
						"routes":          []any{map[string]any{"handle": handlers}},
					},
				},
			},
		},
	}
	return json.MarshalIndent(cfg, "", "  ")
}

// startGateway starts caddy for mode m in a fresh directory under parent
// and waits until it serves.
func startGateway(caddyBin string, m mode, in *inputs, backend, parent, cpus string) (*gateway, error) {
	dir, err := os.MkdirTemp(parent, "gw-"+string(m)+"-")
	if err != nil {
		return nil, err
	}
	g := &gateway{mode: m, dir: dir, exit: make(chan error, 1)}
	if g.addr, err = freePort(); err != nil {
		return nil, err
	}
	if g.admin, err = freePort(); err != nil {
		return nil, err
	}
	cfg, err := caddyConfig(m, in, g.addr, g.admin, backend, filepath.Join(dir, "store"))
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "caddy.json")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "caddy.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()

	argv := []string{caddyBin, "run", "--config", cfgPath}
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	g.cmd = exec.Command(argv[0], argv[1:]...)
	g.cmd.Dir = dir
	g.cmd.Stdout = logFile
	g.cmd.Stderr = logFile
	// Caddy's data and config directories: never the user's.
	g.cmd.Env = append(os.Environ(),
		"XDG_DATA_HOME="+filepath.Join(dir, "xdg-data"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "xdg-config"),
	)
	if err := g.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", caddyBin, err)
	}
	go func() { g.exit <- g.cmd.Wait() }()
	if err := g.waitReady(15 * time.Second); err != nil {
		g.kill()
		return nil, fmt.Errorf("mode %s: %w (log: %s)", m, err, tail(filepath.Join(dir, "caddy.log"), 2000))
	}
	return g, nil
}

func (g *gateway) pid() int { return g.cmd.Process.Pid }

// waitReady polls the admin API, then the site port.
func (g *gateway) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case err := <-g.exit:
			g.exit <- err
			return fmt.Errorf("caddy exited: %v", err)
		default:
		}
		res, err := client.Get("http://" + g.admin + "/config/")
		if err == nil {
			res.Body.Close()
			if c, err := net.DialTimeout("tcp", g.addr, time.Second); err == nil {
				c.Close()
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("caddy not ready after %s", limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fetch GETs a path of the admin API (e.g. /debug/pprof/profile?seconds=5)
// into a file.
func (g *gateway) fetch(path, dst string) error {
	res, err := http.Get("http://" + g.admin + path)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", path, res.StatusCode)
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// stop asks Caddy to stop through the admin API and waits; it kills the
// process if that does not work within 15 s.
func (g *gateway) stop() error {
	res, err := http.Post("http://"+g.admin+"/stop", "application/json", nil)
	if err == nil {
		res.Body.Close()
	}
	select {
	case err := <-g.exit:
		g.exit <- err
		return nil
	case <-time.After(15 * time.Second):
		g.kill()
		return fmt.Errorf("mode %s: caddy did not stop within 15s; killed", g.mode)
	}
}

func (g *gateway) kill() {
	_ = g.cmd.Process.Kill()
	err := <-g.exit
	g.exit <- err
}

// remove deletes the gateway's directory (store, logs, config).
func (g *gateway) remove() { _ = os.RemoveAll(g.dir) }

// tail returns the last n bytes of a file, for error messages.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	off := max(st.Size()-n, 0)
	b := make([]byte, st.Size()-off)
	_, _ = f.ReadAt(b, off)
	return string(b)
}
