package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	"github.com/caddyserver/caddy/v2"
	"github.com/spf13/cobra"

	"github.com/dwsnotify/dws_notify/adminapi"
	"github.com/dwsnotify/dws_notify/idempotency"
)

// backupOptions are the flags of `dws-notify backup`.
type backupOptions struct {
	adminFlags
	out     string
	storage string
}

func newBackupCommand() *cobra.Command {
	o := &backupOptions{}
	cmd := &cobra.Command{
		Use:   "backup --out FILE [--storage DIR] [--address ADMIN | --config FILE [--adapter NAME]]",
		Short: "Back up the running gateway's Badger store to a file",
		Long: `Asks the running gateway's admin API (GET /dws_notify/backup) for a backup
of its Badger store and writes it to FILE. The gateway keeps serving while
the backup is made; it is one consistent snapshot of the records, each
with its expiry. The file is Badger's own backup format (what 'dws-notify
restore' and Badger's 'badger restore' read). FILE is written next to its
final name and renamed into place only once the gateway said the backup
is complete, so a cut-off backup never passes for a whole one; an
existing FILE is replaced. This command writes FILE, not the gateway:
its directory must exist and be writable by the user running it (checked
before the gateway is asked).

--storage picks the store when the config uses more than one Badger
directory. A Redis store is backed up with Redis's own persistence files.

The admin API is at ` + caddy.DefaultAdminListen + ` unless --address says otherwise, or
--config names the config file to read the admin address from.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd.OutOrStdout()) },
	}
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "", "file to write the backup to")
	f.StringVar(&o.storage, "storage", "", "the store's directory, when the config has more than one")
	o.adminFlags.add(cmd)
	return cmd
}

func (o *backupOptions) run(w io.Writer) error {
	if err := required("out", o.out); err != nil {
		return err
	}
	admin, err := o.target()
	if err != nil {
		return err
	}
	addr := admin.addr
	path := adminapi.Base + "backup"
	if o.storage != "" {
		path += "?" + url.Values{"storage": {o.storage}}.Encode()
	}
	// The file is made before the gateway is asked: a backup streamed for
	// a file that cannot be written is work wasted, and the gateway logs
	// it as failed.
	tmp, err := os.CreateTemp(filepath.Dir(o.out), "."+filepath.Base(o.out)+".partial-")
	if err != nil {
		return backupFileError(o.out, err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	res, err := adminOpen(admin, path, 0)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	n, err := io.Copy(tmp, res.Body)
	if err != nil {
		return fmt.Errorf("receiving the backup from %s: %w (nothing written to %s)", addr, err, o.out)
	}
	if status := res.Trailer.Get(adminapi.BackupStatusTrailer); status != "ok" {
		if status == "" {
			status = "the gateway did not say the backup was complete"
		}
		return fmt.Errorf("the backup from %s is incomplete: %s (nothing written to %s)", addr, status, o.out)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("writing the backup file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing the backup file: %w", err)
	}
	if err := os.Rename(tmp.Name(), o.out); err != nil {
		return fmt.Errorf("writing the backup file: %w", err)
	}
	done = true
	fmt.Fprintf(w, "backup of the running gateway's store: %s (%d bytes)\n", o.out, n)
	return nil
}

// backupFileError is the error of a backup whose file could not be made
// next to out: this command writes it (the admin API only streams the
// backup), so out's directory must exist and be writable by the user
// running it. It names out and its directory, not the temporary file.
func backupFileError(out string, err error) error {
	dir := filepath.Dir(out)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // its path is the temporary file's
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot write the backup to %s: its directory %s does not exist (%w); create it, writable by the user running this command", out, dir, err)
	}
	return fmt.Errorf("cannot write the backup to %s in the directory %s: %w (it must be a directory the user running this command can write)", out, dir, err)
}

// restoreOptions are the flags of `dws-notify restore`.
type restoreOptions struct {
	in      string
	storage string
}

func newRestoreCommand() *cobra.Command {
	o := &restoreOptions{}
	cmd := &cobra.Command{
		Use:   "restore --in FILE --storage DIR",
		Short: "Create a Badger store from a backup (with the gateway stopped)",
		Long: `Creates the Badger store in DIR from a backup made by 'dws-notify backup'
(or Badger's own backup format). DIR must not exist or must be empty: a
restore never merges into records that exist. The store is built next to
DIR and renamed into place once it is complete and on disk, so a failed
restore (a cut-off or foreign file) leaves DIR as it was.

Run it with the gateway that uses DIR stopped (a running gateway holds the
directory), as the user the gateway runs as (or give the files that user
afterwards), then start the gateway. Records keep their expiry: those
whose retention ended since the backup are gone.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd.OutOrStdout()) },
	}
	f := cmd.Flags()
	f.StringVar(&o.in, "in", "", "the backup file")
	f.StringVar(&o.storage, "storage", "", "the store's directory (the gateway's storage)")
	return cmd
}

func (o *restoreOptions) run(w io.Writer) error {
	if err := required("in", o.in); err != nil {
		return err
	}
	if err := required("storage", o.storage); err != nil {
		return err
	}
	f, err := os.Open(o.in)
	if err != nil {
		return fmt.Errorf("opening the backup: %w", err)
	}
	defer f.Close()
	dir, err := filepath.Abs(o.storage)
	if err != nil {
		return err
	}
	if err := idempotency.RestoreBadger(dir, f); err != nil {
		switch {
		case errors.Is(err, idempotency.ErrNotEmpty):
			return fmt.Errorf("%s already holds a store: restore into a new or empty directory (move the old one aside first, with the gateway stopped): %w", dir, err)
		case errors.Is(err, idempotency.ErrNotBackup):
			return fmt.Errorf("%s is not a complete dws_notify store backup; nothing was restored: %w", o.in, err)
		}
		return err
	}
	fmt.Fprintf(w, "restored %s into %s; start the gateway on it\n", o.in, dir)
	return nil
}
