package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"campaignd"
)

// prefixReport holds each produced day's report and its push state:
// p/<YYYYMMDD> -> campaignd.Report (JSON). Partial (current-day) reports are
// never stored.
var prefixReport = []byte("p/")

func reportKey(day string) []byte {
	return append(append([]byte{}, prefixReport...), day...)
}

// compactDay turns "YYYY-MM-DD" into "YYYYMMDD" and checks the shape.
func compactDay(day string) (string, error) {
	d := strings.ReplaceAll(day, "-", "")
	if len(d) != 8 || strings.Trim(d, "0123456789") != "" {
		return "", campaignd.Errorf(campaignd.EINVALID, "Invalid report day %q.", day)
	}
	return d, nil
}

// SaveReport writes r (a produced day's report and its push state) under
// its day, replacing what was there.
func (db *DB) SaveReport(r *campaignd.Report) error {
	d, err := compactDay(r.Day)
	if err != nil {
		return err
	}
	if err := db.update(func(txn *badger.Txn) error { return putJSON(txn, reportKey(d), r) }); err != nil {
		return fmt.Errorf("store: save report %s: %w", r.Day, err)
	}
	return nil
}

// Report returns the report of day ("YYYYMMDD" or "YYYY-MM-DD"), or an
// ENOTFOUND error when that day has not been produced.
func (db *DB) Report(day string) (*campaignd.Report, error) {
	d, err := compactDay(day)
	if err != nil {
		return nil, err
	}
	r := new(campaignd.Report)
	err = db.db.View(func(txn *badger.Txn) error { return getJSON(txn, reportKey(d), r) })
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, campaignd.Errorf(campaignd.ENOTFOUND, "No report for %s.", day)
	} else if err != nil {
		return nil, fmt.Errorf("store: report %s: %w", day, err)
	}
	return r, nil
}

// Reports returns the produced reports, newest day first, at most limit of
// them (0: all).
func (db *DB) Reports(limit int) ([]*campaignd.Report, error) {
	var out []*campaignd.Report
	err := db.db.View(func(txn *badger.Txn) error {
		return scanJSON(txn, prefixReport, true, func(v []byte) (bool, error) {
			r := new(campaignd.Report)
			if err := json.Unmarshal(v, r); err != nil {
				return false, err
			}
			out = append(out, r)
			return limit == 0 || len(out) < limit, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: list reports: %w", err)
	}
	return out, nil
}

// ReportMessages calls fn with every message settled on local day
// (YYYYMMDD), in Tracking ID order, streaming: the d/<day> index read the
// way a whole day's report needs it. A broadcast's Tracking IDs are one
// block, so in Tracking ID order the message states are visited broadcast by
// broadcast in key order; one forward iterator reads them instead of a
// lookup per message. ErrStop from fn ends it quietly.
func (db *DB) ReportMessages(day string, fn func(*campaignd.Message) error) error {
	prefix := append(append(append([]byte{}, prefixSettled...), day...), '/')
	rr := db.NewRowReader()
	bases := map[uint64]uint64{}
	err := db.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefix
		it := txn.NewIterator(opts)
		defer it.Close()
		sopts := badger.DefaultIteratorOptions
		sopts.Prefix = prefixMsgState
		states := txn.NewIterator(sopts)
		defer states.Close()
		var last []byte // the key states was last sought or stepped to
		for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
			var bid uint64
			var idx uint32
			if err := it.Item().Value(func(v []byte) error {
				if len(v) != 12 {
					return errCorrupt
				}
				bid, idx = binary.BigEndian.Uint64(v), binary.BigEndian.Uint32(v[8:])
				return nil
			}); err != nil {
				return err
			}
			base, ok := bases[bid]
			if !ok {
				b := new(campaignd.Broadcast)
				if err := getJSON(txn, key(prefixBroadcast, bid), b); errors.Is(err, badger.ErrKeyNotFound) {
					continue // deleted since; cannot happen for sent broadcasts
				} else if err != nil {
					return err
				}
				base, bases[bid] = b.TrackingBase, b.TrackingBase
			}
			row, err := rr.Row(bid, idx)
			if err != nil {
				return err
			}
			m := &campaignd.Message{Row: *row, BroadcastID: bid, Index: idx, TrackingID: base + uint64(idx)}
			want := msgStateKey(bid, idx)
			seekStates(states, last, want)
			last = want
			s := &msgState{State: campaignd.StateQueued}
			if states.ValidForPrefix(prefixMsgState) && bytes.Equal(states.Item().Key(), want) {
				if err := states.Item().Value(s.decode); err != nil {
					return err
				}
			}
			s.apply(m)
			if err := fn(m); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, campaignd.ErrStop) {
		return nil
	}
	return err
}

// seekStates moves it to the first key at or after want. When it is at the
// first key at or after last and want is after last, a few Next calls are
// cheaper than a Seek.
func seekStates(it *badger.Iterator, last, want []byte) {
	if last != nil && bytes.Compare(want, last) > 0 {
		for i := 0; i < 32 && it.ValidForPrefix(prefixMsgState); i++ {
			if bytes.Compare(it.Item().Key(), want) >= 0 {
				return
			}
			it.Next()
		}
	}
	it.Seek(want)
}
