package pgfs

import (
	"context"
	"errors"
	"fmt"
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

// commit writes the held chunk, if changed; durable also makes every
// earlier asynchronous commit of this handle durable (a synchronous commit
// flushes the WAL up to itself).
func (f *File) commit(durable bool) error {
	if err := f.wait(); err != nil {
		return err
	}
	if f.dirty {
		return f.flush(durable)
	}
	if !durable || !f.async {
		return nil
	}
	ctx, cancel := f.fs.ctx()
	defer cancel()
	var epoch time.Time
	err := pgx.BeginFunc(ctx, f.fs.db.pool, func(tx pgx.Tx) (err error) {
		epoch, err = touch(ctx, tx, f.async, f.epoch,
			`UPDATE pgfs_node SET mtime = mtime WHERE id = $1 AND dir <> '' RETURNING pg_postmaster_start_time()`, f.id)
		return err
	})
	return f.settle(err, true, epoch)
}

// errLost is the error of a handle whose unsynced writes a database crash
// may have lost: what was committed is a consistent prefix, but this
// handle's view of the file is no longer true, so it stops.
var errLost = fmt.Errorf("the database restarted and may have lost writes not yet synced: %w", syscall.EIO)

// touch runs sql (an UPDATE of the handle's node returning the server's
// start time) and checks that the node is there and, if the handle has
// unsynced commits (async), that the server has not restarted since the
// first of them (epoch). It returns the server's start time.
func touch(ctx context.Context, tx pgx.Tx, async bool, epoch time.Time, sql string, args ...any) (time.Time, error) {
	var now time.Time
	err := tx.QueryRow(ctx, sql, args...).Scan(&now)
	if errors.Is(err, pgx.ErrNoRows) {
		return now, errStale
	}
	if err != nil {
		return now, err
	}
	if async && !now.Equal(epoch) {
		return now, errLost
	}
	return now, nil
}

// settle records the outcome of a commit: errLost breaks the handle.
func (f *File) settle(err error, durable bool, epoch time.Time) error {
	if errors.Is(err, errLost) {
		f.broken = errLost
	}
	if err != nil {
		return err
	}
	f.async, f.epoch = !durable, epoch
	return nil
}

// write commits chunk seq (data, the file reaching end) and the file's new
// size in one transaction; async and epoch are the handle's (see touch).
// It touches no field of f, so it can run beside the handle's owner.
func (f *File) write(seq int64, data []byte, end int64, durable, async bool, epoch time.Time) (time.Time, error) {
	ctx, cancel := f.fs.ctx()
	defer cancel()
	var now time.Time
	err := pgx.BeginFunc(ctx, f.fs.db.pool, func(tx pgx.Tx) error {
		if !durable {
			if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
				return err
			}
		}
		var err error
		now, err = touch(ctx, tx, async, epoch, `UPDATE pgfs_node SET size = greatest(size, $2), mtime = clock_timestamp()
			WHERE id = $1 AND dir <> '' RETURNING pg_postmaster_start_time()`, f.id, end)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO pgfs_chunk (node_id, seq, data) VALUES ($1, $2, $3)
			ON CONFLICT (node_id, seq) DO UPDATE SET data = excluded.data`, f.id, seq, data)
		return err
	})
	return now, err
}

// written is what a chunk's commit changes in the handle.
func (f *File) written(seq, end int64) {
	f.stored = max(f.stored, end)
	if f.rseq == seq {
		f.rseq = -1
	}
}

// flush commits the held chunk now.
func (f *File) flush(durable bool) error {
	if err := f.wait(); err != nil {
		return err
	}
	end := f.wseq*ChunkSize + int64(len(f.wbuf))
	epoch, err := f.write(f.wseq, f.wbuf, end, durable, f.async, f.epoch)
	if err := f.settle(err, durable, epoch); err != nil {
		return err
	}
	f.dirty = false
	f.written(f.wseq, end)
	return nil
}

// inflight is a chunk being committed in the background while the writer
// fills the next one, so that receiving an upload and storing it overlap.
type inflight struct {
	seq, end int64
	done     chan struct{}
	epoch    time.Time
	err      error
}

// flushBehind hands the held chunk to a background commit (asynchronous,
// like every chunk before a Sync) and gives wbuf the spare buffer. At most
// one commit is in flight: it first waits for the previous one.
func (f *File) flushBehind() error {
	if err := f.wait(); err != nil {
		return err
	}
	c := &inflight{seq: f.wseq, end: f.wseq*ChunkSize + int64(len(f.wbuf)), done: make(chan struct{})}
	data, async, epoch := f.wbuf, f.async, f.epoch
	go func() {
		defer close(c.done)
		c.epoch, c.err = f.write(c.seq, data, c.end, false, async, epoch)
	}()
	f.pending = c
	f.wbuf, f.spare = f.spare, data
	f.dirty = false
	return nil
}

// wait waits for the chunk in flight, if any, and records its outcome. A
// failed one breaks the handle: its bytes are no longer held.
func (f *File) wait() error {
	c := f.pending
	if c == nil {
		return nil
	}
	<-c.done
	f.pending = nil
	if c.err != nil {
		f.settle(c.err, false, c.epoch)
		f.broken = c.err
		return c.err
	}
	f.settle(nil, false, c.epoch)
	f.written(c.seq, c.end)
	return nil
}

// hold makes wbuf hold chunk seq, committing the chunk held before.
func (f *File) hold(seq int64) error {
	if f.wseq == seq {
		return nil
	}
	if f.dirty {
		if err := f.flushBehind(); err != nil {
			return err
		}
	}
	if f.wbuf == nil {
		f.wbuf = make([]byte, 0, ChunkSize)
	}
	f.wbuf = f.wbuf[:0]
	f.wseq = -1
	stored := f.stored
	if f.pending != nil {
		stored = max(stored, f.pending.end)
	}
	if seq*ChunkSize < stored {
		// A chunk the database already has (or is being given): rewrite
		// it in part.
		if err := f.wait(); err != nil {
			return err
		}
		_, data, err := f.fetch(seq)
		if err != nil {
			return err
		}
		f.wbuf = append(f.wbuf, data...)
	}
	f.wseq = seq
	return nil
}

// ahead is the chunk after the last one read, fetched in the background
// while the reader consumes that one.
type ahead struct {
	seq, size int64
	data      []byte
	err       error
	done      chan struct{}
}

// next returns chunk seq and the file's size: from the read-ahead if it
// holds seq, else fetched now. A read-only handle then starts fetching the
// chunk after it, if the file has one; at most one fetch is in flight.
func (f *File) next(seq int64) (int64, []byte, error) {
	var size int64
	var data []byte
	err := errors.New("not read ahead")
	if a := f.ahead; a != nil {
		f.ahead = nil
		<-a.done
		if a.seq == seq {
			size, data, err = a.size, a.data, a.err
		}
	}
	if err != nil {
		if size, data, err = f.fetch(seq); err != nil {
			return 0, nil, err
		}
	}
	if !f.writable() && (seq+1)*ChunkSize < size {
		a := &ahead{seq: seq + 1, done: make(chan struct{})}
		go func() {
			defer close(a.done)
			a.size, a.data, a.err = f.fetch(a.seq)
		}()
		f.ahead = a
	}
	return size, data, nil
}

// fetch reads chunk seq and the file's size in one statement, so the two
// agree. A chunk that was never written (a hole) is nil.
func (f *File) fetch(seq int64) (int64, []byte, error) {
	ctx, cancel := f.fs.ctx()
	defer cancel()
	var size int64
	var data []byte
	err := f.fs.db.pool.QueryRow(ctx, `SELECT n.size, c.data FROM pgfs_node n
		LEFT JOIN pgfs_chunk c ON c.node_id = n.id AND c.seq = $2 WHERE n.id = $1`, f.id, seq).Scan(&size, &data)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, errStale
	}
	return size, data, err
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
