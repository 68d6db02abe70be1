package ftpd

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"strings"
	"sync/atomic"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"

	"campaignd"
)

// tempPrefix starts the name of every upload in progress. Such names are
// invisible to clients and cannot be used by them.
const tempPrefix = ".campaignd-upload-"

var (
	errNameNotAllowed = ftpserver.ErrFileNameNotAllowed // 553
	errNoResume       = errors.New("resume (REST) and append (APPE) are not supported: upload the whole file with STOR")
	errShuttingDown   = errors.New("server is shutting down: try again later")
	errNotAFile       = errors.New("not a regular file")
	errRecord         = errors.New("upload could not be recorded: try again later")
	errTryLater       = errors.New("local error in processing: try again later")
)

// queueDir, at the root of each jail, holds every completed upload until
// ingest has moved it to processed/ or rejected/, each under a unique name
// (see session.enqueue). Its name starts with tempPrefix, so it is hidden
// from the partner like an upload in progress.
const queueDir = tempPrefix + "queue"

// noTrigger lists directories whose files never trigger ingest: the results
// written back for the uploader, and reports.
var noTrigger = map[string]bool{campaignd.ProcessedDir: true, campaignd.RejectedDir: true, campaignd.ReportsDir: true}

// triggers reports whether a file at the FTP path p starts an ingest: its
// name ends in ".csv" in any case and no directory on its path is processed,
// rejected or reports (at any depth, any case).
func triggers(p string) bool {
	p = path.Clean("/" + p)
	if !strings.HasSuffix(strings.ToLower(p), ".csv") {
		return false
	}
	dirs := strings.Split(path.Dir(p), "/")
	for _, d := range dirs {
		if noTrigger[strings.ToLower(d)] {
			return false
		}
	}
	return true
}

// readOnly reports whether the FTP path p is, or is inside, a directory at
// the top of the jail that campaignd writes for the partner to read:
// processed, rejected or reports (any case). The partner may list and
// download there, nothing else.
func readOnly(p string) bool {
	first, _, _ := strings.Cut(rel(p), "/")
	return noTrigger[strings.ToLower(first)]
}

// fixedDir reports whether the FTP path p is a folder at the top of the
// jail that campaignd reads from and the partner writes into (suppressions/,
// for opt-out lists): its files are the partner's, the folder itself may
// not be removed or renamed away.
func fixedDir(p string) bool { return strings.EqualFold(rel(p), "suppressions") }

// markerFor returns NAME.csv for a marker name NAME.csv.done or NAME.csv.ok
// (any case) whose NAME.csv would trigger, and false for anything else.
func markerFor(p string) (string, bool) {
	p = path.Clean("/" + p)
	lower := strings.ToLower(p)
	for _, suffix := range []string{".done", ".ok"} {
		if strings.HasSuffix(lower, suffix) {
			csv := p[:len(p)-len(suffix)]
			return csv, triggers(csv)
		}
	}
	return "", false
}

// hidden reports whether the FTP path p names or goes through an upload in
// progress.
func hidden(p string) bool {
	for _, part := range strings.Split(p, "/") {
		if strings.HasPrefix(part, tempPrefix) {
			return true
		}
	}
	return false
}

// session is the ClientDriver of one logged-in control connection: the
// user's jail plus the upload and trigger policy.
type session struct {
	srv    *Server
	jail   *userJail
	user   string
	remote string
	log    *slog.Logger
	cc     ftpserver.ClientContext
	ctrl   *trackedConn // the control connection, nil if not found
	// allo is the size announced by the last ALLO, for the next STOR; -1: none.
	allo atomic.Int64
}

var (
	_ ftpserver.ClientDriver                      = (*session)(nil)
	_ ftpserver.ClientDriverExtentionFileTransfer = (*session)(nil)
	_ ftpserver.ClientDriverExtensionFileList     = (*session)(nil)
	_ ftpserver.ClientDriverExtensionAllocate     = (*session)(nil)
)

var errBadAllo = errors.New("ALLO wants the size in bytes of the next file, at most the upload limit")

// AllocateSpace is ALLO <size>: the next STOR must carry exactly size
// bytes, or it fails (no trigger, file removed). ftpserverlib replies 200,
// or 550 with the error.
func (s *session) AllocateSpace(size int) error {
	if size < 0 || (s.srv.opts.MaxUploadBytes >= 0 && int64(size) > s.srv.opts.MaxUploadBytes) {
		return errBadAllo
	}
	s.allo.Store(int64(size))
	return nil
}

