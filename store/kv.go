package store

import (
	"bytes"
	"errors"
	"time"
)

// The store's logic (key layout, encodings, the rules of each record) is
// written once, against the ordered key-value engine below. Two engines
// implement it: Badger, embedded, the default (kv_badger.go); PostgreSQL, a
// single table of keys and values with SERIALIZABLE transactions, for
// running several nodes on one database (kv_pg.go).

// ErrNotFound is what Txn.Get returns for a key that does not exist (or has
// expired).
var ErrNotFound = errors.New("store: key not found")

// ErrConflict is what a transaction returns when a concurrent transaction
// changed what it read; KV.Update retries such transactions itself, so
// callers see it only after many retries.
var ErrConflict = errors.New("store: transaction conflict")

// ErrTooBig is what a write returns when a transaction or a value is more
// than the engine takes (Badger's transaction size); the caller splits the
// work or rejects the input.
var ErrTooBig = errors.New("store: transaction or value too large")

// KV is an ordered key-value engine with transactions. Keys sort bytewise.
type KV interface {
	// View runs fn in a read-only transaction (a consistent snapshot).
	View(fn func(Txn) error) error
	// Get reads one key, the latest committed value, or ErrNotFound: a View
	// of one Get, in one round trip where a transaction takes two.
	Get(key []byte) ([]byte, error)
	// Update runs fn in a read-write transaction and commits it; on a
	// conflict with a concurrent transaction it runs fn again (fn must be
	// safe to repeat), up to a bound, then returns ErrConflict.
	Update(fn func(Txn) error) error
	// NewBatch starts a batch of blind writes (no reads, not one atomic
	// transaction: it commits in pieces as it grows). Used for bulk loads.
	NewBatch() Batch
	// Sync makes every committed write durable (a no-op where commits are
	// already durable).
	Sync() error
	// Ping reports whether the engine answers.
	Ping() error
	// Close releases the engine.
	Close() error
	// Maintain runs background upkeep (Badger's value-log GC); engines
	// without any return at once.
	Maintain()
}

// Txn is one transaction. A transaction is used by one goroutine. Values
// passed to fn by Scan and returned by Get belong to the caller (copies).
type Txn interface {
	// Get returns the value of key, or ErrNotFound.
	Get(key []byte) ([]byte, error)
	// Set writes key = value; SetTTL also expires it after ttl (ttl > 0).
	Set(key, value []byte) error
	SetTTL(key, value []byte, ttl time.Duration) error
	// Delete removes key (no error if absent).
	Delete(key []byte) error
	// Scan calls fn for each key with the prefix, in key order (Reverse:
	// descending), starting at Start (inclusive; empty: the first or, in
	// reverse, the last key of the prefix), until fn returns false or an
	// error. The transaction's own writes are visible to Scan and Get.
	// With KeysOnly, fn gets a nil value.
	Scan(o ScanOptions, fn func(key, value []byte) (bool, error)) error
}

// ScanOptions select the keys Txn.Scan visits.
type ScanOptions struct {
	Prefix   []byte
	Start    []byte
	Reverse  bool
	KeysOnly bool
}

// Batch is a series of blind writes, flushed in pieces.
type Batch interface {
	Set(key, value []byte) error
	Delete(key []byte) error
	// Flush writes what remains and waits for every piece to commit.
	Flush() error
	// Cancel drops what was not yet flushed.
	Cancel()
}

// prefixEnd returns the first key after every key with prefix p (nil when
// there is none: p is empty or all 0xff).
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
