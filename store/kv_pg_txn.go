package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

const (
	pgBeginUpdate = "BEGIN ISOLATION LEVEL SERIALIZABLE"
	pgBeginView   = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

	// A TTL is sent in microseconds (0: none) and becomes expires_at on the
	// server's clock, which every node shares.
	pgUpsertSQL = `INSERT INTO kv (k, v, expires_at)
SELECT k, v, CASE WHEN ttl > 0 THEN now() + ttl * interval '1 microsecond' END
FROM unnest($1::bytea[], $2::bytea[], $3::int8[]) AS w(k, v, ttl)
ON CONFLICT (k) DO UPDATE SET v = excluded.v, expires_at = excluded.expires_at`
	pgDeleteSQL = `DELETE FROM kv WHERE k = ANY($1::bytea[])`
	pgGetSQL    = `SELECT v FROM kv WHERE k = $1 AND (expires_at IS NULL OR expires_at > now())`

	// A transaction's buffer is sent early past these sizes, to bound its
	// memory (the writes stay uncommitted until the end).
	pgTxnFlushKeys  = 4096
	pgTxnFlushBytes = 8 << 20
)

// errReadOnly is what a write in View returns.
var errReadOnly = errors.New("store: write in a read-only transaction")

// pgWrite is a buffered write: a value (with a TTL) or a deletion.
type pgWrite struct {
	v   []byte
	ttl time.Duration
	del bool
}

// pgTxn is one transaction. It takes a connection at its first round trip
// and begins the server's transaction in that same round trip.
type pgTxn struct {
	kv         *pgKV
	write      bool
	conn       *pgxpool.Conn
	begun      bool
	commitSent bool
	lost       bool  // the connection broke (or none could be had)
	err        error // a statement failed: the server's transaction is aborted
	buf        map[string]pgWrite
	bufBytes   int
	reads      map[string]pgRead // values prefetched in this transaction's snapshot
}

// pgRead is a prefetched value, or its absence.
type pgRead struct {
	v     []byte
	found bool
}

const pgGetManySQL = `SELECT k, v FROM kv WHERE k = ANY($1::bytea[]) AND (expires_at IS NULL OR expires_at > now())`

// Prefetch reads keys in one round trip, so that the Gets that follow are
// answered from the transaction's snapshot without a round trip each.
func (t *pgTxn) Prefetch(keys [][]byte) error {
	var want [][]byte
	for _, k := range keys {
		if _, ok := t.buf[string(k)]; ok {
			continue
		}
		if _, ok := t.reads[string(k)]; ok {
			continue
		}
		want = append(want, k)
	}
	if len(want) == 0 {
		return nil
	}
	got := map[string][]byte{}
	b := t.batch(false)
	b.Queue(pgGetManySQL, want).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var k, v []byte
			if err := rows.Scan(&k, &v); err != nil {
				return err
			}
			if v == nil {
				v = []byte{}
			}
			got[string(k)] = v
		}
		return rows.Err()
	})
	if err := t.send(b); err != nil {
		return err
	}
	if t.reads == nil {
		t.reads = make(map[string]pgRead, len(want))
	}
	for _, k := range want {
		v, ok := got[string(k)]
		t.reads[string(k)] = pgRead{v: v, found: ok}
	}
	return nil
}

func (kv *pgKV) newTxn(write bool) *pgTxn {
	return &pgTxn{kv: kv, write: write}
}

// run runs fn and commits (View: ends the snapshot).
func (t *pgTxn) run(fn func(Txn) error) error {
	defer t.release()
	if err := fn(t); err != nil {
		return err
	}
	if t.err != nil {
		return t.err // fn went on after a failed statement
	}
	return t.commit()
}

func (t *pgTxn) commit() error {
	if !t.begun && len(t.buf) == 0 {
		return nil // nothing was read or written
	}
	b := t.batch(true)
	b.Queue("COMMIT").Exec(func(ct pgconn.CommandTag) error {
		if ct.String() != "COMMIT" {
			return fmt.Errorf("store: commit: server answered %s", ct)
		}
		return nil
	})
	if err := t.acquire(); err != nil {
		return err // nothing was sent: safe to run again
	}
	t.commitSent = true
	return t.send(b)
}

