package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// cmdDrain measures the inbox after an outage: a gateway in mode q whose
// backend is down (its upstream is an address nothing listens on) answers
// -n notifications S, queueing them; then the config is reloaded with the
// backend's address (the outage ends) and the harness times the
// deliveries until the backend took all n: the drain rate.
func cmdDrain(args []string) error {
	fs := flag.NewFlagSet("drain", flag.ExitOnError)
	c := commonFlags(fs)
	n := fs.Int("n", 100000, "notifications queued during the outage")
	profile := fs.String("profile", "", "save the gateway's CPU profile of the first 10 s of the drain to this file")
	_ = fs.Parse(args)

	e, err := setup(c, *n+1) // +1: index 0 is the probe
	if err != nil {
		return err
	}
	defer e.backend.stop()
	down, err := freePort() // nothing listens there: the backend is down
	if err != nil {
		return err
	}
	logf("drain: %d notifications queued with the backend down, then delivered; %d customers; concurrency %d; load %.2f", *n, c.customers, c.conc, loadAvg())
	g, err := startGateway(c.caddyBin, modeQueued, e.in, down, c.tmpDir, c.gatewayCPUs)
	if err != nil {
		return err
	}
	defer func() {
		if !c.keep {
			g.remove()
		}
	}()
	defer func() { _ = g.stop() }()
	if err := probe(e.p, g.addr, modeQueued, 0); err != nil {
		return err
	}
	// Until the pool runs out: every notification once.
	res := drive(driveSpec{p: e.p, addr: g.addr, want: expectFor(modeQueued), conc: c.conc, first: 1,
		duration: time.Duration(*n)*time.Millisecond + time.Minute})
	if res.transport > 0 || len(res.wrong) > 0 {
		return fmt.Errorf("queueing: %s", res.errorText())
	}
	logf("queued %d notifications (all answered S) in %s: %.0f/s; p50 %.2f ms, p99 %.2f ms",
		res.count, res.window.Round(time.Millisecond), float64(res.count)/res.window.Seconds(),
		float64(percentile(res.lats, 0.50))/1e6, float64(percentile(res.lats, 0.99))/1e6)
	if res.count != *n {
		return fmt.Errorf("%d of %d notifications answered S", res.count, *n)
	}

	before, _ := e.backend.count()
	cfg, err := caddyConfig(modeQueued, e.in, g.addr, g.admin, e.backend.addr, filepath.Join(g.dir, "store"))
	if err != nil {
		return err
	}
	// The same inbox key as the running config: the reload must open what
	// that one sealed.
	if cfg, err = sameInboxKey(filepath.Join(g.dir, "caddy.json"), cfg); err != nil {
		return err
	}
	cpuBefore, _ := readCPU(g.pid())
	back := time.Now()
	res2, err := http.Post("http://"+g.admin+"/load", "application/json", bytes.NewReader(cfg))
	if err != nil {
		return fmt.Errorf("reloading with the backend: %w", err)
	}
	res2.Body.Close()
	if res2.StatusCode != http.StatusOK {
		return fmt.Errorf("reloading with the backend: HTTP %d", res2.StatusCode)
	}
	if *profile != "" {
		go func() {
			if err := g.fetch("/debug/pprof/profile?seconds=10", *profile); err != nil {
				logf("cpu profile: %v", err)
			}
		}()
	}
	var first time.Time
	marks := map[int]time.Duration{}
	for {
		taken, _ := e.backend.count()
		got := int(taken-before) - 1 // the probe was queued too
		if got > 0 && first.IsZero() {
			first = time.Now()
		}
		for _, q := range []int{*n / 4, *n / 2, 3 * *n / 4} {
			if _, ok := marks[q]; !ok && got >= q {
				marks[q] = time.Since(back)
			}
		}
		if got >= *n {
			break
		}
		if time.Since(back) > 30*time.Minute {
			return fmt.Errorf("after 30 minutes the backend took %d of %d", got, *n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(back)
	cpuAfter, _ := readCPU(g.pid())
	logf("delivered %d in %s after the backend came back (first delivery after %s; a quarter at %s, half at %s, three quarters at %s): %.0f deliveries/s; gateway CPU %.0f µs per delivery",
		*n, took.Round(time.Millisecond), first.Sub(back).Round(time.Millisecond),
		marks[*n/4].Round(time.Millisecond), marks[*n/2].Round(time.Millisecond), marks[3**n/4].Round(time.Millisecond),
		float64(*n)/took.Seconds(), float64(cpuAfter-cpuBefore)/1e3/float64(*n))
	return nil
}

// sameInboxKey puts the inbox keys of the config in path (the running one)
// into cfg.
func sameInboxKey(path string, cfg []byte) ([]byte, error) {
	running, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	type doc = map[string]any
	var a, b doc
	if err := json.Unmarshal(running, &a); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(cfg, &b); err != nil {
		return nil, err
	}
	handler := func(d doc) doc {
		srv := d["apps"].(doc)["http"].(doc)["servers"].(doc)["bench"].(doc)
		return srv["routes"].([]any)[0].(doc)["handle"].([]any)[0].(doc)
	}
	handler(b)["acknowledge"] = handler(a)["acknowledge"]
	return json.MarshalIndent(b, "", "  ")
}
