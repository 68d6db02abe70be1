// Package store keeps campaignd's state in one embedded Badger database.
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

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

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

// DB is the store. It is safe for concurrent use.
type DB struct {
	db     *badger.DB
	logger *slog.Logger
	now    func() time.Time

	mu       sync.Mutex // serialises counter allocation
	bases    sync.Map   // broadcast id -> tracking base (fixed at ingest)
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	inMemory bool
}

// Options configure Open.
type Options struct {
	// Dir is the database directory; empty opens an in-memory store (tests).
	Dir    string
	Logger *slog.Logger
	Now    func() time.Time
}

// Open opens (or creates) the store, with Badger's memory use cut down for a
// small service.
func Open(o Options) (*DB, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	bo := badger.DefaultOptions(o.Dir)
	if o.Dir == "" {
		bo = bo.WithInMemory(true)
	}
	// Small memtables keep the resident set down (each is an arena plus a mapped WAL of twice its
	// size); in-memory mode needs 8 MB, as its values up to the default threshold must fit a batch.
	memTable := int64(4 << 20)
	if o.Dir == "" {
		memTable = 8 << 20
	}
	bo = bo.WithLogger(badgerLogger{o.Logger}).
		WithMemTableSize(memTable).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(4).
		WithBlockCacheSize(8 << 20).
		WithIndexCacheSize(4 << 20).
		WithValueLogFileSize(64 << 20).
		WithNumCompactors(2).
		WithNumGoroutines(2).
		WithBaseTableSize(2 << 20).
		WithCompression(options.Snappy).
		WithMetricsEnabled(false)
	if o.Dir != "" {
		// Row chunks (tens of KB) go to the value log instead of through
		// LSM compaction, which otherwise dominates memory on big ingests.
		// (In-memory mode has no value log and refuses larger values.)
		bo = bo.WithValueThreshold(1 << 10)
	}
	bdb, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("store: open %q: %w", o.Dir, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	db := &DB{db: bdb, logger: o.Logger, now: o.Now, cancel: cancel, inMemory: o.Dir == ""}
	if !db.inMemory {
		db.wg.Add(1)
		go db.gcLoop(ctx)
	}
	return db, nil
}

// Close stops background work and closes the database. Every writer must be
// stopped first.
func (db *DB) Close() error {
	db.cancel()
	db.wg.Wait()
	if err := db.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Badger returns the underlying database, for the store's own files and
// tests that inspect keys.
func (db *DB) Badger() *badger.DB { return db.db }

// Sync makes every write so far durable on disk.
func (db *DB) Sync() error {
	if db.inMemory {
		return nil
	}
	return db.db.Sync()
}

// Ping reports whether the store is open and answering.
func (db *DB) Ping() error {
	if db.db.IsClosed() {
		return errors.New("store: closed")
	}
	return db.db.View(func(*badger.Txn) error { return nil })
}

func (db *DB) gcLoop(ctx context.Context) {
	defer db.wg.Done()
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for db.db.RunValueLogGC(0.5) == nil {
			}
		}
	}
}

// nextIDs reserves n consecutive values of the named counter inside txn and
// returns the first. Counters start at 1.
func nextIDs(txn *badger.Txn, name string, n uint64) (uint64, error) {
	key := append(append([]byte{}, prefixNext...), name...)
	var cur uint64
	item, err := txn.Get(key)
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
	case err != nil:
		return 0, err
	default:
		if err := item.Value(func(v []byte) error { cur = binary.BigEndian.Uint64(v); return nil }); err != nil {
			return 0, err
		}
	}
	if err := txn.Set(key, binary.BigEndian.AppendUint64(nil, cur+n)); err != nil {
		return 0, err
	}
	return cur + 1, nil
}

// update runs fn in a read-write transaction, retrying on conflicts.
func (db *DB) update(fn func(txn *badger.Txn) error) error {
	for i := 0; ; i++ {
		err := db.db.Update(fn)
		if errors.Is(err, badger.ErrConflict) && i < 10 {
			continue
		}
		return err
	}
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

type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) { b.l.Error(fmt.Sprintf(f, a...), "system", "badger") }
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn(fmt.Sprintf(f, a...), "system", "badger")
}
func (b badgerLogger) Infof(f string, a ...any)  {}
func (b badgerLogger) Debugf(f string, a ...any) {}
