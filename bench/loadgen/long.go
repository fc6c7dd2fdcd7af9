package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// boundary is the state at the end of one window of the long run.
type boundary struct {
	done int           // notifications answered so far (= records stored, when all are S)
	at   time.Time     // when the window's last answer arrived
	cpu  time.Duration // gateway CPU used so far
	mem  memSample
	// CPU the rest of the machine used so far: busy time of the whole
	// machine minus gateway, backend and load generator.
	others time.Duration
}

// cmdLong pushes n notifications through mode b, each exactly once, at fixed
// concurrency, and reports per window of -window answers the throughput,
// latency, gateway CPU per notification and RSS: the cost per notification
// must stay flat as the store grows, and RSS must stay bounded.
func cmdLong(args []string) error {
	fs := flag.NewFlagSet("long", flag.ExitOnError)
	c := commonFlags(fs)
	n := fs.Int("n", 1000000, "notifications to send (all distinct; the store ends with this many records)")
	window := fs.Int("window", 10000, "answers per reporting window")
	rssLimit := fs.Float64("rss-limit", 150, "RSS target, MiB (SPEC §7)")
	_ = fs.Parse(args)
	if *n%*window != 0 || *n < 2**window {
		return fmt.Errorf("-n (%d) must be a multiple of -window (%d), at least two windows", *n, *window)
	}

	e, err := setup(c, *n+1) // +1: index 0 is the probe
	if err != nil {
		return err
	}
	defer e.backend.stop()

	started := time.Now()
	stamp := started.Format("20060102-150405")
	logf("long: %d notifications through mode b at concurrency %d; windows of %d; load %.2f", *n, c.conc, *window, loadAvg())
	g, err := startGateway(c.caddyBin, modeSigned, e.in, e.backend.addr, c.tmpDir, c.gatewayCPUs)
	if err != nil {
		return err
	}
	defer func() {
		if !c.keep {
			g.remove()
		}
	}()
	if err := probe(e.p, g.addr, modeSigned, 0); err != nil {
		_ = g.stop()
		return err
	}
	watch := watchMem(g.pid(), 250*time.Millisecond)
	pids := [2]int{g.pid(), e.backend.pid()}
	start := sampleBoundary(pids, watch)
	startMem := start.mem
	logf("gateway pid %d; RSS before the load: anon %.1f + file %.1f MiB", g.pid(), mib(startMem.anon), mib(startMem.file+startMem.shmem))

	every := max(*n/20 / *window * *window, *window) // about 20 progress lines
	var mapsMu sync.Mutex
	maps := map[int]fileRSS{} // what the file-backed memory is, at the checkpoints
	res := driveCount(e.p, g.addr, c.conc, *n, *window, pids, watch, func(b boundary, total int) {
		if b.done == 10000 || b.done == 100000 || b.done == total {
			if f, err := readFileRSS(g.pid()); err == nil {
				mapsMu.Lock()
				maps[b.done] = f
				mapsMu.Unlock()
			}
		}
		if b.done%every == 0 {
			logf("  %7d answered, RSS anon %.1f + file %.1f MiB, load %.2f", b.done, mib(b.mem.anon), mib(b.mem.file+b.mem.shmem), loadAvg())
		}
	})
	time.Sleep(5 * time.Second)
	idle := watch.sample()
	idleMaps, _ := readFileRSS(g.pid())
	peak, top := watch.end()
	if err := g.stop(); err != nil {
		logf("%v", err)
	}
	storeSize := dirSize(filepath.Join(g.dir, "store"))

	// The table: one row per window; all rows to a CSV, some to stdout.
	var csv strings.Builder
	csv.WriteString("records,window_s,throughput_per_s,p50_ms,p99_ms,gateway_cpu_us_per_notification,rss_anon_mib,rss_file_mib,rss_total_mib,other_cores\n")
	type row struct {
		records          int
		tput, p50, p99   float64
		cpuUs            float64
		anon, file, totl float64
		others           float64 // cores the rest of the machine used
	}
	rows := make([]row, len(res.bounds))
	prev := start
	prev.done, prev.at = 0, res.start
	for i, b := range res.bounds {
		lat := slices.Clone(res.lats[prev.done:b.done])
		slices.Sort(lat)
		el := b.at.Sub(prev.at)
		r := row{
			records: b.done,
			tput:    float64(b.done-prev.done) / el.Seconds(),
			p50:     float64(percentile(lat, 0.5)) / 1e6,
			p99:     float64(percentile(lat, 0.99)) / 1e6,
			cpuUs:   float64(b.cpu-prev.cpu) / 1e3 / float64(b.done-prev.done),
			anon:    mib(b.mem.anon), file: mib(b.mem.file + b.mem.shmem), totl: mib(b.mem.total()),
			others: max(float64(b.others-prev.others), 0) / float64(el),
		}
		rows[i] = r
		fmt.Fprintf(&csv, "%d,%.3f,%.0f,%.3f,%.3f,%.1f,%.1f,%.1f,%.1f,%.2f\n", r.records, el.Seconds(), r.tput, r.p50, r.p99, r.cpuUs, r.anon, r.file, r.totl, r.others)
		prev = b
	}
	csvPath := filepath.Join(c.outDir, "long-"+stamp+".csv")
	if err := os.WriteFile(csvPath, []byte(csv.String()), 0o644); err != nil {
		return err
	}

	var out strings.Builder
	fmt.Fprintf(&out, "\nlong run: %d notifications through b (dws_notify, everything on) at concurrency %d, window %d answers\n", *n, c.conc, *window)
	fmt.Fprintf(&out, "%10s %10s %9s %9s %14s %10s %10s %10s %7s\n", "records", "req/s", "p50 ms", "p99 ms", "gw CPU µs/n", "anon MiB", "file MiB", "total MiB", "others")
	show := map[int]bool{*window: true, 10000: true, 100000: true, *n: true}
	for k := 1; k <= 10; k++ {
		show[k**n/10 / *window * *window] = true
	}
	for _, r := range rows {
		if show[r.records] {
			fmt.Fprintf(&out, "%10d %10.0f %9.2f %9.2f %14.1f %10.1f %10.1f %10.1f %7.2f\n", r.records, r.tput, r.p50, r.p99, r.cpuUs, r.anon, r.file, r.totl, r.others)
		}
	}
	// Flatness: the ten windows after the first 10k records against the
	// last ten windows.
	span := func(from, to int) (cpu, tput, others float64) {
		var cv, tv, ov []float64
		for _, r := range rows {
			if r.records > from && r.records <= to {
				cv = append(cv, r.cpuUs)
				tv = append(tv, r.tput)
				ov = append(ov, r.others)
			}
		}
		return median(cv), median(tv), median(ov)
	}
	early := min(10000, *n/10)
	earlyTo := early + 10**window
	lateFrom := *n - 10**window
	ec, et, eo := span(early, earlyTo)
	lc, lt, lo := span(lateFrom, *n)
	fmt.Fprintf(&out, "cost per notification, median of 10 windows: records %d-%d: %.1f µs gateway CPU, %.0f req/s (others %.2f cores); records %d-%d: %.1f µs, %.0f req/s (others %.2f cores); late/early CPU %.2f, throughput %.2f\n",
		early, earlyTo, ec, et, eo, lateFrom, *n, lc, lt, lo, lc/ec, lt/et)
	verdict := "met"
	if lc/ec > 1.10 || lt/et < 0.90 {
		verdict = "NOT MET"
	}
	fmt.Fprintf(&out, "flat from 10k to %d records (within 10%% on CPU per notification and on throughput): %s\n", *n, verdict)
	at := func(k int) string {
		for _, b := range res.bounds {
			if b.done == k {
				return fmt.Sprintf("%.1f MiB (anon %.1f + file %.1f)", mib(b.mem.total()), mib(b.mem.anon), mib(b.mem.file+b.mem.shmem))
			}
		}
		return "n/a"
	}
	fmt.Fprintf(&out, "RSS at 10k records %s; at 100k %s; at %d %s; 5 s after the last answer %.1f MiB (anon %.1f + file %.1f)\n",
		at(10000), at(100000), *n, at(*n), mib(idle.total()), mib(idle.anon), mib(idle.file+idle.shmem))
	fmt.Fprintf(&out, "RSS before the load: %.1f MiB (anon %.1f + file %.1f)\n", mib(startMem.total()), mib(startMem.anon), mib(startMem.file+startMem.shmem))
	for _, k := range slices.Compact([]int{10000, 100000, *n}) {
		if f, ok := maps[k]; ok {
			fmt.Fprintf(&out, "file-backed at %d records: %s\n", k, f)
		}
	}
	fmt.Fprintf(&out, "file-backed 5 s after the last answer: %s\n", idleMaps)
	verdict = "met"
	if mib(top) > *rssLimit {
		verdict = "NOT MET"
	}
	fmt.Fprintf(&out, "peak RSS over the run: %.1f MiB total in one sample (per-field peaks: anon %.1f, file %.1f); target <= %.0f MiB: %s\n",
		mib(top), mib(peak.anon), mib(peak.file+peak.shmem), *rssLimit, verdict)
	fmt.Fprintf(&out, "store directory after the run: %.1f MiB (%.0f bytes per record)\n", float64(storeSize)/(1<<20), float64(storeSize)/float64(*n))
	if res.errors() > 0 {
		fmt.Fprintf(&out, "ERRORS: %s\n", res.errorText())
	}
	fmt.Print(out.String())
	logf("windows: %s; took %s", csvPath, time.Since(started).Round(time.Second))
	if res.errors() > 0 {
		return errors.New("the long run had errors")
	}
	return nil
}

