package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// The Badger engine: the KV interface over one embedded Badger database.
// It is the only file of the package that knows Badger.
//
// Badger keeps the keys and values given to Set until the transaction
// commits: callers must not change them before that (every caller in the
// package builds them afresh).

// updateRetries bounds how often Update runs a transaction again after a
// conflict.
const updateRetries = 10

type badgerKV struct {
	db       *badger.DB
	inMemory bool
}

// openBadger opens (or creates) a Badger engine in dir (empty: in memory,
// for tests), with Badger's memory use cut down for a small service.
func openBadger(dir string, logger *slog.Logger) (KV, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	bo := badger.DefaultOptions(dir)
	if dir == "" {
		bo = bo.WithInMemory(true)
	}
	// Small memtables keep the resident set down (each is an arena plus a mapped WAL of twice its
	// size); in-memory mode needs 8 MB, as its values up to the default threshold must fit a batch.
	memTable := int64(4 << 20)
	if dir == "" {
		memTable = 8 << 20
	}
	bo = bo.WithLogger(badgerLogger{logger}).
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
	if dir != "" {
		// Row chunks (tens of KB) go to the value log instead of through
		// LSM compaction, which otherwise dominates memory on big ingests.
		// (In-memory mode has no value log and refuses larger values.)
		bo = bo.WithValueThreshold(1 << 10)
	}
	bdb, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("store: open %q: %w", dir, err)
	}
	return &badgerKV{db: bdb, inMemory: dir == ""}, nil
}

// badgerErr maps Badger's errors to the engine-neutral ones, keeping
// Badger's in the chain for the message.
func badgerErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict), errors.Is(err, ErrTooBig):
		return err
	case errors.Is(err, badger.ErrKeyNotFound):
		return ErrNotFound
	case errors.Is(err, badger.ErrConflict):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	case errors.Is(err, badger.ErrTxnTooBig):
		return fmt.Errorf("%w: %w", ErrTooBig, err)
	}
	// A key or value over Badger's size limit has no sentinel error:
	// "Value with size 1234 exceeded 1048576 limit".
	if msg := err.Error(); strings.Contains(msg, " exceeded ") && strings.Contains(msg, " limit") {
		return fmt.Errorf("%w: %w", ErrTooBig, err)
	}
	return err
}

func (k *badgerKV) View(fn func(Txn) error) error {
	return badgerErr(k.db.View(func(txn *badger.Txn) error { return fn(&badgerTxn{txn: txn}) }))
}

func (k *badgerKV) Get(key []byte) ([]byte, error) {
	var v []byte
	err := k.View(func(txn Txn) error {
		var err error
		v, err = txn.Get(key)
		return err
	})
	return v, err
}

func (k *badgerKV) Update(fn func(Txn) error) error {
	for i := 0; ; i++ {
		err := k.db.Update(func(txn *badger.Txn) error { return fn(&badgerTxn{txn: txn}) })
		if errors.Is(err, badger.ErrConflict) && i < updateRetries {
			continue
		}
		return badgerErr(err)
	}
}

func (k *badgerKV) NewBatch() Batch { return &badgerBatch{wb: k.db.NewWriteBatch()} }

func (k *badgerKV) Sync() error {
	if k.inMemory {
		return nil
	}
	return k.db.Sync()
}

func (k *badgerKV) Ping() error {
	if k.db.IsClosed() {
		return errors.New("store: closed")
	}
	return k.db.View(func(*badger.Txn) error { return nil })
}

func (k *badgerKV) Close() error { return k.db.Close() }

// Maintain runs the value-log GC until it finds nothing to rewrite.
func (k *badgerKV) Maintain() {
	if k.inMemory {
		return
	}
	for k.db.RunValueLogGC(0.5) == nil {
	}
}

type badgerTxn struct{ txn *badger.Txn }

func (t *badgerTxn) Get(key []byte) ([]byte, error) {
	item, err := t.txn.Get(key)
	if err != nil {
		return nil, badgerErr(err)
	}
	v, err := item.ValueCopy(nil)
	return v, badgerErr(err)
}

func (t *badgerTxn) Set(key, value []byte) error { return badgerErr(t.txn.Set(key, value)) }

func (t *badgerTxn) SetTTL(key, value []byte, ttl time.Duration) error {
	return badgerErr(t.txn.SetEntry(badger.NewEntry(key, value).WithTTL(ttl)))
}

func (t *badgerTxn) Delete(key []byte) error { return badgerErr(t.txn.Delete(key)) }

// Scan walks one Badger iterator. Badger allows one iterator at a time in a
// read-write transaction: fn must not Scan again inside an Update (Get is
// fine).
func (t *badgerTxn) Scan(o ScanOptions, fn func(key, value []byte) (bool, error)) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = o.Prefix
	opts.Reverse = o.Reverse
	opts.PrefetchValues = !o.KeysOnly
	if !o.KeysOnly {
		opts.PrefetchSize = 16
	}
	start, skip := o.Start, []byte(nil)
	switch {
	case !o.Reverse && bytes.Compare(start, o.Prefix) < 0:
		start = o.Prefix
	case o.Reverse && len(start) > 0 && bytes.Compare(start, o.Prefix) < 0:
		return nil // before every key of the prefix
	case o.Reverse && (len(start) == 0 || !bytes.HasPrefix(start, o.Prefix)):
		// Badger's reverse Seek finds the last key at or before its
		// argument: seek to the first key after the prefix's range and step
		// over that key if it exists. (A key of the prefix can be longer
		// than any seek key built by appending 0xff bytes.) Badger's
		// iterator ends at the first key outside its Prefix option, so the
		// option is left out: the loop checks the prefix.
		start = badgerPrefixEnd(o.Prefix)
		skip = start
		if start == nil && len(o.Prefix) > 0 { // all 0xff
			start = append(bytes.Clone(o.Prefix), bytes.Repeat([]byte{0xff}, 64)...)
		}
		opts.Prefix = nil
	}
	it := t.txn.NewIterator(opts)
	defer it.Close()
	if start == nil {
		it.Rewind() // reverse over the whole store
	} else {
		it.Seek(start)
	}
	if skip != nil && it.Valid() && bytes.Equal(it.Item().Key(), skip) {
		it.Next()
	}
	for ; it.ValidForPrefix(o.Prefix); it.Next() {
		item := it.Item()
		var v []byte
		if !o.KeysOnly {
			var err error
			if v, err = item.ValueCopy(nil); err != nil {
				return badgerErr(err)
			}
		}
		more, err := fn(item.KeyCopy(nil), v)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// badgerPrefixEnd returns the first key after every key with prefix p (nil when
// there is none: p is empty or all 0xff).
func badgerPrefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

type badgerBatch struct{ wb *badger.WriteBatch }

func (b *badgerBatch) Set(key, value []byte) error { return badgerErr(b.wb.Set(key, value)) }
func (b *badgerBatch) Delete(key []byte) error     { return badgerErr(b.wb.Delete(key)) }
func (b *badgerBatch) Flush() error                { return badgerErr(b.wb.Flush()) }
func (b *badgerBatch) Cancel()                     { b.wb.Cancel() }

type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) { b.l.Error(fmt.Sprintf(f, a...), "system", "badger") }
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn(fmt.Sprintf(f, a...), "system", "badger")
}
func (b badgerLogger) Infof(f string, a ...any)  {}
func (b badgerLogger) Debugf(f string, a ...any) {}
