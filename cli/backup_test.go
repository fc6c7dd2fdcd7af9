package cli

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// This command writes the backup's file (the admin API only streams the
// backup), so FILE's directory must exist and be writable by the user
// running it. That is checked before the gateway is asked (a backup made
// for a file that cannot be written is wasted, and the gateway logs it
// as failed), and the error names the file, its directory and the cause.
// Nothing listens at --address: the directory's error must come first.
func TestBackupOutDirectory(t *testing.T) {
	addr := closedPort(t)
	dir := t.TempDir()

	missing := filepath.Join(dir, "no-such-dir", "b.backup")
	_, err := runCLI(t, "backup", "--out", missing, "--address", addr)
	want := "cannot write the backup to " + missing + ": its directory " + filepath.Dir(missing) +
		" does not exist (no such file or directory); create it, writable by the user running this command"
	if err == nil || err.Error() != want || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--out in a missing directory: err = %v, want %q", err, want)
	}

	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	under := filepath.Join(file, "b.backup")
	_, err = runCLI(t, "backup", "--out", under, "--address", addr)
	want = "cannot write the backup to " + under + " in the directory " + file + ": not a directory (it must be a directory the user running this command can write)"
	if err == nil || err.Error() != want || !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("--out under a file: err = %v, want %q", err, want)
	}

	// A writable directory gets past the check to the admin API, and a
	// failed backup leaves nothing behind (no partial file either).
	out := filepath.Join(dir, "b.backup")
	if _, err := runCLI(t, "backup", "--out", out, "--address", addr); err == nil || errors.Is(err, os.ErrNotExist) {
		t.Errorf("--out in a writable directory, no gateway: err = %v, want the admin API's error", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "a-file" {
		t.Errorf("the failed backups left files in %s: %v", dir, entries)
	}
}
