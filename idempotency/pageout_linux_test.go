//go:build linux

package idempotency

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// tableRSS sums the resident KiB of this process's mappings of dir/*.sst
// (from /proc/self/smaps) and counts them.
func tableRSS(t *testing.T, dir string) (kib int64, mappings int) {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	prefix := dir + "/"
	inTable := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			inTable = len(fields) >= 6 && strings.HasPrefix(fields[5], prefix) && strings.HasSuffix(fields[5], ".sst")
			if inTable {
				mappings++
			}
			continue
		}
		if inTable && fields[0] == "Rss:" {
			v, _ := strconv.ParseInt(fields[1], 10, 64)
			kib += v
		}
	}
	return kib, mappings
}

// TestPageOutTables: after writes that flushed tables, the tables' pages
// are resident; a page-out pass finds their mappings and the kernel
// reclaims them; every record still reads back (the pages fault back in).
func TestPageOutTables(t *testing.T) {
	dir := canonicalDir(t.TempDir())
	s, err := OpenBadger(BadgerOptions{Dir: dir, Sync: SyncNone, GCInterval: -1, PageOutInterval: -1,
		Tune: func(o *badger.Options) { o.MemTableSize = 256 << 10 }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const n = 6000
	key := func(i int) Key {
		return Key{ClientID: "c", API: "addPaymentMethod", RequestID: fmt.Sprintf("pageout-%06d", i)}
	}
	ans := Answer{ResultCode: "SUCCESS", Outcome: OutcomeAccepted, BackendStatus: 200}
	for i := range n {
		c, err := s.Claim(ctx, key(i), Fingerprint{byte(i)}, time.Minute, time.Hour)
		if err != nil || c.Status != Claimed {
			t.Fatalf("claim %d: %v %v", i, c.Status, err)
		}
		if err := s.Complete(ctx, key(i), c.Token, ans, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	// Memtables flush to tables in the background, and compactions may
	// then merge tables: wait until the set of table mappings holds still
	// for a moment before measuring.
	waitFor(t, func() bool { kib, _ := tableRSS(t, dir); return kib > 0 })
	_, prev := tableRSS(t, dir)
	waitFor(t, func() bool {
		time.Sleep(200 * time.Millisecond)
		_, now := tableRSS(t, dir)
		stable := now == prev
		prev = now
		return stable
	})
	before, mapped := tableRSS(t, dir)

	advised, err := pageOutTables(s.mapsDir)

	if errors.Is(err, errPageOutUnsupported) {
		t.Skip("kernel without MADV_PAGEOUT")
	}
	if err != nil {
		t.Fatal(err)
	}
	// A compaction finishing in between can still drop tables: every
	// mapping that existed both before and after must have been advised.
	_, mappedAfter := tableRSS(t, dir)
	if advised < 1 || advised < min(mapped, mappedAfter) {
		t.Fatalf("advised %d mappings; %d table mappings before, %d after", advised, mapped, mappedAfter)
	}
	after, _ := tableRSS(t, dir)
	if after >= before {
		t.Fatalf("table RSS %d KiB before the page-out, %d KiB after", before, after)
	}
	t.Logf("%d table mappings: %d KiB resident before, %d KiB after", mapped, before, after)

	for i := range n {
		rec, found, err := s.Get(ctx, key(i))
		if err != nil || !found || rec.State != StateDone || rec.Fingerprint != (Fingerprint{byte(i)}) {
			t.Fatalf("record %d after page-out: found %v, %+v, %v", i, found, rec, err)
		}
	}
}

// TestPageOutLoop: the loop runs on its interval while the store is open,
// only looks at its own directory, and stops with Close.
func TestPageOutLoop(t *testing.T) {
	if _, err := pageOutTables(canonicalDir(t.TempDir())); errors.Is(err, errPageOutUnsupported) {
		t.Skip("kernel without MADV_PAGEOUT")
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(t.TempDir(), link); err != nil {
		t.Fatal(err)
	}
	s, err := OpenBadger(BadgerOptions{Dir: link, PageOutInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if real, _ := filepath.EvalSymlinks(link); s.mapsDir != real {
		t.Errorf("mapsDir %q, want the resolved %q", s.mapsDir, real)
	}
	waitFor(t, func() bool { return s.Stats().PageOuts >= 3 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	runs := s.Stats().PageOuts
	time.Sleep(50 * time.Millisecond)
	if got := s.Stats().PageOuts; got != runs {
		t.Errorf("page-out ran %d more times after Close", got-runs)
	}
}
