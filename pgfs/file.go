package pgfs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/afero"
)

// File is an open file or directory of an Fs. Its methods are safe for
// concurrent use (they take turns).
//
// A writer keeps one chunk in memory (wbuf, the chunk wseq) and commits it
// when a write moves to another chunk (in the background, while it fills
// the next: two chunks in memory), on Sync and on Close; a reader keeps the
// last chunk it fetched (rbuf) and, read-only, fetches the next one in the
// background (ahead).
type File struct {
	fs    *Fs
	name  string // as given to OpenFile
	p     string // absolute path in the database, for directories
	id    int64
	isDir bool
	flag  int

	mu     sync.Mutex
	closed bool
	off    int64

	// size is the file's size as this handle knows it: the database's at
	// open or at the last chunk fetched, grown by this handle's writes.
	size int64
	// stored is how far the database holds bytes of this file, as far as
	// this handle knows: below it a partly rewritten chunk must be read
	// first, at or beyond it a chunk starts as zeros.
	stored int64

	wseq  int64 // chunk held in wbuf, -1 for none
	wbuf  []byte
	dirty bool
	// pending is the previous chunk, being committed in the background
	// from spare (see flushBehind).
	pending *inflight
	spare   []byte
	async   bool // chunks committed without a synchronous commit since the last one
	// epoch is the server's start time at the first of those commits: if
	// it changes before a synchronous commit, the server crashed (or
	// failed over) and may have lost them, and the handle fails.
	epoch  time.Time
	broken error // once set, every operation returns it

	rseq  int64 // chunk held in rbuf, -1 for none
	rbuf  []byte
	rsize int64 // the file's size when rbuf was fetched
	ahead *ahead

	dirents []fs.FileInfo // a directory's listing, read on the first Readdir
	dirpos  int
}

var _ afero.File = (*File)(nil)

func newFile(f *Fs, name, p string, n node, flag int) *File {
	return &File{fs: f, name: name, p: p, id: n.id, isDir: n.isDir, flag: flag,
		size: n.size, stored: n.size, wseq: -1, rseq: -1}
}

func (f *File) writable() bool { return f.flag&(os.O_WRONLY|os.O_RDWR) != 0 }

func (f *File) err(op string, err error) error { return pathErr(op, f.name, err) }

// check is the error of an operation on a closed handle, or of a kind that
// does not apply to a directory.
func (f *File) check(op string, dirOK bool) error {
	switch {
	case f.closed:
		return f.err(op, fs.ErrClosed)
	case f.broken != nil:
		return f.err(op, f.broken)
	case f.isDir && !dirOK:
		return f.err(op, syscall.EISDIR)
	}
	return nil
}

// Name is the name the file was opened with.
func (f *File) Name() string { return f.name }

// Close commits everything written (durably) and releases the handle.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return f.err("close", fs.ErrClosed)
	}
	err := f.broken
	if err == nil {
		err = f.commit(true)
	}
	if werr := f.wait(); err == nil {
		err = werr // a Close after a failure still waits for the commit in flight
	}
	f.closed = true
	f.wbuf, f.spare, f.rbuf, f.dirents, f.ahead = nil, nil, nil, nil, nil
	return f.err("close", err)
}

// Sync commits everything written so far durably.
func (f *File) Sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("sync", true); err != nil {
		return err
	}
	return f.err("sync", f.commit(true))
}

// Write writes at the offset, or at the end with O_APPEND.
func (f *File) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.flag&os.O_APPEND != 0 {
		f.off = f.size
	}
	n, err := f.writeAt("write", b, f.off)
	f.off += int64(n)
	return n, err
}

// WriteString writes s.
func (f *File) WriteString(s string) (int, error) { return f.Write([]byte(s)) }

// WriteAt writes at off, leaving the offset alone.
func (f *File) WriteAt(b []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.flag&os.O_APPEND != 0 {
		return 0, f.err("writeat", errors.New("invalid use of WriteAt on file opened with O_APPEND"))
	}
	return f.writeAt("writeat", b, off)
}

func (f *File) writeAt(op string, b []byte, off int64) (int, error) {
	if err := f.check(op, false); err != nil {
		return 0, err
	}
	if !f.writable() {
		return 0, f.err(op, syscall.EBADF)
	}
	if off < 0 {
		return 0, f.err(op, syscall.EINVAL)
	}
	n := 0
	for len(b) > 0 {
		seq, in := off/ChunkSize, int(off%ChunkSize)
		if err := f.hold(seq); err != nil {
			return n, f.err(op, err)
		}
		if l := len(f.wbuf); in > l {
			f.wbuf = f.wbuf[:in]
			clear(f.wbuf[l:])
		}
		k := min(len(b), ChunkSize-in)
		if in+k > len(f.wbuf) {
			f.wbuf = f.wbuf[:in+k]
		}
		copy(f.wbuf[in:], b[:k])
		f.dirty = true
		b, off, n = b[k:], off+int64(k), n+k
		f.size = max(f.size, off)
	}
	return n, nil
}

// Read reads from the offset.
func (f *File) Read(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.readAt("read", b, f.off)
	f.off += int64(n)
	if n > 0 && err == io.EOF {
		err = nil
	}
	return n, err
}

// ReadAt reads len(b) bytes at off, or fewer and io.EOF at the end.
func (f *File) ReadAt(b []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if off < 0 {
		return 0, f.err("readat", syscall.EINVAL)
	}
	return f.readAt("readat", b, off)
}

