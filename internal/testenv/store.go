package testenv

import (
	"testing"

	"campaignd/store"
)

// OpenStore opens an in-memory store (Badger's in-memory mode) closed at the
// end of the test: for unit tests that need no restart.
func OpenStore(tb testing.TB) *store.DB {
	tb.Helper()
	return openStore(tb, store.Options{})
}

// OpenStoreOnDisk opens a store in a fresh temporary directory, closed at the
// end of the test: for tests that reopen it or measure real I/O.
func OpenStoreOnDisk(tb testing.TB) *store.DB {
	tb.Helper()
	return openStore(tb, store.Options{Dir: tb.TempDir()})
}

func openStore(tb testing.TB, o store.Options) *store.DB {
	tb.Helper()
	db, err := store.Open(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}
