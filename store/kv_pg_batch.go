package store

import (
	"context"
	"errors"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A batch is sent in pieces of at most pgPieceKeys keys or pgPieceBytes
// bytes of values, each one round trip (a pipeline of a DELETE and an unnest
// upsert, which the server runs as one implicit transaction), with up to
// pgPieceDepth pieces in flight on their own connections, so that encoding
// the next piece and the server's work on the last overlap.
const (
	pgPieceKeys  = 2000
	pgPieceBytes = 4 << 20
	pgPieceDepth = 3
)

// pgBatch buffers blind writes and sends them in pieces.
type pgBatch struct {
	kv       *pgKV
	cur      map[string]pgWrite
	curBytes int
	sem      chan struct{}
	inflight []*pgPiece

	mu  sync.Mutex
	err error // the first piece that failed
}

// pgPiece is a piece sent or being sent; done is closed when it ends.
type pgPiece struct {
	w    map[string]pgWrite
	done chan struct{}
}

func newPGBatch(kv *pgKV) *pgBatch {
	return &pgBatch{kv: kv, sem: make(chan struct{}, pgPieceDepth)}
}

// Set buffers key = value.
func (b *pgBatch) Set(key, value []byte) error {
	return b.put(key, pgWrite{v: append([]byte{}, value...)})
}

// Delete buffers the deletion of key.
func (b *pgBatch) Delete(key []byte) error { return b.put(key, pgWrite{del: true}) }

func (b *pgBatch) put(key []byte, w pgWrite) error {
	if err := b.failed(); err != nil {
		return err
	}
	if b.cur == nil {
		b.cur = make(map[string]pgWrite)
	}
	b.cur[string(key)] = w
	b.curBytes += len(key) + len(w.v)
	if len(b.cur) >= pgPieceKeys || b.curBytes >= pgPieceBytes {
		b.dispatch()
	}
	return nil
}

func (b *pgBatch) failed() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// dispatch sends the current piece in the background. Pieces in flight may
// commit in any order, so a piece writing a key that one in flight also
// writes waits for it: the last write of a key wins, as in the order given.
func (b *pgBatch) dispatch() {
	p := &pgPiece{w: b.cur, done: make(chan struct{})}
	b.cur, b.curBytes = nil, 0
	live := b.inflight[:0]
	for _, q := range b.inflight {
		select {
		case <-q.done:
			continue
		default:
		}
		if overlap(p.w, q.w) {
			<-q.done
			continue
		}
		live = append(live, q)
	}
	b.inflight = append(live, p)
	b.sem <- struct{}{}
	go func() {
		defer func() { <-b.sem; close(p.done) }()
		if err := b.kv.writePiece(p.w); err != nil {
			b.mu.Lock()
			if b.err == nil {
				b.err = err
			}
			b.mu.Unlock()
		}
	}()
}

func overlap(a, b map[string]pgWrite) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	for k := range a {
		if _, ok := b[k]; ok {
			return true
		}
	}
	return false
}

// wait waits for every piece in flight.
func (b *pgBatch) wait() {
	for _, q := range b.inflight {
		<-q.done
	}
	b.inflight = nil
}

// Flush sends what remains and waits for every piece; it returns the first
// error of any piece.
func (b *pgBatch) Flush() error {
	if len(b.cur) > 0 && b.failed() == nil {
		b.dispatch()
	}
	b.wait()
	return b.failed()
}

// Cancel drops what was not sent and waits for the pieces in flight.
func (b *pgBatch) Cancel() {
	b.cur, b.curBytes = nil, 0
	b.wait()
}

// writePiece writes w in one implicit transaction, again after a
// serialization failure, a deadlock or a broken connection: blind writes
// can be repeated.
func (kv *pgKV) writePiece(w map[string]pgWrite) error {
	for attempt := 1; ; attempt++ {
		b := &pgx.Batch{}
		queueWrites(b, w)
		ctx, cancel := context.WithTimeout(kv.ctx, kv.o.QueryTimeout)
		err := kv.pool.SendBatch(ctx, b).Close()
		cancel()
		if err == nil {
			return nil
		}
		var pe *pgconn.PgError
		retry := isPGConflict(err) || !errors.As(err, &pe)
		if !retry || attempt > kv.o.MaxRetries || kv.ctx.Err() != nil {
			return pgError(err)
		}
		if err := kv.backoff(attempt); err != nil {
			return err
		}
	}
}