// completeOn reports whether uploads complete with mode (Options.CompleteOn).
func (s *session) completeOn(mode string) bool {
	return s.srv.opts.OnUpload != nil && s.srv.opts.CompleteOn == mode
}

// errReadOnly refuses writes under processed/, rejected/ and reports/.
func errReadOnly(op, name string) error { return clean(op, name, fs.ErrPermission) }

// GetHandle opens name for RETR (read) or STOR (write). ftpserverlib uses it
// instead of OpenFile for every transfer.
func (s *session) GetHandle(name string, flags int, offset int64) (ftpserver.FileTransfer, error) {
	if hidden(name) {
		return nil, clean("open", name, fs.ErrNotExist)
	}
	if flags&(os.O_WRONLY|os.O_RDWR) == 0 {
		return s.openRead(name)
	}
	allo := s.allo.Swap(-1) // an ALLO applies to the next STOR only
	if readOnly(name) {
		return nil, errReadOnly("stor", name)
	}
	if flags&os.O_APPEND != 0 || flags&os.O_TRUNC == 0 || offset != 0 {
		return nil, errNoResume
	}
	return s.openUpload(name, allo)
}

func (s *session) openRead(name string) (ftpserver.FileTransfer, error) {
	f, err := s.jail.fs.Open(name)
	if err != nil {
		return nil, clean("open", name, err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, clean("open", name, errNotAFile)
	}
	return f, nil
}

// ReadDir lists a directory, leaving out uploads in progress (see
// userJail.readDir: a symlink on disk is listed as a link, never followed).
func (s *session) ReadDir(name string) ([]os.FileInfo, error) {
	if hidden(name) {
		return nil, clean("list", name, fs.ErrNotExist)
	}
	entries, err := s.jail.readDir(name)
	if err != nil {
		return nil, clean("list", name, err)
	}
	infos := entries[:0]
	for _, fi := range entries {
		if !strings.HasPrefix(fi.Name(), tempPrefix) {
			infos = append(infos, fi)
		}
	}
	return infos, nil
}

// Create is not used by ftpserverlib; writes go through GetHandle.
func (s *session) Create(name string) (afero.File, error) {
	return nil, clean("create", name, fs.ErrPermission)
}

// Mkdir creates a directory (MKD).
func (s *session) Mkdir(name string, perm os.FileMode) error {
	if hidden(name) {
		return clean("mkdir", name, errNameNotAllowed)
	}
	if readOnly(name) {
		return errReadOnly("mkdir", name)
	}
	return clean("mkdir", name, s.jail.fs.Mkdir(name, dirPerm))
}

// MkdirAll creates a directory and its parents.
func (s *session) MkdirAll(name string, perm os.FileMode) error {
	if hidden(name) {
		return clean("mkdir", name, errNameNotAllowed)
	}
	if readOnly(name) {
		return errReadOnly("mkdir", name)
	}
	return clean("mkdir", name, s.jail.fs.MkdirAll(name, dirPerm))
}

// Open opens name for reading.
func (s *session) Open(name string) (afero.File, error) {
	if hidden(name) {
		return nil, clean("open", name, fs.ErrNotExist)
	}
	f, err := s.jail.fs.Open(name)
	if err != nil {
		return nil, clean("open", name, err)
	}
	return f, nil
}

// OpenFile opens name read-only; writing is only possible through GetHandle,
// which applies the upload rules.
func (s *session) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND) != 0 {
		return nil, clean("open", name, fs.ErrPermission)
	}
	return s.Open(name)
}

// Remove deletes a file or an empty directory (DELE, RMD).
func (s *session) Remove(name string) error {
	if hidden(name) {
		return clean("remove", name, fs.ErrNotExist)
	}
	if rel(name) == "." || readOnly(name) || fixedDir(name) {
		return clean("remove", name, fs.ErrPermission)
	}
	return clean("remove", name, s.jail.fs.Remove(name))
}

// RemoveAll is not reachable through FTP; it is refused.
func (s *session) RemoveAll(name string) error {
	return clean("remove", name, fs.ErrPermission)
}

// Stat describes name (RNFR, SIZE, MDTM, LIST of a file...).
func (s *session) Stat(name string) (os.FileInfo, error) {
	if hidden(name) {
		return nil, clean("stat", name, fs.ErrNotExist)
	}
	if (readOnly(name) || fixedDir(name)) && s.cc != nil && s.cc.GetLastCommand() == "RNFR" {
		// ftpserverlib's RNFR is a Stat: refuse it here, so the partner
		// learns at once that nothing under processed/ etc. can move.
		return nil, errReadOnly("rename", name)
	}
	fi, err := s.jail.fs.Stat(name)
	if err != nil {
		return nil, clean("stat", name, err)
	}
	return fi, nil
}

