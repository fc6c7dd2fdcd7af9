package idempotency_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dwsnotify/dws_notify/idempotency"
	"github.com/dwsnotify/dws_notify/idempotency/storetest"
)

// TestBackupRestore: a backup taken while the store is open and in use
// restores into a new directory with every record as it was (state,
// answer, token, times, expiry), and the restored store goes on working:
// a resend is Done, the in-flight claim still holds, a new key claims.
func TestBackupRestore(t *testing.T) {
	ctx := t.Context()
	src := openBadger(t, idempotency.BadgerOptions{Dir: t.TempDir()})
	ans := idempotency.Answer{ResultCode: "SUCCESS", Outcome: idempotency.OutcomeAccepted, BackendStatus: 200}
	done, err := src.Claim(ctx, storetest.K("bk-done"), storetest.FP(1), time.Minute, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Complete(ctx, storetest.K("bk-done"), done.Token, ans, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Claim(ctx, storetest.K("bk-inflight"), storetest.FP(2), time.Hour, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := src.Backup(ctx, &buf); err != nil {
		t.Fatalf("backup: %v", err)
	}
	// The source keeps working after the backup.
	if _, err := src.Claim(ctx, storetest.K("bk-after"), storetest.FP(3), time.Minute, time.Hour); err != nil {
		t.Fatalf("claim after backup: %v", err)
	}

	dir := filepath.Join(t.TempDir(), "restored")
	if err := idempotency.RestoreBadger(dir, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatalf("restore: %v", err)
	}
	dst := openBadger(t, idempotency.BadgerOptions{Dir: dir})
	for _, id := range []string{"bk-done", "bk-inflight"} {
		want, _, err := src.Get(ctx, storetest.K(id))
		if err != nil {
			t.Fatal(err)
		}
		got, found, err := dst.Get(ctx, storetest.K(id))
		if err != nil || !found {
			t.Fatalf("%s after restore: found %v, %v", id, found, err)
		}
		if got.State != want.State || got.Token != want.Token || got.Answer != want.Answer || got.Fingerprint != want.Fingerprint ||
			!got.ClaimedAt.Equal(want.ClaimedAt) || !got.LeaseExpiry.Equal(want.LeaseExpiry) || !got.CompletedAt.Equal(want.CompletedAt) ||
			!got.ExpiresAt.Equal(want.ExpiresAt) {
			t.Errorf("%s after restore: %+v, want %+v", id, got, want)
		}
	}
	if _, found, _ := dst.Get(ctx, storetest.K("bk-after")); found {
		t.Error("a record claimed after the backup is in the restored store")
	}
	if res, err := dst.Claim(ctx, storetest.K("bk-done"), storetest.FP(1), time.Minute, time.Hour); err != nil || res.Status != idempotency.Done || res.Record.Answer != ans {
		t.Errorf("resend after restore: %v %+v, %v; want Done", res.Status, res.Record, err)
	}
	if res, err := dst.Claim(ctx, storetest.K("bk-inflight"), storetest.FP(2), time.Minute, time.Hour); err != nil || res.Status != idempotency.InFlight {
		t.Errorf("in-flight key after restore: %v, %v; want InFlight", res.Status, err)
	}
	if res, err := dst.Claim(ctx, storetest.K("bk-new"), storetest.FP(4), time.Minute, time.Hour); err != nil || res.Status != idempotency.Claimed {
		t.Errorf("new key after restore: %v, %v; want Claimed", res.Status, err)
	}

	// A restore never merges into an existing database.
	if err := idempotency.RestoreBadger(dir, bytes.NewReader(buf.Bytes())); !errors.Is(err, idempotency.ErrNotEmpty) {
		t.Errorf("restore into a directory holding a database: %v, want ErrNotEmpty", err)
	}
	// A cancelled backup ends with the context's error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := src.Backup(cctx, &bytes.Buffer{}); !errors.Is(err, context.Canceled) {
		t.Errorf("backup with a cancelled context: %v", err)
	}
	// Garbage and a cut-off backup are refused and leave nothing behind.
	for name, in := range map[string][]byte{"garbage": []byte("not a backup"), "cut off": buf.Bytes()[:buf.Len()-3]} {
		parent := t.TempDir()
		target := filepath.Join(parent, "store")
		if err := idempotency.RestoreBadger(target, bytes.NewReader(in)); !errors.Is(err, idempotency.ErrNotBackup) {
			t.Errorf("restore of %s: %v, want ErrNotBackup", name, err)
		}
		if left, _ := os.ReadDir(parent); len(left) != 0 {
			t.Errorf("restore of %s left %d entries behind", name, len(left))
		}
	}
	// An existing empty directory (one systemd's StateDirectory made) is
	// restored into.
	empty := t.TempDir()
	if err := idempotency.RestoreBadger(empty, bytes.NewReader(buf.Bytes())); err != nil {
		t.Errorf("restore into an empty directory: %v", err)
	}
}
