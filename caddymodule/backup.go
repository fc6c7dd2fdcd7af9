package caddymodule

import (
	"context"
	"io"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/dwsnotify/dws_notify/adminapi"
)

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
		} else if ps.kind == "redis" {
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
	w.Header().Set("Trailer", adminapi.BackupStatusTrailer)
	w.WriteHeader(http.StatusOK)
	status := "ok"
	if err := st.(backuper).Backup(ctx, w); err != nil {
		status = "failed: " + err.Error()
		storeLog.Error("backup through the admin API failed", zap.String("storage", chosen.name), zap.Error(err))
	}
	w.Header().Set(adminapi.BackupStatusTrailer, status)
	return nil
}
