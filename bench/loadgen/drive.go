package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// driveSpec is one timed run at fixed concurrency: conc workers, each with
// its own keep-alive connection, send notifications first, first+1, ...
// back to back (closed loop). Answers that complete during the warmup are
// not counted; the window is the duration after it.
type driveSpec struct {
	p     *pool
	addr  string
	want  expectation
	conc  int
	first int  // first pool index to send
	wrap  bool // cycle through the pool (only for modes a and p: nothing dedupes there)
	// rate, when > 0, paces the workers: the n-th send of the run (warmup
	// included) starts no earlier than n/rate seconds after the start, so
	// the gateway sees about rate requests per second while fewer than
	// conc are in flight (mode p).
	rate     float64
	warmup   time.Duration
	duration time.Duration
	// edge runs at the start (0) and the end (1) of the window, on a timer
	// goroutine: the place to read CPU counters.
	edge func(which int)
}

// driveResult is what the workers saw in the window.
type driveResult struct {
	count     int           // correct answers completed in the window
	window    time.Duration // its length
	lats      []int64       // their latencies, ns, sorted
	sent      int           // notifications sent in total (warmup included)
	wrong     map[string]int
	transport int    // connection errors (reconnected)
	firstErr  string // the first transport error
	exhausted bool   // the pool ran out before the window ended
}

func (r *driveResult) errors() int {
	n := r.transport
	for _, v := range r.wrong {
		n += v
	}
	return n
}

func (r *driveResult) errorText() string {
	var parts []string
	for k, v := range r.wrong {
		parts = append(parts, fmt.Sprintf("%d× %s", v, k))
	}
	slices.Sort(parts)
	if r.transport > 0 {
		parts = append(parts, fmt.Sprintf("%d× transport (first: %s)", r.transport, r.firstErr))
	}
	if r.exhausted {
		parts = append(parts, "pre-signed pool exhausted before the window ended (raise -pool)")
	}
	return strings.Join(parts, "; ")
}

func (r *driveResult) throughput() float64 { return float64(r.count) / r.window.Seconds() }

// percentile of sorted latencies (nearest rank).
func percentile(sorted []int64, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	k := int(q*float64(len(sorted))+0.999999) - 1
	return time.Duration(sorted[min(max(k, 0), len(sorted)-1)])
}

func drive(s driveSpec) *driveResult {
	var (
		next      atomic.Int64
		slot      atomic.Int64 // sends started, for the pacing
		exhausted atomic.Bool
		wg        sync.WaitGroup
		mu        sync.Mutex
		res       = &driveResult{wrong: map[string]int{}}
	)
	next.Store(int64(s.first))
	start := time.Now()
	t0 := start.Add(s.warmup)
	t1 := t0.Add(s.duration)
	edges := make(chan struct{})
	go func() {
		defer close(edges)
		time.Sleep(time.Until(t0))
		if s.edge != nil {
			s.edge(0)
		}
		time.Sleep(time.Until(t1))
		if s.edge != nil {
			s.edge(1)
		}
	}()
	perWorker := int(s.duration.Seconds()*20000)/s.conc + 64
	for range s.conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cc := newClientConn(s.p, s.addr, s.want)
			defer cc.close()
			lats := make([]int64, 0, perWorker)
			wrong := map[string]int{}
			transport, sent := 0, 0
			firstErr := ""
			for {
				if s.rate > 0 {
					n := slot.Add(1) - 1
					time.Sleep(time.Until(start.Add(time.Duration(float64(n) / s.rate * float64(time.Second)))))
				}
				begin := time.Now()
				if !begin.Before(t1) {
					break
				}
				i := int(next.Add(1) - 1)
				if i >= s.p.n {
					if !s.wrap {
						exhausted.Store(true)
						break
					}
					i = s.first + (i-s.first)%(s.p.n-s.first)
				}
				err := cc.send(i)
				end := time.Now()
				sent++
				var wa errWrongAnswer
				switch {
				case err == nil:
					if !end.Before(t0) && !end.After(t1) {
						lats = append(lats, int64(end.Sub(begin)))
					}
				case errors.As(err, &wa):
					wrong[wa.what]++
				default:
					transport++
					if firstErr == "" {
						firstErr = err.Error()
					}
					time.Sleep(10 * time.Millisecond) // do not spin on a dead gateway
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.lats = append(res.lats, lats...)
			res.sent += sent
			res.transport += transport
			if res.firstErr == "" {
				res.firstErr = firstErr
			}
			for k, v := range wrong {
				res.wrong[k] += v
			}
		}()
	}
	wg.Wait()
	res.window = s.duration
	res.exhausted = exhausted.Load()
	if res.exhausted && s.edge == nil {
		// Nothing waits for the window's end (the drain sends each
		// notification once): the window ends with the last answer.
		res.window = time.Since(t0)
	} else {
		<-edges
	}
	res.count = len(res.lats)
	slices.Sort(res.lats)
	return res
}
