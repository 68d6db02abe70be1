package ftpd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/spf13/afero"

	"campaignd"
)

// InboxOptions configure an Inbox.
type InboxOptions struct {
	// Root is DATA_DIR/ftp, as in Options: the jail of each user is
	// Root/<user>/ on disk, confined by os.Root.
	Root string
	// Jail, when set, is used instead of Root: the filesystem of user's
	// jail, its names FTP paths ("/processed/x.csv"). Any afero.Fs will do;
	// one that can hard-link (a Link(oldname, newname) method) moves files
	// with link+unlink, others with a rename after a check.
	Jail func(user string) (afero.Fs, error)
	// Location is the time zone of the suffix of a taken result name
	// (name_YYYYMMDD-HHMMSS.csv); default time.Local.
	Location *time.Location
}

// Inbox is the jails as ingest sees them (campaignd.Inbox): an upload is
// read where ftpd queued it (Upload.Stored) and placed in processed/ or
// rejected/ with its errors file. It is safe for concurrent use.
type Inbox struct {
	jail func(user string) (afero.Fs, error)
	loc  *time.Location

	mu    sync.Mutex
	disk  string             // Options.Root, absolute, when Jail is not set
	jails map[string]*jailFs // opened on first use
}

var _ campaignd.Inbox = (*Inbox)(nil)

// NewInbox returns an Inbox over the jails of o.
func NewInbox(o InboxOptions) *Inbox {
	in := &Inbox{jail: o.Jail, loc: o.Location, jails: make(map[string]*jailFs)}
	if in.loc == nil {
		in.loc = time.Local
	}
	if in.jail == nil {
		in.disk = o.Root
		if abs, err := filepath.Abs(o.Root); err == nil {
			in.disk = abs
		}
		in.jail = in.diskJail
	}
	return in
}

// diskJail opens the jail of user under Root, once; its errors are kept as
// they are (the server's, not a client's).
func (in *Inbox) diskJail(user string) (afero.Fs, error) {
	if !validUserName.MatchString(user) {
		return nil, fmt.Errorf("inbox: user %q: %w", user, fs.ErrNotExist)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if j := in.jails[user]; j != nil {
		return j, nil
	}
	j, err := openJail(filepath.Join(in.disk, user))
	if err != nil {
		return nil, err
	}
	j.raw = true
	in.jails[user] = j
	return j, nil
}

// Close releases the jails opened on disk.
func (in *Inbox) Close() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	for u, j := range in.jails {
		_ = j.Close()
		delete(in.jails, u)
	}
	return nil
}

// errGone marks an upload whose file is neither placed nor waiting.
var errGone = fmt.Errorf("the uploaded file is gone: %w", fs.ErrNotExist)

// waiting is where the bytes of u wait for ingest: ftpd's queued file, else
// the name the partner gave.
func waiting(u *campaignd.Upload) string {
	if u.Stored != "" {
		return path.Clean("/" + u.Stored)
	}
	return path.Clean("/" + u.Path)
}

// Open opens the file of u for reading (campaignd.Inbox).
func (in *Inbox) Open(u *campaignd.Upload) (io.ReadSeekCloser, error) {
	fsys, err := in.jail(u.User)
	if err != nil {
		return nil, err
	}
	src, err := locate(fsys, u)
	if err != nil {
		return nil, err
	}
	return fsys.Open(src)
}

// Gone reports whether the file of u is neither placed nor waiting.
func (in *Inbox) Gone(u *campaignd.Upload) bool {
	fsys, err := in.jail(u.User)
	if err != nil {
		return true
	}
	_, err = locate(fsys, u)
	return err != nil
}

// locate returns where the file of u is now: at the result path an earlier
// run recorded (and moved it to), else where it waits. A second name left
// where it waited by a crash between link and unlink is removed.
func locate(fsys afero.Fs, u *campaignd.Upload) (string, error) {
	w := waiting(u)
	if u.ResultPath != "" {
		p := path.Clean("/" + u.ResultPath)
		if fi, err := fsys.Stat(p); err == nil && fi.Mode().IsRegular() {
			if wi, err := fsys.Stat(w); err == nil && os.SameFile(fi, wi) {
				_ = fsys.Remove(w)
			}
			return p, nil
		}
	}
	if fi, err := fsys.Stat(w); err == nil && fi.Mode().IsRegular() {
		return w, nil
	}
	return "", errGone
}

// Place moves the file of u into dir with its errors file (campaignd.Inbox).
func (in *Inbox) Place(u *campaignd.Upload, dir string, errs io.Reader, record func(*campaignd.Upload) error) error {
	fsys, err := in.jail(u.User)
	if err != nil {
		return err
	}
	err = in.place(fsys, u, dir, errs, record)
	if err != nil && u.ResultPath != "" && !exists(fsys, "/"+u.ResultPath) {
		u.ResultPath = ""
	}
	return err
}

