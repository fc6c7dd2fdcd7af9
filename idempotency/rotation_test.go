package idempotency_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/storetest"
)

// rotationEpisodes is how many times rotationFailChild makes a rotation
// fail. Whether a commit reaches Badger after the failure is a race (it
// must have read before the failure and commit after it); without the
// store's protection about one episode in five ends the process, so ten
// episodes show it almost always.
const rotationEpisodes = 10

// rotationFailChild makes Badger's memtable rotation fail under load,
// rotationEpisodes times, each in a fresh store in its own subdirectory
// of the helper's directory. The store has small memtables, and the
// log of its next memtable cannot be created (its name is taken by a
// directory), so the first rotation fails while 128 goroutines claim and
// complete records. That is what a storage directory made unwritable
// (chattr +i, a read-only remount) or a process out of file descriptors
// does. The child prints "completed EPISODE ID" for every Complete that
// returned nil and "failed ERR-IS-ErrFailed ERROR" for the first error of
// each goroutine (a panic counts as one), keeps writing for a moment after
// the first error, reads, closes the store, and exits 0 if it is still
// alive after the last episode.
func rotationFailChild() error {
	for ep := range rotationEpisodes {
		if err := rotationFailEpisode(ep, filepath.Join(os.Getenv(envDir), strconv.Itoa(ep))); err != nil {
			return err
		}
	}
	return nil
}

func rotationFailEpisode(ep int, dir string) error {
	s, err := idempotency.OpenBadger(idempotency.BadgerOptions{
		Dir:          dir,
		CloseTimeout: 30 * time.Second,
		Tune:         func(o *badger.Options) { o.MemTableSize = 256 << 10 },
	})
	if err != nil {
		return err
	}
	next, err := nextMemtableLog(dir)
	if err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(dir, next), 0o755); err != nil {
		return err
	}
	ctx := context.Background()
	var (
		mu       sync.Mutex
		failedAt atomic.Int64 // UnixNano of the first error
		wg       sync.WaitGroup
	)
	const workers, after = 128, 200 * time.Millisecond
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reported := false
			deadline := time.Now().Add(time.Minute)
			for i := 0; time.Now().Before(deadline); i++ {
				if at := failedAt.Load(); at != 0 && time.Since(time.Unix(0, at)) > after {
					return
				}
				id := fmt.Sprintf("rot-%d-%d", w, i)
				err := recovered(func() error {
					c, err := s.Claim(ctx, storetest.K(id), storetest.FP(4), time.Minute, time.Hour)
					if err == nil {
						err = s.Complete(ctx, storetest.K(id), c.Token, crashAnswer, time.Hour)
					}
					return err
				})
				mu.Lock()
				switch {
				case err == nil:
					fmt.Printf("completed %d %s\n", ep, id)
				case !reported:
					reported = true
					fmt.Printf("failed %v %s\n", errors.Is(err, idempotency.ErrFailed), strings.ReplaceAll(err.Error(), "\n", " "))
				}
				mu.Unlock()
				if err != nil {
					failedAt.CompareAndSwap(0, time.Now().UnixNano())
				}
			}
		}()
	}
	wg.Wait()
	if failedAt.Load() == 0 {
		return errors.New("no write failed although the next memtable log could not be created")
	}
	// Reads fail the same way, and do not panic.
	gerr := recovered(func() error {
		_, _, err := s.Get(ctx, storetest.K("rot-0-0"))
		return err
	})
	fmt.Printf("get %v %v\n", errors.Is(gerr, idempotency.ErrFailed), gerr)
	fmt.Printf("closed %v\n", s.Close())
	return nil
}

// recovered runs f and turns a panic into an error, as the gateway's
// guard around store calls does: a store must not rely on it, but with it
// the test reaches what a gateway reaches.
func recovered(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return f()
}

