package store_test

import (
	"testing"

	"campaignd/store"
)

// The store's tests are its contract, and every engine must pass them: a
// test that opens a store runs its body once per engine registered in
// testEngines, as a subtest named after the engine (forEachEngine).
//
// Registering an engine (the contract for kv_pg_test.go and any later
// engine): from an init() in a file of package store_test, append a
// testEngine, e.g. with a fresh database of a server shared by the package:
//
//	func init() {
//		testEngines = append(testEngines, testEngine{name: "postgres",
//			open: func(t *testing.T, o store.Options) (*store.DB, func(store.Options) (*store.DB, error)) {
//				dsn := newPGDatabaseForTest(t)
//				db, err := store.OpenKV(openPG(t, dsn, store.PGOptions{}), o)
//				if err != nil {
//					t.Fatal(err)
//				}
//				t.Cleanup(func() { db.Close() })
//				return db, func(o store.Options) (*store.DB, error) {
//					kv, err := store.OpenPG(context.Background(), dsn, store.PGOptions{})
//					if err != nil {
//						return nil, err
//					}
//					return store.OpenKV(kv, o)
//				}
//			}})
//	}
//
// open is called once per test and engine, with that subtest's t. It
// returns a new, empty store opened with o (o.Dir is the engine's business:
// it is empty when given), whose Close the engine arranges in t.Cleanup
// (closing a store twice must be harmless to the test: forEachEngine's
// reopen closes it first). It also returns reopen, which opens the same
// database again after the store was closed (a restart of the process, or
// its crash after the writes it acknowledged); nil when the engine cannot
// (Badger in memory), and tests that need it skip that engine. When an
// engine cannot run here (no PostgreSQL installed), open calls t.Skip.
// Work shared by the package's tests (one PostgreSQL server rather than one
// per test) is the engine's own business (kv_pg_test.go's TestMain); this
// file has no TestMain, so that one can.
type testEngine struct {
	name string
	open func(t *testing.T, o store.Options) (db *store.DB, reopen func(o store.Options) (*store.DB, error))
}

var testEngines = []testEngine{
	{name: "badger-memory", open: openBadgerMemory},
	{name: "badger-disk", open: openBadgerDisk},
}

func openBadgerMemory(t *testing.T, o store.Options) (*store.DB, func(store.Options) (*store.DB, error)) {
	o.Dir = ""
	db, err := store.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, nil
}

func openBadgerDisk(t *testing.T, o store.Options) (*store.DB, func(store.Options) (*store.DB, error)) {
	dir := t.TempDir()
	o.Dir = dir
	db, err := store.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, func(o store.Options) (*store.DB, error) {
		o.Dir = dir
		return store.Open(o)
	}
}

// forEachEngine runs body against a new, empty store on each engine.
func forEachEngine(t *testing.T, body func(t *testing.T, db *store.DB)) {
	t.Helper()
	forEachEngineWith(t, store.Options{}, body)
}

// forEachEngineWith is forEachEngine with options (a clock).
func forEachEngineWith(t *testing.T, o store.Options, body func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, e := range testEngines {
		t.Run(e.name, func(t *testing.T) {
			db, _ := e.open(t, o)
			body(t, db)
		})
	}
}

// engineStore is a store under test that can be reopened.
type engineStore struct {
	t      *testing.T
	o      store.Options
	db     *store.DB
	reopen func(store.Options) (*store.DB, error)
}

// DB returns the store as last opened.
func (s *engineStore) DB() *store.DB { return s.db }

// Reopen closes the store and opens the same database again, as a restart
// does; the new store is closed at the end of the test.
func (s *engineStore) Reopen() *store.DB {
	s.t.Helper()
	if err := s.db.Close(); err != nil {
		s.t.Fatalf("close before reopening: %v", err)
	}
	db, err := s.reopen(s.o)
	if err != nil {
		s.t.Fatalf("reopen: %v", err)
	}
	s.t.Cleanup(func() { db.Close() })
	s.db = db
	return db
}

// forEachReopenableEngine runs body on each engine that can reopen a
// database (Badger on disk, PostgreSQL), skipping the others.
func forEachReopenableEngine(t *testing.T, o store.Options, body func(t *testing.T, s *engineStore)) {
	t.Helper()
	for _, e := range testEngines {
		t.Run(e.name, func(t *testing.T) {
			db, reopen := e.open(t, o)
			if reopen == nil {
				t.Skipf("%s cannot reopen a database", e.name)
			}
			body(t, &engineStore{t: t, o: o, db: db, reopen: reopen})
		})
	}
}