// Name identifies the filesystem.
func (s *session) Name() string { return s.jail.fs.Name() }

// Chmod is refused.
func (s *session) Chmod(name string, _ os.FileMode) error {
	return clean("chmod", name, fs.ErrPermission)
}

// Chown is refused.
func (s *session) Chown(name string, _, _ int) error { return clean("chown", name, fs.ErrPermission) }

// Chtimes is refused.
func (s *session) Chtimes(name string, _, _ time.Time) error {
	return clean("chtimes", name, fs.ErrPermission)
}

// Rename is RNFR/RNTO. It completes an upload (see Options.CompleteOn):
//
//   - stor and rename modes: a regular file renamed to a triggering name
//     (see triggers) goes straight into the queue (see enqueue) and is handed
//     to OnUpload as Path = to, Via RNTO; it never appears at to, so it
//     cannot replace, or be replaced by, another upload of that name;
//   - marker mode: a rename to NAME.csv.done or NAME.csv.ok completes
//     NAME.csv (see completeMarker).
//
// If that fails the rename is undone and the client gets an error.
func (s *session) Rename(from, to string) error {
	switch {
	case hidden(from):
		return clean("rename", from, fs.ErrNotExist)
	case hidden(to):
		return clean("rename", to, errNameNotAllowed)
	case rel(from) == "." || rel(to) == "." || fixedDir(from) || fixedDir(to):
		return clean("rename", to, fs.ErrPermission)
	case readOnly(from):
		return errReadOnly("rename", from)
	case readOnly(to):
		return errReadOnly("rename", to)
	}
	if (s.completeOn(CompleteOnSTOR) || s.completeOn(CompleteOnRename)) && triggers(to) {
		if fi, err := s.jail.lstat(from); err == nil && fi.Mode().IsRegular() {
			return s.renameTrigger(from, to)
		}
	}
	if err := s.jail.fs.Rename(from, to); err != nil {
		return clean("rename", to, err)
	}
	if err := s.syncDirs(from, to); err != nil {
		s.log.Warn("rename: sync directory", slog.String(keyPath, to), slog.Any(keyError, err))
	}
	if _, ok := markerFor(to); ok && s.completeOn(CompleteOnMarker) {
		if fi, err := s.jail.lstat(to); err == nil && fi.Mode().IsRegular() {
			if err := s.completeMarker(to); err != nil {
				s.undoRename(from, to)
				return err
			}
			s.removeMarker(to)
		}
	}
	return nil
}

func (s *session) syncDirs(from, to string) error {
	err := s.jail.syncDir(to)
	if path.Dir(rel(from)) != path.Dir(rel(to)) {
		err = errors.Join(err, s.jail.syncDir(from))
	}
	return err
}

// enqueue moves the jail file src (an FTP path) to a new unique name in the
// queue directory, durably, and returns that name as an FTP path.
func (s *session) enqueue(src string) (string, error) {
	q := "/" + queueDir + "/" + rand.Text()
	err := s.jail.fs.Rename(src, q)
	if errors.Is(err, fs.ErrNotExist) {
		// The queue is created on first use (a jail that only receives,
		// say reports, never shows it); then the rename is retried.
		if merr := s.jail.fs.Mkdir("/"+queueDir, dirPerm); merr != nil && !errors.Is(merr, fs.ErrExist) {
			return "", merr
		}
		if err := s.jail.syncDir(queueDir); err != nil {
			return "", err
		}
		err = s.jail.fs.Rename(src, q)
	}
	if err != nil {
		return "", err
	}
	if err := s.syncDirs(src, q); err != nil {
		s.unqueue(q, src)
		return "", err
	}
	return q, nil
}

// unqueue puts a queued file back at dst (an upload that could not be
// recorded), or removes it when dst is "".
func (s *session) unqueue(q, dst string) {
	var err error
	if dst == "" {
		err = s.jail.fs.Remove(q)
	} else {
		err = s.jail.fs.Rename(q, dst)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Error("upload queue: undo failed", slog.String(keyPath, q), slog.String("to", dst), slog.Any(keyError, err))
		return
	}
	_ = s.syncDirs(q, cmp.Or(dst, q))
}

