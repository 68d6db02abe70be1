// Package pgfs is an afero.Fs kept in PostgreSQL, so that every campaignd
// node serves the same FTP jails: any node can take an upload, any node lists
// the same files, and an upload taken by a node that then dies is on the
// database for another to ingest.
//
// Files are streamed in chunks of ChunkSize bytes, one row each; a handle
// holds at most two chunks for writing (one filling, one being committed)
// and two for reading (one read, the next being fetched), plus the driver's
// buffers, whatever the file's size.
//
// # Semantics
//
// Like a local disk (os and afero.OsFs), with these rules where a shared
// database has to choose:
//
//   - A created file is visible under its name at once (empty). Written bytes
//     reach the database a chunk at a time as chunks fill; Sync and Close
//     commit everything written so far durably (a synchronous commit), so
//     after a successful Close a crash of the node or of the database loses
//     nothing. A crash mid-write leaves the file visibly partial: a prefix
//     of what was written, with a size that matches its bytes, never torn.
//     Chunks before a Sync are committed with synchronous_commit off (one
//     fsync per Sync or Close, not per chunk); a database crash may lose the
//     last of those, which only shortens the partial prefix, and the handle
//     then fails (syscall.EIO) rather than write on after a gap.
//   - Opening with O_TRUNC (Create) gives the name a new file; so does a
//     Rename over it. The old file is unlinked, as on Unix: a reader still
//     open on it reads the old bytes to the end (for Options.Grace, after
//     which they are deleted and its next read fails with fs.ErrNotExist);
//     a writer still open on it fails its next write or Close with an error
//     that Is fs.ErrNotExist, so its bytes never mix with the new file's nor
//     vanish unnoticed. So two writers of one name never produce a torn
//     file: with O_TRUNC the last to open owns the name and the other fails;
//     with write-to-temp-then-Rename (what ftpd does) the last Rename wins.
//     Remove and RemoveAll unlink the same way.
//   - A reader of a file being written in place sees a consistent prefix:
//     each chunk is read in one statement together with the file's size at
//     that moment, and sizes only grow as chunks are committed.
//   - Rename is one transaction: atomic, durable when it returns, replaces a
//     file at the target, moves a directory with everything under it. A
//     directory at the target is fs.ErrExist, as with Go's os.Rename.
//   - Writers that do not truncate (O_APPEND, REST offsets) write in place,
//     like on a disk; two of them on one file at once are not coordinated.
//
// Errors are *fs.PathError whose Err is fs.ErrNotExist, fs.ErrExist,
// fs.ErrPermission, fs.ErrClosed or a syscall.Errno (ENOTDIR, EISDIR,
// ENOTEMPTY, EINVAL, EBADF, EIO), so errors.Is works as with os; the path is
// the name inside the Fs's root, never the database's. A database failure
// is wrapped ("pgfs: ...", with a Temporary method that returns true) and Is
// none of those.
//
// "Durably" means as durable as the server makes a commit (fsync and
// synchronous_commit on, as PostgreSQL ships).
//
// # Serving FTP jails
//
// Open once at start (it creates the schema), then db.Fs("/<jail>") per
// user. ftpserverlib closes an upload before it sends the 226, and Close
// commits durably, so a 226 means every node can read the file; a
// committed Rename is durable too, so ftpd's directory fsyncs have no
// counterpart here. A node that dies mid-upload leaves its temporary file:
// its ModTime moves with every chunk written, so a sweep of temporary files
// by ModTime age does not take uploads in progress on live nodes. Files
// reach the upload queue by Rename, which keeps ModTime: a sweep of the
// queue should go by Sys().(*pgfs.Sys).Changed, which a rename moves.
package pgfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/afero"
)

// ChunkSize is the number of bytes of a file in one row of pgfs_chunk. It is
// part of the stored format (a chunk's seq is its offset / ChunkSize), so
// every node must agree on it: it is a constant, not an option.
const ChunkSize = 256 << 10

