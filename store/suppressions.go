package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

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
		err := db.kv.Update(func(txn Txn) error {
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
				} else if !errors.Is(err, ErrNotFound) {
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
	err := db.kv.Update(func(txn Txn) error {
		old = nil
		s := new(campaignd.Suppression)
		if err := getJSON(txn, suppressionKey(number), s); errors.Is(err, ErrNotFound) {
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
	err := db.kv.View(func(txn Txn) error { return getJSON(txn, suppressionKey(number), s) })
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("store: suppressed %s: %w", number, err)
	}
	return s, nil
}

// IsSuppressed reports whether number is on the list, without decoding its
// entry: the check made for every row at ingest and every message at send.
func (db *DB) IsSuppressed(number string) (bool, error) {
	_, err := db.kv.Get(suppressionKey(number)) // once per message sent: one round trip
	if errors.Is(err, ErrNotFound) {
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
	err := db.kv.View(func(txn Txn) error {
		var start []byte
		if after != "" {
			start = append(suppressionKey(after), 0)
		}
		return txn.Scan(ScanOptions{Prefix: p, Start: start}, func(_, v []byte) (bool, error) {
			if limit > 0 && len(out) == limit {
				next = out[len(out)-1].Number
				return false, nil
			}
			var s campaignd.Suppression
			if err := json.Unmarshal(v, &s); err != nil {
				return false, err
			}
			out = append(out, s)
			return true, nil
		})
	})
	if err != nil {
		return nil, "", fmt.Errorf("store: suppressions: %w", err)
	}
	return out, next, nil
}

// SuppressionCount returns how many numbers are on the list.
func (db *DB) SuppressionCount() (int, error) {
	var n uint64
	err := db.kv.View(func(txn Txn) error {
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
	err := db.kv.Update(func(txn Txn) error {
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
	err := db.kv.View(func(txn Txn) error {
		var start []byte
		if before > 0 {
			start = key(prefixMO, before-1)
		}
		return txn.Scan(ScanOptions{Prefix: prefixMO, Start: start, Reverse: true}, func(_, v []byte) (bool, error) {
			if limit > 0 && len(out) == limit {
				next = out[len(out)-1].ID
				return false, nil
			}
			var m campaignd.MO
			if err := json.Unmarshal(v, &m); err != nil {
				return false, err
			}
			out = append(out, m)
			return true, nil
		})
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: replies: %w", err)
	}
	return out, next, nil
}

// addCount adds d to the uint64 counter at k inside txn.
func addCount(txn Txn, k []byte, d int64) error {
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

func getCount(txn Txn, k []byte) (uint64, error) {
	v, err := txn.Get(k)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("counter %q: %d bytes", bytes.TrimSpace(k), len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// SuppressionView is a read-only view of the suppression list for one
// ingest. A list of up to viewMemoryLimit numbers is loaded, in one read
// transaction, as a sorted slice of integers (8 bytes a number) and searched
// in memory: a snapshot. A longer one is looked up in the store for each
// row (a key lookup in a read transaction of its own), so it sees numbers
// suppressed since it opened. Close it when done.
type SuppressionView struct {
	db    *DB      // set when the list is looked up in the store
	set   []uint64 // sorted; nil when the list is looked up in the store
	empty bool
	key   []byte
}

// viewMemoryLimit bounds the numbers a SuppressionView holds in memory
// (16 MB); PROFECO's REPEP and most lists are well under it.
const viewMemoryLimit = 2_000_000

// SuppressionView opens a view of the list. A number suppressed after it
// opened may not be in it; the engine checks again before each submit.
func (db *DB) SuppressionView() (campaignd.SuppressionSet, error) {
	n, err := db.SuppressionCount()
	if err != nil {
		return nil, err
	}
	v := &SuppressionView{empty: n == 0, key: append([]byte{}, prefixSuppression...)}
	if v.empty {
		return v, nil
	}
	if n > viewMemoryLimit {
		v.db = db
		return v, nil
	}
	set := make([]uint64, 0, n)
	err = db.kv.View(func(txn Txn) error {
		return txn.Scan(ScanOptions{Prefix: prefixSuppression, KeysOnly: true}, func(k, _ []byte) (bool, error) {
			n, ok := numberKey(k[len(prefixSuppression):])
			if !ok {
				set = nil // a number that is not all digits: look every row up instead
				return false, nil
			}
			set = append(set, n)
			return true, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: suppression view: %w", err)
	}
	if set == nil {
		v.db = db
		return v, nil
	}
	slices.Sort(set)
	v.set = set
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
	if v.db == nil {
		k, ok := numberKey(number)
		if !ok {
			return false, nil
		}
		_, found := slices.BinarySearch(v.set, k)
		return found, nil
	}
	v.key = append(v.key[:len(prefixSuppression)], number...)
	err := v.db.kv.View(func(txn Txn) error {
		_, err := txn.Get(v.key)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("store: is suppressed %s: %w", number, err)
	}
	return true, nil
}

// Close ends the snapshot.
func (v *SuppressionView) Close() {
	v.db = nil
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
	err = db.kv.Update(func(txn Txn) error {
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
		} else if !errors.Is(err, ErrNotFound) {
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
	err := db.kv.View(func(txn Txn) error {
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
