package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"campaignd"
	"campaignd/internal/testenv"
	"campaignd/store"
)

// The KV contract: what the store's logic relies on from an engine, checked
// on every engine of testEngines through the store's own handle on it.

func kvSet(t *testing.T, kv store.KV, kvs ...string) {
	t.Helper()
	err := kv.Update(func(txn store.Txn) error {
		for i := 0; i < len(kvs); i += 2 {
			if err := txn.Set([]byte(kvs[i]), []byte(kvs[i+1])); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// kvScan returns "key=value" (or the key alone, keys only) of what Scan
// visits, stopping after max (0: all).
func kvScanList(t *testing.T, txn store.Txn, o store.ScanOptions, max int) []string {
	t.Helper()
	var out []string
	err := txn.Scan(o, func(k, v []byte) (bool, error) {
		if o.KeysOnly {
			if v != nil {
				t.Errorf("keys-only scan gave value %q for %q", v, k)
			}
			out = append(out, string(k))
		} else {
			out = append(out, string(k)+"="+string(v))
		}
		return max == 0 || len(out) < max, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestKVGetSetDelete(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		kv := db.KV()
		kvSet(t, kv, "k/1", "one", "k/2", "")
		err := kv.View(func(txn store.Txn) error {
			v, err := txn.Get([]byte("k/1"))
			if err != nil || string(v) != "one" {
				t.Errorf("Get k/1 = %q, %v", v, err)
			}
			v[0] = 'X' // the caller's copy
			if v, err := txn.Get([]byte("k/2")); err != nil || len(v) != 0 {
				t.Errorf("Get of an empty value = %q, %v", v, err)
			}
			if _, err := txn.Get([]byte("k/3")); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get of a missing key: %v, want ErrNotFound", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = kv.Update(func(txn store.Txn) error {
			if err := txn.Delete([]byte("k/1")); err != nil {
				return err
			}
			if err := txn.Delete([]byte("k/missing")); err != nil {
				return fmt.Errorf("Delete of a missing key: %w", err)
			}
			// The transaction sees its own writes.
			if _, err := txn.Get([]byte("k/1")); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get after Delete in the transaction: %v", err)
			}
			if err := txn.Set([]byte("k/4"), []byte("four")); err != nil {
				return err
			}
			if got := kvScanList(t, txn, store.ScanOptions{Prefix: []byte("k/")}, 0); fmt.Sprint(got) != "[k/2= k/4=four]" {
				t.Errorf("Scan in the transaction = %q", got)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		kv.View(func(txn store.Txn) error {
			if got := kvScanList(t, txn, store.ScanOptions{Prefix: []byte("k/")}, 0); fmt.Sprint(got) != "[k/2= k/4=four]" {
				t.Errorf("Scan after commit = %q", got)
			}
			return nil
		})
		// An error from fn rolls the transaction back.
		boom := errors.New("boom")
		err = kv.Update(func(txn store.Txn) error {
			txn.Set([]byte("k/5"), []byte("five"))
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Update returned %v, want fn's error", err)
		}
		kv.View(func(txn store.Txn) error {
			if _, err := txn.Get([]byte("k/5")); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a failed Update's write is visible: %v", err)
			}
			return nil
		})
	})
}

func TestKVScan(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		kv := db.KV()
		// Around the prefix "p/": a key before it, keys after it (p0 is
		// the first key past every p/ key), and p/ keys with 0xff bytes,
		// which sort after any seek key built by appending 0xff once.
		kvSet(t, kv, "p", "x", "p.", "x", "p/", "e", "p/a", "1", "p/b", "2", "p/b/c", "3", "p/\xff", "4", "p/\xff\xff\x01", "5",
			"p0", "x", "q", "x")
		all := []string{"p/=e", "p/a=1", "p/b=2", "p/b/c=3", "p/\xff=4", "p/\xff\xff\x01=5"}
		rev := func(s []string) []string {
			out := make([]string, len(s))
			for i := range s {
				out[i] = s[len(s)-1-i]
			}
			return out
		}
		keys := func(s []string) []string {
			out := make([]string, len(s))
			for i := range s {
				out[i] = s[i][:bytes.LastIndexByte([]byte(s[i]), '=')]
			}
			return out
		}
		p := []byte("p/")
		for _, tc := range []struct {
			name string
			o    store.ScanOptions
			max  int
			want []string
		}{
			{"forward", store.ScanOptions{Prefix: p}, 0, all},
			{"forward from a key", store.ScanOptions{Prefix: p, Start: []byte("p/b")}, 0, all[2:]},
			{"forward from between keys", store.ScanOptions{Prefix: p, Start: []byte("p/a\x00")}, 0, all[2:]},
			{"forward from before the prefix", store.ScanOptions{Prefix: p, Start: []byte("a")}, 0, all},
			{"forward, stopped", store.ScanOptions{Prefix: p}, 2, all[:2]},
			{"reverse from the last key", store.ScanOptions{Prefix: p, Reverse: true}, 0, rev(all)},
			{"reverse from a key", store.ScanOptions{Prefix: p, Reverse: true, Start: []byte("p/b")}, 0, rev(all[:3])},
			{"reverse from between keys", store.ScanOptions{Prefix: p, Reverse: true, Start: []byte("p/az")}, 0, rev(all[:2])},
			{"reverse, stopped", store.ScanOptions{Prefix: p, Reverse: true}, 1, rev(all)[:1]},
			{"keys only", store.ScanOptions{Prefix: p, KeysOnly: true}, 0, keys(all)},
			{"keys only, reverse", store.ScanOptions{Prefix: p, KeysOnly: true, Reverse: true}, 0, keys(rev(all))},
			{"a prefix with nothing", store.ScanOptions{Prefix: []byte("r/")}, 0, nil},
			{"a prefix with nothing, reverse", store.ScanOptions{Prefix: []byte("r/"), Reverse: true}, 0, nil},
			{"a prefix that is a whole key", store.ScanOptions{Prefix: []byte("p/b")}, 0, all[2:4]},
		} {
			kv.View(func(txn store.Txn) error {
				if got := kvScanList(t, txn, tc.o, tc.max); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
					t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
				}
				return nil
			})
		}
		// An error from fn ends the scan and comes back as is.
		boom := errors.New("boom")
		err := kv.View(func(txn store.Txn) error {
			return txn.Scan(store.ScanOptions{Prefix: p}, func(k, v []byte) (bool, error) { return true, boom })
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Scan returned %v, want fn's error", err)
		}
		// Get and Scan inside a Scan (the store reads other keys while it
		// walks a prefix), in a read-write transaction too.
		err = kv.Update(func(txn store.Txn) error {
			n := 0
			err := txn.Scan(store.ScanOptions{Prefix: p, KeysOnly: true}, func(k, _ []byte) (bool, error) {
				if _, err := txn.Get([]byte("q")); err != nil {
					return false, err
				}
				n++
				return true, nil
			})
			if n != len(all) {
				t.Errorf("nested Get: scanned %d keys", n)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestKVUpdateConflicts: concurrent read-modify-writes of one key lose no
// update. Each Update either commits (after its own retries) or returns
// ErrConflict, and the counter ends equal to the commits.
func TestKVUpdateConflicts(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		kv := db.KV()
		const workers, each = 4, 15
		var mu sync.Mutex
		commits := 0
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					err := kv.Update(func(txn store.Txn) error {
						n := 0
						v, err := txn.Get([]byte("c"))
						if err == nil {
							fmt.Sscan(string(v), &n)
						} else if !errors.Is(err, store.ErrNotFound) {
							return err
						}
						return txn.Set([]byte("c"), []byte(fmt.Sprint(n+1)))
					})
					if err != nil && !errors.Is(err, store.ErrConflict) {
						t.Error(err)
						return
					}
					if err == nil {
						mu.Lock()
						commits++
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		kv.View(func(txn store.Txn) error {
			v, err := txn.Get([]byte("c"))
			if err != nil || string(v) != fmt.Sprint(commits) {
				t.Errorf("counter = %q, %v after %d commits", v, err, commits)
			}
			return nil
		})
		if commits == 0 {
			t.Fatal("no Update committed")
		}
	})
}

// TestConcurrentIDsAreUnique: uploads created at once (by one node's
// goroutines or by several nodes) get distinct upload and broadcast ids.
func TestConcurrentIDsAreUnique(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		const workers, each = 4, 10
		var mu sync.Mutex
		uids, bids := map[uint64]bool{}, map[uint64]bool{}
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					job, err := db.CreateUpload(&campaignd.Upload{Path: fmt.Sprintf("/%d-%d.csv", w, i)})
					if errors.Is(err, store.ErrConflict) {
						continue // too much contention for the retries: refused, not duplicated
					} else if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if uids[job.Upload.ID] || bids[job.BroadcastID] {
						t.Errorf("id given twice: upload %d, broadcast %d", job.Upload.ID, job.BroadcastID)
					}
					uids[job.Upload.ID], bids[job.BroadcastID] = true, true
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		jobs, err := db.Jobs()
		if err != nil || len(jobs) != len(uids) || len(uids) == 0 {
			t.Fatalf("%d jobs (%v) for %d uploads", len(jobs), err, len(uids))
		}
	})
}

func TestKVTTL(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		kv := db.KV()
		err := kv.Update(func(txn store.Txn) error {
			if err := txn.SetTTL([]byte("t/short"), []byte("s"), time.Second); err != nil {
				return err
			}
			return txn.SetTTL([]byte("t/long"), []byte("l"), time.Hour)
		})
		if err != nil {
			t.Fatal(err)
		}
		get := func(k string) error {
			return kv.View(func(txn store.Txn) error { _, err := txn.Get([]byte(k)); return err })
		}
		if err := get("t/short"); err != nil {
			t.Fatalf("a key with a TTL is not there at once: %v", err)
		}
		testenv.Eventually(t, 10*time.Second, "the key with a 1 s TTL expires", func() bool {
			return errors.Is(get("t/short"), store.ErrNotFound)
		})
		kv.View(func(txn store.Txn) error {
			if got := kvScanList(t, txn, store.ScanOptions{Prefix: []byte("t/")}, 0); fmt.Sprint(got) != "[t/long=l]" {
				t.Errorf("Scan after expiry = %q", got)
			}
			return nil
		})
	})
}

func TestKVBatch(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		kv := db.KV()
		kvSet(t, kv, "b/old", "x")
		b := kv.NewBatch()
		for i := 0; i < 2000; i++ {
			if err := b.Set([]byte(fmt.Sprintf("b/%04d", i)), bytes.Repeat([]byte{'v'}, 100)); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Delete([]byte("b/old")); err != nil {
			t.Fatal(err)
		}
		if err := b.Flush(); err != nil {
			t.Fatal(err)
		}
		kv.View(func(txn store.Txn) error {
			if got := kvScanList(t, txn, store.ScanOptions{Prefix: []byte("b/"), KeysOnly: true}, 0); len(got) != 2000 || got[0] != "b/0000" {
				t.Errorf("after Flush: %d keys from %q", len(got), got[:min(1, len(got))])
			}
			return nil
		})
		b = kv.NewBatch()
		b.Set([]byte("c/1"), []byte("x"))
		b.Cancel()
		kv.View(func(txn store.Txn) error {
			if _, err := txn.Get([]byte("c/1")); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a cancelled batch's write is visible: %v", err)
			}
			return nil
		})
	})
}

// TestIsTooLargeRecognisesErrTooBig: callers tell a refusal for size by
// ErrTooBig, whichever engine wrapped it.
func TestIsTooLargeRecognisesErrTooBig(t *testing.T) {
	if !store.IsTooLarge(fmt.Errorf("store: save upload 1: %w", store.ErrTooBig)) {
		t.Fatal("a wrapped ErrTooBig is not recognised")
	}
	if store.IsTooLarge(nil) || store.IsTooLarge(store.ErrConflict) || store.IsTooLarge(errors.New("value exceeded the limit")) {
		t.Fatal("IsTooLarge of other errors")
	}
}

// TestReopenKeepsState: what a store acknowledged is there when the same
// database is opened again (a restart), and the ID counters go on.
func TestReopenKeepsState(t *testing.T) {
	forEachReopenableEngine(t, store.Options{}, func(t *testing.T, s *engineStore) {
		db := s.DB()
		b := ingest(t, db, "a.csv", 300, "aa")
		opts := campaignd.SaveOptions{IDFormat: campaignd.IDFormatExact, DayOf: func(t time.Time) string { return t.UTC().Format("20060102") }}
		at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
		if _, err := db.SaveChanges([]campaignd.Change{{BroadcastID: b.ID, Index: 7, From: campaignd.StateQueued,
			To: campaignd.StateSubmitted, SMSCIDs: []string{"x7"}, At: at}}, nil, opts); err != nil {
			t.Fatal(err)
		}
		if _, err := db.PutTimer("sweep", "1", at); err != nil {
			t.Fatal(err)
		}
		if err := db.Sync(); err != nil {
			t.Fatal(err)
		}
		db = s.Reopen()
		got, err := db.Broadcast(b.ID)
		if err != nil || got.Counts.Total != 300 || got.Counts.Submitted != 1 || got.TrackingBase != b.TrackingBase {
			t.Fatalf("broadcast after reopen = %+v, %v", got, err)
		}
		res, err := db.SaveChanges(nil, []campaignd.ReceiptIn{{ID: "x7", Stat: campaignd.StateDelivered, At: at}}, opts)
		if err != nil || res.Receipts[0] != campaignd.ReceiptMatched {
			t.Fatalf("receipt after reopen: %+v, %v", res, err)
		}
		if due, ok, err := db.TimerDue("sweep", "1"); err != nil || !ok || !due.Equal(at) {
			t.Fatalf("timer after reopen = %v %v %v", due, ok, err)
		}
		b2 := ingest(t, db, "b.csv", 1, "bb")
		if b2.ID <= b.ID || b2.TrackingBase <= b.TrackingBase+300 {
			t.Fatalf("ids after reopen: broadcast %d (was %d), tracking base %d (was %d)", b2.ID, b.ID, b2.TrackingBase, b.TrackingBase)
		}
	})
}