// Options tune a DB. The zero value is usable.
type Options struct {
	// Timeout bounds each database round of one operation (a lookup, a
	// chunk written or read); 0 means one minute.
	Timeout time.Duration
	// Grace is how long a removed or replaced file's bytes stay for the
	// handles still reading it; 0 means ten minutes.
	Grace time.Duration
}

// DB is the file store on one pool. It is safe for concurrent use.
type DB struct {
	pool    *pgxpool.Pool
	timeout time.Duration
	grace   time.Duration
}

// Open creates or upgrades the schema (under an advisory lock, so nodes
// starting together do not race) and returns the store.
func Open(ctx context.Context, pool *pgxpool.Pool, opts Options) (*DB, error) {
	if err := migrate(ctx, pool); err != nil {
		return nil, fmt.Errorf("pgfs: migrate: %w", err)
	}
	db := newDB(pool, opts)
	db.sweep()
	return db, nil
}

func newDB(pool *pgxpool.Pool, opts Options) *DB {
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	if opts.Grace <= 0 {
		opts.Grace = 10 * time.Minute
	}
	return &DB{pool: pool, timeout: opts.Timeout, grace: opts.Grace}
}

// Pool is the pool the store works on.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// New returns the Fs confined to root on a pool whose schema Open has
// already created (by this node or another), with default options.
func New(pool *pgxpool.Pool, root string) *Fs { return newDB(pool, Options{}).Fs(root) }

// Fs returns the filesystem confined to root ("/" sees everything): every
// name is cleaned as an absolute path under root, so ".." cannot leave it.
// root itself need not exist yet (MkdirAll("/") creates it).
func (db *DB) Fs(root string) *Fs {
	return &Fs{db: db, root: path.Clean("/" + filepath.ToSlash(root))}
}

// Fs is an afero.Fs on the database, confined to one root.
type Fs struct {
	db   *DB
	root string
}

var (
	_ afero.Fs      = (*Fs)(nil)
	_ afero.Lstater = (*Fs)(nil)
)

// Name identifies the filesystem.
func (f *Fs) Name() string { return "pgfs" }

// clean is name as an absolute path inside the Fs ("/" for its root).
func clean(name string) string { return path.Clean("/" + filepath.ToSlash(name)) }

// real is where name lives in the database.
func (f *Fs) real(name string) string { return path.Join(f.root, clean(name)) }

func (f *Fs) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), f.db.timeout)
}

// node is one row of pgfs_node; id 0 is the implicit "/" of the database.
type node struct {
	id    int64
	name  string
	isDir bool
	mode  fs.FileMode
	size  int64
	mtime time.Time
	ctime time.Time
}

// info is a node as an fs.FileInfo.
func (n node) info() fs.FileInfo {
	return &fileInfo{name: n.name, size: n.size, mode: n.mode, mtime: n.mtime, sys: Sys{ID: n.id, Changed: n.ctime}}
}

var rootNode = node{id: 0, name: "/", isDir: true, mode: fs.ModeDir | 0o755}

// split is the (dir, name) key of an absolute path other than "/".
func split(p string) (string, string) { return path.Dir(p), path.Base(p) }

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// lookup finds the node at absolute path p; lock is "", "FOR SHARE" or
// "FOR UPDATE". A missing node is fs.ErrNotExist.
func lookup(ctx context.Context, q querier, p, lock string) (node, error) {
	if p == "/" {
		return rootNode, nil
	}
	d, b := split(p)
	n := node{name: b}
	var mode int64
	err := q.QueryRow(ctx, `SELECT id, is_dir, mode, size, mtime, ctime FROM pgfs_node WHERE dir = $1 AND name = $2 `+lock,
		d, b).Scan(&n.id, &n.isDir, &mode, &n.size, &n.mtime, &n.ctime)
	if errors.Is(err, pgx.ErrNoRows) {
		return n, fs.ErrNotExist
	}
	n.mode = fs.FileMode(mode)
	return n, err
}

// parentDir checks, and locks against removal until the transaction ends,
// the directory that is to hold p.
func parentDir(ctx context.Context, q querier, p string) error {
	n, err := lookup(ctx, q, path.Dir(p), "FOR SHARE")
	if err != nil {
		return err
	}
	if !n.isDir {
		return syscall.ENOTDIR
	}
	return nil
}