// nextMemtableLog names the memtable log Badger creates at its next
// rotation: the highest *.mem file id in dir plus one.
func nextMemtableLog(dir string) (string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var ids []int
	for _, e := range ents {
		if id, ok := strings.CutSuffix(e.Name(), ".mem"); ok {
			n, err := strconv.Atoi(id)
			if err != nil {
				return "", err
			}
			ids = append(ids, n)
		}
	}
	if len(ids) == 0 {
		return "", fmt.Errorf("no memtable log in %s", dir)
	}
	sort.Ints(ids)
	return fmt.Sprintf("%05d.mem", ids[len(ids)-1]+1), nil
}

// TestFailedMemtableRotationKeepsTheProcess: when Badger cannot create the
// log of its next memtable it is left without a memtable, and the next
// write that reaches it fails an assertion that exits the process
// (badger v4.9.6 ensureRoomForWrite; reads panic on the missing memtable).
// A gateway must never die because its disk refused a file: the store must
// fail every call from then on with ErrFailed (the caller answers U and
// reopens the store) and keep everything it acknowledged.
func TestFailedMemtableRotationKeepsTheProcess(t *testing.T) {
	dir := t.TempDir()
	cmd, stdout, stderr := startChild(t, envHelper+"=rotation-fail", envDir+"="+dir)
	completed := map[string][]string{} // episode -> requestIds
	var failures, gets, closes []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		kind, rest, _ := strings.Cut(sc.Text(), " ")
		switch kind {
		case "completed":
			ep, id, _ := strings.Cut(rest, " ")
			completed[ep] = append(completed[ep], id)
		case "failed":
			failures = append(failures, rest)
		case "get":
			gets = append(gets, rest)
		case "closed":
			closes = append(closes, rest)
		}
	}
	io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		tail := stderr.String()
		if len(tail) > 4000 {
			tail = tail[len(tail)-4000:]
		}
		t.Fatalf("the process died after a memtable rotation failed (in episode %d of %d): %v; stderr:\n%s", len(closes)+1, rotationEpisodes, err, tail)
	}
	if len(failures) == 0 {
		t.Fatal("no write failed")
	}
	for _, f := range failures {
		if !strings.HasPrefix(f, "true ") {
			t.Errorf("a write failed with an error that is not ErrFailed: %s", f)
		}
	}
	for _, g := range gets {
		if !strings.HasPrefix(g, "true ") {
			t.Errorf("a read after the failure: %s, want ErrFailed", g)
		}
	}
	t.Logf("%d episodes; first error of each writer: %d, e.g. %s; closes: %v", rotationEpisodes, len(failures), failures[0], closes)

	// Nothing acknowledged is lost: with the obstacle gone each store
	// reopens and every completion it acknowledged is done.
	for ep := range rotationEpisodes {
		epDir := filepath.Join(dir, strconv.Itoa(ep))
		if err := os.Remove(filepath.Join(epDir, blockingDir(t, epDir))); err != nil {
			t.Fatal(err)
		}
		s, err := idempotency.OpenBadger(idempotency.BadgerOptions{Dir: epDir})
		if err != nil {
			t.Fatalf("episode %d: reopening: %v", ep, err)
		}
		ids := completed[strconv.Itoa(ep)]
		for _, id := range ids {
			rec, ok, err := s.Get(t.Context(), storetest.K(id))
			if err != nil || !ok || rec.State != idempotency.StateDone || rec.Answer != crashAnswer {
				t.Errorf("episode %d: %s was acknowledged before the failure; after reopening: %+v, found %v, %v", ep, id, rec, ok, err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if len(ids) == 0 {
			t.Errorf("episode %d: nothing was acknowledged before the rotation failed", ep)
		}
	}
}

// blockingDir returns the name of the directory rotationFailChild put in
// the way of the next memtable log in dir.
func blockingDir(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() && strings.HasSuffix(e.Name(), ".mem") {
			return e.Name()
		}
	}
	t.Fatalf("no blocking directory in %s", dir)
	return ""
}
