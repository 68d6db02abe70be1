package pgfs

// How a File's bytes move to and from pgfs_chunk: the chunk a writer holds,
// committed behind it; the chunk a reader holds, the next fetched ahead.

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

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
	err := beginFunc(ctx, f.fs.db.pool, func(tx pgx.Tx) (err error) {
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
	err := beginFunc(ctx, f.fs.db.pool, func(tx pgx.Tx) error {
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
