package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// common are the flags of bench and long (and, partly, presign).
type common struct {
	caddyBin    string
	keysDir     string
	bodyPath    string
	outDir      string
	tmpDir      string
	conc        int
	gatewayCPUs string
	backendCPUs string
	keep        bool
	customers   int
	baseCaddy   string // the base build, for mode o (bench only)
}

func commonFlags(fs *flag.FlagSet) *common {
	c := &common{}
	fs.StringVar(&c.caddyBin, "caddy", "./caddy", "the Caddy binary with dws_notify (./xcaddy.sh builds ./caddy)")
	fs.StringVar(&c.keysDir, "keys", "examples/demo-keys", "directory of the demo keys (dws_private.pem, dws_public.b64, merchant_private.pem, merchant_public.pem)")
	fs.StringVar(&c.bodyPath, "body", "examples/addPaymentMethod.json", "the notification body template (its requestId is replaced)")
	fs.StringVar(&c.outDir, "out", "bench/out", "directory for the pre-signed pool cache, results and profiles")
	fs.StringVar(&c.tmpDir, "tmp", os.TempDir(), "parent of the per-run directories (storage, XDG dirs, caddy.log)")
	fs.IntVar(&c.conc, "c", 32, "concurrency: workers, each with one keep-alive connection, sending back to back")
	fs.StringVar(&c.gatewayCPUs, "gateway-cpus", "", "run caddy under taskset -c with this CPU list (empty: no pinning)")
	fs.StringVar(&c.backendCPUs, "backend-cpus", "", "run the backend under taskset -c with this CPU list (empty: no pinning)")
	fs.BoolVar(&c.keep, "keep", false, "keep the per-run directories")
	fs.IntVar(&c.customers, "customers", 0, "spread the notifications over this many customers (referenceCustomerId), each an order of its own in the inbox; 0: the template's one customer")
	return c
}

func (c *common) poolPath() string {
	if c.customers > 0 {
		return filepath.Join(c.outDir, fmt.Sprintf("presigned-c%d.bin", c.customers))
	}
	return filepath.Join(c.outDir, "presigned.bin")
}

// runResult is one gateway run of the bench.
type runResult struct {
	Round      int     `json:"round"`
	Mode       mode    `json:"mode"`
	Load1      float64 `json:"load1_at_start"`
	Count      int     `json:"answers_in_window"`
	WindowS    float64 `json:"window_s"`
	Throughput float64 `json:"throughput_per_s"`
	P50us      float64 `json:"p50_us"`
	P99us      float64 `json:"p99_us"`
	// Memory of the gateway at the end of the window and the peaks over the
	// whole run, MiB.
	AnonMiB      float64 `json:"rss_anon_mib"`
	FileMiB      float64 `json:"rss_file_mib"`
	TotalMiB     float64 `json:"rss_total_mib"`
	PeakAnonMiB  float64 `json:"peak_rss_anon_mib"`
	PeakFileMiB  float64 `json:"peak_rss_file_mib"`
	PeakTotalMiB float64 `json:"peak_rss_total_mib"`
	// CPU per answered request in the window (user+system), µs.
	GatewayCPUus float64 `json:"gateway_cpu_us_per_req"`
	BackendCPUus float64 `json:"backend_cpu_us_per_req"`
	LoadgenCPUus float64 `json:"loadgen_cpu_us_per_req"`
	// CPU the rest of the machine used during the window (everything but
	// the gateway, backend and load generator), in cores (2 = both CPUs),
	// and the steal time the hypervisor reported, in cores.
	OtherCores float64 `json:"other_cores"`
	StealCores float64 `json:"steal_cores"`
	Sent       int     `json:"sent"`
	Errors     int     `json:"errors"`
	ErrorText  string  `json:"error_text,omitempty"`
	Profiled   bool    `json:"profiled,omitempty"`
	// DrainS is, for mode q, how long after the window the inbox took to
	// deliver what was still queued.
	DrainS float64 `json:"drain_s,omitempty"`
	// PacedAt is, for mode p, the rate it was paced at (b's of its round).
	PacedAt float64 `json:"paced_at_per_s,omitempty"`
}

// env is what every run of a bench shares.
type env struct {
	c       *common
	in      *inputs
	p       *pool
	backend *backendProc
}

