package pgfs

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/afero"
)

// Create creates or truncates name for reading and writing (mode 0666).
func (f *Fs) Create(name string) (afero.File, error) {
	return f.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// Open opens name for reading.
func (f *Fs) Open(name string) (afero.File, error) { return f.OpenFile(name, os.O_RDONLY, 0) }

// OpenFile opens name with os flags. A file it creates gets perm's
// permission bits (no umask).
func (f *Fs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	if err := checkName(name); err != nil {
		return nil, pathErr("open", name, err)
	}
	p := f.real(name)
	acc := flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
	write := acc != os.O_RDONLY
	var n node
	swept := false
	err := f.tx(func(ctx context.Context, tx pgx.Tx) error {
		lock := ""
		if write || flag&os.O_CREATE != 0 {
			lock = "FOR UPDATE"
		}
		var err error
		n, err = lookup(ctx, tx, p, lock)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if flag&os.O_CREATE == 0 {
				return err
			}
			if err := parentDir(ctx, tx, p); err != nil {
				return err
			}
			d, b := split(p)
			n = node{name: b, mode: perm & fs.ModePerm}
			return tx.QueryRow(ctx, `INSERT INTO pgfs_node (dir, name, is_dir, mode) VALUES ($1, $2, false, $3)
				RETURNING id, mtime, ctime`, d, b, int64(n.mode)).Scan(&n.id, &n.mtime, &n.ctime)
		case err != nil:
			return err
		case flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL:
			return fs.ErrExist
		case n.isDir && (write || flag&os.O_CREATE != 0):
			return syscall.EISDIR
		case n.isDir || !write || flag&os.O_TRUNC == 0:
			return nil
		}
		// O_TRUNC: the name gets a new, empty file (see the package doc).
		if err := unlink(ctx, tx, n); err != nil {
			return err
		}
		swept = true
		d, b := split(p)
		n.size = 0
		return tx.QueryRow(ctx, `INSERT INTO pgfs_node (dir, name, is_dir, mode) VALUES ($1, $2, false, $3)
			RETURNING id, mtime, ctime`, d, b, int64(n.mode)).Scan(&n.id, &n.mtime, &n.ctime)
	})
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	if swept {
		f.db.sweep()
	}
	return newFile(f, name, p, n, flag), nil
}