// renameTrigger is a RNTO to a triggering name: from goes into the queue
// and is handed to OnUpload as the upload of to.
func (s *session) renameTrigger(from, to string) error {
	if !s.srv.enter() {
		return errShuttingDown
	}
	defer s.srv.leave()
	q, err := s.enqueue(from)
	if err != nil {
		s.srv.events.UploadFinished(resultFailed)
		if localFault(err) {
			s.localError()
		}
		return clean("rename", to, err)
	}
	if err := s.trigger(to, q, from, campaignd.ViaRename); err != nil {
		s.unqueue(q, from)
		return err
	}
	return nil
}

// localError makes the reply to the command being handled a 451 instead
// of a 550: it failed here (the disk, the store), and the same upload may
// succeed later (see trackedConn.localError).
func (s *session) localError() {
	if s != nil && s.ctrl != nil { // nil: an upload outside a session (tests)
		s.ctrl.localError.Store(true)
	}
}

// completeMarker completes the upload of NAME.csv for the marker
// NAME.csv.done or NAME.csv.ok: NAME.csv goes into the queue and is handed
// to OnUpload (Via MARKER). A marker without its NAME.csv is an error.
func (s *session) completeMarker(marker string) error {
	csv, _ := markerFor(marker)
	if !s.srv.enter() {
		return errShuttingDown
	}
	defer s.srv.leave()
	if fi, err := s.jail.lstat(csv); err != nil || !fi.Mode().IsRegular() {
		s.srv.events.UploadFinished(resultFailed)
		s.log.Warn("marker without its file", slog.String(keyPath, path.Clean("/"+marker)))
		return fmt.Errorf("marker %s: %w", path.Clean("/"+marker), clean("complete", csv, fs.ErrNotExist))
	}
	q, err := s.enqueue(csv)
	if err != nil {
		s.srv.events.UploadFinished(resultFailed)
		if localFault(err) {
			s.localError()
		}
		return clean("complete", csv, err)
	}
	if err := s.trigger(csv, q, marker, campaignd.ViaMarker); err != nil {
		s.unqueue(q, csv)
		return err
	}
	return nil
}

// removeMarker deletes a marker once it has done its job, so that the
// directory holds no stale marker for the next upload of the same name.
func (s *session) removeMarker(marker string) {
	if err := s.jail.fs.Remove(marker); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("remove marker", slog.String(keyPath, path.Clean("/"+marker)), slog.Any(keyError, err))
	}
	_ = s.jail.syncDir(marker)
}

// trigger reads the queued file q back for its size and SHA-256 and calls
// OnUpload for the upload of name; from is what the client sent (the old
// name, or the marker) for the log.
func (s *session) trigger(name, q, from, via string) error {
	start := time.Now()
	log := s.log.With(slog.String(keyPath, path.Clean("/"+name)), slog.String(keyFrom, path.Clean("/"+from)),
		slog.String(keyVia, via))
	size, sum, err := s.digest(q)
	if err != nil {
		s.srv.events.UploadFinished(resultFailed)
		log.Error("read queued file", slog.Any(keyError, err))
		if localFault(err) {
			s.localError()
		}
		return clean("rename", name, err)
	}
	if err := s.srv.opts.OnUpload(s.srv.ctx, s.newUpload(name, q, size, sum, via)); err != nil {
		s.srv.events.UploadFinished(resultFailed)
		log.Error("upload not recorded", slog.Any(keyError, err))
		s.localError()
		return errRecord
	}
	s.srv.events.UploadFinished(resultTriggered)
	log.Info("upload triggered", slog.Int64(keySize, size), slog.String(keySHA256, sum),
		slog.Int64(keyDurationMS, time.Since(start).Milliseconds()))
	return nil
}

// digest makes the file at name durable and returns its size and SHA-256.
// On disk that is an fsync; a shared Fs's file was committed durably when
// the upload that wrote it was closed.
func (s *session) digest(name string) (int64, string, error) {
	f, err := s.jail.fs.Open(name)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	if !s.jail.shared() {
		if err := f.Sync(); err != nil {
			return 0, "", err
		}
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

func (s *session) undoRename(from, to string) {
	if err := s.jail.fs.Rename(to, from); err != nil {
		s.log.Error("rename: undo failed; file left untriggered", slog.String(keyPath, path.Clean("/"+to)),
			slog.Any(keyError, err))
		return
	}
	_ = s.syncDirs(to, from)
}

func (s *session) newUpload(name, stored string, size int64, sum, via string) Upload {
	return Upload{
		User:       s.user,
		Path:       path.Clean("/" + name),
		Stored:     stored,
		Size:       size,
		SHA256:     sum,
		RemoteAddr: s.remote,
		Via:        via,
		At:         s.srv.now(),
	}
}
