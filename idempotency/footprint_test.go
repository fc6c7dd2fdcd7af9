package idempotency_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/storetest"
)

// envFootprint enables TestFootprint: a comma-separated list of record
// counts, e.g. IDEMPOTENCY_FOOTPRINT=100000,300000. envFootprintProfiles
// optionally narrows the profiles measured (default: all of them).
const (
	envFootprint         = "IDEMPOTENCY_FOOTPRINT"
	envFootprintProfiles = "IDEMPOTENCY_FOOTPRINT_PROFILES"
)

// footprint is what one footprint child measures.
type footprint struct {
	Profile string  `json:"profile"`
	N       int     `json:"n"`
	Seconds float64 `json:"seconds"`
	// Process before opening the store.
	BaseRSS, BaseSys uint64
	// Right after opening the store, nothing written yet.
	OpenHeapAlloc, OpenSys, OpenRSS uint64
	// After writing N records and a runtime.GC, store still open.
	HeapAlloc, HeapInuse, Sys     uint64
	RSS, RSSAnon, RSSFile, RSSHWM uint64
	// Directory after Close: apparent size (st_size) and allocated blocks.
	DirBytes, DirAllocated int64
	// Same for an empty store (opened and closed with nothing written).
	EmptyDirBytes, EmptyDirAllocated int64
	SyncRounds, SyncedCompletions    uint64
}

// procStatus reads the kB figures of /proc/self/status into bytes.
func procStatus() map[string]uint64 {
	m := map[string]uint64{}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 2 && fields[1] == "kB" {
			if v, err := strconv.ParseUint(fields[0], 10, 64); err == nil {
				m[name] = v << 10
			}
		}
	}
	return m
}

func dirSize(dir string) (apparent, allocated int64, err error) {
	err = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		apparent += info.Size()
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			allocated += st.Blocks * 512
		}
		return nil
	})
	return apparent, allocated, err
}

// footprintOptions returns the store options of a profile: "sidecar" is
// the package's profile, "sidecar-mt16" the same with 16 MB memtables, and
// "defaults" Badger's DefaultOptions.
func footprintOptions(profile, dir string) (idempotency.BadgerOptions, error) {
	o := idempotency.BadgerOptions{Dir: dir, GCInterval: -1}
	switch profile {
	case "sidecar":
	case "sidecar-mt16":
		o.Tune = func(bo *badger.Options) { bo.MemTableSize = 16 << 20 }
	case "defaults":
		o.Tune = func(bo *badger.Options) { *bo = badger.DefaultOptions(bo.Dir) }
	default:
		return o, fmt.Errorf("unknown profile %q", profile)
	}
	return o, nil
}

// footprintChild writes N done records (claim + durable complete from 32
// goroutines, like the gateway under load) and reports memory and disk use
// as one JSON line.
func footprintChild() error {
	n, err := strconv.Atoi(os.Getenv(envN))
	if err != nil {
		return err
	}
	profile := os.Getenv(envTune)
	dir := os.Getenv(envDir)
	fp := footprint{Profile: profile, N: n}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	fp.BaseRSS, fp.BaseSys = procStatus()["VmRSS"], ms.Sys

	// An empty store first, for the fixed cost of the directory.
	emptyDir := dir + "-empty"
	o, err := footprintOptions(profile, emptyDir)
	if err != nil {
		return err
	}
	s, err := idempotency.OpenBadger(o)
	if err != nil {
		return err
	}
	if err := s.Close(); err != nil {
		return err
	}
	if fp.EmptyDirBytes, fp.EmptyDirAllocated, err = dirSize(emptyDir); err != nil {
		return err
	}

	o, _ = footprintOptions(profile, dir)
	s, err = idempotency.OpenBadger(o)
	if err != nil {
		return err
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	fp.OpenHeapAlloc, fp.OpenSys, fp.OpenRSS = ms.HeapAlloc, ms.Sys, procStatus()["VmRSS"]
	ctx := context.Background()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				// requestIds shaped like DWS ones: 32 digits.
				k := storetest.K(fmt.Sprintf("2025112112000%019d", i))
				c, err := s.Claim(ctx, k, storetest.FP(byte(i)), time.Minute, 168*time.Hour)
				if err == nil {
					err = s.Complete(ctx, k, c.Token, crashAnswer, 168*time.Hour)
				}
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	fp.Seconds = time.Since(start).Seconds()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	fp.HeapAlloc, fp.HeapInuse, fp.Sys = ms.HeapAlloc, ms.HeapInuse, ms.Sys
	st := procStatus()
	fp.RSS, fp.RSSAnon, fp.RSSFile, fp.RSSHWM = st["VmRSS"], st["RssAnon"], st["RssFile"], st["VmHWM"]
	stats := s.Stats()
	fp.SyncRounds, fp.SyncedCompletions = stats.SyncRounds, stats.SyncedCompletions
	if err := s.Close(); err != nil {
		return err
	}
	if fp.DirBytes, fp.DirAllocated, err = dirSize(dir); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(fp)
}

// TestFootprint measures memory and bytes on disk after writing many
// records, each count and profile in a fresh child process. It runs only
// when IDEMPOTENCY_FOOTPRINT lists the record counts.
func TestFootprint(t *testing.T) {
	spec := os.Getenv(envFootprint)
	if spec == "" {
		t.Skip("set " + envFootprint + "=100000,300000 to measure")
	}
	mib := func(b uint64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }
	t.Logf("| profile | records | write s | just opened: HeapAlloc / Sys / RSS MiB | after writing: HeapAlloc / HeapInuse / Sys MiB | RSS MiB (anon + file) | peak RSS MiB | process baseline RSS MiB | dir MiB (allocated) | bytes/record on disk | syncs/completion |")
	t.Logf("|---|---|---|---|---|---|---|---|---|---|---|")
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			t.Fatal(err)
		}
		profiles := []string{"sidecar", "sidecar-mt16", "defaults"}
		if p := os.Getenv(envFootprintProfiles); p != "" {
			profiles = strings.Split(p, ",")
		}
		for _, profile := range profiles {
			dir := filepath.Join(t.TempDir(), "db")
			cmd, stdout, stderr := startChild(t, envHelper+"=footprint", envDir+"="+dir, envN+"="+strconv.Itoa(n), envTune+"="+profile)
			var fp footprint
			decErr := json.NewDecoder(stdout).Decode(&fp)
			if err := cmd.Wait(); err != nil || decErr != nil {
				t.Fatalf("footprint child: %v / %v; stderr:\n%s", err, decErr, stderr)
			}
			perRecord := float64(fp.DirAllocated-fp.EmptyDirAllocated) / float64(n)
			t.Logf("| %s | %d | %.1f | %s / %s / %s | %s / %s / %s | %s (%s + %s) | %s | %s | %s (%s) | %.0f (apparent %.0f) | %.3f |",
				profile, n, fp.Seconds, mib(fp.OpenHeapAlloc), mib(fp.OpenSys), mib(fp.OpenRSS),
				mib(fp.HeapAlloc), mib(fp.HeapInuse), mib(fp.Sys),
				mib(fp.RSS), mib(fp.RSSAnon), mib(fp.RSSFile), mib(fp.RSSHWM), mib(fp.BaseRSS),
				mib(uint64(fp.DirBytes)), mib(uint64(fp.DirAllocated)),
				perRecord, float64(fp.DirBytes-fp.EmptyDirBytes)/float64(n),
				float64(fp.SyncRounds)/float64(max(fp.SyncedCompletions, 1)))
		}
	}
}