// Mkdir creates the directory name.
func (f *Fs) Mkdir(name string, perm os.FileMode) error {
	if err := checkName(name); err != nil {
		return pathErr("mkdir", name, err)
	}
	p := f.real(name)
	if p == "/" {
		return pathErr("mkdir", name, fs.ErrExist)
	}
	return pathErr("mkdir", name, f.tx(func(ctx context.Context, tx pgx.Tx) error {
		if _, err := lookup(ctx, tx, p, ""); err == nil {
			return fs.ErrExist
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := parentDir(ctx, tx, p); err != nil {
			return err
		}
		d, b := split(p)
		_, err := tx.Exec(ctx, `INSERT INTO pgfs_node (dir, name, is_dir, mode) VALUES ($1, $2, true, $3)`,
			d, b, int64(fs.ModeDir|perm&fs.ModePerm))
		return err
	}))
}

// MkdirAll creates the directory name and any missing parents; it is not an
// error if it exists as a directory.
func (f *Fs) MkdirAll(name string, perm os.FileMode) error {
	if err := checkName(name); err != nil {
		return pathErr("mkdir", name, err)
	}
	p := f.real(name)
	return pathErr("mkdir", name, f.tx(func(ctx context.Context, tx pgx.Tx) error {
		for i := 1; i <= len(p); i++ {
			if i < len(p) && p[i] != '/' {
				continue
			}
			q := p[:i]
			if q == "/" {
				continue
			}
			d, b := split(q)
			if _, err := tx.Exec(ctx, `INSERT INTO pgfs_node (dir, name, is_dir, mode) VALUES ($1, $2, true, $3)
				ON CONFLICT (dir, name) DO NOTHING`, d, b, int64(fs.ModeDir|perm&fs.ModePerm)); err != nil {
				return err
			}
			n, err := lookup(ctx, tx, q, "FOR SHARE")
			if err != nil {
				return err
			}
			if !n.isDir {
				return syscall.ENOTDIR
			}
		}
		return nil
	}))
}

// Remove removes a file or an empty directory.
func (f *Fs) Remove(name string) error {
	p := f.real(name)
	if p == f.root {
		return pathErr("remove", name, fs.ErrPermission)
	}
	err := pathErr("remove", name, f.tx(func(ctx context.Context, tx pgx.Tx) error {
		n, err := lookup(ctx, tx, p, "FOR UPDATE")
		if err != nil {
			return err
		}
		if n.isDir {
			var any bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pgfs_node WHERE dir = $1)`, p).Scan(&any); err != nil {
				return err
			}
			if any {
				return syscall.ENOTEMPTY
			}
		}
		return unlink(ctx, tx, n)
	}))
	f.db.sweep()
	return err
}

// subtree matches the nodes under the directory $1 (not $1 itself). With
// COLLATE "C", "/" < "0" and nothing sorts between p+"/" and p+"0" but the
// paths under p, so the range uses the (dir, name) index.
const subtree = `(dir = $1 OR (dir >= $1 || '/' AND dir < $1 || '0'))`

// RemoveAll removes name and everything under it; a missing name is not an
// error. The Fs's root cannot be removed.
func (f *Fs) RemoveAll(name string) error {
	p := f.real(name)
	if p == f.root {
		return pathErr("remove", name, fs.ErrPermission)
	}
	err := pathErr("remove", name, f.tx(func(ctx context.Context, tx pgx.Tx) error {
		n, err := lookup(ctx, tx, p, "FOR UPDATE")
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		if n.isDir {
			// Again until nothing is left: a create that held a lock on a
			// directory in the subtree commits while the first DELETE waits,
			// and its row is only visible to the next statement.
			for {
				files, err := tx.Exec(ctx, `UPDATE pgfs_node SET `+tombstone+` WHERE `+subtree+` AND NOT is_dir`, p)
				if err != nil {
					return err
				}
				dirs, err := tx.Exec(ctx, `DELETE FROM pgfs_node WHERE `+subtree, p)
				if err != nil {
					return err
				}
				if files.RowsAffected()+dirs.RowsAffected() == 0 {
					break
				}
			}
		}
		return unlink(ctx, tx, n)
	}))
	f.db.sweep()
	return err
}

// tombstone is the SET clause that unlinks a file: out of every directory
// (the empty dir is no path), under a unique name, stamped with the time.
const tombstone = `dir = '', name = id::text, ctime = clock_timestamp()`

// unlink takes n out of the tree. A directory goes at once; a file becomes
// a tombstone that handles still open on it keep reading (and writers fail
// on), until sweep deletes it after the grace period.
func unlink(ctx context.Context, tx pgx.Tx, n node) error {
	sql := `UPDATE pgfs_node SET ` + tombstone + ` WHERE id = $1`
	if n.isDir {
		sql = `DELETE FROM pgfs_node WHERE id = $1`
	}
	_, err := tx.Exec(ctx, sql, n.id)
	return err
}

// sweep deletes, with their chunks, some files unlinked longer than the
// grace period ago. It is called after each unlink and at Open, best
// effort: what it leaves, the next call takes.
func (db *DB) sweep() {
	ctx, cancel := context.WithTimeout(context.Background(), db.timeout)
	defer cancel()
	_, _ = db.pool.Exec(ctx, `DELETE FROM pgfs_node WHERE id IN (
		SELECT id FROM pgfs_node WHERE dir = '' AND ctime < clock_timestamp() - make_interval(secs => $1) LIMIT 16)`,
		db.grace.Seconds())
}

// Rename moves oldname to newname in one transaction. It replaces a file at
// newname; a directory at newname is fs.ErrExist, as with os.Rename.
func (f *Fs) Rename(oldname, newname string) error {
	if err := checkName(newname); err != nil {
		return pathErr("rename", newname, err)
	}
	from, to := f.real(oldname), f.real(newname)
	if from == f.root || to == f.root {
		return pathErr("rename", newname, fs.ErrPermission)
	}
	err := pathErr("rename", newname, f.tx(func(ctx context.Context, tx pgx.Tx) error {
		src, err := lookup(ctx, tx, from, "FOR UPDATE")
		if err != nil {
			return &fs.PathError{Op: "rename", Path: clean(oldname), Err: err}
		}
		if from == to {
			return nil
		}
		if src.isDir && strings.HasPrefix(to, from+"/") {
			return syscall.EINVAL
		}
		if err := parentDir(ctx, tx, to); err != nil {
			return err
		}
		dst, err := lookup(ctx, tx, to, "FOR UPDATE")
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return err
		case dst.isDir:
			// Go's os.Rename never replaces a directory (so that it acts
			// the same on every platform); nor does this.
			return fs.ErrExist
		case src.isDir:
			return syscall.ENOTDIR
		default:
			if err := unlink(ctx, tx, dst); err != nil {
				return err
			}
		}
		d, b := split(to)
		if _, err := tx.Exec(ctx, `UPDATE pgfs_node SET dir = $2, name = $3, ctime = clock_timestamp() WHERE id = $1`, src.id, d, b); err != nil {
			return err
		}
		if src.isDir {
			// Again until nothing moves, for the same reason as RemoveAll.
			for {
				tag, err := tx.Exec(ctx, `UPDATE pgfs_node SET dir = $2 || substr(dir, length($1) + 1) WHERE `+subtree,
					from, to)
				if err != nil {
					return err
				}
				if tag.RowsAffected() == 0 {
					break
				}
			}
		}
		return nil
	}))
	f.db.sweep()
	return err
}

// Stat describes name.
func (f *Fs) Stat(name string) (os.FileInfo, error) {
	ctx, cancel := f.ctx()
	defer cancel()
	n, err := lookup(ctx, f.db.pool, f.real(name), "")
	if err != nil {
		return nil, pathErr("stat", name, err)
	}
	if f.real(name) == f.root {
		n.name = path.Base(clean(name))
	}
	return n.info(), nil
}

// LstatIfPossible is Stat: there are no symbolic links (afero.Lstater).
func (f *Fs) LstatIfPossible(name string) (os.FileInfo, bool, error) {
	fi, err := f.Stat(name)
	return fi, false, err
}

// Chmod sets the permission bits of name.
func (f *Fs) Chmod(name string, mode os.FileMode) error {
	return f.update("chmod", name, `UPDATE pgfs_node SET mode = (mode & ~511) | $3, ctime = clock_timestamp()
		WHERE dir = $1 AND name = $2`,
		int64(mode&fs.ModePerm))
}

// Chtimes sets the modification time of name (access times are not kept).
func (f *Fs) Chtimes(name string, _ time.Time, mtime time.Time) error {
	return f.update("chtimes", name, `UPDATE pgfs_node SET mtime = $3, ctime = clock_timestamp()
		WHERE dir = $1 AND name = $2`, mtime)
}

// Chown checks that name exists; owners are not kept.
func (f *Fs) Chown(name string, _, _ int) error {
	_, err := f.Stat(name)
	if err != nil {
		return pathErr("chown", name, err)
	}
	return nil
}

func (f *Fs) update(op, name, sql string, arg any) error {
	p := f.real(name)
	if p == "/" {
		return pathErr(op, name, fs.ErrPermission)
	}
	ctx, cancel := f.ctx()
	defer cancel()
	d, b := split(p)
	tag, err := f.db.pool.Exec(ctx, sql, d, b, arg)
	if err == nil && tag.RowsAffected() == 0 {
		err = fs.ErrNotExist
	}
	return pathErr(op, name, err)
}
