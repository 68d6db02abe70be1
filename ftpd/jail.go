package ftpd

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/afero"
)

// Permissions of everything created in a jail.
const (
	filePerm = 0o640
	dirPerm  = 0o750
)

// jailFs is an afero.Fs confined to one directory by os.Root: every name is
// resolved by the kernel relative to the root's directory handle, and any
// name or symlink that would leave it fails. Names are FTP paths
// ("/in/x.csv"); they are made relative before reaching os.Root.
//
// It is shared by all sessions of one user (os.Root is safe for concurrent
// use) and lives as long as the Server, because ftpserverlib may close an
// upload after the session has ended.
type jailFs struct {
	root *os.Root
	// raw keeps the errors as they are, for the server's own use (the
	// Inbox), instead of turning them into what an FTP client may see.
	raw bool
}

var _ afero.Fs = (*jailFs)(nil)

func openJail(dir string) (*jailFs, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &jailFs{root: r}, nil
}

// Close releases the root's directory handle.
func (j *jailFs) Close() error { return j.root.Close() }

// rel turns an FTP path into a name for os.Root: cleaned, relative, "." for
// the jail itself. os.Root still rejects anything escaping, so this is about
// form, not safety.
func rel(name string) string {
	p := path.Clean("/" + filepath.ToSlash(name))
	if p == "/" {
		return "."
	}
	return p[1:]
}

// Create creates or truncates name for writing.
func (j *jailFs) Create(name string) (afero.File, error) {
	return j.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, filePerm)
}

// Mkdir creates a directory; the requested mode is replaced by 0750.
func (j *jailFs) Mkdir(name string, _ os.FileMode) error {
	return j.clean("mkdir", name, j.root.Mkdir(rel(name), dirPerm))
}

// MkdirAll creates a directory and its parents with mode 0750.
func (j *jailFs) MkdirAll(name string, _ os.FileMode) error {
	return j.clean("mkdir", name, j.root.MkdirAll(rel(name), dirPerm))
}

// Open opens name for reading.
func (j *jailFs) Open(name string) (afero.File, error) {
	f, err := j.root.Open(rel(name))
	if err != nil {
		return nil, j.clean("open", name, err)
	}
	return f, nil
}

// OpenFile opens name; files it creates get mode 0640 whatever perm says.
func (j *jailFs) OpenFile(name string, flag int, _ os.FileMode) (afero.File, error) {
	f, err := j.root.OpenFile(rel(name), flag, filePerm)
	if err != nil {
		return nil, j.clean("open", name, err)
	}
	return f, nil
}

// Remove removes a file or an empty directory.
func (j *jailFs) Remove(name string) error {
	return j.clean("remove", name, j.root.Remove(rel(name)))
}

// RemoveAll removes name and everything under it.
func (j *jailFs) RemoveAll(name string) error {
	if rel(name) == "." {
		return j.clean("remove", name, fs.ErrPermission)
	}
	return j.clean("remove", name, j.root.RemoveAll(rel(name)))
}

// Rename renames oldname to newname, both inside the jail.
func (j *jailFs) Rename(oldname, newname string) error {
	return j.clean("rename", newname, j.root.Rename(rel(oldname), rel(newname)))
}

// Stat describes name, following symlinks that stay inside the jail.
func (j *jailFs) Stat(name string) (os.FileInfo, error) {
	fi, err := j.root.Stat(rel(name))
	if err != nil {
		return nil, j.clean("stat", name, err)
	}
	return fi, nil
}

// Lstat describes name without following a final symlink.
func (j *jailFs) Lstat(name string) (os.FileInfo, error) {
	fi, err := j.root.Lstat(rel(name))
	if err != nil {
		return nil, j.clean("stat", name, err)
	}
	return fi, nil
}

// Name identifies the filesystem.
func (j *jailFs) Name() string { return "ftpd.jail" }

// Chmod is refused: modes in the jail are the server's business.
func (j *jailFs) Chmod(name string, _ os.FileMode) error {
	return j.clean("chmod", name, fs.ErrPermission)
}

// Chown is refused.
func (j *jailFs) Chown(name string, _, _ int) error {
	return j.clean("chown", name, fs.ErrPermission)
}

// Chtimes is refused (MFMT is disabled).
func (j *jailFs) Chtimes(name string, _, _ time.Time) error {
	return j.clean("chtimes", name, fs.ErrPermission)
}

// syncDir fsyncs the directory holding name, so a rename in it is durable.
func (j *jailFs) syncDir(name string) error {
	d, err := j.root.Open(rel(path.Dir("/" + rel(name))))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// clean is clean, unless the jail is raw.
func (j *jailFs) clean(op, name string, err error) error {
	if j.raw || err == nil {
		return err
	}
	return clean(op, name, err)
}

// Link makes newname a second name of the file oldname; it fails if
// newname exists.
func (j *jailFs) Link(oldname, newname string) error {
	return j.clean("link", newname, j.root.Link(rel(oldname), rel(newname)))
}

// clean is the one place where filesystem errors are turned into what an
// FTP client may see: the FTP path and a plain reason, never a path on the
// server's disk. A failure of this server (localFault: the disk, the
// database) reads as errTryLater; "escapes the root" and other unexpected
// errors as "permission denied". errors.Is still works on the result.
func clean(op, name string, err error) error {
	if err == nil {
		return nil
	}
	reason := fs.ErrPermission
	if localFault(err) {
		reason = errTryLater
	}
	for _, known := range []error{fs.ErrNotExist, fs.ErrExist, fs.ErrPermission, errNameNotAllowed,
		syscall.ENOTDIR, syscall.EISDIR, syscall.ENOTEMPTY, syscall.ENOSPC, syscall.EDQUOT} {
		if errors.Is(err, known) {
			reason = known
			break
		}
	}
	return &fs.PathError{Op: op, Path: path.Clean("/" + filepath.ToSlash(name)), Err: reason}
}
