package ftpd

import (
	"os"
	"path"

	"github.com/spf13/afero"
)

// userJail is one user's files as the sessions see them: the os.Root jail
// under Options.Root (the default, one node), or the afero.Fs that
// Options.Jail gives (shared storage such as pgfs, for several nodes).
// Names are FTP paths ("/in/x.csv"); errors are the filesystem's own, made
// fit for a client by the session (clean).
type userJail struct {
	fs afero.Fs
	// disk is the os.Root jail when fs is it: only there are directories
	// fsynced after a rename and write-back started during an upload.
	disk *jailFs
}

func diskJail(j *jailFs) *userJail { return &userJail{fs: &jailFs{root: j.root, raw: true}, disk: j} }

// shared reports whether the jail is not on this node's disk.
func (u *userJail) shared() bool { return u.disk == nil }

// lstat describes name without following a final symlink, where the Fs
// has symlinks.
func (u *userJail) lstat(name string) (os.FileInfo, error) {
	switch f := u.fs.(type) {
	case interface {
		Lstat(string) (os.FileInfo, error)
	}:
		return f.Lstat(name)
	case afero.Lstater:
		fi, _, err := f.LstatIfPossible(name)
		return fi, err
	}
	return u.fs.Stat(name)
}

// syncDir makes a rename in the directory holding name durable: an fsync of
// the directory on disk; nothing on a shared Fs, whose Rename is durable
// when it returns (pgfs commits it).
func (u *userJail) syncDir(name string) error {
	if u.disk == nil {
		return nil
	}
	return u.disk.syncDir(name)
}

// readDir lists the directory name: on disk each entry is described with
// Lstat through the jail, so a symlink is listed as a link and never
// followed; a shared Fs describes them all in one go.
func (u *userJail) readDir(name string) ([]os.FileInfo, error) {
	d, err := u.fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	if u.disk == nil {
		return d.Readdir(-1)
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	infos := make([]os.FileInfo, 0, len(names))
	for _, n := range names {
		fi, err := u.lstat(path.Join("/"+rel(name), n))
		if err != nil {
			continue // removed meanwhile
		}
		infos = append(infos, fi)
	}
	return infos, nil
}

// close releases the disk jail's directory handle.
func (u *userJail) close() error {
	if u.disk == nil {
		return nil
	}
	return u.disk.Close()
}
