package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/idempotency"
)

// backupStatusTrailer is the HTTP trailer of GET /dws_notify/backup: "ok"
// once the whole backup was sent, otherwise the error that cut it short.
// A backup is a sequence of record batches with no end marker, so a cut
// between two batches would look like a smaller complete backup; the
// trailer tells them apart.
const backupStatusTrailer = "Dws-Backup-Status"

// backuper is a store that can write a backup of itself (the Badger store).
type backuper interface {
	Backup(ctx context.Context, w io.Writer) error
}

// serveBackup answers GET /dws_notify/backup[?storage=DIR]: a backup of a
// Badger store of the running config, in Badger's backup format, streamed
// while it is made (the gateway keeps serving). storage names the store
// when the config uses more than one Badger directory. A Redis store has
// no backup here: Redis's own persistence files are its backup.
func (a *adminAPI) serveBackup(w http.ResponseWriter, r *http.Request) error {
	want := r.URL.Query().Get("storage")
	var names []string
	var chosen *sharedStore
	for _, ps := range pooledStores() {
		st, err := ps.Current()
		if err == nil {
			if _, ok := st.(backuper); !ok {
				continue
			}
		} else if strings.HasPrefix(ps.name, "redis ") {
			continue
		}
		names = append(names, ps.name)
		if want == "" || want == ps.name {
			chosen = ps.sharedStore
		}
	}
	switch {
	case len(names) == 0:
		return apiError(http.StatusNotFound, "the running config has no Badger store to back up (a Redis store is backed up with Redis's own persistence files)")
	case want == "" && len(names) > 1:
		return apiError(http.StatusBadRequest, "the running config has %d Badger stores: name one with ?storage= (%s)", len(names), strings.Join(names, ", "))
	case chosen == nil:
		return apiError(http.StatusNotFound, "no Badger store at %s in the running config (it has %s)", want, strings.Join(names, ", "))
	}
	st, err := chosen.Current()
	if err != nil {
		return apiError(http.StatusServiceUnavailable, "the store at %s cannot be read now: %v", chosen.name, err)
	}
	// A store being closed ends the backup instead of holding up its
	// Close (a reload that drops the directory, or shutdown).
	ctx, cancel := chosen.Context(r.Context())
	defer cancel()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="dws_notify.backup"`)
	w.Header().Set("Trailer", backupStatusTrailer)
	w.WriteHeader(http.StatusOK)
	status := "ok"
	if err := st.(backuper).Backup(ctx, w); err != nil {
		status = "failed: " + err.Error()
		storeLog.Error("backup through the admin API failed", zap.String("storage", chosen.name), zap.Error(err))
	}
	w.Header().Set(backupStatusTrailer, status)
	return nil
}

// backupOptions are the flags of `dws-notify backup`.
type backupOptions struct {
	out     string
	storage string
	address string
	config  string
	adapter string
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
existing FILE is replaced.

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
	f.StringVar(&o.address, "address", "", "address of the admin API (default "+caddy.DefaultAdminListen+")")
	f.StringVarP(&o.config, "config", "c", "", "config file to read the admin address from (if --address is not used)")
	f.StringVarP(&o.adapter, "adapter", "a", "", "name of the config adapter for --config")
	return cmd
}

func (o *backupOptions) run(w io.Writer) error {
	if err := required("out", o.out); err != nil {
		return err
	}
	addr, err := caddycmd.DetermineAdminAPIAddress(o.address, nil, o.config, o.adapter)
	if err != nil {
		return fmt.Errorf("finding the admin API address: %w", err)
	}
	path := adminBase + "backup"
	if o.storage != "" {
		path += "?" + url.Values{"storage": {o.storage}}.Encode()
	}
	res, err := adminOpen(addr, path, 0)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	tmp, err := os.CreateTemp(filepath.Dir(o.out), "."+filepath.Base(o.out)+".partial-")
	if err != nil {
		return fmt.Errorf("creating the backup file: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err := io.Copy(tmp, res.Body)
	if err != nil {
		return fmt.Errorf("receiving the backup from %s: %w (nothing written to %s)", addr, err, o.out)
	}
	if status := res.Trailer.Get(backupStatusTrailer); status != "ok" {
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
