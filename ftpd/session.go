package ftpd

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"strings"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
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
)

// noTrigger lists directories whose files never trigger ingest: the results
// written back for the uploader, and reports.
var noTrigger = map[string]bool{"processed": true, "rejected": true, "reports": true}

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
	jail   *jailFs
	user   string
	remote string
	log    *slog.Logger
}

var (
	_ ftpserver.ClientDriver                      = (*session)(nil)
	_ ftpserver.ClientDriverExtentionFileTransfer = (*session)(nil)
	_ ftpserver.ClientDriverExtensionFileList     = (*session)(nil)
)

// GetHandle opens name for RETR (read) or STOR (write). ftpserverlib uses it
// instead of OpenFile for every transfer.
func (s *session) GetHandle(name string, flags int, offset int64) (ftpserver.FileTransfer, error) {
	if hidden(name) {
		return nil, clean("open", name, fs.ErrNotExist)
	}
	if flags&(os.O_WRONLY|os.O_RDWR) == 0 {
		return s.openRead(name)
	}
	if flags&os.O_APPEND != 0 || flags&os.O_TRUNC == 0 || offset != 0 {
		return nil, errNoResume
	}
	return s.openUpload(name)
}

func (s *session) openRead(name string) (ftpserver.FileTransfer, error) {
	f, err := s.jail.root.Open(rel(name))
	if err != nil {
		return nil, clean("open", name, err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, clean("open", name, errNotAFile)
	}
	return f, nil
}

// ReadDir lists a directory, leaving out uploads in progress. Entries are
// described with Lstat through the jail, so a symlink is listed as a link
// and never followed.
func (s *session) ReadDir(name string) ([]os.FileInfo, error) {
	if hidden(name) {
		return nil, clean("list", name, fs.ErrNotExist)
	}
	d, err := s.jail.root.Open(rel(name))
	if err != nil {
		return nil, clean("list", name, err)
	}
	entries, err := d.ReadDir(-1)
	_ = d.Close()
	if err != nil {
		return nil, clean("list", name, err)
	}
	infos := make([]os.FileInfo, 0, len(entries))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		fi, err := s.jail.root.Lstat(path.Join(rel(name), e.Name()))
		if err != nil {
			continue // removed meanwhile
		}
		infos = append(infos, fi)
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
	return s.jail.Mkdir(name, perm)
}

// MkdirAll creates a directory and its parents.
func (s *session) MkdirAll(name string, perm os.FileMode) error {
	if hidden(name) {
		return clean("mkdir", name, errNameNotAllowed)
	}
	return s.jail.MkdirAll(name, perm)
}

// Open opens name for reading.
func (s *session) Open(name string) (afero.File, error) {
	if hidden(name) {
		return nil, clean("open", name, fs.ErrNotExist)
	}
	return s.jail.Open(name)
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
	if rel(name) == "." {
		return clean("remove", name, fs.ErrPermission)
	}
	return s.jail.Remove(name)
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
	return s.jail.Stat(name)
}

// Name identifies the filesystem.
func (s *session) Name() string { return s.jail.Name() }

// Chmod is refused.
func (s *session) Chmod(name string, mode os.FileMode) error { return s.jail.Chmod(name, mode) }

// Chown is refused.
func (s *session) Chown(name string, uid, gid int) error { return s.jail.Chown(name, uid, gid) }

// Chtimes is refused.
func (s *session) Chtimes(name string, atime, mtime time.Time) error {
	return s.jail.Chtimes(name, atime, mtime)
}

// Rename is RNFR/RNTO. Renaming a regular file to a triggering name (see
// triggers) hands it to OnUpload before the reply; if that fails the rename
// is undone and the client gets an error.
func (s *session) Rename(from, to string) error {
	switch {
	case hidden(from):
		return clean("rename", from, fs.ErrNotExist)
	case hidden(to):
		return clean("rename", to, errNameNotAllowed)
	case rel(from) == "." || rel(to) == ".":
		return clean("rename", to, fs.ErrPermission)
	}
	if err := s.jail.Rename(from, to); err != nil {
		return err
	}
	if err := s.syncDirs(from, to); err != nil {
		s.log.Warn("rename: sync directory", slog.String(keyPath, to), slog.Any(keyError, err))
	}
	if !triggers(to) || s.srv.opts.OnUpload == nil {
		return nil
	}
	fi, err := s.jail.root.Stat(rel(to))
	if err != nil || !fi.Mode().IsRegular() {
		return nil // a directory named x.csv is just a directory
	}
	if !s.srv.enter() {
		s.undoRename(from, to)
		return errShuttingDown
	}
	defer s.srv.leave()
	if err := s.triggerRenamed(from, to); err != nil {
		s.undoRename(from, to)
		return err
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

// triggerRenamed reads the renamed file back for its size and SHA-256 and
// calls OnUpload.
func (s *session) triggerRenamed(from, to string) error {
	start := time.Now()
	log := s.log.With(slog.String(keyPath, path.Clean("/"+to)), slog.String(keyFrom, path.Clean("/"+from)),
		slog.String(keyVia, "RNTO"))
	size, sum, err := s.digest(to)
	if err != nil {
		s.srv.events.UploadFinished(resultFailed)
		log.Error("rename: read file", slog.Any(keyError, err))
		return clean("rename", to, err)
	}
	up := s.newUpload(to, size, sum, "RNTO")
	if err := s.srv.opts.OnUpload(s.srv.ctx, up); err != nil {
		s.srv.events.UploadFinished(resultFailed)
		log.Error("upload not recorded", slog.Any(keyError, err))
		return errRecord
	}
	s.srv.events.UploadFinished(resultTriggered)
	log.Info("upload triggered", slog.Int64(keySize, size), slog.String(keySHA256, sum),
		slog.Int64(keyDurationMS, time.Since(start).Milliseconds()))
	return nil
}

// digest fsyncs the file at name and returns its size and SHA-256.
func (s *session) digest(name string) (int64, string, error) {
	f, err := s.jail.root.Open(rel(name))
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return 0, "", err
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

func (s *session) undoRename(from, to string) {
	if err := s.jail.Rename(to, from); err != nil {
		s.log.Error("rename: undo failed; file left untriggered", slog.String(keyPath, path.Clean("/"+to)),
			slog.Any(keyError, err))
		return
	}
	_ = s.syncDirs(to, from)
}

func (s *session) newUpload(name string, size int64, sum, via string) Upload {
	return Upload{
		User:       s.user,
		UserRoot:   s.jail.dir,
		Path:       path.Clean("/" + name),
		RealPath:   s.jail.realPath(name),
		Size:       size,
		SHA256:     sum,
		RemoteAddr: s.remote,
		Via:        via,
		At:         s.srv.now(),
	}
}
