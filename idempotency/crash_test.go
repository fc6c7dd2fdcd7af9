package idempotency_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/storetest"
)

// The crash and footprint tests re-execute the test binary as a child
// process; these variables tell the child what to do.
const (
	envHelper = "DWS_IDEMPOTENCY_HELPER" // crash-single, crash-load, footprint or rotation-fail
	envDir    = "DWS_IDEMPOTENCY_DIR"
	envLease  = "DWS_IDEMPOTENCY_LEASE"
	envN      = "DWS_IDEMPOTENCY_N"
	envTune   = "DWS_IDEMPOTENCY_PROFILE"
)

var crashAnswer = idempotency.Answer{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeAccepted, BackendStatus: 201}

// helperMain runs the child side when the environment asks for it, and
// then exits the process; it returns false in a normal test run.
func helperMain() bool {
	mode := os.Getenv(envHelper)
	if mode == "" {
		return false
	}
	var err error
	switch mode {
	case "crash-single":
		err = crashSingleChild()
	case "crash-load":
		err = crashLoadChild()
	case "footprint":
		err = footprintChild()
	case "rotation-fail":
		err = rotationFailChild()
	default:
		err = fmt.Errorf("unknown helper mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	os.Exit(0)
	return true
}

// crashSingleChild leaves one claim in flight, completes another, reports
// "completed" the moment Complete returns and then waits to be killed.
func crashSingleChild() error {
	lease, err := time.ParseDuration(os.Getenv(envLease))
	if err != nil {
		return err
	}
	s, err := idempotency.OpenBadger(idempotency.BadgerOptions{Dir: os.Getenv(envDir)})
	if err != nil {
		return err
	}
	ctx := context.Background()
	c, err := s.Claim(ctx, storetest.K("crash-inflight"), storetest.FP(1), lease, time.Hour)
	if err != nil {
		return err
	}
	fmt.Printf("inflight %d %d\n", c.Token, c.Record.LeaseExpiry.UnixNano())
	d, err := s.Claim(ctx, storetest.K("crash-done"), storetest.FP(2), time.Minute, time.Hour)
	if err != nil {
		return err
	}
	if err := s.Complete(ctx, storetest.K("crash-done"), d.Token, crashAnswer, time.Hour); err != nil {
		return err
	}
	os.Stdout.WriteString("completed " + strconv.FormatUint(d.Token, 10) + "\n")
	time.Sleep(time.Hour)
	return nil
}

// crashLoadChild completes records from 8 goroutines until it is killed,
// printing each requestId right after its Complete returned.
func crashLoadChild() error {
	s, err := idempotency.OpenBadger(idempotency.BadgerOptions{Dir: os.Getenv(envDir)})
	if err != nil {
		return err
	}
	ctx := context.Background()
	var mu sync.Mutex
	errc := make(chan error, 8)
	for w := range 8 {
		go func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("load-%d-%d", w, i)
				c, err := s.Claim(ctx, storetest.K(id), storetest.FP(3), time.Minute, time.Hour)
				if err == nil {
					err = s.Complete(ctx, storetest.K(id), c.Token, crashAnswer, time.Hour)
				}
				if err != nil {
					errc <- err
					return
				}
				mu.Lock()
				os.Stdout.WriteString("completed " + id + "\n")
				mu.Unlock()
			}
		}()
	}
	return <-errc
}

// startChild starts the test binary as a helper child.
func startChild(t *testing.T, env ...string) (*exec.Cmd, io.Reader, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, stdout, &stderr
}

// waitKilled reaps cmd and checks that SIGKILL ended it.
func waitKilled(t *testing.T, cmd *exec.Cmd, stderr *bytes.Buffer) {
	t.Helper()
	err := cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v; stderr:\n%s", err, stderr)
	}
}