// beginFunc runs fn in a transaction of pool, again (a few times) when
// the attempt failed before anything reached the server: a connection the
// server dropped while idle in the pool.
func beginFunc(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	for try := 0; ; try++ {
		err := pgx.BeginFunc(ctx, pool, fn)
		if err == nil || try >= 3 || !pgconn.SafeToRetry(err) {
			return err
		}
	}
}

// tx runs fn in a transaction, again when it loses a race that a fresh try
// resolves (a unique violation from a concurrent create, a deadlock between
// two renames, a serialization failure).
func (f *Fs) tx(fn func(ctx context.Context, tx pgx.Tx) error) error {
	ctx, cancel := f.ctx()
	defer cancel()
	for try := 0; ; try++ {
		err := pgx.BeginFunc(ctx, f.db.pool, func(tx pgx.Tx) error { return fn(ctx, tx) })
		if err == nil || try >= 20 || !retryable(err) {
			return err
		}
	}
}

func retryable(err error) bool {
	if pgconn.SafeToRetry(err) {
		// Nothing reached the server: a pooled connection the server
		// dropped (it restarted). A fresh one tells what happened.
		return true
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "23505", "40001", "40P01": // unique_violation, serialization_failure, deadlock_detected
		return true
	}
	return false
}

// errStale is what a handle gets when its file was removed or replaced.
var errStale = fmt.Errorf("file removed or replaced while open: %w", fs.ErrNotExist)

// known are the errors passed to callers as they are; anything else (a
// database error) is wrapped.
var known = []error{fs.ErrNotExist, fs.ErrExist, fs.ErrPermission, fs.ErrInvalid, fs.ErrClosed,
	syscall.ENOTDIR, syscall.EISDIR, syscall.ENOTEMPTY, syscall.EINVAL, syscall.EBADF, syscall.EIO}

// pathErr makes err an *fs.PathError on the Fs-relative name.
func pathErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return err
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code {
		case "23503": // foreign_key_violation: the chunk's file is gone
			err = errStale
		case "22021", "54000": // bad byte in a name; a name too long
			err = syscall.EINVAL
		}
	}
	for _, k := range known {
		if errors.Is(err, k) {
			return &fs.PathError{Op: op, Path: clean(name), Err: err}
		}
	}
	return &fs.PathError{Op: op, Path: clean(name), Err: unavailable{err}}
}

// unavailable is a database failure: Temporary, as net.Error says it, so a
// caller (ftpd) can tell "try again later" from a bad name or path.
type unavailable struct{ err error }

func (e unavailable) Error() string   { return "pgfs: " + e.err.Error() }
func (e unavailable) Unwrap() error   { return e.err }
func (e unavailable) Temporary() bool { return true }

// checkName refuses names PostgreSQL's text cannot hold.
func checkName(name string) error {
	if strings.IndexByte(name, 0) >= 0 {
		return syscall.EINVAL
	}
	return nil
}

// Sys is what the FileInfo of a pgfs file returns from Sys().
type Sys struct {
	// ID is the file's id: it changes when the name gets another file
	// (O_TRUNC, a Rename over it), never on a rename of the file itself.
	ID int64
	// Changed is when the file was created, last renamed, chmod-ed or
	// Chtimes-ed (Unix's ctime). Unlike ModTime it moves on a rename, so
	// it tells how long a file has been at its name: a sweep of a queue
	// directory fed by renames should go by it.
	Changed time.Time
}

// fileInfo is what Stat and Readdir return.
type fileInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
	sys   Sys
}

func (i *fileInfo) Name() string       { return i.name }
func (i *fileInfo) Size() int64        { return i.size }
func (i *fileInfo) Mode() fs.FileMode  { return i.mode }
func (i *fileInfo) ModTime() time.Time { return i.mtime }
func (i *fileInfo) IsDir() bool        { return i.mode.IsDir() }
func (i *fileInfo) Sys() any           { return &i.sys }