func (in *Inbox) place(fsys afero.Fs, u *campaignd.Upload, dir string, errs io.Reader, record func(*campaignd.Upload) error) error {
	src, err := locate(fsys, u)
	if err != nil {
		return err
	}
	dir = path.Clean("/" + dir)
	if err := mkdir(fsys, dir); err != nil {
		return err
	}
	var target string
	old := u.ResultPath
	if old != "" && path.Dir(path.Clean("/"+old)) == dir {
		// An earlier run chose this name: keep it if the file is there
		// already or the name is still free.
		if p := path.Clean("/" + old); p == src || !exists(fsys, p) {
			target = p
		}
	}
	if target == "" {
		at := u.FinishedAt
		if at.IsZero() {
			at = time.Now()
		}
		name, err := freeName(fsys, dir, resultName(u), at.In(in.loc).Format("20060102-150405"))
		if err != nil {
			return err
		}
		target = path.Join(dir, name)
		u.ResultPath = strings.TrimPrefix(target, "/")
		if err := record(u); err != nil {
			return err
		}
		if old != "" && old != u.ResultPath {
			// The decision changed since an earlier run: its errors file goes.
			_ = fsys.Remove(path.Clean("/"+old) + ".errors.csv")
		}
	}
	errPath := target + ".errors.csv"
	if errs != nil {
		if err := writeFile(fsys, errPath, errs); err != nil {
			return err
		}
	} else if err := fsys.Remove(errPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if src == target {
		return nil
	}
	return moveNoReplace(fsys, src, target)
}

// mkdir makes the directory dir, if need be. Something else of that name
// in the way is ENOTDIR (os.Root says EEXIST).
func mkdir(fsys afero.Fs, dir string) error {
	if err := fsys.MkdirAll(dir, dirPerm); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	fi, err := fsys.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
	}
	return nil
}

// resultName is the name a result takes: the partner's file name, safe to
// join to a directory.
func resultName(u *campaignd.Upload) string {
	name := path.Base(filepath.ToSlash(u.FileName))
	if name == "." || name == ".." || name == "/" || name == "" {
		name = path.Base(path.Clean("/" + u.Path))
	}
	if name == "/" {
		name = path.Base(waiting(u))
	}
	return name
}

// maxResultName is the longest name a result may have: its errors file's
// temporary name ("." + name + ".errors.csv" + ".tmp") must fit the 255
// bytes a file name may have.
const maxResultName = 255 - len(".") - len(".errors.csv") - len(".tmp")

// freeName returns name, or name with a timestamp suffix (and a counter if
// need be), such that neither it nor its errors file exists in dir. A name
// too long for the suffix and the errors file is cut before its extension
// (at a character boundary).
func freeName(fsys afero.Fs, dir, name, stamp string) (string, error) {
	ext := path.Ext(name)
	if len(ext) > 16 {
		ext = "" // not an extension, a long name with a dot
	}
	stem := strings.TrimSuffix(name, ext)
	for i := 0; i < 1000; i++ {
		suffix := ""
		switch {
		case i == 1:
			suffix = "_" + stamp
		case i > 1:
			suffix = "_" + stamp + "-" + strconv.Itoa(i)
		}
		cand := fitName(stem, suffix+ext)
		p := path.Join(dir, cand)
		if !exists(fsys, p) && !exists(fsys, p+".errors.csv") {
			return cand, nil
		}
	}
	return "", fmt.Errorf("no free name for %s in %s", name, dir)
}

// fitName joins stem and tail, cutting stem so the result is at most
// maxResultName bytes.
func fitName(stem, tail string) string {
	if n := maxResultName - len(tail); len(stem) > n {
		stem = stem[:max(n, 0)]
		// Drop a character the cut split.
		for i := len(stem) - 1; i >= 0 && i >= len(stem)-utf8.UTFMax; i-- {
			if utf8.RuneStart(stem[i]) {
				if !utf8.FullRuneInString(stem[i:]) {
					stem = stem[:i]
				}
				break
			}
		}
	}
	return stem + tail
}

// exists reports whether p names anything, a symlink included.
func exists(fsys afero.Fs, p string) bool {
	if l, ok := fsys.(interface {
		Lstat(name string) (os.FileInfo, error)
	}); ok {
		_, err := l.Lstat(p)
		return err == nil
	}
	_, err := fsys.Stat(p)
	return err == nil
}

// linker is a filesystem that can give a file a second name.
type linker interface {
	Link(oldname, newname string) error
}

// moveNoReplace moves src to dst, failing rather than overwriting dst: a
// hard link then an unlink (a crash in between leaves both names, which
// locate cleans up); a check then a rename where links are not supported.
func moveNoReplace(fsys afero.Fs, src, dst string) error {
	if l, ok := fsys.(linker); ok {
		err := l.Link(src, dst)
		switch {
		case err == nil:
			if err := fsys.Remove(src); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return syncDir(fsys, path.Dir(dst))
		case errors.Is(err, fs.ErrExist):
			return fmt.Errorf("move %s: %s exists", path.Base(src), dst)
		}
	}
	if exists(fsys, dst) {
		return fmt.Errorf("move %s: %s exists", path.Base(src), dst)
	}
	if err := fsys.Rename(src, dst); err != nil {
		return err
	}
	return syncDir(fsys, path.Dir(dst))
}

// writeFile writes the content of r to p through a temporary file renamed
// into place, so p is whole or absent.
func writeFile(fsys afero.Fs, p string, r io.Reader) error {
	tmp := path.Join(path.Dir(p), "."+path.Base(p)+".tmp")
	f, err := fsys.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, filePerm)
	if err != nil {
		return err
	}
	defer fsys.Remove(tmp)
	defer f.Close()
	if _, err := io.Copy(f, r); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return fsys.Rename(tmp, p)
}

// syncDir fsyncs the directory dir, so a rename in it is durable.
func syncDir(fsys afero.Fs, dir string) error {
	d, err := fsys.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