func (f *File) readAt(op string, b []byte, off int64) (int, error) {
	if err := f.check(op, false); err != nil {
		return 0, err
	}
	if f.flag&os.O_WRONLY != 0 {
		return 0, f.err(op, syscall.EBADF)
	}
	// This handle's own writes are read from the database like others'.
	if err := f.commit(false); err != nil {
		return 0, f.err(op, err)
	}
	n := 0
	for n < len(b) {
		seq, in := off/ChunkSize, int(off%ChunkSize)
		if f.rseq != seq || off >= f.rsize {
			size, data, err := f.next(seq)
			if err != nil {
				return n, f.err(op, err)
			}
			f.rbuf = data
			f.rseq, f.rsize = seq, size
			f.size = max(f.size, size)
		}
		if off >= f.rsize {
			return n, io.EOF
		}
		// The chunk's bytes up to the file's size; what it lacks is a hole.
		avail := int(min(ChunkSize, f.rsize-seq*ChunkSize)) - in
		k := min(len(b)-n, avail)
		c := 0
		if in < len(f.rbuf) {
			c = copy(b[n:n+k], f.rbuf[in:])
		}
		clear(b[n+c : n+k])
		n, off = n+k, off+int64(k)
	}
	return n, nil
}

// Seek sets the offset; io.SeekEnd is relative to the file's committed size
// (this handle's writes included).
func (f *File) Seek(offset int64, whence int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("seek", true); err != nil {
		return 0, err
	}
	var base int64
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		base = f.off
	case io.SeekEnd:
		if err := f.commit(false); err != nil {
			return 0, f.err("seek", err)
		}
		n, err := f.stat()
		if err != nil {
			return 0, f.err("seek", err)
		}
		base = n.size
	default:
		return 0, f.err("seek", syscall.EINVAL)
	}
	if base+offset < 0 {
		return 0, f.err("seek", syscall.EINVAL)
	}
	f.off = base + offset
	return f.off, nil
}

// stat reads the handle's node again.
func (f *File) stat() (node, error) {
	if f.id == 0 {
		return rootNode, nil
	}
	ctx, cancel := f.fs.ctx()
	defer cancel()
	n := node{name: path.Base(clean(f.name))}
	var mode int64
	n.id = f.id
	err := f.fs.db.pool.QueryRow(ctx, `SELECT is_dir, mode, size, mtime, ctime FROM pgfs_node WHERE id = $1`, f.id).
		Scan(&n.isDir, &mode, &n.size, &n.mtime, &n.ctime)
	if errors.Is(err, pgx.ErrNoRows) {
		return n, errStale
	}
	n.mode = fs.FileMode(mode)
	f.size = max(f.size, n.size)
	return n, err
}

// Stat describes the file, with what this handle wrote committed.
func (f *File) Stat() (os.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("stat", true); err != nil {
		return nil, err
	}
	if err := f.commit(false); err != nil {
		return nil, f.err("stat", err)
	}
	n, err := f.stat()
	if err != nil {
		return nil, f.err("stat", err)
	}
	return n.info(), nil
}

// Truncate sets the file's size: bytes beyond it are dropped, a file grown
// reads zeros.
func (f *File) Truncate(size int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("truncate", false); err != nil {
		return err
	}
	if !f.writable() {
		return f.err("truncate", syscall.EBADF)
	}
	if size < 0 {
		return f.err("truncate", syscall.EINVAL)
	}
	if err := f.commit(true); err != nil {
		return f.err("truncate", err)
	}
	f.wseq, f.rseq = -1, -1
	last := (size+ChunkSize-1)/ChunkSize - 1 // the last chunk that keeps bytes
	err := f.fs.tx(func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE pgfs_node SET size = $2, mtime = clock_timestamp() WHERE id = $1 AND dir <> ''`,
			f.id, size)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errStale
		}
		if _, err := tx.Exec(ctx, `DELETE FROM pgfs_chunk WHERE node_id = $1 AND seq > $2`, f.id, last); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE pgfs_chunk SET data = substring(data FROM 1 FOR $3::integer)
			WHERE node_id = $1 AND seq = $2 AND length(data) > $3::integer`, f.id, last, size-last*ChunkSize)
		return err
	})
	if err != nil {
		return f.err("truncate", err)
	}
	f.size, f.stored, f.async = size, size, false
	return nil
}

// Readdir lists the directory sorted by name: count > 0 entries at a time
// (io.EOF at the end), or all that are left.
func (f *File) Readdir(count int) ([]os.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, f.err("readdir", fs.ErrClosed)
	}
	if !f.isDir {
		return nil, f.err("readdir", syscall.ENOTDIR)
	}
	if f.dirents == nil {
		if err := f.list(); err != nil {
			return nil, f.err("readdir", err)
		}
	}
	rest := f.dirents[f.dirpos:]
	if count > 0 {
		if len(rest) == 0 {
			return nil, io.EOF
		}
		rest = rest[:min(count, len(rest))]
	}
	f.dirpos += len(rest)
	return rest, nil
}

func (f *File) list() error {
	ctx, cancel := f.fs.ctx()
	defer cancel()
	rows, err := f.fs.db.pool.Query(ctx, `SELECT id, name, mode, size, mtime, ctime FROM pgfs_node WHERE dir = $1
		ORDER BY name`, f.p)
	if err != nil {
		return err
	}
	f.dirents = []fs.FileInfo{}
	for rows.Next() {
		var i fileInfo
		var mode int64
		if err := rows.Scan(&i.sys.ID, &i.name, &mode, &i.size, &i.mtime, &i.sys.Changed); err != nil {
			return err
		}
		i.mode = fs.FileMode(mode)
		f.dirents = append(f.dirents, &i)
	}
	return rows.Err()
}

// Readdirnames is Readdir's names.
func (f *File) Readdirnames(n int) ([]string, error) {
	infos, err := f.Readdir(n)
	names := make([]string, len(infos))
	for i, fi := range infos {
		names[i] = fi.Name()
	}
	return names, err
}
