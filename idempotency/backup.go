package idempotency

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"
)

// Backup writes every live entry of the store to w in Badger's own backup
// format (what badger.DB.Backup writes and badger.DB.Load and the `badger
// restore` tool read): the records with their expiry, so restored records
// expire when the originals would have. It runs beside the store's normal
// work and sees one consistent snapshot. It ends early with ctx's error
// when ctx ends. Expired records are not written.
func (s *BadgerStore) Backup(ctx context.Context, w io.Writer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.ops.Done()
	if err := s.guard("backup", func() error { _, err := s.db.Backup(ctxWriter{ctx, w}, 0); return err }); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("idempotency: backup of %s: %w", s.dir, context.Cause(ctx))
		}
		return fmt.Errorf("idempotency: backup of %s: %w", s.dir, err)
	}
	return nil
}

// ctxWriter fails its writes once ctx has ended, which ends a Badger
// backup stream (it takes no context of its own).
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// ErrNotEmpty is returned by RestoreBadger when the directory already
// holds a database: a restore never merges into records that exist.
var ErrNotEmpty = errors.New("idempotency: the directory already holds a database")

// ErrNotBackup is wrapped by RestoreBadger's error when its input is not a
// backup written by Backup (or is cut short).
var ErrNotBackup = errors.New("idempotency: not a dws_notify store backup")

// RestoreBadger creates the store in dir from a backup written by Backup,
// read from r. dir must not exist or must be an empty directory; one that
// holds a database is refused with ErrNotEmpty (a restore never merges
// into records that exist). The restore is built in a new directory next
// to dir and renamed into place only when it is complete and durably
// closed, so a failed restore (a cut-off or foreign file: ErrNotBackup)
// leaves dir as it was.
func RestoreBadger(dir string, r io.Reader) error {
	if dir == "" {
		return fmt.Errorf("%w: a directory is required", ErrInvalidArgument)
	}
	dir = filepath.Clean(dir)
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(dir, badger.ManifestFilename)); err == nil {
			return fmt.Errorf("idempotency: restore into %s: %w", dir, ErrNotEmpty)
		}
		return fmt.Errorf("idempotency: restore into %s: the directory is not empty", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("idempotency: restore into %s: %w", dir, err)
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return fmt.Errorf("idempotency: restore into %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".restoring-")
	if err != nil {
		return fmt.Errorf("idempotency: restore into %s: %w", dir, err)
	}
	keep := false
	defer func() {
		if !keep {
			os.RemoveAll(tmp)
		}
	}()
	s, err := OpenBadger(BadgerOptions{Dir: tmp, GCInterval: -1, PageOutInterval: -1, Sync: SyncEachCommit})
	if err != nil {
		return err
	}
	fr := &frameReader{r: r}
	loadErr := s.db.Load(fr, 256)
	if loadErr == nil && fr.inFrame() {
		loadErr = io.ErrUnexpectedEOF
	}
	if loadErr == nil {
		loadErr = s.db.Sync()
	}
	closeErr := s.Close()
	switch {
	case fr.err != nil:
		return fmt.Errorf("idempotency: restore into %s: %w: %w", dir, ErrNotBackup, fr.err)
	case errors.Is(loadErr, io.ErrUnexpectedEOF):
		return fmt.Errorf("idempotency: restore into %s: %w: it ends in the middle of a record batch (cut short?)", dir, ErrNotBackup)
	case loadErr != nil:
		return fmt.Errorf("idempotency: restore into %s: %w: %w", dir, ErrNotBackup, loadErr)
	case closeErr != nil:
		return fmt.Errorf("idempotency: restore into %s: closing: %w", dir, closeErr)
	}
	// os.Rename does not replace a directory, not even an empty one.
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("idempotency: restore into %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("idempotency: restore into %s: %w", dir, err)
	}
	keep = true
	if d, err := os.Open(parent); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// maxBackupFrame bounds one length-prefixed record batch of a backup.
// Badger's backup stream cuts batches at about 100 MiB; a larger length
// is a file that is not a backup, whose length Badger's Load would try to
// allocate (and panic on, or exhaust memory with).
const maxBackupFrame = 256 << 20

// frameReader passes a backup stream through and checks its framing:
// an 8-byte little-endian length, then that many bytes, again and again.
type frameReader struct {
	r      io.Reader
	hdr    [8]byte
	nhdr   int    // header bytes seen of the current frame
	remain uint64 // body bytes still to come of the current frame
	err    error
}

func (f *frameReader) inFrame() bool { return f.nhdr > 0 || f.remain > 0 }

func (f *frameReader) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	n, err := f.r.Read(p)
	for b := p[:n]; len(b) > 0; {
		if f.remain > 0 {
			k := min(uint64(len(b)), f.remain)
			f.remain -= k
			b = b[k:]
			continue
		}
		k := copy(f.hdr[f.nhdr:], b)
		f.nhdr += k
		b = b[k:]
		if f.nhdr == len(f.hdr) {
			f.nhdr = 0
			f.remain = binary.LittleEndian.Uint64(f.hdr[:])
			if f.remain > maxBackupFrame {
				f.err = fmt.Errorf("a record batch of %d bytes (at most %d)", f.remain, maxBackupFrame)
				return 0, f.err
			}
		}
	}
	return n, err
}
