// Package store keeps campaignd's state in an ordered key-value engine:
// embedded Badger (the default) or PostgreSQL (see kv.go).
//
// Key layout (all integers big-endian, so keys sort in numeric and time
// order; the one-byte prefixes keep keys short):
//
//	m/next/<name>                  uint64 counters: broadcast, upload, tracking
//	b/<bid>                        Broadcast (JSON): created when ingest commits, rewritten when it changes
//	r/<bid>/<chunk>                up to RowsPerChunk rows of a broadcast (binary, immutable)
//	u/<uid>                        Upload (JSON) with its outcome
//	j/<uid>                        ingest job of an upload that did not finish (JSON)
//	h/<sha256 hex>                 last accepted upload with that content: bid + time
//	a/<bid>/<unix ns>/<seq>        audit entry (bid 0 = not about a broadcast)
//	ms/<bid>/<index>               message state (binary, see hot.go), only once it moved past queued
//	bc/<bid>                       a broadcast's message counts (binary), beside the JSON b/
//	mi/<smsc id>                   SMSC message id -> bid, index, part (receipt matching)
//	mr/<smsc id>                   receipt that arrived before its submit_sm_resp
//	t/<due unix ms>/<kind>/<id>    durable timer index; tr/<kind>/<id> -> due (reverse)
//	d/<YYYYMMDD>/<tracking id>     messages settled on a local day (daily report)
//	p/<YYYYMMDD>                   report push state
//	s/<session id>                 web console session (with TTL)
//	q/p/<id>, q/r/<id>             a request relayed to the leader, and its result (actions.go; with TTL)
//
// Rows are stored in chunks so that a million-row file is a few thousand
// writes; per-message state is a separate small key so the engine can
// record thousands of state changes a second in batched transactions.
package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"campaignd"
)

// Key prefixes; see the package documentation.
var (
	prefixNext      = []byte("m/next/")
	prefixBroadcast = []byte("b/")
	prefixRows      = []byte("r/")
	prefixUpload    = []byte("u/")
	prefixJob       = []byte("j/")
	prefixHash      = []byte("h/")
	prefixAudit     = []byte("a/")
)

// DB is the store. It is safe for concurrent use, and for several
// processes sharing one engine (PostgreSQL): every read-modify-write runs in
// one KV transaction, whose conflict detection makes it safe to repeat.
//
// What DB keeps in memory across transactions, and why that is safe when
// several nodes share the database:
//   - bases: broadcast id -> Tracking ID of message 0. Written once, by the
//     transaction that commits the broadcast (BroadcastWriter.Commit, which
//     only one node can win: it removes the job it requires), and never
//     changed after, so every node may cache it. It is stored only after a
//     read or a commit that succeeded.
//   - ID counters (nextIDs: broadcast, upload, tracking, audit, mo) are no
//     longer cached or guarded by a mutex: each is read and written inside
//     the transaction that uses the id, so two nodes allocating at once
//     conflict and one retries.
//   - Message counts (bc/), message states, receipt matching (mi/, mr/, the
//     learned scheme mx/) and timers are read inside each transaction; the
//     receipt tracker's matchState lives for one transaction only.
//     Nothing is cached, although only the leader writes them.
//   - RowReader keeps one decoded chunk of rows, for one caller; rows are
//     immutable once their broadcast is committed.
//   - SuppressionView is an explicit snapshot for one ingest (documented
//     there); the engine checks the list again before each submit.
type DB struct {
	kv     KV
	logger *slog.Logger
	now    func() time.Time

	bases  sync.Map // broadcast id -> tracking base (immutable once committed; see above)
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Options configure Open.
type Options struct {
	// Dir is the database directory; empty opens an in-memory store (tests).
	Dir    string
	Logger *slog.Logger
	Now    func() time.Time
}

// Open opens (or creates) the store on Badger in o.Dir, with Badger's memory
// use cut down for a small service.
func Open(o Options) (*DB, error) {
	kv, err := openBadger(o.Dir, o.Logger)
	if err != nil {
		return nil, err
	}
	return OpenKV(kv, o)
}

// OpenKV opens the store on an engine (o.Dir is not used). The store owns kv
// from then on: Close closes it.
func OpenKV(kv KV, o Options) (*DB, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	db := &DB{kv: kv, logger: o.Logger, now: o.Now, cancel: cancel}
	db.wg.Add(1)
	go db.maintainLoop(ctx)
	return db, nil
}

// Close stops background work and closes the database. Every writer must be
// stopped first.
func (db *DB) Close() error {
	db.cancel()
	db.wg.Wait()
	if err := db.kv.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// KV returns the engine, for tests that inspect keys.
func (db *DB) KV() KV { return db.kv }

// Sync makes every write so far durable on disk.
func (db *DB) Sync() error { return db.kv.Sync() }

// Ping reports whether the store is open and answering.
func (db *DB) Ping() error { return db.kv.Ping() }

func (db *DB) maintainLoop(ctx context.Context) {
	defer db.wg.Done()
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			db.kv.Maintain()
		}
	}
}

// nextIDs reserves n consecutive values of the named counter inside txn and
// returns the first. Counters start at 1.
func nextIDs(txn Txn, name string, n uint64) (uint64, error) {
	key := append(append([]byte{}, prefixNext...), name...)
	var cur uint64
	v, err := txn.Get(key)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return 0, err
	case len(v) != 8:
		return 0, fmt.Errorf("%w: counter %s", errCorrupt, name)
	default:
		cur = binary.BigEndian.Uint64(v)
	}
	if err := txn.Set(key, binary.BigEndian.AppendUint64(nil, cur+n)); err != nil {
		return 0, err
	}
	return cur + 1, nil
}

// key builds a key from a prefix and big-endian integers.
func key(prefix []byte, ids ...uint64) []byte {
	k := make([]byte, 0, len(prefix)+9*len(ids))
	k = append(k, prefix...)
	for i, id := range ids {
		if i > 0 {
			k = append(k, '/')
		}
		k = binary.BigEndian.AppendUint64(k, id)
	}
	return k
}

func notFound(what string, id uint64) error {
	return campaignd.Errorf(campaignd.ENOTFOUND, "%s %d not found.", what, id)
}
