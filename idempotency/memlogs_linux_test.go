package idempotency

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestMemLogFilesFollowDirectory: the cached descriptors are synced every
// round without listing the directory while it does not change; a log
// created before a round is synced by that round; a deleted log's
// descriptor is closed; and once the watch is gone every round lists.
func TestMemLogFilesFollowDirectory(t *testing.T) {
	dir := t.TempDir()
	var synced []string
	orig := syncLogFile
	syncLogFile = func(f *os.File) error {
		// Record only: which descriptors a round syncs is the point here.
		synced = append(synced, filepath.Base(f.Name()))
		return nil
	}
	defer func() { syncLogFile = orig }()
	touch := func(name string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var m *memLogFiles
	round := func(want ...string) {
		t.Helper()
		synced = nil
		n, err := m.sync()
		slices.Sort(synced)
		if err != nil || n != len(want) || !slices.Equal(synced, want) {
			t.Fatalf("sync = %d, %v; synced %v, want %v", n, err, synced, want)
		}
	}

	touch("00001.mem")
	touch("000001.sst")
	touch("MANIFEST")
	m = newMemLogFiles(dir)
	defer m.close()
	if m.watch < 0 {
		t.Fatal("no inotify watch on the store directory")
	}
	round("00001.mem")
	lists := m.lists
	for range 5 {
		round("00001.mem")
	}
	if m.lists != lists {
		t.Errorf("%d listings in 5 rounds of an unchanged directory, want 0", m.lists-lists)
	}

	// Every log created before a round is synced by it.
	want := []string{"00001.mem"}
	for i := 2; i < 200; i++ {
		name := fmt.Sprintf("%05d.mem", i)
		touch(name)
		want = append(want, name)
		round(want...)
	}
	// Deleted logs are dropped and their descriptors closed.
	for _, name := range want[:len(want)-1] {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	round(want[len(want)-1])
	if n := deletedOpen(t, dir); n != 0 {
		t.Errorf("%d descriptors of deleted logs still open", n)
	}
	// Other files do not matter, but any change makes the next round list.
	lists = m.lists
	touch("000002.sst")
	round(want[len(want)-1])
	if m.lists != lists+1 {
		t.Errorf("%d listings after a change, want 1", m.lists-lists)
	}

	// The directory moved away: the watch ends, and every round lists the
	// path from then on.
	moved := dir + ".moved"
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(moved)
	if _, err := m.sync(); err == nil {
		t.Error("sync of a directory that moved away succeeded")
	}
	if m.watch >= 0 {
		t.Error("still watching a directory that moved away")
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	touch("00500.mem")
	round("00500.mem")
	lists = m.lists
	round("00500.mem")
	round("00500.mem")
	if m.lists != lists+2 {
		t.Errorf("%d listings in 2 rounds without a watch, want 2", m.lists-lists)
	}
	m.close()
	if n := openUnder(t, dir); n != 0 {
		t.Errorf("%d descriptors under the directory open after close", n)
	}
}

// deletedOpen counts this process's descriptors of deleted files in dir.
func deletedOpen(t *testing.T, dir string) int {
	n := 0
	for _, target := range fdTargets(t) {
		if strings.HasPrefix(target, dir+"/") && strings.HasSuffix(target, " (deleted)") {
			n++
		}
	}
	return n
}

// openUnder counts this process's descriptors of files in dir.
func openUnder(t *testing.T, dir string) int {
	n := 0
	for _, target := range fdTargets(t) {
		if strings.HasPrefix(target, dir+"/") {
			n++
		}
	}
	return n
}

func fdTargets(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			targets = append(targets, target)
		}
	}
	return targets
}