// TestCrashAfterComplete: a child process claims one key (left in flight),
// claims and completes another, and is SIGKILLed as soon as it reports that
// Complete returned. After reopening, the completed record is done with its
// answer; the in-flight one stays in flight until its lease ends and is
// claimable after.
func TestCrashAfterComplete(t *testing.T) {
	dir := t.TempDir()
	const lease = 3 * time.Second
	cmd, stdout, stderr := startChild(t, envHelper+"=crash-single", envDir+"="+dir, envLease+"="+lease.String())

	var inflightToken, doneToken uint64
	var leaseExpiry time.Time
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "inflight" {
			inflightToken, _ = strconv.ParseUint(f[1], 10, 64)
			ns, _ := strconv.ParseInt(f[2], 10, 64)
			leaseExpiry = time.Unix(0, ns)
		}
		if len(f) == 2 && f[0] == "completed" {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			doneToken, _ = strconv.ParseUint(f[1], 10, 64)
			break
		}
	}
	io.Copy(io.Discard, stdout)
	if doneToken == 0 || inflightToken == 0 {
		cmd.Wait()
		t.Fatalf("child did not report its claims; stderr:\n%s", stderr)
	}
	waitKilled(t, cmd, stderr)

	s := openBadger(t, idempotency.BadgerOptions{Dir: dir})
	ctx := t.Context()
	rec, ok, err := s.Get(ctx, storetest.K("crash-done"))
	if err != nil || !ok {
		t.Fatalf("completed record lost in the crash: found %v, %v", ok, err)
	}
	if rec.State != idempotency.StateDone || rec.Answer != crashAnswer || rec.Token != doneToken {
		t.Fatalf("record after crash = %+v, want done with %+v under token %d", rec, crashAnswer, doneToken)
	}
	res, err := s.Claim(ctx, storetest.K("crash-done"), storetest.FP(2), time.Minute, time.Hour)
	if err != nil || res.Status != idempotency.Done || res.Record.Answer != crashAnswer {
		t.Errorf("duplicate after crash = %v %+v, %v; want done replaying the answer", res.Status, res.Record.Answer, err)
	}

	// The dead child's claim holds until its lease ends...
	if time.Until(leaseExpiry) < 500*time.Millisecond {
		t.Fatalf("reopening took too long: the child's lease ends in %v", time.Until(leaseExpiry))
	}
	res, err = s.Claim(ctx, storetest.K("crash-inflight"), storetest.FP(1), time.Minute, time.Hour)
	if err != nil || res.Status != idempotency.InFlight || res.Record.Token != inflightToken || !res.Record.LeaseExpiry.Equal(leaseExpiry) {
		t.Fatalf("Claim before the dead child's lease ended = %v %+v, %v; want in_flight under token %d until %v",
			res.Status, res.Record, err, inflightToken, leaseExpiry)
	}
	// ... and is claimable after.
	time.Sleep(time.Until(leaseExpiry) + 50*time.Millisecond)
	res, err = s.Claim(ctx, storetest.K("crash-inflight"), storetest.FP(1), time.Minute, time.Hour)
	if err != nil || res.Status != idempotency.Claimed || res.Token == inflightToken {
		t.Fatalf("Claim after the dead child's lease ended = %v token %d, %v; want claimed", res.Status, res.Token, err)
	}
}

// TestCrashUnderLoad kills a child that completes records from 8 goroutines
// after 300 completions: every completion the child reported before it died
// is done after reopening, and at most one claim per goroutine is left in
// flight.
func TestCrashUnderLoad(t *testing.T) {
	dir := t.TempDir()
	cmd, stdout, stderr := startChild(t, envHelper+"=crash-load", envDir+"="+dir)
	var reported []string
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		id, ok := strings.CutPrefix(sc.Text(), "completed ")
		if !ok {
			continue
		}
		reported = append(reported, id)
		if len(reported) == 300 && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	if !killed {
		cmd.Wait()
		t.Fatalf("child reported %d completions; stderr:\n%s", len(reported), stderr)
	}
	waitKilled(t, cmd, stderr)

	s := openBadger(t, idempotency.BadgerOptions{Dir: dir})
	ctx := t.Context()
	for _, id := range reported {
		rec, ok, err := s.Get(ctx, storetest.K(id))
		if err != nil || !ok || rec.State != idempotency.StateDone || rec.Answer != crashAnswer {
			t.Fatalf("reported completion %s after the crash: %+v found %v, %v", id, rec, ok, err)
		}
	}
	var done, inflight int
	if err := s.Scan(ctx, func(r idempotency.Record) bool {
		if r.State == idempotency.StateDone {
			done++
		} else {
			inflight++
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("reported %d completions before dying; after reopening: %d done, %d in flight", len(reported), done, inflight)
	if done < len(reported) || inflight > 8 {
		t.Errorf("after the crash %d done (reported %d) and %d in flight (at most 8)", done, len(reported), inflight)
	}
}