func setup(c *common, poolSize int) (*env, error) {
	if _, err := os.Stat(c.caddyBin); err != nil {
		return nil, fmt.Errorf("caddy binary: %w (build it with ./xcaddy.sh)", err)
	}
	abs, err := filepath.Abs(c.caddyBin) // caddy runs in its run directory
	if err != nil {
		return nil, err
	}
	c.caddyBin = abs
	in, err := loadInputs(c.keysDir, c.bodyPath, c.customers)
	if err != nil {
		return nil, err
	}
	p, err := loadOrSignPool(in, c.poolPath(), poolSize)
	if err != nil {
		return nil, err
	}
	be, err := startBackend(c.backendCPUs)
	if err != nil {
		return nil, err
	}
	logf("backend: pid %d on %s", be.pid(), be.addr)
	return &env{c: c, in: in, p: p, backend: be}, nil
}

// runOnce starts a fresh gateway for m, probes it, drives it and stops it.
// With profileDir set it also takes the gateway's CPU profile over the
// window and its heap and allocation profiles at the end, from Caddy's
// admin API (/debug/pprof).
//
// rate paces mode p (requests per second); other modes send back to back.
func (e *env) runOnce(m mode, round int, warmup, duration time.Duration, profileDir string, rate float64) (*runResult, error) {
	load := loadAvg()
	bin := e.c.caddyBin
	if m == modeBase {
		bin = e.c.baseCaddy
	}
	g, err := startGateway(bin, m, e.in, e.backend.addr, e.c.tmpDir, e.c.gatewayCPUs)
	if err != nil {
		return nil, err
	}
	defer func() {
		if !e.c.keep {
			g.remove()
		}
	}()
	probed, _ := e.backend.count()
	if err := probe(e.p, g.addr, m, 0); err != nil {
		_ = g.stop()
		return nil, err
	}
	if m == modeQueued {
		// The probe was answered S once queued: wait for its delivery, so
		// the count below starts after it.
		for t0 := time.Now(); time.Since(t0) < 30*time.Second; time.Sleep(10 * time.Millisecond) {
			if n, _ := e.backend.count(); n > probed {
				break
			}
		}
	}
	takenBefore, _ := e.backend.count()
	watch := watchMem(g.pid(), 100*time.Millisecond)
	var cpu [2][5]time.Duration // [edge][gateway, backend, loadgen, machine busy, steal]
	var atEnd memSample
	profErr := make(chan error, 1)
	res := drive(driveSpec{
		p: e.p, addr: g.addr, want: expectFor(m), conc: e.c.conc,
		first: 1, wrap: !m.dws(), rate: rate,
		warmup: warmup, duration: duration,
		edge: func(which int) {
			cpu[which][0], _ = readCPU(g.pid())
			cpu[which][1], _ = readCPU(e.backend.pid())
			cpu[which][2], _ = readCPU(os.Getpid())
			cpu[which][3], cpu[which][4] = machineCPU()
			if which == 1 {
				atEnd = watch.sample()
			}
			if which == 0 && profileDir != "" {
				go func() {
					secs := max(int(duration.Seconds())-1, 1)
					profErr <- g.fetch(fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), filepath.Join(profileDir, "cpu-"+string(m)+".pprof"))
				}()
			}
		},
	})
	peak, top := watch.end()
	if profileDir != "" {
		if err := <-profErr; err != nil {
			logf("cpu profile: %v", err)
		}
		for _, kind := range []string{"heap", "allocs"} {
			if err := g.fetch("/debug/pprof/"+kind, filepath.Join(profileDir, kind+"-"+string(m)+".pprof")); err != nil {
				logf("%s profile: %v", kind, err)
			}
		}
	}
	var drain time.Duration
	if m == modeQueued {
		// S came before the delivery: wait until the inbox delivered
		// everything answered S.
		t0 := time.Now()
		for {
			taken, _ := e.backend.count()
			if taken-takenBefore >= int64(res.sent) || time.Since(t0) > 2*time.Minute {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		drain = time.Since(t0)
	}
	takenAfter, _ := e.backend.count()
	if err := g.stop(); err != nil {
		logf("%v", err)
	}
	r := &runResult{
		Round: round, Mode: m, Load1: load, PacedAt: rate,
		Count: res.count, WindowS: res.window.Seconds(), Throughput: res.throughput(),
		P50us:   float64(percentile(res.lats, 0.50)) / 1e3,
		P99us:   float64(percentile(res.lats, 0.99)) / 1e3,
		AnonMiB: mib(atEnd.anon), FileMiB: mib(atEnd.file + atEnd.shmem), TotalMiB: mib(atEnd.total()),
		PeakAnonMiB: mib(peak.anon), PeakFileMiB: mib(peak.file + peak.shmem), PeakTotalMiB: mib(top),
		Sent: res.sent, Errors: res.errors(), ErrorText: res.errorText(),
		Profiled: profileDir != "", DrainS: drain.Seconds(),
	}
	if res.exhausted {
		r.Errors++
	}
	if res.count > 0 {
		per := func(d time.Duration) float64 { return float64(d) / 1e3 / float64(res.count) }
		r.GatewayCPUus = per(cpu[1][0] - cpu[0][0])
		r.BackendCPUus = per(cpu[1][1] - cpu[0][1])
		r.LoadgenCPUus = per(cpu[1][2] - cpu[0][2])
	}
	var ours time.Duration
	for k := range 3 {
		ours += cpu[1][k] - cpu[0][k]
	}
	r.OtherCores = max(float64(cpu[1][3]-cpu[0][3]-ours), 0) / float64(res.window)
	r.StealCores = float64(cpu[1][4]-cpu[0][4]) / float64(res.window)
	// In b and c every S answer stands for exactly one forward (the
	// counter was read after the probe).
	if forwarded := takenAfter - takenBefore; m.dws() && r.Errors == 0 && forwarded != int64(res.sent) {
		r.Errors++
		r.ErrorText = fmt.Sprintf("backend took %d requests for %d notifications answered S", forwarded, res.sent)
	}
	return r, nil
}

func (r *runResult) line() string {
	s := fmt.Sprintf("round %d  %s  %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  RSS anon %5.1f + file %5.1f = %5.1f MiB (peak %5.1f)  CPU/req gw %5.1f µs  be %4.1f µs  lg %4.1f µs  others %.2f cores  load %.2f",
		r.Round, r.Mode, r.Throughput, r.P50us/1e3, r.P99us/1e3, r.AnonMiB, r.FileMiB, r.TotalMiB, r.PeakTotalMiB,
		r.GatewayCPUus, r.BackendCPUus, r.LoadgenCPUus, r.OtherCores, r.Load1)
	if r.Errors > 0 {
		s += "  ERRORS: " + r.ErrorText
	}
	if r.Mode == modeQueued {
		s += fmt.Sprintf("  delivered the rest %.1f s after the window", r.DrainS)
	}
	if r.Mode == modePaced {
		s += fmt.Sprintf("  paced at %.0f req/s", r.PacedAt)
	}
	if r.Profiled {
		s += "  (profiled; not in the medians)"
	}
	return s
}

func cmdBench(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	c := commonFlags(fs)
	rounds := fs.Int("rounds", 5, "rounds; each runs a, b and c once, in an order that rotates per round")
	warmup := fs.Duration("warmup", time.Second, "warmup of each run (answers not counted)")
	duration := fs.Duration("duration", 8*time.Second, "measured window of each run")
	poolSize := fs.Int("pool", 200000, "pre-signed notifications (each b or c run needs one per request of warmup and window)")
	profile := fs.Bool("profile", false, "after the rounds, one extra run of each mode with the gateway's CPU, heap and allocation profiles saved under -out")
	modeList := fs.String("modes", "a,b,c", "the modes to compare: a (plain reverse_proxy), b (dws_notify, signed answers), c (unsigned), q (c with acknowledge on_receipt), o (b on the -base-caddy build), p (a paced at the rate b reached in the same round)")
	fs.StringVar(&c.baseCaddy, "base-caddy", "", "the base build for mode o (bench/run.sh --base REV builds it)")
	_ = fs.Parse(args)
	modes, err := parseModes(*modeList)
	if err != nil {
		return err
	}
	if slices.Contains(modes, modeBase) {
		if c.baseCaddy == "" {
			return fmt.Errorf("mode o needs -base-caddy")
		}
		if c.baseCaddy, err = filepath.Abs(c.baseCaddy); err != nil {
			return err
		}
		if _, err := os.Stat(c.baseCaddy); err != nil {
			return fmt.Errorf("-base-caddy: %w", err)
		}
	}

	e, err := setup(c, *poolSize)
	if err != nil {
		return err
	}
	defer e.backend.stop()

	started := time.Now()
	stamp := started.Format("20060102-150405")
	logf("bench: %d rounds of %s; concurrency %d; warmup %s, window %s; customers %d; GOMAXPROCS of the load generator %d; caddy %s",
		*rounds, *modeList, c.conc, *warmup, *duration, c.customers, runtime.GOMAXPROCS(0), c.caddyBin)
	if c.gatewayCPUs != "" || c.backendCPUs != "" {
		logf("pinning: caddy on CPUs %q, backend on CPUs %q", c.gatewayCPUs, c.backendCPUs)
	}
	var all []*runResult
	// bRate is the rate of the latest run of b: mode p, which runs right
	// after b, is paced at it.
	bRate := 0.0
	run := func(m mode, round int, profileDir string) error {
		rate := 0.0
		if m == modePaced {
			if bRate <= 0 {
				return fmt.Errorf("mode p: the b run before it answered nothing, so there is no rate to pace at")
			}
			rate = bRate
		}
		r, err := e.runOnce(m, round, *warmup, *duration, profileDir, rate)
		if err != nil {
			return err
		}
		if m == modeSigned {
			bRate = r.Throughput
		}
		logf("%s", r.line())
		all = append(all, r)
		return nil
	}
	for round := 1; round <= *rounds; round++ {
		for _, m := range roundOrder(modes, round) {
			if err := run(m, round, ""); err != nil {
				return err
			}
		}
	}
	if *profile {
		dir := filepath.Join(c.outDir, "profile-"+stamp)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for _, m := range roundOrder(modes, 1) {
			if err := run(m, 0, dir); err != nil {
				return err
			}
		}
		logf("profiles in %s (go tool pprof -top %s)", dir, filepath.Join(dir, "cpu-b.pprof"))
	}

	summary := summarize(all, modes)
	fmt.Println()
	fmt.Print(summary)
	resultsPath := filepath.Join(c.outDir, "bench-"+stamp+".json")
	out, _ := json.MarshalIndent(map[string]any{
		"started": started.Format(time.RFC3339), "concurrency": c.conc, "rounds": *rounds,
		"warmup_s": warmup.Seconds(), "window_s": duration.Seconds(),
		"gateway_cpus": c.gatewayCPUs, "backend_cpus": c.backendCPUs,
		"runs": all, "summary": summary,
	}, "", "  ")
	if err := os.WriteFile(resultsPath, out, 0o644); err != nil {
		return err
	}
	logf("results: %s; took %s", resultsPath, time.Since(started).Round(time.Second))
	for _, r := range all {
		if r.Errors > 0 {
			return fmt.Errorf("some runs had errors (see above): their figures are not trustworthy")
		}
	}
	return nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// summarize prints the medians per mode over the rounds and the ratio lines.
func summarize(all []*runResult, modes []mode) string {
	var b strings.Builder
	field := func(m mode, f func(*runResult) float64) []float64 {
		var v []float64
		for _, r := range all {
			if r.Mode == m && !r.Profiled {
				v = append(v, f(r))
			}
		}
		return v
	}
	med := func(m mode, f func(*runResult) float64) float64 { return median(field(m, f)) }
	maxOf := func(m mode, f func(*runResult) float64) float64 {
		v := field(m, f)
		if len(v) == 0 {
			return 0
		}
		return slices.Max(v)
	}
	fmt.Fprintf(&b, "medians over %d rounds (RSS at the end of the window; peak = largest sample of the run; CPU per request; others = cores used by the rest of the machine during the window; load = 1-min load average at the start)\n", len(field(modes[0], func(r *runResult) float64 { return 0 })))
	fmt.Fprintf(&b, "%-4s %-30s %10s %9s %9s %10s %10s %10s %10s %11s %11s %11s %7s %6s\n",
		"mode", "", "req/s", "p50 ms", "p99 ms", "anon MiB", "file MiB", "total MiB", "peak MiB", "gw CPU µs", "be CPU µs", "lg CPU µs", "others", "load")
	for _, m := range modes {
		fmt.Fprintf(&b, "%-4s %-30s %10.0f %9.2f %9.2f %10.1f %10.1f %10.1f %10.1f %11.1f %11.1f %11.1f %7.2f %6.2f\n",
			m, m.describe(),
			med(m, func(r *runResult) float64 { return r.Throughput }),
			med(m, func(r *runResult) float64 { return r.P50us / 1e3 }),
			med(m, func(r *runResult) float64 { return r.P99us / 1e3 }),
			med(m, func(r *runResult) float64 { return r.AnonMiB }),
			med(m, func(r *runResult) float64 { return r.FileMiB }),
			med(m, func(r *runResult) float64 { return r.TotalMiB }),
			maxOf(m, func(r *runResult) float64 { return r.PeakTotalMiB }),
			med(m, func(r *runResult) float64 { return r.GatewayCPUus }),
			med(m, func(r *runResult) float64 { return r.BackendCPUus }),
			med(m, func(r *runResult) float64 { return r.LoadgenCPUus }),
			med(m, func(r *runResult) float64 { return r.OtherCores }),
			med(m, func(r *runResult) float64 { return r.Load1 }))
	}
	// perRound pairs the runs of modes x and y round by round and returns
	// f(x's run, y's run) for each round that has both.
	perRound := func(x, y mode, f func(rx, ry *runResult) float64) []float64 {
		byRound := map[int]map[mode]*runResult{}
		for _, r := range all {
			if r.Profiled {
				continue
			}
			if byRound[r.Round] == nil {
				byRound[r.Round] = map[mode]*runResult{}
			}
			byRound[r.Round][r.Mode] = r
		}
		var v []float64
		for round := 1; round <= len(byRound); round++ {
			if rx, ry := byRound[round][x], byRound[round][y]; rx != nil && ry != nil {
				v = append(v, f(rx, ry))
			}
		}
		return v
	}
	format := func(v []float64, digits int) string {
		var s []string
		for _, x := range v {
			s = append(s, strconv.FormatFloat(x, 'f', digits, 64))
		}
		return strings.Join(s, " ")
	}
	tput := func(r *runResult) float64 { return r.Throughput }
	cpu := func(r *runResult) float64 { return r.GatewayCPUus }
	// cpuDiff is x's gateway CPU per notification minus y's: the
	// difference of the medians, and per round.
	cpuDiff := func(x, y mode) (float64, []float64) {
		return med(x, cpu) - med(y, cpu), perRound(x, y, func(rx, ry *runResult) float64 { return rx.GatewayCPUus - ry.GatewayCPUus })
	}
	ratioLine := func(x, y mode, goals ...goal) {
		ratio := med(x, tput) / med(y, tput)
		rounds := perRound(x, y, func(rx, ry *runResult) float64 {
			if ry.Throughput == 0 {
				return 0
			}
			return rx.Throughput / ry.Throughput
		})
		fmt.Fprintf(&b, "ratio %s/%s = %.2f  (median %s %.0f req/s / median %s %.0f req/s; per round %s; median of per-round ratios %.2f)  %s\n",
			x, y, ratio, x, med(x, tput), y, med(y, tput), format(rounds, 2), median(rounds), verdicts(ratio, goals))
	}
	has := func(ms ...mode) bool {
		for _, m := range ms {
			if !slices.Contains(modes, m) {
				return false
			}
		}
		return true
	}
	if has(modeQueued, modeUnsigned) {
		ratioLine(modeQueued, modeUnsigned)
		p50 := func(r *runResult) float64 { return r.P50us / 1e3 }
		p99 := func(r *runResult) float64 { return r.P99us / 1e3 }
		fmt.Fprintf(&b, "S latency, queued (q) beside synchronous (c): p50 %.2f ms vs %.2f ms, p99 %.2f ms vs %.2f ms; q delivered the rest within %.1f s (median) after each window\n",
			med(modeQueued, p50), med(modeUnsigned, p50), med(modeQueued, p99), med(modeUnsigned, p99), med(modeQueued, func(r *runResult) float64 { return r.DrainS }))
	}
	if has(modeBase, modeSigned) {
		change, changeRounds := cpuDiff(modeSigned, modeBase)
		ratios := perRound(modeSigned, modeBase, func(rb, ro *runResult) float64 { return rb.Throughput / ro.Throughput })
		fmt.Fprintf(&b, "before/after (o = b on the base build): gateway CPU per notification o %.1f µs -> b %.1f µs, %+.1f µs (per round %s; median of per-round differences %+.1f); req/s o %.0f -> b %.0f, b/o %.2f (per round %s)",
			med(modeBase, cpu), med(modeSigned, cpu), change, format(changeRounds, 1), median(changeRounds),
			med(modeBase, tput), med(modeSigned, tput), med(modeSigned, tput)/med(modeBase, tput), format(ratios, 2))
		if has(modePlain) {
			fmt.Fprintf(&b, "; b-a before %.1f µs, after %.1f µs", med(modeBase, cpu)-med(modePlain, cpu), med(modeSigned, cpu)-med(modePlain, cpu))
		}
		b.WriteString("\n")
	}
	if has(modePlain, modeSigned, modePaced) {
		// b-a = (b-p) + (p-a): what dws_notify adds at one rate, and what
		// the same proxying costs more per request at b's lower rate.
		own, ownRounds := cpuDiff(modeSigned, modePaced)
		rate, rateRounds := cpuDiff(modePaced, modePlain)
		fmt.Fprintf(&b, "b-a split at b's rate: b-p = %.1f µs  (b beyond plain proxying at the same rate, %.0f req/s; per round %s; median of per-round differences %.1f) + p-a = %.1f µs  (the same proxying at b's rate instead of a's; per round %s)\n",
			own, med(modePaced, tput), format(ownRounds, 1), median(ownRounds), rate, format(rateRounds, 1))
	}
	if !has(modePlain, modeSigned, modeUnsigned) {
		return b.String()
	}
	ratioLine(modeSigned, modePlain, goalRatioSpec, goalRatioStep)
	ratioLine(modeSigned, modeUnsigned, goal{atLeast: true, value: 0.95, source: "SPEC §7"})
	extra, diffs := cpuDiff(modeSigned, modePlain)
	fmt.Fprintf(&b, "gateway CPU per notification beyond plain proxying b-a = %.1f µs  (median b %.1f µs - median a %.1f µs; per round %s; median of per-round differences %.1f)  %s\n",
		extra, med(modeSigned, cpu), med(modePlain, cpu), format(diffs, 1), median(diffs), verdicts(extra, []goal{goalExtraSpec, goalExtraStep}))
	fmt.Fprintf(&b, "gateway CPU per request (median): a %.1f µs, b %.1f µs, c %.1f µs; CPU-cost ratio a/b %.2f\n",
		med(modePlain, cpu), med(modeSigned, cpu), med(modeUnsigned, cpu), med(modePlain, cpu)/med(modeSigned, cpu))
	return b.String()
}

// goal is a target a figure of the summary is held to.
type goal struct {
	atLeast bool // the figure must be >= value; else <= value
	value   float64
	unit    string // "" for a ratio (two decimals), else printed after a whole number
	source  string
}

// The goals of b/a and b-a: SPEC §7's targets and the step issue 17 set
// on the way there.
var (
	goalRatioSpec = goal{atLeast: true, value: 0.80, source: "SPEC §7"}
	goalRatioStep = goal{atLeast: true, value: 0.65, source: "issue 17 step"}
	goalExtraSpec = goal{atLeast: false, value: 45, unit: "µs", source: "SPEC §7"}
	goalExtraStep = goal{atLeast: false, value: 70, unit: "µs", source: "issue 17 step"}
)

// verdicts says, for each goal, whether v meets it:
// "target >= 0.80 (SPEC §7): met; ...".
func verdicts(v float64, goals []goal) string {
	var parts []string
	for _, g := range goals {
		op, ok := "<=", v <= g.value
		if g.atLeast {
			op, ok = ">=", v >= g.value
		}
		verdict := "met"
		if !ok {
			verdict = "NOT MET"
		}
		value := fmt.Sprintf("%.2f", g.value)
		if g.unit != "" {
			value = fmt.Sprintf("%.0f %s", g.value, g.unit)
		}
		parts = append(parts, fmt.Sprintf("target %s %s (%s): %s", op, value, g.source, verdict))
	}
	return strings.Join(parts, "; ")
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
