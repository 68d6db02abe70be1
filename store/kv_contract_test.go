package store_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"campaignd/internal/testenv"
	"campaignd/store"
)

// testKVContract checks the behaviour every KV engine must have (store/kv.go).
// open returns an empty KV, closed by the test's cleanup.
func testKVContract(t *testing.T, open func(t *testing.T) store.KV) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, kv store.KV)
	}{
		{"GetSetDelete", kvGetSetDelete},
		{"GetOutsideATransaction", kvGetOne},
		{"ValuesAreCopies", kvValuesAreCopies},
		{"UpdateErrorRollsBack", kvUpdateErrorRollsBack},
		{"ViewIsReadOnly", kvViewIsReadOnly},
		{"ViewSnapshot", kvViewSnapshot},
		{"TTL", kvTTL},
		{"Scan", kvScan},
		{"ScanPrefixFF", kvScanPrefixFF},
		{"ScanManyPages", kvScanManyPages},
		{"ScanReadYourWrites", kvScanReadYourWrites},
		{"ScanWhileWriting", kvScanWhileWriting},
		{"ConcurrentIncrements", kvConcurrentIncrements},
		{"BigTransaction", kvBigTransaction},
		{"Batch", kvBatch},
		{"BatchLastWriteWins", kvBatchLastWriteWins},
		{"BatchCancel", kvBatchCancel},
		{"SyncPingMaintain", kvSyncPingMaintain},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// kvPut writes key = value in its own transaction.
func kvPut(t *testing.T, kv store.KV, kvs ...string) {
	t.Helper()
	err := kv.Update(func(txn store.Txn) error {
		for i := 0; i+1 < len(kvs); i += 2 {
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

// kvGet reads key in a View; "" and false when it is absent.
func kvGet(t *testing.T, kv store.KV, key string) (string, bool) {
	t.Helper()
	var v []byte
	err := kv.View(func(txn store.Txn) error {
		var err error
		v, err = txn.Get([]byte(key))
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(v), true
}

// kvScanKeys returns the keys (and values, unless KeysOnly) Scan visits.
func kvScanKeys(t *testing.T, kv store.KV, o store.ScanOptions) []string {
	t.Helper()
	var out []string
	err := kv.View(func(txn store.Txn) error {
		return txn.Scan(o, func(k, v []byte) (bool, error) {
			if o.KeysOnly {
				if v != nil {
					return false, fmt.Errorf("KeysOnly scan gave value %q for %q", v, k)
				}
				out = append(out, string(k))
			} else {
				out = append(out, string(k)+"="+string(v))
			}
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func wantStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func kvGetSetDelete(t *testing.T, kv store.KV) {
	if _, ok := kvGet(t, kv, "a"); ok {
		t.Fatal("empty store has key a")
	}
	err := kv.Update(func(txn store.Txn) error {
		if _, err := txn.Get([]byte("a")); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("Get of a missing key: %v, want ErrNotFound", err)
		}
		if err := txn.Set([]byte("a"), []byte("1")); err != nil {
			return err
		}
		if err := txn.Set([]byte("empty"), nil); err != nil {
			return err
		}
		v, err := txn.Get([]byte("a"))
		if err != nil || string(v) != "1" {
			return fmt.Errorf("Get after Set in the same transaction: %q, %v", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := kvGet(t, kv, "a"); !ok || v != "1" {
		t.Fatalf("a = %q, %v after commit", v, ok)
	}
	if v, ok := kvGet(t, kv, "empty"); !ok || v != "" {
		t.Fatalf("empty = %q, %v; want an empty value", v, ok)
	}
	kvPut(t, kv, "a", "2")
	if v, _ := kvGet(t, kv, "a"); v != "2" {
		t.Fatalf("a = %q after overwrite", v)
	}
	err = kv.Update(func(txn store.Txn) error {
		if err := txn.Delete([]byte("a")); err != nil {
			return err
		}
		if err := txn.Delete([]byte("never")); err != nil {
			return fmt.Errorf("Delete of a missing key: %w", err)
		}
		if _, err := txn.Get([]byte("a")); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("Get after Delete in the same transaction: %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := kvGet(t, kv, "a"); ok {
		t.Fatal("a survived Delete")
	}
	// Set after Delete in one transaction: the last write wins.
	err = kv.Update(func(txn store.Txn) error {
		if err := txn.Delete([]byte("b")); err != nil {
			return err
		}
		return txn.Set([]byte("b"), []byte("3"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := kvGet(t, kv, "b"); v != "3" {
		t.Fatalf("b = %q after Delete then Set", v)
	}
}

func kvValuesAreCopies(t *testing.T, kv store.KV) {
	kvPut(t, kv, "k", "value")
	var got []byte
	err := kv.View(func(txn store.Txn) error {
		var err error
		got, err = txn.Get([]byte("k"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	kvPut(t, kv, "k", "other", "k2", "xxxxx")
	if string(got) != "value" {
		t.Fatalf("a value kept after its transaction changed to %q", got)
	}
	got[0] = 'V'
	if v, _ := kvGet(t, kv, "k"); v != "other" {
		t.Fatalf("k = %q", v)
	}
}

func kvUpdateErrorRollsBack(t *testing.T, kv store.KV) {
	kvPut(t, kv, "keep", "1")
	boom := errors.New("boom")
	err := kv.Update(func(txn store.Txn) error {
		if _, err := txn.Get([]byte("keep")); err != nil {
			return err
		}
		if err := txn.Set([]byte("new"), []byte("x")); err != nil {
			return err
		}
		if err := txn.Delete([]byte("keep")); err != nil {
			return err
		}
		return fmt.Errorf("wrapped: %w", boom)
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update returned %v, want fn's error", err)
	}
	if _, ok := kvGet(t, kv, "new"); ok {
		t.Error("a write of a failed Update was committed")
	}
	if _, ok := kvGet(t, kv, "keep"); !ok {
		t.Error("a delete of a failed Update was committed")
	}
}

func kvViewIsReadOnly(t *testing.T, kv store.KV) {
	err := kv.View(func(txn store.Txn) error {
		if txn.Set([]byte("x"), []byte("1")) == nil {
			return errors.New("Set in View succeeded")
		}
		if txn.Delete([]byte("x")) == nil {
			return errors.New("Delete in View succeeded")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := kvGet(t, kv, "x"); ok {
		t.Fatal("a write in View was committed")
	}
}

func kvViewSnapshot(t *testing.T, kv store.KV) {
	kvPut(t, kv, "s1", "old", "s2", "old")
	err := kv.View(func(txn store.Txn) error {
		if v, err := txn.Get([]byte("s1")); err != nil || string(v) != "old" {
			return fmt.Errorf("s1 = %q, %v", v, err)
		}
		done := make(chan error)
		go func() {
			done <- kv.Update(func(txn store.Txn) error {
				if err := txn.Set([]byte("s1"), []byte("new")); err != nil {
					return err
				}
				if err := txn.Set([]byte("s3"), []byte("new")); err != nil {
					return err
				}
				return txn.Set([]byte("s2"), []byte("new"))
			})
		}()
		if err := <-done; err != nil {
			return err
		}
		if v, err := txn.Get([]byte("s2")); err != nil || string(v) != "old" {
			return fmt.Errorf("View saw a later commit: s2 = %q, %v", v, err)
		}
		if _, err := txn.Get([]byte("s3")); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("View saw a key created after it began: %v", err)
		}
		n := 0
		err := txn.Scan(store.ScanOptions{Prefix: []byte("s")}, func(k, v []byte) (bool, error) {
			n++
			if string(v) != "old" {
				return false, fmt.Errorf("Scan in View saw %s=%s", k, v)
			}
			return true, nil
		})
		if err == nil && n != 2 {
			err = fmt.Errorf("Scan in View saw %d keys, want 2", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := kvGet(t, kv, "s2"); v != "new" {
		t.Fatalf("s2 = %q after the concurrent Update", v)
	}
}

func kvTTL(t *testing.T, kv store.KV) {
	err := kv.Update(func(txn store.Txn) error {
		if err := txn.SetTTL([]byte("t/long"), []byte("1"), time.Hour); err != nil {
			return err
		}
		if err := txn.SetTTL([]byte("t/short"), []byte("2"), 5*time.Second); err != nil {
			return err
		}
		// A plain Set over a key with a TTL makes it permanent.
		if err := txn.SetTTL([]byte("t/kept"), []byte("3"), 5*time.Second); err != nil {
			return err
		}
		if v, err := txn.Get([]byte("t/short")); err != nil || string(v) != "2" {
			return fmt.Errorf("t/short in its own transaction: %q, %v", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	kvPut(t, kv, "t/kept", "4")
	if v, ok := kvGet(t, kv, "t/short"); !ok || v != "2" {
		t.Fatalf("t/short = %q, %v before it expired", v, ok)
	}
	testenv.Eventually(t, 20*time.Second, "t/short to expire", func() bool {
		_, ok := kvGet(t, kv, "t/short")
		return !ok
	})
	wantStrings(t, "keys after expiry", kvScanKeys(t, kv, store.ScanOptions{Prefix: []byte("t/"), KeysOnly: true}),
		[]string{"t/kept", "t/long"})
	wantStrings(t, "reverse after expiry", kvScanKeys(t, kv, store.ScanOptions{Prefix: []byte("t/"), Reverse: true}),
		[]string{"t/long=1", "t/kept=4"})
	kv.Maintain()
	if v, ok := kvGet(t, kv, "t/long"); !ok || v != "1" {
		t.Fatalf("t/long = %q, %v after Maintain", v, ok)
	}
	err = kv.Update(func(txn store.Txn) error {
		if _, err := txn.Get([]byte("t/short")); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("expired key in Update: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// kvScan: Start is a key within the prefix (or past its end, in reverse);
// a forward Start before the prefix is left to each engine (Badger's Seek
// lands outside the prefix and visits nothing).
func kvScan(t *testing.T, kv store.KV) {
	kvPut(t, kv, "a", "0", "a/1", "1", "a/2", "2", "a/3", "3", "a/4", "4", "a/5", "5", "a0", "x", "b/1", "b")
	for _, tc := range []struct {
		name string
		o    store.ScanOptions
		want []string
	}{
		{"prefix", store.ScanOptions{Prefix: []byte("a/")}, []string{"a/1=1", "a/2=2", "a/3=3", "a/4=4", "a/5=5"}},
		{"start", store.ScanOptions{Prefix: []byte("a/"), Start: []byte("a/3")}, []string{"a/3=3", "a/4=4", "a/5=5"}},
		{"start between keys", store.ScanOptions{Prefix: []byte("a/"), Start: []byte("a/25")}, []string{"a/3=3", "a/4=4", "a/5=5"}},
		{"start after prefix", store.ScanOptions{Prefix: []byte("a/"), Start: []byte("b")}, nil},
		{"reverse", store.ScanOptions{Prefix: []byte("a/"), Reverse: true}, []string{"a/5=5", "a/4=4", "a/3=3", "a/2=2", "a/1=1"}},
		{"reverse start", store.ScanOptions{Prefix: []byte("a/"), Start: []byte("a/3"), Reverse: true}, []string{"a/3=3", "a/2=2", "a/1=1"}},
		{"reverse start between keys", store.ScanOptions{Prefix: []byte("a/"), Start: []byte("a/35"), Reverse: true}, []string{"a/3=3", "a/2=2", "a/1=1"}},
		{"reverse start past prefix", store.ScanOptions{Prefix: []byte("a/"), Start: []byte("a/\xff"), Reverse: true}, []string{"a/5=5", "a/4=4", "a/3=3", "a/2=2", "a/1=1"}},
		{"reverse start before prefix", store.ScanOptions{Prefix: []byte("a/"), Start: []byte("a"), Reverse: true}, nil},
		{"keys only", store.ScanOptions{Prefix: []byte("a/"), KeysOnly: true}, []string{"a/1", "a/2", "a/3", "a/4", "a/5"}},
		{"keys only reverse", store.ScanOptions{Prefix: []byte("a/"), KeysOnly: true, Reverse: true, Start: []byte("a/2")}, []string{"a/2", "a/1"}},
		{"prefix is a key", store.ScanOptions{Prefix: []byte("a"), KeysOnly: true}, []string{"a", "a/1", "a/2", "a/3", "a/4", "a/5", "a0"}},
		{"no prefix", store.ScanOptions{KeysOnly: true}, []string{"a", "a/1", "a/2", "a/3", "a/4", "a/5", "a0", "b/1"}},
		{"no prefix reverse start", store.ScanOptions{KeysOnly: true, Reverse: true, Start: []byte("a0")}, []string{"a0", "a/5", "a/4", "a/3", "a/2", "a/1", "a"}},
		{"no match", store.ScanOptions{Prefix: []byte("c/")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) { wantStrings(t, tc.name, kvScanKeys(t, kv, tc.o), tc.want) })
	}

	// fn stops the scan by returning false, or with an error.
	var seen []string
	err := kv.View(func(txn store.Txn) error {
		return txn.Scan(store.ScanOptions{Prefix: []byte("a/")}, func(k, _ []byte) (bool, error) {
			seen = append(seen, string(k))
			return len(seen) < 2, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	wantStrings(t, "stopped scan", seen, []string{"a/1", "a/2"})
	boom := errors.New("boom")
	err = kv.View(func(txn store.Txn) error {
		return txn.Scan(store.ScanOptions{Prefix: []byte("a/")}, func(k, _ []byte) (bool, error) { return true, boom })
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Scan returned %v, want fn's error", err)
	}
}

func kvScanPrefixFF(t *testing.T, kv store.KV) {
	kvPut(t, kv, "x\xfe\xff", "0", "x\xff", "1", "x\xff\x00", "2", "x\xff\xff", "3", "x\xff\xff\x01", "4", "y", "5",
		"\xff\xff", "6", "\xff\xff\x01", "7", "\xff\xfe", "8")
	wantStrings(t, "prefix x\\xff", kvScanKeys(t, kv, store.ScanOptions{Prefix: []byte("x\xff"), KeysOnly: true}),
		[]string{"x\xff", "x\xff\x00", "x\xff\xff", "x\xff\xff\x01"})
	wantStrings(t, "prefix x\\xff reverse", kvScanKeys(t, kv, store.ScanOptions{Prefix: []byte("x\xff"), KeysOnly: true, Reverse: true}),
		[]string{"x\xff\xff\x01", "x\xff\xff", "x\xff\x00", "x\xff"})
	wantStrings(t, "prefix x\\xff\\xff", kvScanKeys(t, kv, store.ScanOptions{Prefix: []byte("x\xff\xff"), KeysOnly: true}),
		[]string{"x\xff\xff", "x\xff\xff\x01"})
	wantStrings(t, "prefix \\xff\\xff", kvScanKeys(t, kv, store.ScanOptions{Prefix: []byte("\xff\xff"), KeysOnly: true}),
		[]string{"\xff\xff", "\xff\xff\x01"})
	wantStrings(t, "prefix \\xff\\xff reverse", kvScanKeys(t, kv, store.ScanOptions{Prefix: []byte("\xff\xff"), KeysOnly: true, Reverse: true}),
		[]string{"\xff\xff\x01", "\xff\xff"})
	wantStrings(t, "prefix \\xff", kvScanKeys(t, kv, store.ScanOptions{Prefix: []byte("\xff"), KeysOnly: true}),
		[]string{"\xff\xfe", "\xff\xff", "\xff\xff\x01"})
}

func kvScanManyPages(t *testing.T, kv store.KV) {
	const n = 5000
	err := kv.Update(func(txn store.Txn) error {
		for i := range n {
			if err := txn.Set(binary.BigEndian.AppendUint32([]byte("p/"), uint32(i)), []byte(fmt.Sprint(i))); err != nil {
				return err
			}
		}
		return txn.Set([]byte("q"), nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []store.ScanOptions{
		{Prefix: []byte("p/")},
		{Prefix: []byte("p/"), Reverse: true},
		{Prefix: []byte("p/"), KeysOnly: true},
		{Prefix: []byte("p/"), KeysOnly: true, Reverse: true},
	} {
		i := 0
		err := kv.View(func(txn store.Txn) error {
			return txn.Scan(o, func(k, v []byte) (bool, error) {
				want := i
				if o.Reverse {
					want = n - 1 - i
				}
				if got := binary.BigEndian.Uint32(k[2:]); got != uint32(want) {
					return false, fmt.Errorf("key %d at position %d", got, i)
				}
				if !o.KeysOnly && string(v) != fmt.Sprint(want) {
					return false, fmt.Errorf("value %q at position %d", v, i)
				}
				i++
				return true, nil
			})
		})
		if err != nil || i != n {
			t.Fatalf("%+v: %d keys, %v", o, i, err)
		}
	}
}

func kvScanReadYourWrites(t *testing.T, kv store.KV) {
	kvPut(t, kv, "r/1", "1", "r/2", "2", "r/3", "3", "r/4", "4")
	err := kv.Update(func(txn store.Txn) error {
		for _, k := range []string{"r/2", "r/4"} {
			if err := txn.Delete([]byte(k)); err != nil {
				return err
			}
		}
		if err := txn.Set([]byte("r/3"), []byte("three")); err != nil {
			return err
		}
		if err := txn.Set([]byte("r/5"), []byte("5")); err != nil {
			return err
		}
		var got []string
		for _, rev := range []bool{false, true} {
			err := txn.Scan(store.ScanOptions{Prefix: []byte("r/"), Reverse: rev}, func(k, v []byte) (bool, error) {
				got = append(got, string(k)+"="+string(v))
				return true, nil
			})
			if err != nil {
				return err
			}
		}
		wantStrings(t, "scan in the writing transaction", got,
			[]string{"r/1=1", "r/3=three", "r/5=5", "r/5=5", "r/3=three", "r/1=1"})
		if _, err := txn.Get([]byte("r/2")); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("deleted r/2 after Scan: %v", err)
		}
		// Writes after a Scan are visible to Get and to the next Scan.
		if err := txn.Delete([]byte("r/1")); err != nil {
			return err
		}
		if _, err := txn.Get([]byte("r/1")); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("deleted r/1: %v", err)
		}
		got = nil
		err := txn.Scan(store.ScanOptions{Prefix: []byte("r/"), KeysOnly: true}, func(k, _ []byte) (bool, error) {
			got = append(got, string(k))
			return true, nil
		})
		wantStrings(t, "second scan", got, []string{"r/3", "r/5"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	wantStrings(t, "after commit", kvScanKeys(t, kv, store.ScanOptions{Prefix: []byte("r/")}), []string{"r/3=three", "r/5=5"})
}

// kvScanWhileWriting deletes every key a scan visits, in the scan's own
// transaction (how the store clears a broadcast's keys).
func kvScanWhileWriting(t *testing.T, kv store.KV) {
	const n = 1500
	err := kv.Update(func(txn store.Txn) error {
		for i := range n {
			if err := txn.Set(binary.BigEndian.AppendUint32([]byte("w/"), uint32(i)), []byte("v")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	visited := 0
	err = kv.Update(func(txn store.Txn) error {
		visited = 0
		return txn.Scan(store.ScanOptions{Prefix: []byte("w/"), KeysOnly: true}, func(k, _ []byte) (bool, error) {
			visited++
			return true, txn.Delete(k)
		})
	})
	if err != nil || visited != n {
		t.Fatalf("visited %d of %d keys: %v", visited, n, err)
	}
	if left := kvScanKeys(t, kv, store.ScanOptions{Prefix: []byte("w/"), KeysOnly: true}); len(left) != 0 {
		t.Fatalf("%d keys left", len(left))
	}
}

// kvConcurrentIncrements runs two writers incrementing one counter: no
// increment is lost, because a transaction that read a value a concurrent
// commit changed runs again.
func kvConcurrentIncrements(t *testing.T, kv store.KV) {
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				err := kv.Update(func(txn store.Txn) error {
					var c uint64
					v, err := txn.Get([]byte("counter"))
					switch {
					case errors.Is(err, store.ErrNotFound):
					case err != nil:
						return err
					default:
						c = binary.BigEndian.Uint64(v)
					}
					return txn.Set([]byte("counter"), binary.BigEndian.AppendUint64(nil, c+1))
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	v, _ := kvGet(t, kv, "counter")
	if got := binary.BigEndian.Uint64([]byte(v)); got != 2*n {
		t.Fatalf("counter = %d, want %d", got, 2*n)
	}
}

// kvBigTransaction writes and deletes more keys in one transaction than a
// buffer holds.
func kvBigTransaction(t *testing.T, kv store.KV) {
	const n = 10000
	val := bytes.Repeat([]byte("v"), 100)
	err := kv.Update(func(txn store.Txn) error {
		for i := range n {
			if err := txn.Set(binary.BigEndian.AppendUint32([]byte("big/"), uint32(i)), val); err != nil {
				return err
			}
		}
		for i := 0; i < n; i += 2 {
			if err := txn.Delete(binary.BigEndian.AppendUint32([]byte("big/"), uint32(i))); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, store.ErrTooBig) {
		t.Skip("the engine refuses a transaction this large")
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := len(kvScanKeys(t, kv, store.ScanOptions{Prefix: []byte("big/"), KeysOnly: true})); got != n/2 {
		t.Fatalf("%d keys, want %d", got, n/2)
	}
}

func kvBatch(t *testing.T, kv store.KV) {
	const n = 100_000
	b := kv.NewBatch()
	for i := range n {
		if err := b.Set(binary.BigEndian.AppendUint32([]byte("bb/"), uint32(i)), binary.BigEndian.AppendUint32(nil, uint32(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i += 10 {
		if err := b.Delete(binary.BigEndian.AppendUint32([]byte("bb/"), uint32(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	i, count := 0, 0
	err := kv.View(func(txn store.Txn) error {
		return txn.Scan(store.ScanOptions{Prefix: []byte("bb/")}, func(k, v []byte) (bool, error) {
			if i%10 == 0 {
				i++
			}
			if got := binary.BigEndian.Uint32(k[3:]); got != uint32(i) || binary.BigEndian.Uint32(v) != uint32(i) {
				return false, fmt.Errorf("key %d = %x, want key %d", got, v, i)
			}
			i++
			count++
			return true, nil
		})
	})
	if err != nil || count != n-n/10 {
		t.Fatalf("%d keys after the batch, want %d: %v", count, n-n/10, err)
	}
}

// kvBatchLastWriteWins writes one key many times in a batch large enough to
// be sent in several pieces: the last write wins.
func kvBatchLastWriteWins(t *testing.T, kv store.KV) {
	b := kv.NewBatch()
	filler := bytes.Repeat([]byte("f"), 1000)
	for round := range 20 {
		if err := b.Set([]byte("lw/key"), []byte(fmt.Sprint(round))); err != nil {
			t.Fatal(err)
		}
		if round == 18 {
			if err := b.Delete([]byte("lw/gone")); err != nil {
				t.Fatal(err)
			}
		} else if err := b.Set([]byte("lw/gone"), []byte("x")); err != nil {
			t.Fatal(err)
		}
		for i := range 1000 {
			if err := b.Set(fmt.Appendf(nil, "lw/f/%d/%d", round, i), filler); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Delete([]byte("lw/gone")); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if v, _ := kvGet(t, kv, "lw/key"); v != "19" {
		t.Fatalf("lw/key = %q, want the last write 19", v)
	}
	if _, ok := kvGet(t, kv, "lw/gone"); ok {
		t.Fatal("lw/gone survived its last write, a Delete")
	}
}

func kvBatchCancel(t *testing.T, kv store.KV) {
	b := kv.NewBatch()
	for i := range 10 {
		if err := b.Set(fmt.Appendf(nil, "bc/%d", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	b.Cancel()
	if keys := kvScanKeys(t, kv, store.ScanOptions{Prefix: []byte("bc/"), KeysOnly: true}); len(keys) != 0 {
		t.Fatalf("a cancelled batch wrote %q", keys)
	}
}

func kvSyncPingMaintain(t *testing.T, kv store.KV) {
	kvPut(t, kv, "k", "v")
	if err := kv.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := kv.Ping(); err != nil {
		t.Fatal(err)
	}
	kv.Maintain()
	if v, _ := kvGet(t, kv, "k"); v != "v" {
		t.Fatalf("k = %q after Maintain", v)
	}
}

// TestBadgerKVContract runs the engine contract on Badger, in memory and on
// disk, as TestPGKVContract runs it on PostgreSQL.
func TestBadgerKVContract(t *testing.T) {
	for _, onDisk := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "disk"}[onDisk], func(t *testing.T) {
			testKVContract(t, func(t *testing.T) store.KV {
				o := store.Options{}
				if onDisk {
					o.Dir = t.TempDir()
				}
				db, err := store.Open(o)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				return db.KV()
			})
		})
	}
}

// kvGetOne: KV.Get reads the latest committed value, as a View's Get would:
// absent keys, deleted and expired ones are ErrNotFound, values are copies.
func kvGetOne(t *testing.T, kv store.KV) {
	kvPut(t, kv, "a", "1", "b", "")
	if v, err := kv.Get([]byte("a")); err != nil || string(v) != "1" {
		t.Fatalf("Get(a) = %q, %v", v, err)
	}
	if v, err := kv.Get([]byte("b")); err != nil || len(v) != 0 {
		t.Fatalf("Get(b), an empty value = %q, %v", v, err)
	}
	if _, err := kv.Get([]byte("missing")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(missing) = %v, want ErrNotFound", err)
	}
	v, _ := kv.Get([]byte("a"))
	v[0] = 'x'
	kvPut(t, kv, "a", "2")
	if v, err := kv.Get([]byte("a")); err != nil || string(v) != "2" {
		t.Fatalf("Get(a) after an update = %q, %v", v, err)
	}
	if err := kv.Update(func(txn store.Txn) error { return txn.Delete([]byte("a")) }); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get([]byte("a")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(a) after its deletion = %v, want ErrNotFound", err)
	}
	if err := kv.Update(func(txn store.Txn) error { return txn.SetTTL([]byte("t"), []byte("x"), 2*time.Second) }); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get([]byte("t")); err != nil {
		t.Fatalf("Get(t) before it expires = %v", err)
	}
	testenv.Eventually(t, 20*time.Second, "t to expire", func() bool {
		_, err := kv.Get([]byte("t"))
		return errors.Is(err, store.ErrNotFound)
	})
}