// release rolls back what was not committed and returns the connection.
func (t *pgTxn) release() {
	if t.conn == nil {
		return
	}
	pc := t.conn.Conn().PgConn()
	if !pc.IsClosed() && pc.TxStatus() != 'I' {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _ = t.conn.Exec(ctx, "ROLLBACK")
		cancel()
	}
	t.conn.Release() // a connection still in a transaction is destroyed
	t.conn = nil
}

// retryableBreak reports that the connection broke before the commit could
// have taken effect, so running fn again cannot apply it twice.
func (t *pgTxn) retryableBreak(err error) bool {
	return t.broke(err) && (!t.commitSent || pgconn.SafeToRetry(err))
}

func (t *pgTxn) broke(err error) bool {
	return err != nil && t.lost && t.kv.ctx.Err() == nil
}

// batch starts a round trip: BEGIN if the transaction has not begun, then
// the buffered writes if flush.
func (t *pgTxn) batch(flush bool) *pgx.Batch {
	b := &pgx.Batch{}
	if !t.begun {
		if t.write {
			b.Queue(pgBeginUpdate)
		} else {
			b.Queue(pgBeginView)
		}
		t.begun = true
	}
	if flush && len(t.buf) > 0 {
		queueWrites(b, t.buf)
		t.buf, t.bufBytes = nil, 0
	}
	return b
}

// queueWrites adds the statements writing w to b: one DELETE for the
// deletions, one upsert for the values, keys in order (so that concurrent
// writers lock rows in the same order and do not deadlock).
func queueWrites(b *pgx.Batch, w map[string]pgWrite) {
	keys := make([]string, 0, len(w))
	for k := range w {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var dels, ks, vs [][]byte
	var ttls []int64
	for _, k := range keys {
		e := w[k]
		if e.del {
			dels = append(dels, []byte(k))
			continue
		}
		v := e.v
		if v == nil {
			v = []byte{} // nil would be NULL
		}
		ks, vs = append(ks, []byte(k)), append(vs, v)
		ttls = append(ttls, e.ttl.Microseconds())
	}
	if len(dels) > 0 {
		b.Queue(pgDeleteSQL, dels)
	}
	if len(ks) > 0 {
		b.Queue(pgUpsertSQL, ks, vs, ttls)
	}
}

// send makes the round trip b, on the transaction's connection.
func (t *pgTxn) send(b *pgx.Batch) error {
	if t.err != nil {
		return t.err
	}
	if err := t.acquire(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(t.kv.ctx, t.kv.o.QueryTimeout)
	defer cancel()
	err := t.conn.SendBatch(ctx, b).Close()
	if err != nil {
		t.err = err
		if t.conn.Conn().IsClosed() {
			t.lost = true
			t.kv.pool.Reset() // the other idle connections are likely dead too
		}
	}
	return err
}

// acquire takes the transaction's connection from the pool, once.
func (t *pgTxn) acquire() error {
	if t.err != nil || t.conn != nil {
		return t.err
	}
	ctx, cancel := context.WithTimeout(t.kv.ctx, t.kv.o.QueryTimeout)
	defer cancel()
	c, err := t.kv.pool.Acquire(ctx)
	if err != nil {
		t.lost = true
		t.err = fmt.Errorf("store: postgres: %w", err)
		return t.err
	}
	t.conn = c
	return nil
}

// Get returns the value of key: from the transaction's own writes, else from
// the server.
func (t *pgTxn) Get(key []byte) ([]byte, error) {
	if w, ok := t.buf[string(key)]; ok {
		if w.del {
			return nil, ErrNotFound
		}
		return bytes.Clone(w.v), nil
	}
	if r, ok := t.reads[string(key)]; ok {
		if !r.found {
			return nil, ErrNotFound
		}
		return bytes.Clone(r.v), nil
	}
	var v []byte
	found := true
	b := t.batch(false)
	b.Queue(pgGetSQL, key).QueryRow(func(r pgx.Row) error {
		err := r.Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			found = false
			return nil
		}
		return err
	})
	if err := t.send(b); err != nil {
		return nil, err
	}
	if !found {
		return nil, ErrNotFound
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// Set buffers key = value.
func (t *pgTxn) Set(key, value []byte) error { return t.put(key, pgWrite{v: bytes.Clone(value)}) }

// SetTTL buffers key = value expiring after ttl.
func (t *pgTxn) SetTTL(key, value []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("store: SetTTL with ttl %s", ttl)
	}
	return t.put(key, pgWrite{v: bytes.Clone(value), ttl: ttl})
}

// Delete buffers the deletion of key.
func (t *pgTxn) Delete(key []byte) error { return t.put(key, pgWrite{del: true}) }

func (t *pgTxn) put(key []byte, w pgWrite) error {
	if !t.write {
		return errReadOnly
	}
	if t.err != nil {
		return t.err
	}
	if t.buf == nil {
		t.buf = make(map[string]pgWrite)
	}
	t.buf[string(key)] = w
	delete(t.reads, string(key))
	t.bufBytes += len(key) + len(w.v)
	if len(t.buf) >= pgTxnFlushKeys || t.bufBytes >= pgTxnFlushBytes {
		return t.send(t.batch(true))
	}
	return nil
}

// Scan pages through the range with index range scans. The writes buffered
// before it are sent first, so it sees them; like Badger's iterator, it does
// not see the writes fn makes while it runs (unless a full buffer is sent
// early).
func (t *pgTxn) Scan(o ScanOptions, fn func(key, value []byte) (bool, error)) error {
	r, ok := scanRange(o)
	if !ok {
		return nil
	}
	limit, maxLimit := 64, 512
	if o.KeysOnly {
		limit, maxLimit = 256, 8192
	}
	flush := true
	for {
		var page []kvPair
		sql, args := r.sql(o, limit)
		b := t.batch(flush)
		flush = false
		b.Queue(sql, args...).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var p kvPair
				var err error
				if o.KeysOnly {
					err = rows.Scan(&p.k)
				} else {
					err = rows.Scan(&p.k, &p.v)
					if err == nil && p.v == nil {
						p.v = []byte{}
					}
				}
				if err != nil {
					return err
				}
				page = append(page, p)
			}
			return rows.Err()
		})
		if err := t.send(b); err != nil {
			return err
		}
		for _, p := range page {
			more, err := fn(p.k, p.v)
			if err != nil || !more {
				return err
			}
		}
		if len(page) < limit {
			return nil
		}
		last := page[len(page)-1].k
		if o.Reverse {
			r.hi, r.hiIncl = last, false
		} else {
			r.lo, r.loIncl = last, false
		}
		limit = min(limit*2, maxLimit)
	}
}

