package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"campaignd"
)

// Suppression list and replies:
//
//	x/<number>              Suppression (JSON), one per normalised number
//	m/count/suppressions    uint64: how many x/ keys exist (for the metric)
//	o/<mo id>               MO (JSON), every reply received, oldest first
var (
	prefixSuppression = []byte("x/")
	keySuppressCount  = []byte("m/count/suppressions")
	prefixMO          = []byte("o/")
)

// suppressBatch is how many numbers one transaction of SuppressMany writes:
// well under Badger's transaction size limit.
const suppressBatch = 1000

func suppressionKey(number string) []byte {
	return append(append([]byte{}, prefixSuppression...), number...)
}

// Suppress puts s.Number on the suppression list, or refreshes its entry,
// and reports whether the number is new to the list.
func (db *DB) Suppress(s campaignd.Suppression) (added bool, err error) {
	n, err := db.SuppressMany([]campaignd.Suppression{s})
	return n == 1, err
}

// SuppressMany puts every number of ss on the list, in batches, and returns
// how many were new. A number already listed keeps its first entry, so the
// reason and time it was first suppressed are not lost to a re-import.
func (db *DB) SuppressMany(ss []campaignd.Suppression) (added int, err error) {
	for len(ss) > 0 {
		batch := ss[:min(len(ss), suppressBatch)]
		ss = ss[len(batch):]
		n := 0
		err := db.update(func(txn *badger.Txn) error {
			n = 0
			for i := range batch {
				s := &batch[i]
				if s.Number == "" {
					return campaignd.Errorf(campaignd.EINVALID, "A number is required.")
				}
				if s.At.IsZero() {
					s.At = db.now()
				}
				k := suppressionKey(s.Number)
				if _, err := txn.Get(k); err == nil {
					continue
				} else if !errors.Is(err, badger.ErrKeyNotFound) {
					return err
				}
				if err := putJSON(txn, k, s); err != nil {
					return err
				}
				n++
			}
			return addCount(txn, keySuppressCount, int64(n))
		})
		if err != nil {
			return added, fmt.Errorf("store: suppress: %w", err)
		}
		added += n
	}
	return added, nil
}

// Unsuppress takes number off the list and returns the entry it removed
// (nil when the number was not listed).
func (db *DB) Unsuppress(number string) (*campaignd.Suppression, error) {
	var old *campaignd.Suppression
	err := db.update(func(txn *badger.Txn) error {
		old = nil
		s := new(campaignd.Suppression)
		if err := getJSON(txn, suppressionKey(number), s); errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		if err := txn.Delete(suppressionKey(number)); err != nil {
			return err
		}
		old = s
		return addCount(txn, keySuppressCount, -1)
	})
	if err != nil {
		return nil, fmt.Errorf("store: unsuppress: %w", err)
	}
	return old, nil
}

// Suppressed returns the list's entry for number, or nil when the number
// may be messaged.
func (db *DB) Suppressed(number string) (*campaignd.Suppression, error) {
	s := new(campaignd.Suppression)
	err := db.db.View(func(txn *badger.Txn) error { return getJSON(txn, suppressionKey(number), s) })
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("store: suppressed %s: %w", number, err)
	}
	return s, nil
}

// IsSuppressed reports whether number is on the list, without decoding its
// entry: the check made for every row at ingest and every message at send.
func (db *DB) IsSuppressed(number string) (bool, error) {
	err := db.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(suppressionKey(number))
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("store: is suppressed %s: %w", number, err)
	}
	return true, nil
}

// Suppressions returns up to limit entries whose number starts with prefix
// (all when empty), in number order after the number `after`, and the
// number to pass as `after` for the next page ("" on the last page).
func (db *DB) Suppressions(prefix, after string, limit int) ([]campaignd.Suppression, string, error) {
	var out []campaignd.Suppression
	next := ""
	p := suppressionKey(prefix)
	err := db.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = p
		it := txn.NewIterator(opts)
		defer it.Close()
		start := p
		if after != "" {
			start = append(suppressionKey(after), 0)
		}
		for it.Seek(start); it.ValidForPrefix(p); it.Next() {
			if limit > 0 && len(out) == limit {
				next = out[len(out)-1].Number
				return nil
			}
			var s campaignd.Suppression
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &s) }); err != nil {
				return err
			}
			out = append(out, s)
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("store: suppressions: %w", err)
	}
	return out, next, nil
}

// SuppressionCount returns how many numbers are on the list.
func (db *DB) SuppressionCount() (int, error) {
	var n uint64
	err := db.db.View(func(txn *badger.Txn) error {
		var err error
		n, err = getCount(txn, keySuppressCount)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: suppression count: %w", err)
	}
	return int(n), nil
}

// SaveMO keeps a reply and assigns its ID.
func (db *DB) SaveMO(m *campaignd.MO) error {
	if m.At.IsZero() {
		m.At = db.now()
	}
	err := db.update(func(txn *badger.Txn) error {
		id, err := nextIDs(txn, "mo", 1)
		if err != nil {
			return err
		}
		m.ID = id
		return putJSON(txn, key(prefixMO, id), m)
	})
	if err != nil {
		return fmt.Errorf("store: save reply: %w", err)
	}
	return nil
}

// MOs returns up to limit replies, newest first, older than the reply
// `before` (all when 0), and the id to pass as `before` for the next page
// (0 on the last page).
func (db *DB) MOs(before uint64, limit int) ([]campaignd.MO, uint64, error) {
	var out []campaignd.MO
	var next uint64
	err := db.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefixMO
		opts.Reverse = true
		it := txn.NewIterator(opts)
		defer it.Close()
		start := append(append([]byte{}, prefixMO...), 0xff)
		if before > 0 {
			start = key(prefixMO, before-1)
		}
		for it.Seek(start); it.ValidForPrefix(prefixMO); it.Next() {
			if limit > 0 && len(out) == limit {
				next = out[len(out)-1].ID
				return nil
			}
			var m campaignd.MO
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &m) }); err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: replies: %w", err)
	}
	return out, next, nil
}

