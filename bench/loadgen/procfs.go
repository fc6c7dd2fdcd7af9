package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// memSample is a process's resident memory from /proc/<pid>/status, in KiB.
// Anonymous memory is the Go heap and runtime; file-backed memory is mostly
// Badger's memory-mapped tables and memtable logs (page cache mapped into
// the process, which the kernel can reclaim); shmem is shared memory.
type memSample struct {
	anon, file, shmem int64
}

func (m memSample) total() int64 { return m.anon + m.file + m.shmem }

func readMem(pid int) (memSample, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memSample{}, err
	}
	var m memSample
	for line := range bytes.Lines(b) {
		var dst *int64
		switch {
		case bytes.HasPrefix(line, []byte("RssAnon:")):
			dst = &m.anon
		case bytes.HasPrefix(line, []byte("RssFile:")):
			dst = &m.file
		case bytes.HasPrefix(line, []byte("RssShmem:")):
			dst = &m.shmem
		default:
			continue
		}
		f := bytes.Fields(line)
		if len(f) >= 2 {
			*dst, _ = strconv.ParseInt(string(f[1]), 10, 64)
		}
	}
	return m, nil
}

// clkTck is the unit of utime and stime in /proc/<pid>/stat. It is 100 on
// every Linux configuration Go supports.
const clkTck = 100

// readCPU returns the user+system CPU time a process has used so far.
func readCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	f := bytes.Fields(b[i+1:])
	// After ')': state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt
	// majflt cmajflt utime(14) stime(15).
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return time.Duration(ut+st) * time.Second / clkTck, nil
}

// loadAvg returns the 1-minute load average.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := bytes.Fields(b)
	if len(f) == 0 {
		return -1
	}
	v, _ := strconv.ParseFloat(string(f[0]), 64)
	return v
}

// memWatch samples a process's memory periodically and keeps the peaks.
type memWatch struct {
	pid  int
	stop chan struct{}
	done chan struct{}

	mu   sync.Mutex
	peak memSample // each field's own maximum
	top  int64     // the largest total of one sample
	last memSample
}

func watchMem(pid int, every time.Duration) *memWatch {
	w := &memWatch{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			w.sample()
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// sample reads the memory now, records it and returns it.
func (w *memWatch) sample() memSample {
	m, err := readMem(w.pid)
	if err != nil {
		return memSample{}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last = m
	w.peak.anon = max(w.peak.anon, m.anon)
	w.peak.file = max(w.peak.file, m.file)
	w.peak.shmem = max(w.peak.shmem, m.shmem)
	w.top = max(w.top, m.total())
	return m
}

// end stops sampling and returns the peaks (per field, and the largest
// total seen in one sample).
func (w *memWatch) end() (peak memSample, top int64) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peak, w.top
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

// fileRSS splits a process's file-backed resident memory by what is mapped,
// from /proc/<pid>/smaps: the executable itself, Badger's tables (*.sst),
// its memtable logs (*.mem), its value log (*.vlog) and anything else. KiB.
type fileRSS struct {
	exe, sst, mem, vlog, other int64
}

func (f fileRSS) String() string {
	return fmt.Sprintf("executable %.1f, tables (.sst) %.1f, memtable logs (.mem) %.1f, value log %.1f, other %.1f MiB",
		mib(f.exe), mib(f.sst), mib(f.mem), mib(f.vlog), mib(f.other))
}

func readFileRSS(pid int) (fileRSS, error) {
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return fileRSS{}, err
	}
	var f fileRSS
	var cur *int64
	for line := range bytes.Lines(b) {
		fields := bytes.Fields(line)
		if len(fields) == 0 {
			continue
		}
		// A mapping's header starts with its address range "lo-hi".
		if bytes.IndexByte(fields[0], '-') > 0 && !bytes.HasSuffix(fields[0], []byte(":")) {
			cur = nil
			if len(fields) < 6 {
				continue // anonymous
			}
			path := strings.TrimSuffix(string(bytes.Join(fields[5:], []byte(" "))), " (deleted)")
			switch {
			case !strings.HasPrefix(path, "/"):
				// [heap], [stack], [vdso]...: not file-backed
			case path == exe:
				cur = &f.exe
			case strings.HasSuffix(path, ".sst"):
				cur = &f.sst
			case strings.HasSuffix(path, ".mem"):
				cur = &f.mem
			case strings.HasSuffix(path, ".vlog"):
				cur = &f.vlog
			default:
				cur = &f.other
			}
			continue
		}
		if cur != nil && bytes.Equal(fields[0], []byte("Rss:")) && len(fields) >= 2 {
			v, _ := strconv.ParseInt(string(fields[1]), 10, 64)
			*cur += v
		}
	}
	return f, nil
}

// machineCPU returns the CPU time the whole machine has spent busy (user,
// nice, system, irq, softirq, steal) and its steal time alone, from the
// first line of /proc/stat. Busy time minus what the harness's own three
// processes used is what everything else on the machine took meanwhile.
func machineCPU() (busy, steal time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return 0, 0
	}
	var v [8]int64
	for i := range v {
		v[i], _ = strconv.ParseInt(string(f[i+1]), 10, 64)
	}
	// user nice system idle iowait irq softirq steal
	ticks := v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
	return time.Duration(ticks) * time.Second / clkTck, time.Duration(v[7]) * time.Second / clkTck
}