type kvPair struct{ k, v []byte }

// keyRange is a range of keys; a nil bound is open.
type keyRange struct {
	lo, hi         []byte
	loIncl, hiIncl bool
}

// scanRange turns ScanOptions into the range of keys Scan visits: the
// prefix's keys, from Start (forward: the first key ≥ Start; reverse: the
// last key ≤ Start, as Badger's Seek). ok is false for an empty range.
func scanRange(o ScanOptions) (r keyRange, ok bool) {
	r.lo, r.loIncl = o.Prefix, true
	r.hi = prefixEnd(o.Prefix) // exclusive
	if len(o.Start) > 0 {
		if !o.Reverse && bytes.Compare(o.Start, r.lo) > 0 {
			r.lo = o.Start
		}
		if o.Reverse && (r.hi == nil || bytes.Compare(o.Start, r.hi) < 0) {
			r.hi, r.hiIncl = o.Start, true
		}
	}
	if r.hi != nil {
		c := bytes.Compare(r.lo, r.hi)
		if c > 0 || c == 0 && !(r.loIncl && r.hiIncl) {
			return r, false
		}
	}
	return r, true
}

// sql returns the query for one page of r.
func (r keyRange) sql(o ScanOptions, limit int) (string, []any) {
	var s strings.Builder
	var args []any
	s.WriteString("SELECT k")
	if !o.KeysOnly {
		s.WriteString(", v")
	}
	s.WriteString(" FROM kv WHERE (expires_at IS NULL OR expires_at > now())")
	bound := func(op string, key []byte) {
		args = append(args, key)
		s.WriteString(" AND k " + op + " $" + strconv.Itoa(len(args)))
	}
	if len(r.lo) > 0 || !r.loIncl {
		bound(pick(r.loIncl, ">=", ">"), r.lo)
	}
	if r.hi != nil {
		bound(pick(r.hiIncl, "<=", "<"), r.hi)
	}
	s.WriteString(pick(o.Reverse, " ORDER BY k DESC", " ORDER BY k"))
	args = append(args, limit)
	s.WriteString(" LIMIT $" + strconv.Itoa(len(args)))
	return s.String(), args
}

func pick(c bool, a, b string) string {
	if c {
		return a
	}
	return b
}
