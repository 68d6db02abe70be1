package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A batch is sent in pieces of at most pgPieceKeys keys or pgPieceBytes
// bytes of values, each its own transaction (see copyPiece), with up to
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

// writePiece writes w in one transaction, again after a serialization
// failure, a deadlock or a broken connection: blind writes can be repeated.
func (kv *pgKV) writePiece(w map[string]pgWrite) error {
	keys := make([]string, 0, len(w))
	for k := range w {
		keys = append(keys, k)
	}
	slices.Sort(keys) // rows locked in key order: concurrent writers do not deadlock
	var dels, ks, vs [][]byte
	for _, k := range keys {
		if e := w[k]; e.del {
			dels = append(dels, []byte(k))
		} else {
			ks, vs = append(ks, []byte(k)), append(vs, e.v)
		}
	}
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(kv.ctx, kv.o.QueryTimeout)
		err := kv.copyPiece(ctx, ks, vs, dels)
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

// A piece's values are copied (COPY, binary) into a temporary table of the
// connection, then upserted from it: for row chunks this costs the client
// a fifth of the CPU of binding them as one bytea[] parameter of an unnest
// upsert (which Txn uses, for its single round trip), and the server the
// same.
const (
	pgLoadTableSQL = `CREATE TEMPORARY TABLE IF NOT EXISTS kv_load (k bytea, v bytea) ON COMMIT DELETE ROWS`
	pgLoadSQL      = `INSERT INTO kv (k, v) SELECT k, v FROM kv_load
ON CONFLICT (k) DO UPDATE SET v = excluded.v, expires_at = NULL`
)

// copyPiece writes one piece in three round trips: BEGIN (and the load
// table), COPY, then the DELETE, the upsert and COMMIT.
func (kv *pgKV) copyPiece(ctx context.Context, ks, vs, dels [][]byte) (err error) {
	conn, err := kv.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer func() {
		pc := conn.Conn().PgConn()
		if err != nil && !pc.IsClosed() && pc.TxStatus() != 'I' {
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _ = conn.Exec(rctx, "ROLLBACK")
			cancel()
		}
		conn.Release()
	}()
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	if len(ks) > 0 {
		b.Queue(pgLoadTableSQL)
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	if len(ks) > 0 {
		src := &pieceSource{ks: ks, vs: vs, i: -1}
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{"kv_load"}, []string{"k", "v"}, src); err != nil {
			return err
		}
	}
	b = &pgx.Batch{}
	if len(dels) > 0 {
		b.Queue(pgDeleteSQL, dels)
	}
	if len(ks) > 0 {
		b.Queue(pgLoadSQL)
	}
	b.Queue("COMMIT").Exec(func(ct pgconn.CommandTag) error {
		if ct.String() != "COMMIT" {
			return fmt.Errorf("store: commit: server answered %s", ct)
		}
		return nil
	})
	return conn.SendBatch(ctx, b).Close()
}

// pieceSource feeds a piece's keys and values to CopyFrom.
type pieceSource struct {
	ks, vs [][]byte
	i      int
}

func (s *pieceSource) Next() bool { s.i++; return s.i < len(s.ks) }

func (s *pieceSource) Values() ([]any, error) { return []any{s.ks[s.i], s.vs[s.i]}, nil }

func (s *pieceSource) Err() error { return nil }