// countResult is what driveCount saw.
type countResult struct {
	start  time.Time
	lats   []int64 // by completion order, ns
	bounds []boundary
	driveResult
}

// driveCount sends notifications 1..n once each and records every answer's
// latency by completion order; every window answers, the worker that
// completes the window samples the gateway's CPU and memory.
func driveCount(p *pool, addr string, conc, n, window int, pids [2]int, watch *memWatch, progress func(boundary, int)) *countResult {
	res := &countResult{lats: make([]int64, n), bounds: make([]boundary, n/window)}
	res.wrong = map[string]int{}
	var next, done atomic.Int64
	next.Store(1)
	var mu sync.Mutex
	var wg sync.WaitGroup
	want := expectFor(modeSigned)
	res.start = time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cc := newClientConn(p, addr, want)
			defer cc.close()
			for {
				i := int(next.Add(1) - 1)
				if i > n {
					return
				}
				begin := time.Now()
				err := cc.send(i)
				end := time.Now()
				var wa errWrongAnswer
				switch {
				case err == nil:
				case errors.As(err, &wa):
					mu.Lock()
					res.wrong[wa.what]++
					mu.Unlock()
				default:
					mu.Lock()
					res.transport++
					if res.firstErr == "" {
						res.firstErr = err.Error()
					}
					mu.Unlock()
				}
				k := int(done.Add(1))
				res.lats[k-1] = int64(end.Sub(begin))
				if k%window == 0 {
					b := sampleBoundary(pids, watch)
					b.done, b.at = k, end
					res.bounds[k/window-1] = b
					progress(b, n)
				}
			}
		}()
	}
	wg.Wait()
	res.count = n
	return res
}

// sampleBoundary reads the CPU counters and memory for a window boundary;
// pids are the gateway's and the backend's.
func sampleBoundary(pids [2]int, watch *memWatch) boundary {
	gw, _ := readCPU(pids[0])
	be, _ := readCPU(pids[1])
	lg, _ := readCPU(os.Getpid())
	busy, _ := machineCPU()
	return boundary{cpu: gw, mem: watch.sample(), others: busy - gw - be - lg}
}

// dirSize sums the allocated sizes of a directory's files (Badger's
// memtable logs are sparse, so apparent sizes would overstate them).
func dirSize(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				if st, ok := fi.Sys().(*syscall.Stat_t); ok {
					total += st.Blocks * 512
				} else {
					total += fi.Size()
				}
			}
		}
		return nil
	})
	return total
}
