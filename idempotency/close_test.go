package idempotency

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// fillStore commits n done records, so the memtable has something to
// flush.
func fillStore(t *testing.T, s *BadgerStore, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		key := Key{ClientID: "c", API: "addPaymentMethod", RequestID: fmt.Sprintf("%s-%d", prefix, i)}
		c, err := s.Claim(ctx, key, Fingerprint{1}, time.Minute, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Complete(ctx, key, c.Token, Answer{ResultCode: "SUCCESS", Outcome: OutcomeAccepted, BackendStatus: 200}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
}

// closeWithin calls Close and fails the test if it has not returned after
// limit (a generous bound: the point is that it returns at all; Badger's
// own Close retried its flush forever).
func closeWithin(t *testing.T, s *BadgerStore, limit time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("Close did not return within %s", limit)
		return nil
	}
}

// With its directory removed, a store with unflushed records closes at
// once, with an error wrapping ErrNotFlushed and a log line naming the
// memtable logs it did not flush, instead of retrying the flush forever.
func TestCloseWithTheDirectoryRemoved(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	dir := t.TempDir()
	s, err := OpenBadger(BadgerOptions{Dir: dir, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	fillStore(t, s, "gone", 50)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	err = closeWithin(t, s, time.Minute)
	if !errors.Is(err, ErrNotFlushed) || !strings.Contains(err.Error(), "directory is gone") {
		t.Fatalf("Close = %v, want ErrNotFlushed: the directory is gone", err)
	}
	if again := s.Close(); again != err {
		t.Errorf("second Close = %v, want the first one's error", again)
	}
	if n := logs.FilterMessageSnippet("closed without flushing").FilterLevelExact(zapcore.ErrorLevel).Len(); n != 1 {
		t.Errorf("%d error lines saying the store was closed without flushing, want 1", n)
	}
}

// A directory replaced by another one is not flushed into either.
func TestCloseWithTheDirectoryReplaced(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenBadger(BadgerOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	fillStore(t, s, "replaced", 20)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	err = closeWithin(t, s, time.Minute)
	if !errors.Is(err, ErrNotFlushed) || !strings.Contains(err.Error(), "replaced") {
		t.Fatalf("Close = %v, want ErrNotFlushed: the directory was replaced", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("Close wrote %d files into the new directory", len(entries))
	}
}

// On a filesystem without room for the flush (Badger would write the
// table through a memory map and die of SIGBUS), Close does not start it:
// it gives up after CloseTimeout with ErrNotFlushed, and the flush waits in
// the background. Once there is room the store closes after all, and the
// next open has every committed record: the memtable logs held them.
func TestCloseWaitsForRoomThenGivesUp(t *testing.T) {
	var full atomic.Bool
	prev := freeBytes
	freeBytes = func(dir string) (int64, bool) {
		if full.Load() {
			return 4096, true
		}
		return prev(dir)
	}
	t.Cleanup(func() { freeBytes = prev })

	core, logs := observer.New(zapcore.InfoLevel)
	dir := t.TempDir()
	s, err := OpenBadger(BadgerOptions{Dir: dir, Logger: zap.New(core), CloseTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	fillStore(t, s, "full", 100)
	full.Store(true)
	err = closeWithin(t, s, time.Minute)
	if !errors.Is(err, ErrNotFlushed) || !strings.Contains(err.Error(), "did not finish within 300ms") {
		t.Fatalf("Close = %v, want ErrNotFlushed after 300ms", err)
	}
	if logs.FilterMessageSnippet("waiting to flush").FilterFieldKey("reason").Len() != 1 {
		t.Error("no warning saying why the flush waits")
	}
	if _, err := OpenBadger(BadgerOptions{Dir: dir}); err == nil {
		t.Fatal("the directory could be opened again while its store is still closing")
	}

	full.Store(false)
	deadline := time.Now().Add(time.Minute)
	for logs.FilterMessageSnippet("closed after all").Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the store did not close in the background once there was room")
		}
		time.Sleep(20 * time.Millisecond)
	}
	s2, err := OpenBadger(BadgerOptions{Dir: dir})
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	defer s2.Close()
	for i := range 100 {
		key := Key{ClientID: "c", API: "addPaymentMethod", RequestID: fmt.Sprintf("full-%d", i)}
		rec, found, err := s2.Get(context.Background(), key)
		if err != nil || !found || rec.State != StateDone {
			t.Fatalf("record %s after reopening: found %v, state %v, %v", key.RequestID, found, rec.State, err)
		}
	}
}