// addCount adds d to the uint64 counter at k inside txn.
func addCount(txn *badger.Txn, k []byte, d int64) error {
	if d == 0 {
		return nil
	}
	cur, err := getCount(txn, k)
	if err != nil {
		return err
	}
	n := int64(cur) + d
	if n < 0 {
		n = 0
	}
	return txn.Set(k, binary.BigEndian.AppendUint64(nil, uint64(n)))
}

func getCount(txn *badger.Txn, k []byte) (uint64, error) {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	var n uint64
	err = item.Value(func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("counter %q: %d bytes", bytes.TrimSpace(k), len(v))
		}
		n = binary.BigEndian.Uint64(v)
		return nil
	})
	return n, err
}

// SuppressionView is a read-only snapshot of the suppression list for one
// ingest. A list of up to viewMemoryLimit numbers is loaded as a sorted
// slice of integers (8 bytes a number) and searched in memory; a longer one
// is looked up in one read transaction kept open for the ingest. Either
// way a row costs no transaction of its own. Close it when done.
type SuppressionView struct {
	txn   *badger.Txn
	set   []uint64 // sorted; nil when the list is looked up in txn
	empty bool
	key   []byte
}

// viewMemoryLimit bounds the numbers a SuppressionView holds in memory
// (16 MB); PROFECO's REPEP and most lists are well under it.
const viewMemoryLimit = 2_000_000

// SuppressionView opens a snapshot of the list. A number suppressed after
// it opened is not in it; the engine checks again before each submit.
func (db *DB) SuppressionView() (campaignd.SuppressionSet, error) {
	n, err := db.SuppressionCount()
	if err != nil {
		return nil, err
	}
	v := &SuppressionView{empty: n == 0, key: append([]byte{}, prefixSuppression...)}
	if v.empty {
		return v, nil
	}
	v.txn = db.db.NewTransaction(false)
	if n > viewMemoryLimit {
		return v, nil
	}
	set := make([]uint64, 0, n)
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefixSuppression
	opts.PrefetchValues = false
	it := v.txn.NewIterator(opts)
	for it.Rewind(); it.Valid(); it.Next() {
		k, ok := numberKey(it.Item().Key()[len(prefixSuppression):])
		if !ok {
			set = nil // a number that is not all digits: look every row up instead
			break
		}
		set = append(set, k)
	}
	it.Close()
	if set != nil {
		slices.Sort(set)
		v.set = set
		v.txn.Discard()
		v.txn = nil
	}
	return v, nil
}

// numberKey is a normalised number as an integer (E.164 numbers never
// start with 0, so it is unique).
func numberKey(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// Has reports whether number is on the list.
func (v *SuppressionView) Has(number []byte) (bool, error) {
	if v.empty {
		return false, nil
	}
	if v.txn == nil {
		k, ok := numberKey(number)
		if !ok {
			return false, nil
		}
		_, found := slices.BinarySearch(v.set, k)
		return found, nil
	}
	v.key = append(v.key[:len(prefixSuppression)], number...)
	_, err := v.txn.Get(v.key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("store: is suppressed %s: %w", number, err)
	}
	return true, nil
}

// Close ends the snapshot.
func (v *SuppressionView) Close() {
	if v.txn != nil {
		v.txn.Discard()
		v.txn = nil
	}
	v.set = nil
}

// SaveReply keeps reply m and, when s is not nil, puts s.Number on the
// list, in one transaction: a reply is acknowledged to the SMSC only once
// both are durable, and a redelivered reply never half-applies. added
// reports whether the number is new to the list.
func (db *DB) SaveReply(m *campaignd.MO, s *campaignd.Suppression) (added bool, err error) {
	if m.At.IsZero() {
		m.At = db.now()
	}
	if s != nil && s.At.IsZero() {
		s.At = m.At
	}
	err = db.update(func(txn *badger.Txn) error {
		added = false
		id, err := nextIDs(txn, "mo", 1)
		if err != nil {
			return err
		}
		m.ID = id
		if err := putJSON(txn, key(prefixMO, id), m); err != nil {
			return err
		}
		if s == nil {
			return nil
		}
		k := suppressionKey(s.Number)
		if _, err := txn.Get(k); err == nil {
			return nil
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		if err := putJSON(txn, k, s); err != nil {
			return err
		}
		added = true
		return addCount(txn, keySuppressCount, 1)
	})
	if err != nil {
		return false, fmt.Errorf("store: save reply: %w", err)
	}
	if err := db.Sync(); err != nil {
		return false, fmt.Errorf("store: save reply: %w", err)
	}
	return added, nil
}

// RecentAudit returns the latest limit audit entries about broadcast bid
// (0: the suppression list and other changes not about a broadcast),
// newest first, reading no more than it returns.
func (db *DB) RecentAudit(bid uint64, limit int) ([]campaignd.AuditEntry, error) {
	var out []campaignd.AuditEntry
	prefix := append(key(prefixAudit, bid), '/')
	err := db.db.View(func(txn *badger.Txn) error {
		return scanJSON(txn, prefix, true, func(v []byte) (bool, error) {
			var e campaignd.AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return false, err
			}
			out = append(out, e)
			return len(out) < limit, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: recent audit of %d: %w", bid, err)
	}
	return out, nil
}
